"""A ledger file read household-chunk by household-chunk, so that memory is bounded by a chunk.

The scoring job and the plans read a province-sized ledger this way: every chunk holds every
row of its households (the history features need), and each row keeps its number in the file
so that a rejected row can be reported where the operator will find it.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import LedgerError
from .labels import month_index, month_label
from .ledger import empty_quarantine, normalise_columns, parse_months, read_ledger, validate_ledger


class LedgerChunks:
    """A ledger file read household-chunk by household-chunk, keeping file row numbers.

    Planning reads only the household and month columns; each chunk then holds every row of
    its households. Parquet is read again per chunk (row groups without the chunk's rows are
    skipped), so memory is bounded by a chunk, not by the file; CSV and Excel files are
    county-sized and read once.
    """

    def __init__(self, path: str | Path, chunk_households: int):
        self.path = Path(path)
        self._raw: pd.DataFrame | None = None
        self._file = None
        if self.path.suffix.lower() == ".parquet" and self.path.is_file():
            import pyarrow.parquet as pq

            try:
                self._file = pq.ParquetFile(self.path)
                head = next(self._file.iter_batches(batch_size=1), None)
            except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
                raise LedgerError(f"{self.path}: cannot be read as parquet "
                                  f"({exc.__class__.__name__}).") from None
            if head is None:
                raise LedgerError(f"{self.path}: the file has no rows.")
            # Without the pandas metadata: a frame saved after filtering rows stores its index
            # as a column (``__index_level_0__``), which must keep its place among the names.
            names = normalise_columns(head.to_pandas(ignore_metadata=True),
                                      source=str(self.path)).columns
            raw_name = dict(zip(names, self._file.schema_arrow.names, strict=True))
            table = self._file.read(columns=[raw_name["household_id"], raw_name["month"]])
            ids, months = (table.column(i).to_pandas() for i in range(2))
        else:
            self._raw = read_ledger(self.path)
            ids, months = self._raw["household_id"], self._raw["month"]
        self.n_rows = len(ids)

        codes, uniques = pd.factorize(months)
        parsed, _ = parse_months(pd.Series(uniques))
        readable = parsed.notna().to_numpy()
        index = np.full(len(uniques) + 1, -1, dtype="int64")
        index[:-1][readable] = month_index(parsed[readable])
        self.month_of_row = index[codes]
        self.months = [str(month_label(m)) for m in np.unique(index[:-1][readable])]

        codes, uniques = pd.factorize(ids)
        keys, names = pd.factorize(pd.Series(uniques, dtype="string").str.strip())
        household = np.append(keys, -1)[codes]  # -1: no household id
        self._household_of_row = household.astype("int32")
        self._households = pd.Index(names)
        # Rows without a household id go with the first chunk (and are quarantined there).
        self.chunk_of_row = (np.maximum(household, 0) // chunk_households).astype("int32")
        self.n_chunks = int(self.chunk_of_row.max()) + 1 if self.n_rows else 0

    @property
    def households(self) -> pd.Index:
        """The file's household ids, without surrounding spaces, in order of first appearance."""
        return self._households

    def rows_in(self, month: str) -> int:
        """Rows of ``month``, counting rows whose month cannot be read (they may belong to it)."""
        t = int(month_index(pd.Series([month]))[0])
        return int(np.count_nonzero((self.month_of_row == t) | (self.month_of_row < 0)))

    def __iter__(self) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        for k in range(self.n_chunks):
            rows = np.flatnonzero(self.chunk_of_row == k)
            if self._raw is not None:
                yield rows, self._raw.iloc[rows].reset_index(drop=True)
            else:
                yield rows, self._read(k)

    def rows_of(self, households) -> pd.DataFrame:
        """Every row of the given households (ids as validated, without surrounding spaces),
        in file order, in one pass over the file."""
        found = self._households.get_indexer(pd.Index(list(households), dtype="string"))
        mask = np.isin(self._household_of_row, found[found >= 0])
        if self._raw is not None:
            return self._raw.iloc[np.flatnonzero(mask)].reset_index(drop=True)
        return self._read_rows(mask)

    def _read(self, k: int) -> pd.DataFrame:
        return self._read_rows(self.chunk_of_row == k)

    def _read_rows(self, wanted: np.ndarray) -> pd.DataFrame:
        """The file's rows where ``wanted`` (one flag per row), skipping row groups without."""
        import pyarrow as pa

        parts, start = [], 0
        for group in range(self._file.num_row_groups):
            size = self._file.metadata.row_group(group).num_rows
            mask = wanted[start:start + size]
            if mask.any():
                at = 0
                for batch in self._file.iter_batches(batch_size=262_144, row_groups=[group]):
                    keep = mask[at:at + batch.num_rows]
                    if keep.any():
                        parts.append(batch.filter(pa.array(keep)))
                    at += batch.num_rows
            start += size
        if not parts:  # no row wanted: the columns alone
            head = next(self._file.iter_batches(batch_size=1)).to_pandas()
            return normalise_columns(head, source=str(self.path)).iloc[:0]
        return normalise_columns(pa.Table.from_batches(parts).to_pandas(), source=str(self.path))


@dataclass
class FileValidation:
    """What :func:`validate_file` made of a ledger file (the valid rows themselves are written,
    not kept)."""

    n_in: int
    n_valid: int
    quarantine: pd.DataFrame
    missing_optional: list[str] = field(default_factory=list)
    counts_by_rule: dict[str, int] = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        return self.n_in == self.n_valid + len(self.quarantine)


def validate_file(path: str | Path, chunk_households: int,
                  out: str | Path | None = None) -> FileValidation:
    """Validate a ledger file chunk by chunk of households, so memory is bounded by a chunk.

    With ``out``, writes ``valid.parquet`` (the valid rows household by household, in the
    order households first appear in the file, each household's months in order) and
    ``quarantine.parquet`` (the rejected rows with their rules, ``source_row`` numbering the
    file's rows from 0), each renamed into place only when whole.
    """
    from .outputs import AtomicParquetWriter, write_parquet_atomic

    chunks = LedgerChunks(path, chunk_households)
    n_in = n_valid = 0
    quarantined, missing = [], []
    counts: Counter = Counter()
    writer = contextlib.nullcontext()
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        # The columns of a file without rows (a CSV of headers only) come from validating it.
        empty = validate_ledger(chunks._raw).valid if chunks.n_chunks == 0 else None
        writer = AtomicParquetWriter(Path(out) / "valid.parquet", empty)
    with writer:
        for rows, raw in chunks:
            result = validate_ledger(raw)
            del raw
            quarantine = result.quarantine
            quarantine["source_row"] = rows[quarantine["source_row"].to_numpy(dtype="int64")]
            quarantined.append(quarantine)
            counts.update(result.counts_by_rule)
            n_in += result.n_in
            n_valid += len(result.valid)
            missing = result.missing_optional
            if out is not None:
                writer.write(result.valid)
    quarantine = (pd.concat(quarantined, ignore_index=True).sort_values(
        "source_row", ignore_index=True) if quarantined else empty_quarantine())
    if out is not None:
        write_parquet_atomic(quarantine, Path(out) / "quarantine.parquet")
    result = FileValidation(n_in, n_valid, quarantine, missing, dict(counts.most_common()))
    assert result.reconciles, "validation lost rows"
    return result
