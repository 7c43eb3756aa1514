"""The monitoring lifecycle around a score: who may leave monitoring, and what changed.

(Who must enter — the hard triggers of 应纳尽纳 — is :func:`riskmodel.model.rule_triggers`.)

- **Risk elimination (风险消除).** A household is proposed for elimination when it meets every
  rule of ``config.lifecycle.elimination``: of a type that is monitored, income above the line
  for the last consecutive months, no open rigid spending, guarantees in place (两不愁三保障
  and safe water), no hard trigger, a low model risk — and never a household with no laborer,
  whose risk cannot be eliminated by income it cannot earn (they stay under 兜底 monitoring).
  The list is a proposal for cadres to verify, not a decision.
- **Changes since last month**: households newly in the high tier, whose tier fell, that left
  the ledger, and the elimination candidates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import Config
from ..ledger import INCOME, SPENDING
from ..model import household_rows
from ..months import month_index

TIER_ORDER = {"low": 0, "medium": 1, "high": 2}
CHANGES = ("newly_high", "fell_below_line", "tier_fell", "quarantined", "left_ledger",
           "elimination_candidate")


def _window_sum(codes: np.ndarray, offset: np.ndarray, values: np.ndarray, window: int,
                n_households: int) -> np.ndarray:
    """Per household, the sum of ``values`` over its rows in the ``window`` months up to t."""
    inside = (offset < window) & ~np.isnan(values)
    return np.bincount(codes[inside], weights=values[inside], minlength=n_households)


def monitoring_columns(history: pd.DataFrame, status: pd.DataFrame, month: str,
                       config: Config, months: np.ndarray | None = None) -> pd.DataFrame:
    """The history the elimination rules read, for the rows at ``month``.

    Parameters
    ----------
    history : DataFrame
        Validated ledger rows of some households at months ≤ ``month`` (``household_id`` may
        be integer codes, 0 ≤ code < rows, as the scoring numbers them).
    status : DataFrame
        :func:`riskmodel.model.poverty_status` of ``history`` (same row order).
    month : str
        ``YYYY-MM``.
    config : Config
    months : ndarray of int, optional
        The rows' month numbers (:func:`riskmodel.months.month_index` of ``month``), when the
        caller has them.

    Returns
    -------
    DataFrame
        Indexed like the rows of ``history`` at ``month``: ``months_above_line`` (consecutive
        months up to and including ``month`` with income known and above the line; a month
        without a row breaks the run) and ``rigid_spending_share`` (medical and education
        spending over income in the last ``rigid_spending_months`` months; 0 without such
        spending, inf when spending met no income).
    """
    t = int(month_index(pd.Series([month]))[0])
    offset = t - (month_index(history["month"]) if months is None else np.asarray(months))
    if (offset < 0).any():
        raise ValueError(f"Got history with months after {month}; expected months ≤ {month}.")
    codes = household_rows(history["household_id"])
    n_households = int(codes.max()) + 1 if len(codes) else 0
    now = np.flatnonzero(offset == 0)
    at_t = codes[now]

    span = int(offset.max()) + 1 if len(offset) else 1
    above = np.zeros((n_households, span), dtype=bool)
    above[codes, offset] = status["poor"].to_numpy(dtype="float64", na_value=np.nan) == 0
    # Column 0 is the scored month: the run is the number of True cells before the first False.
    broken = ~above
    run = np.where(broken.any(axis=1), broken.argmax(axis=1), span)[at_t]

    window = config.lifecycle.elimination.rigid_spending_months
    # Only the rows of the window are summed: the others are read no further.
    inside = np.flatnonzero(offset < window)
    recent = history.iloc[inside] if len(inside) < len(history) else history
    incomes = np.nansum(recent[INCOME].to_numpy(dtype="float64", na_value=np.nan), axis=1)
    rigid = np.nansum(recent[SPENDING].to_numpy(dtype="float64", na_value=np.nan), axis=1)
    codes, offset = codes[inside], offset[inside]
    income_sum = _window_sum(codes, offset, incomes, window, n_households)[at_t]
    rigid_sum = _window_sum(codes, offset, rigid, window, n_households)[at_t]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(rigid_sum <= 0, 0.0,
                         np.where(income_sum > 0, rigid_sum / income_sum, np.inf))
    return pd.DataFrame({"months_above_line": run.astype("int64"),
                         "rigid_spending_share": share}, index=history.index[now])


def elimination_candidates(rows: pd.DataFrame, config: Config) -> np.ndarray:
    """Whether each scored row meets every risk-elimination rule.

    Parameters
    ----------
    rows : DataFrame
        One row per household at the month: ``household_type``, ``labor_full``,
        ``labor_partial``, the guarantee columns of the rule, ``risk_tier``, and the columns of
        :func:`monitoring_columns`.
    config : Config
        Rules in ``config.lifecycle.elimination``.

    Returns
    -------
    ndarray of bool

    Examples
    --------
    >>> from riskmodel import load_config
    >>> rows = pd.DataFrame({
    ...     "household_type": ["monitored", "monitored"], "labor_full": [1, 0],
    ...     "labor_partial": [0, 0], "insured_all": [True, True], "housing_safe": [True, True],
    ...     "water_safe": [True, True], "risk_tier": ["low", "low"], "rule_triggers": ["", ""],
    ...     "months_above_line": [8, 8], "rigid_spending_share": [0.0, 0.0]})
    >>> elimination_candidates(rows, load_config()).tolist()
    [True, False]
    """
    rule = config.lifecycle.elimination
    laborers = (rows["labor_full"].to_numpy(dtype="float64", na_value=0.0)
                + rows["labor_partial"].to_numpy(dtype="float64", na_value=0.0))
    guarantees = np.ones(len(rows), dtype=bool)
    for column in rule.guarantees:
        guarantees &= rows[column].astype("boolean").eq(True).fillna(False).to_numpy(dtype=bool)
    tier = _tier_order(rows["risk_tier"])
    return (
        rows["household_type"].isin(rule.household_types).to_numpy(dtype=bool)
        & (rows["months_above_line"].to_numpy() >= rule.months_above_line)
        & (rows["rigid_spending_share"].to_numpy(dtype="float64") <= rule.rigid_spending_max_share)
        & guarantees
        & (rows["rule_triggers"].fillna("").to_numpy(dtype=object) == "")
        & (tier <= TIER_ORDER[rule.max_risk_tier])
        & (laborers >= rule.min_laborers)
    )


def _tier_order(tiers: pd.Series) -> np.ndarray:
    """Each tier's place in :data:`TIER_ORDER` (NaN for anything else), as
    ``tiers.map(TIER_ORDER)`` without a lookup per row."""
    order = np.full(len(tiers), np.nan)
    for name, place in TIER_ORDER.items():
        order[tiers.eq(name).to_numpy(dtype=bool, na_value=False)] = place
    return order


def changes_since(previous: pd.DataFrame, current: pd.DataFrame,
                  quarantined: pd.Series | None = None) -> pd.DataFrame:
    """What changed since last month's scores.

    Parameters
    ----------
    previous, current : DataFrame
        Last month's and this month's ``scores.parquet`` (``household_id``, ``risk_tier``,
        ``risk_score``, ``not_scored_reason``; ``current`` also ``elimination_candidate`` and
        place columns).
    quarantined : Series, optional
        Household ids of this month's quarantined rows.

    Returns
    -------
    DataFrame
        One row per household and change — ``newly_high`` (high now, not high or not scored
        last month), ``fell_below_line`` (under the line now, not last month: the event the
        score predicts), ``tier_fell``, ``quarantined`` (in last month's output, this month's row
        rejected), ``left_ledger`` (in last month's output, no row this month) and
        ``elimination_candidate`` — with ``tier_previous``, ``tier_now``, ``risk_previous``,
        ``risk_now``; sorted by change then household.

    Examples
    --------
    >>> prev = pd.DataFrame({"household_id": ["A", "B", "C"], "risk_tier": ["low", "high", "low"],
    ...                      "risk_score": [0.01, 0.3, 0.02]})
    >>> cur = pd.DataFrame({"household_id": ["A", "B"], "risk_tier": ["high", "medium"],
    ...                     "risk_score": [0.4, 0.1], "elimination_candidate": [False, False]})
    >>> changes_since(prev, cur)[["household_id", "change"]].values.tolist()
    [['A', 'newly_high'], ['B', 'tier_fell'], ['C', 'left_ledger']]
    """
    keep = ["household_id", "risk_tier", "risk_score", "not_scored_reason"]
    place = [c for c in ("county", "township", "village") if c in current]
    merged = current.reindex(columns=["household_id", *place, *keep[1:]]).merge(
        previous.reindex(columns=keep).rename(columns={
            "risk_tier": "tier_previous", "risk_score": "risk_previous",
            "not_scored_reason": "reason_previous"}),
        on="household_id", how="outer", indicator=True,
    ).rename(columns={"risk_tier": "tier_now", "risk_score": "risk_now"})
    now = merged["tier_now"].map(TIER_ORDER).to_numpy(dtype="float64", na_value=np.nan)
    before = merged["tier_previous"].map(TIER_ORDER).to_numpy(dtype="float64", na_value=np.nan)
    candidate = merged["household_id"].isin(
        current.loc[current["elimination_candidate"].to_numpy(dtype=bool), "household_id"])
    gone = (merged["_merge"] == "right_only").to_numpy()
    rejected = merged["household_id"].isin(
        quarantined if quarantined is not None else []).to_numpy(dtype=bool)
    masks = {
        "newly_high": (now == TIER_ORDER["high"]) & ~(before == TIER_ORDER["high"]),
        "fell_below_line": (merged["not_scored_reason"].eq("poor_now").fillna(False)
                            & ~merged["reason_previous"].eq("poor_now").fillna(False)
                            & (merged["_merge"] == "both")).to_numpy(dtype=bool),
        "tier_fell": now < before,
        "quarantined": gone & rejected,
        "left_ledger": gone & ~rejected,
        "elimination_candidate": candidate.to_numpy(dtype=bool),
    }
    parts = [merged[mask].assign(change=name) for name, mask in masks.items()]
    columns = ["household_id", *place, "change", "tier_previous", "tier_now", "risk_previous",
               "risk_now"]
    out = pd.concat(parts, ignore_index=True)[columns]
    out["change"] = pd.Categorical(out["change"], categories=CHANGES)
    out = out.sort_values(["change", "household_id"], kind="stable").reset_index(drop=True)
    out["change"] = out["change"].astype("string")
    return out


__all__ = ["CHANGES", "TIER_ORDER", "changes_since", "elimination_candidates",
           "monitoring_columns"]
