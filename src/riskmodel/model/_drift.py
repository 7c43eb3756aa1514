"""Drift: the population stability index of each feature and of the score against training.

A fitted model carries its training distributions in ``reference_`` (see
:class:`riskmodel.model.RiskModel`): per feature and for the score, quantile bin ``edges`` from
-inf to +inf, the ``shares`` of known values in each bin and the share ``missing``. A month's
values are counted into the same bins with missing values as one more bin — a feature that goes
missing far more often than in training has drifted as surely as one whose values moved — and

    PSI = sum over bins of (actual − expected) · ln(actual / expected).

Counts add up, so a job that works in chunks of households (or a Spark job over partitions)
counts each part with :func:`count_bins`, adds them with :func:`add_counts` and computes the
index once with :func:`drift_report`. A PSI under 0.1 is usually read as stable, 0.1–0.25 as a
moderate shift and over 0.25 as a shift worth acting on.

Many of a household's figures follow the year — migrant wages around the spring festival, school
fees in September — so a model fitted with months also keeps, per month of the year, the shares
of all its training rows in the same bins; a month's features are compared with that season
(:func:`calendar_reference`) and the score with the calibration months.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

# Floor on both shares: an empty bin then adds a large but finite term instead of infinity.
EPSILON = 1e-4
# Below this many training rows of a month of the year, its shares are too noisy to compare with.
CALENDAR_MIN_ROWS = 1000
# What a month's features were compared with, as ``summary.json`` says it.
SAME_MONTH_OF_YEAR = "the same month of the year in training"
CALIBRATION_MONTHS = "the calibration months"


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


def calendar_reference(reference: Mapping, month: str | None, min_rows: int) -> dict | None:
    """The model's reference for ``month``'s month of the year, as bins; None when too thin.

    Parameters
    ----------
    reference : mapping
        The model's ``reference_``; its ``calendar_months`` (see
        :func:`riskmodel.model.calendar_month_shares`) reuse the edges of ``features``.
    month : str or None
        ``YYYY-MM``.
    min_rows : int
        Fewest training rows of that month of the year for its shares to be used.

    Returns
    -------
    dict or None
        ``{name: bins}`` like ``reference["features"]``.
    """
    if month is None:
        return None
    entry = reference.get("calendar_months", {}).get(str(month)[5:7])
    if entry is None or entry["rows"] < min_rows:
        return None
    return {name: {"edges": reference["features"][name]["edges"], **shares}
            for name, shares in entry["features"].items() if name in reference["features"]}


def drift_report(reference: Mapping, counts: Mapping | None, threshold: float,
                 month: str | None = None, min_rows: int = CALENDAR_MIN_ROWS) -> pd.DataFrame:
    """PSI of every feature and of the score.

    Features are compared with the training rows of the same month of the year when the model
    keeps them (``reference["calendar_months"]``, at least ``min_rows`` rows), so that a season
    that comes back every year — spring-festival wages, school fees in September — is not read
    as drift; otherwise, and always for the score, with the calibration months.

    Parameters
    ----------
    reference : mapping
        The model's ``reference_``.
    counts : mapping or None
        Summed :func:`count_bins` results; None when nothing was scored.
    threshold : float
        PSI above which a distribution is reported as drifted.
    month : str, optional
        ``YYYY-MM`` of the scored rows; without it every comparison is with calibration.
    min_rows : int, default=CALENDAR_MIN_ROWS
        Fewest training rows of that month of the year for the seasonal comparison.

    Returns
    -------
    DataFrame
        Columns ``name``, ``kind`` (``"score"`` or ``"feature"``), ``psi``, ``missing_share``
        (this month), ``drifted`` and ``reference`` (``"calendar_month"`` or
        ``"calibration"``); the score first, then features by decreasing PSI.

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

    The same month a year earlier had three values in four above zero: no drift then.

    >>> ref["calendar_months"] = {"03": {"rows": 4000, "features": {
    ...     "x": {"shares": [0.25, 0.75], "missing": 0.0}}}}
    >>> drift_report(ref, counts, 0.25, month="2025-03")[
    ...     ["name", "psi", "drifted", "reference"]].values.tolist()
    [['x', 0.0, False, 'calendar_month']]
    """
    counts = counts or {"features": {}}
    seasonal = calendar_reference(reference, month, min_rows) or {}
    rows = []
    entries = [("score", "score", reference.get("score"), counts.get("score"))]
    entries += [(name, "feature", seasonal.get(name, bins), counts["features"].get(name))
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
            "reference": "calendar_month" if kind == "feature" and name in seasonal
                         else "calibration",
        })
    table = pd.DataFrame(rows, columns=["name", "kind", "psi", "missing_share", "drifted",
                                        "reference"])
    order = np.lexsort((table["name"].to_numpy(), -table["psi"].fillna(-1).to_numpy(),
                        (table["kind"] != "score").to_numpy()))
    return table.iloc[order].reset_index(drop=True)


__all__ = ["CALENDAR_MIN_ROWS", "CALIBRATION_MONTHS", "EPSILON", "SAME_MONTH_OF_YEAR",
           "add_counts", "bin_values", "calendar_reference", "count_bins", "drift_report",
           "expected_shares", "psi"]
