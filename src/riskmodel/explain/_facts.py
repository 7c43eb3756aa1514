"""The household's facts as its own ledger shows them, for the reasons and their text.

:func:`household_facts` reads, for every scored household at its month, the figures a reason
prints and its evidence rules judge (members, incomes and spending over the last year, the
shock's size against the level it broke, the line ahead); :func:`trailing_window` lays out the
months read back; :func:`cause_givebacks` measures what each cause took from the household.
Everything is vectorised over households.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ..config import EVENT_FACTS, FACTS, RULE_FACTS, SHARE_FACTS, Config
from ..ledger import INCOME, SPENDING
from ..model import poverty_lines, recorded_income_pc
from ..months import month_index, month_label

WINDOW = 12
RECENT = 3
# Months read back: the last year, and the year before it for the level a shock broke.
SPAN = 24
# Member counts read back over the window (a migrant worker come home shows in them).
WINDOW_COUNTS = ["migrant_workers"]

MISSING = "—"
# Money facts summed over the window's months: unknown where no month is observed.
UNKNOWN_WITHOUT_MONTHS = ["medical_3m", "medical_12m", "education_12m", "wage_3m",
                          "wage_before", "business_3m", "business_before"]


def household_facts(
    rows: pd.DataFrame,
    config: Config,
    history: pd.DataFrame | None = None,
    window: LedgerWindow | None = None,
) -> pd.DataFrame:
    """The household's own figures that reason text and the consistency rules use.

    Parameters
    ----------
    rows : DataFrame
        Validated ledger rows, one per household-month to explain.
    config : Config
        Supplies the monitoring lines and ``label.min_observed_months``.
    history : DataFrame, optional
        The validated ledger the rows come from; trailing sums (12 and 3 months) are taken from
        it. ``None`` uses ``rows`` alone, so trailing figures cover only the months given.
    window : LedgerWindow, optional
        :func:`trailing_window` of ``rows`` and ``history``, when already computed.

    Returns
    -------
    DataFrame
        Indexed like ``rows``; one column per name in ``FACTS``. Money is in yuan (``wage_3m``,
        ``wage_before``, ``business_3m`` and ``business_before`` are monthly averages; the
        ``before`` figures cover the nine months before the last three), shares are fractions of
        the 12-month income, ``<event>_month`` is the latest month with the event (``YYYY-MM``,
        or NA), ``income_pc`` is the annual per-capita disposable income (NaN when fewer than
        ``label.min_observed_months`` of the last 12 are observed) and ``migrants_returned``
        how many fewer migrant workers the household has now than at its most in the 11 months
        before (0 where the count is unknown now), ``disabled_adults`` the disabled members of
        working age who do not work full time. Where no month of the last 12 has its income
        observed, the money summed over them (``medical_12m``, ``wage_3m`` …) is NaN, and
        ``income_pc`` is the annual figure as recorded at the row's month, where recorded.
        ``line`` is the month's monitoring line, ``line_ahead`` the highest line in force
        within the label's horizon and ``line_ahead_year`` its year (:func:`lines_ahead`).
    """
    if window is None:
        window = trailing_window(rows, rows if history is None else history)
    # Columns gathered as arrays, the frame made once.
    out: dict[str, np.ndarray | pd.api.extensions.ExtensionArray] = {}

    def count(col: str) -> np.ndarray:
        return rows[col].to_numpy(dtype="float64", na_value=0.0)

    out["members"] = count("members")
    out["labor_full"] = count("labor_full")
    out["laborers"] = out["labor_full"] + count("labor_partial")
    for col in ["elderly", "children", "students_noncompulsory", "chronic_ill", "serious_ill",
                "disabled", "disabled_severe", "dropouts"]:
        out[col] = count(col)
    out["students"] = count("students_compulsory") + out["students_noncompulsory"]
    out["ill"] = out["chronic_ill"] + out["serious_ill"]
    for flag, col in [("housing_unsafe", "housing_safe"), ("water_unsafe", "water_safe")]:
        out[flag] = (~rows[col].astype("boolean").fillna(True)).to_numpy(dtype="float64")
    migrants = rows["migrant_workers"].to_numpy(dtype="float64", na_value=np.nan)
    most = window.counts["migrant_workers"][:, 1:WINDOW].max(axis=1)
    out["migrants_returned"] = np.where(np.isnan(migrants), 0.0,
                                        np.clip(most - np.nan_to_num(migrants), 0, None))
    out["disabled_adults"] = disabled_adults(rows)

    observed = window.observed[:, :WINDOW]
    window = {name: values[:, :WINDOW] for name, values in window.money.items()}
    recent = slice(0, RECENT)
    before = slice(RECENT, WINDOW)
    n_obs = observed.sum(axis=1)
    n_recent = np.maximum(observed[:, recent].sum(axis=1), 1)
    n_before = np.maximum(observed[:, before].sum(axis=1), 1)
    medical = window["exp_medical_oop"]
    education = window["exp_education"]
    out["medical_3m"] = medical[:, recent].sum(axis=1)
    out["medical_12m"] = medical.sum(axis=1)
    out["education_12m"] = education.sum(axis=1)
    income = sum(window[c] for c in INCOME)
    with np.errstate(invalid="ignore", divide="ignore"):
        annual = income.sum(axis=1) * WINDOW / np.maximum(n_obs, 1)
        out["income_12m"] = np.where(n_obs > 0, annual, np.nan)
        positive_income = np.where(annual > 0, annual, np.nan)
        out["medical_share"] = out["medical_12m"] * WINDOW / np.maximum(n_obs, 1) / positive_income
        out["education_share"] = (
            out["education_12m"] * WINDOW / np.maximum(n_obs, 1) / positive_income
        )
        out["wage_3m"] = window["inc_wage"][:, recent].sum(axis=1) / n_recent
        out["wage_before"] = window["inc_wage"][:, before].sum(axis=1) / n_before
        out["business_3m"] = window["inc_business"][:, recent].sum(axis=1) / n_recent
        out["business_before"] = window["inc_business"][:, before].sum(axis=1) / n_before
        net = (income - medical - education).sum(axis=1)
        known = n_obs >= config.label.min_observed_months
        out["income_pc"] = np.where(
            known, net * WINDOW / np.maximum(n_obs, 1) / out["members"], np.nan
        )
    # Where monthly incomes are unknown, the annual figures as recorded at the row's month
    # (docs/ledger.md), as the label reads them.
    out["income_pc"] = np.where(known, out["income_pc"], recorded_income_pc(rows))
    # Where no month of the window has its income observed (a ledger of incomes as recorded,
    # docs/ledger.md), the window's money is unknown, not zero: the text prints "—". Rules
    # read an unknown figure as not holding, as they read a zero here.
    unknown = n_obs == 0
    for name in UNKNOWN_WITHOUT_MONTHS:
        out[name] = np.where(unknown, np.nan, np.asarray(out[name], dtype="float64"))
    m = months_of(rows["month"])
    out["line"] = poverty_lines(config, m // 12, rows.get("province"), rows.get("county"))
    out["line_ahead"], out["line_ahead_year"] = lines_ahead(
        config, m, rows.get("province"), rows.get("county"))
    out["observed_months"] = n_obs
    for event in EVENT_FACTS:
        hits = window[f"ev_{event}"] > 0
        out[f"{event}_events"] = hits.sum(axis=1).astype("float64")
        latest = np.argmax(hits, axis=1)
        # Each distinct month labelled once, then taken (NA where the event never happened).
        position, distinct = pd.factorize(m - latest)
        labels = pa.array(np.asarray(month_label(distinct), dtype=object), pa.large_string())
        month = labels.take(pa.array(position, mask=~hits.any(axis=1)))
        out[f"{event}_month"] = pd.arrays.ArrowStringArray(pa.chunked_array([month]))
    return pd.DataFrame({name: out[name] for name in FACTS}, index=rows.index)


def lines_ahead(
    config: Config, month: np.ndarray, province: pd.Series | None, county: pd.Series | None
) -> tuple[np.ndarray, np.ndarray]:
    """The highest monitoring line in force over the months (t, t + H] of the label's horizon,
    and the year whose line it is.

    The label judges a fall against the lines of the months ahead, and the model reads them
    (``line_ahead_ratio``, ``income_ratio_ahead_12m``): this is the same line, read the same
    way. Lines are policy published in the config, not data from after the month; a year past
    the configured ones keeps the last configured line (and year), and no year after the
    horizon is read. Where two years of the horizon have the same highest line, the later one
    is named.

    Parameters
    ----------
    config : Config
        Supplies ``poverty_lines`` and ``label.horizon_months``.
    month : ndarray of int
        Month indices (:func:`riskmodel.months.month_index`) of the rows.
    province, county : Series, optional
        The rows' places, as :func:`riskmodel.model.poverty_lines` reads them.

    Returns
    -------
    (ndarray, ndarray)
        The line in yuan per person per year, and its year, both as floats.

    Examples
    --------
    >>> from riskmodel import load_config
    >>> from riskmodel.months import month_index
    >>> m = month_index(pd.Series(["2024-06", "2024-09", "2024-09"]))
    >>> places = pd.Series(["广西壮族自治区", "广西壮族自治区", "云南省"])
    >>> lines_ahead(load_config(), m, places, None)
    (array([7200., 7500., 8700.]), array([2024., 2025., 2025.]))
    """
    month = np.asarray(month, dtype="int64")
    n = len(month)
    (p_codes, provinces), (c_codes, counties) = (
        pd.factorize(pd.Series(np.full(n, None) if v is None else v, copy=False),
                     use_na_sentinel=False)
        for v in (province, county))
    # The lines depend on the month and the place only: read them once per distinct pair.
    key = (month * len(provinces) + p_codes) * len(counties) + c_codes
    unique, inverse = np.unique(key, return_inverse=True)
    m_of, rest = np.divmod(unique, len(provinces) * len(counties))
    p_of, c_of = np.divmod(rest, len(counties))
    places = [pd.Series(np.asarray(values, dtype=object)[codes])
              for values, codes in ((provinces, p_of), (counties, c_of))]
    years = [pl.year for pl in config.poverty_lines]
    h = config.label.horizon_months
    line = np.full(len(unique), -np.inf)
    year_of = np.full(len(unique), np.nan)
    for year in range((int(m_of.min()) + 1) // 12, (int(m_of.max()) + h) // 12 + 1):
        inside = np.flatnonzero(((m_of + 1) // 12 <= year) & (year <= (m_of + h) // 12))
        if len(inside):
            clamped = min(max(year, min(years)), max(years))
            found = poverty_lines(config, np.full(len(inside), clamped),
                                  *(p.iloc[inside].reset_index(drop=True) for p in places))
            later = found >= line[inside]
            line[inside[later]] = found[later]
            year_of[inside[later]] = clamped
    return line[inverse], year_of[inverse]


@dataclass
class LedgerWindow:
    """Each row's trailing months as (rows × months) arrays, the row's own month first:
    money and events, whether income was observed, and member counts (0 where no row or
    unknown)."""

    money: dict[str, np.ndarray]
    observed: np.ndarray
    counts: dict[str, np.ndarray]


def trailing_window(rows: pd.DataFrame, history: pd.DataFrame, months: int = SPAN) -> LedgerWindow:
    """The last ``months`` months of money and events of each row, from the ledger history.

    Money of unobserved months (no income recorded, or no row) is 0 and ``observed`` is False
    there; events count as 0 where absent.
    """
    columns = [*INCOME, *SPENDING, *[f"ev_{e}" for e in EVENT_FACTS]]
    hist_code, households = household_codes(history["household_id"])
    row_code = households.get_indexer(rows["household_id"])
    row_month = months_of(rows["month"])
    first = int(row_month.min()) - months + 1
    span = int(row_month.max()) - first + 1
    hist_month = months_of(history["month"]) - first
    keep = np.flatnonzero((hist_month >= 0) & (hist_month < span))
    hist_code, hist_month = hist_code[keep], hist_month[keep]
    # A row's household has at least the row itself in the history the rows come from.
    # Cells of a (households × span) grid, flat: where each history row goes, and where each
    # row's trailing months are read from.
    put = hist_code * span + hist_month
    cells = (row_code * span + row_month - first)[:, None] - np.arange(months)[None, :]
    # Each cell's history row (the last one there), or the extra last slot, which holds the
    # value of a month without a row: every column is read with one gather.
    n = len(history)
    source = np.full(len(households) * span, n, dtype=np.intp)
    source[put] = keep
    source = source.take(cells)

    def column(name: str, na: float) -> np.ndarray:
        values = np.empty(n + 1)
        values[:n] = history[name].to_numpy(dtype="float64", na_value=na)
        values[n] = na
        return values

    incomes = {name: column(name, np.nan) for name in INCOME}
    observed = np.zeros(n + 1, dtype=bool)
    for values in incomes.values():
        observed |= ~np.isnan(values)
    money = {}
    for name in [*columns, *WINDOW_COUNTS]:
        values = (incomes.pop(name) if name in incomes else column(name, 0.0)).take(source)
        # NaN (and ±inf) as np.nan_to_num reads them, where there are any.
        money[name] = values if np.isfinite(values).all() else np.nan_to_num(values)
    counts = {name: money.pop(name) for name in WINDOW_COUNTS}
    return LedgerWindow(money, observed.take(source), counts)


def household_codes(ids: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Each row's household as an integer code, and the households: ``pd.factorize``'s codes
    and values, read from the runs of equal ids where each household's rows are together (as
    a ledger's chunks hold them), which needs no hashing of every row."""
    values = ids.array
    if len(values) > 1 and not ids.hasnans:
        change = np.asarray(values[1:] != values[:-1], dtype=bool)
        starts = np.flatnonzero(np.concatenate([[True], change]))
        households = pd.Index(values.take(starts))
        if households.is_unique:
            codes = np.zeros(len(values), dtype=np.intp)
            codes[starts[1:]] = 1
            return np.cumsum(codes), households
    codes, uniques = pd.factorize(ids)
    return codes, pd.Index(uniques)


