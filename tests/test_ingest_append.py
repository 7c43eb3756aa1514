"""The appending ingest: a month added to the folder is read alone and appended, and the outputs
are those of a full ingest of the whole folder; anything the last ingest's state cannot vouch for
rebuilds from the whole folder and says why."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from riskmodel.cli import main
from riskmodel.config import load_config
from riskmodel.ledger import read_ledger
from riskmodel.sources import ingest
from riskmodel.synthetic import county_sources, write_sources

OUTPUTS = ["ledger.parquet", "ingest_report.json", "ingest_quarantine.parquet",
           "ingest_quarantine.xlsx"]


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> tuple[Path, list[str]]:
    """A folder of 40 households × 4 months of CSV exports (one person row doubled in the last
    month, so that the quarantine grows), and its months."""
    root = tmp_path_factory.mktemp("county")
    sources = county_sources(40, 4, start="2024-01", seed=3, xlsx_max_rows=0)
    write_sources(sources, root / "all")
    months = sorted(sources.months)
    last = months[-1].replace("-", "")
    person = next(p for p in (root / "all").rglob("*.csv")
                  if (last in p.name or p.parent.name == months[-1])
                  and _person_table(p.name))
    lines = person.read_bytes().rstrip(b"\n").split(b"\n")
    person.write_bytes(b"\n".join([*lines, lines[-1]]) + b"\n")
    return root / "all", months


def _copy(src: Path, dst: Path, keep) -> list[str]:
    """Copy the files of ``src`` for which ``keep(relative path)``; return those left out."""
    left = []
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(src).as_posix()
        if keep(rel):
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        else:
            left.append(rel)
    return left


def _ingested_then_grown_by_two_months(folder: Path, months: list[str],
                                       tmp_path: Path) -> tuple[Path, Path]:
    """A copy of ``folder`` without its last two months, ingested; then those months copied in.
    Returns the grown folder and the ledger of the ingest."""
    growing = tmp_path / "growing"
    new = _copy(folder, growing, lambda rel: not (_of(months[-1])(rel) or _of(months[-2])(rel)))
    out = tmp_path / "out" / "ledger.parquet"
    ingest(growing, out)
    _copy(folder, growing, lambda rel: rel in new)
    return growing, out


def _of(month: str):
    """Whether a file (its folder, else its name) is of ``month``."""
    tag = month.replace("-", "")
    return lambda rel: rel.startswith(f"{month}/") or tag in Path(rel).name


def _person_table(name: str) -> bool:
    """Whether a generated file is a person table (by the generator's names for them)."""
    return "监测对象" in name or "脱贫人口" in name


def _outputs(folder: Path) -> dict[str, bytes]:
    """Every output's bytes; the ledger folder's by month file."""
    files = {}
    for name in OUTPUTS:
        path = folder / name
        if path.is_dir():
            files.update({f"{name}/{p.name}": p.read_bytes() for p in sorted(path.iterdir())})
        else:
            files[name] = path.read_bytes()
    return files


def _full(county_dir: Path, tmp_path: Path) -> dict[str, bytes]:
    out = tmp_path / "full" / "ledger.parquet"
    ingest(county_dir, out)
    return _outputs(out.parent)


def test_appended_month_gives_the_full_ingests_outputs_and_parses_only_its_files(
        county, tmp_path, caplog):
    folder, months = county
    growing = tmp_path / "growing"
    new = _copy(folder, growing, lambda rel: not _of(months[-1])(rel))
    assert new and any(_person_table(p) for p in new)
    out = tmp_path / "out" / "ledger.parquet"
    first = ingest(growing, out)
    assert first.appended == [] and first.rebuilt_because == ""

    _copy(folder, growing, lambda rel: rel in new)
    caplog.set_level(logging.INFO, logger="riskmodel.sources")
    caplog.clear()
    result = ingest(growing, out, force=True)
    assert result.appended == [months[-1]] and result.rebuilt_because == ""
    parsed = sorted(r.getMessage().split(":")[0] for r in caplog.records
                    if ": parsed (" in r.getMessage() or ": from the cache (" in r.getMessage())
    assert parsed == sorted(new), "only the added files are read"
    assert "appended" in result.describe()
    # The appended rows are the new month's; the quarantine holds the doubled person.
    assert set(result.ledger["month"]) == {months[-1]}
    assert result.report["persons_quarantined"] > first.report["persons_quarantined"]

    expected = _full(folder, tmp_path)
    got = _outputs(out.parent)
    full = read_ledger(tmp_path / "full" / "ledger.parquet")
    pd.testing.assert_frame_equal(read_ledger(out), full)
    assert len(full) == result.report["household_months"]
    assert result.report["households"] == full["household_id"].nunique()
    assert sorted(got) == sorted(expected)
    assert [n for n in got if n.startswith("ledger.parquet/")] == [
        f"ledger.parquet/{m}.parquet" for m in months]
    for name in expected:
        assert got[name] == expected[name], f"{name} differs from the full ingest's"


def test_two_months_at_once_then_nothing_new(county, tmp_path):
    folder, months = county
    growing, out = _ingested_then_grown_by_two_months(folder, months, tmp_path)
    result = ingest(growing, out, force=True)
    assert result.appended == months[-2:]
    expected = _full(folder, tmp_path)
    assert _outputs(out.parent) == expected
    again = ingest(growing, out, force=True)
    assert again.appended == [] and again.rebuilt_because == ""
    assert _outputs(out.parent) == expected
    # A file touched but not changed is still the same file.
    old = next(p for p in sorted(growing.rglob("*.csv"))
               if _of(months[0])(p.relative_to(growing).as_posix()))
    os.utime(old, ns=(old.stat().st_atime_ns, old.stat().st_mtime_ns + 10**9))
    _copy(folder, growing, lambda rel: False)
    assert ingest(growing, out, force=True).rebuilt_because == ""


def _appendable(county, tmp_path) -> tuple[Path, Path, list[str]]:
    folder, months = county
    growing = tmp_path / "growing"
    new = _copy(folder, growing, lambda rel: not _of(months[-1])(rel))
    out = tmp_path / "out" / "ledger.parquet"
    ingest(growing, out)
    _copy(folder, growing, lambda rel: rel in new)
    return growing, out, new


def test_a_changed_old_file_rebuilds_from_the_whole_folder(county, tmp_path, capsys):
    folder, months = county
    growing, out, _ = _appendable(county, tmp_path)
    old = next(p for p in sorted(growing.rglob("*.csv"))
               if _of(months[0])(p.relative_to(growing).as_posix()) and _person_table(p.name))
    lines = old.read_bytes().rstrip(b"\n").split(b"\n")
    old.write_bytes(b"\n".join(lines[:-1]) + b"\n")  # a person left out of an old month
    assert main(["ingest", "--sources", str(growing), "--out", str(out), "--force"]) == 0
    said = capsys.readouterr().out
    assert "rebuilt from the whole folder" in said
    assert f"{old.relative_to(growing).as_posix()} changed since the last ingest" in said
    assert _outputs(out.parent) == _full(growing, tmp_path)


def test_a_removed_file_a_replaced_ledger_a_late_file_or_new_settings_rebuild(county, tmp_path):
    folder, months = county
    growing, out, new = _appendable(county, tmp_path)
    # A month file of the ledger replaced by another file.
    first = sorted(out.iterdir())[0]
    shutil.copy2(first, tmp_path / "kept.parquet")
    shutil.copy2(tmp_path / "kept.parquet", first)
    os.utime(first, ns=(1, 1))
    result = ingest(growing, out, force=True)
    assert result.rebuilt_because == "ledger.parquet is not the one the last ingest wrote"
    assert _outputs(out.parent) == _full(folder, tmp_path)

    # A file of an old month added late.
    growing, out, new = _appendable(county, tmp_path / "late")
    late = next(p for p in sorted(growing.rglob("*.csv"))
                if _of(months[1])(p.relative_to(growing).as_posix()))
    shutil.copy2(late, late.with_name(f"补报_{late.name}"))
    result = ingest(growing, out, force=True)
    assert "not after the ledger's last month" in result.rebuilt_because

    # A file removed.
    growing, out, new = _appendable(county, tmp_path / "removed")
    gone = next(p for p in sorted(growing.rglob("*.csv"))
                if _of(months[0])(p.relative_to(growing).as_posix()))
    gone.unlink()
    result = ingest(growing, out, force=True)
    assert result.rebuilt_because.endswith("is no longer in the folder")

    # Other header spellings.
    growing, out, new = _appendable(county, tmp_path / "settings")
    yaml = tmp_path / "county.yaml"
    config = load_config()
    spellings = [*config.sources.headers["household_id"], "户码"]
    yaml.write_text("sources:\n  headers:\n    household_id: [" + ", ".join(spellings)
                    + "]\n", encoding="utf-8")
    result = ingest(growing, out, config=yaml, force=True)
    assert result.rebuilt_because.startswith("the sources configuration")


def test_without_force_an_existing_ledger_is_kept(county, tmp_path, capsys):
    growing, out, _ = _appendable(county, tmp_path)
    before = _outputs(out.parent)
    assert main(["ingest", "--sources", str(growing), "--out", str(out)]) == 4
    assert "--force" in capsys.readouterr().err
    assert _outputs(out.parent) == before


def test_households_across_row_groups_are_merged_whole(county, tmp_path, monkeypatch):
    """Row groups of 20 rows: households run across them, new rows land in every part."""
    from riskmodel.ledger import PARQUET_OPTIONS

    monkeypatch.setitem(PARQUET_OPTIONS, "row_group_size", 20)
    folder, months = county
    growing, out = _ingested_then_grown_by_two_months(folder, months, tmp_path)
    assert ingest(growing, out, force=True).appended == months[-2:]
    import pyarrow.parquet as pq

    assert all(pq.ParquetFile(p).num_row_groups > 1 for p in out.iterdir())
    assert _outputs(out.parent) == _full(folder, tmp_path)


def test_an_ingest_waits_for_no_one_and_writes_nothing_while_another_run_holds_the_folder(
        county, tmp_path):
    from riskmodel.errors import OutputExistsError
    from riskmodel.ledger import OutputLock

    folder, _ = county
    out = tmp_path / "out"
    with OutputLock(out), pytest.raises(OutputExistsError, match="another run is writing"):
        ingest(folder, out / "ledger.parquet", load_config())
    assert not any((out / name).exists() for name in OUTPUTS)
    ingest(folder, out / "ledger.parquet", load_config())  # once the other run has let go
    assert all((out / name).exists() for name in OUTPUTS)


def test_a_ledger_of_one_file_is_rebuilt_as_a_folder_and_another_folder_is_kept(county,
                                                                                tmp_path):
    from riskmodel.errors import OutputExistsError

    folder, _ = county
    out = tmp_path / "out" / "ledger.parquet"
    ingest(folder, out)
    expected = _outputs(out.parent)
    one = read_ledger(out)
    shutil.rmtree(out)
    one.to_parquet(out)  # the ledger as one file, as earlier versions wrote it
    result = ingest(folder, out, force=True)
    assert "ledger.parquet is one file, as earlier versions wrote the ledger" \
        in result.rebuilt_because
    assert _outputs(out.parent) == expected
    other = tmp_path / "mine.parquet"
    other.mkdir()
    (other / "notes.txt").write_text("备注", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="more than a ledger's month files"):
        ingest(folder, other, force=True)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_a_write_that_fails_leaves_the_old_month_files_and_no_half_file(county, tmp_path,
                                                                        monkeypatch):
    from riskmodel.ledger import _folder

    folder, months = county
    growing, out, _ = _appendable(county, tmp_path)
    before = {k: v for k, v in _outputs(out.parent).items() if k.startswith("ledger")}

    def failing(path):
        raise OSError("disk full")

    monkeypatch.setattr(_folder, "fsync_path", failing)
    with pytest.raises(OSError, match="disk full"):
        ingest(growing, out, force=True)  # the append: the new month's file
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    with pytest.raises(OSError, match="disk full"):
        ingest(folder, out, force=True)  # a full ingest: the folder built beside
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".ledger")]
    assert {k: v for k, v in _outputs(out.parent).items() if k.startswith("ledger")} == before
    monkeypatch.undo()
    result = ingest(growing, out, force=True)
    assert result.rebuilt_because == "no record of the last ingest beside the ledger"
    assert _outputs(out.parent) == _full(folder, tmp_path)


