"""Right causes against the synthetic truth, as every benchmark judges them.

Among households not poor at the month (``poor_complete`` false) with a true risk of at least
``min_risk``: ``true_cause`` is the cause whose removal lowers the true risk most, or
``structural`` when none removes half of it (``riskmodel.synthetic``). A household with a true
cause is judged on whether ``reason_1`` names it and whether ``reason_1..3`` hold it; a
structural household on whether ``reason_1`` is 收入偏低 or 缺劳动力.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STRUCTURAL_REASONS = ("labor_shortage", "income")


def right_causes(both: pd.DataFrame, min_risk: float) -> dict:
    """The right-cause rates of explained households joined to their truth.

    Parameters
    ----------
    both : DataFrame
        One row per household and month: the truth's ``true_risk``, ``true_cause`` and
        ``poor_complete`` beside the explanation's ``reason_1``, ``reason_2``, ``reason_3``.
    min_risk : float
        The true risk from which a household is judged.

    Returns
    -------
    dict
        ``risky`` (households judged), ``caused`` and ``structural_n`` (of them with a true
        cause, and structural), ``reason_1`` and ``top_3`` (shares of ``caused``),
        ``structural`` (share of ``structural_n`` read as 收入偏低/缺劳动力), ``by_cause``
        (true cause → [share with ``reason_1`` right, households]), ``confusion`` (true
        cause × ``reason_1`` counts of the households with a true cause),
        ``structural_read_as`` (``reason_1`` → structural households, "(none)" for those
        without a reason) and ``households`` (distinct households among ``caused``).
    """
    risky = both[both["poor_complete"].eq(False) & (both["true_risk"] >= min_risk)]
    true = risky["true_cause"].astype(str).to_numpy()
    top3 = (risky[["reason_1", "reason_2", "reason_3"]].astype("string").fillna("(none)")
            .to_numpy(dtype=object))
    first = top3[:, 0]
    caused = true != "structural"
    named = pd.Series(first == true)[caused].groupby(true[caused]).agg(["mean", "size"])
    return {
        "risky": len(risky), "caused": int(caused.sum()), "structural_n": int((~caused).sum()),
        "households": int(risky["household_id"][caused].nunique()),
        "reason_1": float((first == true)[caused].mean()) if caused.any() else np.nan,
        "top_3": (float((top3 == true[:, None]).any(axis=1)[caused].mean())
                  if caused.any() else np.nan),
        "structural": (float(np.isin(first[~caused], STRUCTURAL_REASONS).mean())
                       if (~caused).any() else np.nan),
        "by_cause": {c: [float(r["mean"]), int(r["size"])] for c, r in named.iterrows()},
        "structural_read_as": {str(k): int(v) for k, v in
                               pd.Series(first[~caused]).value_counts().items()},
        "confusion": pd.crosstab(pd.Series(true[caused], name="true cause"),
                                 pd.Series(first[caused], name="reason_1")),
    }


def cause_interval(both: pd.DataFrame, min_risk: float, draws: int = 2000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of the share whose ``reason_1`` is the true cause.

    Households (``household_id``) are drawn with replacement, each with all its judged rows:
    a household judged at two truth months is one draw, not two independent ones.

    Parameters
    ----------
    both : DataFrame
        As for :func:`right_causes`, with ``household_id``.
    min_risk : float
        The true risk from which a household is judged.
    draws : int, default=2000
    seed : int, default=0
    level : float, default=0.95

    Returns
    -------
    tuple of float
        The interval's lower and upper ends (NaN when no household has a true cause).
    """
    risky = both[both["poor_complete"].eq(False) & (both["true_risk"] >= min_risk)
                 & both["true_cause"].astype(str).ne("structural")]
    right = (risky["reason_1"].astype("string").fillna("")
             == risky["true_cause"].astype(str)).to_numpy(dtype="float64")
    return _by_household(risky["household_id"], right, draws, seed, level)


def structural_interval(both: pd.DataFrame, min_risk: float, draws: int = 2000, seed: int = 0,
                        level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of the share of structural households read as 收入偏低/缺劳动力,
    households drawn with replacement as in :func:`cause_interval`.

    Returns
    -------
    tuple of float
        The interval's lower and upper ends (NaN when no household is structural).
    """
    risky = both[both["poor_complete"].eq(False) & (both["true_risk"] >= min_risk)
                 & both["true_cause"].astype(str).eq("structural")]
    right = np.isin(risky["reason_1"].astype("string").fillna("").to_numpy(dtype=object),
                    STRUCTURAL_REASONS).astype("float64")
    return _by_household(risky["household_id"], right, draws, seed, level)


def _by_household(households: pd.Series, right: np.ndarray, draws: int, seed: int,
                  level: float) -> tuple[float, float]:
    """Percentile interval of the share ``right`` over households drawn with replacement."""
    if not len(right):
        return np.nan, np.nan
    code, distinct = pd.factorize(households)
    hits = np.bincount(code, weights=right, minlength=len(distinct))
    rows = np.bincount(code, minlength=len(distinct)).astype("float64")
    rng = np.random.default_rng(seed)
    weight = np.stack([np.bincount(rng.integers(0, len(distinct), len(distinct)),
                                   minlength=len(distinct)) for _ in range(draws)])
    shares = (weight @ hits) / (weight @ rows)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(shares, [tail, 100 - tail])
    return float(low), float(high)
