"""The appending ingest: last month's ledger kept, the files added since parsed alone.

A full ingest leaves beside its outputs, in the cache folder, ``ingest_state.json``: every file
of the folder as it was read (size, modification time, SHA-256, kind, download month, headers,
the last month its rows reach), the outputs as written (size, modification time; the ledger's
by month file) and a
fingerprint of the ``sources`` configuration and of the pseudonym key. The next ingest over the
same outputs reads that state and appends when it still describes the folder and the outputs:

- every file it lists is there unchanged (same size and time, or else the same SHA-256);
- the ledger, report and quarantine beside are the ones it wrote; the configuration is the same;
- the files added since are of months after the last month the old ones reach, and a person
  table is among them.

Then only the added files are parsed and aggregated (memory bounded by the new months), and only
the new months' files are written into the ledger folder (the old month files are read for the
household column and, for the households still without one, their last annual figures; never
written): each the same file, byte for byte, as a full ingest of the whole folder writes. The
report and the quarantine are the old ones with the new months' counts added.
Anything else (no state, a file changed or removed, another configuration, a new file of an old
month) rebuilds the ledger from the whole folder and says why.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..config import SourcesConfig
from ..errors import LedgerError
from ..ledger import (
    by_month,
    fsync_path,
    month_file,
    month_files,
    temp_beside,
    write_month_file,
)
from ..months import month_index, month_label
from . import _values as values
from ._households import ANNUAL, recorded_month
from ._read import SourceTable, _sha256, _source_files

#: The state a full or appending ingest leaves in the cache folder.
STATE_NAME = "ingest_state.json"
STATE_FORMAT = 2


def folder_stats(directory: Path) -> dict[str, tuple[int, int]]:
    """Every source file of the folder (as :func:`read_sources` finds them): relative path ->
    (size, modification time in ns)."""
    stats = {}
    for path in _source_files(directory):
        st = path.stat()
        stats[path.relative_to(directory).as_posix()] = (st.st_size, st.st_mtime_ns)
    return stats


def reach(table: SourceTable, last: bool = True) -> str | None:
    """The last (``last``) or first month a table's rows count in: its download month, or for
    a warning list each row's month (the later of 预警月份 and the download month); None for a
    warning list none of whose rows has a month."""
    if table.kind != "warnings":
        return table.month
    said = values.parse_months("warning_month", values.column(table.frame, "warning_month"),
                               values.Unknown())
    said = np.asarray(said, dtype="int64")
    if table.month is not None:
        file_month = int(table.month[:4]) * 12 + int(table.month[5:7]) - 1
        said = np.maximum(said, file_month)
    said = said[said >= 0]
    if not len(said):
        return table.month
    return str(month_label(said.max() if last else said.min()))


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def output_stats(outputs: dict[str, Path]) -> dict[str, list[int]]:
    """Each output's size and modification time; a ledger folder's by month file
    (``ledger/2024-01.parquet``)."""
    stats = {}
    for name, path in sorted(outputs.items()):
        if path.is_dir():
            stats.update({f"{name}/{f.name}": _stat(f) for f in month_files(path)})
        else:
            stats[name] = _stat(path)
    return stats


def file_records(tables: list[SourceTable]) -> dict[str, dict]:
    """What the state keeps of each table read (no row of it): path -> kind, month, sheet,
    SHA-256, headers and the last month its rows reach."""
    return {t.path: {"kind": t.kind, "month": t.month, "sheet": t.sheet, "sha256": t.sha256,
                     "headers": t.headers, "reach": reach(t)} for t in tables}


def write_state(cache_dir: Path, fingerprint: str, stats: dict[str, tuple[int, int]],
                records: dict[str, dict], unrecognised: list[dict], outputs: dict[str, Path],
                old: dict | None = None) -> None:
    """Record what this ingest read and wrote, for the next one to append to.

    ``stats`` are the files' size and time taken before they were read; ``records`` the
    tables read (:func:`file_records`); ``old`` the state of the ingest appended to, whose
    files stay listed.
    """
    files = dict(old["files"]) if old else {}
    files.update(records)
    for u in unrecognised:
        files[u["path"]] = {"kind": None, "reason": u["reason"], "sha256": None}
    for path, entry in files.items():
        if path in stats:
            entry["stat"] = list(stats[path])
    reached = [e["reach"] for e in files.values() if e["kind"] and e["reach"]]
    state = {"format": STATE_FORMAT, "fingerprint": fingerprint,
             "last_month": max(reached) if reached else None,
             "outputs": output_stats(outputs),
             "files": dict(sorted(files.items()))}
    path = cache_dir / STATE_NAME
    tmp = temp_beside(path)
    try:
        tmp.write_text(json.dumps(state, ensure_ascii=False, sort_keys=True), encoding="utf-8")
        os.chmod(tmp, 0o600)
        fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(cache_dir)


def recorded_contents(cache_dir: Path) -> set[str] | None:
    """The SHA-256 of every file the last ingest's state lists (the folder's files as it read
    them), or None without a readable state."""
    try:
        state = json.loads((cache_dir / STATE_NAME).read_text(encoding="utf-8"))
        return {e["sha256"] for e in state["files"].values() if e.get("sha256")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def forget_state(cache_dir: Path) -> None:
    """Remove the state before outputs are replaced: a run stopped half-way leaves none, and
    the next ingest rebuilds."""
    (cache_dir / STATE_NAME).unlink(missing_ok=True)


@dataclass
class AppendPlan:
    """An append the state allows: the files added since, and the state appended to."""

    new: list[str]
    state: dict


def plan_append(directory: Path, cache_dir: Path, outputs: dict[str, Path], fingerprint: str,
                stats: dict[str, tuple[int, int]]) -> tuple[AppendPlan | None, str]:
    """Whether the last ingest's state lets this one append, and if not, why not.

    Returns
    -------
    plan : AppendPlan or None
        The files to read, when appending is safe.
    reason : str
        Why the ledger is rebuilt in full (empty when appending).
    """
    try:
        state = json.loads((cache_dir / STATE_NAME).read_text(encoding="utf-8"))
        if state.get("format") != STATE_FORMAT:
            return None, "the last ingest's record is of another format"
    except (OSError, ValueError):
        return None, "no record of the last ingest beside the ledger"
    if state.get("fingerprint") != fingerprint:
        return None, "the sources configuration (or the cache's key) changed since the last ingest"
    for path in outputs.values():
        if not path.exists():
            return None, f"{path.name} is missing"
    try:
        written = output_stats(outputs)
    except (OSError, LedgerError):
        written = {}
    for name, path in outputs.items():
        mine = {k: v for k, v in written.items() if k == name or k.startswith(f"{name}/")}
        if mine != {k: v for k, v in state["outputs"].items()
                    if k == name or k.startswith(f"{name}/")}:
            return None, f"{path.name} is not the one the last ingest wrote"
    for path, entry in state["files"].items():
        if path not in stats:
            return None, f"{path} is no longer in the folder"
        if entry.get("stat") != list(stats[path]):
            # Touched but perhaps the same bytes: the digest decides.
            if entry["sha256"] is None or _sha256(directory / path) != entry["sha256"]:
                return None, f"{path} changed since the last ingest"
    new = [p for p in stats if p not in state["files"]]
    return AppendPlan(new, state), ""


def check_new(plan: AppendPlan, tables: list[SourceTable]) -> str:
    """Why the added files cannot be appended ('' when they can): each must count only in
    months after the last one the old files reach, and a person table must be among them."""
    last = plan.state["last_month"]
    for t in tables:
        first = reach(t, last=False)
        if last is not None and first is not None and first <= last:
            return f"{t.path} is of {first}, not after the ledger's last month {last}"
    if tables and not any(t.kind == "persons" for t in tables):
        return "no person table among the files added since the last ingest"
    return ""


def old_history(files: list[Path], ids: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """What the old month files hold of the households ``ids`` (unique): for each, its last
    row with annual figures (``household_id``, ``annual_recorded_month`` and the figures), and
    whether it has any row at all.

    The files are read newest first, each for the households still in question only (not yet
    seen, or seen without figures so far): the household column, and the figure columns only
    where one of those households has a row. Once every household is seen with its figures,
    the older files are not read.
    """
    columns = [*ANNUAL, "annual_income_year"]
    ids = np.asarray(ids, dtype=object)
    present = np.zeros(len(ids), dtype=bool)
    found = np.zeros(len(ids), dtype=bool)
    pending = np.arange(len(ids))
    last = []
    for path in reversed(files):
        if not len(pending):
            break
        source = pq.ParquetFile(path)
        household = source.read(columns=["household_id"]).column(0).cast(pa.string())
        at = pc.index_in(household, value_set=pa.array(ids[pending], type=pa.string()))
        at = at.to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(~np.isnan(at))
        which = pending[at[rows].astype("int64")]
        present[which] = True
        need, need_which = rows[~found[which]], which[~found[which]]
        if len(need):
            table = source.read(columns=["household_id", "annual_recorded_month", *columns])
            table = table.take(pa.array(need))
            filled = np.zeros(len(need), dtype=bool)
            for c in columns:
                filled |= pc.is_valid(table.column(c)).to_numpy(zero_copy_only=False)
            last.append(table.filter(pa.array(filled)))
            found[need_which[filled]] = True
        pending = pending[~(present[pending] & found[pending])]
    frame = (pa.concat_tables(last, promote_options="permissive").to_pandas() if last else
             pd.DataFrame(columns=["household_id", "annual_recorded_month", *columns]))
    return frame, present


def recorded_months(last: pd.DataFrame, new: pd.DataFrame) -> np.ndarray:
    """``annual_recorded_month`` of the new rows, as the full ingest gives it.

    A run of identical annual figures looks only backwards, so a new row needs no more of its
    household's history than the last old row with figures (``last``, from
    :func:`old_history`): that row stands in with the month its own run began, and
    :func:`recorded_month` is run on it and the new rows alone.
    """
    columns = [*ANNUAL, "annual_income_year"]
    frame = pd.concat([last[["household_id", *columns]], new[["household_id", *columns]]],
                      ignore_index=True)
    months = np.concatenate([month_index(np.asarray(last["annual_recorded_month"], dtype=object)),
                             month_index(np.asarray(new["month"], dtype=object))])
    hcodes = pd.factorize(frame["household_id"])[0]
    order = np.lexsort((months, hcodes))
    label = recorded_month(frame.iloc[order].reset_index(drop=True), hcodes[order],
                           months[order]).to_numpy(dtype=object)
    out = np.empty(len(frame), dtype=object)
    out[order] = label
    return out[len(last):]


def append_months(ledger: Path, new: pd.DataFrame, households: int) -> tuple[pd.DataFrame, int]:
    """Write the months of ``new`` (all after those of the ledger folder ``ledger``) as month
    files beside the old ones, each renamed into place when whole; the old files are read, not
    written.

    Parameters
    ----------
    ledger : Path
        The ledger folder the last ingest wrote.
    new : DataFrame
        The new months' ledger rows, sorted by household and month, as the full ingest makes
        them from the new files alone.
    households : int
        Households in the old ledger (its report's count).

    Returns
    -------
    new : DataFrame
        The new rows, their ``annual_recorded_month`` carried on from the old months.
    households : int
        Households in the ledger with the new months.
    """
    files = month_files(ledger)
    schema = pq.read_schema(files[-1])
    ids = pd.unique(new["household_id"].to_numpy(dtype=object))
    last, present = old_history(files, ids)
    new = new.assign(annual_recorded_month=recorded_months(last, new))
    table = pa.Table.from_pandas(new, schema=schema, preserve_index=False)
    table = table.replace_schema_metadata(schema.metadata)
    for month, rows in by_month(table):
        write_month_file(rows, month_file(ledger, month))
    return new, households + int(np.count_nonzero(~present))


def merge_quarantine(old: Path, new: pd.DataFrame) -> pd.DataFrame:
    """The old quarantine with the new months' rows, in the full ingest's order (file, row)."""
    before = pd.read_parquet(old)
    both = pd.concat([before, new], ignore_index=True) if len(new) else before
    return both.sort_values(["file", "row"], kind="stable").reset_index(drop=True)


def merge_report(old: dict, new: dict, files: list[dict], unrecognised: list[dict],
                 personal: list[str], households: int, sources: SourcesConfig) -> dict:
    """The full ingest's report of the whole folder from the old one and the new months'."""
    unknown = values.Unknown()
    for part in (old["unknown_values"], new["unknown_values"]):
        for name, counts in part.items():
            for value, count in counts.items():
                unknown.counts[name][value] += count
    rules = dict(old["quarantined_by_rule"])
    for rule, count in new["quarantined_by_rule"].items():
        rules[rule] = rules.get(rule, 0) + count
    warnings = {k: old["warnings"][k] + new["warnings"][k]
                for k in ["matched", "unmatched", "no_rule", "unreadable"]}
    departments = {d: dict(c) for d, c in old["warnings"]["by_department"].items()}
    for d, c in new["warnings"]["by_department"].items():
        have = departments.setdefault(d, dict.fromkeys(c, 0))
        for k, v in c.items():
            have[k] = have.get(k, 0) + v
    warnings["by_department"] = dict(sorted(departments.items()))
    summed = ["persons_in", "persons_aggregated", "persons_quarantined", "blank_rows"]
    return {
        "files": sorted(old["files"] + files, key=lambda f: f["path"]),
        "unrecognised_files": sorted(old["unrecognised_files"] + unrecognised,
                                     key=lambda f: f["path"]),
        "months": {**old["months"], **new["months"]},
        **{k: old[k] + new[k] for k in summed},
        "quarantined_by_rule": dict(sorted(rules.items())),
        "unknown_values": unknown.as_dict(list(sources.headers)),
        "warnings": warnings,
        "migrants": {k: old["migrants"][k] + new["migrants"][k] for k in old["migrants"]},
        "households": households,
        "household_months": old["household_months"] + new["household_months"],
        "personal_columns": {"seen": sorted(set(old["personal_columns"]["seen"]) | set(personal)),
                             "dropped": True},
    }
