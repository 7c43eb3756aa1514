"""Why the model flags a household, in the risk causes cadres record (因病, 因学, 缺劳动力 …).

Attributions are exact path-dependent TreeSHAP values of the gbm's log-odds. Their reference
(the base value) is the training population's average log-odds: a cause's contribution says how
far that cause moves this household away from an average household, and its sign is meaningful
— a cause whose contribution is negative lowers the risk and is never given as a reason. The
values add up: for every household the per-cause contributions plus the base value equal
``model.decision_function``. Feature values are summed per cause through the config's
``features`` block; with the household's ledger, the net-income features, which carry every
cause at once, are shared out among the causes by what each took from the household or, for the
households at risk, by how far the model's log-odds fall when each cause is given back (see
:func:`cause_contributions`, :mod:`riskmodel.explain._counterfactual` and ``docs/explanations.md``).
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import Config, load_config
from ..errors import ConfigError, LedgerError
from ..fonts import cjk_font
from ..ledger import ValidationResult
from ..model import (
    DEFAULT_MODEL_URI,
    FEATURE_NAMES,
    HARD_TRIGGERS,
    build_features,
    poverty_lines,
    poverty_status,
    rule_triggers,
)
from ._counterfactual import cause_drops
from ._reasons import (
    WINDOW,
    LedgerWindow,
    annual_per_capita,
    cause_givebacks,
    cause_losses,
    disabled_adults,
    format_yuan,
    household_facts,
    months_of,
    pass_to_evidence,
    rank_causes,
    reason_texts,
    suggested_measures,
    trailing_window,
    valid_causes,
)
from ._treeshap import TreeShapExplainer

N_REASONS = 3
# Features that sum every income source and rigid spending over a window of months
# (income_margin_12m, income_ratio_6m, income_ratio_ahead_12m …), with the window's length.
NET_INCOME = {
    name: int(match[1]) for name in FEATURE_NAMES
    if (match := re.fullmatch(r"income_(?:margin|ratio)\w*_(\d+)m", name))
}
# Features of the change in net income: recent months (the value) against the last year.
NET_CHANGE = {
    name: int(match[1]) for name in FEATURE_NAMES
    if (match := re.fullmatch(r"income_change_(\d+)v12", name))
}


def _gbm(model):
    return getattr(model, "gbm_", model)


def _matrix(gbm, features: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    names = [str(c) for c in getattr(gbm, "feature_names_in_", features.columns)]
    missing = [n for n in names if n not in features.columns]
    if missing:
        raise ValueError(
            f"The features lack {len(missing)} column(s) the model was trained on, e.g. "
            f"{missing[0]!r}; expected the output of riskmodel.model.build_features."
        )
    return features[names].to_numpy(dtype="float64"), names


def cause_matrix(feature_names: list[str], config: Config) -> pd.DataFrame:
    """0/1 matrix mapping features (rows) to cause codes (columns, ``config.causes`` order)."""
    causes = {name: spec.cause for name, spec in config.features.items()}
    unmapped = [n for n in feature_names if n not in causes]
    if unmapped:
        raise ConfigError(
            f"The config's `features` block gives no cause for {unmapped[0]!r}"
            + (f" and {len(unmapped) - 1} more" if len(unmapped) > 1 else "")
            + "; expected every model feature to belong to one cause."
        )
    codes = [c.code for c in config.causes]
    index = pd.Index(codes).get_indexer([causes[n] for n in feature_names])
    table = np.zeros((len(feature_names), len(codes)))
    table[np.arange(len(feature_names)), index] = 1.0
    return pd.DataFrame(table, index=feature_names, columns=codes)


_SUM_ROWS = 8192


def sum_by_cause(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``values @ table`` for a 0/1 ``table``, each row's sums depending on that row alone.

    A BLAS product adds in an order that depends on the number of rows (its blocking and its
    kernels for the edges), so the same household could get a reason weight that differs in
    the last bit with the chunk it was scored in. Here each cause's columns are added one at a
    time, in feature order.
    """
    if not np.isin(table, (0.0, 1.0)).all():
        raise ValueError("Got a table with entries other than 0 and 1; expected a cause matrix.")
    values = np.asarray(values, dtype="float64")
    out = np.zeros((values.shape[0], table.shape[1]))
    pairs = list(zip(*np.nonzero(table), strict=True))
    for start in range(0, len(values), _SUM_ROWS):  # a block's columns stay in cache
        columns = np.ascontiguousarray(values[start:start + _SUM_ROWS].T)
        sums = np.zeros((table.shape[1], len(columns[0]) if len(columns) else 0))
        for j, c in pairs:
            sums[c] += columns[j]
        out[start:start + _SUM_ROWS] = sums.T
    return out


def feature_contributions(
    model, features: pd.DataFrame, n_jobs: int = 1
) -> tuple[pd.DataFrame, float]:
    """Exact TreeSHAP values of the gbm log-odds per feature.

    Parameters
    ----------
    model : RiskModel or HistGradientBoostingClassifier
        A fitted model (its ``gbm_`` is explained) or the trees themselves.
    features : DataFrame
        Model features (:func:`riskmodel.model.build_features`).
    n_jobs : int, default=1

    Returns
    -------
    values : DataFrame
        Indexed like ``features``, one column per model feature.
    base_value : float
        The training population's average log-odds.
    """
    gbm = _gbm(model)
    X, names = _matrix(gbm, features)
    explainer = _explainer(gbm)
    values = explainer.shap_values(X, n_jobs=n_jobs)
    return pd.DataFrame(values, index=features.index, columns=names), explainer.expected_value


# The TreeSHAP tables of each model in use (about 2 s to build for a 300-tree model), kept
# while the model lives so that a month explained chunk by chunk builds them once. The trees
# are part of the key: a model refitted in place gets new tables.
_EXPLAINERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _explainer(gbm) -> TreeShapExplainer:
    trees = getattr(gbm, "_predictors", None)
    key = (id(trees), len(trees) if trees is not None else 0)
    cached = _EXPLAINERS.get(gbm)
    if cached is None or cached[0] != key:
        cached = _EXPLAINERS[gbm] = (key, TreeShapExplainer(gbm))
    return cached[1]


