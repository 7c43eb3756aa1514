"""Point-in-time features: one row per household-month, computed from months ≤ that month only.

The ledger is laid on a dense household × month grid, in chunks of households, and every
window statistic of a row is read from the twelve grid cells ending at its month. Nothing after
the row's month is on the grid that row reads, so a feature cannot see the future, and a
household's features never depend on another household.

Missing data is explicit. A month is *observed* when at least one income cell is recorded (as
in :mod:`riskmodel.model._labels`); within an observed month an empty income or spending cell counts
as zero. A month with no row, or with no income recorded, is unobserved: window sums are
annualised over observed months only (× 12 / observed) and are NaN when fewer months than the
label's ``min_observed_months`` (scaled to the window) were observed. Unknown income is never
read as zero income.

Money features are in yuan per capita per year, so that the per-source figures add up to the
disposable income the label is defined on::

    income_margin_12m = wage_pc_12m + business_pc_12m + property_pc_12m + transfer_pc_12m
                        - medical_pc_12m - education_pc_12m - line

:data:`RECORDED_FEATURES` read incomes as recorded (:mod:`riskmodel.model._recorded`); a ledger
without their columns has them NaN and :func:`ledger_features` leaves them out of training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..config import Config
from ..errors import ConfigError, LedgerError
from ..ledger import EVENTS, HOUSEHOLD_TYPES, INCOME, SPENDING
from ..months import month_index
from ._grid import WINDOW, Grid, ObservedMonths, window_count, window_sum
from ._month_text import FeatureColumns
from ._recorded import (
    RECORDED_FEATURE_INPUTS,
    RECORDED_FEATURES,
    RecordedColumns,
    current_recorded,
    history_recorded,
    months_since,
)

WINDOWS = (3, 6, 12)
# Households laid on the grid at a time: bounds memory whatever the ledger's size.
CHUNK_HOUSEHOLDS = 50_000
# Months-since features count back this far; an older or absent event reads as LOOKBACK.
LOOKBACK = 24

SOURCES = {
    "wage": "inc_wage",
    "business": "inc_business",
    "property": "inc_property",
    "transfer": "inc_transfer",
    "medical": "exp_medical_oop",
    "education": "exp_education",
}
COUNT_FEATURES = [
    "members",
    "chronic_ill",
    "serious_ill",
    "disabled",
    "disabled_severe",
    "students_compulsory",
    "students_noncompulsory",
    "migrant_workers",
    "dropouts",
]
STATE_FEATURES = ["insured_all", "housing_safe", "water_safe", "dibao", "welfare_job"]
EVENT_NAMES = [ev.removeprefix("ev_") for ev in EVENTS]
# Sources whose lowest and highest observed month of a window are features: how a source moves
# within the window, which its sum does not say (a month without wages, one large bill).
EXTREME_SOURCES = ("wage", "business", "medical")
EXTREMES = ("min", "max")

FEATURE_NAMES: list[str] = [
    *[f"income_{kind}_{w}m" for w in WINDOWS for kind in ("ratio", "margin")],
    *[f"{src}_pc_{w}m" for src in SOURCES for w in WINDOWS],
    "income_change_3v12",
    *[f"{src}_change_3v12" for src in ("wage", "business", "transfer", "medical", "education")],
    "wage_change_rel_3v12",
    "business_change_rel_3v12",
    "income_slope_12m",
    "wage_slope_12m",
    "business_slope_12m",
    "income_volatility_12m",
    "wage_volatility_12m",
    "business_volatility_12m",
    "transfer_share_12m",
    "medical_share_12m",
    "education_share_12m",
    *COUNT_FEATURES,
    "labor_ratio",
    "no_labor",
    "dependant_ratio",
    "elderly_ratio",
    "migrant_ratio",
    *[f"ev_{name}_{span}" for name in EVENT_NAMES for span in ("3m", "12m")],
    *[f"months_since_ev_{name}" for name in EVENT_NAMES],
    *STATE_FEATURES,
    "dibao_months_12m",
    "temp_assistance_pc_12m",
    *[f"type_{t}" for t in HOUSEHOLD_TYPES],
    "observed_months_12m",
    "months_since_observed",
    "line_ahead_ratio",
    "income_ratio_ahead_12m",
    *[f"income_ratio_{s}_{w}m" for w in WINDOWS for s in EXTREMES],
    *[f"{src}_pc_{s}_{w}m" for src in EXTREME_SOURCES for w in WINDOWS for s in EXTREMES],
]
FEATURE_NAMES += RECORDED_FEATURES
"""Names of the features :func:`build_features` returns, in column order."""

_NEEDED = [
    "household_id", "month", "county", "household_type", "members", "labor_full",
    "labor_partial", *INCOME, *SPENDING,
]


def ledger_features(ledger: pd.DataFrame) -> list[str]:
    """The features a model trained on this ledger learns from, in :data:`FEATURE_NAMES` order.

    Every feature but those of :data:`RECORDED_FEATURES` whose ledger columns are absent or
    hold no value: a ledger of monthly incomes trains on the features it always did.

    Examples
    --------
    >>> from riskmodel.synthetic import generate_ledger
    >>> names = ledger_features(generate_ledger(households=5, months=3, seed=1))
    >>> "income_margin_12m" in names, "recorded_income_ratio" in names
    (True, False)
    """
    present = {c for cols in RECORDED_FEATURE_INPUTS.values() for c in cols
               if c in ledger.columns and bool(ledger[c].notna().any())}
    return [n for n in FEATURE_NAMES
            if n not in RECORDED_FEATURE_INPUTS or present.intersection(RECORDED_FEATURE_INPUTS[n])]


def feature_causes(config: Config) -> dict[str, str]:
    """The risk cause code each feature belongs to, from the config's ``features`` block.

    Parameters
    ----------
    config : Config

    Returns
    -------
    dict
        ``{feature name: cause code}`` in :data:`FEATURE_NAMES` order.

    Raises
    ------
    ConfigError
        The ``features`` block misses a feature or names one that is not built.

    Examples
    --------
    >>> from riskmodel import load_config
    >>> causes = feature_causes(load_config())
    >>> causes["income_margin_12m"], causes["medical_pc_12m"], causes["wage_change_3v12"]
    ('income', 'illness', 'employment')
    """
    _check_covers(config)
    return {name: config.features[name].cause for name in FEATURE_NAMES}


def feature_monotonic(config: Config) -> dict[str, int]:
    """The known direction of risk of each feature (−1, 0 or 1), from the config.

    Examples
    --------
    >>> from riskmodel import load_config
    >>> feature_monotonic(load_config())["income_margin_12m"]
    -1
    """
    _check_covers(config)
    return {name: int(config.features[name].monotonic) for name in FEATURE_NAMES}


def _check_covers(config: Config) -> None:
    missing = [n for n in FEATURE_NAMES if n not in config.features]
    unknown = [n for n in config.features if n not in set(FEATURE_NAMES)]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"misses {len(missing)} feature(s), e.g. {missing[0]!r}")
        if unknown:
            parts.append(f"names {len(unknown)} unknown feature(s), e.g. {unknown[0]!r}")
        raise ConfigError(
            f"The config's `features` block {' and '.join(parts)}; expected exactly the "
            f"{len(FEATURE_NAMES)} names of riskmodel.model.FEATURE_NAMES."
        )


def build_features(
    ledger: pd.DataFrame, config: Config, months: Sequence[str] | None = None
) -> pd.DataFrame:
    """Point-in-time features of every household-month of a validated ledger.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger (:func:`riskmodel.validate_ledger`). Households may miss months and
        money cells may be empty.
    config : Config
        Supplies the poverty lines, ``label.min_observed_months`` and
        ``label.horizon_months`` (for the lines ahead).
    months : sequence of str, optional
        ``YYYY-MM`` months to build rows for; all months when ``None``. Earlier months of the
        ledger are still read as history.

    Returns
    -------
    DataFrame
        One row per ledger row whose month is in ``months``, in ledger order and with the
        ledger's index; columns :data:`FEATURE_NAMES`, all float64, NaN where unknown.

    Examples
    --------
    >>> from riskmodel import load_config, validate_ledger
    >>> from riskmodel.synthetic import generate_ledger
    >>> ledger = validate_ledger(generate_ledger(households=20, months=14, seed=1)).valid
    >>> last = ledger["month"].max()
    >>> features = build_features(ledger, load_config(), months=[last])
    >>> features.shape == (int((ledger["month"] == last).sum()), len(FEATURE_NAMES))
    True
    >>> bool((features.dtypes == "float64").all())
    True
    """
    _require_columns(ledger)
    n_rows = len(ledger)
    month_codes, month_values = pd.factorize(ledger["month"])
    month_of_code = month_index(month_values) if len(month_values) else np.empty(0, "int64")
    if months is None:
        targets = np.arange(n_rows)
    else:
        wanted = month_index(pd.Series(list(months), dtype=object)) if len(months) else []
        targets = np.flatnonzero(np.isin(month_of_code, wanted)[month_codes])
    out = np.full((len(FEATURE_NAMES), len(targets)), np.nan)
    if len(targets):
        _fill(out, ledger, config, targets, month_of_code.astype("int32")[month_codes])
    return pd.DataFrame(out.T, index=ledger.index[targets], columns=FEATURE_NAMES, copy=False)


def _require_columns(ledger: pd.DataFrame) -> None:
    if not isinstance(ledger, pd.DataFrame):
        raise TypeError(
            f"Got {type(ledger).__name__}, expected a validated ledger as a pandas DataFrame."
        )
    missing = [c for c in _NEEDED if c not in ledger.columns]
    if missing:
        raise LedgerError(
            f"The ledger lacks column {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + "; expected a validated ledger (riskmodel.validate_ledger)."
        )


def _take(ledger: pd.DataFrame, column: str, rows: np.ndarray | None) -> np.ndarray:
    """One column at some rows (every row, in order, when None: then possibly the ledger's own
    array, not to be written to) as float64, NaN where empty or absent."""
    if column not in ledger.columns:
        return np.full(len(ledger) if rows is None else len(rows), np.nan)
    values = ledger[column].array
    if isinstance(values, pd.arrays.NumpyExtensionArray):
        values = np.asarray(values)
        return (values if rows is None else values.take(rows)).astype("float64", copy=False)
    if rows is not None:
        values = values.take(rows)
    return values.to_numpy(dtype="float64", na_value=np.nan)


def _flags(ledger: pd.DataFrame, column: str, rows: np.ndarray | None) -> np.ndarray:
    """Where one column at some rows (every row when None) is positive: true for booleans, false
    where empty or absent. Not to be written to."""
    if column in ledger.columns and isinstance(ledger[column].dtype, pd.BooleanDtype):
        flags = ledger[column].array.to_numpy(dtype=bool, na_value=False)
        return flags if rows is None else flags.take(rows)
    return _take(ledger, column, rows) > 0


def _fill(
    out: np.ndarray, ledger: pd.DataFrame, config: Config, targets: np.ndarray, month: np.ndarray
) -> None:
    """Compute the features of ``targets`` into ``out`` (features × targets)."""
    recorded = FeatureColumns(ledger)
    current = _current_features(ledger, config, targets, month[targets], recorded)
    for j, name in enumerate(FEATURE_NAMES):
        if name in current:
            out[j] = current[name]

    earliest, last = int(month[targets].min()), int(month[targets].max())
    # The grid starts where the earliest 12-month window does, or up to LOOKBACK months earlier
    # for the months-since features, but not before the ledger's first month.
    first = min(earliest - WINDOW + 1, max(earliest - LOOKBACK + 1, int(month.min())))
    width = last - first + 1
    # Row-length index arrays are int32: on a province's ledger each int64 one costs 200 MB.
    house = _household_numbers(ledger["household_id"])
    has_target = np.zeros(int(house.max()) + 1, dtype=bool)
    has_target[house[targets]] = True
    rows = np.flatnonzero((month >= first) & (month <= last) & has_target[house]).astype("int32")
    house = house[rows]
    reordered = bool(np.any(house[1:] < house[:-1]))
    if reordered:
        order = np.argsort(house, kind="stable")
        rows, house = rows[order], house[order]
    dense = np.zeros(len(rows), dtype="int32")
    np.cumsum(house[1:] != house[:-1], out=dense[1:])
    del house
    position = np.full(len(month), -1, dtype="int32")
    position[targets] = np.arange(len(targets), dtype="int32")
    bounds = np.searchsorted(dense, np.arange(0, dense[-1] + CHUNK_HOUSEHOLDS + 1,
                                              CHUNK_HOUSEHOLDS))
    history = [j for j, name in enumerate(FEATURE_NAMES) if name not in current]
    for a, b in zip(bounds[:-1], bounds[1:], strict=False):
        if a == b:
            continue
        chunk = rows[a:b]
        pos = position[chunk]
        is_target = pos >= 0
        pos = pos[is_target]
        grid = Grid(dense[a:b] - dense[a], month[chunk] - first, width, is_target)
        grid.first = first
        grid.whole = not reordered and int(b - a) == len(month)
        recorded.every = chunk if grid.whole else None
        values = _history_features(ledger, config, chunk, grid, current["members"][pos],
                                   current["line"][pos], current["line_ahead"][pos], recorded)
        at = slice(None) if np.array_equal(pos, np.arange(out.shape[1])) else pos  # all, in order
        for j in history:
            if FEATURE_NAMES[j] in values:
                out[j, at] = values[FEATURE_NAMES[j]]


def _household_numbers(ids: pd.Series) -> np.ndarray:
    """``pd.factorize(ids)[0]`` as int32. Integer ids that already number the households 0, 1,
    … in order, each household's rows together (as the scoring job passes them), are kept."""
    values = ids.to_numpy()
    if values.dtype.kind in "iu" and len(values) and values[0] == 0:
        # Steps of 0 or 1 from 0: each id is new exactly when it is one more than the last.
        if (np.diff(values).astype("uint64") <= 1).all():
            return values.astype("int32")
    return pd.factorize(ids)[0].astype("int32")


