"""The appending ingest: last month's ledger kept, the files added since parsed alone.

A full ingest leaves beside its outputs, in the cache folder, ``ingest_state.json``: every file
of the folder as it was read (size, modification time, SHA-256, kind, download month, headers,
the last month its rows reach), the outputs as written (size, modification time) and a
fingerprint of the ``sources`` configuration and of the pseudonym key. The next ingest over the
same outputs reads that state and appends when it still describes the folder and the outputs:

- every file it lists is there unchanged (same size and time, or else the same SHA-256);
- the ledger, report and quarantine beside are the ones it wrote; the configuration is the same;
- the files added since are of months after the last month the old ones reach, and a person
  table is among them.

Then only the added files are parsed and aggregated (memory bounded by the new months), and the
ledger is written again by streaming the old row groups once, the new households-months merged
into their place (household, month): the same file, row for row, as a full ingest of the whole
folder gives. The report and the quarantine are the old ones with the new months' counts added.
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
from ..ledger import PARQUET_OPTIONS, fsync_path, temp_beside
from ..months import month_index, month_label
from . import _values as values
from ._households import ANNUAL, recorded_month
from ._read import SourceTable, _sha256, _source_files

#: The state a full or appending ingest leaves in the cache folder.
STATE_NAME = "ingest_state.json"
STATE_FORMAT = 1


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
             "outputs": {name: _stat(path) for name, path in sorted(outputs.items())},
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
    for name, path in outputs.items():
        try:
            if _stat(path) != state["outputs"].get(name):
                return None, f"{path.name} is not the one the last ingest wrote"
        except OSError:
            return None, f"{path.name} is missing"
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


class _RowGroups:
    """Rows handed to a Parquet writer in row groups of exactly ``size`` rows (the last one
    shorter), as :func:`pyarrow.parquet.write_table` cuts one whole table."""

    def __init__(self, writer: pq.ParquetWriter, size: int):
        self.writer, self.size = writer, size
        self.pending: list[pa.Table] = []
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.rows += table.num_rows
        while self.rows >= self.size:
            whole = pa.concat_tables(self.pending)
            self.writer.write_table(whole.slice(0, self.size), row_group_size=self.size)
            rest = whole.slice(self.size)
            self.pending, self.rows = [rest], rest.num_rows

    def close(self) -> None:
        if self.rows:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=self.size)


def _recorded_months(part: pa.Table, added: pa.Table, after: np.ndarray,
                     start: np.ndarray) -> pa.Array:
    """``annual_recorded_month`` of the new rows ``added``, as the full ingest gives it.

    A run of identical annual figures looks only backwards, so a new row needs no more of its
    household's history than the last old row with figures (``part``'s rows of the household
    are ``start:after``): that row stands in with the month its own run began, and
    :func:`recorded_month` is run on it and the new rows alone.
    """
    columns = [*ANNUAL, "annual_income_year"]
    n_old = part.num_rows
    filled = np.zeros(n_old, dtype=bool)
    for c in columns:
        filled |= pc.is_valid(part.column(c)).to_numpy(zero_copy_only=False)
    before = np.full(len(after), -1, dtype="int64")
    if n_old:
        last = np.maximum.accumulate(np.where(filled, np.arange(n_old), -1))
        before = np.where(after > 0, last[np.maximum(after - 1, 0)], -1)
    before = np.where(before >= start, before, -1)
    rows = np.unique(before[before >= 0])
    old = part.take(pa.array(rows)).select(["household_id", "annual_recorded_month", *columns])
    old = old.to_pandas()
    new = added.select(["household_id", "month", *columns]).to_pandas()
    frame = pd.concat([old.drop(columns="annual_recorded_month"),
                       new.drop(columns="month")], ignore_index=True)
    months = np.concatenate([month_index(np.asarray(old["annual_recorded_month"], dtype=object)),
                             month_index(np.asarray(new["month"], dtype=object))])
    hcodes = pd.factorize(frame["household_id"])[0]
    order = np.lexsort((months, hcodes))
    label = recorded_month(frame.iloc[order].reset_index(drop=True), hcodes[order],
                           months[order]).to_numpy(dtype=object)
    out = np.empty(len(frame), dtype=object)
    out[order] = label
    field = part.schema.field("annual_recorded_month")
    return pa.array(out[len(old):], type=field.type, from_pandas=True)


def _merge_part(part: pa.Table, ids: np.ndarray, added: pa.Table,
                added_ids: np.ndarray) -> tuple[pa.Table, int]:
    """Whole households' old rows and their new rows (all of later months) in ledger order,
    and the number of households."""
    after = np.searchsorted(ids, added_ids, side="right")
    start = np.searchsorted(ids, added_ids, side="left")
    at = added.schema.get_field_index("annual_recorded_month")
    added = added.set_column(at, added.schema.field(at),
                             _recorded_months(part, added, after, start))
    n_old, n_new = part.num_rows, added.num_rows
    is_new = np.zeros(n_old + n_new, dtype=bool)
    is_new[after + np.arange(n_new)] = True
    source = np.empty(n_old + n_new, dtype="int64")
    source[is_new] = n_old + np.arange(n_new)
    source[~is_new] = np.arange(n_old)
    merged = pa.concat_tables([part, added]).take(pa.array(source))
    households = (int(1 + np.count_nonzero(ids[1:] != ids[:-1])) if n_old else 0) \
        + len(np.unique(added_ids[after == start]))
    return merged, households


def merge_ledger(old: Path, new: pd.DataFrame, tmp: Path) -> int:
    """Write to ``tmp`` the ledger ``old`` with the household-months of ``new`` (all of months
    after those of ``old``) merged into their place; return the number of households.

    ``old`` is read one row group at a time; a household whose rows continue into the next row
    group waits for it, so that each part written holds whole households, and the new rows of
    the households before the part's last one go with it. Memory: a row group and the new rows.
    """
    source = pq.ParquetFile(old)
    schema = source.schema_arrow
    added = pa.Table.from_pandas(new, schema=schema, preserve_index=False)
    added_ids = new["household_id"].to_numpy(dtype=object)
    options = {k: v for k, v in PARQUET_OPTIONS.items() if k != "row_group_size"}
    households, at, carry = 0, 0, None
    with pq.ParquetWriter(tmp, schema, **options) as writer:
        groups = _RowGroups(writer, PARQUET_OPTIONS["row_group_size"])
        n_groups = source.num_row_groups
        for g in range(n_groups):
            part = source.read_row_group(g)
            if carry is not None:
                part = pa.concat_tables([carry, part])
                carry = None
            ids = part.column("household_id").to_numpy(zero_copy_only=False)
            if g < n_groups - 1:
                # The last household may go on in the next row group: it waits.
                cut = int(np.searchsorted(ids, ids[-1], side="left"))
                carry, part, ids = part.slice(cut), part.slice(0, cut), ids[:cut]
                end = int(np.searchsorted(added_ids, carry.column("household_id")[0].as_py(),
                                          side="left"))
            else:
                end = len(added_ids)
            if not part.num_rows and end == at:
                continue
            part, count = _merge_part(part, ids, added.slice(at, end - at), added_ids[at:end])
            households += count
            at = end
            groups.add(part)
        groups.close()
    fsync_path(tmp)
    return households


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
