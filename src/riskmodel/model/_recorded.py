"""What a county records: incomes as recorded, warnings, status changes and risk types.

A ledger ingested from a county's sources (docs/ledger.md, "Incomes as recorded") holds no
monthly incomes: the national platform's person table repeats the annual figures recorded at the
last verification (``annual_*``, with ``annual_recorded_month``, the first download month of the
current run of identical figures), and the migrant table gives monthly wages (``wage_migrant``).
This module reads them for the label (:func:`recorded_income_pc`: the figures as they stood at a
row's month, never a month's income) and computes the features of them, point in time: a row's
value reads that row and the household's earlier rows only.

It also computes the features of what else the county observes (:data:`OBSERVED_FEATURES`):
the department warnings (``warnings_<code>``, ``warning_amount``) over 3, 6 and 12 months,
低保 starting, the identification and elimination history (``identified_month``,
``eliminated_month``) and the risk types cadres recorded (``recorded_risk_1..5``). Counts of
the past read the household's rows of the last :data:`LOOKBACK` months up to the row's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pcompute

from ..config import CAUSE_CODES, DEPARTMENT_CODES
from ..months import month_index_or_nan

# The annual figures a verification records (yuan per year), as the ingested ledger carries them.
RECORDED_INCOME = ["annual_inc_wage", "annual_inc_business", "annual_inc_property",
                   "annual_inc_transfer"]
RECORDED_SPENDING = ["annual_exp_medical_oop"]
RECORDED_PC = "annual_income_pc"
# Features of incomes as recorded, and the ledger columns each reads (any one of them).
RECORDED_FEATURE_INPUTS = {
    "recorded_income_ratio": ("annual_income_pc", "annual_inc_wage", "annual_inc_business",
                              "annual_inc_property", "annual_inc_transfer"),
    "months_since_recorded": ("annual_recorded_month",),
    "recorded_income_change": ("annual_recorded_month",),
    "migrant_wage_pc_3m": ("wage_migrant",),
    "migrant_wage_pc_12m": ("wage_migrant",),
    "recorded_medical_pc": ("annual_exp_medical_oop",),
}
#: The cause each department's warnings mean (the cause of its ``warnings_<code>_*`` features).
DEPARTMENT_CAUSES = {"medical": "illness", "civil": "income", "education": "education",
                     "police": "accident", "emergency": "disaster", "disability": "disability",
                     "labour": "employment", "housing": "housing", "water": "water"}
WARNING_WINDOWS = (3, 6, 12)
#: Months of a household's rows the history counts read (``times_*``, ``recorded_<cause>``).
LOOKBACK = 24
RECORDED_RISKS = tuple(f"recorded_risk_{i}" for i in range(1, 6))
# Features of what else the county observes, and the ledger columns each reads (any one).
OBSERVED_FEATURE_INPUTS = {
    **{f"warnings_{d}_{w}m": (f"warnings_{d}",) for d in DEPARTMENT_CODES
       for w in WARNING_WINDOWS},
    "warning_amount_12m": ("warning_amount",),
    # 低保 as the county records it (person table and 民政 warnings): only on ledgers that
    # carry the warnings, so a ledger of monthly incomes trains as it always did.
    "dibao_started_3m": ("warnings_civil",),
    "dibao_started_12m": ("warnings_civil",),
    "months_since_identified": ("identified_month",),
    "times_identified_24m": ("identified_month",),
    "times_eliminated_24m": ("eliminated_month",),
    "monitored_now": ("identified_month",),
    **{f"recorded_{c}": RECORDED_RISKS for c in CAUSE_CODES},
}
OBSERVED_FEATURES = list(OBSERVED_FEATURE_INPUTS)
RECORDED_FEATURE_INPUTS.update(OBSERVED_FEATURE_INPUTS)
RECORDED_FEATURES = list(RECORDED_FEATURE_INPUTS)
_CAUSES = pa.array(CAUSE_CODES, type=pa.string())


def _numbers(ledger: pd.DataFrame, column: str) -> np.ndarray:
    """One column as float64, NaN where empty or unreadable; all NaN when the ledger lacks it."""
    if column not in ledger.columns:
        return np.full(len(ledger), np.nan)
    values = ledger[column]
    if not pd.api.types.is_numeric_dtype(values.dtype):
        values = pd.to_numeric(values, errors="coerce")
    return values.to_numpy(dtype="float64", na_value=np.nan)


def column_months(ledger: pd.DataFrame, column: str) -> np.ndarray:
    """A ``YYYY-MM`` column as month numbers (float64; NaN where empty, unreadable or absent)."""
    if column not in ledger.columns:
        return np.full(len(ledger), np.nan)
    return month_index_or_nan(ledger[column])


def has_recorded_incomes(ledger: pd.DataFrame) -> bool:
    """Whether the ledger carries annual figures as recorded (any ``annual_*`` income column)."""
    return any(c in ledger.columns for c in (RECORDED_PC, *RECORDED_INCOME))


def recorded_income_pc(ledger: pd.DataFrame) -> np.ndarray:
    """Annual per-capita disposable income as recorded at each row (yuan per person per year).

    ``annual_income_pc`` where recorded, else (``annual_inc_wage`` + ``annual_inc_business`` +
    ``annual_inc_property`` + ``annual_inc_transfer`` − ``annual_exp_medical_oop``) divided by
    the row's ``members``; within a row whose income figures are recorded, an empty one counts
    as zero, as in a monthly row. NaN where nothing is recorded, and on every row of a ledger
    without those columns.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger; the recorded columns are optional (docs/ledger.md).

    Returns
    -------
    ndarray of float64
        One value per row, in ledger order.

    Examples
    --------
    >>> import pandas as pd
    >>> ledger = pd.DataFrame({"members": [2, 4], "annual_income_pc": [None, 5000.0],
    ...                        "annual_inc_wage": [9000.0, 1.0],
    ...                        "annual_inc_transfer": [2000.0, 1.0],
    ...                        "annual_exp_medical_oop": [1000.0, 1.0]})
    >>> recorded_income_pc(ledger).tolist()
    [5000.0, 5000.0]
    """
    n = len(ledger)
    if not has_recorded_incomes(ledger):
        return np.full(n, np.nan)
    pc = _numbers(ledger, RECORDED_PC)
    if not np.isnan(pc).any():
        # Recorded on every row: the parts are not read.
        return pc.copy()
    # The row's sum of the figures it records, column by column from 0.0: np.nansum of the
    # row's values, without laying the columns side by side.
    recorded, total = np.zeros(n, dtype=bool), np.zeros(n)
    for column in RECORDED_INCOME:
        values = _numbers(ledger, column)
        missing = np.isnan(values)
        recorded |= ~missing
        total += np.where(missing, 0.0, values)
    medical = _numbers(ledger, RECORDED_SPENDING[0])
    members = _numbers(ledger, "members")
    with np.errstate(invalid="ignore", divide="ignore"):
        from_parts = (total - np.nan_to_num(medical)) / members
    return np.where(np.isnan(pc), np.where(recorded, from_parts, np.nan), pc)


class RecordedColumns:
    """What the recorded features read of a ledger at many rows, each computed once for every
    row of the ledger (row by row, so any row's value is the same whichever rows are asked):
    the recorded income per capita, ``YYYY-MM`` columns as month numbers, the risk types."""

    def __init__(self, ledger: pd.DataFrame):
        self.ledger = ledger
        self._months: dict[str, np.ndarray] = {}
        self._income_pc: np.ndarray | None = None
        self._risks: np.ndarray | None = None

    def income_pc(self, rows: np.ndarray) -> np.ndarray:
        """:func:`recorded_income_pc` at ``rows``."""
        if self._income_pc is None:
            self._income_pc = recorded_income_pc(self.ledger)
        return self._income_pc[rows]

    def months(self, column: str, rows: np.ndarray) -> np.ndarray:
        """:func:`column_months` at ``rows``."""
        if column not in self._months:
            self._months[column] = column_months(self.ledger, column)
        return self._months[column][rows]

    def risks(self, rows: np.ndarray) -> np.ndarray:
        """The cause codes recorded in ``recorded_risk_1..5`` at ``rows`` as bits: bit j set
        when one of the row's columns names ``CAUSE_CODES[j]`` (other texts count as none)."""
        if self._risks is None:
            bits = np.zeros(len(self.ledger), dtype="int32")
            for c in (c for c in RECORDED_RISKS if c in self.ledger.columns):
                values = self.ledger[c]
                if isinstance(values.dtype, pd.StringDtype):
                    # Text: each cell looked up among the codes (null: none of them).
                    at = pcompute.index_in(pa.array(values.array), value_set=_CAUSES)
                    found = at.to_numpy(zero_copy_only=False)
                    known = ~np.isnan(found)
                    bits[known] |= np.left_shift(1, found[known].astype("int32"))
                    continue
                found, texts = pd.factorize(values, use_na_sentinel=True)
                lookup = np.array([1 << CAUSE_CODES.index(x) if x in CAUSE_CODES else 0
                                   for x in texts] + [0], dtype="int32")
                bits |= lookup[found]  # found == -1 (NA) reads the trailing 0
            self._risks = bits
        return self._risks[rows]


def _numbers_at(ledger: pd.DataFrame, column: str, rows: np.ndarray) -> np.ndarray:
    """:func:`_numbers` of one column at some rows."""
    if column not in ledger.columns:
        return np.full(len(rows), np.nan)
    return _numbers(pd.DataFrame({column: ledger[column].array.take(rows)}), column)


def current_recorded(
    ledger: pd.DataFrame, rows: np.ndarray, month: np.ndarray, line: np.ndarray,
    columns: RecordedColumns | None = None,
) -> dict[str, np.ndarray]:
    """Features read from the rows themselves: the recorded income against the line, the
    recorded medical costs per member and the months since they were recorded (only those
    whose ledger columns are present). ``columns``: the ledger's :class:`RecordedColumns`,
    when the caller keeps one."""
    f: dict[str, np.ndarray] = {}
    columns = columns or RecordedColumns(ledger)
    if any(c in ledger.columns for c in RECORDED_FEATURE_INPUTS["recorded_income_ratio"]):
        f["recorded_income_ratio"] = columns.income_pc(rows) / line
    if RECORDED_SPENDING[0] in ledger.columns:
        with np.errstate(invalid="ignore", divide="ignore"):
            f["recorded_medical_pc"] = (_numbers_at(ledger, RECORDED_SPENDING[0], rows)
                                        / _numbers_at(ledger, "members", rows))
    if "annual_recorded_month" in ledger.columns:
        since = month - columns.months("annual_recorded_month", rows)
        # A record dated after the row's month is not known at it.
        f["months_since_recorded"] = np.where(since >= 0, since, np.nan)
    if "identified_month" in ledger.columns:
        f.update(_status(columns, rows, month))
    return f


def _dates(columns: RecordedColumns, column: str, rows: np.ndarray) -> np.ndarray:
    """A ``YYYY-MM`` column at some rows as month numbers (NaN where empty or absent)."""
    if column not in columns.ledger.columns:
        return np.full(len(rows), np.nan)
    return columns.months(column, rows)


def _status(columns: RecordedColumns, rows: np.ndarray,
            month: np.ndarray) -> dict[str, np.ndarray]:
    """Months since the household was identified as a monitoring object (NaN: never, as the
    row records it) and whether it is monitored now (identified by the row's month and not
    eliminated since)."""
    identified = _dates(columns, "identified_month", rows)
    eliminated = _dates(columns, "eliminated_month", rows)
    with np.errstate(invalid="ignore"):
        since = month - identified
        known = since >= 0
        ended = (eliminated >= identified) & (eliminated <= month)
    return {"months_since_identified": np.where(known, since, np.nan),
            "monitored_now": (known & ~ended).astype("float64")}


def history_recorded(
    ledger: pd.DataFrame, rows: np.ndarray, grid, members: np.ndarray, min_obs: dict[int, int],
    lookback: int, columns: RecordedColumns | None = None,
) -> dict[str, np.ndarray]:
    """Features of a chunk's target rows read from the household's months up to each: the change
    at the last verification and migrant wages per capita over 3 and 12 months (annualised over
    the months a migrant table was downloaded; NaN with fewer than ``min_obs`` of them).
    ``columns``: the ledger's :class:`RecordedColumns`, when the caller keeps one."""
    f: dict[str, np.ndarray] = {}
    columns = columns or RecordedColumns(ledger)
    if "annual_recorded_month" in ledger.columns:
        f["recorded_income_change"] = _recorded_change(columns, rows, grid, lookback)
    if "wage_migrant" in ledger.columns:
        wages = _numbers(pd.DataFrame({"wage_migrant": ledger["wage_migrant"].array.take(
            rows[grid.recent])}), "wage_migrant")
        known = grid.block(~np.isnan(wages), recent=True)
        paid = grid.block(np.nan_to_num(wages), recent=True)
        for w in (3, 12):
            n = known[:, -w:].sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                value = paid[:, -w:].sum(axis=1) * 12 / n / members
            f[f"migrant_wage_pc_{w}m"] = np.where(n >= min_obs[w], value, np.nan)
    f.update(_observed_history(ledger, rows, grid, columns))
    return f


def _at(ledger: pd.DataFrame, column: str, rows: np.ndarray) -> np.ndarray:
    """One numeric or boolean column at some rows as float64, NaN where empty."""
    values = ledger[column].array.take(rows)
    if not pd.api.types.is_numeric_dtype(values.dtype):
        values = pd.to_numeric(pd.Series(values), errors="coerce").array
    return values.to_numpy(dtype="float64", na_value=np.nan)


def _on_grid(grid, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """Values given at the chunk's rows laid on the flat household × month grid."""
    if getattr(grid, "full", False):
        # Every cell of the grid is a row, in order.
        return np.array(values, dtype="float64")
    out = np.full(grid.size, fill)
    out[grid.cells] = values
    return out


def _observed_history(ledger: pd.DataFrame, rows: np.ndarray, grid,
                      columns: RecordedColumns) -> dict[str, np.ndarray]:
    """Warnings per department over 3/6/12 months, the warned amount over 12, 低保 starting,
    the identification and elimination counts and the recorded risk types, per target row,
    from the household's rows up to its month (only those whose ledger columns are present)."""
    f: dict[str, np.ndarray] = {}
    # The windows read only the chunk's recent rows (those in some target's 12 months).
    recent = rows[grid.recent]
    for dept in DEPARTMENT_CODES:
        column = f"warnings_{dept}"
        if column in ledger.columns:
            # Whole counts: window sums are exact in any order.
            counts = grid.block(np.nan_to_num(_at(ledger, column, recent), copy=False),
                                recent=True)
            for w in WARNING_WINDOWS:
                f[f"{column}_{w}m"] = counts[:, -w:].sum(axis=1)
    if "warning_amount" in ledger.columns:
        amount = grid.block(np.nan_to_num(_at(ledger, "warning_amount", recent)), recent=True)
        f["warning_amount_12m"] = amount.sum(axis=1)
    if "warnings_civil" in ledger.columns and "dibao" in ledger.columns:
        dibao = _on_grid(grid, _at(ledger, "dibao", rows)).reshape(-1, grid.width)
        started = np.zeros_like(dibao, dtype=bool)
        # Started in a month: 低保 that month, none the household's month before it.
        started[:, 1:] = (dibao[:, 1:] == 1) & (dibao[:, :-1] == 0)
        started = started.ravel()[grid.window]
        for w in (3, 12):
            f[f"dibao_started_{w}m"] = started[:, -w:].any(axis=1).astype("float64")
    for column, name in (("identified_month", "times_identified_24m"),
                         ("eliminated_month", "times_eliminated_24m")):
        if column in ledger.columns:
            dates = _dates(columns, column, rows)
            col = grid.cells % grid.width + grid.first
            dates[dates > col] = np.nan  # a date after the row's month is not known at it
            f[name] = _distinct_runs(_on_grid(grid, dates), grid, LOOKBACK)
    if any(c in ledger.columns for c in RECORDED_RISKS):
        bits = columns.risks(rows)
        if getattr(grid, "full", False) and grid.width <= LOOKBACK:
            # Every row of the grid is a household's, its target the last column, all of it
            # within the lookback: the types of the row's cells together.
            seen = np.bitwise_or.reduce(bits.reshape(-1, grid.width), axis=1)
            for j, cause in enumerate(CAUSE_CODES):
                f[f"recorded_{cause}"] = ((seen >> j) & 1 == 1).astype("float64")
            return f
        t = grid.targets
        # A type counts when a row of the LOOKBACK months up to the target's (in its
        # household's row of the grid) records it.
        lo = t - np.minimum(t % grid.width, LOOKBACK - 1)
        marked = np.flatnonzero(bits)
        cells, bits = grid.cells[marked], bits[marked]
        for j, cause in enumerate(CAUSE_CODES):
            at = np.sort(cells[(bits >> j) & 1 == 1])
            n = np.searchsorted(at, t, side="right") - np.searchsorted(at, lo, side="left")
            f[f"recorded_{cause}"] = (n > 0).astype("float64")
    return f


def months_since(grid, flags: np.ndarray, lookback: int) -> np.ndarray:
    """Months from the last flagged row up to each target's month, capped at ``lookback``."""
    # The last flagged cell up to each target's, in grid order: one in an earlier household's
    # row counts as none.
    flagged = np.sort(grid.cells[flags])
    at = np.searchsorted(flagged, grid.targets, side="right") - 1
    last = flagged[np.maximum(at, 0)] if len(flagged) else np.zeros(len(at), dtype="int64")
    last = np.where(at >= 0, last, -1)
    col = grid.targets % grid.width
    base = grid.targets - col
    steps = np.where(last >= base, last - base, -lookback - 1)
    return np.minimum(col - steps, lookback).astype("float64")


def _distinct_runs(values: np.ndarray, grid, lookback: int) -> np.ndarray:
    """Per target, the runs of one known value among the household's cells of the last
    ``lookback`` months up to the target's (a recorded date counted once however many months
    repeat it); reads nothing before the window, so the count is the same whatever the grid's
    first month."""
    # Only the known cells, in grid order (each household's row after the one before).
    width = grid.width
    cells = np.flatnonzero(~np.isnan(values))
    v = values[cells]
    row = cells - cells % width
    # A known cell opens a run unless the known cell before it, in the same row, holds its value.
    new = np.ones(len(cells), dtype=bool)
    new[1:] = (row[1:] != row[:-1]) | (v[1:] != v[:-1])
    opened_at = cells[new]
    t = grid.targets
    base = t - t % width
    opened = base + np.maximum(t % width - lookback + 1, 0)
    count = (np.searchsorted(opened_at, t, side="right")
             - np.searchsorted(opened_at, opened, side="left"))
    # The window's first known cell is a run of its own even when it repeats an older value.
    opens = np.zeros(len(t), dtype=bool)
    if len(cells):
        at = np.searchsorted(cells, opened, side="left")
        found = np.minimum(at, len(cells) - 1)
        # The first known cell of the window (its column; past the target's: none).
        first = np.where(at < len(cells), cells[found] - base, width)
        opens = (first <= t % width) & ~new[found]
    return (count + opens).astype("float64")


def _recorded_change(columns: RecordedColumns, rows: np.ndarray, grid,
                     lookback: int) -> np.ndarray:
    """Change of the recorded per-capita income at the last verification, per target row.

    The target row's ``annual_recorded_month`` R starts its run of identical figures; the
    change is the per-capita figure of the household's row at R less the one of its last row
    before R that holds a figure. Both rows lie within ``lookback`` months up to the target's
    month, so nothing after it is read. NaN when either is unknown.
    """
    width = grid.width
    pc = np.full(grid.size, np.nan)
    pc[grid.cells] = columns.income_pc(rows)
    start = np.full(grid.size, np.nan)
    start[grid.cells] = columns.months("annual_recorded_month", rows) - grid.first
    # The latest column up to each cell whose row holds a figure (-1: none), per household.
    latest = np.where(np.isnan(pc), -1, np.arange(grid.size) % width)
    latest = np.maximum.accumulate(latest.reshape(-1, width), axis=1).ravel()
    col = grid.targets % width
    base = grid.targets - col
    earliest = col - lookback + 1
    r = start[grid.targets]
    with np.errstate(invalid="ignore"):
        usable = (r >= earliest) & (r >= 1) & (r <= col)
    r = np.where(usable, r, 1).astype("int64")
    before = latest[base + r - 1]
    usable &= (before >= 0) & (before >= earliest)
    change = pc[base + r] - pc[base + np.maximum(before, 0)]
    return np.where(usable, change, np.nan)
