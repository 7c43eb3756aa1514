"""The monthly household ledger: read, map Chinese headers, coerce, validate, quarantine.

A bad row never stops a run and is never dropped silently: it goes to the quarantine table
with the rule it broke and the offending value, so that rows in = valid + quarantined.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import re
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as arrow
import pyarrow.compute as pc

from ..config import load_aliases
from ..errors import LedgerError
from ..months import month_label

with warnings.catch_warnings():
    # pandera probes the optional pyspark integration, which warns about pandas 3 on import.
    warnings.simplefilter("ignore", FutureWarning)
    import pandera.pandas as pa

logger = logging.getLogger(__name__)

KEY = ["household_id", "month"]
PLACE = ["county", "township", "village"]
HOUSEHOLD_TYPES = ("exited", "monitored", "general")
HOUSEHOLD_TYPE_ALIASES = {"脱贫户": "exited", "监测户": "monitored", "一般农户": "general"}
MEMBER_COUNTS = [
    "labor_full",
    "labor_partial",
    "elderly",
    "children",
    "students_compulsory",
    "students_noncompulsory",
    "chronic_ill",
    "serious_ill",
    "disabled",
    "disabled_severe",
    "migrant_workers",
]
INCOME = ["inc_wage", "inc_business", "inc_property", "inc_transfer"]
SPENDING = ["exp_medical_oop", "exp_education"]
GUARANTEES = ["insured_all", "housing_safe", "water_safe"]
ASSISTANCE_FLAGS = ["dibao", "welfare_job"]
EVENTS = [
    "ev_illness",
    "ev_disability",
    "ev_accident",
    "ev_education",
    "ev_disaster",
    "ev_job_loss",
    "ev_business_loss",
    "ev_epidemic",
]
BOOLEANS = GUARANTEES + ASSISTANCE_FLAGS + EVENTS
COUNTS = ["members", *MEMBER_COUNTS, "dropouts"]
AMOUNTS = [*INCOME, *SPENDING, "temp_assistance"]
LEDGER_COLUMNS = [
    *KEY,
    "province",
    *PLACE,
    "household_type",
    "members",
    *MEMBER_COUNTS,
    *INCOME,
    *SPENDING,
    *GUARANTEES,
    "dropouts",
    *ASSISTANCE_FLAGS,
    "temp_assistance",
    *EVENTS,
]
REQUIRED = [*KEY, *PLACE, "household_type", "members", "labor_full", "labor_partial",
            *INCOME, *SPENDING]
OPTIONAL = [c for c in LEDGER_COLUMNS if c not in REQUIRED]
# Columns every row needs a value in: an empty cell quarantines the row (``value_missing``, or
# ``month_format`` for the month), where an empty income, flag or amount reads as unknown.
VALUE_NEEDED = ["household_id", "month", *PLACE, "household_type", *COUNTS]
# Optional counts a county may export as a header it never fills. Empty in every row of the
# file, such a column reads as absent (unknown); empty in some rows only, those rows lack a count
# the others have and are quarantined. Decided over the whole file, never per chunk.
OPTIONAL_COUNTS = [c for c in COUNTS if c in OPTIONAL]

_TRUE = {"true", "1", "1.0", "yes", "y", "是", "t"}
_FALSE = {"false", "0", "0.0", "no", "n", "否", "f"}
_EMPTY = {"", "nan", "none", "null", "<na>", "nat"}
_MONTH = re.compile(r"^\s*(\d{4})\s*[-/.年]?\s*(\d{1,2})(?:\s*月)?(?:[-/.]\d{1,2})?(?:[ T].*)?\s*$")

SUPPORTED_SUFFIXES = (".parquet", ".csv", ".xlsx")
# Rows searched for the header when a spreadsheet export puts a title (or a date line) above it.
HEADER_SEARCH_ROWS = 10
# Encodings a CSV is read in, in order: UTF-8 (with or without BOM), then GB18030, the superset
# of GBK that Excel on a Chinese Windows saves "CSV (逗号分隔)" in.
CSV_ENCODINGS = ("utf-8-sig", "gb18030")
ENCODING_NAMES = {"utf-8-sig": "utf-8", "gb18030": "gb18030"}

# What each quarantine rule means, for the offices that fix the rows (quarantine.xlsx).
# ``{column}`` is the column's header as the file writes it.
RULES_ZH = {
    "value_missing": "“{column}”为空，此项必填",
    "month_format": "月份无法识别（可写 2024-03、2024/3、202403 或 2024年3月）",
    "not_a_number": "“{column}”应填数字",
    "not_a_boolean": "“{column}”应填“是”或“否”",
    "count_not_integer": "“{column}”应为整数",
    "household_type_unknown": "户类型应为脱贫户、监测户或一般农户",
    "members_below_1": "家庭人口至少为 1",
    "count_negative": "“{column}”不能为负数",
    "amount_negative": "“{column}”不能为负数（只有生产经营性收入可以为负）",
    **{f"{c}_exceeds_members": "“{column}”大于家庭人口" for c in [*MEMBER_COUNTS, "dropouts"]},
    "labor_exceeds_members": "全劳动力与弱劳动力人数之和大于家庭人口",
    "disabled_severe_exceeds_disabled": "重度残疾人数大于残疾人数",
    "duplicate_key": "同一户同一月份有多行（每一行都已隔离，核对后只保留一行）",
}

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


@dataclass
class ValidationResult:
    """What validation made of a ledger.

    Attributes
    ----------
    valid : DataFrame
        Rows that passed every rule, typed, with every contract column present.
    quarantine : DataFrame
        One row per rejected input row: ``source_row``, ``household_id``, ``month``, the first
        ``rule`` broken, its ``column`` and offending ``value``, and all ``reasons``.
    n_in : int
        Rows holding a record: the rows read, less the blank ones.
    missing_optional : list of str
        Optional contract columns absent from the file (added as unknown).
    blank_rows : ndarray of int
        Blank rows skipped, numbered as ``source_row``: every field empty, so no household to
        validate or quarantine.
    empty_columns : list of str
        Contract columns present but without a single value (read as unknown).
    """

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    n_in: int
    missing_optional: list[str] = field(default_factory=list)
    blank_rows: np.ndarray = field(default_factory=lambda: np.array([], dtype="int64"))
    empty_columns: list[str] = field(default_factory=list)

    @property
    def n_blank(self) -> int:
        return len(self.blank_rows)

    @property
    def counts_by_rule(self) -> dict[str, int]:
        if self.quarantine.empty:
            return {}
        return {str(k): int(v) for k, v in self.quarantine["rule"].value_counts().items()}

    @property
    def reconciles(self) -> bool:
        return self.n_in == len(self.valid) + len(self.quarantine)


def read_ledger(path: str | Path, aliases: dict[str, str] | None = None,
                sheet: str | None = None) -> pd.DataFrame:
    """Read a ledger file and map a county export's Chinese headers to the contract names.

    Parameters
    ----------
    path : str or Path
        ``.parquet``, ``.csv`` (UTF-8 with or without BOM, or GBK/GB18030) or ``.xlsx``.
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


