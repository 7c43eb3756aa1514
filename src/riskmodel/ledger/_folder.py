"""A ledger kept as a folder of month files, and the Parquet reading common to it and to one file.

``riskmodel ingest`` writes its ledger as a folder named like a file (``ledger.parquet/``)
holding one file per month, ``YYYY-MM.parquet``, each with every ledger column and its rows
sorted by household: the layout Spark and pyarrow read as one dataset. Appending a month writes
only the new month's file; the old ones never change.

Readers treat the month files in name order as one table: rows are numbered consecutively
across the files (``source_row`` 0 is the first row of the first month file). Names starting
with ``.`` or ``_`` are skipped (a file being written, Spark's markers); any other name, or a
folder without a month file, is refused.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import LedgerError
from ._outputs import PARQUET_OPTIONS, fsync_path, temp_beside

#: A month file's name in a ledger folder.
MONTH_FILE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])\.parquet$")

# Rows decoded at a time when the chunks are read in one pass over the files.
_BATCH_ROWS = 65_536


#: The variable that names Arrow's memory pool (``mimalloc``, ``jemalloc`` or ``system``).
MEMORY_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_memory_pool() -> str:
    """Have Arrow allocate from jemalloc (the C library's allocator where pyarrow is built
    without it) unless ``ARROW_DEFAULT_MEMORY_POOL`` names a pool; return the pool's name.

    pyarrow's default pool on Linux, mimalloc, hands freed pages back to the system and takes
    them again chunk after chunk: scoring 100,000 households (one process, 2,400,000 rows) spent
    12.9–14.7 s of system CPU with it against 3.5 s with jemalloc and 3.7–4.3 s with the C
    library's (user CPU the same, 22–24 s; docs/operations.md). The command line calls this
    before any job; a program that imports the package may call it first too.

    Examples
    --------
    >>> use_memory_pool() in {"jemalloc", "system", "mimalloc"}
    True
    """
    if os.environ.get(MEMORY_POOL_VARIABLE):
        return pa.default_memory_pool().backend_name
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # pyarrow built without jemalloc (Windows, macOS wheels)
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)
    return pool.backend_name


def month_files(path: str | Path) -> list[Path]:
    """The month files of a ledger folder, in name order (the order of the months).

    Parameters
    ----------
    path : str or Path
        A folder of ``YYYY-MM.parquet`` files; names starting with ``.`` or ``_`` are skipped.

    Returns
    -------
    list of Path

    Raises
    ------
    LedgerError
        The folder holds anything else, or no month file.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "ledger.parquet"
    >>> folder.mkdir()
    >>> for name in ["2024-02.parquet", "2024-01.parquet", ".2024-03.parquet.tmp-1"]:
    ...     _ = (folder / name).write_bytes(b"")
    >>> [p.name for p in month_files(folder)]
    ['2024-01.parquet', '2024-02.parquet']
    """
    path = Path(path)
    names = sorted(p.name for p in path.iterdir() if not p.name.startswith((".", "_")))
    other = [n for n in names if not MONTH_FILE.match(n) or not (path / n).is_file()]
    if other:
        more = f" (and {len(other) - 1} more)" if len(other) > 1 else ""
        raise LedgerError(f"{path}: a ledger folder holds only month files named YYYY-MM.parquet; "
                          f"it also holds {other[0]!r}{more}.")
    if not names:
        raise LedgerError(f"{path}: the folder holds no month file (YYYY-MM.parquet).")
    return [path / n for n in names]


def read_folder(path: str | Path) -> pd.DataFrame:
    """A ledger folder's month files read as pandas reads each, concatenated in name order."""
    return pd.concat([pd.read_parquet(p) for p in month_files(path)], ignore_index=True)


