"""A ledger file read household-chunk by household-chunk, so that memory is bounded by a chunk.

The scoring job and the plans read a province-sized ledger this way: every chunk holds every
row of its households (the history features need), and each row keeps its number in the file
so that a rejected row can be reported where the operator will find it. Blank rows (every field
empty, as spreadsheets export them) hold no household: they are in no chunk and no month, and
are counted and logged instead.

It is the one way through a ledger: :meth:`LedgerChunks.validated` yields each chunk validated
(:func:`validate_chunk`: its quarantine numbered by file row, the month's rejected rows marked)
and adds it to a :class:`LedgerCounts`, which holds the month to
``scoring.max_quarantine_share`` and decides whether the rows reconcile. ``riskmodel score``
(both engines), ``riskmodel plan`` and ``riskmodel validate`` read a ledger through them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import LedgerError, RiskModelError
from ..months import month_index, month_label
from ._folder import ParquetParts, factorized_by_file
from ._read import LedgerSource, normalise_columns, read_source, sheet_to_read
from ._validate import (
    OPTIONAL_COUNTS,
    PLACE,
    ValidationResult,
    blank_rows,
    empty_cells,
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

    ``path`` may be a ledger folder of month files (:func:`riskmodel.ledger.month_files`), read
    as one table: rows numbered across the files in name order, and households taken in sorted
    order for the chunks, so that each chunk's rows are consecutive in every month file and the
    chunks are read in one pass over the files.

    ``sheet`` names a workbook's ledger sheet (see :func:`riskmodel.ledger.read_source`);
    ``source`` says how the file was read (its encoding, sheet and title rows).
    """

    def __init__(self, path: str | Path, chunk_households: int, sheet: str | None = None):
        self.path = Path(path)
        self.unfilled: list[str] = []
        self._raw: pd.DataFrame | None = None
        self._parts: ParquetParts | None = None
        if self.path.is_dir() or (self.path.suffix.lower() == ".parquet"
                                  and self.path.is_file()):
            self._parts = ParquetParts(self.path)
            try:
                head = self._parts.head()
            except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
                raise LedgerError(f"{self.path}: cannot be read as parquet "
                                  f"({exc.__class__.__name__}).") from None
            if head is None:
                raise LedgerError(f"{self.path}: the file has no rows.")
            # Without the pandas metadata: a frame saved after filtering rows stores its index
            # as a column (``__index_level_0__``), which must keep its place among the names.
            names = normalise_columns(head.to_pandas(ignore_metadata=True),
                                      source=str(self.path)).columns
            raw_name = dict(zip(names, self._parts.schema.names, strict=True))
            # A month file's rows hold its one month: said by the statistics, not read.
            constant = self._parts.constant_text(raw_name["month"])
            wanted = [raw_name["household_id"]] + ([raw_name["month"]] if constant is None
                                                   else [])
            table = self._parts.read(wanted)
            ids = table.column(0)
            months = table.column(1).to_pandas() if constant is None else None
            sheet_to_read(self.path, sheet)  # a Parquet file has no sheets: refused
            self.source = LedgerSource("parquet", headers=raw_name)
        else:
            self._raw, self.source = read_source(self.path, sheet=sheet)
            ids, months = self._raw["household_id"], self._raw["month"]
            raw_name = None

        if months is None:
            # One month a file: each file's month read once, repeated over its rows.
            codes, uniques = self._parts_months(constant, raw_name["month"])
            sizes = np.diff(self._parts.file_start)
        else:
            codes, uniques = pd.factorize(months)
            sizes = None
        parsed, _ = parse_months(pd.Series(uniques))
        readable = parsed.notna().to_numpy()
        index = np.full(len(uniques) + 1, -1, dtype="int64")
        index[:-1][readable] = month_index(parsed[readable])
        no_month = np.append(empty_cells(pd.Series(uniques)), True)
        if sizes is None:
            self.month_of_row, no_month = index[codes], no_month[codes]
        else:
            self.month_of_row = np.repeat(index[codes], sizes)
            no_month = np.repeat(no_month[codes], sizes)
        self.months = [str(month_label(m)) for m in np.unique(index[:-1][readable])]

        # Each file's households, once when every file holds the first file's ids in the same
        # order (``tiles``: the files), then repeated over the files.
        if self._parts is not None:
            codes, uniques, tiles = factorized_by_file(ids, self._parts.file_start)
        else:
            (codes, uniques), tiles = pd.factorize(ids), 1

        def every_file(values: np.ndarray) -> np.ndarray:
            return np.tile(values, tiles) if tiles > 1 else values

        # As validation reads them: an id in full-width digits is the same household.
        keys, names = pd.factorize(household_ids(pd.Series(uniques)))
        household = np.append(keys, -1).astype("int32")[codes]  # -1: no household id
        self._household_of_row = every_file(household)
        self._households = pd.Index(names)
        # Each row's household in the order of the ids (as validation compares them), -1
        # without one: a chunk is handed over in (household, month) order.
        rank = np.empty(len(names) + 1, dtype="int32")
        order = pc.sort_indices(pa.array(np.asarray(names, dtype=object),
                                         type=pa.large_string())).to_numpy()
        rank[order] = np.arange(len(names))
        rank[-1] = -1
        self._rank_of_row = every_file(rank[household])
        self._blank = self._find_blank(every_file(household < 0) & no_month)
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
        if self.path.is_dir():
            # Each month file is sorted by household: chunks of households consecutive in that
            # order are consecutive rows of every file, read in one pass over the files.
            rank = np.empty(len(names), dtype="int32")
            rank[np.argsort(np.asarray(names, dtype=object), kind="stable")] = \
                np.arange(len(names))
            chunk = np.append(rank, 0)[household] // chunk_households
        self.chunk_of_row = every_file(chunk.astype("int32"))
        if len(self.blank_rows):
            self.chunk_of_row[self.blank_rows] = -1
        self.n_chunks = int(self.chunk_of_row.max()) + 1

    def _parts_months(self, constant: list[str], column: str) -> tuple[np.ndarray, object]:
        """What ``pd.factorize`` gives of a month column whose every file holds one value
        (``constant``, one per file), a code per FILE: each file's code, the values in order of
        appearance."""
        uniques = list(dict.fromkeys(constant))
        code = {value: k for k, value in enumerate(uniques)}
        codes = np.array([code[v] for v in constant], dtype="intp")
        dtype = self._parts.schema.empty_table().column(column).to_pandas().dtype
        return codes, pd.array(uniques, dtype=dtype)

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
            table = self._parts.take(rows, [self._raw_name[c] for c in PLACE])
            frame = table.to_pandas().set_axis(PLACE, axis=1)
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
            table = self._parts.read(names, rows)
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
        schema = self._parts.schema
        found = []
        for column in (c for c in OPTIONAL_COUNTS if c in raw_name):
            kind = schema.field(raw_name[column]).type
            stats = self._parts.group_statistics(raw_name[column])
            if pa.types.is_null(kind) or all(
                    s is not None and s.has_null_count and s.null_count == rows
                    for s, rows in stats):
                found.append(column)
            elif (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and any(
                    s is not None and s.has_min_max for s, _ in stats):
                continue
            else:
                values = self._parts.read([raw_name[column]]).column(0).to_pandas()
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

    def reopen(self) -> None:
        """Open a Parquet ledger's files again: a forked process reads through its own
        handles."""
        if self._parts is not None:
            self._parts.reopen()

    def __iter__(self) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        return self.read_chunks()

    def read_chunks(self, start: int = 0,
                    stop: int | None = None) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        """Chunks ``start`` to ``stop`` (exclusive; the last when None), in order: each
        chunk's row numbers and rows, as iterating over the chunks gives them."""
        stop = self.n_chunks if stop is None else min(stop, self.n_chunks)
        one_pass = None
        ordered: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}

        def key_order(k: int) -> np.ndarray | None:
            rows = np.flatnonzero(self.chunk_of_row == k)
            ordered[k] = rows, self._key_order(rows)
            return ordered[k][1]

        if self._parts is not None and start < stop:
            # The rows put in key order as they are read, text still as codes.
            one_pass = self._parts.in_one_pass(self.chunk_of_row, self.n_chunks, start,
                                               keys=(self._raw_name["household_id"],),
                                               order=key_order)
        for k in range(start, stop):
            # No name holds the chunk while it is out: the reader's ``del`` lets it go.
            if one_pass is not None:
                table = next(one_pass)
                rows, order = ordered.pop(k, (np.flatnonzero(self.chunk_of_row == k), None))
                yield (rows if order is None else rows[order]), self._frame(table)
            else:
                yield self._in_key_order(*self._chunk(k))

    def _chunk(self, k: int) -> tuple[np.ndarray, pd.DataFrame]:
        rows = np.flatnonzero(self.chunk_of_row == k)
        if self._raw is not None:
            return rows, self._raw.iloc[rows].reset_index(drop=True)
        return rows, self._read(k)

    def _key_order(self, rows: np.ndarray) -> np.ndarray | None:
        """The order that puts the rows numbered ``rows`` in key order, as
        :meth:`_in_key_order` orders them; None where they are in it."""
        order = np.lexsort((self.month_of_row[rows], self._rank_of_row[rows]))
        return None if np.array_equal(order, np.arange(len(order))) else order

    def _in_key_order(self, rows: np.ndarray,
                      frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """A chunk's rows (and their numbers) in order of household id and month, rows of
        the same key in file order: the order :func:`validate_ledger` checks in one pass over
        neighbours (a ledger folder's rows come month file by month file; a file sorted by
        household and month is left as it is)."""
        order = self._key_order(rows)
        if order is None:
            return rows, frame
        return rows[order], frame.iloc[order].reset_index(drop=True)

    def rows_of(self, households) -> pd.DataFrame:
        """Every row of the given households (ids as validated, without surrounding spaces),
        in file order, in one pass over the file."""
        found = self._households.get_indexer(pd.Index(list(households), dtype="string"))
        mask = np.isin(self._household_of_row, found[found >= 0])
        if self._raw is not None:
            return self._raw.iloc[np.flatnonzero(mask)].reset_index(drop=True)
        return self._read_rows(mask)

    def validated_rows_of(self, households) -> ValidationResult:
        """The rows of the given households, every month, in file order, validated
        (:meth:`rows_of`, then :func:`riskmodel.ledger.validate_ledger`): the valid rows and
        the quarantine of a few households, without reading the rest of the file."""
        return validate_ledger(self.rows_of(households))

    def counts(self, month: str | None = None,
               max_quarantine_share: float | None = None) -> LedgerCounts:
        """An empty :class:`LedgerCounts` of this file, for ``month`` when given (its rows in:
        :meth:`rows_in`), holding the month to ``max_quarantine_share`` when given."""
        return LedgerCounts(self.n_rows, month, self.rows_in(month) if month else None,
                            max_quarantine_share)

    def validated(self, month: str | None = None, counts: LedgerCounts | None = None,
                  start: int = 0, stop: int | None = None) -> Iterator[ValidChunk]:
        """Each chunk validated (:func:`validate_chunk`), in chunk order: the one way through
        the file.

        Parameters
        ----------
        month : str, optional
            ``YYYY-MM``: each chunk's quarantine marks the rows of the month, or whose month
            cannot be read (:attr:`ValidChunk.in_month`).
        counts : LedgerCounts, optional
            Each chunk is added to it before it is yielded (:meth:`LedgerCounts.add`), so a
            month over its quarantine limit stops the reading there.
        start, stop : int, optional
            Only chunks ``start`` to ``stop`` (exclusive; the last when None): a worker's share
            (:meth:`read_chunks`).

        Yields
        ------
        ValidChunk
        """
        for rows, raw in self.read_chunks(start, stop):
            chunk = validate_chunk(raw, rows, month, self.month_of_row[rows])
            del raw
            if counts is not None:
                counts.add(chunk)
            yield chunk

    def _read(self, k: int) -> pd.DataFrame:
        return self._read_rows(self.chunk_of_row == k)

    def _read_rows(self, wanted: np.ndarray) -> pd.DataFrame:
        """The file's rows where ``wanted`` (one flag per row), skipping row groups without."""
        return self._frame(self._parts.read_rows(wanted))

    def _frame(self, table: pa.Table | None) -> pd.DataFrame:
        """Rows read, as a frame of contract names (the columns alone when None)."""
        if table is None:
            head = self._parts.head().to_pandas()
            frame = normalise_columns(head, source=str(self.path)).iloc[:0]
        else:
            frame = normalise_columns(table.to_pandas(), source=str(self.path))
        return frame.drop(columns=self.unfilled)


@dataclass
class ValidChunk:
    """One chunk of households validated, its rejected rows numbered by file row.

    Attributes
    ----------
    valid : DataFrame or None
        The rows that passed (:attr:`riskmodel.ledger.ValidationResult.valid`), every month of
        the chunk's households; None once dropped (:meth:`without_rows`).
    quarantine : DataFrame
        The rejected rows, ``source_row`` numbering the file's rows from 0.
    in_month : ndarray of bool or None
        With a month, one flag per quarantine row: the row is of the month, or its month
        cannot be read (it may belong to it).
    n_in, n_valid : int
        Rows holding a record; rows that passed.
    counts_by_rule : dict
        Every rejected row of the chunk by the first rule it broke.
    missing_optional, empty_columns : list of str
        As :class:`riskmodel.ledger.ValidationResult` says them for the chunk.
    timings : dict
        Wall seconds under ``validate``, CPU seconds under ``cpu:validate``.
    """

    valid: pd.DataFrame | None
    quarantine: pd.DataFrame
    in_month: np.ndarray | None
    n_in: int
    n_valid: int
    counts_by_rule: dict[str, int]
    missing_optional: list[str] = field(default_factory=list)
    empty_columns: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def month_quarantine(self) -> pd.DataFrame:
        """The rejected rows of the month (all of them without a month)."""
        return self.quarantine if self.in_month is None else self.quarantine[self.in_month]

    def without_rows(self) -> ValidChunk:
        """The chunk's counts and the month's quarantine only: what a job adds up (a Spark
        executor sends this back, not the rows)."""
        return ValidChunk(None, self.month_quarantine, None, self.n_in, self.n_valid,
                          self.counts_by_rule, self.missing_optional, self.empty_columns,
                          self.timings)


def validate_chunk(raw: pd.DataFrame, rows: np.ndarray, month: str | None = None,
                   months: np.ndarray | None = None) -> ValidChunk:
    """Validate one chunk of a ledger file and number its rejected rows by file row.

    Parameters
    ----------
    raw : DataFrame
        The chunk's rows as read (contract column names), every row of its households.
    rows : ndarray of int
        Each row's number in the file (from 0).
    month : str, optional
        ``YYYY-MM``: mark the rejected rows of the month, or whose month cannot be read.
    months : ndarray of int, optional
        Each row's month number, -1 where unreadable (:attr:`LedgerChunks.month_of_row`);
        read from ``raw["month"]`` when None.

    Returns
    -------
    ValidChunk
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = validate_ledger(raw)
    timings = {"validate": time.perf_counter() - wall, "cpu:validate": time.process_time() - cpu}
    quarantine = result.quarantine.copy()
    at = quarantine["source_row"].to_numpy(dtype="int64")
    quarantine["source_row"] = np.asarray(rows, dtype="int64")[at]
    in_month = None
    if month is not None:
        target = int(month_index(pd.Series([month]))[0])
        if months is None:
            parsed, _ = parse_months(raw["month"].iloc[at].reset_index(drop=True))
            readable = parsed.notna().to_numpy()
            of_month = np.full(len(at), -1, dtype="int64")
            if readable.any():
                of_month[readable] = month_index(parsed[readable])
        else:
            of_month = np.asarray(months)[at]
        in_month = (of_month == target) | (of_month < 0)
    return ValidChunk(result.valid, quarantine, in_month, result.n_in, len(result.valid),
                      result.counts_by_rule, result.missing_optional, result.empty_columns,
                      timings)


class LedgerCounts:
    """What the chunks of a ledger file read so far add up to, and the two rules they are held
    to: the month's quarantine limit and the reconciliation of rows.

    Parameters
    ----------
    n_rows : int
        The file's rows holding a record (:attr:`LedgerChunks.n_rows`).
    month : str, optional
    rows_in : int, optional
        The month's rows (:meth:`LedgerChunks.rows_in`).
    max_quarantine_share : float, optional
        ``scoring.max_quarantine_share``: :meth:`add` raises as soon as more of the month's
        rows than this share are quarantined.

    Attributes
    ----------
    n_in, n_valid : int
        Rows read, rows that passed.
    by_rule : Counter
        Every rejected row by the first rule it broke, in the order the rules were met.
    month_rules : Counter
        The month's rejected rows by rule.
    """

    def __init__(self, n_rows: int, month: str | None = None, rows_in: int | None = None,
                 max_quarantine_share: float | None = None):
        self.n_rows, self.month, self.rows_in = n_rows, month, rows_in
        self.limit = max_quarantine_share
        self.n_in = self.n_valid = 0
        self.by_rule: Counter = Counter()
        self.month_rules: Counter = Counter()

    @property
    def quarantined(self) -> int:
        """Rows of the file quarantined so far."""
        return sum(self.by_rule.values())

    @property
    def month_quarantined(self) -> int:
        """Rows of the month quarantined so far."""
        return sum(self.month_rules.values())

    def add(self, chunk: ValidChunk) -> None:
        """Count one chunk (its month's quarantine: :attr:`ValidChunk.month_quarantine`).

        Raises
        ------
        LedgerError
            Exit code 2: more of the month's rows quarantined than ``max_quarantine_share``.
        """
        self.n_in += chunk.n_in
        self.n_valid += chunk.n_valid
        self.by_rule.update(chunk.counts_by_rule)
        self.month_rules.update(chunk.month_quarantine["rule"].astype(str))
        if self.limit is not None and self.month_quarantined > self.limit * self.rows_in:
            raise self._over_limit()

    def _over_limit(self) -> LedgerError:
        # Raised as soon as the chunks read so far pass the limit: the count is a lower bound.
        quarantined, rows_in, limit = self.month_quarantined, self.rows_in, self.limit
        top = ", ".join(f"{rule} ({n:,})" for rule, n in self.month_rules.most_common(3))
        return LedgerError(
            f"At least {quarantined:,} of the {rows_in:,} rows of {self.month} "
            f"({quarantined / rows_in:.1%}) are quarantined, over the limit of {limit:.1%} "
            f"(scoring.max_quarantine_share); most broken rules: {top}. Nothing was written; "
            "`riskmodel validate --ledger PATH --out DIR` lists the rows."
        )

    def reconcile(self, kept: Mapping[str, int] | None = None, agree: bool = True) -> None:
        """Refuse rows that do not add up, before anything is written.

        Every row of the file read is valid or quarantined; with ``kept`` (what the month's
        valid rows became, by name: ``{"scored": …, "not eligible": …}``), the month's rows
        in are those plus the month's quarantined rows.

        Parameters
        ----------
        kept : mapping of str to int, optional
        agree : bool, default=True
            A further check of the caller's, whose failure is reported as the same error.

        Raises
        ------
        RiskModelError
            The rows do not reconcile; the message gives the counts.
        """
        balanced = agree and self.n_valid + self.quarantined == self.n_in == self.n_rows
        if kept is not None:
            balanced = balanced and sum(kept.values()) + self.month_quarantined == self.rows_in
        if balanced:
            return
        if kept is None:
            raise RiskModelError(
                f"Rows do not reconcile: {self.n_rows:,} rows in the file, {self.n_in:,} read, "
                f"{self.n_valid:,} valid, {self.quarantined:,} quarantined. Nothing was written.")
        parts = "".join(f", {n:,} {name}" for name, n in kept.items())
        raise RiskModelError(
            f"Rows do not reconcile for {self.month}: {self.rows_in:,} rows in{parts}, "
            f"{self.month_quarantined:,} quarantined. Nothing was written.")


def sample_households(households: pd.Series | np.ndarray, share: float) -> np.ndarray:
    """A fixed pseudo-random share of households, by a hash of ``household_id``: the same
    households are drawn whatever the ledger's row order or partition."""
    if share >= 1:
        return np.ones(len(households), dtype=bool)
    hashed = pd.util.hash_array(np.asarray(households, dtype=object))
    return hashed < np.uint64(share * float(2**64 - 1))
