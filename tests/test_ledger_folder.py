"""A ledger kept as a folder of month files is read as the one file it replaces: the same rows,
numbered across the files in name order, every reader (chunks, whole, validation, scoring)
taking it; a folder holding anything else is refused in one line; writing it swaps it in whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import small_model

from riskmodel.errors import LedgerError
from riskmodel.ledger import (
    KEY,
    PARQUET_OPTIONS,
    LedgerChunks,
    load_ledger,
    month_files,
    read_ledger,
    tidy_ledger_folder,
    validate_file,
    write_ledger_folder,
)
from riskmodel.synthetic import generate_ledger


@pytest.fixture(scope="module")
def ledger() -> pd.DataFrame:
    """60 households × 6 months, sorted by household and month as the ingest writes it."""
    raw = generate_ledger(households=60, months=6, seed=3)
    return raw.sort_values(KEY, kind="stable", ignore_index=True)


def both(frame: pd.DataFrame, folder, monkeypatch=None, group_rows: int | None = None):
    """``frame`` as one Parquet file and as a ledger folder; the folder's row order."""
    if group_rows is not None:
        monkeypatch.setitem(PARQUET_OPTIONS, "row_group_size", group_rows)
    one = folder / "one.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), one,
                   row_group_size=group_rows or PARQUET_OPTIONS["row_group_size"])
    written = write_ledger_folder(frame, folder / "ledger.parquet")
    order = frame.sort_values("month", kind="stable").index.to_numpy()
    return one, folder / "ledger.parquet", written, order


def test_month_files_hold_each_month_sorted_by_household(ledger, tmp_path):
    _, folder, written, order = both(ledger, tmp_path)
    months = sorted(ledger["month"].unique())
    assert [p.name for p in written] == [f"{m}.parquet" for m in months]
    for path, month in zip(written, months, strict=True):
        part = pd.read_parquet(path)
        assert set(part["month"]) == {month} and list(part.columns) == list(ledger.columns)
        assert part["household_id"].is_monotonic_increasing
    # Read as one table: the files in name order.
    got = read_ledger(folder)
    pd.testing.assert_frame_equal(got, ledger.iloc[order].reset_index(drop=True))


@pytest.mark.parametrize("group_rows", [None, 7])
def test_chunks_of_a_folder_are_the_chunks_of_the_file(ledger, tmp_path, monkeypatch,
                                                       group_rows):
    one, folder, _, order = both(ledger, tmp_path, monkeypatch, group_rows)
    a = LedgerChunks(one, chunk_households=25)
    b = LedgerChunks(folder, chunk_households=25)
    assert b.n_rows == a.n_rows == len(ledger) and b.months == a.months
    assert b.n_chunks == 3 and set(b.households) == set(a.households)
    whole = read_ledger(folder)
    seen, households = [], set()
    for rows, frame in b:
        # Rows numbered across the files in name order: the whole folder's rows.
        pd.testing.assert_frame_equal(frame, whole.iloc[rows].reset_index(drop=True))
        ids = set(frame["household_id"])
        assert not ids & households
        households |= ids
        seen.append(rows)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(len(ledger)))
    assert len(households) == 60

    def valid(chunks):
        return pd.concat([c.valid for c in chunks.validated()]).sort_values(
            KEY, ignore_index=True)

    pd.testing.assert_frame_equal(valid(b), valid(a))
    assert b.rows_in(ledger["month"].max()) == 60
    chosen = whole.loc[5, "household_id"]
    pd.testing.assert_frame_equal(
        b.rows_of([chosen]), whole[whole["household_id"] == chosen].reset_index(drop=True))


def test_month_files_out_of_household_order_are_read_all_the_same(ledger, tmp_path):
    """A folder written by hand, rows in no order: each chunk is read from the row groups
    holding it, with the same rows as the sorted folder's."""
    folder = tmp_path / "ledger.parquet"
    folder.mkdir()
    rng = np.random.default_rng(0)
    parts = []
    for month, part in ledger.groupby("month", sort=True):
        part = part.iloc[rng.permutation(len(part))]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False),
                       folder / f"{month}.parquet", row_group_size=9)
        parts.append(part)
    whole = pd.concat(parts, ignore_index=True)
    chunks = LedgerChunks(folder, chunk_households=25)
    assert chunks._parts.in_one_pass(chunks.chunk_of_row, chunks.n_chunks) is None
    got = []
    for rows, frame in chunks:
        pd.testing.assert_frame_equal(frame, whole.iloc[rows].reset_index(drop=True))
        got.append(frame)
    assert sum(len(f) for f in got) == len(ledger)