class ParquetParts:
    """One Parquet file, or a ledger folder's month files in name order, read as one table.

    Rows are numbered consecutively across the files; ``pieces`` are the (file, row group)
    pairs in that order, so that a set of rows is read from the row groups holding it only.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.paths = month_files(self.path) if self.path.is_dir() else [self.path]
        self.reopen()
        names = self.files[0].schema_arrow.names
        for p, f in zip(self.paths[1:], self.files[1:], strict=True):
            if f.schema_arrow.names != names:
                raise LedgerError(f"{p}: its columns are not those of {self.paths[0].name}; "
                                  "every month file of a ledger folder has the same columns.")
        self.schema = self.files[0].schema_arrow
        pieces = [(i, g, f.metadata.row_group(g).num_rows)
                  for i, f in enumerate(self.files) for g in range(f.num_row_groups)]
        self.pieces = np.array(pieces, dtype="int64").reshape(-1, 3)
        self.piece_start = np.concatenate([[0], np.cumsum(self.pieces[:, 2])])
        self.file_start = np.concatenate(
            [[0], np.cumsum([f.metadata.num_rows for f in self.files])])
        self.num_rows = int(self.file_start[-1])

    def reopen(self) -> None:
        """Open the files (again: a forked process reads through its own handles)."""
        self.files = []
        for p in self.paths:
            try:
                self.files.append(pq.ParquetFile(p))
            except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
                raise LedgerError(f"{p}: cannot be read as parquet "
                                  f"({exc.__class__.__name__}).") from None

    def head(self) -> pa.RecordBatch | None:
        """The first row (None when no file has a row)."""
        for f in self.files:
            batch = next(f.iter_batches(batch_size=1), None)
            if batch is not None:
                return batch
        return None

    def columns(self) -> pd.DataFrame:
        """The columns alone, no row."""
        return self.schema.empty_table().to_pandas()

    def read(self, columns: list[str], rows: np.ndarray | None = None) -> pa.Table:
        """``columns`` of every row, or of the rows where ``rows`` (one flag per row); the
        files without a wanted row are not read."""
        parts = []
        for i, f in enumerate(self.files):
            s, e = self.file_start[i], self.file_start[i + 1]
            if rows is not None and not rows[s:e].any():
                continue
            table = f.read(columns=columns)
            parts.append(table if rows is None else table.filter(pa.array(rows[s:e])))
        if not parts:
            return self.schema.empty_table().select(columns)
        return pa.concat_tables(parts, promote_options="permissive")

    def take(self, rows: np.ndarray, columns: list[str]) -> pa.Table:
        """``columns`` of the rows numbered ``rows``, in that order: only the row groups holding
        them are read."""
        rows = np.asarray(rows, dtype="int64")
        at = np.searchsorted(self.piece_start, rows, side="right") - 1
        used = np.unique(at)
        tables = [self.files[self.pieces[p, 0]].read_row_group(int(self.pieces[p, 1]),
                                                               columns=columns) for p in used]
        if not tables:
            return self.schema.empty_table().select(columns)
        table = pa.concat_tables(tables, promote_options="permissive")
        # Rows numbered within the groups read, which follow each other in the table.
        offset = np.concatenate([[0], np.cumsum(self.pieces[used, 2])])
        which = np.searchsorted(used, at)
        return table.take(pa.array(rows - self.piece_start[used[which]] + offset[which]))

    def read_rows(self, wanted: np.ndarray) -> pa.Table | None:
        """Every column of the rows where ``wanted``, skipping row groups without one; None
        when no row is wanted."""
        parts = []
        for p, (i, group, size) in enumerate(self.pieces):
            start = self.piece_start[p]
            mask = wanted[start:start + size]
            if not mask.any():
                continue
            at = 0
            for batch in self.files[i].iter_batches(batch_size=262_144, row_groups=[int(group)]):
                keep = mask[at:at + batch.num_rows]
                if keep.all():
                    parts.append(batch)
                elif keep.any():
                    parts.append(batch.filter(pa.array(keep)))
                at += batch.num_rows
        return _table(parts)

    def constant_text(self, column: str) -> list[str] | None:
        """Each file's one value of the text ``column``, where every file's row groups'
        statistics say that every row holds it (no null, the minimum the maximum, as a ledger
        folder's ``month`` in each month file); None where some file's statistics do not."""
        kind = self.schema.field(column).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            return None
        values = []
        for f in self.files:
            at = f.schema_arrow.get_field_index(column)
            seen = set()
            for g in range(f.num_row_groups):
                group = f.metadata.row_group(g)
                stats = group.column(at).statistics
                if (group.num_rows == 0 or stats is None or not stats.has_min_max
                        or not stats.has_null_count or stats.null_count != 0
                        or stats.num_values != group.num_rows
                        or not isinstance(stats.min, str) or stats.min != stats.max):
                    return None
                seen.add(stats.min)
            if len(seen) != 1:
                return None
            values.append(seen.pop())
        return values

    def group_statistics(self, column: str) -> list[tuple[object, int]]:
        """Each row group's statistics of ``column`` (None where not written) and its rows."""
        out = []
        at = [f.schema_arrow.get_field_index(column) for f in self.files]
        for i, group, size in self.pieces:
            group = self.files[i].metadata.row_group(int(group))
            out.append((group.column(at[i]).statistics, int(size)))
        return out

    def in_one_pass(self, chunk_of_row: np.ndarray, n_chunks: int, start: int = 0,
                    keys: tuple[str, ...] = (),
                    order=None) -> Iterator[pa.Table | None] | None:
        """The rows of each chunk (``chunk_of_row``: -1 for none), chunk by chunk from chunk
        ``start``, reading every file once; None when some file's rows are not in chunk order
        (then each chunk is read from the row groups holding it).

        A file sorted by household, chunks made of consecutive households, is read this way:
        each chunk's rows follow those of the chunk before in every file, so each file is
        decoded once, a batch at a time, whatever the size of its row groups. The rows of the
        chunks before ``start`` are decoded and passed over.

        ``order``, given, is called with each chunk's number and gives the order its rows are
        put in (positions among the chunk's rows as read), or None to leave them. Text
        columns that are text in every file, but for ``keys`` (columns of nearly as many values
        as rows, as household ids), are read as dictionaries (as Parquet stores them: a few
        place names, months and risk types repeated over many rows) and turned back into text
        after the rows are put in order, so that ordering moves their codes, not their text.
        """
        ends = []
        for i in range(len(self.files)):
            s = self.file_start[i]
            chunk = chunk_of_row[s:self.file_start[i + 1]]
            at = np.flatnonzero(chunk >= 0)
            if np.any(np.diff(chunk[at]) < 0):
                return None
            upto = np.searchsorted(chunk[at], np.arange(n_chunks), side="right")
            ends.append(s + np.where(upto > 0, at[np.maximum(upto - 1, 0)] + 1, 0))
        return self._one_pass(chunk_of_row, n_chunks, ends, start, keys, order)

    def _groups_before(self, i: int, row: int) -> tuple[int, int]:
        """How many of file ``i``'s row groups end at or before the table's row ``row``, and
        their rows."""
        mine = self.pieces[:, 0] == i
        ends = np.cumsum(self.pieces[mine, 2])
        groups = int(np.searchsorted(ends, row - self.file_start[i], side="right"))
        return groups, int(ends[groups - 1]) if groups else 0

    def _text_columns(self, keys: tuple[str, ...]) -> list[str]:
        """The columns that are text in every file, but for ``keys``."""
        schemas = [f.schema_arrow for f in self.files]
        names = []
        for name in (n for n in self.schema.names if n not in keys):
            kinds = [schema.field(name).type for schema in schemas]
            if all(pa.types.is_string(k) or pa.types.is_large_string(k) for k in kinds):
                names.append(name)
        return names

    def _one_pass(self, chunk_of_row, n_chunks, ends, start=0, keys=(),
                  order=None) -> Iterator[pa.Table | None]:
        text = self._text_columns(keys)
        files = [pq.ParquetFile(p, read_dictionary=text) for p in self.paths]
        # Each file is read from the row group holding its first row of chunk ``start``:
        # the row groups before it are not decoded.
        skip = [self._groups_before(i, int(ends[i][start - 1]) if start > 0 else 0)
                for i in range(len(files))]
        batches = [f.iter_batches(batch_size=_BATCH_ROWS,
                                  row_groups=list(range(groups, f.num_row_groups)))
                   for f, (groups, _) in zip(files, skip, strict=True)]
        # Each file's batch being read, and the file row its first row is.
        current: list[pa.RecordBatch | None] = [None] * len(files)
        first = [int(s + rows) for s, (_, rows) in zip(self.file_start[:-1], skip, strict=True)]
        position = list(first)

        def rows_upto(i: int, end: int) -> list[pa.RecordBatch]:
            """File ``i``'s rows from where it stands up to file row ``end``: slices of its
            batches, no copy."""
            out = []
            while position[i] < end:
                if current[i] is None or position[i] >= first[i] + current[i].num_rows:
                    if current[i] is not None:
                        first[i] += current[i].num_rows
                    current[i] = next(batches[i])
                at = position[i] - first[i]
                n = min(end - position[i], current[i].num_rows - at)
                out.append(current[i].slice(at, n))
                position[i] += n
            return out

        for i in range(len(files)) if start > 0 else ():
            rows_upto(i, int(ends[i][start - 1]))  # past the chunks before ``start``
        for k in range(start, n_chunks):
            parts = []
            for i in range(len(files)):
                begin = position[i]
                for part in rows_upto(i, int(ends[i][k])):
                    keep = chunk_of_row[begin:begin + part.num_rows] == k
                    begin += part.num_rows
                    if keep.all():
                        parts.append(part)
                    elif keep.any():
                        parts.append(part.filter(pa.array(keep)))
            table = _table(parts)
            if table is not None:
                wanted = None if order is None else order(k)
                if wanted is not None:
                    table = table.combine_chunks().take(pa.array(wanted))
                table = _as_text(table, text)
            yield table


def _as_text(table: pa.Table, columns: list[str]) -> pa.Table:
    """``table`` with ``columns``, read as dictionaries, decoded into their values."""
    arrays = [c.cast(c.type.value_type) if name in columns and pa.types.is_dictionary(c.type)
              else c for name, c in zip(table.schema.names, table.columns, strict=True)]
    return pa.Table.from_arrays(arrays, names=table.schema.names,
                                metadata=table.schema.metadata)


def _table(parts: list[pa.RecordBatch]) -> pa.Table | None:
    if not parts:
        return None
    return pa.concat_tables([pa.Table.from_batches([b]) for b in parts],
                            promote_options="permissive")


def factorized_by_file(column: pa.ChunkedArray,
                        file_start: np.ndarray) -> tuple[np.ndarray, object, int]:
    """What ``pd.factorize`` gives of ``column`` (each row's code, -1 where null; the values in
    order of first appearance), and how many times the codes repeat. When every file holds the
    ids of the first, in the same order (a household each month), the first file is factorized
    and its codes stand for every file's (repeated once per file); otherwise the codes are the
    whole column's (repeated once)."""
    bounds = list(zip(file_start[:-1].tolist(), file_start[1:].tolist(), strict=True))
    first = column.slice(0, bounds[0][1]) if bounds else None
    if first is None or not all(column.slice(s, e - s).equals(first) for s, e in bounds[1:]):
        return (*pd.factorize(column.to_pandas()), 1)
    codes, uniques = pd.factorize(first.to_pandas())
    return codes, uniques, len(bounds)


def month_file(folder: str | Path, month: str) -> Path:
    """The file of ``month`` (``YYYY-MM``) in a ledger folder."""
    return Path(folder) / f"{month}.parquet"


def write_month_file(table: pa.Table, path: str | Path) -> Path:
    """Write one month's rows as Parquet with the fixed settings (``PARQUET_OPTIONS``) to a
    hidden name beside ``path`` (readers skip it), then rename it into place."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)
        fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)
    return path


def by_month(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """Each month (``YYYY-MM`` in ``month``) of ``table`` and its rows, in their order."""
    months = table.column("month")
    if months.null_count:
        raise ValueError("Got rows without a month; every row of a ledger folder has one.")
    codes = pc.dictionary_encode(months).combine_chunks()
    names = np.asarray(codes.dictionary.to_pylist(), dtype=object)
    index = codes.indices.to_numpy()
    order = np.argsort(names)
    rank = np.empty(len(names), dtype="int64")
    rank[order] = np.arange(len(names))
    rows = np.argsort(rank[index], kind="stable")
    bounds = np.searchsorted(rank[index][rows], np.arange(len(names) + 1))
    # A month's rows at a time: one month copied, not the whole table.
    for k, name in enumerate(names[order]):
        yield str(name), table.take(pa.array(rows[bounds[k]:bounds[k + 1]]))


def write_ledger_folder(frame: pd.DataFrame | pa.Table, path: str | Path) -> list[Path]:
    """Write a ledger as a folder of month files, built beside ``path`` and swapped in.

    Each month's rows keep their order (a ledger sorted by household gives month files sorted
    by household). Whatever was at ``path`` (a folder, or a ledger of one file) is replaced
    only once the new folder is whole.

    Parameters
    ----------
    frame : DataFrame or pyarrow.Table
        The ledger, one ``month`` (``YYYY-MM``) per row; a frame is written without its index.
    path : str or Path

    Returns
    -------
    list of Path
        The month files, in month order.

    Examples
    --------
    >>> import tempfile
    >>> from riskmodel.synthetic import generate_ledger
    >>> out = Path(tempfile.mkdtemp()) / "ledger.parquet"
    >>> [p.name for p in write_ledger_folder(generate_ledger(5, 2, seed=1), out)]
    ['2022-01.parquet', '2022-02.parquet']
    """
    path = Path(path)
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(
        frame, preserve_index=False)
    building = temp_beside(path)
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        for month, rows in by_month(table):
            target = month_file(building, month)
            pq.write_table(rows, target, **PARQUET_OPTIONS)
            fsync_path(target)
        fsync_path(building)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(building, path)
            _remove(old)
        else:
            os.replace(building, path)
        fsync_path(path.parent)
    finally:
        _remove(building)
    return month_files(path)


def tidy_ledger_folder(path: str | Path) -> None:
    """Remove what a killed writer of the ledger ``path`` left: the folder being built or
    the one being replaced beside it, month files half-written inside it. Only safe while
    holding the output folder's lock."""
    path = Path(path)
    for stale in [*path.parent.glob(f".{path.name}.tmp-*"),
                  *path.parent.glob(f".{path.name}.old-*")]:
        _remove(stale)
    if path.is_dir():
        for stale in path.glob(".????-??.parquet.tmp-*"):
            stale.unlink(missing_ok=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
