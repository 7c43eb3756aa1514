"""Drift: the population stability index of each feature and of the score against training.

A fitted model carries its training distributions in ``reference_`` (see
:class:`riskmodel.models.RiskModel`): per feature and for the score, quantile bin ``edges`` from
-inf to +inf, the ``shares`` of known values in each bin and the share ``missing``. A month's
values are counted into the same bins with missing values as one more bin — a feature that goes
missing far more often than in training has drifted as surely as one whose values moved — and

    PSI = sum over bins of (actual − expected) · ln(actual / expected).

Counts add up, so a job that works in chunks of households (or a Spark job over partitions)
counts each part with :func:`count_bins`, adds them with :func:`add_counts` and computes the
index once with :func:`drift_report`. A PSI under 0.1 is usually read as stable, 0.1–0.25 as a
moderate shift and over 0.25 as a shift worth acting on.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

# Floor on both shares: an empty bin then adds a large but finite term instead of infinity.
EPSILON = 1e-4


def _inner_edges(bins: Mapping) -> np.ndarray:
    return np.asarray(bins["edges"], dtype="float64")[1:-1]


def bin_values(values: np.ndarray, bins: Mapping) -> np.ndarray:
    """Counts of ``values`` in the reference bins, the last entry counting missing values.

    Parameters
    ----------
    values : array-like of float
    bins : mapping
        ``{"edges": [-inf, …, inf], "shares": [...], "missing": float}``.

    Returns
    -------
    ndarray of int64, shape (len(shares) + 1,)

    Examples
    --------
    >>> bins = {"edges": [-np.inf, 2.5, np.inf], "shares": [0.5, 0.5], "missing": 0.0}
    >>> bin_values(np.array([1.0, 3.0, 4.0, np.nan]), bins).tolist()
    [1, 2, 1]
    """
    values = np.asarray(values, dtype="float64")
    inner = _inner_edges(bins)
    known = ~np.isnan(values)
    counts = np.bincount(np.searchsorted(inner, values[known], side="right"),
                         minlength=inner.size + 1)
    return np.append(counts, np.count_nonzero(~known)).astype("int64")


def expected_shares(bins: Mapping) -> np.ndarray:
    """Reference shares over the same bins as :func:`bin_values`, missing last."""
    missing = float(bins.get("missing", 0.0))
    shares = np.asarray(bins["shares"], dtype="float64") * (1.0 - missing)
    return np.append(shares, missing)


def psi(expected: np.ndarray, counts: np.ndarray) -> float:
    """Population stability index of observed ``counts`` against ``expected`` shares.

    Returns NaN when nothing was counted.

    Examples
    --------
    >>> psi(np.array([0.5, 0.5]), np.array([50, 50]))
    0.0
    >>> round(psi(np.array([0.5, 0.5]), np.array([90, 10])), 3)
    0.879
    """
    counts = np.asarray(counts, dtype="float64")
    total = counts.sum()
    if total == 0:
        return float("nan")
    actual = np.maximum(counts / total, EPSILON)
    expected = np.maximum(np.asarray(expected, dtype="float64"), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def count_bins(reference: Mapping, features: pd.DataFrame, score: np.ndarray | None) -> dict:
    """Bin counts of one chunk of scored rows, shaped like ``reference``.

    Parameters
    ----------
    reference : mapping
        The model's ``reference_``: ``{"features": {name: bins}, "score": bins, ...}``.
    features : DataFrame
        The scored rows' features; features the reference does not know are ignored.
    score : array-like, optional
        The rows' calibrated probabilities.

    Returns
    -------
    dict
        ``{"features": {name: counts}, "score": counts}`` (int64 arrays).
    """
    counts = {
        "features": {name: bin_values(features[name].to_numpy(dtype="float64", na_value=np.nan),
                                      bins)
                     for name, bins in reference.get("features", {}).items()
                     if name in features.columns},
    }
    if score is not None and "score" in reference:
        counts["score"] = bin_values(score, reference["score"])
    return counts


def add_counts(left: Mapping | None, right: Mapping) -> dict:
    """Sum two results of :func:`count_bins` (``left`` may be None)."""
    if left is None:
        return {"features": dict(right.get("features", {})),
                **({"score": right["score"]} if "score" in right else {})}
    out = {"features": {name: left["features"].get(name, 0) + c
                        for name, c in right.get("features", {}).items()}}
    if "score" in right:
        out["score"] = left.get("score", 0) + right["score"]
    return out


def drift_report(reference: Mapping, counts: Mapping | None, threshold: float) -> pd.DataFrame:
    """PSI of every feature and of the score.

    Parameters
    ----------
    reference : mapping
        The model's ``reference_``.
    counts : mapping or None
        Summed :func:`count_bins` results; None when nothing was scored.
    threshold : float
        PSI above which a distribution is reported as drifted.

    Returns
    -------
    DataFrame
        Columns ``name``, ``kind`` (``"score"`` or ``"feature"``), ``psi``, ``missing_share``
        (this month) and ``drifted``; the score first, then features by decreasing PSI.

    Examples
    --------
    >>> ref = {"features": {"x": {"edges": [-np.inf, 0.0, np.inf], "shares": [0.5, 0.5],
    ...                           "missing": 0.0}}}
    >>> counts = count_bins(ref, pd.DataFrame({"x": [-1.0, -2.0, 1.0, 2.0]}), None)
    >>> drift_report(ref, counts, 0.25)[["name", "psi", "drifted"]].values.tolist()
    [['x', 0.0, False]]
    >>> counts = count_bins(ref, pd.DataFrame({"x": [-1.0, 1.0, 2.0, 3.0]}), None)
    >>> drift_report(ref, counts, 0.25)[["name", "drifted"]].values.tolist()
    [['x', True]]
    """
    counts = counts or {"features": {}}
    rows = []
    entries = [("score", "score", reference.get("score"), counts.get("score"))]
    entries += [(name, "feature", bins, counts["features"].get(name))
                for name, bins in reference.get("features", {}).items()]
    for name, kind, bins, observed in entries:
        if bins is None:
            continue
        observed = np.zeros(len(bins["shares"]) + 1) if observed is None else observed
        total = float(np.sum(observed))
        value = psi(expected_shares(bins), observed)
        rows.append({
            "name": name,
            "kind": kind,
            "psi": value,
            "missing_share": float(observed[-1] / total) if total else float("nan"),
            "drifted": bool(value > threshold),
        })
    table = pd.DataFrame(rows, columns=["name", "kind", "psi", "missing_share", "drifted"])
    order = np.lexsort((table["name"].to_numpy(), -table["psi"].fillna(-1).to_numpy(),
                        (table["kind"] != "score").to_numpy()))
    return table.iloc[order].reset_index(drop=True)


__all__ = ["EPSILON", "add_counts", "bin_values", "count_bins", "drift_report",
           "expected_shares", "psi"]
