"""The lowest income margin over the horizon, and the share of falls a payment prevents.

A household falls when its trailing per-capita disposable income drops below the line in some
month of the horizon, that is when the lowest point of its margin path
``income_pc(t+k) − line(t+k)``, k = 1 … H, is negative. Money moves that path up by a known
amount: a one-off grant of A yuan paid next month enters every trailing window of the horizon,
raising each month's margin by A / members (yuan per person per year); a payment of a yuan a
month raises month k's margin by k · a / members. So whether help prevents a fall depends on
how far below the line the path would dip, not only on whether it dips: a question about the
distribution of the lowest margin, which a model of the probability of falling cannot answer.

The expected falls a measure prevents split in two::

    P(fall) × P(the lifted path stays above the line | fall)

The first factor is the calibrated risk model's. :class:`LowestMarginModel` learns the second,
the *prevented share*, from the households of the ledger that did fall: gradient-boosted trees
on their features, the risk model's log-odds, and a random lift of ``step`` (per-capita yuan
added to every month) and ``ramp`` (per-capita yuan added per month), labelled by whether the
household's real path, so lifted, would have stayed above the line. The share never falls as
either amount grows, and one fit prices any grant and any monthly payment without retraining.
What it prices is the model's reading of the ledger, not a causal effect of assistance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted

from ..config import Config, Measure
from ..ledger import sample_households
from ..model import FEATURE_NAMES, SOURCES, build_features, poverty_status, predict_in_threads
from ..months import month_index, month_label

HELP = ("step", "ramp")
# Rows stacked with their lift and predicted at a time: a month's households at once would hold
# several float64 copies of the whole feature matrix (about 0.7 GB each per million rows).
PREDICT_ROWS = 200_000
RISK_COLUMN = "risk_log_odds"


def margin_paths(ledger: pd.DataFrame, config: Config, horizon: int | None = None,
                 status: pd.DataFrame | None = None) -> np.ndarray:
    """Each row's per-capita margin over the next ``horizon`` months.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger.
    config : Config
        Lines, ``label.min_observed_months`` and ``label.horizon_months``.
    horizon : int, optional
        Months ahead; ``label.horizon_months`` when ``None``.
    status : DataFrame, optional
        :func:`riskmodel.model.poverty_status` of the ledger, when computed already.

    Returns
    -------
    ndarray of shape (n_rows, horizon)
        Column k − 1 is ``income_pc − line`` of the household at month t + k (yuan per person
        per year), NaN where that month is unknown, absent or past the ledger's end.

    Examples
    --------
    >>> from riskmodel import load_config, validate_ledger
    >>> from riskmodel.synthetic import generate_ledger
    >>> ledger = validate_ledger(generate_ledger(households=5, months=20, seed=1)).valid
    >>> paths = margin_paths(ledger, load_config())
    >>> paths.shape == (len(ledger), 6)
    True
    >>> bool(np.isnan(paths[(ledger["month"] == "2023-08").to_numpy()]).all())
    True
    """
    h = config.label.horizon_months if horizon is None else int(horizon)
    status = poverty_status(ledger, config) if status is None else status
    month = month_index(status["month"])
    house, _ = pd.factorize(status["household_id"])
    col = month - month.min()
    width = int(col.max()) + 1 + h + 1
    grid = np.full((house.max() + 1, width), np.nan)
    grid[house, col] = status["income_pc"].to_numpy() - status["line"].to_numpy()
    return grid[house[:, None], col[:, None] + np.arange(1, h + 1)]


def falls_under(paths: np.ndarray, step: np.ndarray | float = 0.0,
                ramp: np.ndarray | float = 0.0) -> np.ndarray:
    """Whether each path, lifted by ``step + ramp · k`` in month k, still dips below the line.

    Unknown months (NaN) never count as a fall, as in :func:`riskmodel.model.make_labels`.
    """
    k = np.arange(1, paths.shape[1] + 1)
    lifted = paths + np.asarray(step, dtype="float64")[..., None] + np.multiply.outer(
        np.asarray(ramp, dtype="float64"), k)
    return (lifted < 0).any(axis=1)


class LowestMarginModel(BaseEstimator):
    """Share of a household's falls below the line that lifting its margin path prevents.

    Learns ``P(the path lifted by step + ramp · k stays above the line | it falls unhelped)``
    from households that fell: the distribution of how far below the line their lowest margin
    went, given their features.

    Parameters
    ----------
    draws : int, default=4
        Random lifts each falling row is shown with: steps and ramps in turn.
    max_step, max_ramp : float
        Largest per-capita step (yuan a year) and ramp (yuan a year added per month) drawn;
        amounts are drawn log-uniformly from a thousandth of these up.
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to :class:`~sklearn.ensemble.HistGradientBoostingClassifier`.
    validation_share : float, default=0.15
        Share of households (with all their rows) held out for early stopping.
    random_state : int, default=0

    Attributes
    ----------
    gbm_ : HistGradientBoostingClassifier
    feature_names_in_ : ndarray of str
        The features, without ``step`` and ``ramp``.
    n_falls_ : int
        Falling rows learned from.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"income_margin_12m": rng.normal(1000, 1500, 6000)})
    >>> paths = X.to_numpy() - rng.exponential(1500, (6000, 1)) + np.zeros((1, 6))
    >>> model = LowestMarginModel(max_iter=60).fit(X, paths)
    >>> share = model.prevented_share(X.iloc[:3], step=np.array([0.0, 300.0, 3000.0]))
    >>> bool(share[0] == 0 and 0 < share[1] < share[2] <= 1)
    True
    """

    def __init__(
        self,
        *,
        draws: int = 4,
        max_step: float = 6000.0,
        max_ramp: float = 1500.0,
        max_iter: int = 400,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 100,
        l2_regularization: float = 1.0,
        validation_share: float = 0.15,
        random_state: int | None = 0,
    ):
        self.draws = draws
        self.max_step = max_step
        self.max_ramp = max_ramp
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.validation_share = validation_share
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, paths: np.ndarray, groups=None) -> LowestMarginModel:
        """Fit on features and the realised margin paths of the same rows.

        Parameters
        ----------
        X : DataFrame of shape (n_rows, n_features)
            Features at month t (NaN where unknown).
        paths : ndarray of shape (n_rows, horizon)
            Realised per-capita margins at t + 1 … t + H (:func:`margin_paths`). Rows whose
            path does not fall carry nothing about the share and are left out.
        groups : array-like of shape (n_rows,), optional
            Household of each row: early stopping holds out whole households. Each row is its
            own household when ``None``.
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"Got X of type {type(X).__name__}, expected a DataFrame of features.")
        paths = np.asarray(paths, dtype="float64")
        if paths.ndim != 2 or len(paths) != len(X):
            raise ValueError(f"Got paths of shape {paths.shape} for {len(X)} rows, expected "
                             "(n_rows, horizon).")
        if self.draws < 1:
            raise ValueError(f"Got draws={self.draws!r}, expected a positive integer.")
        fell = falls_under(paths)
        groups = np.arange(len(X)) if groups is None else np.asarray(groups)
        if fell.sum() < 2 * self.min_samples_leaf:
            raise ValueError(f"Got {int(fell.sum())} falling rows, expected at least "
                             f"{2 * self.min_samples_leaf} to learn how far households fall.")
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.n_falls_ = int(fell.sum())
        rng = np.random.default_rng(self.random_state)
        n = self.n_falls_
        step = np.zeros((self.draws, n))
        ramp = np.zeros((self.draws, n))
        for d in range(self.draws):
            top, lift = (self.max_step, step) if d % 2 == 0 else (self.max_ramp, ramp)
            lift[d] = top * np.exp(rng.uniform(np.log(1e-3), 0.0, n))
        saved = ~falls_under(np.tile(paths[fell], (self.draws, 1)), step.ravel(), ramp.ravel())
        house, _ = pd.factorize(groups[fell])
        held = np.tile((rng.random(house.max() + 1) < self.validation_share)[house], self.draws)
        if min(len(np.unique(saved[held])), len(np.unique(saved[~held]))) < 2:
            raise ValueError("Every lift saves (or none does) in the training or the held-out "
                             "rows; expected both outcomes.")
        frame = self._stack(X[fell], step.ravel(), ramp.ravel(), repeat=self.draws)
        empty = frame.columns[frame[~held].isna().all().to_numpy()]
        if len(empty):
            # As in RiskModel: a feature unknown on every training row (a monthly income on a
            # ledger of incomes as recorded) cannot be binned; a constant is never split on.
            frame = frame.assign(**dict.fromkeys(empty, 0.0))
        self.gbm_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            monotonic_cst=[0] * self.n_features_in_ + [1, 1], early_stopping=True,
            n_iter_no_change=15, scoring="loss", random_state=self.random_state,
        )
        self.gbm_.fit(frame[~held], saved[~held].astype("int8"), X_val=frame[held],
                      y_val=saved[held].astype("int8"))
        return self

    def _stack(self, X: pd.DataFrame, step: np.ndarray, ramp: np.ndarray,
               repeat: int = 1) -> pd.DataFrame:
        values = X[list(self.feature_names_in_)].to_numpy(dtype="float64")
        if repeat > 1:
            values = np.tile(values, (repeat, 1))
        frame = pd.DataFrame(values, columns=list(self.feature_names_in_), copy=False)
        frame["step"] = step
        frame["ramp"] = ramp
        return frame

    def prevented_share(self, X: pd.DataFrame, step: np.ndarray | float = 0.0,
                        ramp: np.ndarray | float = 0.0) -> np.ndarray:
        """P(the margin path, lifted by ``step + ramp · k``, stays above the line | it falls).

        Parameters
        ----------
        X : DataFrame
            Features of the rows (the columns the model was fitted on).
        step, ramp : float or ndarray of shape (n_rows,)
            Per-capita lift (yuan per person per year) in every month, and per month.

        Returns
        -------
        ndarray of shape (n_rows,)
            0 where there is no lift.
        """
        check_is_fitted(self, "gbm_")
        n = len(X)
        step = np.broadcast_to(np.asarray(step, dtype="float64"), n)
        ramp = np.broadcast_to(np.asarray(ramp, dtype="float64"), n)
        share = np.empty(n)
        for lo in range(0, n, PREDICT_ROWS):
            hi = min(n, lo + PREDICT_ROWS)
            share[lo:hi] = predict_in_threads(
                lambda rows: self.gbm_.predict_proba(rows)[:, 1],
                self._stack(X.iloc[lo:hi], step[lo:hi], ramp[lo:hi]))
        return np.where((step > 0) | (ramp > 0), share, 0.0)


