"""Weighted bin thresholds of the histogram trees, found in one pass per feature.

Before its trees grow, scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier`
cuts every feature into at most 255 bins at quantiles of the training rows. Since scikit-learn
1.9 those quantiles are weighted when the fit is given ``sample_weight`` and holds fewer than
200,000 rows — exactly the model's case: every positive and a weighted share of the negatives,
120,000 rows by default. The 1.9 releases find the 254 weighted quantiles of a feature by 254
separate calls of ``sklearn.utils.stats._weighted_percentile``, each of which sorts the column
again; on 120,000 rows × 144 features that is about 20 s of CPU per fit, more than a third of
``riskmodel train`` (scikit-learn issue #34304, fixed for a later release by pull request
#34248).

:func:`one_pass_binning` swaps in, while the model's trees are fitted, a function that asks
``_weighted_percentile`` for all 254 quantiles in one call. That call sorts once and then runs,
for each quantile, the very arithmetic the separate calls run, so the thresholds — and so the
trees, their predictions and their explanations — are the same to the last bit
(``tests/test_binning.py`` checks it against scikit-learn's own function). The swap is made
only for 1.9, the release line known to loop (1.8 and earlier do not weight the bins at all);
unweighted fits, and any other release, are left exactly as they are.
:func:`learnable` gives the binning rows it can take.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble._hist_gradient_boosting import binning as _sk_binning
from sklearn.utils.stats import _weighted_percentile

_ORIGINAL = _sk_binning._find_binning_thresholds
_LOCK = threading.Lock()
_ACTIVE = 0


def _release(version: str) -> tuple[int, int]:
    major, minor, *_ = (version.split(".") + ["0", "0"])
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


#: Whether this scikit-learn finds weighted thresholds one quantile at a time (1.9).
LOOPS_OVER_QUANTILES = (1, 9) <= _release(sklearn.__version__) < (1, 10)


def weighted_thresholds(col_data: np.ndarray, max_bins: int,
                        sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Bin thresholds of one feature, as scikit-learn's ``_find_binning_thresholds`` gives them.

    The weighted quantiles are asked for together; the rest — values missing or of zero weight
    left out, the midpoints between distinct values when there are at most ``max_bins`` of
    them, repeated thresholds merged, no threshold above ``ALMOST_INF`` — follows scikit-learn
    step for step. Without weights scikit-learn's own function answers.

    Parameters
    ----------
    col_data : ndarray of shape (n_samples,)
        One feature's values; NaN where missing.
    max_bins : int
        Bins for the values that are not missing.
    sample_weight : ndarray of shape (n_samples,), optional

    Returns
    -------
    ndarray
        Increasing thresholds: a value ``x`` falls in bin ``i`` when
        ``thresholds[i - 1] < x <= thresholds[i]``.

    Examples
    --------
    >>> x = np.arange(1000, dtype=float)
    >>> w = np.where(x < 500, 3.0, 1.0)
    >>> weighted_thresholds(x, 4, w).tolist()
    [166.0, 333.0, 499.5]
    """
    if sample_weight is None:
        return _ORIGINAL(col_data, max_bins, None)
    kept = ~np.isnan(col_data) & (sample_weight != 0)
    values, weights = col_data[kept], sample_weight[kept]
    order = np.argsort(values)
    values, weights = values[order], weights[order]
    distinct = np.unique(values).astype(_sk_binning.X_DTYPE)
    if len(distinct) == 1:
        return np.asarray([])
    if len(distinct) <= max_bins:
        thresholds = (distinct[:-1] + distinct[1:]) / 2
    else:
        ranks = np.linspace(0, 100, num=max_bins + 1)[1:-1]
        thresholds = np.asarray(
            _weighted_percentile(values, weights, ranks, average=True), dtype=np.float64)
    merged = np.unique(thresholds)
    if merged.shape[0] != thresholds.shape[0]:
        thresholds = merged
    np.clip(thresholds, a_min=None, a_max=_sk_binning.ALMOST_INF, out=thresholds)
    return thresholds


def learnable(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with every feature unknown on all of them set to 0.

    A feature unknown on every training row carries no information, and the trees' binning
    cannot handle it: a constant is never split on, so it stays unused.
    """
    empty = rows.columns[rows.isna().all().to_numpy()]
    return rows.assign(**dict.fromkeys(empty, 0.0)) if len(empty) else rows


@contextmanager
def one_pass_binning():
    """Within this block, histogram trees find weighted bin thresholds in one pass per feature.

    Nested and concurrent blocks share one swap, undone when the last of them ends. Outside
    the scikit-learn releases that loop over quantiles this does nothing.
    """
    global _ACTIVE
    if not LOOPS_OVER_QUANTILES:
        yield
        return
    with _LOCK:
        if _ACTIVE == 0:
            _sk_binning._find_binning_thresholds = weighted_thresholds
        _ACTIVE += 1
    try:
        yield
    finally:
        with _LOCK:
            _ACTIVE -= 1
            if _ACTIVE == 0:
                _sk_binning._find_binning_thresholds = _ORIGINAL
