"""The training distributions drift monitoring compares a month's features against."""

from __future__ import annotations

import numpy as np
import pandas as pd


def reference_bins(values: np.ndarray, n_bins: int = 10) -> dict:
    """Quantile bins of a training distribution: ``{"edges", "shares", "missing"}``.

    Examples
    --------
    >>> ref = reference_bins(np.array([1.0, 2.0, 3.0, 4.0, np.nan]), n_bins=2)
    >>> ref["edges"], ref["shares"], ref["missing"]
    ([-inf, 2.5, inf], [0.5, 0.5], 0.2)
    """
    values = np.asarray(values, dtype="float64")
    known = values[~np.isnan(values)]
    missing = float((values.size - known.size) / values.size) if values.size else 0.0
    if known.size == 0:
        return {"edges": [-np.inf, np.inf], "shares": [1.0], "missing": missing}
    inner = np.unique(np.quantile(known, np.linspace(0, 1, n_bins + 1)[1:-1]))
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    counts = np.bincount(np.searchsorted(inner, known, side="right"), minlength=inner.size + 1)
    return {"edges": [float(e) for e in edges],
            "shares": [float(s) for s in counts / known.size],
            "missing": missing}


def calendar_month_shares(frame: pd.DataFrame, months: np.ndarray,
                          bins: dict[str, dict]) -> dict[str, dict]:
    """Per calendar month, the shares of each feature's values in its reference bins.

    Parameters
    ----------
    frame : DataFrame
        Features of the fitted rows.
    months : ndarray of int
        Month number of each row (year × 12 + month − 1).
    bins : dict
        Feature name → reference bins (:func:`reference_bins`), whose edges are reused.

    Returns
    -------
    dict
        ``{"MM": {"rows": int, "features": {name: {"shares": [...], "missing": float}}}}`` for
        each calendar month present.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan]})
    >>> out = calendar_month_shares(frame, np.array([0, 0, 12, 1]),
    ...                             {"x": reference_bins(frame["x"].to_numpy(), 2)})
    >>> out["01"]["rows"], out["01"]["features"]["x"]
    (3, {'shares': [0.3333333333333333, 0.6666666666666666], 'missing': 0.0})
    >>> out["02"]["features"]["x"]
    {'shares': [0.5, 0.5], 'missing': 1.0}
    """
    calendar = np.asarray(months, dtype="int64") % 12
    values = frame[list(bins)].to_numpy(dtype="float64")
    order = np.argsort(calendar, kind="stable")
    bounds = np.searchsorted(calendar[order], np.arange(13))
    out = {}
    for month in range(12):
        block = values[order[bounds[month]:bounds[month + 1]]]
        if not len(block):
            continue
        features = {}
        for column, (name, reference) in enumerate(bins.items()):
            known = block[:, column][~np.isnan(block[:, column])]
            inner = np.asarray(reference["edges"], dtype="float64")[1:-1]
            counts = np.bincount(np.searchsorted(inner, known, side="right"),
                                 minlength=inner.size + 1)
            # All missing: the shares are weighted by zero; spread them evenly to sum to 1.
            shares = counts / known.size if known.size else np.full(inner.size + 1,
                                                                    1.0 / (inner.size + 1))
            features[name] = {"shares": [float(v) for v in shares],
                              "missing": float(1.0 - known.size / len(block))}
        out[f"{month + 1:02d}"] = {"rows": len(block), "features": features}
    return out


__all__ = ["calendar_month_shares", "reference_bins"]
