"""Budget and visit plans: for the same money and the same visits, prevent the most falls.

A county office planning the year's assistance asks which households, helped or visited, would
prevent the most falls below the line. :func:`plan_frame` answers for one month of the ledger:

- **Effects.** For every eligible household (not under the line now, income history known) and
  every measure that fits it, the risk before and after the measure; ``falls_prevented`` is
  the difference, the expected number of falls below the line within the horizon the measure
  prevents. By default the calibrated risk is multiplied by the share of the household's falls
  the measure's money would prevent, priced by :class:`riskmodel.margin.LowestMarginModel` from
  how far the ledger's households fell below the line (any grant amount, any monthly payment);
  the model's what-if response (:func:`riskmodel.whatif.what_if`) is the alternative. Either
  is the model's estimate, not a causal one; a county checks it with a randomised pilot (see
  ``docs/plans.md``).
- **Budget plan.** :func:`riskmodel.knapsack.make_plan` gives each household at most one
  measure, never one whose estimated effect is zero or negative, never over budget.
- **Rules at the same budget.** :func:`compare_rules` hands the same grant to households in the
  order of today's rules — the poorest first (the income cut-off) and the highest risk first —
  and counts the falls each prevents by the same estimates.
- **Visit plan.** :func:`visit_plan` orders each township's households so that the visits
  available reach the most expected future fallers: hard-trigger households first, then by
  risk, ties to the household whose last visit is oldest.

:func:`plan_month` is the thin job behind ``riskmodel plan``: read, validate, load the model,
plan, and write ``<out>/<month>/`` (``plan.parquet``, ``plan.csv``, ``plan_summary.json`` and,
with visits, ``visits.csv``), each file written beside and renamed into place.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Config, Measure, load_config
from .errors import LedgerError, RiskModelError
from .explain import explain_households
from .features import LOOKBACK, SOURCES, build_features
from .knapsack import make_plan, plan_value
from .labels import month_index, poverty_status
from .ledger import HOUSEHOLD_TYPE_ALIASES, validate_ledger
from .margin import LowestMarginModel, fit_margin_model, margin_features
from .outputs import OutputLock, write_json, write_parquet_atomic
from .reasons import household_facts
from .rules import HARD_TRIGGERS, format_triggers, rule_triggers
from .score import _LedgerChunks
from .tracking import DEFAULT_MODEL_URI, load_model
from .whatif import REQUIREMENTS, grant_measures, what_if

logger = logging.getLogger(__name__)

RULES = ("income_cutoff", "risk_ranking")
ESTIMATES = ("auto", "margin", "response")
ESTIMATE_NOTES = {
    "margin": "the model's estimate: the calibrated risk times the share of it the measure's "
              "money removes, by the distribution of the household's lowest margin over the "
              "horizon learned from the ledger; not a causal estimate",
    "response": "the model's response to the measure written into the ledger (what-if); not "
                "a causal estimate",
}
PLAN_COLUMNS = {
    "priority": "序号",
    "household_id": "户编号",
    "county": "县",
    "township": "乡镇",
    "village": "村",
    "household_type": "户类型",
    "measure": "措施代码",
    "measure_zh": "帮扶措施",
    "cost": "费用（元）",
    "risk_before": "帮扶前风险",
    "risk_after": "帮扶后风险",
    "falls_prevented": "预计防止返贫致贫（户）",
    "cumulative_cost": "累计费用（元）",
    "reason_1": "主要风险",
    "reason_1_zh": "主要风险类型",
    "reason_text_zh": "风险说明",
}
VISIT_COLUMNS = {
    "county": "县",
    "township": "乡镇",
    "visit_order": "走访顺序",
    "household_id": "户编号",
    "village": "村",
    "household_type": "户类型",
    "risk_score": "返贫致贫风险概率",
    "hard_triggers": "触发硬性条件",
    "months_since_visit": "距上次走访（月）",
    "reason_1": "主要风险",
    "reason_1_zh": "主要风险类型",
}
VISITS_ALIASES = {
    "县": "county", "县（市、区）": "county", "乡镇": "township", "乡（镇）": "township",
    "走访户数": "visits", "可走访户数": "visits", "走访次数": "visits",
}
HOUSEHOLD_TYPE_ZH = {code: name for name, code in HOUSEHOLD_TYPE_ALIASES.items()}


class PlanInputError(RiskModelError):
    """A plan cannot be made from what was given: the budget, the grant or the visits file."""

    exit_code = 2


@dataclass
class PlanFrames:
    """What :func:`plan_frame` returns for one month.

    Attributes
    ----------
    plan : DataFrame
        The chosen households in priority order (columns :data:`PLAN_COLUMNS`).
    effects : DataFrame
        Every eligible household's options: ``household_id``, ``measure``, ``cost``,
        ``risk_before``, ``risk_after``, ``falls_prevented``.
    households : DataFrame
        One row per household of the month: place, type, ``eligible``, ``income_pc``, ``line``,
        ``risk_score`` and ``risk_log_odds`` (NaN when not eligible), ``hard_triggers``,
        ``months_since_visit``.
    comparison : DataFrame
        Indexed by ``plan`` and :data:`RULES`: ``households``, ``spent``, ``falls_prevented``.
    visits : DataFrame or None
        The visit plan, when visits were given.
    summary : dict
        The contents of ``plan_summary.json``.
    timings : dict
        Seconds per step.
    """

    plan: pd.DataFrame
    effects: pd.DataFrame
    households: pd.DataFrame
    comparison: pd.DataFrame
    visits: pd.DataFrame | None
    summary: dict
    timings: dict = field(default_factory=dict)


def plan_measures(config: Config, grant: float | None = None) -> list[Measure]:
    """The measures a plan chooses among: one grant of ``grant`` yuan, or ``config.measures``."""
    if grant is not None:
        return grant_measures([grant], config)
    if not config.measures:
        raise PlanInputError("The config lists no measures; give --grant or add `measures`.")
    return list(config.measures)


def estimate_effects(
    model, ledger: pd.DataFrame, config: Config, month: str, households: pd.Index,
    grant: float | None = None, method: str = "margin", margin_model=None,
) -> pd.DataFrame:
    """Falls each measure would prevent for each given household.

    Parameters
    ----------
    model : RiskModel
        Gives ``risk_before``, the calibrated risk.
    ledger : DataFrame
        A validated ledger holding the month and its history (later months are not read).
    config : Config
    month : str
        ``YYYY-MM``.
    households : Index
        Household ids to try (the eligible households of the month).
    grant : float, optional
        Try only a one-off grant of this amount; the configured measures otherwise.
    method : {"margin", "response"}, default="margin"
        ``margin``: the share of the household's risk the measure's money removes, by
        ``margin_model`` (:class:`riskmodel.margin.LowestMarginModel`), which prices how far
        the household's margin path would dip below the line. ``response``: the model's risk
        on features rebuilt with the measure written into the ledger
        (:func:`riskmodel.whatif.what_if`).
    margin_model : LowestMarginModel, optional
        Required for ``method="margin"``.

    Returns
    -------
    DataFrame
        One row per household and applicable measure: ``household_id``, ``measure``, ``cost``,
        ``risk_before``, ``risk_after`` and ``falls_prevented`` (``risk_before − risk_after``).
    """
    if method not in ("margin", "response"):
        raise ValueError(f"Got method={method!r}, expected 'margin' or 'response'.")
    columns = ["household_id", "measure", "cost", "risk_before", "risk_after"]
    if len(households) == 0:
        return pd.DataFrame({c: pd.Series(dtype="string" if c in columns[:2] else "float64")
                             for c in [*columns, "falls_prevented"]})
    if method == "response":
        codes = [] if grant is not None else [m.code for m in plan_measures(config)]
        effects = what_if(model, ledger, config, month, measures=codes, households=households,
                          grant_amounts=[grant] if grant is not None else None)[columns]
    else:
        if margin_model is None:
            raise ValueError("method='margin' needs a fitted margin_model.")
        t = int(month_index(pd.Series([month]))[0])
        months = month_index(ledger["month"])
        rows = ledger[(months == t) & ledger["household_id"].isin(list(households)).to_numpy()]
        history = ledger[ledger["household_id"].isin(rows["household_id"]).to_numpy()
                         & (months <= t) & (months > t - LOOKBACK)]
        features = build_features(history, config, months=[month]).loc[rows.index]
        effects = _margin_effects(model, risk_scores(model, features), margin_model, rows,
                                  features, history, config, plan_measures(config, grant))
        effects = effects[columns]
    effects["falls_prevented"] = effects["risk_before"] - effects["risk_after"]
    return effects.reset_index(drop=True)


def help_lift(measure: Measure, features: pd.DataFrame, members: np.ndarray,
              horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """How far a measure lifts each household's margin path, per person.

    A one-month measure is a step (every month of the horizon gains it); a measure paid
    monthly is a ramp (month k gains k payments). A measure paid for fewer months than the
    horizon counts as the ramp that pays as much by the horizon's end. A share of a spending
    or income column is priced at the household's monthly average of it over the last 12
    months (``<source>_pc_12m`` features).

    Returns
    -------
    step, ramp : ndarray
        Yuan per person per year (the units of ``income_pc − line``).
    """
    effect = measure.effect
    if effect.amount is not None:
        lift = float(effect.amount) / np.maximum(members, 1.0)
    else:
        source = {column: name for name, column in SOURCES.items()}[effect.column]
        per_person = features[f"{source}_pc_12m"].to_numpy(dtype="float64") / 12.0
        # A share of income adds to the margin; a share cut from spending (negative) too.
        sign = 1.0 if effect.column.startswith("inc_") else -1.0
        lift = np.nan_to_num(sign * effect.share * per_person)
    zero = np.zeros(len(features))
    if effect.months == 1:
        return lift, zero
    return zero, lift * min(effect.months, horizon) / horizon


def _margin_effects(model, scores, margin_model, rows, features, history, config, measures):
    """Effects by the margin model for ``rows`` (one per household), their features and
    their (log-odds, calibrated risk) by the risk model."""
    log_odds, risk = scores
    facts = household_facts(rows, config, history)
    facts["students_or_fees"] = facts["students"] + facts["education_12m"]
    inputs = margin_features(features, model, log_odds)
    members = rows["members"].to_numpy(dtype="float64")
    frames = []
    for measure in measures:
        fits = np.ones(len(rows), dtype=bool)
        if measure.requires is not None:
            fits = facts[REQUIREMENTS[measure.requires]].to_numpy() > 0
        step, ramp = help_lift(measure, features, members, config.label.horizon_months)
        fits &= (step > 0) | (ramp > 0)
        if not fits.any():
            continue
        # The calibrated risk says how many falls there are; the margin model what share of
        # them the money prevents.
        share = margin_model.prevented_share(inputs[fits], step[fits], ramp[fits])
        frames.append(pd.DataFrame({
            "household_id": rows["household_id"].to_numpy()[fits],
            "measure": measure.code,
            "cost": measure.cost,
            "risk_before": risk[fits],
            "risk_after": risk[fits] * (1.0 - share),
        }))
    if not frames:
        return pd.DataFrame({"household_id": pd.Series(dtype="string"),
                             "measure": pd.Series(dtype="string"),
                             **{c: pd.Series(dtype="float64")
                                for c in ("cost", "risk_before", "risk_after")}})
    out = pd.concat(frames, ignore_index=True).astype({"household_id": "string",
                                                        "measure": "string"})
    return out.sort_values(["household_id", "measure"], kind="stable", ignore_index=True)


def compare_rules(
    effects: pd.DataFrame, households: pd.DataFrame, budget: float, measure: str
) -> pd.DataFrame:
    """Falls prevented at the same budget by today's rules, each giving everyone one measure.

    The income cut-off gives the measure to the poorest eligible households first (lowest
    annual per-capita disposable income, ``income_pc``); risk ranking to the highest
    ``risk_score`` first (within a calibration step, the higher ``risk_log_odds`` when given).
    Each goes down its list until the next household no longer fits in the budget; remaining
    ties are broken by ``household_id``. The falls each prevents are the same estimates
    the plan uses (a household the estimates give no row for the measure counts as none).

    Parameters
    ----------
    effects : DataFrame
        As from :func:`estimate_effects`.
    households : DataFrame
        The eligible households: ``household_id``, ``income_pc``, ``risk_score`` and optionally
        ``risk_log_odds``.
    budget : float
    measure : str
        The code of the measure the rules hand out (a grant).

    Returns
    -------
    DataFrame
        Indexed by :data:`RULES`: ``households``, ``spent``, ``falls_prevented``.

    Examples
    --------
    >>> effects = pd.DataFrame({"household_id": ["A", "B", "C"], "measure": "grant",
    ...                         "cost": 1500.0, "falls_prevented": [0.1, 0.3, 0.0]})
    >>> households = pd.DataFrame({"household_id": ["A", "B", "C"],
    ...                            "income_pc": [9000.0, 12000.0, 8000.0],
    ...                            "risk_score": [0.2, 0.5, 0.3]})
    >>> compare_rules(effects, households, 3000, "grant")["falls_prevented"].round(2).tolist()
    [0.1, 0.3]
    """
    offer = effects[effects["measure"] == measure]
    cost = offer["cost"].iloc[0] if len(offer) else np.nan
    gain = pd.Series(offer["falls_prevented"].to_numpy(),
                     index=offer["household_id"].astype(str).to_numpy())
    ids = households["household_id"].astype(str).to_numpy()
    rank_id = pd.Series(ids).rank(method="first").to_numpy()
    log_odds = (households["risk_log_odds"].to_numpy(dtype="float64")
                if "risk_log_odds" in households else np.zeros(len(ids)))
    orders = {
        "income_cutoff": np.lexsort((rank_id, households["income_pc"].to_numpy(dtype="float64"))),
        "risk_ranking": np.lexsort((rank_id, -log_odds,
                                    -households["risk_score"].to_numpy(dtype="float64"))),
    }
    # In whole fen, so that n grants never cost more than the budget.
    n = 0 if not (cost > 0) else min(len(ids), math.floor(round(budget * 100, 6))
                                     // math.ceil(round(cost * 100, 6)))
    rows = []
    for rule in RULES:
        chosen = ids[orders[rule][:n]]
        rows.append({"rule": rule, "households": n, "spent": n * cost if n else 0.0,
                     "falls_prevented": float(gain.reindex(chosen).fillna(0.0).sum())})
    return pd.DataFrame(rows).set_index("rule")


def read_visits(path: str | Path) -> pd.DataFrame:
    """Visits available per township this month, from a CSV file.

    Columns ``township`` and ``visits`` (or 乡镇 and 走访户数), optionally ``county`` (县) to tell
    apart townships of the same name in different counties.
    """
    try:
        raw = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    except FileNotFoundError:
        raise PlanInputError(f"{path}: visits file not found.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PlanInputError(f"{path}: not a readable CSV file ({exc.__class__.__name__}).") \
            from None
    raw = raw.rename(columns=lambda c: VISITS_ALIASES.get(str(c).strip(), str(c).strip()))
    missing = [c for c in ("township", "visits") if c not in raw.columns]
    if missing:
        raise PlanInputError(f"{path}: no {missing[0]!r} column; expected columns township and "
                             "visits (乡镇, 走访户数), optionally county (县).")
    visits = pd.to_numeric(raw["visits"].str.strip(), errors="coerce")
    bad = visits.isna() | (visits < 0) | (visits != visits.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise PlanInputError(f"{path}: row {row + 2} has visits={raw['visits'].iloc[row]!r}, "
                             "expected a whole number ≥ 0.")
    out = raw[[c for c in ("county", "township") if c in raw.columns]].apply(
        lambda s: s.str.strip()).astype("string")
    out["visits"] = visits.astype("int64")
    key = [c for c in ("county", "township") if c in out.columns]
    return out.groupby(key, as_index=False, sort=True)["visits"].sum()


def visit_plan(
    scores: pd.DataFrame, visits_per_township: pd.DataFrame | Mapping[str, int]
) -> pd.DataFrame:
    """Which households each township's cadres should visit this month, in order.

    Within a township, households that meet a hard trigger come first, then the highest risk
    (the expected number of future fallers visited is largest), ties to the household whose last
    recorded visit is oldest, then ``household_id``. Households without a model score (under the
    line now, or too little history) come after the scored ones unless a trigger fired.

    Parameters
    ----------
    scores : DataFrame
        One row per household: ``household_id``, ``township`` (and ``county`` when the visits
        name counties), ``risk_score`` (NaN when not scored), ``hard_triggers`` (names joined
        by ``;``, empty when none) and ``months_since_visit`` (months since the last month with
        income recorded; NaN when never).
    visits_per_township : DataFrame or mapping
        ``township`` → visits available, or a frame with ``township``, ``visits`` and optionally
        ``county``. A township not named gets no visits.

    Returns
    -------
    DataFrame
        The households to visit: the columns of ``scores`` plus ``visit_order`` (1, 2, … within
        the township), sorted by township and order.

    Examples
    --------
    >>> scores = pd.DataFrame({"household_id": ["A", "B", "C", "D"],
    ...                        "township": ["T1", "T1", "T1", "T2"],
    ...                        "risk_score": [0.30, 0.05, 0.30, 0.9],
    ...                        "hard_triggers": ["", "dropout", "", ""],
    ...                        "months_since_visit": [1.0, 0.0, 4.0, 0.0]})
    >>> visit_plan(scores, {"T1": 2})["household_id"].tolist()
    ['B', 'C']
    """
    if isinstance(visits_per_township, Mapping):
        visits = pd.DataFrame({"township": list(visits_per_township),
                               "visits": list(visits_per_township.values())})
    else:
        visits = visits_per_township
    key = [c for c in ("county", "township") if c in visits.columns]
    missing = [c for c in key if c not in scores.columns]
    if missing:
        raise ValueError(f"The scores lack {missing[0]!r}, which the visits are given by.")
    place = scores[key].astype("string").fillna("")
    wanted = visits.assign(**{c: visits[c].astype("string") for c in key})
    available = place.merge(wanted, on=key, how="left")["visits"].fillna(0).to_numpy()
    town, _ = pd.factorize(pd.MultiIndex.from_frame(place), sort=True)
    risk = scores["risk_score"].to_numpy(dtype="float64", na_value=np.nan)
    since = scores["months_since_visit"].to_numpy(dtype="float64", na_value=np.nan)
    hard = scores["hard_triggers"].fillna("").astype(str).to_numpy() != ""
    rank_id = pd.Series(scores["household_id"].astype(str).to_numpy()).rank(method="first")
    order = np.lexsort((
        rank_id.to_numpy(),
        -np.nan_to_num(since, nan=np.inf),
        -np.nan_to_num(risk, nan=-1.0),
        ~hard,
        town,
    ))
    sorted_town = town[order]
    starts = np.flatnonzero(np.r_[True, sorted_town[1:] != sorted_town[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    position = np.arange(len(order)) - np.repeat(starts, sizes)
    keep = position < available[order]
    out = scores.iloc[order[keep]].copy()
    out.insert(len(key), "visit_order", position[keep] + 1)
    return out.reset_index(drop=True)


def plan_frame(
    ledger: pd.DataFrame,
    model,
    config: Config,
    month: str,
    budget: float,
    grant: float | None = None,
    visits: pd.DataFrame | Mapping[str, int] | None = None,
    method: str = "auto",
    estimate: str | None = None,
    margin_model: LowestMarginModel | None = None,
    model_version: str | None = None,
) -> PlanFrames:
    """Plan one month: validated rows in, the plan, the comparison and the visits out; no I/O.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger; rows after ``month`` are ignored, so the plan for month t reads no
        data after t.
    model : RiskModel
    config : Config
    month : str
        ``YYYY-MM``.
    budget : float
        Yuan available (≥ 0).
    grant : float, optional
        Give every chosen household this one-off amount; without it each household gets the
        configured measure that prevents most per yuan.
    visits : DataFrame or mapping, optional
        Visits available per township (see :func:`visit_plan`).
    method : {"auto", "greedy", "exact"}, default="auto"
        See :func:`riskmodel.knapsack.make_plan`.
    estimate : {"auto", "margin", "response"}, optional
        How effects are estimated (see :func:`estimate_effects`); ``plan.estimate`` of the
        config when ``None``. ``auto`` fits a margin model on the ledger's realised falls up to
        ``month`` and falls back to ``response`` when the ledger holds too few to learn from.
    margin_model : LowestMarginModel, optional
        A margin model fitted already (on data up to ``month``), used instead of fitting one.
    model_version : str, optional
        Recorded in the summary.

    Returns
    -------
    PlanFrames
    """
    _check_amounts(budget, grant)
    clock = {}
    start = time.perf_counter()
    t = int(month_index(pd.Series([month]))[0])
    months = month_index(ledger["month"])
    history = _where(ledger, (months <= t) & (months > t - LOOKBACK))
    rows = history[history["month"].to_numpy(dtype=object) == month]
    if rows.empty:
        raise LedgerError(f"The ledger has no valid rows for month {month!r}.")
    status = poverty_status(history, config).set_axis(history.index)
    features = build_features(history, config, months=[month]).loc[rows.index]
    households = _households(rows, status.loc[rows.index], features, model, config)
    clock["scores"] = time.perf_counter() - start

    is_eligible = households["eligible"].to_numpy()
    eligible = households[is_eligible]
    measures = plan_measures(config, grant)
    estimate = config.plan.estimate if estimate is None else estimate
    if estimate not in ESTIMATES:
        raise ValueError(f"Got estimate={estimate!r}, expected one of {', '.join(ESTIMATES)}.")
    if estimate != "response" and margin_model is None and is_eligible.any():
        margin_model = _fit_margin(_where(ledger, months <= t), config, month, model,
                                   required=estimate == "margin")
    clock["margin_model"] = time.perf_counter() - start - sum(clock.values())
    if estimate != "response" and margin_model is not None:
        used = "margin"
        index = rows.index[is_eligible]
        scores = (eligible["risk_log_odds"].to_numpy(), eligible["risk_score"].to_numpy())
        effects = _margin_effects(model, scores, margin_model,
                                  rows.loc[index], features.loc[index], history, config, measures)
        effects["falls_prevented"] = effects["risk_before"] - effects["risk_after"]
    else:
        used = "response"
        effects = estimate_effects(model, history, config, month,
                                   pd.Index(eligible["household_id"]), grant=grant,
                                   method="response")
    clock["effects"] = time.perf_counter() - start - sum(clock.values())

    chosen = make_plan(effects, budget, method=method)
    rule_measure = measures[0].code if grant is not None else _rule_measure(
        measures, config.plan.rule_measure)
    comparison = pd.concat([
        pd.DataFrame({"households": [len(chosen)], "spent": [float(chosen["cost"].sum())],
                      "falls_prevented": [plan_value(chosen)]}, index=pd.Index(["plan"])),
        compare_rules(effects, eligible, budget, rule_measure),
    ])
    clock["plan"] = time.perf_counter() - start - sum(clock.values())

    visit_rows = rotation = None
    if visits is not None:
        visit_rows = visit_plan(households, visits)
        # Today's practice for comparison: visit whoever has waited longest.
        by_wait = households.assign(risk_score=np.nan, hard_triggers="")
        rotation = visit_plan(by_wait, visits)["household_id"]
    explained = set(chosen["household_id"].astype(str))
    if visit_rows is not None:
        explained |= set(visit_rows.loc[visit_rows["risk_score"].notna(), "household_id"])
    reasons = _top_reasons(model, features, rows, history, households, explained, config)
    plan = _plan_table(chosen, households, reasons, measures, config)
    if visit_rows is not None:
        visit_rows = _visit_table(visit_rows, reasons, config)
    clock["explain"] = time.perf_counter() - start - sum(clock.values())
    summary = _summary(month, budget, grant, plan, comparison, households, chosen.attrs, measures,
                       visit_rows, model_version, rule_measure, used)
    if visit_rows is not None:
        risk = households.set_index("household_id")["risk_score"].fillna(0.0)
        summary["visits"]["rotation_expected_fallers_visited"] = float(
            risk.reindex(rotation).sum())
    summary["timings_s"] = {k: round(v, 3) for k, v in clock.items()}
    return PlanFrames(plan, effects, households, comparison, visit_rows, summary, clock)


def _where(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The rows of ``frame`` where ``mask`` holds, without a copy when it holds everywhere."""
    return frame if mask.all() else frame[mask]


