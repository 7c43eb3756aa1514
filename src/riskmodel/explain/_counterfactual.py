"""The model's answer to "which cause, taken away, would lift this household's risk?".

For each cause the household's ledger is rewritten as if the cause had not struck: what it
took in the last 12 months is given back (:func:`riskmodel.explain.cause_givebacks`: medical
bills repaid, lost wages and business income restored, fees waived), its events of those
months are cleared, and its running burden ends where the ledger records one (ill members
well; disabled members of working age at work). The features are rebuilt from the rewritten
ledger — months ≤ t only, as for the score — and the household is scored again. The fall in the
model's log-odds is the cause's *counterfactual weight*.

This is the same question the synthetic truth answers for ``true_cause`` (with the true future
instead of the model), and the model's response, not a causal effect. The explanations use it to
share out the net-income features, which carry every cause at once (see
:func:`riskmodel.explain.cause_contributions`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import Config
from ..model import LOOKBACK, build_features
from ..months import month_label
from ._facts import (
    WINDOW,
    LedgerWindow,
    cause_givebacks,
    disabled_adults,
    member_count,
    months_of,
    not_full_time,
    trailing_window,
)

# Events of the last 12 months cleared when a cause is given back.
CLEARED_EVENTS = {
    "illness": ["ev_illness"],
    "accident": ["ev_accident"],
    "employment": ["ev_job_loss"],
    "business": ["ev_business_loss"],
    "disaster": ["ev_disaster"],
    "disability": ["ev_disability"],
    "education": [],
}
# Ledger columns the features never read.
UNREAD = ("township", "village")
# Member counts that end with the cause's running burden.
ILL_MEMBERS = ["chronic_ill", "serious_ill"]


def cause_drops(
    model,
    rows: pd.DataFrame,
    history: pd.DataFrame,
    config: Config,
    *,
    raw: np.ndarray | None = None,
    select: np.ndarray | None = None,
    window: LedgerWindow | None = None,
    givebacks: dict[str, dict[str, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """Fall in the model's log-odds when each cause is given back, per household-month.

    Parameters
    ----------
    model : RiskModel or HistGradientBoostingClassifier
        Anything with ``decision_function`` and ``feature_names_in_``.
    rows : DataFrame
        Validated ledger rows of the household-months to explain.
    history : DataFrame
        The validated ledger they come from (the 24 months up to each row are read).
    config : Config
    raw : ndarray, optional
        The model's log-odds of ``rows`` (e.g. SHAP values plus base value); rebuilt from
        ``history`` when omitted.
    select : ndarray of bool, optional
        Rows to evaluate (all by default); the others get NaN.
    window : LedgerWindow, optional
        :func:`riskmodel.explain.trailing_window` of ``rows``, when already at hand.
    givebacks : dict, optional
        :func:`riskmodel.explain.cause_givebacks` of ``rows``, when already at hand.

    Returns
    -------
    DataFrame
        Indexed like ``rows``, one float column per cause of
        :func:`riskmodel.explain.cause_givebacks`: log-odds now minus log-odds with the cause
        given back (positive: the cause raises the risk). 0 where the cause took nothing and
        left no burden the ledger records; NaN for rows not selected.
    """
    select = np.ones(len(rows), dtype=bool) if select is None else np.asarray(select, bool)
    window = trailing_window(rows, history) if window is None else window
    givebacks = cause_givebacks(rows, window) if givebacks is None else givebacks
    causes = list(givebacks)
    out = np.full((len(rows), len(causes)), np.nan)
    names = [str(c) for c in model.feature_names_in_]
    row_month = months_of(rows["month"])
    hist_month = months_of(history["month"])
    # The features do not read where in the county a household lives; copying it costs.
    columns = [c for c in history.columns if c not in UNREAD]
    burden = {
        "illness": sum(member_count(rows, c) for c in ILL_MEMBERS) > 0,
        "disability": disabled_adults(rows) > 0,
    }
    for t in np.unique(row_month[select]):
        here = np.flatnonzero(select & (row_month == t))
        ids = rows["household_id"].to_numpy()[here]
        near = (history["household_id"].isin(ids).to_numpy()
                & (hist_month > t - LOOKBACK) & (hist_month <= t))
        hist = history.loc[near, columns]
        age = t - hist_month[near]
        position = pd.Index(ids).get_indexer(hist["household_id"].to_numpy())
        month = str(month_label(t))
        now = (raw[here] if raw is not None
               else model.decision_function(_features(hist, ids, month, config, names)))
        # Every cause's rewritten households are scored in one call: a call per cause costs
        # the trees' per-call overhead seven times over.
        rewritten, cells = [], []
        for j, cause in enumerate(causes):
            amounts = {col: v[here] for col, v in givebacks[cause].items()}
            touched = np.zeros(len(here), dtype=bool)
            for v in amounts.values():
                touched |= (v > 0).any(axis=1)
            if cause in burden:
                touched |= burden[cause][here]
            out[here, j] = 0.0
            if not touched.any():
                continue
            keep = touched[position]
            changed = _given_back(hist[keep], cause, amounts, position[keep], age[keep])
            rewritten.append(_features(changed, ids[touched], month, config, names))
            cells.append((np.flatnonzero(touched), j))
        if rewritten:
            after = model.decision_function(pd.concat(rewritten, ignore_index=True))
            start = 0
            for touched, j in cells:
                stop = start + len(touched)
                out[here[touched], j] = now[touched] - after[start:stop]
                start = stop
    return pd.DataFrame(out, index=rows.index, columns=causes)


def _given_back(hist: pd.DataFrame, cause: str, amounts: dict[str, np.ndarray],
                position: np.ndarray, age: np.ndarray) -> pd.DataFrame:
    """Ledger rows rewritten as if ``cause`` had not struck in the last 12 months.

    ``hist`` is a selection of the ledger made for this purpose (a new frame), rewritten in
    place."""
    changed = hist
    last_year = age < WINDOW
    for column, amount in amounts.items():
        back = np.zeros(len(changed))
        back[last_year] = amount[position[last_year], age[last_year]]
        values = changed[column].to_numpy(dtype="float64", na_value=np.nan)
        if column.startswith("exp_"):
            values = np.clip(values - back, 0, None)
        else:
            values = values + back  # an unobserved month (NaN) stays unobserved
        changed[column] = values
    for event in CLEARED_EVENTS[cause]:
        if event in changed:
            changed.loc[last_year, event] = False
    if cause == "illness":
        for column in ILL_MEMBERS:
            if column in changed:
                changed[column] = changed[column] * 0
    elif cause == "disability":
        working = disabled_adults(changed)
        # Of them, those the ledger counts as partial laborers now work full time.
        idle = np.clip(not_full_time(changed) - member_count(changed, "labor_partial"), 0, None)
        partial = working - np.minimum(working, idle)
        changed["labor_full"] = changed["labor_full"] + working.astype("int64")
        changed["labor_partial"] = changed["labor_partial"] - partial.astype("int64")
        changed["disabled"] = changed["disabled"] - working
        if "disabled_severe" in changed:
            changed["disabled_severe"] = np.minimum(
                changed["disabled_severe"].to_numpy(dtype="float64", na_value=np.nan),
                changed["disabled"].to_numpy(dtype="float64", na_value=np.nan))
    return changed


def _features(hist: pd.DataFrame, ids: np.ndarray, month: str, config: Config,
              names: list[str]) -> pd.DataFrame:
    """The model's features at ``month`` of the households ``ids``, in that order."""
    features = build_features(hist, config, months=[month])
    households = hist.loc[features.index, "household_id"].to_numpy()
    order = pd.Index(households).get_indexer(ids)
    return features[names].iloc[order]


