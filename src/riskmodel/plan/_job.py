"""Budget and visit plans: for the same money and the same visits, prevent the most falls.

A county office planning the year's assistance asks which households, helped or visited, would
prevent the most falls below the line. For one month of the ledger:

- **Effects.** For every eligible household (not under the line now, income history known) and
  every measure that fits it, the risk before and after the measure; ``falls_prevented`` is
  the difference, the expected number of falls below the line within the horizon the measure
  prevents. By default the calibrated risk is multiplied by the share of the household's falls
  the measure's money would prevent, priced by :class:`riskmodel.plan.LowestMarginModel` from
  how far the ledger's households fell below the line (any grant amount, any monthly payment);
  the model's what-if response (:func:`riskmodel.explain.what_if`) is the alternative. Either
  is the model's estimate, not a causal one; a county checks it with a randomised pilot (see
  ``docs/plans.md``).
- **Budget plan.** :func:`riskmodel.plan.make_plan` gives each household at most one
  measure, never one whose estimated effect is zero or negative, never over budget.
- **Rules at the same budget.** :func:`compare_rules` hands the same grant to households in the
  order of today's rules — the poorest first (the income cut-off) and the highest risk first —
  and counts the falls each prevents by the same estimates.
- **Visit plan.** :func:`visit_plan` orders each township's households so that the visits
  available reach the most expected future fallers: hard-trigger households first, then by
  risk, ties to the household whose last visit is oldest.

:func:`plan_frame` is the pure core (validated ledger in, frames out). A plan reads a household's
own rows only, except for the margin model, which learns from a fixed hash-drawn sample of
households; so :func:`plan_month`, the thin job behind ``riskmodel plan``, reads the ledger file
chunk by chunk of households (:func:`month_inputs` on each, memory bounded by a chunk), plans,
reads the chosen households again to explain them, and publishes ``<out>/<month>/``
(``plan.parquet``, ``plan.csv``, ``plan_summary.json`` and, with visits, ``visits.csv``) as the
scoring job does: staged in a hidden folder and renamed into place whole, an existing month
replaced only with ``force``. Both give the same plan.
"""

from __future__ import annotations

import difflib
import logging
import math
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Config, Measure, load_config
from ..errors import LedgerError, OutputExistsError, RiskModelError
from ..explain import REQUIREMENTS, explain_households, grant_measures, household_facts, what_if
from ..ledger import (
    HOUSEHOLD_TYPE_ALIASES,
    LedgerChunks,
    MonthOutput,
    OutputLock,
    sample_households,
    write_json,
    write_parquet,
)
from ..model import (
    DEFAULT_MODEL_URI,
    HARD_TRIGGERS,
    LOOKBACK,
    Coverage,
    EmptyColumns,
    add_counts,
    build_features,
    check_columns,
    check_model,
    format_triggers,
    known_and_missing,
    load_model,
    poverty_status,
    rule_triggers,
)
from ..months import month_index
from ._knapsack import make_plan, plan_value
from ._margin import (
    LowestMarginModel,
    cap_rows,
    help_lift,
    lift_columns,
    margin_features,
    training_rows,
)
from ._visits import VISIT_COLUMNS, read_visits, unknown_townships, visit_plan

logger = logging.getLogger(__name__)

