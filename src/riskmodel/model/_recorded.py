"""Incomes as recorded: the annual figures of the last verification and the migrant wages.

A ledger ingested from a county's sources (docs/ledger.md, "Incomes as recorded") holds no
monthly incomes: the national platform's person table repeats the annual figures recorded at the
last verification (``annual_*``, with ``annual_recorded_month``, the first download month of the
current run of identical figures), and the migrant table gives monthly wages (``wage_migrant``).
This module reads them for the label (:func:`recorded_income_pc`: the figures as they stood at a
row's month, never a month's income) and computes the features of them, point in time: a row's
value reads that row and the household's earlier rows only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
}
RECORDED_FEATURES = list(RECORDED_FEATURE_INPUTS)


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
    incomes = np.column_stack([_numbers(ledger, c) for c in RECORDED_INCOME])
    medical = _numbers(ledger, RECORDED_SPENDING[0])
    recorded = ~np.isnan(incomes).all(axis=1)
    members = _numbers(ledger, "members")
    with np.errstate(invalid="ignore", divide="ignore"):
        from_parts = (np.nansum(incomes, axis=1) - np.nan_to_num(medical)) / members
    pc = _numbers(ledger, RECORDED_PC)
    return np.where(np.isnan(pc), np.where(recorded, from_parts, np.nan), pc)


def recorded_rows(ledger: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The rows' members and recorded columns only (a ledger may carry many other columns)."""
    columns = ["members", *{c for cols in RECORDED_FEATURE_INPUTS.values() for c in cols}]
    return ledger[sorted(c for c in columns if c in ledger.columns)].iloc[rows]


def current_recorded(
    ledger: pd.DataFrame, rows: np.ndarray, month: np.ndarray, line: np.ndarray
) -> dict[str, np.ndarray]:
    """Features read from the rows themselves: the recorded income against the line and the
    months since it was recorded (only those whose ledger columns are present)."""
    f: dict[str, np.ndarray] = {}
    if any(c in ledger.columns for c in RECORDED_FEATURE_INPUTS["recorded_income_ratio"]):
        f["recorded_income_ratio"] = recorded_income_pc(recorded_rows(ledger, rows)) / line
    if "annual_recorded_month" in ledger.columns:
        since = month - column_months(recorded_rows(ledger, rows), "annual_recorded_month")
        # A record dated after the row's month is not known at it.
        f["months_since_recorded"] = np.where(since >= 0, since, np.nan)
    return f


def history_recorded(
    ledger: pd.DataFrame, rows: np.ndarray, grid, members: np.ndarray, min_obs: dict[int, int],
    lookback: int,
) -> dict[str, np.ndarray]:
    """Features of a chunk's target rows read from the household's months up to each: the change
    at the last verification and migrant wages per capita over 3 and 12 months (annualised over
    the months a migrant table was downloaded; NaN with fewer than ``min_obs`` of them)."""
    f: dict[str, np.ndarray] = {}
    if "annual_recorded_month" in ledger.columns:
        f["recorded_income_change"] = _recorded_change(ledger, rows, grid, lookback)
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
    return f


def _recorded_change(ledger: pd.DataFrame, rows: np.ndarray, grid, lookback: int) -> np.ndarray:
    """Change of the recorded per-capita income at the last verification, per target row.

    The target row's ``annual_recorded_month`` R starts its run of identical figures; the
    change is the per-capita figure of the household's row at R less the one of its last row
    before R that holds a figure. Both rows lie within ``lookback`` months up to the target's
    month, so nothing after it is read. NaN when either is unknown.
    """
    frame = recorded_rows(ledger, rows)
    width = grid.width
    pc = np.full(grid.size, np.nan)
    pc[grid.cells] = recorded_income_pc(frame)
    start = np.full(grid.size, np.nan)
    start[grid.cells] = column_months(frame, "annual_recorded_month") - grid.first
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
