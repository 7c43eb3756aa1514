"""The label: falling below the monitoring line within the horizon.

Net disposable income of a month is incomes minus rigid spending (medical out-of-pocket and
education). The annual per-capita figure at month m sums the 12 months ending at m and divides
by ``members`` at m; with 6–11 observed months it is annualised (× 12 / observed), with fewer it
is unknown. A household is poor at m when that figure is below the line for m's year and region.
The target at t is 1 when the household is not poor at t and poor at some month in (t, t+H].

A month counts as observed when at least one income cell is recorded; within an observed month
an empty income or spending cell counts as zero (a visit that records no wage means none was
earned). A month with no row for the household, or no income recorded, is unobserved.

Incomes as recorded (docs/ledger.md): a ledger ingested from a county's sources holds no
monthly incomes but the annual figures of the last verification, repeated on every download
until the next one (``annual_*``). Where the monthly figure of a row is unknown, the household's
poverty at m is read from the figures as recorded at m: ``annual_income_pc``, else (wage +
business + property + transfer − medical out-of-pocket) / ``members``, against m's line. That is
the level the county itself last recorded, never a month's income: a repeated figure repeats a
status and is no new fall.

``label.kind`` chooses the target: ``income`` (the fall above), ``identified`` (the county
identified the household as a monitoring object in (t, t+H], ``identified_month`` as recorded in
the rows up to t+H; households monitored at t are not training rows) or ``either``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import Config
from ..errors import LedgerError
from ..ledger import INCOME, SPENDING
from ..months import month_index
from ._recorded import column_months, has_recorded_incomes, recorded_income_pc

WINDOW = 12

def net_income(ledger: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Monthly net disposable income and whether the month was observed."""
    observed = np.zeros(len(ledger), dtype=bool)
    for column in INCOME:
        observed |= ledger[column].notna().to_numpy()
    if not observed.any():
        # A ledger of incomes as recorded: no month observed, nothing to sum.
        return np.full(len(ledger), np.nan), observed
    incomes = ledger[INCOME].to_numpy(dtype="float64", na_value=np.nan)
    spending = ledger[SPENDING].to_numpy(dtype="float64", na_value=np.nan)
    observed = ~np.isnan(incomes).all(axis=1)
    net = np.nansum(incomes, axis=1) - np.nansum(spending, axis=1)
    return np.where(observed, net, np.nan), observed


def poverty_lines(
    config: Config, year: np.ndarray, province: pd.Series | None, county: pd.Series | None
) -> np.ndarray:
    """The monitoring line of each row: county, then province, then national."""
    year = np.asarray(year, dtype="int64")
    n = len(year)
    if n < 2:
        return _lines(config, year, province, county)
    # A ledger's rows in household order hold the same year and place for months on end: the
    # line is read at the first row of each run of equal neighbours.
    new = np.ones(n, dtype=bool)
    new[1:] = year[1:] != year[:-1]
    for place in (province, county):
        if place is not None:
            new[1:] |= _changes(place)
    starts = np.flatnonzero(new)
    if len(starts) > n // 4:
        return _lines(config, year, province, county)
    lines = _lines(config, year[starts], *(None if place is None else _take(place, starts)
                                           for place in (province, county)))
    return np.repeat(lines, np.diff(np.append(starts, n)))