def test_new_rows_carry_on_figures_from_older_files_and_new_households_are_counted(county,
                                                                                   tmp_path):
    """Households without figures in the last old months (their last ones three files back),
    with new figures in the new month, or seen first in it: the new month's file is the full
    ingest's, byte for byte."""
    from riskmodel.ledger import write_ledger_folder
    from riskmodel.months import month_index
    from riskmodel.sources._append import append_months
    from riskmodel.sources._households import ANNUAL, recorded_month

    folder, months = county
    ingest(folder, tmp_path / "full" / "ledger.parquet")
    ledger = read_ledger(tmp_path / "full" / "ledger.parquet").sort_values(
        ["household_id", "month"], ignore_index=True)
    figures = [*ANNUAL, "annual_income_year"]
    ids = ledger["household_id"].unique()
    quiet = ledger["household_id"].isin(ids[:10]) & ledger["month"].isin(months[1:-1])
    for c in figures:
        ledger[c] = ledger[c].mask(quiet)
    changed = ledger["household_id"].isin(ids[10:15]) & (ledger["month"] == months[-1])
    ledger.loc[changed, "annual_income_total"] += 1000.0
    entering = ledger["household_id"].isin(ids[15:20]) & (ledger["month"] < months[-1])
    ledger = ledger[~entering].reset_index(drop=True)
    ledger["annual_recorded_month"] = recorded_month(
        ledger, pd.factorize(ledger["household_id"])[0],
        month_index(ledger["month"].to_numpy(dtype=object)))
    whole = write_ledger_folder(ledger, tmp_path / "a" / "ledger.parquet")

    old = (ledger["month"] < months[-1]).to_numpy()
    appended = tmp_path / "b" / "ledger.parquet"
    write_ledger_folder(ledger[old], appended)
    new = ledger[~old].assign(annual_recorded_month=None).reset_index(drop=True)
    rows, households = append_months(appended, new, ledger.loc[old, "household_id"].nunique())
    assert households == len(ids)
    expected = ledger.loc[~old, "annual_recorded_month"]
    assert rows["annual_recorded_month"].tolist() == expected.tolist()
    # Some runs carried on from the oldest file, across the two months without figures.
    assert months[0] in set(expected[ledger.loc[~old, "household_id"].isin(ids[:10])])
    assert set(expected[ledger.loc[~old, "household_id"].isin(ids[10:15])]) == {months[-1]}
    assert (appended / f"{months[-1]}.parquet").read_bytes() == whole[-1].read_bytes()