RULES = ("income_cutoff", "risk_ranking")
ESTIMATES = ("auto", "margin", "response")
ESTIMATE_NOTES = {
    "margin": "the model's estimate: the calibrated risk times the share of the household's "
              "falls the measure's money prevents, learned from how far the ledger's households "
              "fell below the line; not a causal estimate",
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
HOUSEHOLD_TYPE_ZH = {code: name for name, code in HOUSEHOLD_TYPE_ALIASES.items()}
REASON_COLUMNS = ["reason_1", "reason_text_zh"]
HOUSEHOLD_COLUMNS = {
    "household_id": "string", "county": "string", "township": "string", "village": "string",
    "household_type": "string", "members": "float64", "eligible": "bool",
    "income_pc": "float64", "line": "float64", "risk_score": "float64",
    "risk_log_odds": "float64", "hard_triggers": "object", "months_since_visit": "float64",
    "observed_months": "int64",
}


class PlanInputError(RiskModelError):
    """A plan cannot be made from what was given: the budget, the grant or the visits file."""

    exit_code = 2


@dataclass
class MonthInputs:
    """What a plan needs from the ledger: gathered per household, so parts add up.

    Attributes
    ----------
    households : DataFrame
        One row per valid household of the month: ``household_id``, place, type, ``members``,
        ``eligible``, ``income_pc``, ``line``, ``risk_score`` and ``risk_log_odds`` (NaN when
        not eligible), ``hard_triggers``, ``months_since_visit``, ``observed_months`` (of the
        last 12, with income recorded).
    features : DataFrame
        The eligible households' features (:func:`riskmodel.plan.lift_columns`), indexed by
        ``household_id``.
    facts : DataFrame
        The eligible households' figures the measures' requirements read, same index.
    training : DataFrame or None
        Features of the falls the margin model may learn from (sampled households), with
        ``paths`` and ``groups`` (their households) beside; None when not gathered.
    paths, groups : ndarray or None
    months : ndarray or None
        Month number of each training row.
    response : DataFrame or None
        What-if effects of the eligible households, when gathered.
    """

    households: pd.DataFrame
    features: pd.DataFrame
    facts: pd.DataFrame
    training: pd.DataFrame | None = None
    paths: np.ndarray | None = None
    groups: np.ndarray | None = None
    months: np.ndarray | None = None
    response: pd.DataFrame | None = None


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
        One row per valid household of the month (see :class:`MonthInputs`).
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


def month_inputs(
    ledger: pd.DataFrame, model, config: Config, month: str, sample_share: float = 1.0,
    learn: bool = True, response: bool = False, grant: float | None = None,
) -> MonthInputs:
    """What a plan for ``month`` needs from some households' validated rows.

    Parameters
    ----------
    ledger : DataFrame
        Validated rows of a set of households with their history; rows after ``month`` are
        not read.
    model : RiskModel
    config : Config
    month : str
        ``YYYY-MM``.
    sample_share : float, default=1.0
        Share of households (drawn by :func:`riskmodel.ledger.sample_households`) whose falls
        the margin model may learn from.
    learn : bool, default=True
        Gather the margin model's training rows.
    response : bool, default=False
        Gather what-if effects (of ``grant``, or of the configured measures).
    grant : float, optional

    Returns
    -------
    MonthInputs
    """
    t = int(month_index(pd.Series([month]))[0])
    months = month_index(ledger["month"])
    history = _where(ledger, (months <= t) & (months > t - LOOKBACK))
    rows = history[history["month"].to_numpy(dtype=object) == month]
    out = _month_rows(rows, history, model, config) if len(rows) else MonthInputs(
        households=pd.DataFrame({c: pd.Series(dtype=d) for c, d in HOUSEHOLD_COLUMNS.items()}),
        features=pd.DataFrame(columns=lift_columns(model), dtype="float64"),
        facts=pd.DataFrame(columns=list(REQUIREMENTS.values()), dtype="float64"))
    if learn:
        past = _where(ledger, months <= t)
        mine = past[sample_households(past["household_id"], sample_share)]
        X, paths, groups = training_rows(mine, config, month, max_rows=None,
                                         months=config.plan.margin_model.months)
        out.training = X[lift_columns(model)].reset_index(drop=True)
        out.paths, out.groups = paths, groups
        out.months = month_index(mine.loc[X.index, "month"]) if len(X) else np.zeros(0, int)
    if response:
        ids = out.households.loc[out.households["eligible"], "household_id"]
        out.response = _response_effects(model, history, config, month, ids, grant)
    return out


def _month_rows(rows: pd.DataFrame, history: pd.DataFrame, model, config: Config) -> MonthInputs:
    """Households, features and requirement figures of the month's rows."""
    t = int(month_index(rows["month"].iloc[:1])[0])
    recent = _where(history, month_index(history["month"]) > t - 12)
    status = poverty_status(recent, config).set_axis(recent.index).loc[rows.index]
    features = build_features(history, config, months=[rows["month"].iloc[0]]).loc[rows.index]
    households = _households(rows, status, features, model, config)
    eligible = households["eligible"].to_numpy()
    ids = pd.Index(households["household_id"].to_numpy()[eligible], name="household_id")
    if eligible.any():
        facts = household_facts(rows[eligible], config, recent)
        facts = pd.DataFrame({
            "laborers": facts["laborers"].to_numpy(),
            "medical_12m": facts["medical_12m"].to_numpy(),
            "students_or_fees": (facts["students"] + facts["education_12m"]).to_numpy(),
        }, index=ids)
    else:  # no household with a score this month (too little history, all under the line)
        facts = pd.DataFrame(columns=list(REQUIREMENTS.values()), index=ids, dtype="float64")
    return MonthInputs(households=households.reset_index(drop=True),
                       features=features.loc[eligible, lift_columns(model)].set_axis(ids),
                       facts=facts)


def combine_inputs(parts: list[MonthInputs]) -> MonthInputs:
    """The inputs of several disjoint sets of households as one."""
    def joined(name: str):
        values = [getattr(p, name) for p in parts if getattr(p, name) is not None]
        if not values:
            return None
        if isinstance(values[0], np.ndarray):
            return np.concatenate(values)
        return pd.concat(values, ignore_index=name in ("households", "training", "response"))

    return MonthInputs(**{name: joined(name) for name in MonthInputs.__dataclass_fields__})


def fit_from_inputs(inputs: MonthInputs, model, config: Config) -> LowestMarginModel:
    """The margin model fitted on the gathered falls (at most ``plan.margin_model.max_rows``).

    Raises
    ------
    ValueError
        Too few falls were gathered to learn from.
    """
    if inputs.training is None:
        raise ValueError("no training rows were gathered")
    params = config.plan.margin_model.model_dump()
    for key in ("months", "max_rows", "households"):
        params.pop(key)
    keep = cap_rows(inputs.groups, inputs.months, config.plan.margin_model.max_rows)
    X = inputs.training.iloc[keep]
    return LowestMarginModel(**params).fit(margin_features(X, model), inputs.paths[keep],
                                           groups=inputs.groups[keep])


def margin_effects(
    model, margin_model: LowestMarginModel, inputs: MonthInputs, config: Config,
    measures: list[Measure],
) -> pd.DataFrame:
    """Falls each measure prevents for each eligible household, by the margin model.

    ``risk_after = risk_before × (1 − share)``, where ``share`` is the part of the household's
    falls the measure's lift of its margin path prevents
    (:meth:`riskmodel.plan.LowestMarginModel.prevented_share`).

    Returns
    -------
    DataFrame
        ``household_id``, ``measure``, ``cost``, ``risk_before``, ``risk_after``,
        ``falls_prevented``, sorted by household and measure.
    """
    eligible = inputs.households[inputs.households["eligible"].to_numpy()]
    ids = eligible["household_id"].to_numpy()
    features = inputs.features.loc[ids]
    facts = inputs.facts.loc[ids]
    risk = eligible["risk_score"].to_numpy()
    X = margin_features(features, model, eligible["risk_log_odds"].to_numpy())
    members = eligible["members"].to_numpy(dtype="float64")
    frames = []
    for measure in measures:
        fits = np.ones(len(ids), dtype=bool)
        if measure.requires is not None:
            fits = facts[REQUIREMENTS[measure.requires]].to_numpy() > 0
        step, ramp = help_lift(measure, features, members, config.label.horizon_months)
        fits &= (step > 0) | (ramp > 0)
        if not fits.any():
            continue
        # The calibrated risk says how many falls there are; the margin model what share of
        # them the money prevents.
        # Most measures fit every household: no copy of the features then.
        share = margin_model.prevented_share(X if fits.all() else X[fits], step[fits],
                                             ramp[fits])
        frames.append(pd.DataFrame({
            "household_id": ids[fits], "measure": measure.code, "cost": measure.cost,
            "risk_before": risk[fits], "risk_after": risk[fits] * (1.0 - share),
        }))
    return _effects_frame(frames)


def _response_effects(model, history, config, month, ids, grant) -> pd.DataFrame:
    columns = ["household_id", "measure", "cost", "risk_before", "risk_after"]
    if len(ids) == 0:
        return _effects_frame([])
    codes = [] if grant is not None else [m.code for m in plan_measures(config)]
    found = what_if(model, history, config, month, measures=codes, households=list(ids),
                    grant_amounts=[grant] if grant is not None else None)
    return _effects_frame([found[columns]])


def _effects_frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        out = pd.DataFrame({"household_id": pd.Series(dtype="string"),
                            "measure": pd.Series(dtype="string"),
                            **{c: pd.Series(dtype="float64")
                               for c in ("cost", "risk_before", "risk_after")}})
    else:
        out = pd.concat(frames, ignore_index=True).astype({"household_id": "string",
                                                            "measure": "string"})
    out["falls_prevented"] = out["risk_before"] - out["risk_after"]
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
        Visits available per township (see :func:`visit_plan`); a township without a valid
        household of the month is a :class:`PlanInputError`.
    method : {"auto", "greedy", "exact"}, default="auto"
        See :func:`riskmodel.plan.make_plan`.
    estimate : {"auto", "margin", "response"}, optional
        How effects are estimated; ``plan.estimate`` of the config when ``None``. ``margin``:
        the calibrated risk times the share of the household's falls the measure's money
        prevents (:func:`margin_effects`), with a margin model learned from the ledger's
        realised falls up to ``month``; ``response``: the model's what-if response
        (:func:`riskmodel.explain.what_if`); ``auto``: margin, or response when the ledger
        holds too few falls to learn from.
    margin_model : LowestMarginModel, optional
        A margin model fitted already (on data up to ``month``), used instead of fitting one.
    model_version : str, optional
        Recorded in the summary.

    Returns
    -------
    PlanFrames
    """
    _check_amounts(budget, grant)
    estimate = _check_estimate(config, estimate)
    clock = _Clock()
    t = int(month_index(pd.Series([month]))[0])
    past = _where(ledger, month_index(ledger["month"]) <= t)
    if not (past["month"].to_numpy(dtype=object) == month).any():
        raise LedgerError(f"The ledger has no valid rows for month {month!r}.")
    share = _sample_share(config, int((past["month"].to_numpy(dtype=object) == month).sum()))
    inputs = month_inputs(past, model, config, month, sample_share=share,
                          learn=estimate != "response" and margin_model is None,
                          response=estimate == "response", grant=grant)
    _check_visits(visits, inputs.households, month)
    clock.lap("inputs")
    used, margin_model = _effect_source(inputs, model, config, estimate, margin_model)
    if used == "response" and inputs.response is None:
        ids = inputs.households.loc[inputs.households["eligible"], "household_id"]
        inputs.response = _response_effects(model, past, config, month, ids, grant)
    clock.lap("margin_model")
    frames = plan_inputs(inputs, model, config, month, budget, grant=grant, visits=visits,
                         method=method, estimate=used, margin_model=margin_model,
                         model_version=model_version)
    clock.lap("plan")
    reasons = explain_chosen(past, model, config, month, _to_explain(frames))
    clock.lap("explain")
    return _with_explanations(frames, reasons, config, clock.laps)


def plan_inputs(
    inputs: MonthInputs,
    model,
    config: Config,
    month: str,
    budget: float,
    grant: float | None = None,
    visits: pd.DataFrame | Mapping[str, int] | None = None,
    method: str = "auto",
    estimate: str = "margin",
    margin_model: LowestMarginModel | None = None,
    model_version: str | None = None,
    effects: pd.DataFrame | None = None,
) -> PlanFrames:
    """The plan, the rules' comparison and the visits from gathered inputs (no reasons yet).

    ``estimate`` is ``margin`` (with ``margin_model``, or the margin ``effects`` priced already)
    or ``response`` (with ``inputs.response``); see :func:`plan_frame` for the rest.
    """
    clock = _Clock()
    households = inputs.households
    eligible = households[households["eligible"].to_numpy()]
    measures = plan_measures(config, grant)
    if effects is None:
        effects = (margin_effects(model, margin_model, inputs, config, measures)
                   if estimate == "margin" else inputs.response)
    clock.lap("effects")
    chosen = make_plan(effects, budget, method=method)
    rule_measure = measures[0].code if grant is not None else _rule_measure(
        measures, config.plan.rule_measure)
    comparison = pd.concat([
        pd.DataFrame({"households": [len(chosen)], "spent": [float(chosen["cost"].sum())],
                      "falls_prevented": [plan_value(chosen)]}, index=pd.Index(["plan"])),
        compare_rules(effects, eligible, budget, rule_measure),
    ])
    clock.lap("knapsack")
    visit_rows = None
    summary = _summary(month, budget, grant, chosen, comparison, households, measures,
                       model_version, rule_measure, estimate)
    if visits is not None:
        visit_rows = visit_plan(households, visits)
        # Today's practice for comparison: hard triggers first, then whoever waited longest.
        rota = visit_plan(households.assign(risk_score=np.nan), visits)
        risk = households.set_index("household_id")["risk_score"].fillna(0.0)
        summary["visits"] = {
            "households": int(len(visit_rows)),
            "townships": int(visit_rows["township"].nunique()),
            "hard_trigger_households": int((visit_rows["hard_triggers"] != "").sum()),
            "expected_fallers_visited": float(visit_rows["risk_score"].fillna(0.0).sum()),
            "rotation_expected_fallers_visited": float(
                risk.reindex(rota["household_id"]).sum()),
        }
        clock.lap("visits")
    plan = _plan_table(chosen, households, measures)
    return PlanFrames(plan, effects, households, comparison, visit_rows, summary, clock.laps)


def explain_chosen(ledger: pd.DataFrame, model, config: Config, month: str,
                   ids: pd.Index) -> pd.DataFrame:
    """``reason_1`` and ``reason_text_zh`` of the given eligible households, by household_id.

    ``ledger`` holds the households' validated rows up to ``month`` (others are ignored).
    """
    empty = pd.DataFrame({c: pd.Series(dtype="string") for c in REASON_COLUMNS},
                         index=pd.Index([], dtype="string", name="household_id"))
    mine = ledger[ledger["household_id"].isin(list(ids)).to_numpy()]
    t = int(month_index(pd.Series([month]))[0])
    mine = mine[month_index(mine["month"]) <= t] if len(mine) else mine
    rows = mine[mine["month"].to_numpy(dtype=object) == month]
    if rows.empty:
        return empty
    names = [str(c) for c in model.feature_names_in_]
    features = build_features(mine, config, months=[month]).loc[rows.index, names]
    reasons = explain_households(model, features, rows, config, history=mine)
    reasons.index = pd.Index(rows["household_id"].astype(str).to_numpy(), name="household_id")
    return reasons[REASON_COLUMNS]


def _to_explain(frames: PlanFrames) -> pd.Index:
    """The households whose reasons the plan and the visits show."""
    ids = set(frames.plan["household_id"].astype(str))
    if frames.visits is not None:
        ids |= set(frames.visits.loc[frames.visits["risk_score"].notna(), "household_id"])
    return pd.Index(sorted(ids), name="household_id")


def _with_explanations(frames: PlanFrames, reasons: pd.DataFrame, config: Config,
                       laps: dict) -> PlanFrames:
    plan = _with_reasons(frames.plan, reasons, config, text=True)
    visits = None
    if frames.visits is not None:
        columns = [c for c in VISIT_COLUMNS if c in frames.visits.columns]
        visits = _with_reasons(frames.visits[columns].copy(), reasons, config, text=False)
    timings = {**laps, **{f"plan_{k}": v for k, v in frames.timings.items()}}
    summary = {**frames.summary, "timings_s": {k: round(v, 3) for k, v in timings.items()}}
    return replace(frames, plan=plan, visits=visits, summary=summary, timings=timings)


def _effect_source(inputs, model, config, estimate, margin_model):
    """Which estimate is used, and the margin model (fitted here when needed)."""
    if estimate == "response":
        return "response", None
    if margin_model is not None:
        return "margin", margin_model
    try:
        return "margin", fit_from_inputs(inputs, model, config)
    except ValueError as exc:
        if estimate == "margin":
            raise PlanInputError(f"Cannot learn the margin model from this ledger: {exc}") \
                from None
        logger.warning("margin model not fitted (%s); effects are the model's what-if response",
                       exc)
        return "response", None


def _sample_share(config: Config, households: int) -> float:
    return min(1.0, config.plan.margin_model.households / max(households, 1))


def _check_estimate(config: Config, estimate: str | None) -> str:
    estimate = config.plan.estimate if estimate is None else estimate
    if estimate not in ESTIMATES:
        raise ValueError(f"Got estimate={estimate!r}, expected one of {', '.join(ESTIMATES)}.")
    return estimate


def _where(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The rows of ``frame`` where ``mask`` holds, without a copy when it holds everywhere."""
    return frame if mask.all() else frame[mask]


def _check_amounts(budget: float, grant: float | None) -> None:
    if not (isinstance(budget, int | float | np.number) and math.isfinite(budget) and budget >= 0):
        raise PlanInputError(f"Got budget={budget!r}, expected a number of yuan ≥ 0.")
    if grant is not None and not (math.isfinite(grant) and grant >= 0.01):
        raise PlanInputError(f"Got grant={grant!r}, expected a number of yuan ≥ 0.01 (one fen).")


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
    out["members"] = rows["members"].to_numpy(dtype="float64")
    out["eligible"] = eligible
    out["income_pc"] = status["income_pc"].to_numpy()
    out["line"] = status["line"].to_numpy()
    out["risk_score"] = risk
    out["risk_log_odds"] = log_odds
    out["hard_triggers"] = format_triggers(hard).fillna("").to_numpy()
    out["months_since_visit"] = features["months_since_observed"].to_numpy()
    out["observed_months"] = status["observed_months"].to_numpy()
    return out


class _Clock:
    def __init__(self):
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now


def _plan_table(chosen, households, measures) -> pd.DataFrame:
    info = households.set_index(households["household_id"].astype(str))
    ids = chosen["household_id"].astype(str).to_numpy()
    names = {m.code: m.name_zh for m in measures}
    return pd.DataFrame({
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


def _with_reasons(out: pd.DataFrame, reasons: pd.DataFrame, config: Config,
                  text: bool) -> pd.DataFrame:
    out = out.copy()
    ids = out["household_id"].astype(str)
    out["reason_1"] = reasons["reason_1"].reindex(ids).astype("string").to_numpy()
    causes = {c.code: c.name_zh for c in config.causes}
    out["reason_1_zh"] = out["reason_1"].map(causes).astype("string")
    if text:
        out["reason_text_zh"] = reasons["reason_text_zh"].reindex(ids).astype("string").to_numpy()
    return out


def _summary(month, budget, grant, chosen, comparison, households, measures, model_version,
             rule_measure, estimate) -> dict:
    plan_falls = float(comparison.loc["plan", "falls_prevented"])
    by_measure = chosen.groupby("measure", sort=True).agg(
        households=("household_id", "size"), spent=("cost", "sum"),
        falls_prevented=("falls_prevented", "sum"))
    summary = {
        "month": month,
        "budget": float(budget),
        "spent": float(chosen["cost"].sum()),
        "households": int(len(chosen)),
        "falls_prevented": plan_falls,
        "grant": grant,
        "measures_considered": [m.code for m in measures],
        "solver": chosen.attrs.get("method"),
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
                         f"fallers (triggers, then longest unvisited first: "
                         f"{v['rotation_expected_fallers_visited']:.1f})")
        lines.append(f"  wrote {', '.join(str(p) for p in self.files)}")
        lines += [f"  warning: {w}" for w in s.get("warnings", [])]
        return "\n".join(lines)


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
    force: bool = False,
    allow_unscored: bool = False,
) -> PlanResult:
    """The ``riskmodel plan`` job: read, validate, plan one month and publish its folder.

    The arguments, the visits file, the model and the ledger's months are checked before
    ``out_dir`` is created; then, holding ``out_dir``'s lock (:class:`riskmodel.ledger.OutputLock`)
    for the rest of the run, an existing ``<out_dir>/<month>`` is refused unless ``force``,
    and the files are written into a hidden staging folder and published with one rename
    (:class:`riskmodel.ledger.MonthOutput`): a reader sees the previous plan or the new
    one, never a mixture, and a failed or killed run leaves the previous plan as it was.

    The ledger file is read and validated chunk by chunk of households
    (``scoring.chunk_households``), so memory is bounded by a chunk and what the plan keeps
    per household: each chunk's features wait on disk, in a temporary folder inside the
    staging folder (removed when priced; a killed run's is removed with its staging folder by
    the next run on ``out_dir``), until the margin model that prices them is fitted. The
    month's quarantine is held to ``scoring.max_quarantine_share`` and the model to the
    ledger's columns as :func:`riskmodel.scoring.score_month` does. The chosen households are
    read again to explain them. The plan is the one :func:`plan_frame` gives on the valid rows.

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
    force : bool, default=False
        Replace an existing plan of the month.
    allow_unscored : bool, default=False
        Publish a plan even when no household, or fewer than ``scoring.min_scored_share`` of
        the month's valid households, can be scored, with a warning in ``plan_summary.json``.

    Returns
    -------
    PlanResult

    Raises
    ------
    PlanInputError
        Exit code 2: a bad budget or grant, or visits naming a township the month's ledger has
        no valid household in (a bad visits file: :class:`riskmodel.plan.VisitsFileError`,
        exit code 2 too).
    LedgerError
        Exit code 2: unreadable ledger, no rows for the month, or more of the month's rows
        quarantined than ``scoring.max_quarantine_share``.
    ModelNotFoundError
        Exit code 3: no model at the URI, or a model incompatible with the ledger's columns.
    OutputExistsError
        Exit code 4: the month exists and ``force`` is false, it holds a scoring run's output,
        or another run holds ``out_dir``.
    TooFewScoredError
        Exit code 6: no household, or fewer than ``scoring.min_scored_share`` of the month's
        valid households, can be scored (the message says why), and ``allow_unscored`` is
        false; checked as :func:`riskmodel.scoring.score_month` checks it.
    """
    _check_amounts(budget, grant)
    config = load_config(config_path)
    estimate = _check_estimate(config, None)
    out = Path(out_dir)
    if month is not None:
        _month_output(out, month, force).check()
    visits_table = read_visits(visits) if visits is not None else None
    model, ref = load_model(model_uri or DEFAULT_MODEL_URI, tracking_uri=tracking_uri)
    check_model(model, ref)
    clock = _Clock()
    chunks = LedgerChunks(ledger_path, config.scoring.chunk_households)
    if not chunks.months:
        raise LedgerError(f"{ledger_path}: no row with a readable month to plan from.")
    month = month or chunks.months[-1]
    if month not in chunks.months:
        raise LedgerError(f"{ledger_path}: no rows for month {month}; the ledger holds "
                          f"{chunks.months[0]} … {chunks.months[-1]}.")
    if visits_table is not None:
        # A township the month has no row in at all is known before the ledger is read; one
        # whose rows are all quarantined only once it is.
        place = [c for c in ("county", "township") if c in visits_table.columns]
        _check_visits(visits_table, chunks.places(month, place), month)
    with OutputLock(out), _month_output(out, month, force) as staged:
        frames = _plan_chunks(chunks, model, ref, config, month, estimate, budget, grant,
                              visits_table, staged.staging, clock, allow_unscored)
        written = [
            write_parquet(frames.plan, staged.staging / "plan.parquet"),
            _write_csv(frames.plan, staged.staging / "plan.csv", PLAN_COLUMNS),
            write_json(frames.summary, staged.staging / "plan_summary.json"),
        ]
        if frames.visits is not None:
            written.append(_write_csv(frames.visits, staged.staging / "visits.csv",
                                      VISIT_COLUMNS))
        folder = staged.publish()
    logger.info("plan %s: %d households, %.0f yuan, %.1f expected falls prevented", month,
                len(frames.plan), frames.summary["spent"], frames.summary["falls_prevented"])
    return PlanResult(month, folder, frames.plan, frames.visits, frames.summary,
                      [folder / path.name for path in written])


def _plan_chunks(chunks: LedgerChunks, model, ref, config: Config, month: str, estimate: str,
                 budget: float, grant: float | None, visits: pd.DataFrame | None,
                 spill_dir: Path, clock: _Clock, allow_unscored: bool = False) -> PlanFrames:
    """The plan of the file's month, read chunk by chunk, checked as the scoring job checks."""
    tally = chunks.counts(month, config.scoring.max_quarantine_share)
    reference = getattr(model, "reference_", None)
    column_counts = None
    empty = EmptyColumns(chunks.unfilled)
    share = _sample_share(config, tally.rows_in)
    # Each chunk's features wait on disk until the margin model that prices them is fitted:
    # memory holds one chunk's features, not the month's.
    with tempfile.TemporaryDirectory(prefix=".plan-features-", dir=spill_dir) as spill:
        parts, stored = [], []
        for chunk in chunks.validated(month, tally):
            clock.lap("read_validate")
            empty.add(chunk.empty_columns)
            part = month_inputs(chunk.valid, model, config, month, sample_share=share,
                                learn=estimate != "response", response=estimate == "response",
                                grant=grant)
            if reference:
                known = [c for c in reference["features"] if c in part.features.columns]
                column_counts = add_counts(column_counts,
                                           known_and_missing(part.features[known]))
            if estimate != "response":
                start = stored[-1].start + stored[-1].n_households if stored else 0
                stored.append(_SpilledFeatures.save(part, Path(spill) / f"{len(stored)}.npy",
                                                    start))
            # A new empty frame: a slice would keep the whole block alive.
            part.features = pd.DataFrame(columns=part.features.columns, dtype="float64")
            parts.append(part)
            clock.lap("inputs")
        tally.reconcile()
        check_columns(model, ref, column_counts)
        inputs = combine_inputs(parts)
        del parts
        if inputs.households.empty:
            raise LedgerError(f"{chunks.path}: no valid rows for month {month}; the ledger "
                              f"holds {chunks.months[0]} … {chunks.months[-1]}.")
        coverage = _coverage(inputs.households, config, month, empty)
        unscored = coverage.check(config.scoring.min_scored_share, allow=allow_unscored)
        _check_visits(visits, inputs.households, month)
        clock.lap("inputs")
        used, margin_model = _effect_source(inputs, model, config, estimate, None)
        if used == "response" and inputs.response is None:
            eligible = set(inputs.households.loc[inputs.households["eligible"], "household_id"])
            inputs.response = _effects_frame([
                _response_effects(model, chunk.valid, config, month,
                                  sorted(eligible & set(chunk.valid["household_id"])), grant)
                for chunk in chunks.validated()])
        clock.lap("margin_model")
        effects = None
        if used == "margin":
            measures = plan_measures(config, grant)
            effects = _effects_frame(
                [margin_effects(model, margin_model, chunk.inputs(inputs), config, measures)
                 for chunk in stored])
            clock.lap("effects")
    frames = plan_inputs(inputs, model, config, month, budget, grant=grant, visits=visits,
                         method="auto", estimate=used, margin_model=margin_model,
                         model_version=ref.version or ref.uri, effects=effects)
    clock.lap("plan")
    wanted = _to_explain(frames)
    # One pass over the file for the households shown, not one per chunk.
    reasons = explain_chosen(chunks.valid_rows_of(wanted), model, config, month, wanted)
    clock.lap("explain")
    frames = _with_explanations(frames, reasons, config, clock.laps)
    frames.summary["ledger"] = {"rows": tally.n_rows, "valid": tally.n_valid,
                                "quarantined": tally.quarantined, "empty_columns": empty.columns}
    frames.summary["not_eligible_by_reason"] = coverage.by_reason
    frames.summary["insufficient_history_by_months_recorded"] = {
        str(k): int(v) for k, v in sorted(coverage.months_recorded.items())}
    frames.summary["coverage"] = {
        "valid_households": coverage.households, "scored": coverage.scored,
        "share": round(coverage.share, 4),
        "min_scored_share": config.scoring.min_scored_share,
        "published_below_min": unscored is not None}
    frames.summary["warnings"] = ([unscored] if unscored else []) + empty.warnings()
    for warning in frames.summary["warnings"]:
        logger.warning("plan %s: %s", month, warning)
    return frames


def _coverage(households: pd.DataFrame, config: Config, month: str,
              empty: EmptyColumns) -> Coverage:
    """The month's valid households that have a score (``eligible``), and why the others not:
    the reasons ``riskmodel score`` writes in ``not_scored_reason``."""
    eligible = households["eligible"].to_numpy(dtype=bool)
    unknown = households["income_pc"].isna().to_numpy()
    recorded = households.loc[unknown, "observed_months"].value_counts()
    return Coverage(
        month, len(households), int(eligible.sum()),
        {"poor_now": int((~eligible & ~unknown).sum()),
         "insufficient_history": int(unknown.sum())},
        {int(k): int(v) for k, v in recorded.items()}, config.label.min_observed_months,
        empty.columns)


def _month_output(out: Path, month: str, force: bool) -> MonthOutput:
    """The month's output folder, refused when it holds a scoring run's files: ``force``
    would replace the whole folder, scores and all."""
    output = MonthOutput(out, month, force)
    if (output.final / "scores.parquet").exists():
        raise OutputExistsError(f"{output.final} holds a scoring run's output (scores.parquet); "
                                "give plans an --out folder of their own.")
    return output


def _check_visits(visits, households: pd.DataFrame, month: str) -> None:
    """Refuse visits naming a township without a valid household of the month."""
    if visits is None:
        return
    unknown = unknown_townships(households, visits)
    if unknown.empty:
        return
    missing = _place_names(unknown)
    known = sorted(_place_names(households[list(unknown.columns)].drop_duplicates()))
    close = [m for name in missing[:5] for m in difflib.get_close_matches(name, known, n=2)]
    shown = list(dict.fromkeys(close + known))[:5]
    raise PlanInputError(
        f"The visits name {len(missing)} township(s) without a valid household in {month}: "
        f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}; the month's "
        f"{len(known)} township(s) include {', '.join(shown)}{' …' if len(known) > 5 else ''}; "
        "check the names (and counties) in the visits file.")


def _place_names(places: pd.DataFrame) -> list[str]:
    """``county township`` (or ``township``) of each row of a few places."""
    return places.astype("string").fillna("").agg(" ".join, axis=1).tolist()


@dataclass
class _SpilledFeatures:
    """One chunk's eligible households' features, kept in a ``.npy`` file until priced."""

    path: Path
    columns: list[str]
    start: int  # the chunk's first row in the combined households
    n_households: int

    @classmethod
    def save(cls, part: MonthInputs, path: Path, start: int) -> _SpilledFeatures:
        np.save(path, part.features.to_numpy(dtype="float64"), allow_pickle=False)
        return cls(path, list(part.features.columns), start, len(part.households))

    def inputs(self, combined: MonthInputs) -> MonthInputs:
        """The chunk's households, features and figures, from the combined inputs."""
        households = combined.households.iloc[self.start:self.start + self.n_households]
        ids = pd.Index(households.loc[households["eligible"].to_numpy(), "household_id"]
                       .to_numpy(), name="household_id")
        features = pd.DataFrame(np.load(self.path, allow_pickle=False), index=ids,
                                columns=self.columns)
        return MonthInputs(households=households, features=features, facts=combined.facts)


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
    csv_table(frame, headers).to_csv(path, index=False, encoding="utf-8-sig")
    return path
