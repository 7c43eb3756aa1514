"""From cause contributions to what a cadre reads: reason codes, the national risk-cause list,
reason text built from the household's own figures, and the measures that fit.

Everything here is vectorised over households: causes are ranked with one ``argsort``, text is
rendered per cause over the households that cause names (string columns, never a Python loop
over households), and measure lists are built once per distinct combination of causes.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import (
    EVENT_FACTS,
    FACTS,
    RULE_FACTS,
    SHARE_FACTS,
    Config,
    EvidenceRule,
)
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


_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


def rule_holds(rule: EvidenceRule, figures: dict[str, np.ndarray]) -> np.ndarray:
    """Where one evidence rule holds on the figures (False where a figure is unknown)."""
    right = rule.value if rule.other is None else rule.factor * figures[rule.other]
    with np.errstate(invalid="ignore"):
        return _COMPARE[rule.op](figures[rule.figure], right)


def required_rules(config: Config) -> dict[str, list[EvidenceRule]]:
    """Rules a cause must meet besides its evidence: 缺劳动力 with laborers at most
    ``reasons.labor_shortage_max_labor_share`` of the members."""
    share = config.reasons.labor_shortage_max_labor_share
    return {"labor_shortage": [EvidenceRule("laborers", "<=", share, "members", 0.0)]}


def valid_causes(facts: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Which causes the national consistency rules allow for each household.

    A cause with ``evidence`` rules in the config's cause table needs one of them to hold on
    the household's own figures of its months up to the one explained, as the reason text prints
    them (:func:`printed_figures`): 因务工就业不稳 a fall in wages, a job loss or a migrant
    worker come home; 收入偏低 an income under a multiple of the line; 因学 a student beyond
    compulsory school or education costs above a share of income … (see ``docs/explanations.md``).
    缺劳动力 is invalid besides when more than ``reasons.labor_shortage_max_labor_share`` of the
    members are laborers. A cause without rules is always allowed.

    Parameters
    ----------
    facts : DataFrame
        From :func:`household_facts`.
    config : Config

    Returns
    -------
    DataFrame
        Boolean, indexed like ``facts``, one column per cause code of ``config.causes``.
    """
    codes = [c.code for c in config.causes]
    allowed = pd.DataFrame(True, index=facts.index, columns=codes)
    figures = printed_figures(facts)
    for cause in config.causes:
        if cause.evidence:
            held = np.zeros(len(facts), dtype=bool)
            for rule in cause.evidence_rules:
                held |= rule_holds(rule, figures)
            allowed[cause.code] = held
    for code, rules in required_rules(config).items():
        if code in allowed:
            for rule in rules:
                allowed[code] &= rule_holds(rule, figures)
    return allowed


def pass_to_evidence(contributions: pd.DataFrame, allowed: pd.DataFrame) -> pd.DataFrame:
    """Cause contributions with the risk-raising weight of each cause the ledger gives no
    evidence for moved to the household's strongest cause with evidence.

    The strongest cause with evidence is the one with the largest contribution among the
    causes ``allowed`` (the first in column order on a tie), whatever its sign; it takes the
    positive contributions of every cause not allowed, which keep their negative ones. A
    household with no cause allowed keeps its contributions. Row sums do not change, so the
    contributions still add up to the log-odds.

    Parameters
    ----------
    contributions : DataFrame
        Per-cause contributions (:func:`riskmodel.explain.cause_contributions`).
    allowed : DataFrame
        :func:`valid_causes`, with the same index and at least the same columns.

    Returns
    -------
    DataFrame
        Like ``contributions``.

    Examples
    --------
    >>> c = pd.DataFrame({"employment": [0.8], "income": [-0.1], "illness": [0.3]})
    >>> ok = pd.DataFrame({"employment": [False], "income": [True], "illness": [True]})
    >>> pass_to_evidence(c, ok).round(2).to_dict("records")
    [{'employment': 0.0, 'income': -0.1, 'illness': 1.1}]
    """
    values = contributions.to_numpy(dtype="float64", copy=True)
    ok = allowed[contributions.columns].to_numpy(dtype=bool)
    receives = ok.any(axis=1)
    given = np.where(~ok & (values > 0) & receives[:, None], values, 0.0)
    strongest = np.argmax(np.where(ok, values, -np.inf), axis=1)
    values -= given
    values[np.arange(len(values)), strongest] += given.sum(axis=1)
    return pd.DataFrame(values, index=contributions.index, columns=contributions.columns)


