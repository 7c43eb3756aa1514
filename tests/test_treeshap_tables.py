"""The TreeSHAP leaf tables: made for many leaves at once, each as it would be alone."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from riskmodel.explain import TreeShapExplainer
from riskmodel.explain._leafshares import _leaf_contributions, _leaf_tables


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_leaves_made_together_equal_each_made_alone_to_the_bit(k):
    rng = np.random.default_rng(k)
    zero_fractions = rng.uniform(0.05, 1.0, size=(7, k))
    values = rng.normal(size=7)
    together = _leaf_tables(zero_fractions, values)
    assert together.shape == (7, k, 2**k)
    for leaf in range(7):
        alone = _leaf_tables(zero_fractions[leaf:leaf + 1], values[leaf:leaf + 1])[0]
        assert together[leaf].tobytes() == alone.tobytes()


@pytest.mark.parametrize("k", [1, 3, 6])
def test_each_pattern_of_the_table_is_the_leafs_shapley_share(k):
    rng = np.random.default_rng(10 + k)
    zero_fractions = rng.uniform(0.05, 1.0, size=(3, k))
    values = rng.normal(size=3)
    tables = _leaf_tables(zero_fractions, values)
    # Column p of a table is the pattern whose bit j says whether path feature j is satisfied.
    ones = np.array(list(itertools.product([0.0, 1.0], repeat=k)))[:, ::-1]
    for leaf in range(3):
        shares = _leaf_contributions(ones, zero_fractions[leaf], values[leaf])
        np.testing.assert_allclose(tables[leaf].T, shares, rtol=1e-12, atol=1e-14)


def test_a_feature_no_tree_splits_on_gets_zero_and_the_values_add_up():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    X[:, 2] = 1.0  # constant: never split on
    y = (X[:, 0] - X[:, 3] + rng.normal(size=600) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y)
    explainer = TreeShapExplainer(model)
    values = explainer.shap_values(X, chunk_rows=250)
    assert (values[:, 2] == 0).all()
    assert (values[:, [0, 3]] != 0).any(axis=0).all()
    np.testing.assert_allclose(values.sum(axis=1) + explainer.expected_value,
                               model.decision_function(X), rtol=0, atol=1e-10)
