"""Reading a ledger file: Parquet, CSV (UTF-8 or GBK) and Excel workbooks, the sheet that holds
the ledger, the header under title lines, and the Chinese header aliases mapped to the contract's
column names. :func:`load_ledger` reads and validates (:mod:`riskmodel.ledger._validate`) in
one call.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..config import load_aliases
from ..errors import LedgerError
from ._folder import read_folder
from ._validate import (
    LEDGER_COLUMNS,
    REQUIRED,
    ValidationResult,
    unfilled_optional_counts,
    validate_ledger,
    warn_blank_rows,
)

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".parquet", ".csv", ".xlsx")
# Rows searched for the header when a spreadsheet export puts a title (or a date line) above it.
HEADER_SEARCH_ROWS = 10
# Encodings a CSV is read in, in order: UTF-8 (with or without BOM), then GB18030, the superset
# of GBK that Excel on a Chinese Windows saves "CSV (逗号分隔)" in.
CSV_ENCODINGS = ("utf-8-sig", "gb18030")
ENCODING_NAMES = {"utf-8-sig": "utf-8", "gb18030": "gb18030"}

# A sheet named by ``riskmodel ... --sheet``, for the readers called without ``sheet``.
_SHEET: ContextVar[str | None] = ContextVar("ledger_sheet", default=None)


@contextlib.contextmanager
def ledger_sheet(name: str | None) -> Iterator[None]:
    """Read workbooks' ledger from the sheet ``name`` within the block (None: find it).

    For the jobs that take a ledger path only (:func:`riskmodel.scoring.score_month`, plans,
    training, explanations): every reader called in the block without ``sheet`` reads this one.

    Examples
    --------
    >>> with ledger_sheet("台账"):
    ...     _SHEET.get()
    '台账'
    """
    token = _SHEET.set(name)
    try:
        yield
    finally:
        _SHEET.reset(token)


@dataclass(frozen=True)
class LedgerSource:
    """How a ledger file was read.

    Attributes
    ----------
    kind : str
        ``parquet``, ``csv`` or ``xlsx``.
    encoding : str or None
        A CSV's encoding: ``utf-8`` or ``gb18030`` (GBK).
    sheet : str or None
        The workbook sheet read.
    title_rows : int
        Lines (rows) above the header.
    headers : dict
        Contract column → its header as the file writes it.
    """

    kind: str
    encoding: str | None = None
    sheet: str | None = None
    title_rows: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def first_row(self) -> int:
        """The row number (from 1, as a spreadsheet shows it) of ``source_row`` 0: under the
        title lines and the header. A Parquet file counts as a sheet whose header is row 1."""
        return self.title_rows + 2


def read_ledger(path: str | Path, aliases: dict[str, str] | None = None,
                sheet: str | None = None) -> pd.DataFrame:
    """Read a ledger file and map a county export's Chinese headers to the contract names.

    Parameters
    ----------
    path : str or Path
        ``.parquet``, ``.csv`` (UTF-8 with or without BOM, or GBK/GB18030) or ``.xlsx``, or a
        ledger folder of month files ``YYYY-MM.parquet`` (read in name order, as one table).
    aliases : dict, optional
        Header → column map; the packaged ``configs/aliases.yaml`` by default.
    sheet : str, optional
        The workbook's sheet to read; by default the first whose header names every required
        column (see :func:`read_source`).

    Returns
    -------
    DataFrame
        The rows as read (CSV and Excel cells as text), contract column names.

    Raises
    ------
    LedgerError
        Missing, unreadable, empty or unsupported file, or a missing required column.
    """
    return read_source(path, aliases, sheet)[0]


def read_source(path: str | Path, aliases: dict[str, str] | None = None,
                sheet: str | None = None) -> tuple[pd.DataFrame, LedgerSource]:
    """:func:`read_ledger`, and how the file was read (:class:`LedgerSource`).

    A CSV that is not UTF-8 is read as GB18030 (GBK); a workbook's ledger is the sheet named
    by ``sheet`` (or :func:`ledger_sheet`), else the first whose header (within the first
    rows) names every required column, else the first sheet. The encoding and the sheet are
    logged.
    """
    path = Path(path)
    if path.is_dir():
        # A ledger folder: its month files in name order (:func:`month_files`).
        if (_SHEET.get() if sheet is None else sheet) is not None:
            raise LedgerError(f"{path}: got a sheet, but a ledger folder has none; leave --sheet "
                              "out for it.")
        frame = read_folder(path)
        names = normalise_columns(frame, source=str(path), aliases=aliases)
        headers = {new: str(old) for old, new in zip(frame.columns, names.columns, strict=True)}
        return names, LedgerSource("parquet", headers=headers)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LedgerError(
            f"{path}: unsupported file type {suffix or '(none)'!r}, expected one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}"
            + ("; save the workbook as .xlsx (另存为 Excel 工作簿) and give that."
               if suffix == ".xls" else ".")
        )
    if not path.is_file():
        raise LedgerError(f"{path}: file not found.")
    sheet = sheet_to_read(path, sheet)
    source = str(path)
    try:
        if suffix == ".parquet":
            raw, how = pd.read_parquet(path), LedgerSource("parquet")
        elif suffix == ".csv":
            raw, how = _read_csv(path, aliases)
        else:
            raw, how = _read_xlsx(path, aliases, sheet)
            source = f"{path} (sheet {how.sheet})"
    except LedgerError:
        raise
    except pd.errors.EmptyDataError:
        raise LedgerError(f"{path}: the file is empty.") from None
    except pd.errors.ParserError:
        raise LedgerError(
            f"{path}: cannot be read as csv: its lines have different numbers of fields, and "
            f"none of its first {HEADER_SEARCH_ROWS + 1} lines is a header naming every "
            f"required column ({', '.join(REQUIRED[:3])} …).") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
        raise LedgerError(f"{path}: cannot be read as {suffix[1:]} ({exc.__class__.__name__}).")\
            from None
    frame = normalise_columns(raw, source=source, aliases=aliases)
    headers = {new: str(old) for old, new in zip(raw.columns, frame.columns, strict=True)}
    return frame, LedgerSource(how.kind, how.encoding, how.sheet, how.title_rows, headers)


def sheet_to_read(path: str | Path, sheet: str | None = None) -> str | None:
    """The sheet named for ``path``: ``sheet``, else the one set by :func:`ledger_sheet`.

    Raises
    ------
    LedgerError
        A sheet named for a file that is not an ``.xlsx`` workbook.
    """
    sheet = _SHEET.get() if sheet is None else sheet
    if sheet is not None and Path(path).suffix.lower() != ".xlsx":
        raise LedgerError(f"{path}: got a sheet ({sheet!r}), but only an .xlsx workbook has "
                          "sheets; leave --sheet out for this file.")
    return sheet


def _read_csv(path: Path, aliases: dict[str, str] | None) -> tuple[pd.DataFrame, LedgerSource]:
    """A CSV as text cells under its header, in the first of :data:`CSV_ENCODINGS` it decodes
    in. Empty lines are kept (as blank rows), so that records keep the file's numbering."""
    for encoding in CSV_ENCODINGS:
        try:
            at = _csv_header_line(path, aliases, encoding)
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding,
                              skiprows=at, skip_blank_lines=False)
        except UnicodeDecodeError:
            continue
        name = ENCODING_NAMES[encoding]
        if encoding == CSV_ENCODINGS[0]:
            logger.info("%s: read as %s", path, name.upper())
        else:
            logger.info("%s: not UTF-8; read as %s (GBK)", path, name.upper())
        return raw, LedgerSource("csv", encoding=name, title_rows=at)
    raise LedgerError(f"{path}: cannot be read as csv: its text is neither UTF-8 nor GBK "
                      "(GB18030); save it from Excel as \"CSV UTF-8\" and give that.")