def cause_contributions(
    model,
    features: pd.DataFrame,
    config: Config,
    n_jobs: int = 1,
    ledger_rows: pd.DataFrame | None = None,
    history: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, float]:
    """TreeSHAP of the gbm log-odds summed per risk cause.

    Each feature's value goes to its cause in the config's ``features`` block. With the
    household's ledger (``ledger_rows``), two kinds of feature are shared out instead, because
    they carry several causes at once:

    - net-income features (``income_margin_*``, ``income_ratio_*``), which sum every source of
      income and rigid spending: for a household they raise the risk of, their value is shared
      among the causes in proportion to what each took from the household over the feature's
      window (:func:`riskmodel.explain.cause_losses`: medical costs, fees, the fall in wages
      after a job loss …) and the shortfall no cause explains (the loss-free income's distance
      below the line plus ``reasons.structural_margin`` of it), which stays with 收入偏低; the
      change in net income (``income_change_3v12``) likewise, by the recent losses;
    - labor-shortage features of a household whose missing laborer is a disabled member of
      working age go to 因残.

    Either way the values add up as before.

    Parameters
    ----------
    model : RiskModel or HistGradientBoostingClassifier
        A fitted model (its ``gbm_`` is explained) or the trees themselves.
    features : DataFrame
        Model features (:func:`riskmodel.model.build_features`).
    config : Config
        Its ``features`` block maps each feature to a cause.
    n_jobs : int, default=1
    ledger_rows : DataFrame, optional
        The validated ledger rows the features were built from (same index).
    history : DataFrame, optional
        The validated ledger they come from (the 24 months before each row are read);
        ``ledger_rows`` alone when ``None``. With it, households whose risk is at least
        ``reasons.counterfactual_min_risk`` share the net-income features by the model's
        counterfactual (:func:`riskmodel.explain.cause_drops`) instead.

    Returns
    -------
    contributions : DataFrame
        Indexed like ``features``, one float column per cause code of ``config.causes``:
        how much the cause raises (positive) or lowers (negative) the household's log-odds
        relative to the base value.
    base_value : float
        The training population's average log-odds. Row sums plus ``base_value`` equal
        ``model.decision_function(features)``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from riskmodel import load_config
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"medical_pc_12m": rng.exponential(500, 2000),
    ...                   "income_margin_12m": rng.normal(2000, 1500, 2000)})
    >>> y = (X["medical_pc_12m"] - X["income_margin_12m"] > 0).astype(int)
    >>> gbm = HistGradientBoostingClassifier(max_iter=20).fit(X, y)
    >>> contributions, base = cause_contributions(gbm, X, load_config())
    >>> bool(np.allclose(contributions.sum(axis=1) + base, gbm.decision_function(X)))
    True
    """
    values, base = feature_contributions(model, features, n_jobs=n_jobs)
    if ledger_rows is None:
        table = cause_matrix(list(values.columns), config)
        summed = sum_by_cause(values.to_numpy(), table.to_numpy())
        return pd.DataFrame(summed, index=features.index, columns=table.columns), base
    if not features.index.equals(ledger_rows.index):
        raise ValueError("Got ledger_rows indexed unlike features; expected the same index "
                         "(the ledger rows the features were built from).")
    window = trailing_window(ledger_rows, ledger_rows if history is None else history)
    line = poverty_lines(config, months_of(ledger_rows["month"]) // 12,
                         ledger_rows.get("province"), ledger_rows.get("county"))
    givebacks = cause_givebacks(ledger_rows, window)
    drops = _counterfactual(model, features, values, base, ledger_rows, history, window,
                            givebacks, config)
    return _shared_out(values, features, ledger_rows, window, line, config, drops,
                       givebacks), base


def _counterfactual(model, features: pd.DataFrame, values: pd.DataFrame, base: float,
                    rows: pd.DataFrame, history: pd.DataFrame | None, window: LedgerWindow,
                    givebacks: dict, config: Config,
                    risk: np.ndarray | None = None) -> pd.DataFrame | None:
    """Counterfactual cause weights of the households at risk whose net-income features raise
    their risk, or None (no history, none such, or turned off)."""
    threshold = config.reasons.counterfactual_min_risk
    if history is None or threshold is None or not len(rows):
        return None
    if risk is None:
        risk = model.predict_proba(features[list(values.columns)])[:, 1]
    # The counterfactual only moves net-income value that raises the risk (_share_by_drops).
    select = (np.asarray(risk, dtype="float64") >= threshold) & (
        values[_net_features(values.columns)].to_numpy().sum(axis=1) > 0)
    if not select.any():
        return None
    raw = values.to_numpy().sum(axis=1) + base
    return cause_drops(model, rows, history, config, raw=raw, select=select, window=window,
                       givebacks=givebacks)