def test_the_cache_keeps_only_the_entries_of_the_files_in_the_folder(county, tmp_path):
    """A file removed from the folder, or replaced by other bytes, leaves no entry behind once
    the next ingest has run; the entries of the files still there, the key and the state stay,
    and so does what a stopped writer left (removed)."""
    from riskmodel.sources._append import STATE_NAME, recorded_contents
    from riskmodel.sources._ingest import CACHE_NAME
    from riskmodel.sources._personal import KEY_NAME

    folder, months = county
    growing = tmp_path / "county"
    _copy(folder, growing, lambda rel: True)
    out = tmp_path / "out" / "ledger.parquet"
    ingest(growing, out)
    cache = out.parent / CACHE_NAME
    entries = {p.name for p in cache.glob("*.arrow")}
    first = recorded_contents(cache)
    assert first and len(entries) == len({n.split("-")[0] for n in entries})
    stopped = cache / f".{sorted(entries)[0]}.tmp-4242"
    stopped.write_bytes(b"half")
    # One month's files removed, one file of another month given other bytes.
    gone = _copy(folder, tmp_path / "unused", lambda rel: not _of(months[0])(rel))
    for rel in gone:
        (growing / rel).unlink()
    changed = next(p for p in sorted(growing.rglob("*.csv")) if _of(months[1])(
        p.relative_to(growing).as_posix()))
    changed.write_bytes(changed.read_bytes().rstrip(b"\n") + b"\n\n")
    ingest(growing, out, force=True)
    kept = recorded_contents(cache)
    names = {p.name for p in cache.iterdir()}

    def contents(suffix: str) -> set[str]:
        return {n.split("-")[0] for n in names if n.endswith(suffix) and len(n) > 64}

    # Every file of the folder has its entry, and nothing else has one.
    assert contents(".json") == kept and contents(".arrow") <= kept
    assert first - kept and not (first - kept) & contents(".json")
    assert KEY_NAME in names and STATE_NAME in names and stopped.name not in names
    # The next ingest with nothing new reads every file from the cache.
    result = ingest(growing, out, force=True)
    assert result.from_cache == len(result.report["files"])
