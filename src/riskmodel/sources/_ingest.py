"""The ingest job: a county's sources folder in, the ledger and its report out.

read every file (reusing the cache of files already read) → persons to households, migrants
and warnings joined → write the ledger (a folder of month files), ``ingest_report.json``,
``ingest_quarantine.parquet`` and ``ingest_quarantine.xlsx`` beside it, each atomically. The
same folder gives the same bytes. Over the outputs of an earlier ingest (``force``), only the
files added since are read and their months' files written into the ledger folder
(:mod:`riskmodel.sources._append`), when its state says that is safe.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..config import Config, load_config
from ..errors import ArgumentError, LedgerError, OutputExistsError
from ..ledger import (
    OutputLock,
    fsync_path,
    month_files,
    temp_beside,
    tidy_ledger_folder,
    write_json,
    write_ledger_folder,
    write_parquet_atomic,
    write_xlsx,
)
from ._append import (
    append_months,
    check_new,
    file_records,
    folder_stats,
    forget_state,
    merge_quarantine,
    merge_report,
    plan_append,
    recorded_contents,
    write_state,
)
from ._cache import SourceCache, StoreBehind
from ._households import households_from_tables
from ._personal import cache_key
from ._read import read_sources, read_tables

logger = logging.getLogger(__name__)

REPORT_NAME = "ingest_report.json"
QUARANTINE_NAME = "ingest_quarantine.parquet"
QUARANTINE_XLSX = "ingest_quarantine.xlsx"
#: The folder beside the ledger where files already read are kept (they hold personal fields).
CACHE_NAME = ".riskmodel-cache"

#: What each person-quarantine rule means, for the offices that fix the rows.
RULES_ZH = {
    "household_id_missing": "户编号为空，无法归户",
    "birth_date_unreadable": "出生日期无法识别，且证件号码不是18位，无法计算年龄",
    "person_duplicated": "同一户同一月份证件号码重复",
    "household_disagrees": "同一户各成员行的户级信息不一致（填写内容列出两个不同的值）",
    "place_missing": "户所在地（县、乡、村）为空",
    "member_of_quarantined_household": "本户其他成员行有问题，整户暂不计入",
}
_XLSX_HEADERS = {"file": "文件", "sheet": "工作表", "row": "原表行号", "month": "月份",
                 "household_id": "户编号", "column": "问题列", "value": "填写内容",
                 "rule_zh": "问题说明", "rule": "规则代码"}


@dataclass
class IngestResult:
    """What :func:`ingest` made and wrote.

    Attributes
    ----------
    ledger : DataFrame
        One row per household and download month: the ledger contract's columns, then the
        recorded ones (``wage_migrant``, ``annual_*``, ``identified_month`` …). When
        appending, only the appended months' rows (the folder holds them all).
    quarantine : DataFrame
        Persons not aggregated: file, sheet, row, month, household_id, field, rule, value
        (personal values masked ``***``).
    report : dict
        The contents of ``ingest_report.json``.
    paths : dict
        ``ledger``, ``report``, ``quarantine``, ``quarantine_xlsx`` -> the file written (the
        ledger: the folder of month files).
    from_cache : int
        Files that came from the cache instead of being parsed (not in the report, which a
        re-run must write byte for byte the same); when appending, the files of the ledger
        appended to count here too.
    appended : list of str
        The months appended to the last ingest's ledger; empty when the ledger was built from
        the whole folder.
    rebuilt_because : str
        Why an existing ledger was rebuilt from the whole folder rather than appended to
        ('' when appended or when there was none).
    """

    ledger: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict
    paths: dict[str, Path] = field(default_factory=dict)
    from_cache: int = 0
    appended: list[str] = field(default_factory=list)
    rebuilt_because: str = ""

    def describe(self) -> str:
        """The one line the command line prints."""
        r = self.report
        w = r["warnings"]
        other = len(r["unrecognised_files"])
        files = (f"{len(r['files'])} files ({len(r['files']) - self.from_cache} parsed, "
                 f"{self.from_cache} from the cache)"
                 + (f", {other} more of no known kind" if other else ""))
        how = ""
        if self.appended:
            how = f" (appended {', '.join(self.appended)} to the last ingest's ledger)"
        elif self.rebuilt_because:
            how = f" (rebuilt from the whole folder: {self.rebuilt_because})"
        return (f"{files}, {len(r['months'])} months, {r['households']} "
                f"households ({r['household_months']} household-months); persons in "
                f"{r['persons_in']} = {r['persons_aggregated']} aggregated + "
                f"{r['persons_quarantined']} quarantined; warnings {w['matched']} matched, "
                f"{w['unmatched']} unmatched; wrote {self.paths['ledger']}{how}")


def ingest(sources: str | Path, out: str | Path, config: Config | str | Path | None = None,
           force: bool = False) -> IngestResult:
    """Read a county's sources folder and write the household-month ledger.

    Parameters
    ----------
    sources : str or Path
        The folder of monthly downloads: person tables, migrant tables, warning lists
        (``.csv`` / ``.xlsx``, any depth).
    out : str or Path
        The ledger to write (``.parquet``): a folder of one Parquet file per month,
        ``YYYY-MM.parquet`` (:func:`riskmodel.ledger.write_ledger_folder`), built beside and
        swapped in whole. ``ingest_report.json``, ``ingest_quarantine.parquet`` and
        ``ingest_quarantine.xlsx`` go beside it, and the cache of files already read in
        ``.riskmodel-cache/`` there.
    config : Config, str or Path, optional
        A loaded configuration or a YAML file of overrides; the packaged defaults otherwise.
    force : bool, default=False
        Replace an existing ledger. When it is the one an earlier ingest of this folder wrote
        and the folder has only gained files of later months since, those months are appended
        (only the new files read, only the new months' files written, each renamed into place
        when whole; the ledger the same as a full ingest's); otherwise it is rebuilt from the
        whole folder and ``rebuilt_because`` says why (a ledger of one file, as earlier
        versions wrote, is rebuilt as a folder).

    Returns
    -------
    IngestResult

    Raises
    ------
    OutputExistsError
        ``out`` exists and ``force`` is False, ``out`` is a folder holding more than month
        files (never replaced), or another run holds the folder's lock
        (:class:`riskmodel.ledger.OutputLock`: an ingest, or a job writing there; exit code 4).
    SourceError
        A file cannot be read, a table has no download month, or there is no person table.
    """
    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise ArgumentError(f"Got --out {out}, expected a .parquet file for the ledger.")
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists already; pass --force (force=True) to replace it.")
    if out.is_dir() and any(out.iterdir()):
        try:
            month_files(out)
        except LedgerError:
            raise OutputExistsError(f"{out} is a folder holding more than a ledger's month files "
                                    "(YYYY-MM.parquet); it is not replaced: give another --out.")\
                from None
    if not isinstance(config, Config):
        config = load_config(config)
    directory = Path(sources)
    if not directory.is_dir():
        read_sources(directory, config)  # the one-line error of a missing folder
    # Two ingests into one folder would interleave their writes to the ledger, the reports and
    # the state an append relies on: one at a time.
    with OutputLock(out.parent):
        if out.exists() and not force:
            raise OutputExistsError(
                f"{out} exists already; pass --force (force=True) to replace it.")
        return _ingest(directory, out, config)


def _ingest(directory: Path, out: Path, config: Config) -> IngestResult:
    """The work of :func:`ingest`, holding the output folder's lock; the cache entries of the
    files parsed are written while the households are made."""
    with StoreBehind() as behind:
        result = _ingest_writing(directory, out, config, behind)
    _prune_cache(out.parent / CACHE_NAME, config)
    return result


def _prune_cache(cache_dir: Path, config: Config) -> None:
    """Remove the cache entries of files no longer in the folder as this ingest read it (and
    of other configurations): the state just written lists the files kept."""
    keep = recorded_contents(cache_dir)
    if keep is None:
        return
    removed, freed = SourceCache(cache_dir, config.sources, cache_key(cache_dir)).prune(keep)
    if removed:
        logger.info("cache: removed %d file(s) of %.1f MiB no longer in the folder", removed,
                    freed / 2**20)


def _ingest_writing(directory: Path, out: Path, config: Config,
                    behind: StoreBehind) -> IngestResult:
    folder = out.parent
    cache_dir = folder / CACHE_NAME
    paths = {"ledger": out, "report": folder / REPORT_NAME,
             "quarantine": folder / QUARANTINE_NAME, "quarantine_xlsx": folder / QUARANTINE_XLSX}
    stats = folder_stats(directory)
    fingerprint = SourceCache(cache_dir, config.sources, cache_key(cache_dir)).fingerprint
    tidy_ledger_folder(out)
    why = ""
    if out.is_file():
        why = (f"{out.name} is one file, as earlier versions wrote the ledger; it is rebuilt as "
               "a folder of month files")
    elif out.exists():
        plan, why = plan_append(directory, cache_dir, paths, fingerprint, stats)
        if plan is not None:
            tables, unrecognised = read_tables(directory, config, cache_dir, set(plan.new),
                                               behind)
            why = check_new(plan, tables)
            if not why:
                return _append(plan, tables, unrecognised, config, paths, cache_dir,
                               fingerprint, stats)
            behind.wait()  # the files just parsed come from the cache in the full read
    tables, unrecognised = read_tables(directory, config, cache_dir, None, behind)
    made = households_from_tables(tables, config)
    report = {
        "files": [_file_entry(t) for t in tables],
        "unrecognised_files": unrecognised,
        **made.report,
        "personal_columns": {"seen": _personal(tables, config), "dropped": True},
    }
    folder.mkdir(parents=True, exist_ok=True)
    forget_state(cache_dir)
    write_parquet_atomic(made.quarantine, paths["quarantine"])
    _atomic(lambda p: write_xlsx(_for_cadres(made.quarantine, _headers(tables)), p,
                                 sheet="隔离记录"), paths["quarantine_xlsx"])
    _atomic(lambda p: write_json(report, p), paths["report"])
    write_ledger_folder(made.ledger, out)
    write_state(cache_dir, fingerprint, stats, file_records(tables), unrecognised, paths)
    return IngestResult(made.ledger, made.quarantine, report, paths,
                        from_cache=sum(t.from_cache for t in tables), rebuilt_because=why)


def _append(plan, tables, unrecognised, config: Config, paths: dict[str, Path],
            cache_dir: Path, fingerprint: str, stats) -> IngestResult:
    """Append the months of ``tables`` (the files added since the last ingest) to its outputs."""
    old_report = json.loads(paths["report"].read_text(encoding="utf-8"))
    old_files = len(old_report["files"])
    if not tables and not unrecognised:
        write_state(cache_dir, fingerprint, stats, {}, [], paths, old=plan.state)
        return IngestResult(pd.DataFrame(), pd.read_parquet(paths["quarantine"]), old_report,
                            paths, from_cache=old_files)
    forget_state(cache_dir)
    records, entries = file_records(tables), [_file_entry(t) for t in tables]
    personal, headers = _personal(tables, config), _headers(tables)
    months = sorted({t.month for t in tables if t.kind == "persons"})
    from_cache = old_files + sum(t.from_cache for t in tables)
    if tables:
        made = households_from_tables(tables, config)
        new_report, new_ledger, new_quarantine = made.report, made.ledger, made.quarantine
        del made
    else:
        new_report, new_ledger = None, None
        new_quarantine = pd.read_parquet(paths["quarantine"]).iloc[:0]
    tables.clear()  # the parsed files are not needed while the months are written
    if new_ledger is not None:
        new_ledger, households = append_months(paths["ledger"], new_ledger,
                                               old_report["households"])
        report = merge_report(old_report, new_report, entries, unrecognised, personal,
                              households, config.sources)
    else:
        report = {**old_report, "unrecognised_files": sorted(
            old_report["unrecognised_files"] + unrecognised, key=lambda f: f["path"])}
    quarantine = merge_quarantine(paths["quarantine"], new_quarantine)
    headers = [(p, e["headers"]) for p, e in plan.state["files"].items() if e["kind"]] \
        + headers
    write_parquet_atomic(quarantine, paths["quarantine"])
    _atomic(lambda p: write_xlsx(_for_cadres(quarantine, headers), p, sheet="隔离记录"),
            paths["quarantine_xlsx"])
    _atomic(lambda p: write_json(report, p), paths["report"])
    write_state(cache_dir, fingerprint, stats, records, unrecognised, paths, old=plan.state)
    return IngestResult(new_ledger if new_ledger is not None else pd.DataFrame(), quarantine,
                        report, paths, from_cache=from_cache, appended=months)


def _file_entry(t) -> dict:
    return {"path": t.path, "sheet": t.sheet, "kind": t.kind, "month": t.month,
            "rows": len(t.frame), "sha256": t.sha256}


def _personal(tables, config: Config) -> list[str]:
    return sorted({t.headers[f] for t in tables for f in config.sources.personal
                   if f in t.headers})


def _headers(tables) -> list[tuple[str, dict]]:
    return [(t.path, t.headers) for t in tables]


def _atomic(write, path: Path) -> None:
    tmp = temp_beside(path)
    try:
        write(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)


def _for_cadres(quarantine: pd.DataFrame, headers: list[tuple[str, dict]]) -> pd.DataFrame:
    """The quarantine with Chinese headers, the column as the file writes it, each rule
    explained (``headers``: each file's path and its fields' headers)."""
    written = pd.DataFrame([(path, f, h) for path, fields in headers for f, h in fields.items()],
                           columns=["file", "field", "header"]).drop_duplicates(["file", "field"])
    header = quarantine[["file", "field"]].merge(written, on=["file", "field"], how="left")
    table = pd.DataFrame({
        "file": quarantine["file"], "sheet": quarantine["sheet"], "row": quarantine["row"],
        "month": quarantine["month"], "household_id": quarantine["household_id"],
        "column": header["header"].fillna(header["field"]).to_numpy(),
        "value": quarantine["value"],
        "rule_zh": quarantine["rule"].map(RULES_ZH),
        "rule": quarantine["rule"],
    })
    return table.rename(columns=_XLSX_HEADERS)
