"""A ledger file read household-chunk by household-chunk, so that memory is bounded by a chunk.

The scoring job and the plans read a province-sized ledger this way: every chunk holds every
row of its households (the history features need), and each row keeps its number in the file
so that a rejected row can be reported where the operator will find it. Blank rows (every field
empty, as spreadsheets export them) hold no household: they are in no chunk and no month, and
are counted and logged instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import LedgerError
from ..months import month_index, month_label
from ._read import LedgerSource, normalise_columns, read_source, sheet_to_read
from ._validate import (
    LEDGER_COLUMNS,
    OPTIONAL_COUNTS,
    PLACE,
    VALUE_NEEDED,
    blank_rows,
    empty_cells,
    empty_quarantine,
    household_ids,
    parse_months,
    unfilled_optional_counts,
    validate_ledger,
    warn_blank_rows,
)

logger = logging.getLogger(__name__)


class LedgerChunks:
    """A ledger file read household-chunk by household-chunk, keeping file row numbers.

    Planning reads only the household and month columns; each chunk then holds every row of
    its households. Parquet is read again per chunk (row groups without the chunk's rows are
    skipped), so memory is bounded by a chunk, not by the file; CSV and Excel files are
    county-sized and read once.

    Blank rows (every field empty) are in no chunk and no month: ``n_rows`` counts the other
    rows, ``blank_rows`` numbers the blank ones (from 0, as ``source_row`` does) and a warning
    is logged when there are any.

    ``sheet`` names a workbook's ledger sheet (see :func:`riskmodel.ledger.read_source`);
    ``source`` says how the file was read (its encoding, sheet and title rows).
    """

    def __init__(self, path: str | Path, chunk_households: int, sheet: str | None = None):
        self.path = Path(path)
        self.unfilled: list[str] = []
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
            sheet_to_read(self.path, sheet)  # a Parquet file has no sheets: refused
            self.source = LedgerSource("parquet", headers=raw_name)
        else:
            self._raw, self.source = read_source(self.path, sheet=sheet)
            ids, months = self._raw["household_id"], self._raw["month"]
            raw_name = None

        codes, uniques = pd.factorize(months)
        parsed, _ = parse_months(pd.Series(uniques))
        readable = parsed.notna().to_numpy()
        index = np.full(len(uniques) + 1, -1, dtype="int64")
        index[:-1][readable] = month_index(parsed[readable])
        self.month_of_row = index[codes]
        self.months = [str(month_label(m)) for m in np.unique(index[:-1][readable])]
        no_month = np.append(empty_cells(pd.Series(uniques)), True)[codes]

        codes, uniques = pd.factorize(ids)
        # As validation reads them: an id in full-width digits is the same household.
        keys, names = pd.factorize(household_ids(pd.Series(uniques)))
        household = np.append(keys, -1)[codes]  # -1: no household id
        self._household_of_row = household.astype("int32")
        self._households = pd.Index(names)
        self._blank = self._find_blank((household < 0) & no_month)
        self.blank_rows = np.flatnonzero(self._blank)
        self.n_rows = len(ids) - len(self.blank_rows)
        if not self.n_rows:
            raise LedgerError(f"{self.path}: the file has no rows; its {len(ids):,} rows are "
                              "blank (every field empty).")
        warn_blank_rows(self.path, self.blank_rows)
        self._raw_name = raw_name
        self.unfilled = self._unfilled(raw_name)
        if self.unfilled:
            logger.warning("%s: optional column(s) present but empty in every row, read as "
                           "absent: %s", self.path, ", ".join(self.unfilled))
            if self._raw is not None:
                self._raw = self._raw.drop(columns=self.unfilled)
        # Rows without a household id go with the first chunk (and are quarantined there);
        # blank rows go with none.
        chunk = np.maximum(household, 0) // chunk_households
        self.chunk_of_row = np.where(self._blank, -1, chunk).astype("int32")
        self.n_chunks = int(self.chunk_of_row.max()) + 1

    @property
    def households(self) -> pd.Index:
        """The file's household ids, without surrounding spaces (full-width folded), in order of
        first appearance."""
        return self._households

    def locate(self, source_rows) -> pd.DataFrame:
        """Where the rows numbered ``source_rows`` are for the county: ``file_row``, the row
        number a spreadsheet shows (title lines and header counted, from 1; see
        :attr:`riskmodel.ledger.LedgerSource.first_row`), and the row's ``county``,
        ``township`` and ``village`` as written (stripped). One row per number, in order."""
        rows = np.asarray(source_rows, dtype="int64")
        if self._raw is not None:
            frame = self._raw.iloc[rows][PLACE].reset_index(drop=True)
        else:
            # Only the row groups holding the rows, only the place columns.
            names = [self._raw_name[c] for c in PLACE]
            meta = self._file.metadata
            starts = np.cumsum([0] + [meta.row_group(g).num_rows
                                      for g in range(meta.num_row_groups)])
            groups = np.unique(np.searchsorted(starts, rows, side="right") - 1)
            table = self._file.read_row_groups(groups.tolist(), columns=names)
            # Rows numbered within the groups read, which follow each other in the table.
            offset = np.cumsum([0] + [meta.row_group(g).num_rows for g in groups])
            at = np.searchsorted(groups, np.searchsorted(starts, rows, side="right") - 1)
            local = rows - starts[groups[at]] + offset[at]
            frame = table.take(pa.array(local)).to_pandas().set_axis(PLACE, axis=1)
        text = frame.astype("string").apply(lambda s: s.str.strip())
        text = text.mask(text.eq("").fillna(False))
        return text.assign(file_row=rows + self.source.first_row)[["file_row", *PLACE]]

    def places(self, month: str, columns: list[str]) -> pd.DataFrame:
        """The distinct places (``columns`` of ``PLACE``, stripped) of the rows of ``month``,
        as written, before validation: reads only those columns."""
        t = int(month_index(pd.Series([month]))[0])
        rows = (self.month_of_row == t) & ~self._blank
        if self._raw is not None:
            frame = self._raw.loc[rows, columns]
        else:
            names = [self._raw_name[c] for c in columns]
            # Distinct in Arrow: a province's place names are few, its rows many.
            table = self._file.read(columns=names).filter(pa.array(rows))
            frame = table.group_by(names).aggregate([]).to_pandas()
            frame = frame[names].set_axis(columns, axis=1)
        text = frame.drop_duplicates().astype("string").apply(lambda s: s.str.strip())
        return text.drop_duplicates().reset_index(drop=True)

    def rows_in(self, month: str) -> int:
        """Rows of ``month``, counting rows whose month cannot be read (they may belong to it)
        but not blank rows."""
        t = int(month_index(pd.Series([month]))[0])
        of_month = (self.month_of_row == t) | (self.month_of_row < 0)
        return int(np.count_nonzero(of_month & ~self._blank))

    def _unfilled(self, raw_name: dict[str, str] | None) -> list[str]:
        """Optional counts no row of the file fills (:func:`unfilled_optional_counts`).

        A Parquet file answers from its row groups' statistics where they tell: every value
        null, or a numeric minimum (so a value). Otherwise the column is read and looked at."""
        if self._raw is not None:
            return unfilled_optional_counts(self._raw, self._blank)
        meta = self._file.metadata
        schema = self._file.schema_arrow
        groups = [meta.row_group(g) for g in range(meta.num_row_groups)]
        found = []
        for column in (c for c in OPTIONAL_COUNTS if c in raw_name):
            at = schema.get_field_index(raw_name[column])
            kind = schema.field(at).type
            stats = [g.column(at).statistics for g in groups]
            if pa.types.is_null(kind) or all(
                    s is not None and s.has_null_count and s.null_count == g.num_rows
                    for s, g in zip(stats, groups, strict=True)):
                found.append(column)
            elif (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and any(
                    s is not None and s.has_min_max for s in stats):
                continue
            else:
                values = self._file.read(columns=[raw_name[column]]).column(0).to_pandas()
                if empty_cells(values)[~self._blank].all():
                    found.append(column)
        return found

    def _find_blank(self, candidates: np.ndarray) -> np.ndarray:
        """Which of the rows without a household id and a month have no field at all."""
        blank = candidates.copy()
        at = np.flatnonzero(candidates)
        if len(at):
            rows = self._raw.iloc[at] if self._raw is not None else self._read_rows(candidates)
            blank[at] = blank_rows(rows)
        return blank

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
            frame = normalise_columns(head, source=str(self.path)).iloc[:0]
        else:
            frame = normalise_columns(pa.Table.from_batches(parts).to_pandas(),
                                      source=str(self.path))
        return frame.drop(columns=self.unfilled)


def split_empty_columns(columns: list[str]) -> tuple[list[str], list[str]]:
    """Columns present but empty in every row of a file: those read as unknown, and those
    every row needs a value in (:data:`riskmodel.ledger.VALUE_NEEDED`: each row is
    quarantined). An optional count left empty throughout reads as absent, so as unknown.

    Examples
    --------
    >>> split_empty_columns(["inc_wage", "elderly", "members", "dibao"])
    (['inc_wage', 'elderly', 'dibao'], ['members'])
    """
    needed = set(VALUE_NEEDED) - set(OPTIONAL_COUNTS)
    return [c for c in columns if c not in needed], [c for c in columns if c in needed]


@dataclass
class FileValidation:
    """What :func:`validate_file` made of a ledger file (the valid rows themselves are written,
    not kept).

    ``n_in`` counts the rows holding a record, ``n_blank`` the blank rows skipped (every field
    empty; ``blank_rows`` numbers them as ``source_row`` does): the file has
    ``n_in + n_blank`` rows.
    ``missing_optional`` lists the optional columns absent from the file, ``empty_columns`` the
    contract columns present but without a single value; ``source`` how the file was read
    (:class:`riskmodel.ledger.LedgerSource`: encoding, sheet).
    """

    n_in: int
    n_valid: int
    quarantine: pd.DataFrame
    missing_optional: list[str] = field(default_factory=list)
    counts_by_rule: dict[str, int] = field(default_factory=dict)
    blank_rows: np.ndarray = field(default_factory=lambda: np.array([], dtype="int64"))
    empty_columns: list[str] = field(default_factory=list)
    source: LedgerSource | None = None

    @property
    def n_blank(self) -> int:
        return len(self.blank_rows)

    @property
    def reconciles(self) -> bool:
        return self.n_in == self.n_valid + len(self.quarantine)


def validate_file(path: str | Path, chunk_households: int,
                  out: str | Path | None = None, sheet: str | None = None) -> FileValidation:
    """Validate a ledger file chunk by chunk of households, so memory is bounded by a chunk.

    With ``out``, writes ``valid.parquet`` (the valid rows household by household, in the
    order households first appear in the file, each household's months in order),
    ``quarantine.parquet`` (the rejected rows with their rules, ``source_row`` numbering the
    file's rows from 0) and ``quarantine.xlsx`` (the same rows for the offices that fix them:
    :func:`riskmodel.ledger.write_quarantine_xlsx`), each renamed into place only when whole.
    Blank rows are in neither: they are counted in ``n_blank`` and logged, as are columns
    present but empty. ``sheet`` names a workbook's ledger sheet.
    """
    from ._outputs import AtomicParquetWriter, write_parquet_atomic, write_quarantine_xlsx

    chunks = LedgerChunks(path, chunk_households, sheet=sheet)
    n_in = n_valid = 0
    quarantined, missing = [], []
    empty = set(LEDGER_COLUMNS)
    counts: Counter = Counter()
    writer = contextlib.nullcontext()
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        writer = AtomicParquetWriter(Path(out) / "valid.parquet")
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
            # A column is empty in the file when it is empty in every chunk.
            empty &= set(result.empty_columns)
            if out is not None:
                writer.write(result.valid)
    quarantine = (pd.concat(quarantined, ignore_index=True).sort_values(
        "source_row", ignore_index=True) if quarantined else empty_quarantine())
    if out is not None:
        write_parquet_atomic(quarantine, Path(out) / "quarantine.parquet")
        write_quarantine_xlsx(quarantine, Path(out) / "quarantine.xlsx",
                              chunks.locate(quarantine["source_row"]), chunks.source.headers)
    missing = [c for c in missing if c not in chunks.unfilled]
    empty_columns = [c for c in LEDGER_COLUMNS if c in empty or c in chunks.unfilled]
    unknown, needed = split_empty_columns(empty_columns)
    if unknown:
        logger.warning("%s: column(s) present but empty in every row (read as unknown): %s",
                       chunks.path, ", ".join(unknown))
    if needed:
        logger.warning("%s: column(s) present but empty in every row, which every row needs a "
                       "value in (each row quarantined): %s", chunks.path, ", ".join(needed))
    result = FileValidation(n_in, n_valid, quarantine, missing, dict(counts.most_common()),
                            chunks.blank_rows, empty_columns, chunks.source)
    assert result.reconciles, "validation lost rows"
    return result


def sample_households(households: pd.Series | np.ndarray, share: float) -> np.ndarray:
    """A fixed pseudo-random share of households, by a hash of ``household_id``: the same
    households are drawn whatever the ledger's row order or partition."""
    if share >= 1:
        return np.ones(len(households), dtype=bool)
    hashed = pd.util.hash_array(np.asarray(households, dtype=object))
    return hashed < np.uint64(share * float(2**64 - 1))