def test_a_folder_is_validated_as_the_file_and_its_rows_numbered_across_files(ledger, tmp_path):
    broken = ledger.astype({"members": object})
    broken.loc[3, "members"] = 0
    broken.loc[200, "members"] = -2
    one, folder, _, order = both(broken.astype({"members": "string"}), tmp_path)
    whole_file, whole_folder = load_ledger(one), load_ledger(folder)
    pd.testing.assert_frame_equal(whole_folder.valid, whole_file.valid)
    assert whole_folder.counts_by_rule == whole_file.counts_by_rule
    # source_row: the row's place in the month files read in name order.
    position = np.empty(len(order), dtype="int64")
    position[order] = np.arange(len(order))
    assert whole_folder.quarantine["source_row"].tolist() == sorted(position[[3, 200]])
    result = validate_file(folder, chunk_households=25, out=tmp_path / "out")
    assert result.reconciles and result.n_in == len(ledger)
    pd.testing.assert_frame_equal(result.quarantine, whole_folder.quarantine)
    located = LedgerChunks(folder, 25).locate(result.quarantine["source_row"])
    rows = read_ledger(folder).iloc[result.quarantine["source_row"]]
    assert located["file_row"].tolist() == (result.quarantine["source_row"] + 2).tolist()
    assert located["village"].tolist() == rows["village"].astype(str).str.strip().tolist()