def _changes(values) -> np.ndarray:
    """Whether each cell after the first differs from the one before it (an empty cell beside
    anything counts as a change)."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.StringDtype):
        text = pa.array(values.array, type=pa.large_string(), from_pandas=True)
        n = len(text)
        same = pc.fill_null(pc.equal(text.slice(1), text.slice(0, n - 1)), False)
        return ~same.to_numpy(zero_copy_only=False)
    codes = pd.factorize(pd.Series(values, copy=False), use_na_sentinel=True)[0]
    return (codes[1:] != codes[:-1]) | (codes[1:] < 0)


def _take(values, rows: np.ndarray):
    return values.iloc[rows] if isinstance(values, pd.Series) else np.asarray(values)[rows]


def _lines(
    config: Config, year: np.ndarray, province: pd.Series | None, county: pd.Series | None
) -> np.ndarray:
    """:func:`poverty_lines` of every row, each distinct year and place looked up once."""
    n = len(year)
    # Factorize each key column on its own and combine the small integer codes: a MultiIndex
    # of Python objects costs seconds per million rows.
    parts = [pd.factorize(pd.Series(values, copy=False), use_na_sentinel=False)
             for values in (np.asarray(year, dtype="int64"),
                            province if province is not None else np.full(n, None),
                            county if county is not None else np.full(n, None))]
    (y_codes, years), (p_codes, provinces), (c_codes, counties) = parts
    combined = (y_codes * len(provinces) + p_codes) * len(counties) + c_codes
    codes, keys = pd.factorize(combined)
    y_of, rest = np.divmod(keys, len(provinces) * len(counties))
    p_of, c_of = np.divmod(rest, len(counties))
    values = np.array([
        config.line_for(int(years[y]), province=_opt(provinces[p]), county=_opt(counties[c]))
        for y, p, c in zip(y_of, p_of, c_of, strict=True)
    ], dtype="float64")
    return values[codes]


def _opt(value: object) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _text_values(column: pd.Series):
    """A column's values as a frame built of them stores them: text columns as ``str``
    without a round trip through Python objects."""
    if isinstance(column.dtype, pd.StringDtype):
        return column.astype("str").array
    return column.to_numpy()


def poverty_status(ledger: pd.DataFrame, config: Config,
                   months: np.ndarray | None = None) -> pd.DataFrame:
    """Annual per-capita disposable income and poverty of every household-month.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger (see :func:`riskmodel.validate_ledger`). ``household_id`` may be
        integer codes instead of the ids (0 ≤ code < rows, one per household), as the scoring
        numbers them.
    config : Config
        Supplies the poverty lines and ``label.min_observed_months``.
    months : ndarray of int, optional
        The rows' month numbers (:func:`riskmodel.months.month_index` of ``month``), when the
        caller has them.

    Returns
    -------
    DataFrame
        One row per ledger row, in ledger order: ``household_id``, ``month``,
        ``observed_months`` (of the trailing 12), ``income_pc`` (annual, per capita; NaN when
        unknown), ``line`` and ``poor`` (nullable boolean; NA when unknown).

    Notes
    -----
    A row whose monthly figure is unknown (fewer than ``label.min_observed_months`` observed)
    reads :func:`recorded_income_pc`, the annual figures as recorded at that row, where the
    ledger has them; ``observed_months`` still counts monthly observations only.
    """
    m = month_index(ledger["month"]) if months is None else np.asarray(months)
    net, observed = net_income(ledger)
    if observed.any():
        total, n_obs = _trailing_sums(household_rows(ledger["household_id"]), m, net,
                                      observed)
    else:
        # Nothing observed: every trailing window sums to zero over zero months.
        total, n_obs = np.zeros(len(m)), np.zeros(len(m))
    members = ledger["members"].to_numpy(dtype="float64")
    known = n_obs >= config.label.min_observed_months
    with np.errstate(invalid="ignore", divide="ignore"):
        income_pc = np.where(known, total * WINDOW / np.maximum(n_obs, 1) / members, np.nan)
    if has_recorded_incomes(ledger):
        # Monthly figures where known; the figures as recorded at m where not.
        income_pc = np.where(known, income_pc, recorded_income_pc(ledger))
        known = ~np.isnan(income_pc)
    line = poverty_lines(config, m // 12, ledger.get("province"), ledger.get("county"))
    poor = pd.array(income_pc < line, dtype="boolean")
    poor[~known] = pd.NA
    return pd.DataFrame({
        "household_id": _text_values(ledger["household_id"]),
        "month": _text_values(ledger["month"]),
        "observed_months": n_obs.astype("int64"),
        "income_pc": income_pc,
        "line": line,
        "poor": poor,
    })


def household_rows(ids: pd.Series) -> np.ndarray:
    """A grid row per household: the ids themselves when they are integer codes already
    (0 ≤ code < rows), else the ids numbered in order of first appearance."""
    values = ids.to_numpy() if isinstance(ids.dtype, np.dtype) else None
    if (values is not None and values.dtype.kind in "iu" and len(values)
            and values.min() >= 0 and values.max() < len(values)):
        return values
    return pd.factorize(ids)[0]


def _trailing_sums(codes: np.ndarray, m: np.ndarray, net: np.ndarray,
                   observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the net income and the observed months of its household's trailing 12 months
    (each household's months on a grid; a window's sum is a difference of running sums)."""
    first = m.min()
    n_months = int(m.max() - first + 1)
    col = m - first
    grid_net = np.zeros((codes.max() + 1, n_months + WINDOW))
    grid_obs = np.zeros_like(grid_net)
    grid_net[codes, col + WINDOW] = np.where(observed, net, 0.0)
    grid_obs[codes, col + WINDOW] = observed
    csum_net = np.cumsum(grid_net, axis=1)
    csum_obs = np.cumsum(grid_obs, axis=1)
    at = col + WINDOW
    total = csum_net[codes, at] - csum_net[codes, at - WINDOW]
    n_obs = csum_obs[codes, at] - csum_obs[codes, at - WINDOW]
    return total, n_obs


def binary_target(y) -> tuple[np.ndarray, np.ndarray]:
    """The classes of a binary target and its 0/1 codes; a clear error for anything else."""
    from sklearn.utils.multiclass import type_of_target

    y_type = type_of_target(y, input_name="y", raise_unknown=True)
    if y_type != "binary":
        raise ValueError(f"Only binary classification is supported. The type of the target is "
                         f"{y_type}.")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"Got one class only ({classes[0]!r}); expected both outcomes, "
                         "households that fell and households that did not.")
    return classes, codes