# The name explain's modules use for riskmodel.months.month_index (which parses each distinct
# month once).
months_of = month_index


def cause_givebacks(rows: pd.DataFrame, window: LedgerWindow) -> dict[str, dict[str, np.ndarray]]:
    """What each cause took from the household in each of the last 12 months, by ledger column.

    The ledger's own record of a cause's damage, as the national guidance asks cadres to
    verify it: 因病 the out-of-pocket medical costs (less what an accident added) and the fall
    in wages after an illness; 因意外事故 the rise in medical costs and the fall in wages after
    an accident; 因学 the education costs; 因务工就业不稳 the fall in wages after a job loss;
    因产业失败 the fall in business income after a business loss; 因自然灾害 the fall in business
    income and wages after a disaster; 因残 the wage a disabled working-age member would earn
    at the household's wage per laborer. A fall is measured against the household's average
    over the 12 months before the shock.

    Returns
    -------
    dict
        Cause code → {ledger column → (rows × 12) yuan, the row's own month first, 0 in
        unobserved months}: what giving the cause back adds to an ``inc_*`` column or takes
        off an ``exp_*`` column.
    """
    observed = window.observed
    money = window.money
    recent = observed[:, :WINDOW]

    def latest(event: str) -> np.ndarray:
        hits = money[f"ev_{event}"][:, :WINDOW] > 0
        return np.where(hits.any(axis=1), hits.argmax(axis=1), -1)

    def change_after(column: str, age: np.ndarray, sign: float) -> np.ndarray:
        """sign × (value − level before the event) where positive, from the event on."""
        # Only households with the event have months after it: the others get 0.
        out = np.zeros(recent.shape)
        rows = np.flatnonzero(age >= 0)
        if not len(rows):
            return out
        age, values = age[rows, None], money[column][rows]
        ages = np.arange(observed.shape[1])
        before = observed[rows] & (ages > age) & (ages <= age + WINDOW)
        count = before.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            level = (values * before).sum(axis=1) / count
        after = recent[rows] & (ages[:WINDOW] <= age) & (count > 0)[:, None]
        out[rows] = np.where(after, np.clip(sign * (values[:, :WINDOW] - level[:, None]),
                                            0, None), 0.0)
        return out

    illness, accident = latest("illness"), latest("accident")
    medical = money["exp_medical_oop"][:, :WINDOW] * recent
    accident_medical = np.minimum(change_after("exp_medical_oop", accident, 1.0), medical)
    disaster = latest("disaster")

    laborers = member_count(rows, "labor_full") + 0.5 * member_count(rows, "labor_partial")
    wage_per_laborer = (money["inc_wage"][:, :WINDOW] * recent).sum(axis=1) / np.maximum(
        recent.sum(axis=1), 1) / np.maximum(laborers, 1)
    return {
        "illness": {"exp_medical_oop": medical - accident_medical,
                    "inc_wage": change_after("inc_wage", illness, -1.0)},
        "accident": {"exp_medical_oop": accident_medical,
                     "inc_wage": change_after("inc_wage", accident, -1.0)},
        "education": {"exp_education": money["exp_education"][:, :WINDOW] * recent},
        "employment": {"inc_wage": change_after("inc_wage", latest("job_loss"), -1.0)},
        "business": {"inc_business": change_after("inc_business", latest("business_loss"),
                                                  -1.0)},
        "disaster": {"inc_business": change_after("inc_business", disaster, -1.0),
                     "inc_wage": change_after("inc_wage", disaster, -1.0)},
        "disability": {"inc_wage": (disabled_adults(rows) * wage_per_laborer)[:, None]
                       * recent},
    }


