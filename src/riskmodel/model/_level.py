"""A calibration level that follows the months after the last labelled month.

The calibrator is fitted on the latest labelled months, those whose whole horizon lies in the
ledger. The months after them, up to the ledger's last month (the cut-off), are only partly
labelled: for a household-month ``d`` months before the cut-off, the falls of its first ``d``
months are seen, the rest are not yet. Their falls so far are evidence of the level the fall
rate has moved to since the calibrator's months.

:func:`recent_falls` collects them, point-in-time: the features of the latest ``months``
partly labelled months, whether each household fell within the ``d`` months seen, and the
*development* of the labelled months, the share of their falls within the horizon that came
within the first ``d`` months (measured on the same month a year before, so that the months of
the year the falls are seen in are the same). Then
:func:`level_ratio` compares, as an actuary reads claims not yet fully reported, the falls seen
with the falls the model expects by that lead (its risk × the development), and
:func:`log_odds_shift` turns that ratio into one shift of the calibrated log-odds, so that the
mean risk over those months moves by the ratio. The shift is monotone: the ranking is the
calibrator's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit

from ..config import Config
from ..months import month_index, month_label
from ._features import build_features
from ._labels import WINDOW, make_labels

DEVELOPMENT = ("year", "calibration")


@dataclass(frozen=True)
class RecentFalls:
    """The partly labelled months after the last labelled month, and the falls seen in them.

    Attributes
    ----------
    features : DataFrame
        Point-in-time features of every household-month that is a training row of the label's
        kind (not poor and known at its month), in the partly labelled months.
    fell : ndarray of float
        1.0 when the household fell within the ``lead`` months after its month, else 0.0.
    lead : ndarray of int
        Months seen after each row's month, up to the cut-off (1 … horizon − 1).
    months : ndarray of str
        Month (``YYYY-MM``) of each row.
    development : dict of int to float
        Lead → share of the falls within the horizon of labelled months (the calibrator's, or
        the same month a year before) that came within the first ``lead`` months.
    labelled_to : str
        The last month with a complete label.
    cutoff : str
        The ledger's last month read.
    """

    features: pd.DataFrame
    fell: np.ndarray
    lead: np.ndarray
    months: np.ndarray
    development: dict[int, float]
    labelled_to: str
    cutoff: str

    @property
    def usable(self) -> bool:
        """Whether a level can be read: falls seen, and every lead's share measured (the
        labelled months it is measured on hold falls)."""
        shares = np.array(list(self.development.values()), dtype="float64")
        return bool(self.fell.sum() > 0 and shares.size
                    and np.isfinite(shares).all() and (shares > 0).all())


def recent_falls(ledger: pd.DataFrame, config: Config, months: int | None = None,
                 cutoff: str | None = None, development: str = "year") -> RecentFalls:
    """The falls seen so far in the latest partly labelled months of ``ledger``.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger.
    config : Config
        The label (its kind and horizon H) and ``model.calibration_months``, the labelled
        months the development is measured on.
    months : int, optional
        Partly labelled months read, latest first: the months 1 … ``months`` before the
        cut-off (at most H − 1). None: ``model.level_months``.
    cutoff : str, optional
        The last month read (``YYYY-MM``); rows after it are ignored. None: the ledger's last.
    development : {"year", "calibration"}
        The labelled months whose falls give the share seen by each lead: for the month
        ``d`` months before the cut-off, the same month a year before (the same months of the
        year ahead of it, where falls are seasonal), or the calibrator's months (measured
        worse, docs/training.md).

    Returns
    -------
    RecentFalls

    Raises
    ------
    ValueError
        ``label.target_column`` is set (its falls are not seen month by month), or the months
        asked for are not between 1 and H − 1, or the ledger holds no labelled month.
    """
    h = config.label.horizon_months
    k = config.model.level_months if months is None else int(months)
    if config.label.target_column is not None:
        raise ValueError("model.level_months reads the falls month by month, which a "
                         "label.target_column does not show; set model.level_months to 0.")
    if development not in DEVELOPMENT:
        raise ValueError(f"Got development={development!r}, expected one of "
                         f"{', '.join(DEVELOPMENT)}.")
    if not 1 <= k <= h - 1:
        raise ValueError(f"Got {k} partly labelled months, expected 1 to {h - 1} "
                         f"(label.horizon_months - 1).")
    idx = month_index(ledger["month"])
    end = int(idx.max()) if cutoff is None else int(month_index(pd.Series([cutoff]))[0])
    labelled_to = end - h
    c = config.model.calibration_months
    first_cal = labelled_to - c + 1
    # Only the trailing window the annual income needs is read before the development months.
    upto = ledger[idx <= end]
    part = upto[np.asarray(month_index(upto["month"])) >= min(first_cal, end - k - 12) - WINDOW]
    part_idx = np.asarray(month_index(part["month"]))
    if not (part_idx <= labelled_to).any():
        raise ValueError("The ledger holds no month with a complete label before the "
                         "partly labelled months; give a longer ledger.")

    full = make_labels(part, config)["target"].to_numpy()
    in_cal = (part_idx >= first_cal) & (part_idx <= labelled_to)
    development, fell, rows, lead = {}, [], [], []
    for d in range(1, k + 1):
        within = make_labels(part, config, horizon=d)["target"].to_numpy()
        ref = in_cal if development == "calibration" else part_idx == end - d - 12
        total = float(np.nansum(full[ref]))
        development[d] = float(np.nansum(within[ref]) / total) if total else float("nan")
        at = np.flatnonzero((part_idx == end - d) & ~np.isnan(within))
        rows.append(at)
        fell.append(within[at])
        lead.append(np.full(at.size, d, dtype="int64"))
    rows = np.concatenate(rows)
    labels = [str(month_label(end - d)) for d in range(k, 0, -1)]
    # Features read the whole history, as at training and scoring.
    feats = build_features(upto, config, months=labels)
    features = feats.loc[part.index[rows]].reset_index(drop=True)
    return RecentFalls(
        features=features, fell=np.concatenate(fell), lead=np.concatenate(lead),
        months=part["month"].astype(str).to_numpy(dtype=object)[rows],
        development=development, labelled_to=str(month_label(labelled_to)),
        cutoff=str(month_label(end)))


def level_ratio(risk: np.ndarray, fell: np.ndarray, lead: np.ndarray,
                development: dict[int, float]) -> tuple[float, float, float]:
    """Falls seen against falls expected by each row's lead: ``(ratio, seen, expected)``.

    The expected falls of a row are its risk within the horizon times the share of a
    horizon's falls that the labelled months showed within ``lead`` months.

    Examples
    --------
    >>> level_ratio(np.array([0.1, 0.1, 0.2, 0.2]), np.array([0.0, 0.0, 1.0, 0.0]),
    ...             np.array([1, 1, 2, 2]), {1: 0.5, 2: 1.0})
    (2.0, 1.0, 0.5)
    """
    share = np.array([development[int(d)] for d in np.unique(lead)])
    weight = share[np.searchsorted(np.unique(lead), lead)]
    expected = float(np.sum(np.asarray(risk, dtype="float64") * weight))
    seen = float(np.sum(fell))
    return (seen / expected if expected > 0 else float("nan")), seen, expected


def log_odds_shift(risk: np.ndarray, ratio: float) -> float:
    """The shift of the log-odds that moves the mean of ``risk`` by ``ratio``.

    Examples
    --------
    >>> risk = np.array([0.02, 0.05, 0.3])
    >>> shift = log_odds_shift(risk, 0.5)
    >>> round(float(shifted(risk, shift).mean() / risk.mean()), 6)
    0.5
    """
    risk = np.asarray(risk, dtype="float64")
    goal = ratio * risk.mean()
    if not np.isfinite(goal) or goal <= 0:
        raise ValueError(f"Got a level ratio of {ratio!r}, expected a positive number.")
    if goal >= (risk > 0).mean():
        raise ValueError(f"Got a level ratio of {ratio!r}, which would lift the mean risk "
                         f"to {goal:.3f}, beyond what a shift of the log-odds reaches.")
    return float(brentq(lambda s: shifted(risk, s).mean() - goal, -30.0, 30.0, xtol=1e-10))


def follow_level(model, recent: RecentFalls):
    """Shift a fitted model's calibrated log-odds to the level of ``recent``'s falls.

    The falls seen so far in the partly labelled months are compared with those the model
    expects by each row's lead (:func:`level_ratio`); the calibrated log-odds are then moved by
    one shift that scales the mean risk of those months by that ratio (:func:`log_odds_shift`).
    The reference bins of the score move with it (a monotone map keeps the shares of its
    bins). A second call replaces the first's shift.

    Parameters
    ----------
    model : RiskModel
        Fitted.
    recent : RecentFalls

    Returns
    -------
    RiskModel
        ``model``, with ``level_``: ``shift`` (of the log-odds), ``ratio``, ``seen`` and
        ``expected`` falls, ``rows``, the months read (``first``, ``last``), ``labelled_to``
        and the ``development`` by lead.
    """
    if not recent.usable:
        raise ValueError("Got no fall after the labelled months, or no fall in the labelled "
                         "months the shares seen by each lead are measured on; expected both "
                         "(a longer ledger, more households, or model.level_months 0).")
    before = getattr(model, "level_", None)
    model.level_ = None
    bins = model.reference_["score"]
    edges = np.asarray(bins["edges"], dtype="float64")
    if before is not None:
        edges = shifted(edges.clip(0.0, 1.0), -before["shift"])
    risk = model.predict_proba(recent.features)[:, 1]
    ratio, seen, expected = level_ratio(risk, recent.fell, recent.lead, recent.development)
    shift = log_odds_shift(risk, ratio)
    moved = shifted(edges.clip(0.0, 1.0), shift)
    bins["edges"] = [-np.inf, *(float(e) for e in moved[1:-1]), np.inf]
    months = sorted(set(recent.months))
    model.level_ = {"shift": shift, "ratio": ratio, "seen": seen, "expected": expected,
                    "rows": int(len(recent.fell)), "first": months[0], "last": months[-1],
                    "labelled_to": recent.labelled_to,
                    "development": {str(k): v for k, v in recent.development.items()}}
    return model


def shifted(risk: np.ndarray, shift: float) -> np.ndarray:
    """``risk`` with its log-odds moved by ``shift`` (0 and 1 stay where they are)."""
    with np.errstate(divide="ignore"):
        return expit(logit(np.asarray(risk, dtype="float64")) + shift)


__all__ = ["RecentFalls", "follow_level", "level_ratio", "log_odds_shift", "recent_falls",
           "shifted"]