def make_labels(ledger: pd.DataFrame, config: Config, horizon: int | None = None) -> pd.DataFrame:
    """Training target of every row, as ``label.kind`` defines a fall.

    ``income`` (default): not poor at t and poor at some month in (t, t + H]; a row is a
    training row only when its poverty at t is known and false, and the ledger runs at least H
    months past t. ``identified``: the household is identified as a monitoring object in
    (t, t + H] (``identified_month`` as recorded in the rows up to t + H); rows whose household
    is monitored at t (``household_type`` monitored) are not training rows. ``either``: one or
    the other, on the rows that are training rows of both. With ``label.target_column`` set in
    config, that column of the ledger is the target instead (rows where it is empty are not
    training rows).

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger.
    config : Config
    horizon : int, optional
        Overrides ``label.horizon_months``.

    Returns
    -------
    DataFrame
        :func:`poverty_status` columns plus ``target`` (float: 1.0, 0.0, or NaN when the row
        is not a training row).

    Raises
    ------
    LedgerError
        ``label.kind`` identified or either on a ledger without ``identified_month``.

    Examples
    --------
    >>> from riskmodel import load_config
    >>> from riskmodel.synthetic import generate_ledger
    >>> labels = make_labels(generate_ledger(households=50, months=24, seed=3), load_config())
    >>> sorted(labels["target"].dropna().unique().tolist()) in ([0.0], [0.0, 1.0])
    True
    """
    h = config.label.horizon_months if horizon is None else horizon
    if h < 1:
        raise ValueError(f"Got horizon={h!r}, expected a positive integer.")
    kind = config.label.kind
    if kind != "income" and "identified_month" not in ledger.columns:
        raise LedgerError(
            f"label.kind {kind} reads the ledger's identified_month column, which this ledger "
            "lacks (a ledger ingested from a county's sources has it); use label.kind income.")
    status = poverty_status(ledger, config)
    m = month_index(status["month"])
    last = m.max()
    if config.label.target_column is not None:
        name = config.label.target_column
        if name not in ledger:
            raise KeyError(f"label.target_column names {name!r}, which the ledger lacks.")
        status["target"] = pd.to_numeric(ledger[name], errors="coerce").to_numpy(dtype="float64")
        return status

    codes, _ = pd.factorize(status["household_id"])
    first = m.min()
    n_months = int(last - first + 1)
    col = m - first
    in_ledger = m + h <= last
    if kind == "identified":
        eligible = in_ledger & ~_monitored(ledger)
        target = _identified_within(ledger, codes, col, n_months, h)
        status["target"] = np.where(eligible, target.astype("float64"), np.nan)
        return status

    # poor as 1, not poor as 0, unknown as 0: an unknown month is no evidence of a fall.
    grid = np.zeros((codes.max() + 1, n_months + h + 1))
    grid[codes, col + 1] = status["poor"].to_numpy(dtype="float64", na_value=0.0)
    csum = np.cumsum(grid, axis=1)
    falls = (csum[codes, col + 1 + h] - csum[codes, col + 1]) > 0
    poor_now = status["poor"].to_numpy(dtype="float64", na_value=np.nan)
    eligible = (poor_now == 0) & in_ledger
    if kind == "either":
        eligible &= ~_monitored(ledger)
        falls |= _identified_within(ledger, codes, col, n_months, h)
    status["target"] = np.where(eligible, falls.astype("float64"), np.nan)
    return status


def _monitored(ledger: pd.DataFrame) -> np.ndarray:
    """Whether each row's household is a monitoring object that month (``household_type``)."""
    if "household_type" not in ledger.columns:
        return np.zeros(len(ledger), dtype=bool)
    return (ledger["household_type"] == "monitored").to_numpy(dtype=bool, na_value=False)


def _identified_within(
    ledger: pd.DataFrame, codes: np.ndarray, col: np.ndarray, n_months: int, h: int
) -> np.ndarray:
    """Whether each row's household is identified in (t, t + h], as recorded up to t + h.

    A row at month s that records ``identified_month`` X tells that X was known at s. For each
    household and identification month X, the earliest s it was known at is kept on a grid;
    the row at t is identified within the horizon when some X in (t, t + h] was known by t + h.
    """
    known_at = np.full((codes.max() + 1, n_months + h + 1), np.iinfo("int64").max)
    ident = column_months(ledger, "identified_month")
    recorded = ~np.isnan(ident)
    x = np.full(len(ident), -1, dtype="int64")
    x[recorded] = ident[recorded].astype("int64") - int(month_index(ledger["month"]).min())
    usable = recorded & (x >= 0) & (x < n_months + h + 1)
    np.minimum.at(known_at, (codes[usable], x[usable]), col[usable])
    out = np.zeros(len(col), dtype=bool)
    for d in range(1, h + 1):
        out |= known_at[codes, np.minimum(col + d, n_months + h)] <= col + h
    return out