def _fit_margin(ledger, config, month, model, required: bool) -> LowestMarginModel | None:
    """A margin model of the ledger's realised futures up to ``month``; None (with a warning)
    when the ledger cannot teach one and ``required`` is false."""
    try:
        return fit_margin_model(ledger, config, month, model,
                                **config.plan.margin_model.model_dump())
    except ValueError as exc:
        if required:
            raise PlanInputError(f"Cannot learn the margin model from this ledger: {exc}") \
                from None
        logger.warning("margin model not fitted (%s); effects are the model's what-if response",
                       exc)
        return None


def _check_amounts(budget: float, grant: float | None) -> None:
    if not (isinstance(budget, int | float | np.number) and math.isfinite(budget) and budget >= 0):
        raise PlanInputError(f"Got budget={budget!r}, expected a number of yuan ≥ 0.")
    if grant is not None and not (math.isfinite(grant) and grant > 0):
        raise PlanInputError(f"Got grant={grant!r}, expected a positive number of yuan.")


def _rule_measure(measures: list[Measure], code: str) -> str:
    """The measure today's rules hand out: ``plan.rule_measure`` of the config when it is
    among the measures, else the cheapest measure every household can receive."""
    if code in {m.code for m in measures}:
        return code
    open_to_all = [m for m in measures if m.requires is None] or measures
    return min(open_to_all, key=lambda m: (m.cost, m.code)).code


