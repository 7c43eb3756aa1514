"""Explanations as shap.Explanation: the project's TreeSHAP, per feature and per cause."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shap
from conftest import small_model
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

import riskmodel
from riskmodel import ConfigError, load_config
from riskmodel.explain import (
    cause_contributions,
    feature_contributions,
    shap_by_cause,
    shap_explanation,
)

CONFIG = load_config()
CODES = [c.code for c in CONFIG.causes]
TOL = 1e-9  # as tests/test_treeshap.py
# Model features of several causes, so that the per-cause sums group more than one feature.
COLUMNS = ["medical_pc_12m", "chronic_ill", "disabled", "students_noncompulsory",
           "income_margin_12m", "income_ratio_6m", "labor_ratio"]


@pytest.fixture(scope="module")
def numeric():
    """A small gradient-boosting model on numeric inputs with missing values."""
    rng = np.random.default_rng(3)
    n = 3000
    X = pd.DataFrame(rng.normal(size=(n, len(COLUMNS))), columns=COLUMNS)
    X["students_noncompulsory"] = rng.integers(0, 4, n).astype("float64")  # ties on thresholds
    logit = (X["medical_pc_12m"] - X["income_margin_12m"] + 0.5 * X["students_noncompulsory"]
             - 0.7 * X["labor_ratio"] ** 2 + 0.5 * X["chronic_ill"] * X["disabled"])
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    X = X.mask(rng.random(X.shape) < 0.08)
    with threadpool_limits(1):
        gbm = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15,
                                             early_stopping=False, random_state=0).fit(X, y)
    return X, gbm


def test_values_are_the_projects_treeshap_and_shaps_own(numeric):
    X, gbm = numeric
    view = shap_explanation(gbm, X)
    ours, base = feature_contributions(gbm, X)
    np.testing.assert_array_equal(view.values, ours.to_numpy())
    np.testing.assert_array_equal(view.base_values, np.full(len(X), base))
    np.testing.assert_array_equal(view.data, X.to_numpy())
    assert view.feature_names == COLUMNS

    reference = shap.TreeExplainer(gbm)
    np.testing.assert_allclose(view.values, reference.shap_values(X), rtol=0, atol=TOL)
    assert base == pytest.approx(float(np.ravel(reference.expected_value)[0]), abs=TOL)
    np.testing.assert_allclose(view.values.sum(axis=1) + view.base_values,
                               gbm.decision_function(X), rtol=0, atol=TOL)


def test_cause_values_sum_the_feature_values_by_the_configs_causes(numeric):
    X, gbm = numeric
    view = shap_explanation(gbm, X)
    causes = shap_by_cause(view, CONFIG)
    assert causes.feature_names == CODES
    assert causes.values.shape == (len(X), len(CODES)) and causes.data is None
    np.testing.assert_array_equal(causes.base_values, view.base_values)
    np.testing.assert_allclose(causes.values.sum(axis=1), view.values.sum(axis=1),
                               rtol=0, atol=1e-12)
    # Each cause holds exactly its own features' values.
    owner = {name: CONFIG.features[name].cause for name in COLUMNS}
    for code in CODES:
        mine = [i for i, name in enumerate(COLUMNS) if owner[name] == code]
        np.testing.assert_allclose(causes.values[:, CODES.index(code)],
                                   view.values[:, mine].sum(axis=1), rtol=0, atol=1e-12)
    assert len(set(owner.values())) >= 4
    # The same numbers as the project's per-cause contributions without a ledger.
    expected, _ = cause_contributions(gbm, X, CONFIG)
    np.testing.assert_array_equal(causes.values, expected.to_numpy())
    # One household alone gives its row of the whole.
    one = shap_by_cause(view[17], CONFIG)
    np.testing.assert_array_equal(one.values, causes.values[17])
    assert float(one.base_values) == float(causes.base_values[17])


def test_a_fitted_risk_model_is_explained_through_its_trees():
    _, features, model = small_model(seed=11, households=300, months=30)
    rows = features.iloc[:500]
    view = riskmodel.shap_explanation(model, rows)
    assert view.feature_names == list(model.gbm_.feature_names_in_)
    np.testing.assert_allclose(view.values.sum(axis=1) + view.base_values,
                               model.decision_function(rows), rtol=0, atol=1e-6)
    causes = riskmodel.shap_by_cause(view)
    expected, _ = cause_contributions(model, rows, CONFIG)
    np.testing.assert_array_equal(causes.values, expected.to_numpy())


def test_shaps_own_plots_draw_them(numeric):
    X, gbm = numeric
    view = shap_explanation(gbm, X.iloc[:400])
    causes = shap_by_cause(view)
    assert matplotlib.get_backend().lower() == "agg"  # tests/conftest.py sets MPLBACKEND
    try:
        for explanation in (view, causes):
            for draw in (lambda e: shap.plots.waterfall(e[0], show=False),
                         lambda e: shap.plots.beeswarm(e, show=False),
                         lambda e: shap.plots.bar(e, show=False)):
                plt.figure()
                draw(explanation)
                figure = plt.gcf()
                assert figure.axes and any(ax.has_data() for ax in figure.axes)
                figure.canvas.draw()
                plt.close(figure)
    finally:
        plt.close("all")


def test_a_feature_without_a_cause_is_a_config_error(numeric):
    X, gbm = numeric
    view = shap_explanation(gbm, X.iloc[:10])
    view.feature_names = [*COLUMNS[:-1], "not_a_feature"]
    with pytest.raises(ConfigError, match="not_a_feature"):
        shap_by_cause(view)