def _shared_out(values: pd.DataFrame, features: pd.DataFrame, rows: pd.DataFrame,
                window: LedgerWindow, line: np.ndarray, config: Config,
                drops: pd.DataFrame | None = None,
                givebacks: dict[str, dict[str, np.ndarray]] | None = None) -> pd.DataFrame:
    """Cause contributions with net-income and labor-shortage features shared out.

    Rows with counterfactual weights (``drops``, finite) share the net-income features by
    them; the others by the yuan each cause took (:func:`riskmodel.explain.cause_losses`).
    """
    causes = [c.code for c in config.causes]
    net = {name: w for name, w in NET_INCOME.items() if name in values.columns}
    change = [name for name in NET_CHANGE if name in values.columns]
    table = cause_matrix(list(values.columns), config)
    shared = _net_features(values.columns)
    out = pd.DataFrame(sum_by_cause(values.drop(columns=shared).to_numpy(),
                                    table.drop(index=shared).to_numpy()),
                       index=values.index, columns=causes)
    given = pd.DataFrame(0.0, index=values.index, columns=causes)
    losses = {c: v for c, v in cause_losses(rows, window, givebacks).items() if c in causes}
    members = rows["members"].to_numpy(dtype="float64")
    lost_over = {months: np.column_stack([annual_per_capita(v, window, members, months)
                                          for v in losses.values()])
                 for months in {*net.values(), *NET_CHANGE.values(), WINDOW}}

    def share_out(name: str, lost: np.ndarray, unexplained: np.ndarray) -> None:
        phi = values[name].to_numpy()
        total = lost.sum(axis=1) + unexplained
        share = np.where(((phi > 0) & (total > 0))[:, None],
                         lost / np.where(total > 0, total, 1.0)[:, None], 0.0)
        for k, code in enumerate(losses):
            given[code] += phi * share[:, k]
        given[_own_cause(table, name)] += phi * (1 - share.sum(axis=1))

    floor = config.reasons.structural_margin * line
    for name, months in net.items():
        lost = lost_over[months]
        margin = _margin(features, months, line)
        # Unknown income: nothing to share by, the feature keeps its own cause.
        lost = np.where(np.isfinite(margin)[:, None], lost, 0.0)
        share_out(name, lost, np.clip(floor - np.nan_to_num(margin) - lost.sum(axis=1), 0, None))
    for name in change:
        recent = np.clip(lost_over[NET_CHANGE[name]] - lost_over[WINDOW], 0, None)
        fall = np.clip(-features[name].to_numpy(dtype="float64"), 0, None)
        share_out(name, recent, np.clip(np.nan_to_num(fall) - recent.sum(axis=1), 0, None))
    if drops is not None and shared:
        _share_by_drops(given, values[shared], drops, table, config)
    out += given
    if "labor_shortage" in out and "disability" in out:
        disabled = disabled_adults(rows) > 0
        out.loc[disabled, "disability"] += out.loc[disabled, "labor_shortage"]
        out.loc[disabled, "labor_shortage"] = 0.0
    return out


def _net_features(columns) -> list[str]:
    """The features shared out among the causes: net income and its change, in that order."""
    return [*(n for n in NET_INCOME if n in columns), *(n for n in NET_CHANGE if n in columns)]


def _own_cause(table: pd.DataFrame, name: str) -> str:
    return table.columns[table.loc[name].to_numpy().argmax()]


def _share_by_drops(given: pd.DataFrame, net: pd.DataFrame, drops: pd.DataFrame,
                    table: pd.DataFrame, config: Config) -> None:
    """Net-income features shared by the counterfactual weights, in place, where known.

    Their summed value, where it raises the risk, goes to the causes in proportion to how far
    giving each back lowers the log-odds, up to ``reasons.counterfactual_reach`` times that
    fall in all; the rest stays with each feature's own cause (收入偏低).
    """
    causes = [c for c in drops.columns if c in given.columns]
    fall = np.clip(drops[causes].to_numpy(dtype="float64"), 0, None)
    known = np.isfinite(fall).all(axis=1)
    if not known.any():
        return
    fall = fall[known]
    phi = net.to_numpy()[known]
    total = phi.sum(axis=1)
    reach = fall.sum(axis=1)
    to_causes = np.clip(np.minimum(total, config.reasons.counterfactual_reach * reach), 0, None)
    kept = 1.0 - np.divide(to_causes, total, out=np.zeros_like(total), where=total > 0)
    out = given.to_numpy(copy=True)
    block = np.zeros((int(known.sum()), out.shape[1]))
    column = {code: j for j, code in enumerate(given.columns)}
    for k, name in enumerate(net.columns):
        block[:, column[_own_cause(table, name)]] += phi[:, k] * kept
    weights = np.divide(fall, reach[:, None], out=np.zeros_like(fall), where=reach[:, None] > 0)
    for k, cause in enumerate(causes):
        block[:, column[cause]] += to_causes * weights[:, k]
    out[known] = block
    given.iloc[:, :] = out


def _margin(features: pd.DataFrame, months: int, line: np.ndarray) -> np.ndarray:
    """Annual per-capita net income above the line over a window, from the features."""
    name = f"income_margin_{months}m"
    if name in features:
        return features[name].to_numpy(dtype="float64")
    return (features[f"income_ratio_{months}m"].to_numpy(dtype="float64") - 1.0) * line


