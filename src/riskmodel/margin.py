"""The lowest income margin over the horizon, and what a payment buys against it.

A household falls when its trailing per-capita disposable income drops below the line in some
month of the horizon, that is when the lowest point of its margin path
``income_pc(t+k) − line(t+k)``, k = 1 … H, is negative. Money moves that path up by a known
amount: a one-off grant of A yuan paid next month enters every trailing window of the horizon,
raising each month's margin by A / members (yuan per person per year); a payment of a yuan a
month raises month k's margin by k · a / members. So whether help prevents a fall depends on
how far below the line the path would dip, not only on whether it dips: a question about the
distribution of the path, which a model of the probability of falling alone cannot answer.

:class:`LowestMarginModel` learns ``P(fall | features, step, ramp)`` where ``step`` is the
per-capita amount added to every month of the path and ``ramp`` the per-capita amount added per
month: gradient-boosted trees on the features plus the two amounts, never rising with either,
trained on the ledger's own realised futures. Each household-month is shown without help and
with random amounts, and its label says whether its real path, lifted by them, would still have
dipped below the line. One fit prices any grant and any monthly payment without retraining.
What it prices is the model's reading of the ledger, not a causal effect of assistance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import check_is_fitted

from .config import Config
from .features import build_features, feature_monotonic
from .labels import month_index, poverty_status

HELP = ("step", "ramp")


def margin_paths(ledger: pd.DataFrame, config: Config, horizon: int | None = None) -> np.ndarray:
    """Each row's per-capita margin over the next ``horizon`` months.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger.
    config : Config
        Lines, ``label.min_observed_months`` and ``label.horizon_months``.
    horizon : int, optional
        Months ahead; ``label.horizon_months`` when ``None``.

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
    status = poverty_status(ledger, config)
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

    Unknown months (NaN) never count as a fall, as in :func:`riskmodel.labels.make_labels`.
    """
    k = np.arange(1, paths.shape[1] + 1)
    lifted = paths + np.asarray(step, dtype="float64")[..., None] + np.multiply.outer(
        np.asarray(ramp, dtype="float64"), k)
    return (lifted < 0).any(axis=1)


class LowestMarginModel(BaseEstimator):
    """Probability of falling below the line within the horizon, given help that lifts the
    household's margin path.

    Parameters
    ----------
    draws : int, default=2
        Random help amounts each training row is shown with, beside no help: half of them
        steps, half ramps.
    max_step, max_ramp : float
        Largest per-capita step (yuan a year) and ramp (yuan a year added per month) drawn;
        amounts are drawn log-uniformly from a tenth of a percent of these up.
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to :class:`~sklearn.ensemble.HistGradientBoostingClassifier`.
    monotonic : dict, optional
        Feature name → -1, 0 or 1, the known direction of risk; ``step`` and ``ramp`` are
        always -1 (more help never raises the risk).
    validation_share : float, default=0.1
        Share of training rows (with all their draws) held out for early stopping.
    random_state : int, default=0

    Attributes
    ----------
    gbm_ : HistGradientBoostingClassifier
    feature_names_in_ : ndarray of str
        The features, without ``step`` and ``ramp``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"income_margin_12m": rng.normal(2000, 1500, 4000)})
    >>> paths = X.to_numpy() + rng.normal(0, 1000, (4000, 6)).cumsum(axis=1)
    >>> model = LowestMarginModel(max_iter=60, monotonic={"income_margin_12m": -1}).fit(X, paths)
    >>> p0 = model.fall_probability(X)
    >>> p1 = model.fall_probability(X, step=np.full(4000, 500.0))
    >>> bool((p1 <= p0 + 1e-12).all() and p0.mean() > p1.mean())
    True
    """

    def __init__(
        self,
        *,
        draws: int = 2,
        max_step: float = 6000.0,
        max_ramp: float = 1500.0,
        max_iter: int = 250,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 100,
        l2_regularization: float = 1.0,
        monotonic: dict | None = None,
        validation_share: float = 0.1,
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
        self.monotonic = monotonic
        self.validation_share = validation_share
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, paths: np.ndarray) -> LowestMarginModel:
        """Fit on features and the realised margin paths of the same rows.

        Parameters
        ----------
        X : DataFrame of shape (n_rows, n_features)
            Features at month t (NaN where unknown).
        paths : ndarray of shape (n_rows, horizon)
            Realised per-capita margins at t + 1 … t + H (:func:`margin_paths`).
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"Got X of type {type(X).__name__}, expected a DataFrame of features.")
        paths = np.asarray(paths, dtype="float64")
        if paths.ndim != 2 or len(paths) != len(X):
            raise ValueError(f"Got paths of shape {paths.shape} for {len(X)} rows, expected "
                             "(n_rows, horizon).")
        if self.draws < 0:
            raise ValueError(f"Got draws={self.draws!r}, expected an integer ≥ 0.")
        rng = np.random.default_rng(self.random_state)
        n = len(X)
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        step = np.zeros((self.draws + 1, n))
        ramp = np.zeros((self.draws + 1, n))
        for d in range(1, self.draws + 1):
            top, target = (self.max_step, step) if d % 2 else (self.max_ramp, ramp)
            target[d] = top * np.exp(rng.uniform(np.log(1e-3), 0.0, n))
        stacked = np.tile(paths, (self.draws + 1, 1))
        y = falls_under(stacked, step.ravel(), ramp.ravel()).astype("int8")
        held = np.tile(rng.random(n) < self.validation_share, self.draws + 1)
        if len(np.unique(y[~held])) < 2 or len(np.unique(y[held])) < 2:
            raise ValueError("The training rows hold one outcome only; expected households that "
                             "fall and households that do not.")
        frame = self._stack(X, step.ravel(), ramp.ravel(), repeat=self.draws + 1)
        monotonic = dict(self.monotonic or {})
        cst = [int(monotonic.get(c, 0)) for c in self.feature_names_in_] + [-1, -1]
        self.gbm_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization, monotonic_cst=cst, early_stopping=True,
            n_iter_no_change=15, scoring="loss", random_state=self.random_state,
        )
        self.gbm_.fit(frame[~held], y[~held], X_val=frame[held], y_val=y[held])
        self.n_features_in_ = len(self.feature_names_in_)
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

    def fall_probability(self, X: pd.DataFrame, step: np.ndarray | float = 0.0,
                         ramp: np.ndarray | float = 0.0) -> np.ndarray:
        """P(the margin path, lifted by ``step + ramp · k``, dips below the line).

        Parameters
        ----------
        X : DataFrame
            Features of the rows.
        step, ramp : float or ndarray of shape (n_rows,)
            Per-capita lift (yuan per person per year) in every month, and per month.
        """
        check_is_fitted(self, "gbm_")
        n = len(X)
        frame = self._stack(X, np.broadcast_to(np.asarray(step, dtype="float64"), n),
                            np.broadcast_to(np.asarray(ramp, dtype="float64"), n))
        return self.gbm_.predict_proba(frame)[:, 1]