def risk_shares(model, raw: np.ndarray, drops: pd.DataFrame) -> pd.DataFrame:
    """Share of each household's risk that giving each cause back takes away, in probability.

    The synthetic truth reads a household's cause by the same measure on the true risk
    (``riskmodel.synthetic.true_cause``: the cause whose removal lowers the risk most, when
    it removes at least half of it); :func:`cause_drops` gives the model's fall in log-odds,
    and this turns it into ``(p − p_without) / p`` with the model's calibrated risk.

    Parameters
    ----------
    model : RiskModel or HistGradientBoostingClassifier
        A model with ``calibrated`` (log-odds → risk); a plain classifier's log-odds are read
        through the logistic function.
    raw : ndarray
        The model's log-odds of the rows of ``drops``.
    drops : DataFrame
        :func:`cause_drops` of those rows.

    Returns
    -------
    DataFrame
        Like ``drops``: the share of the risk each cause takes away (negative where giving it
        back raises the risk), NaN where ``drops`` is NaN or the risk is 0.
    """
    calibrated = getattr(model, "calibrated", None)
    if calibrated is None:
        def calibrated(log_odds):
            return 1.0 / (1.0 + np.exp(-np.asarray(log_odds, dtype="float64")))
    raw = np.asarray(raw, dtype="float64")
    fall = drops.to_numpy(dtype="float64")
    known = np.isfinite(fall)
    p = np.asarray(calibrated(raw), dtype="float64")
    without = np.asarray(calibrated((raw[:, None] - np.where(known, fall, 0.0)).ravel()),
                         dtype="float64").reshape(fall.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (p[:, None] - without) / p[:, None]
    share = np.where(known & (p[:, None] > 0), share, np.nan)
    return pd.DataFrame(share, index=drops.index, columns=drops.columns)


# Causes that read a household's risk as its own level and make-up rather than a shock.
STRUCTURAL = ("income", "labor_shortage")


def first_by_counterfactual(contributions: pd.DataFrame, shares: pd.DataFrame | None,
                            allowed: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Cause contributions with a first cause the model's counterfactual does not bear out
    passing its weight on.

    The first cause is the one :func:`riskmodel.explain.rank_causes` would put first (the
    largest contribution among the causes ``allowed``, at least ``reasons.min_weight``). Where
    it is a shock cause whose give-back (:func:`risk_shares`) takes away less than
    ``reasons.first_min_share`` of the household's risk — its own features raise the score,
    but the household without it would be about as much at risk — its contribution moves to:

    - the allowed cause whose give-back takes away most, where that is at least
      ``reasons.structural_share`` of the risk (the synthetic truth's half rule,
      ``riskmodel.synthetic.true_cause``);
    - else the structural cause with evidence (收入偏低 or 缺劳动力, the larger contribution
      first): no single cause explains the household's risk.

    The other way round, where a structural cause (收入偏低 or 缺劳动力) comes first but an
    allowed cause's give-back takes away at least ``reasons.structural_share`` of the risk, the
    structural cause's contribution moves to that cause (the one taking away most): a household
    one cause explains half of is not read as structural.

    A household without counterfactual shares (below ``reasons.counterfactual_min_risk``, or
    NaN in ``shares``: :func:`riskmodel.explain.explain_households` leaves out households
    without monthly incomes), or with nowhere to move, keeps its contributions. Row sums do
    not change, so the contributions still add up to the log-odds.

    Parameters
    ----------
    contributions : DataFrame
        Per-cause contributions after :func:`riskmodel.explain.pass_to_evidence`.
    shares : DataFrame or None
        :func:`risk_shares` of the same rows (NaN rows: no counterfactual); None: no change.
    allowed : DataFrame
        :func:`riskmodel.explain.valid_causes` of the same rows.
    config : Config

    Returns
    -------
    DataFrame
        Like ``contributions``.
    """
    min_share = config.reasons.first_min_share
    if shares is None or min_share is None or not len(contributions):
        return contributions
    codes = list(contributions.columns)
    values = contributions.to_numpy(dtype="float64", copy=True)
    ok = allowed.reindex(index=contributions.index, columns=codes,
                         fill_value=False).to_numpy(dtype=bool)
    shocks = [c for c in shares.columns if c in codes]
    taken = shares.reindex(index=contributions.index, columns=shocks).to_numpy(dtype="float64")
    known = np.isfinite(taken).all(axis=1)
    rows = np.arange(len(values))
    score = np.where(ok & (values >= max(config.reasons.min_weight, np.finfo(float).tiny)),
                     values, -np.inf)
    top = score.argmax(axis=1)
    # The first cause's share of the risk taken away; NaN where it is not a shock cause.
    shock_of = pd.Index(shocks).get_indexer(codes)
    position = shock_of[top]
    top_share = np.where(position >= 0, taken[rows, np.maximum(position, 0)], np.nan)
    first = known & np.isfinite(score[rows, top])
    weak = first & (top_share < min_share)
    column = pd.Index(codes).get_indexer(shocks)
    candidates = np.where(ok[:, column] & np.isfinite(taken), taken, -np.inf)
    best = candidates.argmax(axis=1)
    explains = candidates[rows, best] >= config.reasons.structural_share
    strong = first & np.isin(top, pd.Index(codes).get_indexer(
        [c for c in STRUCTURAL if c in codes])) & explains
    if not (weak.any() or strong.any()):
        return contributions
    structural = pd.Index(codes).get_indexer([c for c in STRUCTURAL if c in codes])
    to = np.full(len(values), -1)
    if len(structural):
        level = np.where(ok[:, structural], values[:, structural], -np.inf)
        pick = structural[level.argmax(axis=1)]
        to = np.where(np.isfinite(level.max(axis=1)), pick, -1)
    to = np.where(explains, column[best], to)
    move = (weak | strong) & (to >= 0) & (to != top)
    r, f, t = rows[move], top[move], to[move]
    values[r, t] += values[r, f]
    values[r, f] = 0.0
    return pd.DataFrame(values, index=contributions.index, columns=contributions.columns)
