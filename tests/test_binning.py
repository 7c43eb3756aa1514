"""The trees' weighted bin thresholds in one pass: the same thresholds, trees and predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting import binning as sk_binning

from riskmodel.model import RiskModel
from riskmodel.model._binning import (
    _ORIGINAL,
    LOOPS_OVER_QUANTILES,
    learnable,
    one_pass_binning,
    weighted_thresholds,
)


def _column(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "normal":
        return rng.normal(size=n)
    if kind == "few":  # fewer distinct values than bins: midpoints
        return rng.integers(0, 40, size=n).astype(float)
    if kind == "many ties":  # more distinct values than bins, each repeated
        return rng.integers(0, 900, size=n).astype(float)
    if kind == "rounded":
        return np.round(rng.exponential(size=n), 2)
    if kind == "constant":
        return np.full(n, 3.0)
    return rng.integers(0, 256, size=n).astype(float)  # exactly around max_bins


# scikit-learn's own weighted thresholds, the reference, exist from 1.9 (the release line the
# swap is made for; constraints.txt pins one).
weighted_binning = pytest.mark.skipif(
    not LOOPS_OVER_QUANTILES, reason="this scikit-learn does not weight its bins one quantile "
    "at a time, and no swap is made")


@weighted_binning
@pytest.mark.parametrize("kind", ["normal", "few", "many ties", "rounded", "constant", "edge"])
@pytest.mark.parametrize("missing", [0.0, 0.2])
@pytest.mark.parametrize("zero_weights", [False, True])
def test_thresholds_equal_scikit_learns_to_the_bit(kind, missing, zero_weights):
    rng = np.random.default_rng(len(kind) + int(missing * 10) + zero_weights)
    n = 30_000
    x = _column(kind, n, rng)
    x[rng.random(n) < missing] = np.nan
    # As the model weights its rows: every positive at 1, the thinned negatives above 1.
    w = np.where(rng.random(n) < 0.05, 1.0, 6.1379)
    if zero_weights:
        w[rng.random(n) < 0.02] = 0.0
    for max_bins in (255, 16):
        ours = weighted_thresholds(x, max_bins, w)
        theirs = _ORIGINAL(x, max_bins, w)
        assert ours.dtype == theirs.dtype
        assert ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)


@weighted_binning
def test_unweighted_thresholds_are_scikit_learns_own():
    x = np.random.default_rng(0).normal(size=5_000)
    assert np.array_equal(weighted_thresholds(x, 255), _ORIGINAL(x, 255))


def _weighted_fit(X, y, w):
    gbm = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, random_state=0,
                                         early_stopping=False)
    return gbm.fit(X, y, sample_weight=w)


def test_trees_fitted_in_one_pass_are_the_same_trees():
    rng = np.random.default_rng(3)
    n = 8_000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.exponential(size=n),
                      "c": rng.integers(0, 700, size=n).astype(float)})
    X.loc[rng.random(n) < 0.1, "b"] = np.nan
    y = (X["a"] + 0.002 * X["c"] + rng.normal(size=n) > 1.5).astype(int)
    w = np.where(y == 1, 1.0, 4.25)

    before = _weighted_fit(X, y, w)
    with one_pass_binning():
        assert sk_binning._find_binning_thresholds is (
            weighted_thresholds if LOOPS_OVER_QUANTILES else _ORIGINAL)
        after = _weighted_fit(X, y, w)
    assert sk_binning._find_binning_thresholds is _ORIGINAL

    for old, new in zip(before._bin_mapper.bin_thresholds_, after._bin_mapper.bin_thresholds_,
                        strict=True):
        assert np.array_equal(old, new)
    assert np.array_equal(before.decision_function(X), after.decision_function(X))


def test_blocks_nest_and_the_swap_is_undone_even_after_an_error():
    with one_pass_binning():
        with one_pass_binning():
            pass
        # The outer block still holds the swap.
        assert sk_binning._find_binning_thresholds is (
            weighted_thresholds if LOOPS_OVER_QUANTILES else _ORIGINAL)
    assert sk_binning._find_binning_thresholds is _ORIGINAL
    with pytest.raises(RuntimeError), one_pass_binning():
        raise RuntimeError("a fit that fails")
    assert sk_binning._find_binning_thresholds is _ORIGINAL


def test_the_risk_model_leaves_scikit_learn_as_it_found_it():
    rng = np.random.default_rng(5)
    months = np.repeat([f"2024-{m:02d}" for m in range(1, 13)], 400)
    X = pd.DataFrame({"a": rng.normal(size=months.size), "b": rng.normal(size=months.size)})
    y = (X["a"] + rng.normal(size=months.size) > 2.0).astype(int).to_numpy()
    model = RiskModel(max_iter=20, validation_months=2, calibration_months=2,
                      max_train_rows=1_000).fit(X, y, months=months)
    assert model.n_iter_ >= 1
    assert sk_binning._find_binning_thresholds is _ORIGINAL


def test_a_feature_unknown_on_every_row_is_set_to_zero():
    rows = pd.DataFrame({"a": [1.0, np.nan], "b": [np.nan, np.nan]})
    out = learnable(rows)
    assert out["b"].tolist() == [0.0, 0.0]
    assert out["a"].isna().tolist() == [False, True]
    known = rows[["a"]]
    assert learnable(known) is known
