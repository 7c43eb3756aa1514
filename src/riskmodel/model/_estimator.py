"""The risk model: gradient boosted trees, calibrated on a later time slice.

:class:`RiskModel` fits a plain binary :class:`~sklearn.ensemble.HistGradientBoostingClassifier`
on numeric features (no native categorical support, so TreeSHAP applies to it), with monotonic
constraints where config knows the direction of risk. Rows are split by month, oldest first:
the trees learn on the oldest months, stop early on the next ``validation_months`` and are
calibrated on the latest ``calibration_months`` — so ``predict_proba`` is a probability measured
on months the trees never saw. With ``refit``, the trees are then fitted again on every month
with the number of trees early stopping chose, and the calibrators (fitted on out-of-time
predictions, pooled over ``calibration_folds`` blocks) map the refitted trees. A points
:class:`~riskmodel.model.Scorecard` is fitted beside it as the transparent sibling, and the
training distributions that drift monitoring compares against are kept in ``reference_``.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data

from ..config import Config
from ..months import month_label, month_numbers
from ._binning import learnable, one_pass_binning
from ._distributions import calendar_month_shares, reference_bins
from ._labels import binary_target
from ._level import RecentFalls, follow_level, shifted
from ._scorecard import Scorecard
from ._threads import predict_in_threads

CALIBRATION_METHODS = ("isotonic", "sigmoid")
#: Share of the isotonic probability given to the logistic of the log-odds: it orders log-odds
#: within -6 and 6 that differ by more than about 1e-5 (float64's limit near a probability of 1
#: or beyond that range) and moves no probability or mean by more than 1e-9.
TIE_BREAK = 1e-9
REFIT_TREES = ("same", "rows")


class Calibrator(BaseEstimator):
    """Maps the trees' log-odds to probabilities, fitted on a later time slice.

    ``isotonic`` is isotonic regression (pool adjacent violators), interpolated linearly between
    its steps and blended with :data:`TIE_BREAK` of the logistic of the log-odds, so that it
    rises strictly with the log-odds: rankings by it (``rank``, tiers, plans, average precision)
    order the households of one step as the model does (a step's households would otherwise
    share one probability and be listed by ``household_id``), and it stays within
    :data:`TIE_BREAK` of the step function, which keeps the calibration slice's mean.
    ``sigmoid`` is Platt scaling of the log-odds.

    Parameters
    ----------
    method : {"isotonic", "sigmoid"}
    """

    def __init__(self, method: str = "isotonic"):
        self.method = method

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(
                f"Got method={self.method!r}, expected one of {', '.join(CALIBRATION_METHODS)}."
            )
        raw = np.asarray(raw, dtype="float64")
        y = np.asarray(y, dtype="float64")
        if self.method == "sigmoid":
            lr = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), y)
            self.slope_ = float(lr.coef_[0, 0])
            self.intercept_ = float(lr.intercept_[0])
        else:
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
            self.x_ = iso.X_thresholds_
            self.y_ = iso.y_thresholds_
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        raw = np.asarray(raw, dtype="float64")
        if self.method == "sigmoid":
            return expit(self.slope_ * raw + self.intercept_)
        return (1.0 - TIE_BREAK) * np.interp(raw, self.x_, self.y_) + TIE_BREAK * expit(raw)


class RiskModel(ClassifierMixin, BaseEstimator):
    """Probability of falling below the line within the horizon.

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to :class:`~sklearn.ensemble.HistGradientBoostingClassifier`.
    n_iter_no_change : int, default=20
        Early stopping patience on the validation slice.
    max_train_rows : int, optional
        Rows the trees learn on at most: every positive and a random share of the negatives,
        weighted up to stand for all of them. None: every row of the train slice.
    monotonic : dict, optional
        Feature name → -1, 0 or 1: the known direction of risk (1: more raises risk).
    calibration : {"isotonic", "sigmoid"}, default="isotonic"
        Calibrator used by ``predict_proba``; both are fitted, see ``calibrators_``.
    validation_months, calibration_months : int
        Latest months held out for early stopping and for calibration (calibration latest).
    refit : bool, default=False
        After early stopping has fixed the number of trees, fit the trees again on every row
        (train, validation and calibration months) with that many trees (see ``refit_trees``);
        those are the trees ``predict_proba`` and ``gbm_`` use. The calibrators stay fitted on
        out-of-time predictions of trees that did not learn the rows they predict.
    refit_trees : {"same", "rows"}, default="same"
        Trees of the refit (and of the calibration folds): as many as early stopping chose, or
        that number scaled by the rows learnt on against the train slice's (both counted
        before the ``max_train_rows`` sample).
    calibration_folds : int, default=1
        Blocks of ``calibration_months`` months, latest first, whose out-of-time predictions
        are pooled to fit the calibrators. The latest block is predicted by the early-stopped
        trees; each earlier block by trees fitted on every month before it (with the number of
        trees of ``refit_trees``). 1: the calibration slice alone. Blocks the months do not
        allow (too few months before them, or one class only) are left out;
        ``calibration_folds_`` says which were used.
    calibration_gap : int, optional
        The trees of an earlier calibration block learn months up to ``calibration_gap``
        months before the block's first month. None: the label horizon of ``config`` (as at
        scoring, where the latest labelled month lies a horizon before the scoring month), 1
        without one.
    validation_share, calibration_share : float
        Shares held out at random when ``fit`` gets no ``months``.
    scorecard_bins, scorecard_features : int
        Bins per feature and features kept by the points scorecard.
    reference_bins : int, default=10
        Quantile bins of the training distributions kept for drift monitoring.
    causes : dict, optional
        Feature name → cause code, shown in the scorecard table.
    config : dict, optional
        The run's configuration as a plain dict (label definition, lines, tiers …), kept as
        ``config_`` so that scoring uses the definitions the model was trained with.
    random_state : int, default=0

    Attributes
    ----------
    gbm_ : HistGradientBoostingClassifier
        The trees, fitted on columns in ``feature_names_in_`` order.
    calibrators_ : dict of str to Calibrator
        Both calibrators, fitted on the calibration slice.
    calibration_ : str
        The calibrator ``predict_proba`` uses.
    scorecard_ : Scorecard
    reference_ : dict
        ``{"features": {name: bins}, "score": bins, "rows": int}`` where ``bins`` is
        ``{"edges": [...], "shares": [...], "missing": float}``: ``edges`` are increasing bin
        edges starting at -inf and ending at +inf, ``shares[i]`` the share of non-missing
        training values in ``[edges[i], edges[i+1])`` (shares sum to 1), ``missing`` the share
        of missing values. Taken on the calibration slice, the months nearest to scoring.
        ``score`` bins the calibrated probability. When ``fit`` gets ``months``,
        ``calendar_months`` adds, per calendar month (``"01"`` … ``"12"``), the shares of all
        fitted rows of that month of the year in the same bins (see
        :func:`calendar_month_shares`): a month is then compared with the same season.
    slices_ : dict
        Months (``YYYY-MM``) and rows of the train, validation and calibration slices.
    calibration_folds_ : list of dict
        The blocks whose out-of-time predictions fitted the calibrators, latest first: months
        (``first``, ``last``), ``rows``, ``trees`` and ``learnt_to``, the last month the trees
        that predicted the block learnt from.
    refit_ : dict or None
        With ``refit``, the rows, trees and months (``first``, ``last``) of the refit.
    stopped_iter_ : int
        Trees early stopping kept; ``n_iter_`` is the number in ``gbm_`` (the refit's, with
        ``refit``).
    calibration_pool_ : dict
        ``rows`` and fall ``rate`` of the pooled out-of-time predictions the calibrators were
        fitted on, and ``predicted_<method>``, each calibrator's mean probability over them
        (equal to the rate: a calibrator keeps the mean of what it was fitted on).
    level_ : dict or None
        The shift of the calibrated log-odds of :meth:`follow_level`; None without one.
    config_ : dict
    horizon_months_ : int or None
    trained_at_ : str
        ISO date (UTC) of the fit.
    code_version_ : str
    summary_ : dict
        Headline backtest metrics; filled in by :func:`riskmodel.model.train`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"margin": rng.normal(size=3000), "shock": rng.integers(0, 2, 3000)})
    >>> y = (rng.random(3000) < 1 / (1 + np.exp(2 + 1.5 * X["margin"] - X["shock"]))).astype(int)
    >>> months = np.repeat(np.arange(10), 300)
    >>> model = RiskModel(max_iter=50, min_samples_leaf=20, monotonic={"margin": -1},
    ...                   validation_months=2, calibration_months=2).fit(X, y, months=months)
    >>> model.predict_proba(X).shape, model.level_
    ((3000, 2), None)
    >>> bool(model.predict_proba(X.iloc[[0]])[0, 1] > 0)
    True
    """

    def __init__(
        self,
        *,
        max_iter: int = 300,
        learning_rate: float = 0.06,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 80,
        l2_regularization: float = 1.0,
        n_iter_no_change: int = 20,
        max_train_rows: int | None = None,
        monotonic: dict | None = None,
        calibration: str = "isotonic",
        validation_months: int = 3,
        calibration_months: int = 4,
        refit: bool = False,
        refit_trees: str = "same",
        calibration_folds: int = 1,
        calibration_gap: int | None = None,
        validation_share: float = 0.15,
        calibration_share: float = 0.2,
        scorecard_bins: int = 5,
        scorecard_features: int = 12,
        reference_bins: int = 10,
        causes: dict | None = None,
        config: dict | None = None,
        random_state: int | None = 0,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.n_iter_no_change = n_iter_no_change
        self.max_train_rows = max_train_rows
        self.monotonic = monotonic
        self.calibration = calibration
        self.validation_months = validation_months
        self.calibration_months = calibration_months
        self.refit = refit
        self.refit_trees = refit_trees
        self.calibration_folds = calibration_folds
        self.calibration_gap = calibration_gap
        self.validation_share = validation_share
        self.calibration_share = calibration_share
        self.scorecard_bins = scorecard_bins
        self.scorecard_features = scorecard_features
        self.reference_bins = reference_bins
        self.causes = causes
        self.config = config
        self.random_state = random_state

    @classmethod
    def from_config(cls, config: Config, features: list[str] | None = None, **overrides):
        """A model with the hyperparameters, monotonic constraints and causes of ``config``.

        Parameters
        ----------
        config : Config
        features : list of str, optional
            Features the model will see; constraints and causes are restricted to them.
        **overrides
            Parameters that replace the configured ones (e.g. ``calibration``).
        """
        specs = config.features
        names = list(specs) if features is None else list(features)
        m = config.model
        params = {
            "max_iter": m.max_iter,
            "learning_rate": m.learning_rate,
            "max_leaf_nodes": m.max_leaf_nodes,
            "min_samples_leaf": m.min_samples_leaf,
            "l2_regularization": m.l2_regularization,
            "n_iter_no_change": m.n_iter_no_change,
            "max_train_rows": m.max_train_rows,
            "calibration": m.calibration if m.calibration != "auto" else "isotonic",
            "validation_months": m.validation_months,
            "calibration_months": m.calibration_months,
            "refit": m.refit,
            "refit_trees": m.refit_trees,
            "calibration_folds": m.calibration_folds,
            "calibration_gap": m.calibration_gap,
            "scorecard_bins": m.scorecard_bins,
            "scorecard_features": m.scorecard_features,
            "monotonic": {n: specs[n].monotonic for n in names if n in specs
                          and specs[n].monotonic != 0},
            "causes": {n: specs[n].cause for n in names if n in specs},
            "config": config.model_dump(mode="json"),
            "random_state": m.random_state,
        }
        params.update(overrides)
        return cls(**params)

    def fit(self, X, y, months=None) -> RiskModel:
        """Fit trees, calibrators, scorecard and reference distributions.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Numeric features; NaN where unknown.
        y : array-like of shape (n_samples,)
            Binary target.
        months : array-like of shape (n_samples,), optional
            Month of each row (``YYYY-MM`` or an integer month number). Without it there is no
            time to respect: the validation and calibration rows are a random draw of
            ``*_share`` of the rows, stratified by class.
        """
        if self.calibration not in CALIBRATION_METHODS:
            raise ValueError(f"Got calibration={self.calibration!r}, expected one of "
                             f"{', '.join(CALIBRATION_METHODS)}.")
        if self.refit_trees not in REFIT_TREES:
            raise ValueError(f"Got refit_trees={self.refit_trees!r}, expected one of "
                             f"{', '.join(REFIT_TREES)}.")
        if int(self.calibration_folds) < 1:
            raise ValueError(f"Got calibration_folds={self.calibration_folds!r}, expected an "
                             "integer of at least 1.")
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype="float64",
                             reset=True)
        self.classes_, y01 = binary_target(y)
        frame = pd.DataFrame(X, columns=self._names())
        part = self._slices(y01, months)
        for name in ("train", "validation", "calibration"):
            if len(np.unique(y01[part == name])) < 2:
                raise ValueError(f"The {name} slice holds one class only; expected both. "
                                 "Give more months or more positive rows.")
        train, val, cal = (part == "train"), (part == "validation"), (part == "calibration")

        self.gbm_ = self._trees(self.max_iter, early_stopping=True)
        rows, weight = self._sample(np.flatnonzero(train), y01)
        with one_pass_binning():
            self.gbm_.fit(learnable(frame.iloc[rows]), y01[rows], sample_weight=weight,
                          X_val=frame[val], y_val=y01[val])
        self.stopped_iter_ = int(self.gbm_.n_iter_)
        n_train = int(train.sum())

        # The calibrators learn from out-of-time predictions only: the early-stopped trees on
        # the calibration slice, and, with calibration_folds, earlier blocks each predicted by
        # trees fitted on the months before it.
        raw_cal = self.gbm_.decision_function(frame[cal])
        pooled_raw, pooled_y = [raw_cal], [y01[cal]]
        folds = [self.slices_["calibration"] | {"trees": self.stopped_iter_,
                                                "learnt_to": self.slices_["train"].get("last")}]
        if months is not None and int(self.calibration_folds) > 1:
            idx, as_label = month_numbers(months)
            for block, before in self._fold_blocks(idx, y01):
                trees = self._refit_size(before.size, n_train)
                gbm = self._fixed_trees(frame, y01, before, trees)
                pooled_raw.append(gbm.decision_function(frame.iloc[block]))
                pooled_y.append(y01[block])
                folds.append(_span(idx[block], as_label) | {
                    "trees": trees, "learnt_to": _span(idx[before], as_label)["last"]})
        raw_pool, y_pool = np.concatenate(pooled_raw), np.concatenate(pooled_y)
        self.calibrators_ = {m: Calibrator(m).fit(raw_pool, y_pool)
                             for m in CALIBRATION_METHODS}
        self.calibration_ = self.calibration
        self.calibration_folds_ = folds
        self.calibration_pool_ = {
            "rows": int(y_pool.size), "rate": float(y_pool.mean()),
            **{f"predicted_{m}": float(c.transform(raw_pool).mean())
               for m, c in self.calibrators_.items()}}

        if self.refit:
            every = np.arange(len(y01))
            trees = self._refit_size(every.size, n_train)
            self.gbm_ = self._fixed_trees(frame, y01, every, trees)
            self.refit_ = {"rows": int(every.size), "trees": trees}
            if "first" in self.slices_["train"]:
                self.refit_.update(first=self.slices_["train"]["first"],
                                   last=self.slices_["calibration"]["last"])
        else:
            self.refit_ = None
        self.n_iter_ = int(self.gbm_.n_iter_)

        self.scorecard_ = Scorecard(n_bins=self.scorecard_bins,
                                    max_features=self.scorecard_features,
                                    causes=self.causes).fit(frame[~cal], y01[~cal])
        self.scorecard_.recalibrate(frame[cal], y01[cal])

        score = self.calibrated(raw_cal)
        self.reference_ = {
            "features": {c: reference_bins(frame.loc[cal, c].to_numpy(), self.reference_bins)
                         for c in frame.columns},
            "score": reference_bins(score, self.reference_bins),
            "rows": int(cal.sum()),
        }
        if months is not None:
            self.reference_["calendar_months"] = calendar_month_shares(
                frame, month_numbers(months)[0], self.reference_["features"])
        self.config_ = dict(self.config) if self.config else {}
        self.horizon_months_ = self.config_.get("label", {}).get("horizon_months")
        self.trained_at_ = datetime.now(UTC).date().isoformat()
        self.code_version_ = code_version()
        self.summary_ = {}
        self.level_ = None
        return self

    def follow_level(self, recent: RecentFalls) -> RiskModel:
        """Shift the calibrated log-odds to the level of recent falls (:func:`follow_level`)."""
        return follow_level(self, recent)

    def _sample(self, rows: np.ndarray, y01: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """At most ``max_train_rows`` rows: every positive, a weighted random share of the rest.

        Falls are rare and consecutive months of a household say much the same, so thinning
        the negatives costs little and the weights keep the trees' log-odds on scale.
        """
        if self.max_train_rows is None or rows.size <= self.max_train_rows:
            return rows, None
        pos, neg = rows[y01[rows] == 1], rows[y01[rows] == 0]
        keep = max(self.max_train_rows - pos.size, min(neg.size, pos.size))
        rng = np.random.default_rng(self.random_state)
        kept = np.sort(np.concatenate([pos, rng.choice(neg, size=keep, replace=False)]))
        weight = np.where(y01[kept] == 1, 1.0, neg.size / keep)
        return kept, weight

    def _trees(self, max_iter: int, *, early_stopping: bool) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            max_iter=max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            monotonic_cst=self._monotonic_cst(),
            early_stopping=early_stopping,
            n_iter_no_change=self.n_iter_no_change,
            scoring="loss",
            random_state=self.random_state,
        )

    def _fixed_trees(self, frame: pd.DataFrame, y01: np.ndarray, rows: np.ndarray,
                     trees: int) -> HistGradientBoostingClassifier:
        """``trees`` trees, no early stopping, on ``rows`` (sampled as the train slice is)."""
        gbm = self._trees(trees, early_stopping=False)
        kept, weight = self._sample(rows, y01)
        with one_pass_binning():
            return gbm.fit(learnable(frame.iloc[kept]), y01[kept], sample_weight=weight)

    def _refit_size(self, rows: int, train_rows: int) -> int:
        """Trees for a fit on ``rows`` rows, from the early-stopped fit on ``train_rows``."""
        if self.refit_trees == "rows":
            return max(1, int(round(self.stopped_iter_ * rows / max(train_rows, 1))))
        return self.stopped_iter_

    def _gap(self) -> int:
        if self.calibration_gap is not None:
            return max(1, int(self.calibration_gap))
        horizon = (self.config or {}).get("label", {}).get("horizon_months")
        return max(1, int(horizon)) if horizon else 1

    def _fold_blocks(self, idx: np.ndarray, y01: np.ndarray):
        """The earlier calibration blocks: (rows of the block, rows of every month before it),
        latest first, while the months before hold the train slice's minimum and both classes
        are on each side."""
        distinct = np.unique(idx)
        c = self.calibration_months
        for k in range(1, int(self.calibration_folds)):
            first = len(distinct) - c * (k + 1)
            if first < 0:
                return
            lo, hi = distinct[first], distinct[first + c]
            # A fold's trees learn on at least validation_months + 1 months, as the train slice.
            if np.unique(idx[idx <= lo - self._gap()]).size < self.validation_months + 1:
                return
            block = np.flatnonzero((idx >= lo) & (idx < hi))
            before = np.flatnonzero(idx <= lo - self._gap())
            if (len(np.unique(y01[block])) < 2 or len(np.unique(y01[before])) < 2):
                return
            yield block, before

    def _names(self) -> list[str]:
        if hasattr(self, "feature_names_in_"):
            return [str(c) for c in self.feature_names_in_]
        return [f"x{i}" for i in range(self.n_features_in_)]

    def _monotonic_cst(self) -> np.ndarray | None:
        if not self.monotonic:
            return None
        names = self._names()
        unknown = sorted(set(self.monotonic) - set(names))
        if unknown:
            raise ValueError(f"monotonic names {unknown}, which are not among the features.")
        return np.array([int(self.monotonic.get(n, 0)) for n in names])

    def _slices(self, y01: np.ndarray, months) -> np.ndarray:
        n = len(y01)
        part = np.full(n, "train", dtype=object)
        if months is None:
            # No time to respect: the held-out rows are a random draw, stratified by class.
            rng = np.random.default_rng(self.random_state)
            for cls in np.unique(y01):
                rows = rng.permutation(np.flatnonzero(y01 == cls))
                n_cal = max(1, int(round(rows.size * self.calibration_share)))
                n_val = max(1, int(round(rows.size * self.validation_share)))
                part[rows[:n_cal]] = "calibration"
                part[rows[n_cal:n_cal + n_val]] = "validation"
            self.slices_ = {k: {"rows": int((part == k).sum())} for k in
                            ("train", "validation", "calibration")}
            return part
        idx, as_label = month_numbers(months)
        if len(idx) != n:
            raise ValueError(f"Got {len(idx)} months for {n} rows, expected one per row.")
        distinct = np.unique(idx)
        need = self.validation_months + self.calibration_months + 1
        if len(distinct) < need:
            raise ValueError(f"Got {len(distinct)} distinct months, expected at least {need} "
                             f"(validation_months + calibration_months + 1).")
        cal_from = distinct[-self.calibration_months]
        val_from = distinct[-self.calibration_months - self.validation_months]
        part[idx >= val_from] = "validation"
        part[idx >= cal_from] = "calibration"
        self.slices_ = {}
        for k in ("train", "validation", "calibration"):
            sel = idx[part == k]
            first, last = (int(sel.min()), int(sel.max())) if sel.size else (None, None)
            if as_label and sel.size:
                first, last = str(month_label(first)), str(month_label(last))
            self.slices_[k] = {"rows": int(sel.size), "first": first, "last": last}
        return part

    def _frame(self, X) -> pd.DataFrame:
        check_is_fitted(self, "gbm_")
        if isinstance(X, pd.DataFrame) and hasattr(self, "feature_names_in_"):
            missing = [c for c in self.feature_names_in_ if c not in X.columns]
            if not missing:
                X = X[list(self.feature_names_in_)]
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype="float64", reset=False)
        return pd.DataFrame(X, columns=self._names())

    def decision_function(self, X) -> np.ndarray:
        """Raw log-odds of the trees, before calibration (rows split over threads, see
        :func:`predict_in_threads`)."""
        frame = self._frame(X)
        return predict_in_threads(self.gbm_.decision_function, frame)

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated probabilities, shape (n_samples, 2); column 1 is the risk."""
        p = self.calibrated(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def calibrated(self, log_odds: np.ndarray) -> np.ndarray:
        """The risk of raw log-odds of the trees (:meth:`decision_function`), calibrated (and
        moved by ``level_``, see :meth:`follow_level`)."""
        risk = self.calibrators_[self.calibration_].transform(np.asarray(log_odds))
        level = getattr(self, "level_", None)
        return risk if level is None else shifted(risk, level["shift"])

    def predict(self, X) -> np.ndarray:
        positive = self.predict_proba(X)[:, 1] >= 0.5
        return self.classes_[positive.astype(int)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags


def _span(idx: np.ndarray, as_label: bool) -> dict:
    """Rows, first and last month of a block of month numbers."""
    first, last = int(idx.min()), int(idx.max())
    if as_label:
        first, last = str(month_label(first)), str(month_label(last))
    return {"rows": int(idx.size), "first": first, "last": last}


#: The distribution's name on package indexes (the import name is ``riskmodel``; the
#: distribution ``riskmodel`` on PyPI is an unrelated package).
DISTRIBUTION = "fanpin-riskmodel"


def code_version() -> str:
    """The package version, with the git commit when running from a checkout."""
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+g{commit}" if commit else version


__all__ = ["CALIBRATION_METHODS", "Calibrator", "RiskModel", "code_version", "model_inputs"]


def model_inputs(model, features: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``features`` the model learnt from (its ``feature_names_in_``), in its
    order; all of them for a model without the attribute.

    :func:`build_features` builds every feature of the config for every ledger, those of
    recorded incomes and warnings included; a model learns them only where the ledger holds
    their columns (:func:`ledger_features`), so a plain estimator must be given its own.
    """
    names = getattr(model, "feature_names_in_", None)
    return features if names is None else features[[str(c) for c in names]]