def rank_causes(
    contributions: pd.DataFrame, allowed: pd.DataFrame, config: Config
) -> tuple[np.ndarray, np.ndarray]:
    """Risk-raising causes of each household, strongest first.

    Returns ``(codes, weights)``, both of shape (n, ``reasons.max_causes``): cause codes as an
    object array (None past the last cause) and their log-odds contributions (NaN there). A
    cause counts when the rules allow it and it raises the log-odds by at least
    ``reasons.min_weight``.
    """
    codes = np.asarray(contributions.columns, dtype=object)
    values = contributions.to_numpy(dtype="float64")
    ok = allowed[contributions.columns].to_numpy(dtype=bool) & (
        values >= max(config.reasons.min_weight, np.finfo(float).tiny)
    )
    score = np.where(ok, values, -np.inf)
    k = min(config.reasons.max_causes, len(codes))
    order = np.argsort(-score, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(score, order, axis=1)
    present = np.isfinite(top)
    return np.where(present, codes[order], None), np.where(present, top, np.nan)


def format_yuan(values: np.ndarray) -> np.ndarray:
    """Whole yuan with thousands separators (``18,400``); ``—`` where unknown.

    Examples
    --------
    >>> format_yuan(np.array([18400, -1234.6, np.nan])).tolist()
    ['18,400', '-1,235', '—']
    """
    v = np.rint(np.asarray(values, dtype="float64")) + 0.0
    known = np.isfinite(v)
    # Amounts repeat across households: format each distinct amount once, then look it up.
    distinct, position = np.unique(np.where(known, v, 0.0), return_inverse=True)
    text = np.array([f"{amount:,.0f}" for amount in distinct], dtype=object)[position]
    text[~known] = MISSING
    return text


def _figure(facts: pd.DataFrame, name: str, rows: np.ndarray) -> np.ndarray:
    """One fact of some households, formatted for text."""
    if name not in facts:
        raise ValueError(f"Reason template names {{{name}}}, expected one of {', '.join(FACTS)}.")
    col = facts[name].iloc[rows]
    if name.endswith("_month"):
        return col.astype("string").fillna(MISSING).to_numpy(dtype=object)
    values = col.to_numpy(dtype="float64")
    if name.endswith("_year"):
        known = np.isfinite(values)
        years = np.where(known, values, 0).astype("int64").astype(str).astype(object)
        years[~known] = MISSING
        return years
    return format_yuan(values * 100 if name in SHARE_FACTS else values)


def render(template: str, facts: pd.DataFrame, rows: np.ndarray,
           figures: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Fill the ``{name}`` fields of one template with the facts of the given rows.

    ``figures`` caches formatted facts of these rows between templates.
    """
    figures = {} if figures is None else figures
    text = np.full(len(rows), "", dtype=object)
    for literal, field, _, _ in string.Formatter().parse(template):
        text = text + literal
        if field is not None:
            if field not in figures:
                figures[field] = _figure(facts, field, rows)
            text = text + figures[field]
    return text


def reason_texts(codes: np.ndarray, facts: pd.DataFrame, config: Config) -> dict[str, pd.Series]:
    """Reason text of each household in Chinese and English: the first ``reasons.text_causes``
    causes, joined.

    Parameters
    ----------
    codes : ndarray of object, shape (n, k)
        Cause codes per household, strongest first (None past the last).
    facts : DataFrame
        From :func:`household_facts`, aligned with ``codes``.
    config : Config

    Returns
    -------
    dict
        ``{"zh": Series, "en": Series}`` of strings, indexed like ``facts``.
    """
    names = {"zh": {c.code: c.name_zh for c in config.causes},
             "en": {c.code: c.name_en for c in config.causes}}
    sep = {"zh": "；", "en": "; "}
    n = len(facts)
    # The text is joined in Arrow: each template's literals and figures are concatenated
    # column-wise, without a Python string operation per household.
    text: dict[str, pa.Array | None] = {lang: None for lang in names}
    figures: dict[str, pa.Array] = {}
    # Where the line in force within the horizon is above the month's, a cause's ``*_ahead``
    # text (where it has one) quotes it.
    ahead = (facts["line_ahead"] > facts["line"]).to_numpy(dtype=bool)
    for j in range(min(config.reasons.text_causes, codes.shape[1])):
        slot = codes[:, j]
        named = pd.notna(slot)
        parts: dict[str, list[pa.Array]] = {lang: [] for lang in names}
        order = []
        for code in pd.unique(slot[named]):
            rows = np.flatnonzero(slot == code)
            order.append(rows)
            spec = config.reasons.text.get(code)
            for lang in names:
                template = getattr(spec, lang) if spec is not None else names[lang][code]
                part = _render_arrow(template, facts, rows, figures)
                alternative = getattr(spec, f"{lang}_ahead") if spec is not None else None
                if alternative is not None and ahead[rows].any():
                    part = pc.if_else(pa.array(ahead[rows]),
                                      _render_arrow(alternative, facts, rows, figures), part)
                parts[lang].append(part)
        if not order:
            continue
        # Each household's part of this slot, null where the slot names no cause.
        position = np.full(n, -1, dtype=np.int64)
        position[np.concatenate(order)] = np.arange(sum(len(rows) for rows in order))
        where = pa.array(position, mask=position < 0)
        for lang in names:
            part = pa.concat_arrays(parts[lang]).take(where)
            if text[lang] is None:
                text[lang] = part
            else:
                joined = pc.binary_join_element_wise(text[lang], part, _LARGE(sep[lang]))
                text[lang] = pc.if_else(pc.is_valid(part), joined, text[lang])
    none = {"zh": "无明显致贫返贫风险因素", "en": "no cause raises the risk"}
    out = {}
    for lang, joined in text.items():
        joined = (pa.nulls(n, pa.large_string()) if joined is None else joined)
        joined = pc.fill_null(joined, _LARGE(none[lang]))
        out[lang] = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([joined])),
                              index=facts.index, copy=False)
    return out


def _LARGE(text: str) -> pa.Scalar:
    """A text as the Arrow scalar the reason text is joined with."""
    return pa.scalar(text, pa.large_string())


def _figure_arrow(facts: pd.DataFrame, name: str) -> pa.Array:
    """One fact of every household formatted for text (as :func:`_figure`), in Arrow."""
    if name not in facts:
        raise ValueError(f"Reason template names {{{name}}}, expected one of {', '.join(FACTS)}.")
    col = facts[name]
    if name.endswith("_month"):
        filled = col.astype("string").fillna(MISSING)
        return pa.array(np.asarray(filled.to_numpy(dtype=object)), pa.large_string()) \
            if not hasattr(filled.array, "__arrow_array__") else \
            pa.chunked_array(pa.array(filled.array)).cast(pa.large_string()).combine_chunks()
    values = col.to_numpy(dtype="float64")
    if name.endswith("_year"):
        known = np.isfinite(values)
        position, distinct = pd.factorize(np.where(known, values, 0))
        words = [str(year) for year in distinct.astype("int64").tolist()]
    else:
        v = np.rint(values * 100 if name in SHARE_FACTS else values) + 0.0
        known = np.isfinite(v)
        # Amounts repeat across households: format each distinct amount once (format_yuan).
        position, distinct = pd.factorize(np.where(known, v, 0.0))
        words = [f"{amount:,.0f}" for amount in distinct.tolist()]
    position = np.where(known, position, len(words))
    return pa.array([*words, MISSING], pa.large_string()).take(position)


def _render_arrow(template: str, facts: pd.DataFrame, rows: np.ndarray,
                  figures: dict[str, pa.Array]) -> pa.Array:
    """:func:`render` in Arrow: the template filled with the facts of the given rows.

    ``figures`` caches each fact of every household, formatted, between templates.
    """
    parts: list[pa.Array | pa.Scalar] = []
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            parts.append(_LARGE(literal))
        if field is not None:
            if field not in figures:
                figures[field] = _figure_arrow(facts, field)
            parts.append(figures[field].take(rows))
    if not any(isinstance(part, pa.Array) for part in parts):
        return pa.array(["".join(p.as_py() for p in parts)], pa.large_string()).take(
            np.zeros(len(rows), dtype=np.int64))
    return pc.binary_join_element_wise(*parts, _LARGE(""))


_FIGURE = {"month": r"\d{4}-\d{2}|—", "year": r"\d{4}|—", "number": r"-?\d[\d,]*|—"}


def _template_pattern(template: str, slot: int | str) -> tuple[str, list[str]]:
    """A regular expression that reads one template's text back: its fields as named groups
    (``s<slot>_<k>``), in order, and the names of those fields."""
    pattern, fields = "", []
    for literal, field_name, _, _ in string.Formatter().parse(template):
        pattern += re.escape(literal)
        if field_name is not None:
            kind = next((k for k in ("month", "year") if field_name.endswith(f"_{k}")),
                        "number")
            pattern += f"(?P<s{slot}_{len(fields)}>{_FIGURE[kind]})"
            fields.append(field_name)
    return pattern, fields


def text_contradictions(explained: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Which reasons of each household's Chinese text state something the figures that text
    quotes contradict.

    The text (``reason_text_zh``) is read back with the config's templates, and each reason
    spelt out in it (the first ``reasons.text_causes`` of ``reason_1`` …) is judged on the
    figures it quotes, as printed, by its cause's rules (``causes[].evidence`` and
    :func:`required_rules`): it is contradicted when its text quotes the figures of at least
    one evidence rule and none of those rules holds on them ("因务工就业不稳" beside wages that
    did not fall), or a rule it must meet fails on them (缺劳动力 with half the members
    laborers). Rules whose figures the text does not quote are not judged: the text says
    nothing about them.

    Parameters
    ----------
    explained : DataFrame
        Output of :func:`riskmodel.explain.explain_households` (or the scoring job's rows):
        ``reason_1`` … and ``reason_text_zh``; rows without a text (not scored) are skipped.
    config : Config
        The templates the text was written with, and the rules.

    Returns
    -------
    DataFrame
        Indexed like ``explained``, one nullable boolean column per reason spelt out in the
        text (``reason_1`` …): True where contradicted, NA where the slot names no cause.

    Raises
    ------
    ValueError
        A text does not read back with the templates of its causes.
    """
    k = config.reasons.text_causes
    slots = [f"reason_{j + 1}" for j in range(k)]
    codes = explained[slots].astype("string").fillna("").to_numpy(dtype=object)
    text = explained["reason_text_zh"].astype("string")
    out = pd.DataFrame(pd.NA, index=explained.index, columns=slots, dtype="boolean")
    names = {c.code: c.name_zh for c in config.causes}
    evidence = {c.code: c.evidence_rules for c in config.causes}
    required = required_rules(config)
    keep = (codes[:, 0] != "") & text.notna().to_numpy()
    combos, position = np.unique(codes[keep].astype(str), axis=0, return_inverse=True)
    rows_kept = np.flatnonzero(keep)
    for c, combo in enumerate(combos):
        rows = rows_kept[position.ravel() == c]
        # Each cause's templates (its ``zh`` and, where it has one, ``zh_ahead``), each read
        # back as a named group of its own so the rows each one reads are known.
        parts, fields = [], []
        for j, code in enumerate(combo):
            if code:
                spec = config.reasons.text.get(code)
                templates = [names[code]] if spec is None else [
                    t for t in (spec.zh, spec.zh_ahead) if t is not None]
                alternatives, quoted = [], []
                for v, template in enumerate(templates):
                    one, read_back = _template_pattern(template, f"{j}v{v}")
                    alternatives.append(f"(?P<s{j}v{v}>{one})")
                    quoted.append(read_back)
                parts.append("(?:" + "|".join(alternatives) + ")")
                fields.append(quoted)
        pattern = "；".join(parts)
        unread = ~text.iloc[rows].str.fullmatch(pattern).to_numpy(dtype=bool)
        if unread.any():
            raise ValueError(f"Got reason text {text.iloc[rows[unread.argmax()]]!r}, which "
                             f"does not read back with the templates of "
                             f"{', '.join(c for c in combo if c)}.")
        read = text.iloc[rows].str.extract(f"^(?:{pattern})$")
        for j, variants in enumerate(fields):
            wrong = np.zeros(len(rows), dtype=bool)
            for v, quoted in enumerate(variants):
                used = read[f"s{j}v{v}"].notna().to_numpy(dtype=bool)
                figures = {}
                for i, name in enumerate(quoted):
                    # "—" (unknown) reads as NaN.
                    value = pd.to_numeric(
                        read[f"s{j}v{v}_{i}"].str.replace(",", "", regex=False),
                        errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
                    figures[name] = value / 100 if name in SHARE_FACTS else value
                judged = [r for r in evidence.get(combo[j], []) if set(r.figures) <= set(figures)]
                must = [r for r in required.get(combo[j], []) if set(r.figures) <= set(figures)]
                bad = np.zeros(len(rows), dtype=bool)
                if judged:
                    bad = ~np.logical_or.reduce([rule_holds(r, figures) for r in judged])
                for rule in must:
                    bad |= ~rule_holds(rule, figures)
                wrong |= used & bad
            out.iloc[rows, j] = wrong
    return out


def contradiction_share(explained: pd.DataFrame, config: Config) -> tuple[int, int]:
    """``(contradicted, named)``: reasons spelt out in the texts that
    :func:`text_contradictions` finds contradicted, and all reasons spelt out."""
    table = text_contradictions(explained, config)
    return int(table.sum().sum()), int(table.notna().sum().sum())


def suggested_measures(codes: np.ndarray, has_labor: np.ndarray, config: Config) -> pd.Series:
    """Measures of the first ``reasons.text_causes`` causes, without repeats, joined by 、.

    Households without a laborer get each cause's ``measures_no_labor_zh`` (兜底保障) instead
    of its development measures.
    """
    k = min(config.reasons.text_causes, codes.shape[1])
    order = [None, *(c.code for c in config.causes)]
    slots = [pd.Index(order).get_indexer(codes[:, j]) for j in range(k)]
    key = np.asarray(has_labor, dtype="int64")
    for slot in slots:
        key = key * len(order) + slot
    combo, uniques = pd.factorize(key)
    table = []
    for code in uniques:
        labor, measures = bool(code // len(order) ** k), []
        for j in range(k - 1, -1, -1):
            cause = order[(code // len(order) ** j) % len(order)]
            if cause is not None:
                spec = config.cause_by_code[cause]
                measures += spec.measures_zh if labor else spec.measures_no_labor_zh
        table.append("、".join(dict.fromkeys(measures)))
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(
        [pa.array(table, pa.large_string()).take(combo)])))