def cause_losses(rows: pd.DataFrame, window: LedgerWindow,
                 givebacks: dict[str, dict[str, np.ndarray]] | None = None
                 ) -> dict[str, np.ndarray]:
    """What each cause took from the household in each of the last 12 months, in yuan: the sum
    over ledger columns of :func:`cause_givebacks` (``givebacks``, when already at hand).

    Returns
    -------
    dict
        Cause code → (rows × 12) array, the row's own month first; 0 in unobserved months.
    """
    givebacks = cause_givebacks(rows, window) if givebacks is None else givebacks
    return {cause: sum(columns.values()) for cause, columns in givebacks.items()}


def member_count(rows: pd.DataFrame, col: str) -> np.ndarray:
    """A count column of the ledger rows as floats, 0 where empty."""
    return rows[col].to_numpy(dtype="float64", na_value=0.0)


def not_full_time(rows: pd.DataFrame) -> np.ndarray:
    """Members of working age not at school who do not work full time (partial laborers
    included)."""
    idle = member_count(rows, "members") - sum(
        member_count(rows, c)
        for c in ("elderly", "children", "students_noncompulsory", "labor_full"))
    return np.clip(idle, 0, None)


def disabled_adults(rows: pd.DataFrame) -> np.ndarray:
    """Disabled members of working age who do not work full time (at most the disabled)."""
    return np.minimum(member_count(rows, "disabled"), not_full_time(rows))


def annual_per_capita(monthly: np.ndarray, window: LedgerWindow, members: np.ndarray,
                      months: int) -> np.ndarray:
    """A monthly (rows × 12) amount over the last ``months`` months, annualised per capita the
    way the features annualise income (× 12 / observed months ÷ members)."""
    n_obs = np.maximum(window.observed[:, :months].sum(axis=1), 1)
    return monthly[:, :months].sum(axis=1) * WINDOW / n_obs / members


def printed_figures(facts: pd.DataFrame) -> dict[str, np.ndarray]:
    """The figures evidence rules read, as the reason text prints them: money and counts in
    whole yuan and persons, shares in whole percent (as fractions); NaN where unknown.

    Rules judged on these figures agree with what a reader of the text can check.
    """
    out = {}
    for name in RULE_FACTS:
        values = facts[name].to_numpy(dtype="float64")
        out[name] = np.rint(values * 100) / 100 if name in SHARE_FACTS else np.rint(values)
    return out