def risk_scores(model, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The model's log-odds and calibrated risk of the rows, from one pass of the trees."""
    log_odds = model.decision_function(features[[str(c) for c in model.feature_names_in_]])
    calibrators = getattr(model, "calibrators_", None)
    if calibrators is None:
        return log_odds, model.predict_proba(features)[:, 1]
    return log_odds, calibrators[model.calibration_].transform(log_odds)


def _households(rows: pd.DataFrame, status: pd.DataFrame, features: pd.DataFrame, model,
                config: Config) -> pd.DataFrame:
    """One row per household of the month: place, eligibility, income, risk, triggers."""
    poor = status["poor"].to_numpy(dtype="float64", na_value=np.nan)
    eligible = poor == 0
    risk = np.full(len(rows), np.nan)
    log_odds = np.full(len(rows), np.nan)
    if eligible.any():
        log_odds[eligible], risk[eligible] = risk_scores(model, features.loc[eligible])
    fired = rule_triggers(features, config)
    hard = fired[[c for c in HARD_TRIGGERS if c in fired.columns]].copy()
    if "income_below_line" in hard:
        hard["income_below_line"] |= poor == 1
    out = pd.DataFrame(index=rows.index)
    for column in ("household_id", "county", "township", "village", "household_type"):
        out[column] = rows[column].astype("string").to_numpy()
    out["eligible"] = eligible
    out["income_pc"] = status["income_pc"].to_numpy()
    out["line"] = status["line"].to_numpy()
    out["risk_score"] = risk
    out["risk_log_odds"] = log_odds
    out["hard_triggers"] = format_triggers(hard).fillna("").to_numpy()
    out["months_since_visit"] = features["months_since_observed"].to_numpy()
    return out


def _top_reasons(model, features, rows, history, households, ids, config) -> pd.DataFrame:
    """``reason_1`` and ``reason_text_zh`` of the given households, by their household_id."""
    pick = (households["household_id"].isin(list(ids)).to_numpy()
            & households["eligible"].to_numpy())
    empty = pd.DataFrame({"reason_1": pd.Series(dtype="string"),
                          "reason_text_zh": pd.Series(dtype="string")})
    if not pick.any():
        return empty
    names = [str(c) for c in model.feature_names_in_]
    index = rows.index[pick]
    reasons = explain_households(model, features.loc[index, names], rows.loc[index], config,
                                 history=history)
    reasons.index = pd.Index(rows.loc[index, "household_id"].astype(str).to_numpy())
    return reasons[["reason_1", "reason_text_zh"]]


def _plan_table(chosen, households, reasons, measures, config) -> pd.DataFrame:
    info = households.set_index(households["household_id"].astype(str))
    ids = chosen["household_id"].astype(str).to_numpy()
    names = {m.code: m.name_zh for m in measures}
    out = pd.DataFrame({
        "priority": chosen["priority"].to_numpy(dtype="int64"),
        "household_id": pd.array(ids, dtype="string"),
        **{c: info[c].reindex(ids).to_numpy() for c in ("county", "township", "village",
                                                        "household_type")},
        "measure": chosen["measure"].astype("string").to_numpy(),
        "measure_zh": chosen["measure"].astype(str).map(names).astype("string").to_numpy(),
        "cost": chosen["cost"].to_numpy(dtype="float64"),
        "risk_before": chosen["risk_before"].to_numpy(dtype="float64"),
        "risk_after": chosen["risk_after"].to_numpy(dtype="float64"),
        "falls_prevented": chosen["falls_prevented"].to_numpy(dtype="float64"),
        "cumulative_cost": chosen["cumulative_cost"].to_numpy(dtype="float64"),
    })
    return _with_reasons(out, reasons, config)


def _visit_table(visit_rows, reasons, config) -> pd.DataFrame:
    columns = [c for c in VISIT_COLUMNS if c in visit_rows.columns]
    return _with_reasons(visit_rows[columns].copy(), reasons, config)


def _with_reasons(out: pd.DataFrame, reasons: pd.DataFrame, config: Config) -> pd.DataFrame:
    ids = out["household_id"].astype(str)
    out["reason_1"] = reasons["reason_1"].reindex(ids).astype("string").to_numpy()
    causes = {c.code: c.name_zh for c in config.causes}
    out["reason_1_zh"] = out["reason_1"].map(causes).astype("string")
    if "risk_after" in out:
        out["reason_text_zh"] = reasons["reason_text_zh"].reindex(ids).astype("string").to_numpy()
    return out


def _summary(month, budget, grant, plan, comparison, households, attrs, measures, visits,
             model_version, rule_measure, estimate) -> dict:
    plan_falls = float(comparison.loc["plan", "falls_prevented"])
    by_measure = plan.groupby("measure", sort=True).agg(
        households=("household_id", "size"), spent=("cost", "sum"),
        falls_prevented=("falls_prevented", "sum"))
    summary = {
        "month": month,
        "budget": float(budget),
        "spent": float(plan["cost"].sum()),
        "households": int(len(plan)),
        "falls_prevented": plan_falls,
        "grant": grant,
        "measures_considered": [m.code for m in measures],
        "solver": attrs.get("method"),
        "effect_estimate": estimate,
        "effect_note": ESTIMATE_NOTES[estimate],
        "households_in_month": int(len(households)),
        "eligible_households": int(households["eligible"].sum()),
        "by_measure": {str(k): {"households": int(v["households"]), "spent": float(v["spent"]),
                                "falls_prevented": float(v["falls_prevented"])}
                       for k, v in by_measure.iterrows()},
        "rules": {"measure": rule_measure},
        "model_version": model_version,
    }
    for rule in RULES:
        row = comparison.loc[rule]
        summary["rules"][rule] = {
            "households": int(row["households"]), "spent": float(row["spent"]),
            "falls_prevented": float(row["falls_prevented"]),
            "plan_ratio": plan_falls / row["falls_prevented"] if row["falls_prevented"] > 0
            else None,
        }
    if visits is not None:
        risk = visits["risk_score"].fillna(0.0)
        summary["visits"] = {
            "households": int(len(visits)),
            "townships": int(visits["township"].nunique()),
            "hard_trigger_households": int((visits["hard_triggers"] != "").sum()),
            "expected_fallers_visited": float(risk.sum()),
        }
    return summary


@dataclass
class PlanResult:
    """What a plan run produced.

    Attributes
    ----------
    month : str
    folder : Path
        ``<out>/<month>``.
    plan : DataFrame
    visits : DataFrame or None
    summary : dict
        The contents of ``plan_summary.json``.
    files : list of Path
    """

    month: str
    folder: Path
    plan: pd.DataFrame
    visits: pd.DataFrame | None
    summary: dict
    files: list[Path]

    def describe(self) -> str:
        """A few lines for the terminal."""
        s = self.summary
        lines = [
            f"{self.month}: {s['households']:,} households, {s['spent']:,.0f} of "
            f"{s['budget']:,.0f} yuan, {s['falls_prevented']:.1f} expected falls prevented "
            f"(model estimates; {s['eligible_households']:,} eligible households)",
        ]
        names = {"income_cutoff": "income cut-off (poorest first)",
                 "risk_ranking": "risk ranking (highest risk first)"}
        for rule in RULES:
            r = s["rules"][rule]
            ratio = f"{r['plan_ratio']:.2f}×" if r["plan_ratio"] is not None else "—"
            lines.append(f"  same budget, {names[rule]}: {r['falls_prevented']:.1f} falls "
                         f"prevented; the plan {ratio}")
        if "visits" in s:
            v = s["visits"]
            lines.append(f"  visits: {v['households']:,} households in {v['townships']} "
                         f"townships reach {v['expected_fallers_visited']:.1f} expected future "
                         f"fallers (longest-unvisited first: "
                         f"{v['rotation_expected_fallers_visited']:.1f})")
        lines.append(f"  wrote {', '.join(str(p) for p in self.files)}")
        return "\n".join(lines)


def read_valid(ledger_path: str | Path, config: Config,
               month: str | None = None) -> tuple[pd.DataFrame, str, dict]:
    """The valid rows of a ledger file up to ``month``, read and validated by household chunk.

    Memory is bounded by one chunk of the raw file (``scoring.chunk_households``) plus the
    valid rows kept. Rows after ``month`` are dropped as they are read.

    Returns
    -------
    ledger : DataFrame
        Valid rows, sorted by household and month within each chunk.
    month : str
        ``month``, or the ledger's last month when ``None``.
    counts : dict
        ``rows``, ``valid`` and ``quarantined`` (the whole file) and ``valid_kept``.
    """
    chunks = _LedgerChunks(ledger_path, config.scoring.chunk_households)
    if not chunks.months:
        raise LedgerError(f"{ledger_path}: no row with a readable month to plan from.")
    month = month or chunks.months[-1]
    t = int(month_index(pd.Series([month]))[0])
    parts, valid, quarantined = [], 0, 0
    for _, raw in chunks:
        result = validate_ledger(raw)
        valid += len(result.valid)
        quarantined += len(result.quarantine)
        parts.append(_where(result.valid, month_index(result.valid["month"]) <= t))
    ledger = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if not (ledger["month"] == month).any():
        raise LedgerError(f"{ledger_path}: no valid rows for month {month}; the ledger holds "
                          f"{chunks.months[0]} … {chunks.months[-1]}.")
    return ledger, month, {"rows": chunks.n_rows, "valid": valid, "quarantined": quarantined,
                           "valid_kept": len(ledger)}


def plan_month(
    ledger_path: str | Path,
    out_dir: str | Path,
    budget: float,
    grant: float | None = None,
    month: str | None = None,
    model_uri: str | None = None,
    config_path: str | Path | None = None,
    visits: str | Path | None = None,
    tracking_uri: str | None = None,
) -> PlanResult:
    """The ``riskmodel plan`` job: read, validate, plan one month and write its files.

    Parameters
    ----------
    ledger_path : str or Path
        Ledger file (``.parquet``, ``.csv`` or ``.xlsx``).
    out_dir : str or Path
        Files go to ``<out_dir>/<month>/``.
    budget : float
        Yuan available.
    grant : float, optional
        One-off amount each chosen household receives; without it, the configured measures.
    month : str, optional
        ``YYYY-MM``; the ledger's last month when ``None``.
    model_uri : str, optional
        ``models:/return-to-poverty@champion`` when ``None``.
    config_path : str or Path, optional
    visits : str or Path, optional
        CSV of visits available per township (:func:`read_visits`); writes ``visits.csv``.
    tracking_uri : str, optional

    Returns
    -------
    PlanResult
    """
    _check_amounts(budget, grant)
    config = load_config(config_path)
    visits_table = read_visits(visits) if visits is not None else None
    model, ref = load_model(model_uri or DEFAULT_MODEL_URI, tracking_uri=tracking_uri)
    started = time.perf_counter()
    ledger, month, counts = read_valid(ledger_path, config, month)
    loaded = time.perf_counter() - started
    frames = plan_frame(ledger, model, config, month, budget, grant=grant, visits=visits_table,
                        model_version=ref.version or ref.uri)
    frames.summary["ledger"] = counts
    frames.summary["timings_s"] = {"read_validate": round(loaded, 3),
                                   **frames.summary["timings_s"]}
    folder = Path(out_dir) / month
    with OutputLock(out_dir):
        folder.mkdir(parents=True, exist_ok=True)
        files = [
            write_parquet_atomic(frames.plan, folder / "plan.parquet"),
            _write_csv(frames.plan, folder / "plan.csv", PLAN_COLUMNS),
            _atomic(folder / "plan_summary.json", lambda p: write_json(frames.summary, p)),
        ]
        if frames.visits is not None:
            files.append(_write_csv(frames.visits, folder / "visits.csv", VISIT_COLUMNS))
    logger.info("plan %s: %d households, %.0f yuan, %.1f expected falls prevented", month,
                len(frames.plan), frames.summary["spent"], frames.summary["falls_prevented"])
    return PlanResult(month, folder, frames.plan, frames.visits, frames.summary, files)


def csv_table(frame: pd.DataFrame, headers: dict[str, str]) -> pd.DataFrame:
    """``frame`` with each header ``中文 name`` and household types in Chinese, for Excel."""
    out = frame[[c for c in headers if c in frame.columns]].copy()
    if "household_type" in out:
        out["household_type"] = out["household_type"].map(HOUSEHOLD_TYPE_ZH).fillna(
            out["household_type"])
    for column in ("risk_before", "risk_after", "risk_score", "falls_prevented"):
        if column in out:
            out[column] = out[column].round(4)
    return out.rename(columns={c: f"{headers[c]} {c}" for c in out.columns})


def _write_csv(frame: pd.DataFrame, path: Path, headers: dict[str, str]) -> Path:
    table = csv_table(frame, headers)
    return _atomic(path, lambda p: table.to_csv(p, index=False, encoding="utf-8-sig"))


def _atomic(path: Path, write) -> Path:
    """Write through ``write(temp)`` beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