def scorecard_cause_points(model, features: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The scorecard's points per feature summed per cause code (row sums: total points)."""
    points = model.scorecard_.points(features)
    table = cause_matrix(list(points.columns), config)
    return pd.DataFrame(sum_by_cause(points.to_numpy(), table.to_numpy()),
                        index=features.index, columns=table.columns)


def explain_households(
    model,
    features: pd.DataFrame,
    ledger_rows: pd.DataFrame,
    config: Config,
    n_jobs: int = 1,
    history: pd.DataFrame | None = None,
    risk: np.ndarray | None = None,
) -> pd.DataFrame:
    """Reasons, the national risk-cause list, reason text and measures for each household.

    Parameters
    ----------
    model : RiskModel or HistGradientBoostingClassifier
    features : DataFrame
        Model features of the household-months to explain.
    ledger_rows : DataFrame
        The validated ledger rows of the same household-months (same index as ``features``).
    config : Config
    n_jobs : int, default=1
    history : DataFrame, optional
        The validated ledger the rows come from, so that the reason text quotes trailing
        12- and 3-month figures and the households at risk get counterfactual cause weights
        (see :func:`cause_contributions`); without it only the months in ``ledger_rows`` are
        summed.
    risk : ndarray, optional
        The model's risk of each row, when already computed (else predicted here).

    Returns
    -------
    DataFrame
        Indexed like ``features``. The causes are ranked by :func:`cause_contributions` with
        the household's ledger, so a medical bill or a lost job that pulled the net income down
        counts under its own cause rather than under 收入偏低:

        - ``reason_1``, ``reason_2``, ``reason_3``: cause codes that raise the risk, strongest
          first, among the causes the consistency rules allow (with evidence in the
          household's own months); NA where fewer causes raise it by at least
          ``reasons.min_weight``. A cause without evidence passes its risk-raising weight to
          the strongest cause with evidence (:func:`riskmodel.explain.pass_to_evidence`), so
          the weights still add up to the log-odds.
        - ``reason_1_weight`` … ``reason_3_weight``: each reason's contribution to the log-odds
          (additive; ``exp(weight)`` is the factor by which the cause multiplies the odds).
        - ``risk_causes``: up to ``reasons.max_causes`` codes joined by ``","``.
        - ``reason_text_zh``, ``reason_text_en``: the first ``reasons.text_causes`` reasons in
          words, with the household's own figures.
        - ``measures_zh``: the configured measures of those causes; 兜底 measures for
          households without a laborer.
    """
    if not features.index.equals(ledger_rows.index):
        raise ValueError("Got ledger_rows indexed unlike features; expected the same index "
                         "(the ledger rows the features were built from).")
    values, base = feature_contributions(model, features, n_jobs=n_jobs)
    window = trailing_window(ledger_rows, ledger_rows if history is None else history)
    facts = household_facts(ledger_rows, config, window=window)
    givebacks = cause_givebacks(ledger_rows, window)
    drops = _counterfactual(model, features, values, base, ledger_rows, history, window,
                            givebacks, config, risk)
    contributions = _shared_out(values, features, ledger_rows, window,
                                facts["line"].to_numpy(), config, drops, givebacks)
    allowed = valid_causes(facts, config)
    codes, weights = rank_causes(pass_to_evidence(contributions, allowed), allowed, config)
    return reasons_frame(codes, weights, facts, config)


def reasons_frame(
    codes: np.ndarray, weights: np.ndarray, facts: pd.DataFrame, config: Config
) -> pd.DataFrame:
    """The output columns of :func:`explain_households` from ranked causes and facts."""
    out = pd.DataFrame(index=facts.index)
    for j in range(N_REASONS):
        have = j < codes.shape[1]
        out[f"reason_{j + 1}"] = pd.array(codes[:, j] if have else np.full(len(facts), None),
                                          dtype="string")
    for j in range(N_REASONS):
        out[f"reason_{j + 1}_weight"] = weights[:, j] if j < codes.shape[1] else np.nan
    listed = pd.Series(pd.array(codes[:, 0], dtype="string"), index=facts.index)
    for j in range(1, codes.shape[1]):
        more = pd.Series(pd.array(codes[:, j], dtype="string"), index=facts.index)
        listed = listed.where(more.isna(), listed + "," + more)
    out["risk_causes"] = listed.fillna("")
    texts = reason_texts(codes, facts, config)
    out["reason_text_zh"] = texts["zh"].to_numpy()
    out["reason_text_en"] = texts["en"].to_numpy()
    out["measures_zh"] = suggested_measures(codes, facts["laborers"].to_numpy() > 0,
                                            config).to_numpy()
    return out


def explain_month(
    model, ledger: pd.DataFrame, config: Config, month: str, n_jobs: int = 1
) -> pd.DataFrame:
    """Score and explain every household of one month of a validated ledger.

    Parameters
    ----------
    model : RiskModel
    ledger : DataFrame
        A validated ledger holding the month and the 12 months before it.
    config : Config
    month : str
        ``YYYY-MM``.
    n_jobs : int, default=1

    Returns
    -------
    DataFrame
        Indexed by ``household_id``: ``month``, ``risk_score`` (calibrated probability) and
        the columns of :func:`explain_households`. Every household of the month is there,
        including those already under the line, which the monthly job does not score.
    """
    features = build_features(ledger, config, months=[month])
    if features.empty:
        raise LedgerError(f"The ledger has no rows for month {month!r}.")
    rows = ledger.loc[features.index]
    risk = model.predict_proba(features)[:, 1]
    out = explain_households(model, features, rows, config, n_jobs=n_jobs, history=ledger,
                             risk=risk)
    out.insert(0, "risk_score", risk)
    out.insert(0, "month", rows["month"].to_numpy())
    out.index = pd.Index(rows["household_id"].to_numpy(), name="household_id")
    return out


@dataclass(frozen=True, eq=False)
class HouseholdExplanation:
    """One household's score and explanation at one month (:func:`explain_one`).

    ``str(explanation)`` (or :meth:`to_text`) is the report ``riskmodel explain`` prints.

    Attributes
    ----------
    household_id : str
    month : str
        ``YYYY-MM``.
    risk_score : float
        Calibrated probability of falling under the line within ``label.horizon_months``;
        NaN when the model does not score the household (see ``not_scored_reason``).
    risk_tier : str or None
        ``high``, ``medium`` or ``low`` by the config's ``tiers``; None when not scored.
    not_scored_reason : str or None
        As ``scores.parquet`` says it: ``poor_now`` (already under the line) or
        ``insufficient_history`` (fewer than ``label.min_observed_months`` months of income
        observed in the last 12); None when scored.
    observed_months : int
        Months of the last 12 with income observed.
    income_pc : float
        Annual per-capita disposable income over the last 12 months; NaN when unknown.
    poverty_line : float
        The household's monitoring line for the month.
    rule_triggers : tuple of str
        The hard triggers that fired (应纳尽纳), as ``scores.parquet``'s ``rule_triggers``.
    reasons : DataFrame
        The reasons, strongest first, indexed by ``rank`` (1, 2, …): ``cause`` (code),
        ``name_zh`` and ``weight`` (the cause's contribution to the log-odds). Empty when not
        scored.
    risk_causes : tuple of str
        The national risk-cause list (codes).
    reason_text_zh, reason_text_en : str
        The reasons in words, with the household's own figures ("" when not scored).
    measures_zh : tuple of str
        Suggested measures of the first reasons.
    risk_without : Series
        The risk with each cause given back (:func:`risk_without`), indexed by cause code.
    what_if : DataFrame
        The model's response to each applicable measure (:func:`riskmodel.explain.what_if`):
        ``measure``, ``cost``, ``risk_before``, ``risk_after``, ``risk_change``.
    config : Config
        The configuration it was made with (names, tiers, horizon).
    """

    household_id: str
    month: str
    risk_score: float
    risk_tier: str | None
    not_scored_reason: str | None
    observed_months: int
    income_pc: float
    poverty_line: float
    rule_triggers: tuple[str, ...]
    reasons: pd.DataFrame = field(repr=False)
    risk_causes: tuple[str, ...]
    reason_text_zh: str
    reason_text_en: str
    measures_zh: tuple[str, ...]
    risk_without: pd.Series = field(repr=False)
    what_if: pd.DataFrame = field(repr=False)
    config: Config = field(repr=False)

    @property
    def scored(self) -> bool:
        """Whether the model scored the household."""
        return self.not_scored_reason is None

    @property
    def on_watchlist(self) -> bool:
        """In the high tier or with a hard trigger fired, as the monthly watch list."""
        return self.risk_tier == "high" or bool(self.rule_triggers)

    def to_text(self) -> str:
        """The plain-text report of ``riskmodel explain``."""
        if self.scored:
            return render_household(self.household_id, self._row(), self.what_if, self.config,
                                    self.risk_without)
        return self._not_scored_text()

    def __str__(self) -> str:
        return self.to_text()

    def _row(self) -> pd.Series:
        """The household's row as :func:`explain_month` gives it."""
        row = {"month": self.month, "risk_score": self.risk_score}
        for j in range(1, N_REASONS + 1):
            have = j in self.reasons.index
            row[f"reason_{j}"] = self.reasons.at[j, "cause"] if have else pd.NA
            row[f"reason_{j}_weight"] = self.reasons.at[j, "weight"] if have else np.nan
        return pd.Series({**row, "risk_causes": ",".join(self.risk_causes),
                          "reason_text_zh": self.reason_text_zh,
                          "reason_text_en": self.reason_text_en,
                          "measures_zh": "、".join(self.measures_zh)})

    def _not_scored_text(self) -> str:
        if self.not_scored_reason == "poor_now":
            state = "已在监测线以下 already below the line; the model does not score it"
        else:
            needed = self.config.label.min_observed_months
            state = (f"观测月份不足，无法评分 too little history to score: "
                     f"{self.observed_months} month(s) of income observed in the last 12, "
                     f"the model needs {needed}")
        listed = ("列入监测预警名单 on the watch list" if self.on_watchlist
                  else "未列入监测预警名单 not on the watch list")
        return "\n".join([
            f"户 {self.household_id}  {self.month}",
            f"状态 status: {state}",
            f"触发规则 rules fired: {', '.join(self.rule_triggers) or '无 none'}; {listed}",
            f"近12个月人均可支配收入 income per person: {format_yuan([self.income_pc])[0]} 元,"
            f" 监测线 line: {format_yuan([self.poverty_line])[0]} 元",
        ])


def explain_one(
    ledger: pd.DataFrame | ValidationResult,
    model,
    household_id: str,
    month: str | None = None,
    config: Config | None = None,
) -> HouseholdExplanation:
    """One household's score, causes, reasons, measures and what-if, in memory.

    The household is scored and explained as the monthly job scores it (same tiers, reasons
    and hard triggers as ``scores.parquet``), from its own rows up to ``month``.

    Parameters
    ----------
    ledger : DataFrame or ValidationResult
        A validated ledger (``load_ledger(path).valid``), or the result of
        :func:`riskmodel.load_ledger` / :func:`riskmodel.validate_ledger` itself, which also
        lets a quarantined row be named as such.
    model : RiskModel
        A fitted model (e.g. :func:`riskmodel.load_model`'s first element).
    household_id : str
    month : str, optional
        ``YYYY-MM``; the ledger's last month when ``None``.
    config : Config, optional
        The packaged default when ``None``.

    Returns
    -------
    HouseholdExplanation
        ``str()`` of it is the report ``riskmodel explain`` prints. A household already
        under the line, or with too few observed months, has no model score: its
        ``not_scored_reason`` says which and ``rule_triggers`` which hard triggers fired.

    Raises
    ------
    LedgerError
        The household is not in the ledger, has no row for the month, or its row for the
        month is quarantined (the message names the rule it broke).

    Examples
    --------
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from riskmodel import build_features, load_config, make_labels, validate_ledger
    >>> from riskmodel.synthetic import generate_ledger
    >>> config = load_config()
    >>> ledger = validate_ledger(generate_ledger(households=60, months=14, seed=0))
    >>> features = build_features(ledger.valid, config)
    >>> target = make_labels(ledger.valid, config)["target"]
    >>> known = target.notna().to_numpy()
    >>> model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(
    ...     features[known], target[known].astype(int))
    >>> month = ledger.valid["month"].max()
    >>> scored = features.index[ledger.valid["month"].eq(month).to_numpy()]
    >>> household = ledger.valid.loc[scored[0], "household_id"]
    >>> e = explain_one(ledger, model, household, config=config)
    >>> (e.household_id == household, e.month == month, e.scored or e.not_scored_reason)
    (True, True, True)
    >>> list(e.what_if.columns)
    ['measure', 'cost', 'risk_before', 'risk_after', 'risk_change']
    >>> str(e).splitlines()[0] == f"户 {household}  {month}"
    True
    """
    from ._whatif import what_if

    config = load_config() if config is None else config
    quarantine = None
    if isinstance(ledger, ValidationResult):
        ledger, quarantine = ledger.valid, ledger.quarantine
    household_id = str(household_id).strip()
    month = month or (str(ledger["month"].max()) if len(ledger) else "")
    history = _history(ledger, quarantine, household_id, month, "the ledger")
    at = (history["month"] == month).to_numpy()
    status = poverty_status(history, config)[at].iloc[0]
    features = build_features(history, config, months=[month])
    fired = rule_triggers(features, config)
    hard = fired[[c for c in HARD_TRIGGERS if c in fired.columns]].iloc[0].to_dict()
    poor_now = pd.notna(status["poor"]) and bool(status["poor"])
    if config.triggers.income_below_line and poor_now:
        # As the monthly job: the label's own "poor now" fires the trigger.
        hard["income_below_line"] = True
    facts = {
        "household_id": household_id, "month": month,
        "observed_months": int(status["observed_months"]),
        "income_pc": float(status["income_pc"]), "poverty_line": float(status["line"]),
        "rule_triggers": tuple(name for name, on in hard.items() if on), "config": config,
    }
    if pd.isna(status["poor"]) or poor_now:
        return HouseholdExplanation(
            risk_score=np.nan, risk_tier=None,
            not_scored_reason="insufficient_history" if pd.isna(status["poor"]) else "poor_now",
            reasons=pd.DataFrame({"cause": [], "name_zh": [], "weight": []},
                                 index=pd.Index([], dtype="int64", name="rank")),
            risk_causes=(), reason_text_zh="", reason_text_en="", measures_zh=(),
            risk_without=pd.Series(dtype="float64", name="risk"),
            what_if=pd.DataFrame({"measure": [], "cost": [], "risk_before": [],
                                  "risk_after": [], "risk_change": []}),
            **facts)
    row = explain_month(model, history, config, month).iloc[0]
    names = {c.code: c.name_zh for c in config.causes}
    ranks = [j for j in range(1, N_REASONS + 1) if pd.notna(row[f"reason_{j}"])]
    reasons = pd.DataFrame({
        "cause": [str(row[f"reason_{j}"]) for j in ranks],
        "name_zh": [names[str(row[f"reason_{j}"])] for j in ranks],
        "weight": [float(row[f"reason_{j}_weight"]) for j in ranks],
    }, index=pd.Index(ranks, dtype="int64", name="rank"))
    options = what_if(model, history, config, month)
    without = risk_without(model, history, config, month).iloc[0].rename("risk")
    return HouseholdExplanation(
        risk_score=float(row["risk_score"]),
        risk_tier=config.tiers.assign([row["risk_score"]])[0], not_scored_reason=None,
        reasons=reasons, risk_causes=tuple(c for c in str(row["risk_causes"]).split(",") if c),
        reason_text_zh=str(row["reason_text_zh"]), reason_text_en=str(row["reason_text_en"]),
        measures_zh=tuple(m for m in str(row["measures_zh"]).split("、") if m),
        risk_without=without,
        what_if=options.drop(columns="household_id").reset_index(drop=True),
        **facts)


def _history(ledger: pd.DataFrame, quarantine: pd.DataFrame | None, household_id: str,
             month: str, source) -> pd.DataFrame:
    """The household's valid rows up to ``month``, or the error saying why it has none then."""
    mine = ledger[(ledger["household_id"] == household_id).to_numpy(dtype=bool)]
    if quarantine is None:
        quarantine = pd.DataFrame({"household_id": [], "month": [], "rule": []})
    broken = quarantine[(quarantine["household_id"].astype("string").str.strip()
                         == household_id).fillna(False).to_numpy(dtype=bool)]
    if mine.empty and broken.empty:
        n = ledger["household_id"].nunique()
        raise LedgerError(f"Household {household_id!r} is not in {source} ({n:,} households); "
                          "check the id.")
    if not (mine["month"] == month).any():
        raise _no_row(household_id, month, source, mine, broken)
    return mine[months_of(mine["month"]) <= months_of(pd.Series([month]))[0]]


def explain_household(
    ledger_path: str,
    household_id: str,
    month: str | None = None,
    model_uri: str | None = None,
    config_path: str | None = None,
    tracking_uri: str | None = None,
) -> str:
    """One household's score, causes, reason text, measures and what-if table, as text.

    Reads only the household's rows of the file, loads the model and prints
    :func:`explain_one`; use that function for the same explanation as data.

    Parameters
    ----------
    ledger_path : str
        Ledger file (``.parquet``, ``.csv`` or ``.xlsx``).
    household_id : str
    month : str, optional
        ``YYYY-MM``; the ledger's last month when ``None``.
    model_uri : str, optional
        MLflow model URI; ``models:/return-to-poverty@champion`` when ``None``.
    config_path : str, optional
        YAML config laid over the packaged default; the default alone when ``None``.
    tracking_uri : str, optional
        MLflow tracking store.

    Returns
    -------
    str
        A plain-text report for the terminal. A household already under the line, or with
        too few observed months, has no model score (the monthly job does not score it): the
        report says which, which hard triggers fired (none, if none did) and shows its figures
        but no score, reasons or what-if.

    Raises
    ------
    LedgerError
        The household is not in the ledger, has no row for the month, or its row for the
        month is quarantined (the message names the rule it broke).
    """
    from ..ledger import LedgerChunks, validate_ledger
    from ..model import load_model

    config = load_config(config_path)
    # Only this household's rows are read and validated, not the whole ledger.
    chunks = LedgerChunks(ledger_path, config.scoring.chunk_households)
    household_id = str(household_id).strip()
    if household_id not in chunks.households:
        raise LedgerError(f"Household {household_id!r} is not in {ledger_path} "
                          f"({len(chunks.households):,} households); check the id.")
    result = validate_ledger(chunks.rows_of([household_id]))
    month = month or (chunks.months[-1] if chunks.months else "")
    # The ledger's errors come before the model is loaded.
    _history(result.valid, result.quarantine, household_id, month, ledger_path)
    model, _ = load_model(model_uri or DEFAULT_MODEL_URI, tracking_uri=tracking_uri)
    return explain_one(result, model, household_id, month=month, config=config).to_text()


def _no_row(household_id: str, month: str, ledger_path, valid: pd.DataFrame,
            quarantine: pd.DataFrame) -> LedgerError:
    """Why a household in the ledger has no valid row for ``month``: quarantined, or absent."""
    from ..ledger import parse_months

    quarantined_month, _ = parse_months(quarantine["month"])
    broken = quarantine[(quarantined_month == month).fillna(False).to_numpy(dtype=bool)]
    if len(broken):
        row = broken.iloc[0]
        others = len(str(row["reasons"]).split("; ")) - 1
        return LedgerError(
            f"The row of household {household_id!r} for {month} in {ledger_path} is "
            f"quarantined: it breaks {row['rule']} ({row['column']}={row['value']!r})"
            + (f" and {others} other rule(s)" if others else "") + "; fix the row "
            "(`riskmodel validate --ledger PATH --out DIR` lists every rule it breaks).")
    months = sorted({*valid["month"], *quarantined_month.dropna()})
    held = (", ".join(months) if len(months) <= 6
            else f"{len(months)} months from {months[0]} to {months[-1]}")
    return LedgerError(f"Household {household_id!r} has no row for {month} in {ledger_path}; "
                       f"its rows are for {held}.")


def risk_without(model, ledger: pd.DataFrame, config: Config, month: str) -> pd.DataFrame:
    """Each household's risk at ``month`` with each cause it has given back in its ledger.

    The model's counterfactual (:func:`riskmodel.explain.cause_drops`) as calibrated
    risks: one row per household of the month (indexed by ``household_id``), one column per
    cause; equal to the risk now where the cause took nothing from the household.
    """
    features = build_features(ledger, config, months=[month])
    rows = ledger.loc[features.index]
    raw = model.decision_function(features[[str(c) for c in model.feature_names_in_]])
    drops = cause_drops(model, rows, ledger, config, raw=raw)
    out = pd.DataFrame({cause: _risk(model, raw - drops[cause].to_numpy())
                        for cause in drops.columns})
    out.index = pd.Index(rows["household_id"].to_numpy(), name="household_id")
    return out


def _risk(model, log_odds: np.ndarray) -> np.ndarray:
    """Calibrated risk of raw log-odds (the sigmoid for a bare classifier)."""
    if hasattr(model, "calibrated"):
        return model.calibrated(log_odds)
    return 1.0 / (1.0 + np.exp(-log_odds))


def render_household(household_id: str, row: pd.Series, options: pd.DataFrame,
                     config: Config, without: pd.Series | None = None) -> str:
    """The terminal report of :func:`explain_household`; ``without`` is the household's row
    of :func:`risk_without`."""
    from ..ledger import TIER_ZH
    from ._whatif import measure_names

    names = {c.code: f"{c.name_zh} {c.code}" for c in config.causes}
    tier = config.tiers.assign([row["risk_score"]])[0]
    tier_zh = f"{TIER_ZH[tier]}风险" if tier in TIER_ZH else tier
    listed = "" if pd.isna(row["risk_causes"]) else str(row["risk_causes"])
    causes = "、".join(config.cause_by_code[c].name_zh if c in config.cause_by_code else c
                      for c in listed.split(",") if c)
    lines = [
        f"户 {household_id}  {row['month']}",
        f"风险 risk: {row['risk_score']:.1%}  ({tier_zh} {tier}), within "
        f"{config.label.horizon_months} months",
        "主要原因 reasons:",
    ]
    for j in range(1, N_REASONS + 1):
        code = row[f"reason_{j}"]
        if pd.notna(code):
            lines.append(f"  {j}. {names[code]}  (log-odds +{row[f'reason_{j}_weight']:.2f})")
    lines += [
        f"风险类型 risk causes: {causes or '—'}",
        f"说明: {row['reason_text_zh']}",
        f"reason: {row['reason_text_en']}",
        f"建议措施 measures: {row['measures_zh'] or '—'}",
    ]
    if without is not None:
        lines.append("去除此因 risk with each cause taken away (the model's response):")
        moved = without[(without - row["risk_score"]).abs() > 5e-4].sort_values()
        if moved.empty:
            lines.append("  —")
        for code, risk in moved.items():
            lines.append(f"  {names.get(code, code):<22} {row['risk_score']:6.1%} → {risk:6.1%}  "
                         f"({risk - row['risk_score']:+.1%})")
    lines.append("帮扶测算 what-if (the model's response, not a causal effect):")
    if options.empty:
        lines.append("  —")
    measures = measure_names(options["measure"], config) if len(options) else {}
    for option in options.itertuples(index=False):
        name = measures[option.measure]
        # A Chinese character fills two columns of a terminal.
        lines.append(f"  {name}{' ' * max(20 - _width(name), 1)}{option.cost:>8,.0f} 元  "
                     f"{option.risk_before:6.1%} → {option.risk_after:6.1%}  "
                     f"({option.risk_change:+.1%})")
    return "\n".join(lines)


def _width(text: str) -> int:
    """Columns ``text`` fills in a terminal: two for each wide (CJK) character."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _axes(ax, height: float):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=(8, height), layout="constrained")
    return fig, ax


def _labels(columns, config: Config | None) -> list[str]:
    if config is None:
        return [str(c) for c in columns]
    names = {c.code: c.name_zh for c in config.causes}
    return [names.get(c, str(c)) for c in columns]


def plot_beeswarm(
    values: pd.DataFrame,
    features: pd.DataFrame | None = None,
    config: Config | None = None,
    max_display: int = 15,
    ax=None,
    seed: int = 0,
):
    """Beeswarm of SHAP values: one row of points per feature (or cause), widest spread first.

    Parameters
    ----------
    values : DataFrame
        :func:`feature_contributions` or :func:`cause_contributions` output.
    features : DataFrame, optional
        Feature values with the same columns, to colour points from low (blue) to high (red);
        grey without it.
    config : Config, optional
        Labels cause codes with their Chinese names (因病 …).
    max_display : int, default=15
    ax : matplotlib Axes, optional
    seed : int, default=0
        Seed of the vertical jitter.

    Returns
    -------
    matplotlib Figure
    """
    font = cjk_font()
    order = values.abs().mean().sort_values(ascending=False).index[:max_display][::-1]
    fig, ax = _axes(ax, 0.4 * len(order) + 1.5)
    rng = np.random.default_rng(seed)
    for y, name in enumerate(order):
        x = values[name].to_numpy(dtype="float64")
        offset = _swarm_offsets(x, rng)
        if features is not None and name in features:
            colour = features[name].rank(pct=True).to_numpy(dtype="float64", na_value=np.nan)
        else:
            colour = np.full(len(x), 0.5)
        ax.scatter(x, y + offset, c=colour, cmap="coolwarm", vmin=0, vmax=1, s=6,
                   linewidths=0, rasterized=True, plotnonfinite=True)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(range(len(order)), _labels(order, config), fontfamily=font)
    ax.set_xlabel("SHAP 值（对数几率） SHAP value (log-odds)", fontfamily=font)
    return fig


def _swarm_offsets(x: np.ndarray, rng: np.random.Generator, bins: int = 60) -> np.ndarray:
    """Vertical offsets that spread points where they are dense, within ±0.4 of the row."""
    finite = np.isfinite(x)
    lo, hi = (np.nanmin(x), np.nanmax(x)) if finite.any() else (0.0, 1.0)
    codes = np.clip(((x - lo) / max(hi - lo, 1e-12) * bins).astype(int, copy=False), 0, bins - 1)
    codes = np.where(finite, codes, 0)
    counts = np.bincount(codes, minlength=bins)
    density = counts[codes] / counts.max()
    return rng.uniform(-0.4, 0.4, len(x)) * density


def plot_cause_bar(
    contributions: pd.DataFrame, config: Config | None = None, ax=None, risk_raising: bool = False
):
    """Bars of the mean absolute contribution per column (feature or cause), largest on top.

    With ``risk_raising=True`` the bars are the mean risk-raising part (negative values
    counted as zero): how much each cause pushes households towards falling back.

    Returns
    -------
    matplotlib Figure
    """
    font = cjk_font()
    parts = contributions.clip(lower=0) if risk_raising else contributions.abs()
    mean = parts.mean().sort_values()
    fig, ax = _axes(ax, 0.35 * len(mean) + 1.5)
    ax.barh(range(len(mean)), mean.to_numpy(), color="#c0392b" if risk_raising else "#2c7fb8")
    ax.set_yticks(range(len(mean)), _labels(mean.index, config), fontfamily=font)
    what = "平均风险推高量 mean risk-raising" if risk_raising else "平均|SHAP| mean |SHAP|"
    ax.set_xlabel(f"{what} (log-odds)", fontfamily=font)
    return fig


def cause_shares_by(contributions: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """Share of each cause in the risk-raising contributions of each group (e.g. township).

    Parameters
    ----------
    contributions : DataFrame
        :func:`cause_contributions` output.
    groups : Series
        Group of each household, aligned with ``contributions`` (same index).

    Returns
    -------
    DataFrame
        One row per group, one column per cause; rows sum to 1 (0 where nothing raises risk).

    Examples
    --------
    >>> c = pd.DataFrame({"illness": [1.0, -0.5, 0.2], "income": [1.0, 2.0, -1.0]})
    >>> shares = cause_shares_by(c, pd.Series(["甲镇", "甲镇", "乙镇"]))
    >>> shares.round(2).to_dict("index")
    {'乙镇': {'illness': 1.0, 'income': 0.0}, '甲镇': {'illness': 0.25, 'income': 0.75}}
    """
    if not contributions.index.equals(groups.index):
        raise ValueError("Got groups indexed unlike contributions; expected the same index.")
    totals = contributions.clip(lower=0).groupby(groups.to_numpy(), sort=True).sum()
    denominator = totals.sum(axis=1).replace(0.0, np.nan)
    return totals.div(denominator, axis=0).fillna(0.0)


def plot_cause_shares(shares: pd.DataFrame, config: Config | None = None, ax=None):
    """Stacked bars of :func:`cause_shares_by`, one bar per group."""
    import matplotlib.pyplot as plt

    font = cjk_font()
    fig, ax = _axes(ax, max(0.35 * len(shares) + 2, 4))
    left = np.zeros(len(shares))
    colours = plt.get_cmap("tab20").colors
    for k, (code, label) in enumerate(zip(shares.columns, _labels(shares.columns, config),
                                          strict=True)):
        ax.barh(range(len(shares)), shares[code].to_numpy(), left=left, label=label,
                color=colours[k % len(colours)])
        left += shares[code].to_numpy()
    ax.set_yticks(range(len(shares)), [str(g) for g in shares.index], fontfamily=font)
    ax.set_xlim(0, 1)
    ax.set_xlabel("风险原因占比 share of risk-raising contributions", fontfamily=font)
    ax.legend(prop={"family": font, "size": "small"} if font else {"size": "small"},
              loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def global_explanations(
    model, features: pd.DataFrame, config: Config, groups: pd.Series | None = None,
    n_jobs: int = 1,
) -> dict:
    """The figures a training run logs and a reviewer looks at: name → matplotlib Figure.

    ``beeswarm_features``, ``bar_features``, ``beeswarm_causes``, ``bar_causes`` and, with
    ``groups`` (e.g. the township of each row), ``cause_shares``.
    """
    values, _ = feature_contributions(model, features, n_jobs=n_jobs)
    causes = pd.DataFrame(
        sum_by_cause(values.to_numpy(), cause_matrix(list(values.columns), config).to_numpy()),
        index=values.index, columns=[c.code for c in config.causes])
    figures = {
        "beeswarm_features": plot_beeswarm(values, features),
        "bar_features": plot_cause_bar(values),
        "beeswarm_causes": plot_beeswarm(causes, config=config),
        "bar_causes": plot_cause_bar(causes, config, risk_raising=True),
    }
    if groups is not None:
        figures["cause_shares"] = plot_cause_shares(cause_shares_by(causes, groups), config)
    return figures