def training_rows(
    ledger: pd.DataFrame, config: Config, month: str, max_rows: int = 120_000,
    months: int = 12, seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and realised margin paths of the household-months a margin model learns from.

    A row qualifies when its whole horizon lies at or before ``month`` (so nothing after
    ``month`` is read), it is among the latest ``months`` such months, the household was not
    under the line then, and at least one month of its horizon is known. At most ``max_rows``
    rows are kept, from a random set of whole households.

    Returns
    -------
    features : DataFrame
    paths : ndarray of shape (n_rows, horizon)
    """
    h = config.label.horizon_months
    t = int(month_index(pd.Series([month]))[0])
    m = month_index(ledger["month"])
    # History a feature at the oldest training month reads, plus the horizons themselves.
    past = ledger[m <= t]
    m = m[m <= t]
    last = t - h
    first = last - months + 1
    paths = margin_paths(past, config, h)
    poor = poverty_status(past, config)["poor"].to_numpy(dtype="float64", na_value=np.nan)
    ok = (m >= first) & (m <= last) & (poor == 0) & ~np.isnan(paths).all(axis=1)
    rows = np.flatnonzero(ok)
    if len(rows) > max_rows:
        house, _ = pd.factorize(past["household_id"].to_numpy()[rows])
        keep_share = max_rows / len(rows)
        pick = np.random.default_rng(seed).random(house.max() + 1) < keep_share
        rows = rows[pick[house]]
    ids = past["household_id"].to_numpy()[rows]
    chosen = past[past["household_id"].isin(pd.unique(ids)).to_numpy()]
    wanted = sorted(set(past["month"].to_numpy()[rows]))
    features = build_features(chosen, config, months=wanted).loc[past.index[rows]]
    return features, paths[rows]


def fit_margin_model(
    ledger: pd.DataFrame, config: Config, month: str, features: list[str] | None = None,
    max_rows: int = 120_000, **params,
) -> LowestMarginModel:
    """Fit a :class:`LowestMarginModel` on the ledger's realised futures up to ``month``.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger; rows after ``month`` are not read.
    config : Config
        Horizon, lines, and the features' monotonic directions.
    month : str
        ``YYYY-MM``: the month the plan is for.
    features : list of str, optional
        Feature columns to use (e.g. the risk model's ``feature_names_in_``); all when ``None``.
    max_rows : int, default=120_000
    **params
        Passed to :class:`LowestMarginModel`.
    """
    X, paths = training_rows(ledger, config, month, max_rows=max_rows)
    if features is not None:
        X = X[list(features)]
    monotonic = {k: v for k, v in feature_monotonic(config).items() if k in X.columns and v}
    return LowestMarginModel(monotonic=monotonic, **params).fit(X, paths)
