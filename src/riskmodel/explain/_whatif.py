"""What-if: the model's risk for each household of a month under each assistance measure.

A measure is a change to the household's ledger, and the household is re-scored on features
rebuilt from the changed ledger. This is the model's response to the changed figures, not a
causal effect: the model learned which households fell, not what assistance does.

How a measure enters the features at month t. The measure is paid from the next month on, but
the score at t can only see months ≤ t, so the measure is written into the trailing window
instead, as if it had been in place:

- An amount (a grant, a wage, a 低保 transfer) adds ``amount × months`` yuan to the household's
  income over the next year. That total is spread evenly over the observed months of the
  12 months ending at t (``amount × months / 12`` each), so every annualised window (3, 6 and
  12 months) rises by the same per-capita figure as the coming year's income will, and no
  trend or shock appears that the payment did not cause.
- A share (医疗救助 cuts out-of-pocket costs, 教育资助 cuts fees) scales the spending of the last
  ``months`` months ending at t: the bills the measure would reimburse.

Only money changes. What marks a household as one that receives assistance is left as it was:
the status flags (``dibao``, ``welfare_job``) and the features of its transfer income
(:data:`ASSISTANCE_FEATURES`), so that the model's learned association between receiving
assistance and being poor does not mask the money. Measured on the demo ledger (3,000
households, 2024-12), letting those features move made a 1,500-yuan grant raise the model's risk
for 34% of households, every raise through them; held, the payment moves only features the
model is constrained never to raise the risk with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..config import Config, Measure, MeasureEffect
from ..errors import LedgerError
from ..ledger import INCOME
from ..model import LOOKBACK, build_features, model_inputs
from ..months import month_index
from ._facts import WINDOW, household_facts

# Features of transfer income that mark a household as one receiving assistance; held at their
# values before the measure, as the status flags are.
ASSISTANCE_FEATURES = ("transfer_pc_3m", "transfer_pc_6m", "transfer_pc_12m",
                       "transfer_share_12m")
REQUIREMENTS = {
    "labor": "laborers",
    "medical_bills": "medical_12m",
    "students": "students_or_fees",
}


def grant_measures(amounts: Sequence[float], config: Config) -> list[Measure]:
    """One-off grants of the given amounts, priced at their amount.

    They pay into the column of the configured ``grant`` measure (``inc_transfer`` when there
    is none) and are named ``grant_<amount>``.

    Examples
    --------
    >>> from riskmodel import load_config
    >>> [m.code for m in grant_measures([500, 2000], load_config())]
    ['grant_500', 'grant_2000']
    """
    template = next((m for m in config.measures if m.code == "grant"), None)
    column = template.effect.column if template is not None else "inc_transfer"
    out = []
    for amount in amounts:
        if not amount > 0:
            raise ValueError(f"Got grant amount {amount!r}, expected a positive number of yuan.")
        out.append(Measure(
            code=f"grant_{amount:g}", name_zh=f"一次性救助金 {amount:g} 元", cost=float(amount),
            effect=MeasureEffect(column=column, amount=float(amount), months=1),
        ))
    return out


def measure_names(codes: Sequence[str], config: Config) -> dict[str, str]:
    """The Chinese name of each measure code: ``name_zh`` of ``config.measures``, and
    ``一次性救助金 <amount> 元`` for the grants of :func:`grant_measures`; an unknown code keeps
    its code.

    Examples
    --------
    >>> from riskmodel import load_config
    >>> measure_names(["dibao", "grant_500"], load_config())
    {'dibao': '低保', 'grant_500': '一次性救助金 500 元'}
    """
    known = {m.code: m.name_zh for m in config.measures}
    out = {}
    for code in dict.fromkeys(str(c) for c in codes):
        amount = code.removeprefix("grant_")
        if code not in known and amount != code:
            try:
                known[code] = grant_measures([float(amount)], config)[0].name_zh
            except ValueError:
                pass
        out[code] = known.get(code, code)
    return out


def what_if(
    model,
    ledger: pd.DataFrame,
    config: Config,
    month: str,
    measures: Sequence[str] | None = None,
    households: Sequence[str] | None = None,
    grant_amounts: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Risk before and after each applicable measure, for every household of a month.

    Parameters
    ----------
    model : RiskModel
        Anything with ``predict_proba`` on :func:`riskmodel.model.build_features` output.
    ledger : DataFrame
        A validated ledger holding the month and its history.
    config : Config
        Supplies the measures (``config.measures``).
    month : str
        ``YYYY-MM``.
    measures : sequence of str, optional
        Codes of ``config.measures`` to try; all of them when ``None``.
    households : sequence of str, optional
        Household ids to try; every household of the month when ``None``.
    grant_amounts : sequence of float, optional
        Also try one-off grants of these amounts (see :func:`grant_measures`).

    Returns
    -------
    DataFrame
        One row per household and applicable measure: ``household_id``, ``measure``, ``cost``,
        ``risk_before``, ``risk_after`` and ``risk_change`` (after − before; negative lowers the
        risk), sorted by household and then by ``risk_change``, largest fall first. A measure
        applies when the household meets its ``requires``: ``labor`` a laborer,
        ``medical_bills`` out-of-pocket medical costs in the last 12 months, ``students``
        students or education costs in the last 12 months.
    """
    chosen = _measures(config, measures, grant_amounts)
    target = month_index(pd.Series([month]))[0]
    months = month_index(ledger["month"])
    at_month = months == target
    if households is not None:
        at_month &= ledger["household_id"].isin(list(households)).to_numpy()
    if not at_month.any():
        raise LedgerError(f"The ledger has no rows to try measures on for month {month!r}.")
    ids = ledger.loc[at_month, "household_id"]
    near = ledger["household_id"].isin(ids).to_numpy() & (months > target - LOOKBACK) & (
        months <= target)
    history = ledger[near]
    hist_months = months[near]
    rows = history[hist_months == target]
    facts = household_facts(rows, config, history)
    facts["students_or_fees"] = facts["students"] + facts["education_12m"]

    features = build_features(history, config, months=[month])
    before = model.predict_proba(model_inputs(model, features))[:, 1]
    held = [c for c in ASSISTANCE_FEATURES if c in features.columns]
    row_of = pd.Index(rows["household_id"].to_numpy())
    code_in_history = row_of.get_indexer(history["household_id"].to_numpy())
    age = target - hist_months
    observed = ~np.isnan(history[INCOME].to_numpy(dtype="float64", na_value=np.nan)).all(axis=1)

    frames = []
    for measure in chosen:
        eligible = np.ones(len(rows), dtype=bool)
        if measure.requires is not None:
            eligible = facts[REQUIREMENTS[measure.requires]].to_numpy() > 0
        if not eligible.any():
            continue
        changed = _apply(history, measure.effect, eligible[code_in_history], age, observed)
        rebuilt = build_features(changed, config, months=[month])
        rebuilt[held] = features[held]
        after = model.predict_proba(model_inputs(model, rebuilt))[:, 1]
        frames.append(pd.DataFrame({
            "household_id": rows["household_id"].to_numpy()[eligible],
            "measure": measure.code,
            "cost": measure.cost,
            "risk_before": before[eligible],
            "risk_after": after[eligible],
        }))
    if not frames:
        return pd.DataFrame({
            "household_id": pd.Series(dtype="string"), "measure": pd.Series(dtype="string"),
            **{c: pd.Series(dtype="float64")
               for c in ("cost", "risk_before", "risk_after", "risk_change")},
        })
    out = pd.concat(frames, ignore_index=True)
    out["risk_change"] = out["risk_after"] - out["risk_before"]
    out = out.astype({"household_id": "string", "measure": "string"})
    return out.sort_values(["household_id", "risk_change"], kind="stable", ignore_index=True)


def _measures(
    config: Config, codes: Sequence[str] | None, grant_amounts: Sequence[float] | None
) -> list[Measure]:
    known = {m.code: m for m in config.measures}
    if codes is None:
        chosen = list(config.measures)
    else:
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise ValueError(
                f"Got measure {unknown[0]!r}, expected codes of config.measures: "
                f"{', '.join(known)}."
            )
        chosen = [known[c] for c in codes]
    return chosen + grant_measures(grant_amounts or [], config)


def _apply(
    history: pd.DataFrame,
    effect: MeasureEffect,
    eligible: np.ndarray,
    age: np.ndarray,
    observed: np.ndarray,
) -> pd.DataFrame:
    """The ledger rows with one measure written into the trailing window of eligible rows."""
    changed = history.copy()
    values = changed[effect.column].to_numpy(dtype="float64", na_value=np.nan)
    if effect.amount is not None:
        hit = eligible & observed & (age < WINDOW)
        per_month = effect.amount * effect.months / WINDOW
        values = np.where(hit, np.nan_to_num(values) + per_month, values)
    else:
        hit = eligible & (age < effect.months)
        values = np.where(hit, values * (1.0 + effect.share), values)
    changed[effect.column] = values
    return changed
