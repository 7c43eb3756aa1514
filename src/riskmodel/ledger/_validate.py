"""The ledger contract and its validation: coerce, check every rule, quarantine.

The contract's columns, the pandera schema of the invariants and the quarantine. A bad row never
stops a run and is never dropped silently: it goes to the quarantine table with the rule it broke
and the offending value, so that rows in = valid + quarantined. The cells' spellings (full-width
digits, 是/否, the ways a month is written) are read by :mod:`riskmodel.ledger._cells`; reading
a file is :mod:`riskmodel.ledger._read`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as arrow
import pyarrow.compute as pc

from ._cells import _factorized, _text_cells, _to_bool, _to_number, empty_cells
from ._cells import fold_width as fold_width
from ._cells import household_ids as household_ids
from ._cells import parse_amount as parse_amount
from ._cells import parse_months as parse_months

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
    return _blank_rows(raw)


def _blank_rows(raw: pd.DataFrame, ids: tuple[np.ndarray, pd.Series] | None = None,
                ) -> np.ndarray:
    """:func:`blank_rows`; ``ids``: :func:`_factorized` of the household ids, when known."""
    blank = np.ones(len(raw), dtype=bool)
    # The key first: the rows left to look at are then few.
    for column in [*(c for c in KEY if c in raw), *(c for c in raw.columns if c not in KEY)]:
        at = np.flatnonzero(blank)
        if not len(at):
            break
        if column == "household_id" and ids is not None and len(at) == len(raw):
            blank[at] = _text_cells(raw[column], factorized=ids)[1]
            continue
        blank[at] = empty_cells(raw[column].iloc[at])
    return blank


def warn_blank_rows(source: str | Path, rows: np.ndarray, shown: int = 5) -> None:
    """Log a warning that names the blank rows skipped (their ``source_row`` numbers)."""
    if len(rows):
        listed = ", ".join(str(r) for r in rows[:shown]) + (", …" if len(rows) > shown else "")
        logger.warning("%s: %d blank row(s) skipped, every field empty (source_row %s)",
                       source, len(rows), listed)


def _rule(rule: str, test) -> pa.Check:
    # The check's error string is the rule name reported in the quarantine.
    return pa.Check(lambda s: s.isna() | test(s), error=rule)


_CHECKED = ["household_id", "household_type", *COUNTS, *AMOUNTS]


def _whole_numbers(column: pd.Series) -> bool:
    """Whether a column was read as integers (numpy's, not nullable): no cell of it can be
    empty, fractional or other than a number."""
    return isinstance(column.dtype, np.dtype) and column.dtype.kind in "iu"


def _may_break_schema(cols: Mapping[str, pd.Series]) -> np.ndarray:
    """Mask of the rows that may break a check of :func:`_schema`: each check's failing
    condition tested on the typed columns with numpy (a cell the check lets pass, an empty
    one included, marks no row)."""
    kind = cols["household_type"]
    suspect = np.array((kind.notna() & ~kind.isin(HOUSEHOLD_TYPES)).to_numpy(
        dtype=bool, na_value=False))
    number = {c: cols[c].to_numpy(dtype="float64") for c in [*COUNTS, *AMOUNTS]}
    with np.errstate(invalid="ignore"):
        suspect |= number["members"] < 1
        for c in [*MEMBER_COUNTS, "dropouts"]:
            suspect |= number[c] < 0
            suspect |= number[c] - number["members"] > 0
        for c in AMOUNTS:
            if c != "inc_business":
                suspect |= number[c] < 0
        suspect |= number["labor_full"] + number["labor_partial"] - number["members"] > 0
        suspect |= number["disabled_severe"] - number["disabled"] > 0
    return suspect


def _checked_frame(out: Mapping[str, pd.Series]) -> tuple[pd.DataFrame, dict[str, str]]:
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
    # The ids are read once: for the blank rows, and as the household_id column.
    ids = _factorized(given["household_id"]) if "household_id" in given else None
    blank = _blank_rows(given, ids)
    kept = np.flatnonzero(~blank)
    raw = given.iloc[kept].reset_index(drop=True) if blank.any() else given
    n = len(raw)
    cols: dict[str, pd.Series] = {}
    problems: list[pd.DataFrame] = []
    empty_columns: list[str] = []

    def flag(mask: pd.Series | np.ndarray, rule: str, column: str) -> None:
        if isinstance(mask, pd.Series):
            mask = mask.to_numpy(dtype=bool, na_value=False)
        idx = np.flatnonzero(mask)
        if len(idx):
            values = raw[column].iloc[idx].astype("string") if column in raw else pd.NA
            problems.append(pd.DataFrame(
                {"row": idx, "rule": rule, "column": column, "value": values}
            ).reset_index(drop=True))

    for col in ["household_id", *PLACE, "province", "household_type"]:
        if col in raw:
            # Ids and types folded from full width (Ｈ００１ is H001); names kept as written.
            # Type names as written in Chinese read as their codes.
            text, empty = _text_cells(raw[col], fold=col in ("household_id", "household_type"),
                                      aliases=HOUSEHOLD_TYPE_ALIASES
                                      if col == "household_type" else None,
                                      factorized=ids if col == "household_id"
                                      and not blank.any() else None)
            cols[col] = text
            if empty.all():
                empty_columns.append(col)
            if col != "province":
                flag(empty, "value_missing", col)
        else:
            cols[col] = pd.Series(pd.NA, index=raw.index, dtype="string")

    cols["month"], bad = parse_months(raw["month"])
    flag(bad, "month_format", "month")
    # An empty cell reads as no month: only a column of no month at all may be empty.
    if bad.all() and empty_cells(raw["month"]).all():
        empty_columns.append("month")

    for col in [*COUNTS, *AMOUNTS]:
        if col not in raw:
            cols[col] = pd.Series(np.nan, index=raw.index)
            continue
        values, bad = _to_number(raw[col])
        cols[col] = values
        if _whole_numbers(raw[col]):
            # Read as integers: every cell a number, none empty, none fractional.
            if not n:
                empty_columns.append(col)
            continue
        number = values.to_numpy()
        bad = bad.to_numpy(dtype=bool)
        missing = np.isnan(number)
        flag(bad, "not_a_number", col)
        if missing.all() and not bad.any():
            empty_columns.append(col)
        if col in COUNTS:
            fractional = ~missing & (number != np.floor(number))
            flag(fractional, "count_not_integer", col)
            flag(missing & ~bad, "value_missing", col)
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

    # The schema names the rules each row breaks. It checks the rows that may break one: every
    # check is of a row's own cells, so the others pass it as they would in the whole frame.
    suspect = np.flatnonzero(_may_break_schema(cols))
    checked, slack_source = _checked_frame({c: cols[c].iloc[suspect] for c in _CHECKED})
    try:
        if len(suspect):
            # The checked frame is built for the checks alone: no need for pandera to copy it.
            _schema(list(slack_source)).validate(checked, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        cases = cases[cases["index"].notna() & cases["failure_case"].notna()]
        for (rule, column), grp in cases.groupby(["check", "column"], sort=False):
            mask = np.zeros(n, dtype=bool)
            mask[grp["index"].astype("int64").to_numpy()] = True
            flag(pd.Series(mask), str(rule), slack_source.get(column, column))

    # A ledger as written (sorted by household and month, every key filled) needs no sort:
    # its repeated keys are neighbours.
    dup = _sorted_repeats(cols["household_id"], cols["month"])
    in_order = dup is not None
    if not in_order:
        keys = pd.DataFrame({c: cols[c] for c in KEY}, copy=False)
        dup = keys.duplicated(keep=False) & cols["household_id"].notna() & cols["month"].notna()
    flag(dup, "duplicate_key", "household_id")

    for col in ["members", *MEMBER_COUNTS, "dropouts"]:
        if col in raw and cols[col].notna().all():
            given = raw[col].dtype
            if isinstance(given, np.dtype) and given.kind == "i" and given.itemsize <= 4:
                # Whole numbers as read (each exact as a float): no round trip through floats.
                cols[col] = pd.Series(raw[col].to_numpy().astype("int64"), index=raw.index,
                                      copy=False)
            else:
                cols[col] = cols[col].astype("int64")

    extra = [c for c in raw.columns if c not in LEDGER_COLUMNS]
    # One block per column, as built: consolidating them would copy every value once more.
    out = pd.DataFrame({**{c: cols[c] for c in LEDGER_COLUMNS}, **{c: raw[c] for c in extra}},
                       copy=False)

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
    if not in_order:
        valid = valid.sort_values(KEY, kind="stable")
    valid = valid.reset_index(drop=True)
    missing = [c for c in OPTIONAL if c not in raw.columns]
    # Without a row, no column has a value: that says nothing about the file's columns.
    empty = [c for c in LEDGER_COLUMNS if c in empty_columns] if n else []
    result = ValidationResult(valid, quarantine, n, missing, np.flatnonzero(blank), empty)
    assert result.reconciles, "validation lost rows"
    return result


def _sorted_repeats(ids: pd.Series, months: pd.Series) -> np.ndarray | None:
    """When every row has a household id and a month and the rows run in the order a stable
    sort by (household id, month) gives, the rows whose key a neighbour repeats (every row of
    a repeated key); None otherwise."""
    n = len(ids)
    if ids.isna().any() or months.isna().any():
        return None
    repeat = np.zeros(n, dtype=bool)
    if n < 2:
        return repeat
    ids, months = (arrow.array(c.array, type=arrow.large_string(), from_pandas=True)
                   for c in (ids, months))
    same_id = pc.equal(ids.slice(1), ids.slice(0, n - 1))
    after = pc.or_(pc.greater(ids.slice(1), ids.slice(0, n - 1)),
                   pc.and_(same_id, pc.greater_equal(months.slice(1), months.slice(0, n - 1))))
    if not pc.all(after).as_py():
        return None
    same = pc.and_(same_id, pc.equal(months.slice(1), months.slice(0, n - 1)))
    same = same.to_numpy(zero_copy_only=False)
    repeat[1:] |= same
    repeat[:-1] |= same
    return repeat


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
