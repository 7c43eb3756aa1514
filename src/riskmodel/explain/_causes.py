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
import weakref

import numpy as np
import pandas as pd

from ..config import Config
from ..errors import ConfigError
from ..model import FEATURE_NAMES, poverty_lines
from ._counterfactual import cause_drops
from ._facts import (
    WINDOW,
    LedgerWindow,
    cause_givebacks,
    cause_losses,
    disabled_adults,
    household_facts,
    lines_ahead,
    months_of,
    trailing_window,
)
from ._reasons import row_sums, valid_causes
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
# Features of the income as the county recorded it at its last verification (a ledger built
# from its sources, docs/ledger.md): like the net-income features they carry every cause at
# once, but no month of the ledger says what each cause took.
RECORDED_INCOME = ("recorded_income_ratio", "recorded_income_change", "months_since_recorded")


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
      below the line plus ``reasons.structural_margin`` of it, the line being the highest in
      force within the horizon, as the label reads it), which stays with 收入偏低; the
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
    month = months_of(ledger_rows["month"])
    places = ledger_rows.get("province"), ledger_rows.get("county")
    line = poverty_lines(config, month // 12, *places)
    ahead, _ = lines_ahead(config, month, *places)
    givebacks = cause_givebacks(ledger_rows, window)
    drops = _counterfactual(model, features, values, base, ledger_rows, history, window,
                            givebacks, config)
    allowed = (valid_causes(household_facts(ledger_rows, config, window=window), config)
               if any(n in values.columns for n in RECORDED_INCOME) else None)
    return _shared_out(values, features, ledger_rows, window, line, config, drops,
                       givebacks, allowed, ahead), base


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
        row_sums(values[_net_features(values.columns)].to_numpy()) > 0)
    if not select.any():
        return None
    raw = row_sums(values.to_numpy()) + base
    return cause_drops(model, rows, history, config, raw=raw, select=select, window=window,
                       givebacks=givebacks)


def _shared_out(values: pd.DataFrame, features: pd.DataFrame, rows: pd.DataFrame,
                window: LedgerWindow, line: np.ndarray, config: Config,
                drops: pd.DataFrame | None = None,
                givebacks: dict[str, dict[str, np.ndarray]] | None = None,
                allowed: pd.DataFrame | None = None,
                line_ahead: np.ndarray | None = None) -> pd.DataFrame:
    """Cause contributions with net-income, recorded-income and labor-shortage features
    shared out.

    Rows with counterfactual weights (``drops``, finite) share the net-income features by
    them; the others by the yuan each cause took (:func:`riskmodel.explain.cause_losses`).
    With ``allowed`` (:func:`riskmodel.explain.valid_causes`), the recorded-income features
    are shared among the causes with evidence (:func:`_share_recorded`).
    """
    causes = [c.code for c in config.causes]
    net = {name: w for name, w in NET_INCOME.items() if name in values.columns}
    change = [name for name in NET_CHANGE if name in values.columns]
    table = cause_matrix(list(values.columns), config)
    shared = _net_features(values.columns)
    out = pd.DataFrame(sum_by_cause(values.drop(columns=shared).to_numpy(),
                                    table.drop(index=shared).to_numpy()),
                       index=values.index, columns=causes)
    # What each cause is given, one array per cause (column operations on a frame cost more
    # than the arithmetic).
    given_to = {code: np.zeros(len(values)) for code in causes}
    losses = {c: v for c, v in cause_losses(rows, window, givebacks).items() if c in causes}
    members = rows["members"].to_numpy(dtype="float64")
    lost_over = {}
    for months in {*net.values(), *NET_CHANGE.values(), WINDOW}:
        # annual_per_capita of each cause, the observed months counted once.
        n_obs = np.maximum(window.observed[:, :months].sum(axis=1), 1)
        lost_over[months] = np.column_stack([v[:, :months].sum(axis=1) * WINDOW / n_obs / members
                                             for v in losses.values()])
    own = {name: _own_cause(table, name) for name in shared}

    def share_out(name: str, lost: np.ndarray, unexplained: np.ndarray) -> None:
        phi = values[name].to_numpy()
        total = lost.sum(axis=1) + unexplained
        share = np.where(((phi > 0) & (total > 0))[:, None],
                         lost / np.where(total > 0, total, 1.0)[:, None], 0.0)
        for k, code in enumerate(losses):
            given_to[code] += phi * share[:, k]
        given_to[own[name]] += phi * (1 - share.sum(axis=1))

    # The shortfall no cause explains is measured against the highest line in force within
    # the horizon (``line_ahead``, where given), the line the label judges a fall against.
    reference = line if line_ahead is None else np.maximum(line, line_ahead)
    floor = config.reasons.structural_margin * reference
    for name, months in net.items():
        lost = lost_over[months]
        margin = _margin(features, months, line) - (reference - line)
        # Unknown income: nothing to share by, the feature keeps its own cause.
        lost = np.where(np.isfinite(margin)[:, None], lost, 0.0)
        share_out(name, lost, np.clip(floor - np.nan_to_num(margin) - lost.sum(axis=1), 0, None))
    for name in change:
        recent = np.clip(lost_over[NET_CHANGE[name]] - lost_over[WINDOW], 0, None)
        fall = np.clip(-features[name].to_numpy(dtype="float64"), 0, None)
        share_out(name, recent, np.clip(np.nan_to_num(fall) - recent.sum(axis=1), 0, None))
    given = pd.DataFrame(given_to, index=values.index, columns=causes, copy=False)
    if drops is not None and shared:
        _share_by_drops(given, values[shared], drops, table, config)
    out += given
    if allowed is not None:
        _share_recorded(out, values, allowed, table, config)
    if "labor_shortage" in out and "disability" in out:
        disabled = disabled_adults(rows) > 0
        out.loc[disabled, "disability"] += out.loc[disabled, "labor_shortage"]
        out.loc[disabled, "labor_shortage"] = 0.0
    return out


