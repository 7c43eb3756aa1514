"""Today's rule-based screening, as a baseline estimator, and the hard triggers.

County offices screen with rules: income under 1.5× the line, a medical bill over a trigger, a
recent shock. :class:`RuleBaseline` is that screening on the features frame, so the model can be
compared with it for the same number of visits. :func:`rule_triggers` reports, per row, which
baseline rules and which hard triggers (应纳尽纳: a household meeting one is always listed)
fired; the thresholds come from the config's ``baseline`` and ``triggers`` blocks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ..config import Config
from ..ledger import EVENTS
from ._labels import binary_target

BASELINE_RULES = ("income_low", "medical_oop", "recent_shock")
HARD_TRIGGERS = ("income_below_line", "medical_oop_12m", "housing_unsafe", "dropout",
                 "water_unsafe")
SHOCK_FEATURES = [f"months_since_{ev}" for ev in EVENTS]
RULE_FEATURES = ["income_ratio_12m", "medical_pc_12m", "members", *SHOCK_FEATURES]


def _col(X: pd.DataFrame, name: str) -> np.ndarray:
    if name not in X.columns:
        raise KeyError(f"The features frame lacks {name!r}, which the screening rules read; "
                       "expected the output of riskmodel.model.build_features.")
    return X[name].to_numpy(dtype="float64", na_value=np.nan)


def _income_ratio(X: pd.DataFrame) -> np.ndarray:
    """Trailing-12-month income against the line; where unknown and the features carry it, the
    income as recorded at the last verification against the line (``recorded_income_ratio``)."""
    ratio = _col(X, "income_ratio_12m")
    if "recorded_income_ratio" in X.columns:
        recorded = X["recorded_income_ratio"].to_numpy(dtype="float64", na_value=np.nan)
        ratio = np.where(np.isnan(ratio), recorded, ratio)
    return ratio


def _medical_12m(X: pd.DataFrame) -> np.ndarray:
    """The household's medical out-of-pocket spending over 12 months (features hold it per
    capita per year; the trigger is on the household's bill); where unknown and the features
    carry it, the annual figure as recorded at the last verification (``recorded_medical_pc``)."""
    per_capita = _col(X, "medical_pc_12m")
    if "recorded_medical_pc" in X.columns:
        recorded = X["recorded_medical_pc"].to_numpy(dtype="float64", na_value=np.nan)
        per_capita = np.where(np.isnan(per_capita), recorded, per_capita)
    return per_capita * _col(X, "members")


def _recent_shock(X: pd.DataFrame, months: int) -> np.ndarray:
    since = np.column_stack([_col(X, c) for c in SHOCK_FEATURES])
    return (since < months).any(axis=1)


class RuleBaseline(ClassifierMixin, BaseEstimator):
    """Rule-based screening: income under ``income_ratio``× the line, a large medical bill, or
    a recent shock.

    A household is flagged when any rule fires. For caseload comparisons households are ranked
    by how many rules fired; that is all today's screening knows, so households with as many
    rules fired are in no order among themselves. With ``rank_by_income`` they are ordered by
    lower income against the line: the strongest ranking built from the rules' own figures.
    ``predict_proba`` is the training rate of the household's combination of rules, so the
    baseline's probabilities can be scored like the model's.

    Parameters
    ----------
    income_ratio : float, default=1.5
        Flag when trailing-12-month per-capita disposable income is under this multiple of the
        line (``income_ratio_12m``).
    medical_oop_12m : float, default=20000
        Flag when the household's medical out-of-pocket spending over 12 months exceeds this.
    shock_months : int, default=3
        Flag when any ledger event happened in the last ``shock_months`` months (this month
        included).
    rank_by_income : bool, default=False
        Break ties in ``decision_function`` by lower ``income_ratio_12m``.

    Attributes
    ----------
    rates_ : ndarray of shape (8,)
        Training rate of each combination of rules (bit 0 income, 1 medical, 2 shock).
    classes_ : ndarray

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> X = pd.DataFrame({"income_ratio_12m": [1.2, 3.0, 3.0], "medical_pc_12m": [0, 9000, 0],
    ...                   "members": [4, 4, 4]})
    >>> for c in SHOCK_FEATURES:
    ...     X[c] = 24.0
    >>> RuleBaseline().triggers(X).to_numpy().tolist()
    [[True, False, False], [False, True, False], [False, False, False]]
    """

    def __init__(self, income_ratio: float = 1.5, medical_oop_12m: float = 20000.0,
                 shock_months: int = 3, rank_by_income: bool = False):
        self.income_ratio = income_ratio
        self.medical_oop_12m = medical_oop_12m
        self.shock_months = shock_months
        self.rank_by_income = rank_by_income

    @classmethod
    def from_config(cls, config: Config, rank_by_income: bool = False) -> RuleBaseline:
        """The screening of the config's ``baseline`` block."""
        b = config.baseline
        return cls(income_ratio=b.income_ratio, medical_oop_12m=b.medical_oop_12m,
                   shock_months=b.shock_months, rank_by_income=rank_by_income)

    def triggers(self, X: pd.DataFrame) -> pd.DataFrame:
        """Which baseline rules fire for each row (columns :data:`BASELINE_RULES`)."""
        ratio = _income_ratio(X)
        return pd.DataFrame({
            "income_low": ratio < self.income_ratio,
            "medical_oop": _medical_12m(X) > self.medical_oop_12m,
            "recent_shock": _recent_shock(X, self.shock_months),
        }, index=X.index)

    def fit(self, X: pd.DataFrame, y) -> RuleBaseline:
        y = np.asarray(y)
        self.classes_, y01 = binary_target(y)
        if len(y01) != len(X):
            raise ValueError(f"Got {len(X)} rows and {len(y01)} targets, expected as many.")
        combo = self._combination(X)
        n = np.bincount(combo, minlength=8)
        pos = np.bincount(combo, weights=y01, minlength=8)
        prior = y01.mean()
        # A combination seen rarely borrows strength from the overall rate.
        self.rates_ = (pos + 10 * prior) / (n + 10)
        self.n_features_in_ = X.shape[1]
        return self

    def _combination(self, X: pd.DataFrame) -> np.ndarray:
        fired = self.triggers(X).to_numpy()
        return fired @ np.array([1, 2, 4])

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Ranking score: the number of rules fired (plus an income tie-break, if asked)."""
        fired = self.triggers(X).to_numpy().sum(axis=1).astype("float64")
        if not self.rank_by_income:
            return fired
        ratio = np.nan_to_num(_income_ratio(X), nan=np.inf)
        return fired + 0.99 / (1.0 + np.clip(ratio, 0.0, None))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "rates_")
        p = self.rates_[self._combination(X)]
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Flagged (the positive class) when any rule fires."""
        check_is_fitted(self, "rates_")
        return self.classes_[self.triggers(X).to_numpy().any(axis=1).astype(int)]