def _current_features(
    ledger: pd.DataFrame, config: Config, rows: np.ndarray, month: np.ndarray,
    recorded: RecordedColumns,
) -> dict[str, np.ndarray]:
    """Features read from the row itself: make-up, guarantees, assistance, household type."""
    f = {c: _take(ledger, c, rows) for c in [*COUNT_FEATURES, *STATE_FEATURES]}
    members = f["members"]
    labor_full, labor_partial, elderly, children = (
        _take(ledger, c, rows) for c in ("labor_full", "labor_partial", "elderly", "children"))
    f["labor_ratio"] = (labor_full + 0.5 * labor_partial) / members
    f["no_labor"] = (labor_full + labor_partial == 0).astype("float64")
    f["dependant_ratio"] = (elderly + children) / members
    f["elderly_ratio"] = elderly / members
    f["migrant_ratio"] = f["migrant_workers"] / members
    kind = pd.Series(ledger["household_type"].array.take(rows))
    known = kind.notna().to_numpy()
    for t in HOUSEHOLD_TYPES:
        f[f"type_{t}"] = np.where(known, (kind == t).to_numpy(dtype=bool, na_value=False), np.nan)
    places = [pd.Series(ledger[c].array.take(rows)) if c in ledger.columns
              else pd.Series(pd.NA, index=range(len(rows)), dtype="string")
              for c in ("province", "county")]
    f["line"] = _lines(config, month // 12, *places)
    f["line_ahead"] = _line_ahead(config, month, places)
    f["line_ahead_ratio"] = f["line_ahead"] / f["line"]
    f.update(current_recorded(ledger, rows, month, f["line"], recorded))
    return f


def _line_ahead(config: Config, month: np.ndarray, places: list[pd.Series]) -> np.ndarray:
    """The highest line in force over the months (t, t + H] of the label's horizon.

    The label judges a fall against the lines of the months ahead, so a new year's line moves
    households the model has never seen below it. Lines are policy published in config, not
    data from after the month; a year past the configured ones keeps the last configured line.
    """
    years = [pl.year for pl in config.poverty_lines]
    h = config.label.horizon_months
    ahead = np.zeros(len(month))
    for year in range((int(month.min()) + 1) // 12, (int(month.max()) + h) // 12 + 1):
        inside = ((month + 1) // 12 <= year) & (year <= (month + h) // 12)
        if inside.any():
            clamped = np.full(len(month), min(max(year, min(years)), max(years)))
            ahead = np.where(inside, np.maximum(ahead, _lines(config, clamped, *places)), ahead)
    return ahead


def _lines(config: Config, year: np.ndarray, province: pd.Series, county: pd.Series) -> np.ndarray:
    """The monitoring line of each row: county, then province, then national."""
    year_code, years = pd.factorize(year)
    prov_code, provinces = pd.factorize(province, use_na_sentinel=False)
    county_code, counties = pd.factorize(county, use_na_sentinel=False)
    n_prov, n_county = len(provinces), len(counties)
    key = (year_code * n_prov + prov_code) * n_county + county_code
    unique, inverse = np.unique(key, return_inverse=True)
    lines = np.array([
        config.line_for(int(years[k // (n_prov * n_county)]),
                        province=_name(provinces[k // n_county % n_prov]),
                        county=_name(counties[k % n_county]))
        for k in unique
    ])
    return lines[inverse]


def _name(value: object) -> str | None:
    return None if pd.isna(value) else str(value)


def _history_features(
    ledger: pd.DataFrame,
    config: Config,
    rows: np.ndarray,
    grid: Grid,
    members: np.ndarray,
    line: np.ndarray,
    line_ahead: np.ndarray,
    recorded: FeatureColumns,
) -> dict[str, np.ndarray]:
    """Window features of the target rows of one chunk, from the months up to each."""
    f: dict[str, np.ndarray] = {}
    # A chunk of every row reads whole columns: no gather.
    every = None if grid.whole else rows
    for name, ev in zip(EVENT_NAMES, EVENTS, strict=True):
        flags = _flags(ledger, ev, every)
        happened = grid.months(flags)
        f[f"ev_{name}_3m"] = window_count(happened, 3)
        f[f"ev_{name}_12m"] = window_count(happened, WINDOW)
        f[f"months_since_ev_{name}"] = months_since(grid, flags, LOOKBACK)

    full_rows = rows
    incomes = {c: _take(ledger, c, every) for c in INCOME}
    observed = np.zeros(len(rows), dtype=bool)
    for values in incomes.values():
        observed |= ~np.isnan(values)
    f["months_since_observed"] = months_since(grid, observed, LOOKBACK)
    rows, observed = rows[grid.recent], observed[grid.recent]
    incomes = {c: values[grid.recent] for c, values in incomes.items()}
    obs = grid.months(observed, recent=True)
    n_obs = {w: window_count(obs, w) for w in WINDOWS}
    f["observed_months_12m"] = n_obs[WINDOW]
    min_obs = {w: max(1, math.ceil(config.label.min_observed_months * w / WINDOW))
               for w in WINDOWS}
    money = {}
    # Summed in the order riskmodel.model._labels sums them, so the 12-month margin matches the
    # label.
    earned, spent = np.zeros(len(rows)), np.zeros(len(rows))
    for src, column in SOURCES.items():
        values = incomes[column] if column in incomes else _take(ledger, column, rows)
        values[~observed | np.isnan(values)] = 0.0
        money[src] = grid.months(values, recent=True)
        if column in incomes:
            earned += values
        else:
            spent += values
    money["net"] = grid.months(earned - spent, recent=True)

    def per_capita(src: str, w: int) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            value = window_sum(money[src], w) * WINDOW / n_obs[w] / members
        return np.where(n_obs[w] >= min_obs[w], value, np.nan)

    pc = {(src, w): per_capita(src, w) for src in money for w in WINDOWS}
    for w in WINDOWS:
        f[f"income_ratio_{w}m"] = pc["net", w] / line
        f[f"income_margin_{w}m"] = pc["net", w] - line
        for src in SOURCES:
            f[f"{src}_pc_{w}m"] = pc[src, w]
    f["income_ratio_ahead_12m"] = pc["net", WINDOW] / line_ahead
    f["income_change_3v12"] = pc["net", 3] - pc["net", 12]
    for src in ("wage", "business", "transfer", "medical", "education"):
        f[f"{src}_change_3v12"] = pc[src, 3] - pc[src, 12]
    for src in ("wage", "business"):
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = pc[src, 3] / pc[src, 12] - 1
        f[f"{src}_change_rel_3v12"] = np.where(pc[src, 12] > 0, rel, np.nan)

    for w in WINDOWS:
        seen = obs[-w:]
        with np.errstate(invalid="ignore", divide="ignore"):
            annualised = np.where(n_obs[w] >= min_obs[w], WINDOW / members, np.nan)
        for src in ("net", *EXTREME_SOURCES):
            cells = money[src][-w:]
            low = np.where(seen, cells, np.inf).min(axis=0) * annualised
            high = np.where(seen, cells, -np.inf).max(axis=0) * annualised
            if src == "net":
                f[f"income_ratio_min_{w}m"], f[f"income_ratio_max_{w}m"] = low / line, high / line
            else:
                f[f"{src}_pc_min_{w}m"], f[f"{src}_pc_max_{w}m"] = low, high

    enough = n_obs[WINDOW] >= min_obs[WINDOW]
    scale = WINDOW / members
    months = ObservedMonths(obs)
    for name, src in (("income", "net"), ("wage", "wage"), ("business", "business")):
        slope, spread = months.slope_and_spread(money[src] * scale)
        f[f"{name}_slope_12m"] = np.where(enough, slope, np.nan)
        f[f"{name}_volatility_12m"] = np.where(enough, spread, np.nan)
    gross = money["wage"] + money["business"] + money["property"] + money["transfer"]
    gross = window_sum(gross, WINDOW)
    usable = enough & (gross > 0)
    for src in ("transfer", "medical", "education"):
        with np.errstate(invalid="ignore", divide="ignore"):
            f[f"{src}_share_12m"] = np.where(usable, window_sum(money[src], WINDOW) / gross,
                                             np.nan)

    f.update(history_recorded(ledger, full_rows, grid, members, min_obs, LOOKBACK, recorded))

    for column, name in (("dibao", "dibao_months_12m"), ("temp_assistance", "temp_assistance")):
        values = grid.months(_take(ledger, column, rows), recent=True, fill=np.nan)
        empty = np.isnan(values)
        known = ~empty.all(axis=0)
        values[empty] = 0.0  # as np.nansum reads them
        f[name] = np.where(known, window_sum(values, WINDOW), np.nan)
    f["temp_assistance_pc_12m"] = f.pop("temp_assistance") / members
    return f
