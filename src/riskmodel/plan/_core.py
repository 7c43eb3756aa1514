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

:func:`plan_frame` is the pure core (validated ledger in, frames out); the inputs and the
effects it prices are gathered by :mod:`._inputs`. A plan reads a household's own rows only,
except for the margin model, which learns from a fixed hash-drawn sample of households; so
:func:`riskmodel.plan.plan_month` (:mod:`._job`), the thin job behind ``riskmodel plan``, reads
the ledger file chunk by chunk of households (:func:`month_inputs` on each, memory bounded by a
chunk), plans with :func:`plan_inputs`, reads the chosen households again to explain them, and
publishes ``<out>/<month>/`` as the scoring job does. Both give the same plan.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..clock import Clock
from ..config import Config, Measure
from ..errors import LedgerError
from ..explain import explain_households
from ..model import (
    build_features,
)
from ..months import month_index
from ._inputs import (
    ESTIMATE_NOTES,
    MonthInputs,
    PlanInputError,
    _check_estimate,
    _effect_source,
    _response_effects,
    _sample_share,
    _where,
    margin_effects,
    month_inputs,
    plan_measures,
)
from ._knapsack import make_plan, plan_value
from ._margin import (
    LowestMarginModel,
)
from ._visits import VISIT_COLUMNS, unknown_townships, visit_plan

logger = logging.getLogger(__name__)

RULES = ("income_cutoff", "risk_ranking")
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
REASON_COLUMNS = ["reason_1", "reason_text_zh"]


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
    clock = Clock()
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
    clock = Clock()
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
