"""Checks the monthly jobs (``score``, ``plan``) share before and while they read a ledger.

- :func:`check_model` refuses what is not a fitted risk model of this version.
- :func:`check_columns` refuses a model whose features the ledger leaves entirely empty.
- :func:`quarantine_error` is the error for a month with more rows quarantined than
  ``scoring.max_quarantine_share``.

Both jobs raise the same errors with the same messages, so an operator reads one reason
whichever command stopped.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .errors import LedgerError, ModelNotFoundError
from .features import FEATURE_NAMES
from .tracking import ModelRef


def check_model(model, ref: ModelRef) -> list[str]:
    """The model's feature names, once it is known to be a fitted model of this version.

    Parameters
    ----------
    model : object
        What :func:`riskmodel.tracking.load_model` loaded.
    ref : ModelRef
        Where it was loaded from (named in the error).

    Returns
    -------
    list of str
        ``model.feature_names_in_``.

    Raises
    ------
    ModelNotFoundError
        Exit code 3: no ``feature_names_in_`` or ``predict_proba``, or a feature this version
        does not build from the ledger.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None or not hasattr(model, "predict_proba"):
        raise ModelNotFoundError(f"{ref.uri} is not a fitted risk model (no feature_names_in_ "
                                 "or predict_proba).")
    unknown = [str(n) for n in names if str(n) not in FEATURE_NAMES]
    if unknown:
        raise ModelNotFoundError(
            f"{ref.uri} needs {len(unknown)} feature(s) this version does not build from the "
            f"ledger, e.g. {unknown[0]!r}; retrain the model or use a matching riskmodel.")
    return [str(n) for n in names]


def check_columns(model, ref: ModelRef, counts: dict | None) -> None:
    """Refuse a model whose features this ledger leaves entirely empty but training had.

    Parameters
    ----------
    model : RiskModel
        With ``reference_`` (the training distribution of each feature).
    ref : ModelRef
    counts : dict or None
        Summed :func:`riskmodel.drift.count_bins` (or :func:`known_and_missing`) of the month's
        scored households: per feature, counts whose last is of missing values; None (nothing
        to check) when the model carries no reference.

    Raises
    ------
    ModelNotFoundError
        Exit code 3: a feature missing for every household that training rarely missed.
    """
    if not counts:
        return
    empty = []
    for name, observed in counts["features"].items():
        total = float(np.sum(observed))
        expected = float(model.reference_["features"][name].get("missing", 0.0))
        if total and observed[-1] == total and expected < 0.5:
            empty.append(name)
    if empty:
        raise ModelNotFoundError(
            f"{ref.uri} is incompatible with this ledger: {len(empty)} feature(s) it was "
            f"trained on are empty for every household, e.g. {empty[0]!r} — the ledger lacks "
            "the column(s) they are built from, or leaves them empty in every row.")


def known_and_missing(features) -> dict:
    """Per feature, the counts of known and of missing values: what :func:`check_columns`
    reads, without binning the known values as drift needs.

    Examples
    --------
    >>> import pandas as pd
    >>> known_and_missing(pd.DataFrame({"x": [1.0, None, 2.0]}))["features"]["x"].tolist()
    [2, 1]
    """
    missing = features.isna().sum().to_numpy()
    return {"features": {name: np.array([len(features) - m, m], dtype="int64")
                         for name, m in zip(features.columns, missing, strict=True)}}


def quarantine_error(month: str, quarantined: int, rows_in: int, limit: float,
                     by_rule: Counter) -> LedgerError:
    """The error for a month with more than ``limit`` of its rows quarantined.

    Parameters
    ----------
    month : str
    quarantined : int
        The month's rows quarantined so far.
    rows_in : int
        The month's rows in the file.
    limit : float
        ``scoring.max_quarantine_share``.
    by_rule : Counter
        The month's quarantined rows by the rule they broke.

    Returns
    -------
    LedgerError
        Exit code 2, naming the most broken rules.
    """
    # Raised as soon as the chunks read so far pass the limit: the count is a lower bound.
    top = ", ".join(f"{rule} ({n:,})" for rule, n in by_rule.most_common(3))
    return LedgerError(
        f"At least {quarantined:,} of the {rows_in:,} rows of {month} "
        f"({quarantined / rows_in:.1%}) are quarantined, over the limit of {limit:.1%} "
        f"(scoring.max_quarantine_share); most broken rules: {top}. Nothing was written; "
        "`riskmodel validate --ledger PATH --out DIR` lists the rows."
    )
