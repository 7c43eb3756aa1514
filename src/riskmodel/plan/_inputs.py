"""What a plan needs from the ledger, and what each measure would do for each household.

:func:`month_inputs` gathers, from some households' validated rows, one row per valid
household of the month (place, eligibility, income, calibrated risk, hard triggers), the
eligible households' features and the figures the measures' requirements read, and the falls
the margin model may learn from; parts of disjoint households add up
(:func:`combine_inputs`), so the job gathers them chunk by chunk. The effects — the risk before
and after each measure that fits a household — are priced by the lowest-margin model
(:func:`fit_from_inputs`, :func:`margin_effects`) or taken from the model's what-if response.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import Config, Measure
from ..errors import RiskModelError
from ..explain import REQUIREMENTS, grant_measures, household_facts, what_if
from ..ledger import (
    sample_households,
)
from ..model import (
    HARD_TRIGGERS,
    LOOKBACK,
    build_features,
    format_triggers,
    model_inputs,
    poverty_status,
    rule_triggers,
)
from ..months import month_index
from ._margin import (
    LowestMarginModel,
    cap_rows,
    help_lift,
    lift_columns,
    margin_features,
    training_rows,
)

logger = logging.getLogger(__name__)

HOUSEHOLD_COLUMNS = {
    "household_id": "string", "county": "string", "township": "string", "village": "string",
    "household_type": "string", "members": "float64", "eligible": "bool",
    "income_pc": "float64", "line": "float64", "risk_score": "float64",
    "risk_log_odds": "float64", "hard_triggers": "object", "months_since_visit": "float64",
    "observed_months": "int64",
}
ESTIMATES = ("auto", "margin", "response")
ESTIMATE_NOTES = {
    "margin": "the model's estimate: the calibrated risk times the share of the household's "
              "falls the measure's money prevents, learned from how far the ledger's households "
              "fell below the line; not a causal estimate",
    "response": "the model's response to the measure written into the ledger (what-if); not "
                "a causal estimate",
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


def risk_scores(model, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The model's log-odds and calibrated risk of the rows (its level included, as
    ``predict_proba`` gives it), from one pass of the trees."""
    log_odds = model.decision_function(features[[str(c) for c in model.feature_names_in_]])
    if not hasattr(model, "calibrated"):
        return log_odds, model.predict_proba(model_inputs(model, features))[:, 1]
    return log_odds, model.calibrated(log_odds)


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