def _read_xlsx(path: Path, aliases: dict[str, str] | None,
               sheet: str | None) -> tuple[pd.DataFrame, LedgerSource]:
    """The ledger sheet of a workbook (see :func:`read_source`) as text cells under its
    header."""
    name, how = _ledger_sheet(path, aliases, sheet)
    logger.info("%s: read sheet %r (%s)", path, name, how)
    sheet_rows = pd.read_excel(path, sheet_name=name, dtype=str, keep_default_na=False,
                               engine="openpyxl", header=None)
    records, at = _under_header(sheet_rows, path, aliases)
    return records, LedgerSource("xlsx", sheet=name, title_rows=at)


def _ledger_sheet(path: Path, aliases: dict[str, str] | None,
                  sheet: str | None) -> tuple[str, str]:
    """The sheet to read, and why: named, the one holding the header, or the first."""
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        names = list(book.sheetnames)
        if sheet is not None:
            if sheet not in names:
                raise LedgerError(f"{path}: has no sheet {sheet!r}; its sheets are "
                                  + ", ".join(repr(n) for n in names) + ".")
            return sheet, "as named"
        if len(names) == 1:
            return names[0], "its only sheet"
        for name in names:
            rows = book[name].iter_rows(max_row=HEADER_SEARCH_ROWS + 1, values_only=True)
            if _header_at(rows, aliases) is not None:
                return name, "the first whose header names every required column"
        return names[0], "the first: no sheet has a header naming every required column"
    finally:
        book.close()


def _header_at(rows, aliases: dict[str, str] | None) -> int | None:
    """Which of the first rows (lists of cells) names every required column, if any.

    County exports often put a title or a date line above the header; the rows above it are
    titles, not records.
    """
    aliases = load_aliases() if aliases is None else aliases
    for at, cells in enumerate(rows):
        if at > HEADER_SEARCH_ROWS:
            break
        if set(REQUIRED) <= {aliases.get(str(c).strip(), str(c).strip()) for c in cells}:
            return at
    return None


