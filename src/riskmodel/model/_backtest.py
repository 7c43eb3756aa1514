"""Rolling-origin backtest of the model against today's rule-based screening.

Each origin is a prediction month: a model trained only on earlier months scores the eligible
households of that month, and its scores are compared with what happened within the horizon.
With ``backtest.label_embargo`` a training row's label must be realised by the prediction month
(t + horizon ≤ prediction month), as it would be when the model is trained in production, so no
outcome after the prediction date reaches the model. No household-month is ever both trained on
and evaluated.

The question a county office asks is answered by recall and precision at fixed caseloads: if
the office visits the top 2%, 5% or 10% of eligible households of a month, what share of the
households that will fall does it reach? The rule baseline and, on synthetic data, the true risk
(the best any model could do) answer the same question on the same rows. Probabilities are judged
by the Brier score, the expected calibration error and a reliability table. Confidence intervals
come from a bootstrap over households (a household's months move together).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import Config
from ..months import month_index, month_label
from ._estimator import CALIBRATION_METHODS, RiskModel
from ._rules import RuleBaseline

SCORERS = ("model", "scorecard", "rules", "rules_income", "truth")


@dataclass(frozen=True)
class Split:
    """One rolling origin: row positions trained on and evaluated."""

    origin: str
    train: np.ndarray
    test: np.ndarray
    train_last: str


def time_splits(
    months,
    *,
    origins: int = 3,
    test_months: int = 1,
    horizon: int = 6,
    label_embargo: bool = True,
) -> list[Split]:
    """Rolling-origin splits over the months of training rows.

    The last ``origins × test_months`` months are cut into ``origins`` blocks of ``test_months``;
    each block is evaluated with a model trained on rows before it: rows of months ≤ block start
    − ``horizon`` with ``label_embargo``, else ≤ block start − 1.

    Parameters
    ----------
    months : array-like of str
        ``YYYY-MM`` of each training row (rows with a label).
    origins, test_months, horizon : int
    label_embargo : bool, default=True

    Returns
    -------
    list of Split
        Oldest origin first; splits with no training row are left out.

    Examples
    --------
    >>> months = np.repeat(["2024-01", "2024-02", "2024-03", "2024-04"], 2)
    >>> [(s.origin, s.train.tolist(), s.test.tolist())
    ...  for s in time_splits(months, origins=2, horizon=2)]
    [('2024-03', [0, 1], [4, 5]), ('2024-04', [0, 1, 2, 3], [6, 7])]
    """
    idx = month_index(pd.Series(np.asarray(months, dtype=object)))
    distinct = np.unique(idx)
    gap = horizon if label_embargo else 1
    out = []
    for k in range(origins, 0, -1):
        block = distinct[len(distinct) - k * test_months:len(distinct) - (k - 1) * test_months]
        if block.size == 0:
            continue
        start = block[0]
        train = np.flatnonzero(idx <= start - gap)
        test = np.flatnonzero(np.isin(idx, block))
        if train.size == 0:
            continue
        out.append(Split(origin=str(month_label(start)), train=train, test=test,
                         train_last=str(month_label(idx[train].max()))))
    return out


def comparable_origins(splits: list[Split], trained_to: str, *, horizon: int = 6,
                       label_embargo: bool = True) -> list[str]:
    """Origins at which a model fitted on rows up to ``trained_to`` could be the fold's model.

    A fold's model learns from rows of months ≤ origin − ``horizon`` with ``label_embargo``
    (else ≤ origin − 1); a model that learnt from rows up to ``trained_to`` is judged fairly at
    an origin only when ``trained_to`` is no later than that cut: no outcome it learnt from
    falls in the months it is judged on.

    Examples
    --------
    >>> months = np.repeat(["2024-01", "2024-02", "2024-03", "2024-04"], 2)
    >>> splits = time_splits(months, origins=2, horizon=2)
    >>> comparable_origins(splits, "2024-02", horizon=2)
    ['2024-04']
    >>> comparable_origins(splits, "2024-01", horizon=2, label_embargo=False)
    ['2024-03', '2024-04']
    """
    gap = horizon if label_embargo else 1
    last = int(month_index(pd.Series([trained_to]))[0])
    origins = [s.origin for s in splits]
    starts = month_index(pd.Series(origins, dtype=object)) if origins else np.zeros(0)
    return [o for o, start in zip(origins, starts, strict=True) if start - gap >= last]


def compare_fitted(result: BacktestResult, features: pd.DataFrame, other, origins: list[str],
                   *, n_bins: int = 10) -> dict[str, dict[str, float]]:
    """The backtest's model and another, already fitted model on the same backtest rows.

    Parameters
    ----------
    result : BacktestResult
        From :func:`backtest`.
    features : DataFrame
        The features given to :func:`backtest` (all its rows, in its order).
    other : RiskModel
        A fitted model (e.g. the registered champion); scored on its own
        ``feature_names_in_``, ties broken by its log-odds.
    origins : list of str
        The origins whose evaluated rows are compared (see :func:`comparable_origins`).
    n_bins : int, default=10

    Returns
    -------
    dict
        ``{"model": metrics, "other": metrics}``, each as :func:`scorer_metrics` gives them,
        on the rows of ``origins`` (caseloads within each month, as in the backtest).
    """
    pred = result.predictions
    keep = pred["origin"].isin(list(origins)).to_numpy()
    rows = np.concatenate([s.test for s in result.splits])[keep]
    sub = pred[keep]
    names = [str(c) for c in other.feature_names_in_]
    raw = other.decision_function(features.iloc[rows][names])
    prob = other.calibrated(raw)
    y, month = sub["target"].to_numpy(), sub["month"].to_numpy()
    return {
        "model": scorer_metrics(y, sub["model"], sub["model"], month, result.caseloads, n_bins,
                                tiebreak=sub["model_raw"]),
        "other": scorer_metrics(y, prob, prob, month, result.caseloads, n_bins, tiebreak=raw),
    }


def caseload_hits(score: np.ndarray, groups: np.ndarray, share: float,
                  weight: np.ndarray | None = None, tiebreak: np.ndarray | None = None
                  ) -> np.ndarray:
    """Share of each row visited when the top ``share`` of its group (month) is visited.

    Rows are taken in order of ``score`` (then ``tiebreak``). Rows that tie at the cut are
    visited in no particular order, so each gets the expected share of a visit: the places
    left divided by the rows tied. With weights (a bootstrap draws households with weights) a
    row fills as many places as its weight.

    Examples
    --------
    >>> caseload_hits(np.array([0.9, 0.1, 0.5, 0.3]), np.array([0, 0, 0, 0]), 0.5).tolist()
    [1.0, 0.0, 1.0, 0.0]
    >>> caseload_hits(np.array([2, 1, 1, 1, 0]), np.zeros(5), 0.4).tolist()
    [1.0, 0.3333333333333333, 0.3333333333333333, 0.3333333333333333, 0.0]
    """
    w = np.ones(len(score)) if weight is None else np.asarray(weight, dtype="float64")
    tb = np.zeros(len(score)) if tiebreak is None else np.asarray(tiebreak, dtype="float64")
    score = np.asarray(score, dtype="float64")
    _, g = np.unique(groups, return_inverse=True)
    order = np.lexsort((-tb, -score, g))
    gs, ss, ts, ws = g[order], score[order], tb[order], w[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (gs[1:] != gs[:-1]) | (ss[1:] != ss[:-1]) | (ts[1:] != ts[:-1])
    block = np.cumsum(new) - 1
    block_weight = np.bincount(block, weights=ws)
    totals = np.bincount(g, weights=w)
    start = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
    end_of_block = np.cumsum(block_weight)
    block_group = gs[new]
    before = end_of_block - block_weight - start[block_group]
    # A visit list holds whole households: round the caseload to the nearest household.
    capacity = np.floor(share * totals + 0.5)[block_group]
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.clip((capacity - before) / block_weight, 0.0, 1.0)
    fraction = np.where(block_weight > 0, fraction, 0.0)
    hit = np.empty(len(score))
    hit[order] = fraction[block]
    return hit


def expected_calibration_error(y, p, n_bins: int = 10, weight=None) -> float:
    """ECE over equal-count bins of the predicted probability (weighted mean |pred − rate|).

    Equal-count bins suit a rare outcome: with equal-width bins nearly every household would sit
    in the first bin and the error would hide there.

    Examples
    --------
    >>> round(expected_calibration_error(np.array([0, 1, 0, 1]), np.array([.5, .5, .5, .5]), 2), 3)
    0.0
    """
    table = reliability_table(y, p, n_bins, weight)
    return float(np.sum(table["weight"] * np.abs(table["mean_predicted"] - table["observed"]))
                 / table["weight"].sum())


def reliability_table(y, p, n_bins: int = 10, weight=None) -> pd.DataFrame:
    """Mean predicted probability against the observed rate in equal-count bins."""
    y = np.asarray(y, dtype="float64")
    p = np.asarray(p, dtype="float64")
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype="float64")
    order = np.argsort(p, kind="stable")
    b = np.empty(len(p), dtype="int64")
    b[order] = np.minimum((np.arange(len(p)) * n_bins) // max(len(p), 1), n_bins - 1)
    wsum = np.bincount(b, weights=w, minlength=n_bins)
    keep = wsum > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(b, weights=w * p, minlength=n_bins) / wsum
        rate = np.bincount(b, weights=w * y, minlength=n_bins) / wsum
    frame = pd.DataFrame({"bin": np.arange(n_bins), "rows": np.bincount(b, minlength=n_bins),
                          "weight": wsum, "mean_predicted": mean_p, "observed": rate})
    return frame[keep].reset_index(drop=True)


def scorer_metrics(y, prob, rank, month, caseloads, n_bins: int = 10, weight=None,
                   tiebreak=None) -> dict[str, float]:
    """Every headline metric of one scorer on one set of rows.

    ``prob`` is judged as a probability (Brier, ECE, mean); ``rank`` orders the households for
    the ranking metrics (AUC, AP, recall and precision at each caseload within each month).
    AUC and AP treat tied scores as scikit-learn's ``roc_auc_score`` and
    ``average_precision_score`` do.
    """
    scored = _Scored(y, prob, rank, month, tiebreak, n_bins)
    w = np.ones(len(scored.y)) if weight is None else np.asarray(weight, dtype="float64")
    return scored.metrics(w, caseloads)


class _Scored:
    """One scorer's rows, sorted once, so that any weighting of them scores in linear time.

    The bootstrap reweights households hundreds of times; sorting once keeps it cheap.
    """

    def __init__(self, y, prob, rank, month, tiebreak, n_bins):
        self.y = np.asarray(y, dtype="float64")
        self.prob = None if prob is None else np.asarray(prob, dtype="float64")
        rank = np.asarray(rank, dtype="float64")
        tb = np.zeros(len(rank)) if tiebreak is None else np.asarray(tiebreak, dtype="float64")
        # Overall ranking, for AUC and AP: ties count as ties there, as in scikit-learn.
        self.order = np.argsort(-rank, kind="stable")
        self.block = _blocks(rank[self.order])
        # Ranking within each month, for caseloads.
        _, g = np.unique(np.asarray(month), return_inverse=True)
        self.group = g
        self.m_order = np.lexsort((-tb, -rank, g))
        self.m_block = _blocks(g[self.m_order], rank[self.m_order], tb[self.m_order])
        firsts = np.r_[True, np.diff(self.m_block) > 0] if len(g) else np.zeros(0, dtype=bool)
        self.m_block_group = g[self.m_order][firsts]
        if self.prob is not None:
            sorted_p = np.argsort(self.prob, kind="stable")
            self.bin = np.empty(len(self.prob), dtype="int64")
            self.bin[sorted_p] = np.minimum((np.arange(len(self.prob)) * n_bins)
                                            // max(len(self.prob), 1), n_bins - 1)
            self.n_bins = n_bins

    def metrics(self, w: np.ndarray, caseloads) -> dict[str, float]:
        y, total = self.y, w.sum()
        pos_w = w * y
        positives = pos_w.sum()
        out: dict[str, float] = {"rows": float(total), "positives": float(positives)}
        out["auc"], out["ap"] = self._ranking(w, pos_w)
        if self.prob is not None:
            p = self.prob
            out["brier"] = float(np.sum(w * (p - y) ** 2) / total)
            # Σ over bins of weight × |mean predicted − rate|, over the total weight.
            gap = np.abs(np.bincount(self.bin, weights=w * p, minlength=self.n_bins)
                         - np.bincount(self.bin, weights=pos_w, minlength=self.n_bins))
            out["ece"] = float(gap.sum() / total)
            out["mean_predicted"] = float(np.sum(w * p) / total)
        out["observed_rate"] = float(positives / total)
        block_w = np.bincount(self.m_block, weights=w[self.m_order])
        block_pos = np.bincount(self.m_block, weights=pos_w[self.m_order])
        totals = np.bincount(self.group, weights=w)
        start = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
        before = np.cumsum(block_w) - block_w - start[self.m_block_group]
        for share in caseloads:
            # A visit list holds whole households: round the caseload to the nearest one.
            capacity = np.floor(share * totals + 0.5)[self.m_block_group]
            with np.errstate(invalid="ignore", divide="ignore"):
                fraction = np.clip((capacity - before) / block_w, 0.0, 1.0)
            fraction = np.where(block_w > 0, fraction, 0.0)
            caught = float(fraction @ block_pos)
            visited = float(fraction @ block_w)
            tag = _share_tag(share)
            out[f"recall_at_{tag}"] = caught / positives if positives else np.nan
            out[f"precision_at_{tag}"] = caught / visited if visited else np.nan
        return out

    def _ranking(self, w: np.ndarray, pos_w: np.ndarray) -> tuple[float, float]:
        pos = np.bincount(self.block, weights=pos_w[self.order])
        neg = np.bincount(self.block, weights=w[self.order]) - pos
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos <= 0 or n_neg <= 0:
            return np.nan, np.nan
        tp, fp = np.cumsum(pos), np.cumsum(neg)
        auc = float(np.sum(neg * (tp - 0.5 * pos)) / (n_pos * n_neg))
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        ap = float(np.sum(pos / n_pos * precision))
        return auc, ap


def _blocks(*keys: np.ndarray) -> np.ndarray:
    """Block number of each sorted row: a new block wherever any key changes."""
    n = len(keys[0])
    new = np.zeros(n, dtype=bool)
    if n:
        new[0] = True
        for key in keys:
            new[1:] |= key[1:] != key[:-1]
    return np.cumsum(new) - 1


def _share_tag(share: float) -> str:
    return f"{round(share * 100):g}pct"


@dataclass
class BacktestResult:
    """What the backtest found.

    Attributes
    ----------
    predictions : DataFrame
        One row per evaluated household-month: ``origin``, ``month``, ``county``,
        ``household_type``, ``target``, the model's probability under each calibration
        (``model_isotonic``, ``model_sigmoid``) and the chosen one (``model``), its log-odds
        ``model_raw``, ``scorecard``, the rules fired (``rules_score``), the same ranked by
        income (``rules_income_score``), the rules' probability ``rules_proba`` and
        ``true_risk`` (NaN without truth). No household identifier.
    metrics : DataFrame
        One row per (origin, scorer), origin ``all`` pooling every origin. Scorers: ``model``
        (ties broken by its log-odds), ``scorecard`` (the paper card's probability), ``rules``
        (today's screening: rules fired, equal counts in no order), ``rules_income`` (rules
        fired, then lower income: the strongest rule ranking) and ``truth`` where known.
    intervals : DataFrame
        Bootstrap percentile intervals of the pooled metrics: scorer, metric, low, high.
    by_group : DataFrame
        Metrics of the model and the rules by county and by household type (pooled origins).
    reliability : DataFrame
        The chosen calibration's reliability table on the pooled predictions.
    calibration : str
        The calibration with the lower pooled Brier score.
    splits : list of Split
    agreement : DataFrame or None
        With ``origin_check``: the counts of :func:`riskmodel.model.reason_agreement` by
        origin (the fold model's reasons at the origin against the recorded risk types).
    """

    predictions: pd.DataFrame
    metrics: pd.DataFrame
    intervals: pd.DataFrame
    by_group: pd.DataFrame
    reliability: pd.DataFrame
    calibration: str
    splits: list[Split] = field(default_factory=list)
    caseloads: tuple[float, ...] = (0.02, 0.05, 0.10)
    agreement: pd.DataFrame | None = None

    def pooled(self, scorer: str = "model") -> dict[str, float]:
        """The pooled metrics of one scorer as a dict."""
        row = self.metrics[(self.metrics["origin"] == "all") & (self.metrics["scorer"] == scorer)]
        return {} if row.empty else {k: float(v) for k, v in row.iloc[0].drop(
            ["origin", "scorer"]).items() if pd.notna(v)}

    def summary(self) -> dict[str, float]:
        """Headline metrics, flat: ``<scorer>_<metric>`` for the model, rules and truth."""
        out: dict[str, float] = {}
        for scorer in SCORERS:
            for key, value in self.pooled(scorer).items():
                out[f"{scorer}_{key}"] = value
        mid = _share_tag(self.caseloads[len(self.caseloads) // 2])
        for base in ("rules", "rules_income"):
            if out.get(f"{base}_recall_at_{mid}"):
                out[f"recall_lift_over_{base}_at_{mid}"] = (
                    out.get(f"model_recall_at_{mid}", np.nan) / out[f"{base}_recall_at_{mid}"])
        out["origins"] = float(len(self.splits))
        return out

    def table(self) -> pd.DataFrame:
        """The short table a person reads: pooled metrics of each scorer side by side."""
        pooled = self.metrics[self.metrics["origin"] == "all"].set_index("scorer")
        cols = ["auc", "ap", "brier", "ece", "mean_predicted", "observed_rate"] + [
            f"{kind}_at_{_share_tag(s)}" for s in self.caseloads
            for kind in ("recall", "precision")]
        return pooled[[c for c in cols if c in pooled.columns]].T


def backtest(
    features: pd.DataFrame,
    target: np.ndarray,
    months: np.ndarray,
    config: Config,
    *,
    households: np.ndarray | None = None,
    groups: pd.DataFrame | None = None,
    true_risk: np.ndarray | None = None,
    splits: list[Split] | None = None,
    origin_check=None,
) -> BacktestResult:
    """Rolling-origin backtest of the model, its scorecard and the rule baseline.

    Parameters
    ----------
    features : DataFrame
        Features of the training rows (rows with a label), from
        :func:`riskmodel.model.build_features`.
    target : array of float
        0/1 label of each row.
    months : array of str
        ``YYYY-MM`` of each row.
    config : Config
        ``model`` and ``backtest`` blocks, the horizon and the baseline rules.
    households : array, optional
        Household of each row, for the bootstrap over households (never stored).
    groups : DataFrame, optional
        ``county`` and ``household_type`` of each row, for the metrics by group.
    true_risk : array of float, optional
        The simulator's true risk where known (synthetic data): the ceiling.
    splits : list of Split, optional
        Defaults to :func:`time_splits` with the config's ``backtest`` block.
    origin_check : callable, optional
        ``origin_check(fold_model, origin)`` → a dict of counts, kept in ``agreement``
        (:func:`riskmodel.model.origin_agreement`).
    """
    bt = config.backtest
    target = np.asarray(target, dtype="float64")
    months = np.asarray(months, dtype=object)
    if splits is None:
        splits = time_splits(months, origins=bt.origins, test_months=bt.test_months,
                             horizon=config.label.horizon_months, label_embargo=bt.label_embargo)
    inputs = model_features(features.columns, config)
    parts, checked = [], []
    for split in splits:
        model = RiskModel.from_config(config, inputs).fit(
            features.iloc[split.train][inputs], target[split.train], months=months[split.train])
        if origin_check is not None:
            checked.append({"origin": split.origin, **origin_check(model, split.origin)})
        rules = RuleBaseline.from_config(config).fit(features.iloc[split.train],
                                                     target[split.train])
        ranked = RuleBaseline.from_config(config, rank_by_income=True)
        test = features.iloc[split.test]
        raw = model.decision_function(test)
        part = pd.DataFrame({
            "origin": split.origin,
            "month": months[split.test],
            "target": target[split.test],
            "model_raw": raw,
            **{f"model_{m}": model.calibrators_[m].transform(raw) for m in CALIBRATION_METHODS},
            "scorecard": model.scorecard_.predict_proba(test)[:, 1],
            "rules_score": rules.decision_function(test),
            "rules_income_score": ranked.decision_function(test),
            "rules_proba": rules.predict_proba(test)[:, 1],
            "true_risk": np.nan if true_risk is None else np.asarray(true_risk)[split.test],
            "_household": (np.arange(len(split.test)) if households is None
                           else np.asarray(households)[split.test]),
        })
        for col in ("county", "household_type"):
            part[col] = (np.asarray(groups[col], dtype=object)[split.test]
                         if groups is not None and col in groups else "all")
        parts.append(part)
    if not parts:
        raise ValueError("No backtest origin has training rows; expected a longer ledger.")
    pred = pd.concat(parts, ignore_index=True)
    brier = {m: float(np.mean((pred[f"model_{m}"] - pred["target"]) ** 2))
             for m in CALIBRATION_METHODS}
    chosen = (config.model.calibration if config.model.calibration != "auto"
              else min(brier, key=brier.get))
    pred["model"] = pred[f"model_{chosen}"]

    caseloads = tuple(bt.caseloads)
    rows = []
    for origin, sub in [*pred.groupby("origin", sort=True), ("all", pred)]:
        for scorer, metrics in _all_scorers(sub, caseloads, bt.calibration_bins).items():
            rows.append({"origin": origin, "scorer": scorer, **metrics})
    metrics = pd.DataFrame(rows)
    intervals = _bootstrap(pred, caseloads, bt.calibration_bins, bt.bootstrap,
                           config.model.random_state)
    by_group = _by_group(pred, caseloads, bt.calibration_bins, bt.min_group_rows)
    reliability = reliability_table(pred["target"], pred["model"], bt.calibration_bins)
    return BacktestResult(
        predictions=pred.drop(columns="_household"), metrics=metrics, intervals=intervals,
        by_group=by_group, reliability=reliability.drop(columns="weight"), calibration=chosen,
        splits=list(splits), caseloads=caseloads,
        agreement=pd.DataFrame(checked) if origin_check is not None else None,
    )


def model_features(columns, config: Config) -> list[str]:
    """The feature columns the model learns from: all but ``model.exclude_features``."""
    excluded = set(config.model.exclude_features)
    return [c for c in columns if c not in excluded]


def _scorer_inputs(pred: pd.DataFrame) -> dict[str, tuple]:
    """(probability, ranking score, tie-break, row mask) of each scorer."""
    every = np.ones(len(pred), dtype=bool)
    out = {
        "model": (pred["model"], pred["model"], pred["model_raw"], every),
        "scorecard": (pred["scorecard"], pred["scorecard"], None, every),
        "rules": (pred["rules_proba"], pred["rules_score"], None, every),
        "rules_income": (None, pred["rules_income_score"], None, every),
    }
    known = pred["true_risk"].notna().to_numpy()
    if known.any():
        out["truth"] = (pred["true_risk"], pred["true_risk"], None, known)
    return out


def _scored(pred: pd.DataFrame, n_bins: int) -> dict[str, tuple[_Scored, np.ndarray]]:
    y = pred["target"].to_numpy()
    month = pred["month"].to_numpy()
    out = {}
    for scorer, (prob, rank, tie, mask) in _scorer_inputs(pred).items():
        if mask.any():
            out[scorer] = (_Scored(y[mask], None if prob is None else np.asarray(prob)[mask],
                                   np.asarray(rank)[mask], month[mask],
                                   None if tie is None else np.asarray(tie)[mask], n_bins), mask)
    return out


def _all_scorers(pred: pd.DataFrame, caseloads, n_bins) -> dict[str, dict]:
    return {scorer: scored.metrics(np.ones(int(mask.sum())), caseloads)
            for scorer, (scored, mask) in _scored(pred, n_bins).items()}


def _bootstrap(pred: pd.DataFrame, caseloads, n_bins, n_boot, seed) -> pd.DataFrame:
    if n_boot <= 0:
        return pd.DataFrame(columns=["scorer", "metric", "low", "high"])
    rng = np.random.default_rng(seed)
    house, _ = pd.factorize(pred["_household"])
    n_house = house.max() + 1
    scorers = _scored(pred, n_bins)
    draws: dict[tuple[str, str], list[float]] = {}
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, n_house, n_house), minlength=n_house)
        w = counts[house].astype("float64")
        for scorer, (scored, mask) in scorers.items():
            for key, value in scored.metrics(w[mask], caseloads).items():
                if key not in ("rows", "positives"):
                    draws.setdefault((scorer, key), []).append(value)
    rows = [(s, k, float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5)))
            for (s, k), v in draws.items() if np.isfinite(v).any()]
    return pd.DataFrame(rows, columns=["scorer", "metric", "low", "high"])


def _by_group(pred: pd.DataFrame, caseloads, n_bins, min_rows) -> pd.DataFrame:
    rows = []
    for column in ("county", "household_type"):
        for value, sub in pred.groupby(column, sort=True):
            if len(sub) < min_rows:
                continue
            for scorer, metrics in _all_scorers(sub, caseloads, n_bins).items():
                if scorer in ("model", "rules", "rules_income", "truth"):
                    rows.append({"group": column, "value": value, "scorer": scorer, **metrics})
    return pd.DataFrame(rows)


def plot_calibration(result: BacktestResult):
    """Reliability diagram of the chosen calibration: predicted against observed."""
    fig, ax = _figure()
    rel = result.reliability
    top = float(max(rel["mean_predicted"].max(), rel["observed"].max(), 1e-3)) * 1.05
    ax.plot([0, top], [0, top], color="#999", linestyle="--", label="perfect")
    ax.plot(rel["mean_predicted"], rel["observed"], marker="o",
            label=f"model ({result.calibration})")
    ax.set_xlabel("mean predicted risk")
    ax.set_ylabel("observed rate of falling below the line")
    ax.set_title("Calibration (equal-count bins, backtest)")
    ax.legend()
    return fig


def plot_caseload(result: BacktestResult):
    """Recall at each caseload for the model, the scorecard, the rules and the ceiling."""
    fig, ax = _figure()
    pooled = result.metrics[result.metrics["origin"] == "all"].set_index("scorer")
    shares = np.array(result.caseloads)
    for scorer in pooled.index:
        recall = [pooled.loc[scorer, f"recall_at_{_share_tag(s)}"] for s in shares]
        ax.plot(shares * 100, recall, marker="o", label=scorer)
    ax.set_xlabel("caseload (% of eligible households visited)")
    ax.set_ylabel("recall (share of falls reached)")
    ax.set_title("Recall at caseload: model against today's rules")
    ax.legend()
    return fig


def plot_precision_recall(result: BacktestResult):
    """Precision-recall curves of the model, the rules and, where known, the true risk."""
    from sklearn.metrics import precision_recall_curve

    fig, ax = _figure()
    pred = result.predictions
    for scorer, (_, rank, _, mask) in _scorer_inputs(pred).items():
        y = pred["target"].to_numpy()[mask]
        if len(np.unique(y)) < 2:
            continue
        precision, recall, _ = precision_recall_curve(y, np.asarray(rank)[mask])
        ax.plot(recall, precision, label=scorer)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall (backtest)")
    ax.legend()
    return fig


def _figure():
    from matplotlib.figure import Figure

    # A bare Figure draws with the Agg canvas and touches no global pyplot state.
    fig = Figure(figsize=(6, 4.5), dpi=100)
    return fig, fig.add_subplot()
