"""A points scorecard a village cadre can use on paper.

The Poverty Probability Index's idea, built from this ledger: each feature is cut into a few
quantile bins, each bin is worth a whole number of points, and the sum of the points (0–100,
higher is riskier) is read off a table as a probability of falling below the line. Points come
from a logistic regression on the bins' weights of evidence, rescaled so that the riskiest bin of
every feature together make 100; the table from points to probability is a logistic fit of the
outcome on the total points, so the points alone reproduce the probability.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted, validate_data

from ._labels import binary_target

MISSING = "missing"


class Scorecard(ClassifierMixin, BaseEstimator):
    """Binned features, logistic regression, whole points from 0 to 100.

    Parameters
    ----------
    n_bins : int, default=5
        Quantile bins per feature (fewer where values repeat); missing values get a bin too.
    max_features : int, default=12
        Features kept, highest information value first: a paper card stays short.
    C : float, default=1.0
        Inverse regularisation strength of the logistic regression.
    max_points : int, default=100
        Points of the riskiest possible household.
    causes : dict, optional
        Feature name → cause code, shown in :meth:`table`.

    Attributes
    ----------
    features_ : list of str
        Features on the card, in card order.
    edges_ : list of ndarray
        Inner bin edges of each card feature; bin ``i`` is ``[edges[i-1], edges[i])``.
    points_ : list of ndarray of int
        Points of each bin of each card feature, the missing bin last.
    information_value_ : dict of str to float
        Information value of every input feature.
    intercept_, slope_ : float
        Probability of a household with ``t`` points: ``expit(intercept_ + slope_ * t)``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"margin": rng.normal(size=2000), "noise": rng.normal(size=2000)})
    >>> y = (rng.random(2000) < 1 / (1 + np.exp(2 + 2 * X["margin"]))).astype(int)
    >>> card = Scorecard(n_bins=4).fit(X, y)
    >>> points = card.points(X)
    >>> bool(points.sum(axis=1).between(0, 100).all())
    True
    >>> lookup = card.lookup().set_index("points")["probability"]
    >>> np.allclose(lookup[points.sum(axis=1)].to_numpy(), card.predict_proba(X)[:, 1])
    True
    """

    def __init__(self, n_bins: int = 5, max_features: int = 12, C: float = 1.0,
                 max_points: int = 100, causes: dict | None = None):
        self.n_bins = n_bins
        self.max_features = max_features
        self.C = C
        self.max_points = max_points
        self.causes = causes

    def fit(self, X, y) -> Scorecard:
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype="float64")
        self.classes_, y01 = binary_target(y)
        if self.n_bins < 2 or self.max_features < 1 or self.max_points < 1:
            raise ValueError(f"Got n_bins={self.n_bins!r}, max_features={self.max_features!r}, "
                             f"max_points={self.max_points!r}; expected n_bins ≥ 2 and the others "
                             "≥ 1.")
        names = _names(self)
        quantiles = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        edges, woes, ivs = [], [], []
        pos_total, neg_total = y01.sum(), (1 - y01).sum()
        for j in range(X.shape[1]):
            col = X[:, j]
            known = col[~np.isnan(col)]
            inner = np.unique(np.quantile(known, quantiles)) if known.size else np.empty(0)
            # An edge at the minimum would open a bin nobody falls in (e.g. "< 0" of a count).
            inner = inner[inner > known.min()] if known.size else inner
            codes = _bin_codes(col, inner)
            n_codes = inner.size + 2
            pos = np.bincount(codes, weights=y01, minlength=n_codes)
            neg = np.bincount(codes, minlength=n_codes) - pos
            woe = (np.log((pos + 0.5) / (pos_total + 0.5 * n_codes))
                   - np.log((neg + 0.5) / (neg_total + 0.5 * n_codes)))
            woe[(pos + neg) == 0] = 0.0
            ivs.append(float(np.sum((pos / pos_total - neg / neg_total) * woe)))
            edges.append(inner)
            woes.append(woe)
        self.information_value_ = dict(zip(names, ivs, strict=True))
        order = np.argsort(-np.asarray(ivs), kind="stable")[: self.max_features]
        self.feature_index_ = np.sort(order)
        self.features_ = [names[j] for j in self.feature_index_]
        self.edges_ = [edges[j] for j in self.feature_index_]

        design = np.column_stack([woes[j][_bin_codes(X[:, j], edges[j])]
                                  for j in self.feature_index_])
        lr = LogisticRegression(C=self.C, max_iter=1000).fit(design, y01)
        contrib = [lr.coef_[0, k] * woes[j] for k, j in enumerate(self.feature_index_)]
        shifted = [c - c.min() for c in contrib]
        tops = np.array([s.max() for s in shifted])
        allot = _largest_remainder(tops, self.max_points)
        self.points_ = [
            np.rint(s / top * a).astype("int64") if top > 0 else np.zeros(s.size, dtype="int64")
            for s, top, a in zip(shifted, tops, allot, strict=True)
        ]
        self._fit_lookup(self._total(X), y01)
        return self

    def recalibrate(self, X, y) -> Scorecard:
        """Refit only the table from points to probability, e.g. on a later time slice."""
        check_is_fitted(self, "points_")
        y01 = np.searchsorted(self.classes_, np.asarray(y))
        self._fit_lookup(self._total(self._array(X)), y01)
        return self

    def _fit_lookup(self, total: np.ndarray, y01: np.ndarray) -> None:
        if np.ptp(total) == 0:
            rate = float(np.clip(y01.mean(), 1e-6, 1 - 1e-6))
            self.slope_, self.intercept_ = 0.0, float(np.log(rate / (1 - rate)))
            return
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(total.reshape(-1, 1), y01)
        self.slope_ = float(lr.coef_[0, 0])
        self.intercept_ = float(lr.intercept_[0])

    def _array(self, X) -> np.ndarray:
        check_is_fitted(self, "points_")
        if isinstance(X, pd.DataFrame) and hasattr(self, "feature_names_in_"):
            if all(c in X.columns for c in self.feature_names_in_):
                X = X[list(self.feature_names_in_)]
        return validate_data(self, X, ensure_all_finite="allow-nan", dtype="float64",
                             reset=False)

    def _point_matrix(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([
            pts[_bin_codes(X[:, j], edges)]
            for j, edges, pts in zip(self.feature_index_, self.edges_, self.points_, strict=True)
        ])

    def _total(self, X: np.ndarray) -> np.ndarray:
        return self._point_matrix(X).sum(axis=1)

    def points(self, X) -> pd.DataFrame:
        """Points per card feature for each row; the row sums are the total points (0–100)."""
        arr = self._array(X)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(self._point_matrix(arr), columns=self.features_, index=index)

    def predict_proba(self, X) -> np.ndarray:
        p = self.probability(self._total(self._array(X)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        positive = self.predict_proba(X)[:, 1] >= 0.5
        return self.classes_[positive.astype(int)]

    def probability(self, total_points) -> np.ndarray:
        """Probability of a household with the given total points."""
        check_is_fitted(self, "points_")
        return expit(self.intercept_ + self.slope_ * np.asarray(total_points, dtype="float64"))

    def table(self) -> pd.DataFrame:
        """The card: one row per feature and bin with its points."""
        check_is_fitted(self, "points_")
        causes = self.causes or {}
        rows = []
        for name, edges, pts in zip(self.features_, self.edges_, self.points_, strict=True):
            bounds = np.concatenate([[-np.inf], edges, [np.inf]])
            for b in range(edges.size + 1):
                lo, hi = bounds[b], bounds[b + 1]
                rows.append((name, causes.get(name, ""), _bin_text(lo, hi), lo, hi, int(pts[b])))
            rows.append((name, causes.get(name, ""), MISSING, np.nan, np.nan, int(pts[-1])))
        return pd.DataFrame(rows, columns=["feature", "cause", "bin", "lower", "upper", "points"])

    def lookup(self) -> pd.DataFrame:
        """Total points 0…``max_points`` and the probability each stands for."""
        total = np.arange(self.max_points + 1)
        return pd.DataFrame({"points": total, "probability": self.probability(total)})

    def to_html(self) -> str:
        """The card and the look-up table as a standalone HTML page, ready to print."""
        card = self.table().drop(columns=["lower", "upper"])
        look = self.lookup()
        look["probability"] = (look["probability"] * 100).map("{:.1f}%".format)
        return (
            "<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'>"
            "<title>返贫风险评分卡 Risk scorecard</title>"
            "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #999;padding:2px 8px}</style></head><body>"
            "<h1>返贫风险评分卡 Risk scorecard</h1>"
            f"<p>{html.escape('对每一项找到本户所在的区间并加总分数，再查下表得到风险概率。')}<br>"
            "For each feature find the household's bin, add up the points, and read the "
            "probability off the second table.</p>"
            + card.to_html(index=False, na_rep="")
            + look.to_html(index=False)
            + "</body></html>"
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags


def _names(est) -> list[str]:
    if hasattr(est, "feature_names_in_"):
        return [str(c) for c in est.feature_names_in_]
    return [f"x{i}" for i in range(est.n_features_in_)]


def _bin_codes(col: np.ndarray, inner: np.ndarray) -> np.ndarray:
    codes = np.searchsorted(inner, col, side="right")
    return np.where(np.isnan(col), inner.size + 1, codes)


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    if weights.sum() <= 0:
        return np.zeros(weights.size, dtype="int64")
    quota = weights / weights.sum() * total
    whole = np.floor(quota).astype("int64")
    order = np.argsort(-(quota - whole), kind="stable")
    whole[order[: total - whole.sum()]] += 1
    return whole


def _bin_text(lo: float, hi: float) -> str:
    if np.isneginf(lo):
        return f"< {hi:.4g}"
    if np.isposinf(hi):
        return f"≥ {lo:.4g}"
    return f"[{lo:.4g}, {hi:.4g})"
