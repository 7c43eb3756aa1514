"""A tree leaf's share in the path-dependent SHAP values, for patterns of its path bits.

For a leaf whose root path tests the distinct features ``P`` (``k`` of them), the value function
is ``v(S) = value * prod_{j in S} o_j * prod_{j in P - S} z_j`` (see
:mod:`riskmodel.explain._treeshap`): its share of a row's SHAP values depends on the row only
through the ``k`` bits ``o``. :func:`_leaf_tables` tabulates every pattern of short paths;
:func:`_leaf_contributions` computes the patterns a chunk of rows shows, for long paths.
"""

from __future__ import annotations

import math

import numpy as np


def _shapley_weights(k: int) -> np.ndarray:
    """``|S|! (k - |S| - 1)! / k!`` for ``|S| = 0 .. k-1``."""
    return np.array([1.0 / (k * math.comb(k - 1, s)) for s in range(k)])


def _leaf_contributions(ones: np.ndarray, zero_fractions: np.ndarray, value: float) -> np.ndarray:
    """Share of one leaf in the SHAP values, for each given pattern of path bits.

    Parameters
    ----------
    ones : ndarray of shape (n_patterns, k)
        1.0 where the row satisfies the path's conditions on that feature, else 0.0.
    zero_fractions : ndarray of shape (k,)
        Product of the cover ratios of the path's conditions on each feature.
    value : float
        The leaf value.

    Returns
    -------
    ndarray of shape (n_patterns, k)
        The leaf's contribution to each path feature's SHAP value.
    """
    n_patterns, k = ones.shape
    z = zero_fractions
    o = ones.T  # (k, n_patterns)
    # Coefficients of prod_j (z_j + o_j t): the coefficient of t**s sums, over the coalitions of
    # size s, the probability mass of this leaf.
    poly = np.zeros((k + 1, n_patterns))
    poly[0] = 1.0
    for j in range(k):
        poly[1 : j + 2] = poly[1 : j + 2] * z[j] + poly[0 : j + 1] * o[j]
        poly[0] *= z[j]
    # Divide feature i's own factor back out and weight the quotient's coefficients by coalition
    # size. For o_i = 1 the factor is (t + z_i), divided from the top, which is stable because
    # z_i <= 1; for o_i = 0 it is the constant z_i > 0.
    weights = _shapley_weights(k)
    quotient = np.broadcast_to(poly[k], (k, n_patterns))
    weighted = weights[k - 1] * quotient
    for s in range(k - 1, 0, -1):
        quotient = poly[s] - z[:, None] * quotient
        weighted += weights[s - 1] * quotient
    # Summed term by term, not by a BLAS product, whose order of summation depends on how many
    # patterns the chunk has: a row's values must not depend on the rows explained with it.
    by_zero = np.zeros(n_patterns)
    for s in range(k):
        by_zero += weights[s] * poly[s]
    by_zero = by_zero[None, :] / z[:, None]
    weighted = np.where(o > 0, weighted, by_zero)
    return (value * (o - z[:, None]) * weighted).T


def _leaf_tables(zero_fractions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of each of several leaves in the SHAP values for all ``2**k`` patterns of their
    path bits, the leaves having paths of the same length ``k``.

    Column ``p`` of a leaf's table holds the pattern whose bit ``j`` is ``o_j``. Uses that feature
    i's coalition polynomial ``prod_{j != i} (z_j + o_j t)`` does not depend on ``o_i``, so it
    equals the full polynomial of the pattern with bit i cleared, divided by ``z_i``: one
    polynomial per pattern instead of one per pattern and feature. The leaves are computed
    together, element by element as one leaf alone would be.

    Parameters
    ----------
    zero_fractions : ndarray of shape (n_leaves, k)
        Product of the cover ratios of each path's conditions on each feature.
    values : ndarray of shape (n_leaves,)
        The leaf values.

    Returns
    -------
    ndarray of shape (n_leaves, k, 2**k)
    """
    z = zero_fractions
    n_leaves, k = z.shape
    # poly[l, p, s]: coefficient of t**s in prod_j (z_j + o_j t) for leaf l and pattern p;
    # built by doubling, the new feature's bit being the highest so far.
    poly = np.ones((n_leaves, 1, 1))
    for j in range(k):
        absent = np.zeros((n_leaves, poly.shape[1], j + 2))
        absent[:, :, : j + 1] = poly * z[:, j, None, None]
        present = absent.copy()
        present[:, :, 1:] += poly
        poly = np.concatenate([absent, present], axis=1)
    weights = _shapley_weights(k)
    # One product per leaf, as for a leaf alone: a stacked product may sum in another order.
    weighted = np.stack([leaf[:, :k] @ weights for leaf in poly])
    patterns = np.arange(2**k)
    tables = np.empty((n_leaves, k, 2**k))
    for i in range(k):
        bit = 1 << i
        ones = (patterns & bit) != 0
        zi = z[:, i, None]
        tables[:, i] = values[:, None] * (ones - zi) * (weighted[:, patterns & ~bit] / zi)
    return tables