def rule_triggers(features: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Which screening rules and hard triggers fire for each row.

    Parameters
    ----------
    features : DataFrame
        Output of :func:`riskmodel.model.build_features`.
    config : Config
        ``baseline`` gives the screening rules; ``triggers`` the hard triggers, a disabled
        (``false``) trigger is left out.

    Returns
    -------
    DataFrame
        Boolean columns, the baseline rules (:data:`BASELINE_RULES`) then the enabled hard
        triggers (:data:`HARD_TRIGGERS`), with the features' index.
    """
    out = RuleBaseline.from_config(config).triggers(features)
    t = config.triggers
    hard = {
        "income_below_line": (t.income_below_line, lambda: _income_ratio(features) < 1),
        "medical_oop_12m": (True, lambda: _medical_12m(features) > t.medical_oop_12m),
        "housing_unsafe": (t.housing_unsafe, lambda: _col(features, "housing_safe") == 0),
        "dropout": (t.dropout, lambda: _col(features, "dropouts") > 0),
        "water_unsafe": (t.water_unsafe, lambda: _col(features, "water_safe") == 0),
    }
    for name, (enabled, fired) in hard.items():
        if enabled:
            out[name] = fired()
    return out


def format_triggers(fired: pd.DataFrame) -> pd.Series:
    """The names of the fired columns of each row joined by ``;`` (empty when none fired)."""
    names = np.asarray(fired.columns, dtype=object)
    flags = fired.to_numpy(dtype=bool)
    if flags.size and flags.shape[1] <= 30:
        # Few columns, few combinations of them: each combination is spelled once.
        combination = flags @ (1 << np.arange(flags.shape[1]))
        seen, at = np.unique(combination, return_inverse=True)
        texts = np.array(["".join(n + ";" for j, n in enumerate(names) if c >> j & 1).rstrip(";")
                          for c in seen.tolist()], dtype=object)
        return pd.Series(texts[at], index=fired.index, dtype="string")
    marks = np.where(flags, names + ";", "")
    joined = pd.Series(marks.sum(axis=1) if marks.size else np.full(len(fired), ""),
                       index=fired.index, dtype="string")
    return joined.str.rstrip(";")