def _text(series: pd.Series, fold: bool = False) -> pd.Series:
    """Values as stripped text (NA stays NA), each distinct value converted once; with
    ``fold``, full-width characters first folded to their ASCII forms (:func:`fold_width`)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = pd.Series(uniques, dtype=object).astype("string")
    if fold:
        text = fold_width(text)
    text = text.str.strip().array
    return pd.Series(text.take(codes, allow_fill=True), index=series.index, dtype="string")


def fold_width(text: pd.Series) -> pd.Series:
    """Unicode NFKC of text values: full-width digits, letters, signs, decimal points, commas
    and spaces (``８８４８``, ``－３``, ``１，２３４．５``, ``　``) become their ASCII forms, as a
    county's export mixes them; the minus sign U+2212 becomes ``-``. Chinese characters are
    kept.

    Examples
    --------
    >>> fold_width(pd.Series(["８８４８", "－１，２３４．５", "Ｈ００１", "是", None],
    ...                      dtype="string")).tolist()
    ['8848', '-1,234.5', 'H001', '是', <NA>]
    """
    folded = pc.utf8_normalize(arrow.array(text, type=arrow.large_string(),
                                              from_pandas=True), "NFKC")
    folded = pc.replace_substring(folded, "\u2212", "-")
    return pd.Series(pd.array(folded, dtype="string"), index=text.index)


def household_ids(series: pd.Series) -> pd.Series:
    """Household ids as validation reads them: full-width folded, stripped, NA when empty.

    Examples
    --------
    >>> household_ids(pd.Series(["Ｈ０１", " H01 ", ""])).tolist()
    ['H01', 'H01', <NA>]
    """
    text = _text(series, fold=True)
    return text.where(~_is_empty(text))


def _is_empty(text: pd.Series) -> pd.Series:
    return text.isna() | text.str.lower().isin(_EMPTY)


def empty_cells(series: pd.Series) -> np.ndarray:
    """Mask of the cells without a value: missing, blank, or written as empty (``nan``, ``null``
    …), as validation reads them.

    Examples
    --------
    >>> empty_cells(pd.Series(["H1", " ", None, "NaN", "0"])).tolist()
    [False, True, True, True, False]
    """
    return _is_empty(_text(series)).to_numpy(dtype=bool, na_value=True)


def blank_rows(raw: pd.DataFrame) -> np.ndarray:
    """Mask of the rows whose every field is empty (see :func:`empty_cells`).

    Spreadsheets export such rows (trailing lines of commas in a CSV, empty or formatted rows
    of a sheet): they carry no household, so validation skips and counts them instead of
    quarantining them.

    Examples
    --------
    >>> raw = pd.DataFrame({"household_id": ["H1", "", None], "month": ["2024-01", "", "x"]})
    >>> blank_rows(raw).tolist()
    [False, True, False]
    """
    blank = np.ones(len(raw), dtype=bool)
    # The key first: the rows left to look at are then few.
    for column in [*(c for c in KEY if c in raw), *(c for c in raw.columns if c not in KEY)]:
        at = np.flatnonzero(blank)
        if not len(at):
            break
        blank[at] = empty_cells(raw[column].iloc[at])
    return blank


def warn_blank_rows(source: str | Path, rows: np.ndarray, shown: int = 5) -> None:
    """Log a warning that names the blank rows skipped (their ``source_row`` numbers)."""
    if len(rows):
        listed = ", ".join(str(r) for r in rows[:shown]) + (", …" if len(rows) > shown else "")
        logger.warning("%s: %d blank row(s) skipped, every field empty (source_row %s)",
                       source, len(rows), listed)


def _to_number(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Float values and a mask of cells that held something that is not a number."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.astype("float64")
        return values, pd.Series(False, index=series.index)
    text = _text(series, fold=True)
    empty = _is_empty(text)
    values = pd.to_numeric(text.str.replace(",", "", regex=False).where(~empty), errors="coerce")
    values = values.astype("float64")
    return values, values.isna() & ~empty


def parse_amount(text: str) -> float:
    """One amount written as a ledger cell may write it: thousands separators, full-width
    digits and signs (``30,000``, ``３００００``).

    Raises
    ------
    ValueError
        When the text is empty or not a finite number.

    Examples
    --------
    >>> parse_amount("30,000"), parse_amount("１２，５００．５")
    (30000.0, 12500.5)
    """
    values, bad = _to_number(pd.Series([text], dtype="string"))
    value = float(values.iloc[0])
    if bool(bad.iloc[0]) or not np.isfinite(value):
        raise ValueError(f"Got {text!r}, expected an amount such as 30000 or 30,000.")
    return value


def _to_bool(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean"), pd.Series(False, index=series.index)
    text = _text(series, fold=True).str.lower()
    empty = _is_empty(text)
    out = pd.Series(pd.NA, index=series.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False).to_numpy()] = True
    out[text.isin(_FALSE).fillna(False).to_numpy()] = False
    return out, out.isna() & ~empty


def parse_months(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Months as ``YYYY-MM`` text from the spellings ledgers use (2024-03, 2024/3, 202403,
    2024年3月, dates, in full-width digits too), and a mask of the values left NA (empty or
    unreadable)."""
    # A ledger holds few distinct months: parse each spelling once.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    uniq = pd.Series(uniques)
    if pd.api.types.is_datetime64_any_dtype(uniq):
        parsed = uniq.dt.strftime("%Y-%m").astype("string")
    else:
        parts = _text(uniq, fold=True).str.extract(_MONTH)
        year = pd.to_numeric(parts[0], errors="coerce")
        mon = pd.to_numeric(parts[1], errors="coerce")
        ok = (year.notna() & mon.between(1, 12)).to_numpy()
        parsed = pd.Series(pd.NA, index=uniq.index, dtype="string")
        parsed[ok] = month_label(year[ok].to_numpy("int64") * 12 + mon[ok].to_numpy("int64") - 1)
    lookup = np.append(parsed.astype(object).to_numpy(), pd.NA)
    out = pd.Series(lookup[codes], index=series.index, dtype="string")
    return out, out.isna()


