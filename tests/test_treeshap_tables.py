"""The TreeSHAP leaf tables: made for many leaves at once, each as it would be alone."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from riskmodel.explain._treeshap import _leaf_contributions, _leaf_tables


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