def _csv_header_line(path: Path, aliases: dict[str, str] | None,
                     encoding: str = "utf-8-sig") -> int:
    """Lines above a CSV's header (0 when it is the first line or none is found)."""
    with open(path, encoding=encoding, newline="") as handle:
        at = _header_at(csv.reader(handle), aliases)
    if at:
        logger.info("%s: the header is on line %d, under %d title line(s)", path, at + 1, at)
    return at or 0


def _under_header(sheet: pd.DataFrame, path: Path,
                  aliases: dict[str, str] | None) -> tuple[pd.DataFrame, int]:
    """A sheet read without a header as a frame of its records under the header row, and the
    rows above the header."""
    if sheet.empty:
        raise pd.errors.EmptyDataError("no rows")
    at = _header_at(sheet.itertuples(index=False), aliases) or 0
    if at:
        logger.info("%s: the header is on row %d, under %d title row(s)", path, at + 1, at)
    header = [str(c).strip() or f"Unnamed: {i}" for i, c in enumerate(sheet.iloc[at])]
    records = sheet.iloc[at + 1:].reset_index(drop=True)
    records.columns = header
    return records, at


def normalise_columns(
    raw: pd.DataFrame, source: str = "ledger", aliases: dict[str, str] | None = None
) -> pd.DataFrame:
    """Rename Chinese headers to contract names and check the required columns are there."""
    aliases = load_aliases() if aliases is None else aliases
    renamed = {c: aliases.get(str(c).strip(), str(c).strip()) for c in raw.columns}
    frame = raw.rename(columns=renamed)
    dup = frame.columns[frame.columns.duplicated()].unique().tolist()
    if dup:
        raise LedgerError(f"{source}: column {dup[0]!r} appears twice (after header aliases).")
    if frame.empty:
        raise LedgerError(f"{source}: the file has no rows.")
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise LedgerError(f"{source}: required column {missing[0]!r} is missing"
                          + (f" (and {len(missing) - 1} more)." if len(missing) > 1 else "."))
    return frame.reset_index(drop=True)


def _listed_as_empty(result: ValidationResult, unfilled: list[str]) -> ValidationResult:
    """``result`` of rows read without ``unfilled`` columns, which the file had but left empty:
    they are listed as empty columns, not as absent ones."""
    result.missing_optional = [c for c in result.missing_optional if c not in unfilled]
    result.empty_columns = [c for c in LEDGER_COLUMNS
                            if c in result.empty_columns or c in unfilled]
    return result


def load_ledger(path: str | Path, sheet: str | None = None) -> ValidationResult:
    """Read and validate a ledger file in one call; blank rows skipped are logged.

    Optional count columns the file has but leaves empty in every row read as absent
    (:func:`unfilled_optional_counts`), as the chunked readers read them.

    Parameters
    ----------
    path : str or Path
        Ledger file (``.parquet``, ``.csv`` or ``.xlsx``) or folder of month files, read by
        :func:`read_ledger`.
    sheet : str, optional
        A workbook's ledger sheet (default: the first whose header names every required
        column; see :func:`read_ledger`).

    Returns
    -------
    ValidationResult
        Not a frame: the rows to model are its ``valid`` attribute. Its attributes:

        - ``valid`` : DataFrame, the rows that passed every rule, typed, with every contract
          column (what :func:`riskmodel.build_features`, training and
          :func:`riskmodel.explain_one` take);
        - ``quarantine`` : DataFrame, one row per rejected row (``source_row``,
          ``household_id``, ``month``, ``rule``, ``column``, ``value``, ``reasons``);
        - ``n_in`` : int, rows holding a record (``n_in == len(valid) + len(quarantine)``);
        - ``counts_by_rule`` : dict, quarantined rows per first rule broken;
        - ``missing_optional``, ``empty_columns`` : list of str, optional columns absent from
          the file, and columns present but empty in every row;
        - ``blank_rows`` : ndarray, blank rows skipped (numbered as ``source_row``).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from riskmodel.synthetic import generate_ledger
    >>> path = Path(tempfile.mkdtemp()) / "ledger.parquet"
    >>> raw = generate_ledger(households=20, months=3, seed=1)
    >>> raw.loc[0, "members"] = 0
    >>> raw.to_parquet(path)
    >>> result = load_ledger(path)
    >>> len(result.valid), len(result.quarantine), result.n_in
    (59, 1, 60)
    >>> result.counts_by_rule
    {'members_below_1': 1}
    """
    raw = read_ledger(path, sheet=sheet)
    unfilled = unfilled_optional_counts(raw)
    result = _listed_as_empty(validate_ledger(raw.drop(columns=unfilled)), unfilled)
    warn_blank_rows(path, result.blank_rows)
    return result
