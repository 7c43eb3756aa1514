"""From cause contributions to what a cadre reads: reason codes, the national risk-cause list,
reason text built from the household's own figures, and the measures that fit.

Everything here is vectorised over households: causes are ranked with one ``argsort``, text is
rendered per cause over the households that cause names (string columns, never a Python loop
over households), and measure lists are built once per distinct combination of causes.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import Config
from .labels import month_index, month_label, poverty_lines
from .ledger import INCOME, SPENDING

WINDOW = 12
RECENT = 3
# Months read back: the last year, and the year before it for the level a shock broke.
SPAN = 24

MEMBER_FACTS = [
    "members", "laborers", "labor_full", "elderly", "children", "students",
    "students_noncompulsory", "ill", "chronic_ill", "serious_ill", "disabled", "disabled_severe",
    "dropouts",
]
MONEY_FACTS = [
    "medical_3m", "medical_12m", "education_12m", "income_12m", "wage_3m", "wage_before",
    "business_3m", "business_before", "income_pc", "line",
]
SHARE_FACTS = ["medical_share", "education_share"]
EVENT_FACTS = ["accident", "disaster", "illness", "job_loss", "business_loss"]
FLAG_FACTS = ["housing_unsafe", "water_unsafe"]
FACTS = [
    *MEMBER_FACTS, *MONEY_FACTS, *SHARE_FACTS, *FLAG_FACTS, "observed_months",
    *[f"{e}_events" for e in EVENT_FACTS], *[f"{e}_month" for e in EVENT_FACTS],
]
MISSING = "—"


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
        or NA) and ``income_pc`` is the annual per-capita disposable income (NaN when fewer than
        ``label.min_observed_months`` of the last 12 are observed).
    """
    if window is None:
        window = trailing_window(rows, rows if history is None else history)
    out = pd.DataFrame(index=rows.index)

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
            known, net * WINDOW / np.maximum(n_obs, 1) / out["members"].to_numpy(), np.nan
        )
    m = months_of(rows["month"])
    out["line"] = poverty_lines(config, m // 12, rows.get("province"), rows.get("county"))
    out["observed_months"] = n_obs
    for event in EVENT_FACTS:
        hits = window[f"ev_{event}"] > 0
        out[f"{event}_events"] = hits.sum(axis=1).astype("float64")
        latest = np.argmax(hits, axis=1)
        month = pd.array(_month_text(m - latest), dtype="string")
        month[~hits.any(axis=1)] = pd.NA
        out[f"{event}_month"] = month
    return out[FACTS]


def _month_text(idx: np.ndarray) -> np.ndarray:
    distinct, position = np.unique(idx, return_inverse=True)
    return np.asarray(month_label(distinct), dtype=object)[position]


@dataclass
class LedgerWindow:
    """Each row's trailing months as (rows × months) arrays, the row's own month first."""

    money: dict[str, np.ndarray]
    observed: np.ndarray


def trailing_window(rows: pd.DataFrame, history: pd.DataFrame, months: int = SPAN) -> LedgerWindow:
    """The last ``months`` months of money and events of each row, from the ledger history.

    Money of unobserved months (no income recorded, or no row) is 0 and ``observed`` is False
    there; events count as 0 where absent.
    """
    columns = [*INCOME, *SPENDING, *[f"ev_{e}" for e in EVENT_FACTS]]
    hist_code, households = pd.factorize(history["household_id"])
    row_code = pd.Index(households).get_indexer(rows["household_id"])
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

    def column(name: str, na: float) -> np.ndarray:
        return history[name].to_numpy(dtype="float64", na_value=na)[keep]

    size = len(households) * span
    incomes = {name: column(name, np.nan) for name in INCOME}
    observed = np.zeros(size, dtype=bool)
    observed[put] = ~np.isnan(np.column_stack(list(incomes.values()))).all(axis=1)
    money = {}
    grid = np.empty(size)
    for name in columns:
        grid.fill(0.0)
        grid[put] = np.nan_to_num(incomes.pop(name) if name in incomes else column(name, 0.0))
        money[name] = grid.take(cells)
    return LedgerWindow(money, observed.take(cells))


def months_of(months: pd.Series) -> np.ndarray:
    """``YYYY-MM`` as month numbers, parsing each distinct month once."""
    codes, distinct = pd.factorize(months)
    return month_index(pd.Series(np.asarray(distinct, dtype=object)))[codes]


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
        ages = np.arange(observed.shape[1])
        before = observed & (ages > age[:, None]) & (ages <= age[:, None] + WINDOW)
        count = before.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            level = (money[column] * before).sum(axis=1) / count
        after = recent & (ages[:WINDOW] <= age[:, None]) & (count > 0)[:, None]
        return np.where(after, np.clip(sign * (money[column][:, :WINDOW] - level[:, None]),
                                       0, None), 0.0)

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


def valid_causes(facts: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Which causes the national consistency rules allow for each household.

    A cause listed under ``reasons.evidence`` needs at least one of its figures above zero
    (因学 needs students or education spending; 因病 needs medical spending or ill members;
    务工就业不稳 needs a laborer …); 缺劳动力 is invalid when more than
    ``reasons.labor_shortage_max_labor_share`` of the members are laborers.

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
    for code, names in config.reasons.evidence.items():
        unknown = sorted(set(names) - set(FACTS))
        if unknown:
            raise ValueError(
                f"reasons.evidence.{code} names {unknown}, expected figures of {', '.join(FACTS)}."
            )
        if code in allowed:
            allowed[code] = (facts[names].to_numpy(dtype="float64") > 0).any(axis=1)
    if "labor_shortage" in allowed:
        with np.errstate(invalid="ignore", divide="ignore"):
            share = facts["laborers"].to_numpy() / facts["members"].to_numpy()
        allowed["labor_shortage"] &= ~(share > config.reasons.labor_shortage_max_labor_share)
    return allowed


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
    text = {lang: np.full(len(facts), None, dtype=object) for lang in names}
    for j in range(min(config.reasons.text_causes, codes.shape[1])):
        slot = codes[:, j]
        for code in pd.unique(slot[pd.notna(slot)]):
            rows = np.flatnonzero(slot == code)
            spec = config.reasons.text.get(code)
            figures: dict[str, np.ndarray] = {}
            for lang, out in text.items():
                template = getattr(spec, lang) if spec is not None else names[lang][code]
                part = render(template, facts, rows, figures)
                out[rows] = part if j == 0 else out[rows] + sep[lang] + part
    none = {"zh": "无明显致贫返贫风险因素", "en": "no cause raises the risk"}
    for lang, out in text.items():
        out[pd.isna(out)] = none[lang]
    return {lang: pd.Series(out, index=facts.index, dtype="string") for lang, out in text.items()}


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
    return pd.Series(np.asarray(table, dtype=object)[combo], dtype="string")
