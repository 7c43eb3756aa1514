"""Exact path-dependent TreeSHAP: equal to shap.TreeExplainer, additive, thread-safe, strict."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from threadpoolctl import threadpool_limits

from riskmodel.explain import TreeShapExplainer, tree_shap

shap = pytest.importorskip("shap")

TOL = 1e-9


def synthetic(n: int, n_features: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Numeric features with missing values that carry signal, a few coarse columns, a label."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    X[:, 3] = np.round(X[:, 3] * 2)  # few distinct values: many ties on thresholds
    logit = (
        X[:, 0]
        - 0.7 * X[:, 1] ** 2
        + np.sin(2 * X[:, 2])
        + 0.5 * X[:, 3] * X[:, 4]
        + 0.2 * X[:, 5:].sum(axis=1)
    )
    missing = rng.random((n, n_features)) < 0.08
    # Missingness of column 0 is informative, so some splits send NaN apart from all numbers.
    logit = np.where(missing[:, 0], 2.0, logit)
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    X[missing] = np.nan
    return X, y


def explain_rows(n_features: int = 8, n: int = 2000, seed: int = 1) -> np.ndarray:
    X, _ = synthetic(n, n_features, seed=seed)
    # Values beyond every threshold, including the infinities.
    X[:5, 0] = np.inf
    X[5:10, 0] = -np.inf
    X[10:15, 1] = 1e300
    X[15:20] = np.nan
    return X


def fit(X, y, **params) -> HistGradientBoostingClassifier:
    params = {"max_iter": 30, "max_leaf_nodes": 31, "early_stopping": False, "random_state": 0,
              **params}
    return HistGradientBoostingClassifier(**params).fit(X, y)


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    # Gradient boosting's OpenMP threads spin-wait; on a small, busy machine one thread is faster.
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return synthetic(3000)


@pytest.fixture(scope="module")
def model(data) -> HistGradientBoostingClassifier:
    X, y = data
    return fit(X, y, monotonic_cst=[1, -1, 0, 0, 0, 0, 0, 0])


def assert_equals_shap(model, X, **kwargs) -> np.ndarray:
    reference = shap.TreeExplainer(model)
    expected = reference.shap_values(X)
    values, base = tree_shap(model, X, **kwargs)
    assert values.dtype == np.float64
    assert values.shape == expected.shape
    np.testing.assert_allclose(values, expected, rtol=0, atol=TOL)
    assert base == pytest.approx(float(np.ravel(reference.expected_value)[0]), abs=TOL)
    raw = model.decision_function(X) if hasattr(model, "decision_function") else model.predict(X)
    np.testing.assert_allclose(values.sum(axis=1) + base, raw, rtol=0, atol=TOL)
    return values


def test_equals_shap_with_nans_and_monotonic_constraints(model):
    nodes = [p[0].nodes for p in model._predictors]
    # The data must reach the awkward split kinds, or the test proves less than it claims.
    assert any(np.isinf(n["num_threshold"][n["is_leaf"] == 0]).any() for n in nodes)
    assert any(n["missing_go_to_left"][n["is_leaf"] == 0].any() for n in nodes)
    assert_equals_shap(model, explain_rows())


def test_values_equal_to_thresholds(model):
    # x == threshold goes left; ties are where an off-by-one in the interval codes would show.
    X = explain_rows(n=600)
    rng = np.random.default_rng(3)
    nodes = np.concatenate([p[0].nodes for p in model._predictors])
    splits = nodes[(nodes["is_leaf"] == 0) & np.isfinite(nodes["num_threshold"])]
    chosen = splits[rng.integers(0, len(splits), size=len(X))]
    X[np.arange(len(X)), chosen["feature_idx"]] = chosen["num_threshold"]
    assert_equals_shap(model, X)


def test_deep_trees_with_long_paths():
    X, y = synthetic(3000, n_features=20, seed=2)
    model = fit(X, y, max_iter=2, max_leaf_nodes=None, min_samples_leaf=2, learning_rate=0.5)
    assert max(p[0].nodes["depth"].max() for p in model._predictors) >= 15
    explainer = TreeShapExplainer(model)
    # Some paths test too many features for a table and take the per-pattern route.
    assert explainer._deep
    X = explain_rows(20, n=1500)
    assert_equals_shap(model, X)
    # The per-pattern route sees each chunk's own patterns; the values must not depend on them.
    whole = explainer.shap_values(X)
    for chunk_rows in (1, 7, 55):
        np.testing.assert_array_equal(explainer.shap_values(X, chunk_rows=chunk_rows), whole)


def test_max_depth_limited(data):
    X, y = data
    model = fit(X, y, max_depth=3, max_leaf_nodes=None, max_iter=40)
    assert_equals_shap(model, explain_rows())


def test_early_stopping(data):
    X, y = data
    model = fit(X, y, early_stopping=True, validation_fraction=0.25, n_iter_no_change=3,
                max_iter=300, learning_rate=0.3)
    assert model.n_iter_ < 300
    assert_equals_shap(model, explain_rows())


def test_regressor_raw_output(data):
    X, y = data
    target = np.nan_to_num(X[:, 2]) + y
    model = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X, target)
    assert_equals_shap(model, explain_rows())


def test_jobs_and_chunks_do_not_change_values(model):
    X = explain_rows()
    explainer = TreeShapExplainer(model)
    one = explainer.shap_values(X, n_jobs=1, chunk_rows=300)
    np.testing.assert_array_equal(explainer.shap_values(X, n_jobs=2, chunk_rows=300), one)
    # Bit for bit: a household's reasons must not depend on the chunk it was scored in.
    np.testing.assert_array_equal(explainer.shap_values(X), one)
    np.testing.assert_array_equal(explainer.shap_values(X[:1]), one[:1])
    np.testing.assert_array_equal(explainer.shap_values(X[3:10]), one[3:10])
    assert explainer.shap_values(X[:0]).shape == (0, X.shape[1])


def test_dataframe_columns_matched_by_name(data):
    X, y = data
    columns = [f"f{i}" for i in range(X.shape[1])]
    model = fit(pd.DataFrame(X, columns=columns), y, max_iter=10)
    rows = pd.DataFrame(explain_rows(), columns=columns)
    values, base = tree_shap(model, rows)
    shuffled, _ = tree_shap(model, rows[columns[::-1]])
    np.testing.assert_array_equal(shuffled, values)
    np.testing.assert_allclose(
        values.sum(axis=1) + base, model.decision_function(rows), rtol=0, atol=TOL
    )
    with pytest.raises(ValueError, match="missing"):
        tree_shap(model, rows.drop(columns="f3"))


def test_pickled_explainer_gives_same_values(model):
    X = explain_rows(n=300)
    explainer = TreeShapExplainer(model)
    copy = pickle.loads(pickle.dumps(explainer))
    np.testing.assert_array_equal(copy.shap_values(X), explainer.shap_values(X))
    assert copy.expected_value == explainer.expected_value


def test_refuses_categorical_splits():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 5, 600), rng.normal(size=600)]).astype(float)
    y = (X[:, 0] % 2 == 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(X, y)
    with pytest.raises(ValueError, match="categorical"):
        TreeShapExplainer(model)


def test_refuses_multiclass(data):
    X, _ = data
    y = np.digitize(X[:, 2], [-0.5, 0.5])
    model = HistGradientBoostingClassifier(max_iter=3).fit(X, y)
    with pytest.raises(ValueError, match="binary"):
        tree_shap(model, X[:10])


def test_refuses_other_models_and_bad_shapes(data, model):
    X, y = data
    with pytest.raises(TypeError, match="HistGradientBoosting"):
        TreeShapExplainer(RandomForestClassifier(n_estimators=2).fit(np.nan_to_num(X), y))
    with pytest.raises(ValueError, match="not fitted"):
        TreeShapExplainer(HistGradientBoostingClassifier())
    with pytest.raises(ValueError, match="8 columns"):
        TreeShapExplainer(model).shap_values(X[:, :5])
