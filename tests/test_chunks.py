"""Reading a ledger file household-chunk by household-chunk, and the rows of chosen households."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import small_model

from riskmodel.ledger import LedgerChunks
from riskmodel.synthetic import generate_ledger


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    ledger = generate_ledger(households=60, months=6, seed=3)
    # Real files are often sorted by month, so a household's rows lie in many row groups; one
    # id carries stray spaces, as typed ledgers do.
    ledger = ledger.sort_values(["month", "household_id"], kind="stable", ignore_index=True)
    ledger["household_id"] = ledger["household_id"].astype(object)
    ledger.loc[ledger["household_id"] == ledger.loc[0, "household_id"], "household_id"] = (
        " " + str(ledger.loc[0, "household_id"]) + " ")
    return ledger


def write(raw: pd.DataFrame, folder, kind: str):
    path = folder / f"ledger.{kind}"
    if kind == "parquet":
        pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), path, row_group_size=50)
    else:
        raw.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_chunks_hold_every_row_once_with_whole_households(raw, tmp_path, kind):
    chunks = LedgerChunks(write(raw, tmp_path, kind), chunk_households=25)
    assert chunks.n_rows == len(raw) and chunks.n_chunks == 3
    seen, households = [], []
    for rows, frame in chunks:
        assert len(rows) == len(frame)
        seen.append(rows)
        households.append(set(frame["household_id"].astype(str).str.strip()))
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(len(raw)))
    assert sum(len(h) for h in households) == 60          # no household in two chunks


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_rows_of_the_chosen_households_in_file_order(raw, tmp_path, kind):
    chunks = LedgerChunks(write(raw, tmp_path, kind), chunk_households=25)
    ids = raw["household_id"].astype(str).str.strip()
    wanted = [ids.iloc[0], ids.iloc[7], ids.iloc[-1], "not-in-the-ledger"]
    got = chunks.rows_of(wanted)
    expected = raw[ids.isin(wanted).to_numpy()]
    assert len(got) == len(expected) == 18
    assert got["household_id"].astype(str).tolist() == expected["household_id"].astype(str).tolist()
    np.testing.assert_allclose(pd.to_numeric(got["inc_wage"], errors="coerce"),
                               pd.to_numeric(expected["inc_wage"], errors="coerce"))
    # The id typed with spaces is found by its clean form.
    assert got["household_id"].astype(str).str.startswith(" ").sum() == 6
    empty = chunks.rows_of([])
    assert empty.empty and "household_id" in empty.columns


def broken(raw: pd.DataFrame) -> pd.DataFrame:
    """The ledger with a few bad cells and a duplicated row, as exports have them."""
    out = raw.astype({"members": object, "inc_wage": object})
    out.loc[3, "members"] = 0
    out.loc[40, "inc_wage"] = "一千"
    out.loc[101, "month"] = "2023-13"
    return pd.concat([out, out.iloc[[200]]], ignore_index=True).astype(
        {"members": "string", "inc_wage": "string"})


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_validating_a_file_by_chunks_is_validating_it_whole(raw, tmp_path, kind):
    from riskmodel.ledger import KEY, load_ledger, validate_file

    path = write(broken(raw), tmp_path, kind)
    whole = load_ledger(path)
    result = validate_file(path, chunk_households=25, out=tmp_path / "out")
    assert result.reconciles and result.n_in == whole.n_in == len(raw) + 1
    assert result.n_valid == len(whole.valid) and result.counts_by_rule == whole.counts_by_rule
    assert len(result.quarantine) == 5        # the bad cells, both copies of the duplicate
    pd.testing.assert_frame_equal(result.quarantine, whole.quarantine)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "quarantine.parquet", "quarantine.xlsx", "valid.parquet"]
    valid = pd.read_parquet(tmp_path / "out" / "valid.parquet")
    pd.testing.assert_frame_equal(valid.sort_values(KEY, ignore_index=True),
                                  whole.valid.sort_values(KEY, ignore_index=True),
                                  check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "quarantine.parquet"),
                                  whole.quarantine, check_dtype=False)


def test_the_validate_command_prints_the_counts_and_writes_the_files(raw, tmp_path, capsys):
    from riskmodel.cli import main

    path = write(broken(raw), tmp_path, "csv")
    assert main(["validate", "--ledger", str(path), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert f"{len(raw) + 1} rows read, {len(raw) - 4} valid, 5 quarantined" in printed
    assert "duplicate_key: 2" in printed
    assert len(pd.read_parquet(tmp_path / "out" / "valid.parquet")) == len(raw) - 4


def test_a_failed_write_leaves_no_file(tmp_path):
    from riskmodel.ledger._outputs import AtomicParquetWriter

    frame = pd.DataFrame({"household_id": ["H1", "H2"], "x": [1.0, 2.0]})
    with pytest.raises(RuntimeError), AtomicParquetWriter(tmp_path / "a.parquet") as writer:
        writer.write(frame)
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
    with AtomicParquetWriter(tmp_path / "b.parquet") as writer:
        writer.write(frame)
        writer.write(frame.assign(x=[3, 4]))       # cast to the first frame's types
    assert pd.read_parquet(tmp_path / "b.parquet")["x"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert [p.name for p in tmp_path.iterdir()] == ["b.parquet"]


def test_a_filtered_frame_saved_with_its_index_is_read(raw, tmp_path):
    from riskmodel.ledger import validate_file

    # pandas writes a non-default index as a column of the file.
    kept = raw[raw.index % 7 != 3]
    kept.to_parquet(tmp_path / "kept.parquet")
    assert "__index_level_0__" in pq.read_schema(tmp_path / "kept.parquet").names
    chunks = LedgerChunks(tmp_path / "kept.parquet", chunk_households=25)
    assert chunks.n_rows == len(kept)
    assert sum(len(frame) for _, frame in chunks) == len(kept)
    assert "__index_level_0__" not in next(iter(chunks))[1].columns
    result = validate_file(tmp_path / "kept.parquet", chunk_households=25)
    assert result.n_valid == len(kept) and result.quarantine.empty


def test_an_out_that_is_a_file_is_one_line_not_a_traceback(raw, tmp_path, capsys):
    from riskmodel.cli import main

    path = write(raw, tmp_path, "csv")
    (tmp_path / "afile").write_text("not a folder", encoding="utf-8")
    assert main(["validate", "--ledger", str(path), "--out", str(tmp_path / "afile")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("riskmodel validate: cannot read or write a file")
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "not a folder"


def with_blank_rows(raw: pd.DataFrame, kind: str, folder) -> tuple:
    """The ledger written with empty rows among its rows (and, in a CSV, lines of commas after
    them, as Excel exports them): the path, the blank rows' numbers and each row's number."""
    rows = np.insert(np.arange(len(raw)), [0, 101, 250], -1)   # -1: a blank row
    blank = pd.DataFrame([[None] * raw.shape[1]], columns=raw.columns)
    frame = pd.concat([raw, blank], ignore_index=True).iloc[np.where(rows < 0, len(raw), rows)]
    path = write(frame.reset_index(drop=True), folder, kind)
    numbers = np.flatnonzero(rows < 0).tolist()
    if kind == "csv":
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(("," * (raw.shape[1] - 1) + "\n") * 20)
        numbers += list(range(len(frame), len(frame) + 20))
    return path, numbers, np.flatnonzero(rows >= 0)


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_blank_rows_are_in_no_chunk_and_no_month_and_are_logged(raw, tmp_path, kind, caplog):
    path, numbers, _ = with_blank_rows(raw, kind, tmp_path)
    with caplog.at_level("WARNING", logger="riskmodel"):
        chunks = LedgerChunks(path, chunk_households=25)
    assert chunks.blank_rows.tolist() == numbers
    assert chunks.n_rows == len(raw) and len(chunks.households) == 60
    last = raw["month"].max()
    assert chunks.rows_in(last) == int((raw["month"] == last).sum())
    rows = np.concatenate([r for r, _ in chunks])
    assert len(rows) == len(raw) and not np.isin(rows, numbers).any()
    assert f"{len(numbers)} blank row(s) skipped" in caplog.text
    assert f"source_row {numbers[0]}, {numbers[1]}" in caplog.text


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_validating_a_file_with_blank_rows(raw, tmp_path, kind):
    from riskmodel.ledger import load_ledger, validate_file

    path, numbers, position = with_blank_rows(broken(raw), kind, tmp_path)
    result = validate_file(path, chunk_households=25, out=tmp_path / "out")
    whole = load_ledger(path)
    assert whole.blank_rows.tolist() == numbers and whole.n_in == result.n_in
    pd.testing.assert_frame_equal(result.quarantine, whole.quarantine)
    assert result.blank_rows.tolist() == numbers and result.n_blank == len(numbers)
    assert result.reconciles and result.n_in == len(raw) + 1
    # The broken rows (and both copies of the duplicate) are named by their place in the
    # file, blank rows counted.
    broken_rows = position[[3, 40, 101, 200, len(raw)]]
    assert result.quarantine["source_row"].tolist() == sorted(broken_rows)
    assert len(pd.read_parquet(tmp_path / "out" / "valid.parquet")) == result.n_valid


def test_a_file_of_blank_rows_has_no_rows(raw, tmp_path):
    from riskmodel.errors import LedgerError

    blank = pd.DataFrame({c: pd.Series([None] * 4, dtype="string") for c in raw.columns})
    with pytest.raises(LedgerError, match="the file has no rows; its 4 rows are blank"):
        LedgerChunks(write(blank, tmp_path, "parquet"), chunk_households=25)


def test_validate_tells_columns_present_but_empty_from_absent_ones(raw, tmp_path, capsys,
                                                                   caplog):
    from riskmodel.cli import main

    frame = raw.drop(columns=["ev_illness"]).astype({"inc_wage": object, "dibao": object})
    frame["inc_wage"] = None
    frame["dibao"] = None
    path, numbers, _ = with_blank_rows(frame, "csv", tmp_path)
    with caplog.at_level("WARNING", logger="riskmodel"):
        assert main(["validate", "--ledger", str(path)]) == 0
    printed = capsys.readouterr().out
    assert f"{len(raw)} rows read, {len(raw)} valid, 0 quarantined" in printed
    assert "optional columns absent (treated as unknown): ev_illness\n" in printed
    assert "present but empty in every row (read as unknown): inc_wage, dibao" in caplog.text
    assert f"{len(numbers)} blank row(s) skipped" in caplog.text
    assert "columns present but empty in every row (treated as unknown): inc_wage, dibao\n" \
        in printed
    shown = ", ".join(str(n) for n in sorted(numbers)[:5])
    assert f"blank rows skipped (every field empty; no household): {len(numbers)} " \
        f"(source_row {shown}" in printed


def test_blank_rows_do_not_count_against_the_months_quarantine_limit(raw, tmp_path, caplog):
    import json

    from threadpoolctl import threadpool_limits

    from riskmodel.cli import main
    from riskmodel.model import save_model

    _, _, model = small_model(seed=11, households=300, months=20, max_iter=20,
                              min_samples_leaf=20, validation_months=2, calibration_months=3)
    save_model(model, tmp_path / "model")
    last = raw["month"].max()
    ledger = raw.astype({"members": object})
    ledger.loc[np.flatnonzero(ledger["month"] == last)[0], "members"] = 0
    # 23 blank rows against 60 rows of the month: over the 5% limit if they counted.
    path, numbers, _ = with_blank_rows(ledger, "csv", tmp_path)
    with caplog.at_level("WARNING", logger="riskmodel"), threadpool_limits(1):
        assert main(["score", "--ledger", str(path), "--out", str(tmp_path / "out"),
                     "--model", str(tmp_path / "model"),
                     "--tracking-uri", f"sqlite:///{tmp_path}/mlruns.db"]) == 0
    assert f"{len(numbers)} blank row(s) skipped" in caplog.text
    summary = json.loads((tmp_path / "out" / last / "summary.json").read_text())
    r = summary["reconciliation"]
    assert r["rows_in"] == 60 and r["quarantined"] == 1
    assert summary["ledger"]["blank_rows_skipped"] == len(numbers)
    assert r["scored"] + r["not_eligible"] + r["quarantined"] == r["rows_in"]
    assert summary["ledger"]["rows"] == len(raw)


def test_validate_does_not_call_an_empty_required_count_unknown(raw, tmp_path, capsys, caplog):
    from riskmodel.cli import main

    frame = raw.astype({"labor_full": object, "inc_wage": object})
    frame["labor_full"] = None
    frame["inc_wage"] = None
    path = write(frame, tmp_path, "csv")
    with caplog.at_level("WARNING", logger="riskmodel"):
        assert main(["validate", "--ledger", str(path)]) == 0
    printed = capsys.readouterr().out
    # A required count cannot be unknown: every row is quarantined for it, and the output says so.
    assert f"{len(raw)} rows read, 0 valid, {len(raw)} quarantined" in printed
    assert "(treated as unknown): inc_wage\n" in printed
    assert "which every row needs a value in (each row quarantined): labor_full\n" in printed
    assert "(each row quarantined): labor_full" in caplog.text


@pytest.mark.parametrize("kind", ["parquet", "parquet-text", "csv"])
def test_an_optional_count_no_row_fills_reads_as_absent(raw, tmp_path, kind, caplog):
    from riskmodel.ledger import load_ledger, validate_file

    frame = raw.copy()
    frame["elderly"] = pd.Series(pd.NA, index=frame.index,
                                 dtype="string" if kind == "parquet-text" else "Float64")
    if kind == "parquet-text":
        frame.loc[frame.index[::2], "elderly"] = " "
    path, _, _ = with_blank_rows(frame, kind.split("-")[0], tmp_path)
    with caplog.at_level("WARNING", logger="riskmodel"):
        chunks = LedgerChunks(path, chunk_households=25)
    assert chunks.unfilled == ["elderly"]
    assert "read as absent: elderly" in caplog.text
    assert all("elderly" not in part.columns for _, part in chunks)
    assert "elderly" not in chunks.rows_of(chunks.households[:2]).columns
    result = validate_file(path, chunk_households=25)
    assert len(result.quarantine) == 0 and result.n_valid == len(raw)
    assert "elderly" in result.empty_columns and "elderly" not in result.missing_optional
    whole = load_ledger(path)
    assert len(whole.quarantine) == 0 and "elderly" in whole.empty_columns
    assert "elderly" not in whole.missing_optional


def test_an_optional_count_some_rows_fill_quarantines_the_others_whatever_the_chunks(raw,
                                                                                   tmp_path):
    from riskmodel.ledger import validate_file

    frame = raw.astype({"elderly": object})
    first = frame["household_id"] == frame["household_id"].iloc[0]
    frame.loc[~first, "elderly"] = None
    path = write(frame, tmp_path, "parquet")
    assert LedgerChunks(path, chunk_households=25).unfilled == []
    counts = {size: validate_file(path, chunk_households=size).counts_by_rule
              for size in (1, 25, 1000)}
    assert counts[1] == counts[25] == counts[1000] == {"value_missing": int((~first).sum())}


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_places_of_a_month_are_read_without_the_other_columns(raw, tmp_path, kind):
    last = raw["month"].max()
    frame = raw.astype({"township": object})
    at = frame.index[frame["month"] == last][0]
    frame.loc[at, "township"] = f"  {frame.loc[at, 'township']} "   # read as written, stripped
    chunks = LedgerChunks(write(frame, tmp_path, kind), chunk_households=25)
    places = chunks.places(last, ["county", "township"])
    expected = raw.loc[raw["month"] == last, ["county", "township"]].drop_duplicates()
    assert sorted(map(tuple, places.to_numpy().tolist())) == \
        sorted(map(tuple, expected.astype(str).to_numpy().tolist()))
    assert list(places.columns) == ["county", "township"]


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_the_validated_chunks_mark_the_months_quarantine_as_the_file_numbers_it(raw, tmp_path,
                                                                               kind):
    from riskmodel.errors import RiskModelError
    from riskmodel.ledger import LedgerCounts, validate_chunk, validate_ledger

    broken = raw.astype("string")
    broken.loc[[3, 70, 200], "members"] = "0"            # rows of several months
    broken.loc[150, "month"] = "2023-13"                 # a month that cannot be read
    chunks = LedgerChunks(write(broken, tmp_path, kind), chunk_households=25)
    month = chunks.months[-1]
    counts = chunks.counts(month, max_quarantine_share=0.5)
    found = list(chunks.validated(month, counts))
    quarantine = pd.concat([c.quarantine for c in found]).sort_values("source_row")
    whole = validate_ledger(broken).quarantine
    assert quarantine["source_row"].tolist() == whole["source_row"].tolist()
    of_month = pd.concat([c.month_quarantine for c in found])["source_row"]
    expected = {r for r in (3, 70, 150, 200) if broken.loc[r, "month"] in (month, "2023-13")}
    assert set(of_month) == expected and 150 in expected
    # The month read from the rows themselves (as a Spark executor does) marks the same rows.
    for (rows, frame), chunk in zip(chunks, found, strict=True):
        alone = validate_chunk(frame, rows, month)
        assert alone.month_quarantine["source_row"].tolist() == \
            chunk.month_quarantine["source_row"].tolist()
    assert counts.n_valid + counts.quarantined == counts.n_in == len(raw)
    assert counts.month_quarantined == len(expected)
    counts.reconcile({"kept": counts.rows_in - len(expected)})
    with pytest.raises(RiskModelError, match="do not reconcile for"):
        counts.reconcile({"kept": counts.rows_in})
    assert isinstance(counts, LedgerCounts)


def test_the_quarantine_limit_stops_the_reading_at_the_chunk_that_passes_it(raw, tmp_path):
    from riskmodel.errors import LedgerError

    broken = raw.astype("string")
    month = broken["month"].max()
    broken.loc[broken["month"] == month, "members"] = "0"
    chunks = LedgerChunks(write(broken, tmp_path, "parquet"), chunk_households=25)
    counts = chunks.counts(month, max_quarantine_share=0.1)
    read = []
    with pytest.raises(LedgerError, match=f"of {month} .*max_quarantine_share"):
        for chunk in chunks.validated(month, counts):
            read.append(chunk)
    assert read == []  # the first chunk passes it: nothing is yielded after the limit