def _net_features(columns) -> list[str]:
    """The features shared out among the causes: net income and its change, in that order."""
    return [*(n for n in NET_INCOME if n in columns), *(n for n in NET_CHANGE if n in columns)]


def _share_recorded(out: pd.DataFrame, values: pd.DataFrame, allowed: pd.DataFrame,
                    table: pd.DataFrame, config: Config) -> None:
    """The recorded-income features shared among the causes with evidence, in place.

    A verified income that fell or sits low says the household is short of money, not why.
    Where their summed value raises the risk, it goes in equal parts to the causes whose
    evidence rules hold on the household's record (a seriously ill member, a disabled one of
    working age, a student beyond compulsory school, a department's warning of an illness,
    accident, disaster or job loss …: the cause table's ``evidence``), apart from the
    features' own cause (收入偏低) and from causes outside ``reasons.recorded_income_causes``
    (unsafe housing or water, which take no money); with no such cause it stays there. The
    shares being equal, the causes keep the order of their own features' weights; the record
    only decides whether a shock or the income itself comes first. Row sums do not change.
    """
    names = [n for n in RECORDED_INCOME if n in values.columns]
    own = {n: _own_cause(table, n) for n in names}
    readable = config.reasons.recorded_income_causes
    takers = [c.code for c in config.causes
              if c.evidence and c.code not in own.values() and c.code in out.columns
              and (readable is None or c.code in readable)]
    if not names or not takers:
        return
    parts = values[names].to_numpy(dtype="float64")
    ok = allowed.reindex(index=out.index, columns=takers, fill_value=False).to_numpy(dtype=bool)
    count = ok.sum(axis=1)
    moved = np.where(count > 0, np.clip(parts.sum(axis=1), 0, None), 0.0)
    # Each feature's own cause gives its part of what moves: its share of the positive parts.
    positive = np.clip(parts, 0, None)
    total = positive.sum(axis=1)
    for k, name in enumerate(names):
        out[own[name]] -= moved * np.divide(positive[:, k], total, out=np.zeros_like(total),
                                            where=total > 0)
    share = np.divide(moved, count, out=np.zeros_like(moved), where=count > 0)
    for k, code in enumerate(takers):
        out[code] += np.where(ok[:, k], share, 0.0)


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