def test_anything_but_month_files_is_refused_in_one_line(ledger, tmp_path, capsys):
    from riskmodel.cli import main

    _, folder, written, _ = both(ledger, tmp_path)
    # Hidden names (a month being written, Spark's markers) are skipped.
    (folder / ".2024-09.parquet.tmp-1").write_bytes(b"half")
    (folder / "_SUCCESS").write_bytes(b"")
    assert month_files(folder) == written
    (folder / "notes.txt").write_text("备注", encoding="utf-8")
    with pytest.raises(LedgerError, match="holds only month files named YYYY-MM.parquet; it "
                                          "also holds 'notes.txt'"):
        LedgerChunks(folder, 25)
    assert main(["validate", "--ledger", str(folder), "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "notes.txt" in err[0]
    (folder / "notes.txt").unlink()
    empty = tmp_path / "empty.parquet"
    empty.mkdir()
    with pytest.raises(LedgerError, match="holds no month file"):
        read_ledger(empty)
    # Month files must agree on their columns.
    pd.read_parquet(written[0]).drop(columns="village").to_parquet(written[0])
    with pytest.raises(LedgerError, match="its columns are not those of"):
        LedgerChunks(folder, 25)


def test_the_folder_replaces_a_file_or_a_folder_whole(ledger, tmp_path):
    out = tmp_path / "ledger.parquet"
    ledger.to_parquet(out)
    write_ledger_folder(ledger, out)
    assert out.is_dir() and len(month_files(out)) == 6
    write_ledger_folder(ledger[ledger["month"] < ledger["month"].max()], out)
    assert len(month_files(out)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.parquet"]
    # What a killed writer leaves is cleared under the lock.
    (tmp_path / ".ledger.parquet.tmp-99").mkdir()
    (tmp_path / ".ledger.parquet.old-99").mkdir()
    (out / ".2030-01.parquet.tmp-99").write_bytes(b"half")
    tidy_ledger_folder(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.parquet"]
    assert len(list(out.iterdir())) == 5


def test_scoring_a_folder_scores_as_the_file(tmp_path):
    from riskmodel.model import save_model
    from riskmodel.scoring import score_month

    _, _, model = small_model(seed=4, households=300)
    save_model(model, tmp_path / "model")
    raw = generate_ledger(households=240, months=14, seed=9)
    raw = raw.sort_values(KEY, kind="stable", ignore_index=True)
    one, folder, _, _ = both(raw, tmp_path)
    month = raw["month"].max()
    common = {"month": month, "model_uri": str(tmp_path / "model"),
              "tracking_uri": f"sqlite:///{tmp_path / 'mlruns.db'}"}
    a = score_month(one, tmp_path / "a", **common)
    b = score_month(folder, tmp_path / "b", **common)
    sa = pd.read_parquet(a.folder / "scores.parquet")
    sb = pd.read_parquet(b.folder / "scores.parquet")
    assert len(sa) == 240
    pd.testing.assert_frame_equal(sa, sb)


@pytest.mark.slow
def test_spark_numbers_a_folders_rows_as_the_pandas_engine(tmp_path):
    from riskmodel.model import save_model
    from riskmodel.scoring import score_month

    _, _, model = small_model(seed=4, households=300)
    save_model(model, tmp_path / "model")
    raw = generate_ledger(households=200, months=14, seed=9).astype({"members": object})
    raw = raw.sort_values(KEY, kind="stable", ignore_index=True)
    month = raw["month"].max()
    last = np.flatnonzero((raw["month"] == month).to_numpy())
    raw.loc[[last[3], last[150], 17], "members"] = [0, -1, 0]
    write_ledger_folder(raw.astype({"members": "string"}), tmp_path / "ledger.parquet")
    common = {"month": month, "model_uri": str(tmp_path / "model"),
              "tracking_uri": f"sqlite:///{tmp_path / 'mlruns.db'}"}
    a = score_month(tmp_path / "ledger.parquet", tmp_path / "pandas", **common)
    b = score_month(tmp_path / "ledger.parquet", tmp_path / "spark", engine="spark", **common)
    qa = pd.read_parquet(a.folder / "quarantine.parquet")
    qb = pd.read_parquet(b.folder / "quarantine.parquet")
    # The month's rows are those of the last file, numbered after every earlier file's.
    assert len(qa) == 2 and qa["source_row"].min() >= int((raw["month"] < month).sum())
    pd.testing.assert_frame_equal(qa[["source_row", "household_id", "rule"]],
                                  qb[["source_row", "household_id", "rule"]])
    sa = pd.read_parquet(a.folder / "scores.parquet")
    sb = pd.read_parquet(b.folder / "scores.parquet")
    np.testing.assert_allclose(sa["risk_score"].to_numpy(float), sb["risk_score"].to_numpy(float),
                               rtol=0, atol=1e-12)


def test_the_months_said_by_statistics_are_the_months_read(ledger, tmp_path):
    """Each month file's month comes from its statistics; a file whose rows hold another month,
    or none, is read: either way the chunks see the months of the same rows in one file."""
    _, folder, _, _ = both(ledger, tmp_path)
    read_ledger(folder).to_parquet(tmp_path / "w.parquet")
    a, b = LedgerChunks(folder, 25), LedgerChunks(tmp_path / "w.parquet", 25)
    assert a._parts.constant_text("month") == sorted(ledger["month"].unique())
    assert b._parts.constant_text("month") is None
    assert np.array_equal(a.month_of_row, b.month_of_row) and a.months == b.months
    # A month file holding a row of another month and a row without a month.
    first = month_files(folder)[0]
    part = pd.read_parquet(first)
    part.loc[1, "month"] = ledger["month"].max()
    part.loc[2, "month"] = None
    pq.write_table(pa.Table.from_pandas(part, preserve_index=False), first)
    mixed = LedgerChunks(folder, 25)
    assert mixed._parts.constant_text("month") is None
    moved = read_ledger(folder)
    moved.to_parquet(tmp_path / "m.parquet")
    c = LedgerChunks(tmp_path / "m.parquet", 25)
    assert np.array_equal(mixed.month_of_row, c.month_of_row)
    assert mixed.month_of_row[1] == mixed.month_of_row[-1] and mixed.month_of_row[2] == -1
    assert mixed.rows_in(ledger["month"].max()) == 62


def test_the_folder_index_is_the_index_of_the_rows_read_whole(ledger, tmp_path):
    """Households in order of first appearance and each row's household: the same whether
    every month file holds the same households (the first file's ids are taken for all) or
    not (a household missing a month, a new one appearing, an id left empty)."""
    _, folder, _, _ = both(ledger, tmp_path)
    gone = (ledger["household_id"] == ledger.loc[7, "household_id"]) & (
        ledger["month"] == ledger["month"].min())
    changed = ledger[~gone]
    extra = changed[changed["month"] == changed["month"].max()].head(2).copy()
    extra["household_id"] = ["new-1", None]
    changed = pd.concat([changed, extra]).sort_values(KEY, kind="stable", ignore_index=True)
    other = tmp_path / "other"
    other.mkdir()
    _, changed_folder, _, _ = both(changed, other)
    for path in (folder, changed_folder):
        whole = read_ledger(path)
        whole.to_parquet(path.parent / "whole.parquet")
        a, b = LedgerChunks(path, 25), LedgerChunks(path.parent / "whole.parquet", 25)
        assert list(a.households) == list(b.households)
        assert np.array_equal(a._household_of_row, b._household_of_row)
    assert "new-1" in set(LedgerChunks(changed_folder, 25).households)