def margin_features(features: pd.DataFrame, risk_model,
                    log_odds: np.ndarray | None = None) -> pd.DataFrame:
    """The risk model's features of the rows and its log-odds (``risk_log_odds``; computed
    unless given)."""
    names = [str(c) for c in risk_model.feature_names_in_]
    out = features[names].copy()
    out[RISK_COLUMN] = risk_model.decision_function(out) if log_odds is None else log_odds
    return out


def cap_rows(households: np.ndarray, months: np.ndarray, max_rows: int | None,
             seed: int = 0) -> np.ndarray:
    """Positions of at most ``max_rows`` rows, a random sample, in (household, month) order;
    the same rows whatever order they came in."""
    order = np.lexsort((months, np.asarray(households, dtype=object)))
    if max_rows is None or len(order) <= max_rows:
        return order
    keep = np.sort(np.random.default_rng(seed).choice(len(order), max_rows, replace=False))
    return order[keep]


def training_rows(
    ledger: pd.DataFrame, config: Config, month: str, max_rows: int | None = 60_000,
    months: int = 36, seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Features, realised margin paths and households of the falls a margin model learns from.

    A row qualifies when its whole horizon lies at or before ``month`` (so nothing after
    ``month`` is read), it is among the latest ``months`` such months, the household was not
    under the line then, and it fell within the horizon. At most ``max_rows`` rows are kept
    (:func:`cap_rows`); ``None`` keeps all.

    Returns
    -------
    features : DataFrame
        Indexed like the ledger's rows, in (household, month) order.
    paths : ndarray of shape (n_rows, horizon)
    households : ndarray of shape (n_rows,)
    """
    h = config.label.horizon_months
    t = int(month_index(pd.Series([month]))[0])
    m = month_index(ledger["month"]) if len(ledger) else np.zeros(0, dtype="int64")
    past = ledger if (m <= t).all() else ledger[m <= t]
    m = m[m <= t]
    if past.empty:
        return (pd.DataFrame(columns=FEATURE_NAMES, dtype="float64"), np.zeros((0, h)),
                np.zeros(0, dtype=object))
    last = t - h
    status = poverty_status(past, config)
    paths = margin_paths(past, config, h, status=status)
    poor = status["poor"].to_numpy(dtype="float64", na_value=np.nan)
    rows = np.flatnonzero((m > last - months) & (m <= last) & (poor == 0))
    rows = rows[falls_under(paths[rows])]
    ids = past["household_id"].to_numpy(dtype=object)[rows]
    picked = cap_rows(ids, m[rows], max_rows, seed)
    rows, ids = rows[picked], ids[picked]
    chosen = past[past["household_id"].isin(pd.unique(ids)).to_numpy()]
    parts = []
    # Month by month, the features of only the households that fell from that month.
    for when in np.unique(m[rows]):
        at = m[rows] == when
        mine = chosen[chosen["household_id"].isin(ids[at]).to_numpy()]
        parts.append(build_features(mine, config, months=[str(month_label(when))])
                     .loc[past.index[rows[at]]])
    features = (pd.concat(parts).loc[past.index[rows]] if parts
                else pd.DataFrame(columns=FEATURE_NAMES, dtype="float64"))
    return features, paths[rows], ids


def fit_margin_model(
    ledger: pd.DataFrame, config: Config, month: str, risk_model, max_rows: int = 60_000,
    months: int = 36, households: int | None = None, **params,
) -> LowestMarginModel:
    """Fit a :class:`LowestMarginModel` on the ledger's realised falls up to ``month``.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger; rows after ``month`` are not read.
    config : Config
        Horizon and lines.
    month : str
        ``YYYY-MM``: the month the plan is for.
    risk_model : RiskModel
        Its features and log-odds are the margin model's inputs (:func:`margin_features`).
    max_rows, months : int
        See :func:`training_rows`.
    households : int, optional
        Learn from at most about this many households (:func:`sample_households`).
    **params
        Passed to :class:`LowestMarginModel`.
    """
    if households is not None:
        ids = ledger["household_id"]
        share = households / max(ids.nunique(), 1)
        ledger = ledger[sample_households(ids, share)]
    X, paths, groups = training_rows(ledger, config, month, max_rows=max_rows, months=months)
    return LowestMarginModel(**params).fit(margin_features(X, risk_model), paths, groups=groups)


def help_lift(measure: Measure, features: pd.DataFrame, members: np.ndarray,
              horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """How far a measure lifts each household's margin path, per person.

    A one-month measure is a step (every month of the horizon gains it); a measure paid
    monthly is a ramp (month k gains k payments). A measure paid for fewer months than the
    horizon counts as the ramp that pays as much by the horizon's end. A share of a spending
    or income column is priced at the household's monthly average of it over the last 12
    months (the ``<source>_pc_12m`` features).

    Parameters
    ----------
    measure : Measure
        A measure of ``config.measures`` (or a grant).
    features : DataFrame
        The households' features.
    members : ndarray
    horizon : int

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


def lift_columns(risk_model) -> list[str]:
    """Feature columns the margin model and :func:`help_lift` read."""
    names = [str(c) for c in risk_model.feature_names_in_]
    return names + [f"{s}_pc_12m" for s in SOURCES if f"{s}_pc_12m" not in names]