def _rule(rule: str, test) -> pa.Check:
    # The check's error string is the rule name reported in the quarantine.
    return pa.Check(lambda s: s.isna() | test(s), error=rule)


def _checked_frame(out: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Typed columns plus one slack column per cross-column invariant (> 0 means broken).

    Cross-column rules are checked as columns of their own so that a failure names one cell,
    not every column of the row.
    """
    frame = {c: out[c] for c in ["household_id", "household_type", *COUNTS, *AMOUNTS]}
    source = {}
    for col in [*MEMBER_COUNTS, "dropouts"]:
        frame[f"{col}_exceeds_members"] = out[col] - out["members"]
        source[f"{col}_exceeds_members"] = col
    frame["labor_exceeds_members"] = out["labor_full"] + out["labor_partial"] - out["members"]
    source["labor_exceeds_members"] = "labor_partial"
    frame["disabled_severe_exceeds_disabled"] = out["disabled_severe"] - out["disabled"]
    source["disabled_severe_exceeds_disabled"] = "disabled_severe"
    # Columns side by side without consolidating them into one block: the checks read each.
    return pd.DataFrame(frame, copy=False), source


def _schema(slack: list[str]) -> pa.DataFrameSchema:
    columns = {
        "household_type": pa.Column(
            "string", _rule("household_type_unknown", lambda s: s.isin(HOUSEHOLD_TYPES))),
        "members": pa.Column(float, _rule("members_below_1", lambda s: s >= 1), nullable=True),
        **{c: pa.Column(float, _rule("count_negative", lambda s: s >= 0), nullable=True)
           for c in [*MEMBER_COUNTS, "dropouts"]},
        **{c: pa.Column(float, _rule("amount_negative", lambda s: s >= 0), nullable=True)
           for c in AMOUNTS if c != "inc_business"},
        **{c: pa.Column(float, _rule(c, lambda s: s <= 0), nullable=True) for c in slack},
    }
    return pa.DataFrameSchema(columns, strict=False)


def validate_ledger(raw: pd.DataFrame) -> ValidationResult:
    """Coerce types and check every contract invariant; split valid rows from quarantine.

    Parameters
    ----------
    raw : DataFrame
        A ledger with contract column names, as returned by :func:`read_ledger`.

    Returns
    -------
    ValidationResult
        ``n_in == len(valid) + len(quarantine)`` always; blank rows (every field empty) are
        neither, and are listed in ``blank_rows``. ``source_row`` numbers the rows of ``raw``,
        blank rows included.

    Examples
    --------
    >>> import pandas as pd
    >>> from riskmodel.synthetic import generate_ledger
    >>> ledger = generate_ledger(households=20, months=3, seed=1)
    >>> ledger.loc[0, "members"] = 0
    >>> result = validate_ledger(ledger)
    >>> len(result.quarantine), result.quarantine.loc[0, "rule"]
    (1, 'members_below_1')
    """
    given = raw.reset_index(drop=True)
    blank = blank_rows(given)
    kept = np.flatnonzero(~blank)
    raw = given.iloc[kept].reset_index(drop=True) if blank.any() else given
    n = len(raw)
    cols: dict[str, pd.Series] = {}
    problems: list[pd.DataFrame] = []
    empty_columns: list[str] = []

    def flag(mask: pd.Series, rule: str, column: str) -> None:
        idx = np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))
        if len(idx):
            values = raw[column].iloc[idx].astype("string") if column in raw else pd.NA
            problems.append(pd.DataFrame(
                {"row": idx, "rule": rule, "column": column, "value": values}
            ).reset_index(drop=True))

    for col in ["household_id", *PLACE, "province", "household_type"]:
        if col in raw:
            # Ids and types folded from full width (Ｈ００１ is H001); names kept as written.
            text = _text(raw[col], fold=col in ("household_id", "household_type"))
            empty = _is_empty(text)
            cols[col] = text.where(~empty)
            if empty.all():
                empty_columns.append(col)
            if col != "province":
                flag(empty, "value_missing", col)
        else:
            cols[col] = pd.Series(pd.NA, index=raw.index, dtype="string")
    cols["household_type"] = cols["household_type"].replace(HOUSEHOLD_TYPE_ALIASES)

    cols["month"], bad = parse_months(raw["month"])
    flag(bad, "month_format", "month")
    if empty_cells(raw["month"]).all():
        empty_columns.append("month")

    for col in [*COUNTS, *AMOUNTS]:
        if col not in raw:
            cols[col] = pd.Series(np.nan, index=raw.index)
            continue
        values, bad = _to_number(raw[col])
        flag(bad, "not_a_number", col)
        if values.isna().all() and not bad.any():
            empty_columns.append(col)
        if col in COUNTS:
            fractional = values.notna() & (values != np.floor(values))
            flag(fractional, "count_not_integer", col)
            flag(values.isna() & ~bad, "value_missing", col)
        cols[col] = values
    for col in BOOLEANS:
        if col not in raw:
            cols[col] = pd.Series(pd.NA, index=raw.index, dtype="boolean")
            continue
        cols[col], bad = _to_bool(raw[col])
        flag(bad, "not_a_boolean", col)
        if cols[col].isna().all() and not bad.any():
            empty_columns.append(col)
        if col in EVENTS:
            cols[col] = cols[col].fillna(False)

    extra = [c for c in raw.columns if c not in LEDGER_COLUMNS]
    out = pd.DataFrame({**{c: cols[c] for c in LEDGER_COLUMNS}, **{c: raw[c] for c in extra}})

    checked, slack_source = _checked_frame(out)
    try:
        # The checked frame is built for the checks alone: no need for pandera to copy it.
        _schema(list(slack_source)).validate(checked, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        cases = cases[cases["index"].notna() & cases["failure_case"].notna()]
        for (rule, column), grp in cases.groupby(["check", "column"], sort=False):
            mask = np.zeros(n, dtype=bool)
            mask[grp["index"].astype("int64").to_numpy()] = True
            flag(pd.Series(mask), str(rule), slack_source.get(column, column))

    dup = out.duplicated(KEY, keep=False) & cols["household_id"].notna() & cols["month"].notna()
    flag(dup, "duplicate_key", "household_id")

    for col in ["members", *MEMBER_COUNTS, "dropouts"]:
        if col in raw and out[col].notna().all():
            out[col] = out[col].astype("int64")

    if problems:
        found = pd.concat(problems, ignore_index=True).sort_values("row", kind="stable")
        bad_rows = np.unique(found["row"].to_numpy())
        reasons = (found["rule"] + "(" + found["column"] + ")").groupby(found["row"]).agg("; ".join)
        first = found.drop_duplicates("row").set_index("row")
        quarantine = pd.DataFrame({
            "source_row": kept[bad_rows].astype("int64"),
            "household_id": raw["household_id"].iloc[bad_rows].to_numpy(),
            "month": raw["month"].iloc[bad_rows].astype("string").to_numpy(),
            "rule": first.loc[bad_rows, "rule"].to_numpy(),
            "column": first.loc[bad_rows, "column"].to_numpy(),
            "value": first.loc[bad_rows, "value"].to_numpy(),
            "reasons": reasons.loc[bad_rows].to_numpy(),
        }).astype(empty_quarantine().dtypes.to_dict())
        valid = out.drop(index=bad_rows)
    else:
        quarantine = empty_quarantine()
        valid = out
    valid = valid.sort_values(KEY, kind="stable").reset_index(drop=True)
    missing = [c for c in OPTIONAL if c not in raw.columns]
    # Without a row, no column has a value: that says nothing about the file's columns.
    empty = [c for c in LEDGER_COLUMNS if c in empty_columns] if n else []
    result = ValidationResult(valid, quarantine, n, missing, np.flatnonzero(blank), empty)
    assert result.reconciles, "validation lost rows"
    return result


def empty_quarantine() -> pd.DataFrame:
    """An empty quarantine table with its columns and types."""
    return pd.DataFrame({
        "source_row": pd.Series(dtype="int64"),
        "household_id": pd.Series(dtype="string"),
        "month": pd.Series(dtype="string"),
        "rule": pd.Series(dtype="string"),
        "column": pd.Series(dtype="string"),
        "value": pd.Series(dtype="string"),
        "reasons": pd.Series(dtype="string"),
    })


def unfilled_optional_counts(raw: pd.DataFrame, blank: np.ndarray | None = None) -> list[str]:
    """The optional count columns of a whole file that no row fills (:data:`OPTIONAL_COUNTS`).

    Parameters
    ----------
    raw : DataFrame
        Every row of the file, contract column names.
    blank : ndarray of bool, optional
        The file's blank rows (:func:`blank_rows`), computed when not given.

    Returns
    -------
    list of str
        Columns to read as absent, in contract order.

    Examples
    --------
    >>> raw = pd.DataFrame({"household_id": ["H1", "H2"], "elderly": ["", None],
    ...                     "children": ["1", ""]})
    >>> unfilled_optional_counts(raw)
    ['elderly']
    """
    blank = blank_rows(raw) if blank is None else blank
    return [c for c in OPTIONAL_COUNTS
            if c in raw.columns and empty_cells(raw[c])[~blank].all()]


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
        Ledger file (``.parquet``, ``.csv`` or ``.xlsx``), read by :func:`read_ledger`.
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
