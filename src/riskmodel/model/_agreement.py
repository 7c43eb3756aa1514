"""The model's reasons checked against the risk types cadres recorded.

A county's ledger records, for each household identified as a monitoring object, the month of
identification (``identified_month``) and the risk types the cadres recorded
(``recorded_risk_1`` … ``recorded_risk_5``, cause codes). For the households identified in a
window of months, :func:`reason_agreement` counts those whose ``reason_1`` is one of the
recorded types and those whose ``reason_1`` … ``reason_3`` include one; with the synthetic
truth it also counts those whose ``reason_1`` is the true cause, so that agreement with the
cadres (who record what they see) and being right can be told apart. The counts add up over
partitions of households and over backtest origins; :func:`agreement_rates` turns them into
shares.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..months import month_index
from ._recorded import column_months

RECORDED_RISKS = [f"recorded_risk_{k}" for k in range(1, 6)]
REASONS = ["reason_1", "reason_2", "reason_3"]
# The counts of :func:`reason_agreement`, in this order.
AGREEMENT_COUNTS = ["households", "reason_1_recorded", "reasons_1_3_recorded",
                    "truth_households", "reason_1_true", "recorded_true"]


def has_recorded_risks(ledger: pd.DataFrame) -> bool:
    """Whether the ledger carries the identification month and the recorded risk types."""
    return "identified_month" in ledger.columns and "recorded_risk_1" in ledger.columns


def recorded_at_identification(ledger: pd.DataFrame, start: str | int,
                               end: str | int) -> pd.DataFrame:
    """The households identified in (``start``, ``end``] and the risk types recorded for them.

    The types are those of the household's first row at or after its ``identified_month``,
    among the rows of months up to ``end``: what the ledger recorded at identification. A row
    tells its ``identified_month`` only once the identification is known, so the rows read are
    those of months in (``start``, ``end``]. A household identified twice in the window keeps
    its first identification.

    Parameters
    ----------
    ledger : DataFrame
        Rows with ``household_id``, ``month``, ``identified_month`` and ``recorded_risk_1`` …
        (missing ``recorded_risk_k`` columns count as empty).
    start, end : str or int
        ``YYYY-MM`` or month numbers; the window is (start, end].

    Returns
    -------
    DataFrame
        Indexed by ``household_id``: ``identified_month`` and ``recorded_risk_1`` … ``_5``
        (string, NA where empty).

    Examples
    --------
    >>> ledger = pd.DataFrame({
    ...     "household_id": ["a", "a", "a", "b"], "month": ["2024-01", "2024-02", "2024-03",
    ...     "2024-02"], "identified_month": [None, "2024-02", "2024-02", None],
    ...     "recorded_risk_1": [None, "illness", "education", None]})
    >>> recorded_at_identification(ledger, "2024-01", "2024-03")["recorded_risk_1"].to_dict()
    {'a': 'illness'}
    """
    lo, hi = (int(month_index(pd.Series([m]))[0]) if isinstance(m, str) else int(m)
              for m in (start, end))
    month = month_index(ledger["month"]) if len(ledger) else np.zeros(0, dtype="int64")
    ident = column_months(ledger, "identified_month")
    keep = (month > lo) & (month <= hi) & (ident > lo) & (ident <= hi) & (month >= ident)
    rows = ledger.loc[keep]
    order = pd.DataFrame({"household_id": rows["household_id"].astype(str).to_numpy(),
                          "ident": ident[keep], "month": month[keep]})
    first = order.sort_values(["household_id", "ident", "month"], kind="stable")
    first = first.drop_duplicates("household_id").index.to_numpy()
    out = pd.DataFrame(index=pd.Index(order["household_id"].to_numpy()[first],
                                      name="household_id"))
    out["identified_month"] = pd.array(
        rows["identified_month"].astype("string").to_numpy()[first], dtype="string")
    for column in RECORDED_RISKS:
        values = (rows[column].to_numpy(dtype=object)[first] if column in rows
                  else np.full(len(first), None, dtype=object))
        text = pd.Series(values, index=out.index, dtype="string").str.strip()
        out[column] = text.mask(text == "")
    return out


def reason_agreement(reasons: pd.DataFrame, ledger: pd.DataFrame, start: str | int,
                     end: str | int, true_cause: pd.Series | None = None) -> dict[str, int]:
    """Count the households identified in (``start``, ``end``] whose reasons name a recorded type.

    Counted are the households that have a ``reason_1`` in ``reasons`` (households not scored
    have none) and at least one recorded risk type (:func:`recorded_at_identification`).

    Parameters
    ----------
    reasons : DataFrame
        ``reason_1`` … ``reason_3`` (cause codes) of households at one month, with their
        ``household_id`` as a column or as the index.
    ledger : DataFrame
        The ledger rows of these households (``identified_month``, ``recorded_risk_1`` …).
    start, end : str or int
        The identification window (start, end].
    true_cause : Series, optional
        The true cause of each household at the reasons' month, indexed by ``household_id``
        (synthetic truth).

    Returns
    -------
    dict
        :data:`AGREEMENT_COUNTS`: ``households`` counted; ``reason_1_recorded``, those whose
        ``reason_1`` is a recorded type; ``reasons_1_3_recorded``, those whose ``reason_1`` …
        ``reason_3`` include one; and with ``true_cause``, ``truth_households`` (the counted
        households with a known true cause), ``reason_1_true`` (``reason_1`` is the true cause)
        and ``recorded_true`` (the recorded types include the true cause), else zeros.

    Examples
    --------
    >>> ledger = pd.DataFrame({"household_id": ["a", "b"], "month": ["2024-02", "2024-02"],
    ...     "identified_month": ["2024-02", "2024-02"],
    ...     "recorded_risk_1": ["illness", "disability"]})
    >>> reasons = pd.DataFrame({"reason_1": ["illness", "education"],
    ...     "reason_2": [None, "disability"], "reason_3": [None, None]}, index=["a", "b"])
    >>> reason_agreement(reasons, ledger, "2024-01", "2024-07")
    ... # doctest: +NORMALIZE_WHITESPACE
    {'households': 2, 'reason_1_recorded': 1, 'reasons_1_3_recorded': 2,
     'truth_households': 0, 'reason_1_true': 0, 'recorded_true': 0}
    """
    return compare_reasons(reasons, recorded_at_identification(ledger, start, end),
                           true_cause=true_cause)


def compare_reasons(reasons: pd.DataFrame, recorded: pd.DataFrame,
                    true_cause: pd.Series | None = None) -> dict[str, int]:
    """The counts of :func:`reason_agreement` from the recorded types already read.

    Parameters
    ----------
    reasons : DataFrame
        ``reason_1`` … ``reason_3`` with ``household_id`` as a column or as the index.
    recorded : DataFrame
        :func:`recorded_at_identification` (indexed by ``household_id``); only its
        households count.
    true_cause : Series, optional
        As for :func:`reason_agreement`.

    Returns
    -------
    dict
        :data:`AGREEMENT_COUNTS`.
    """
    ids = (reasons["household_id"] if "household_id" in reasons.columns
           else pd.Series(reasons.index, index=reasons.index)).astype(str).to_numpy()
    given = pd.DataFrame({c: (reasons[c].astype("string").to_numpy() if c in reasons
                              else pd.array([pd.NA] * len(reasons), dtype="string"))
                          for c in REASONS}, index=pd.Index(ids, name="household_id"))
    given = given[~given.index.duplicated()]
    types = recorded[RECORDED_RISKS].reindex(given.index)
    have = given["reason_1"].notna().to_numpy() & types.notna().any(axis=1).to_numpy()
    given, types = given[have], types[have]
    # Empty slots never match: a sentinel unlike any code (and unlike the reasons' own).
    kinds = types.fillna("\x01").to_numpy(dtype=object)

    def among(values: np.ndarray) -> np.ndarray:
        named = pd.array(values, dtype="string").fillna("\0").to_numpy(dtype=object)
        return (kinds == named[:, None]).any(axis=1)

    first = among(given["reason_1"].to_numpy(dtype=object))
    any_of = first | among(given["reason_2"].to_numpy(dtype=object)) | among(
        given["reason_3"].to_numpy(dtype=object))
    out = dict.fromkeys(AGREEMENT_COUNTS, 0)
    out.update(households=int(have.sum()), reason_1_recorded=int(first.sum()),
               reasons_1_3_recorded=int(any_of.sum()))
    if true_cause is not None:
        truth = true_cause.copy()
        truth.index = truth.index.astype(str)
        truth = truth[~truth.index.duplicated()].astype("string").reindex(given.index)
        known = truth.notna().to_numpy()
        cause = truth.fillna("\0").to_numpy(dtype=object)
        out.update(truth_households=int(known.sum()),
                   reason_1_true=int((known & (given["reason_1"].to_numpy(dtype=object)
                                                == cause)).sum()),
                   recorded_true=int((known & among(cause)).sum()))
    return out


def agreement_rates(counts: dict[str, int]) -> dict[str, float]:
    """Shares from the counts of :func:`reason_agreement` (added up over parts or origins).

    Returns
    -------
    dict
        ``households``; ``reason_1_recorded`` and ``reasons_1_3_recorded`` as shares of
        ``households`` (NaN without any); with a truth, ``truth_households`` and
        ``reason_1_true`` and ``recorded_true`` as shares of ``truth_households``.

    Examples
    --------
    >>> agreement_rates({"households": 4, "reason_1_recorded": 1, "reasons_1_3_recorded": 2})
    {'households': 4.0, 'reason_1_recorded': 0.25, 'reasons_1_3_recorded': 0.5}
    """
    n, t = counts.get("households", 0), counts.get("truth_households", 0)
    out = {"households": float(n)}
    for key in ("reason_1_recorded", "reasons_1_3_recorded"):
        out[key] = counts.get(key, 0) / n if n else float("nan")
    if t:
        out["truth_households"] = float(t)
        for key in ("reason_1_true", "recorded_true"):
            out[key] = counts.get(key, 0) / t
    return out


def add_agreement(total: dict[str, int] | None, part: dict[str, int]) -> dict[str, int]:
    """The counts of two parts added up (``total`` None: the part's)."""
    if total is None:
        return dict(part)
    return {k: int(total.get(k, 0)) + int(part.get(k, 0)) for k in AGREEMENT_COUNTS}


ReasonsOf = Callable[..., pd.DataFrame]


def origin_agreement(reasons: ReasonsOf, ledger: pd.DataFrame, config,
                     truth: pd.DataFrame | None = None) -> Callable[[object, str], dict]:
    """What the backtest calls at each origin: the fold model's reasons at the origin month t
    checked against the types recorded for the households identified in (t, t + H].

    Parameters
    ----------
    reasons : callable
        ``reasons(model, ledger, config, month)`` → a frame indexed by ``household_id`` with
        ``reason_1`` … ``reason_3`` (:func:`riskmodel.explain.explain_month`); it is given the
        rows of the households identified in the window only.
    ledger : DataFrame
        The training ledger, with :func:`has_recorded_risks`.
    config : Config
        ``label.horizon_months`` is H.
    truth : DataFrame, optional
        Synthetic truth with ``household_id``, ``month`` and ``true_cause``.

    Returns
    -------
    callable
        ``check(model, origin)`` → the counts of :func:`reason_agreement`.
    """
    horizon = int(config.label.horizon_months)
    have_truth = truth is not None and "true_cause" in truth.columns

    def check(model, origin: str) -> dict[str, int]:
        t = int(month_index(pd.Series([origin]))[0])
        identified = recorded_at_identification(ledger, t, t + horizon)
        rows = ledger[ledger["household_id"].astype(str).isin(identified.index)]
        if not len(rows) or not (rows["month"].astype(str) == origin).any():
            return dict.fromkeys(AGREEMENT_COUNTS, 0)
        # The reasons read the rows up to the origin only: point-in-time.
        frame = reasons(model, rows[month_index(rows["month"]) <= t], config, origin)
        cause = None
        if have_truth:
            at = truth[truth["month"].astype(str) == origin]
            cause = pd.Series(at["true_cause"].to_numpy(),
                              index=at["household_id"].astype(str).to_numpy())
        return reason_agreement(frame, rows, t, t + horizon, true_cause=cause)

    return check


def agreement_metrics(by_origin: pd.DataFrame | None) -> dict[str, float]:
    """The backtest's agreement pooled over its origins, as flat metrics for MLflow.

    Keys ``agreement_<rate>`` of :func:`agreement_rates` on the counts summed over origins;
    empty without counts. No household identifier.
    """
    if by_origin is None or by_origin.empty:
        return {}
    total = {k: int(by_origin[k].sum()) for k in AGREEMENT_COUNTS if k in by_origin}
    return {f"agreement_{k}": v for k, v in agreement_rates(total).items()}


def agreement_line(metrics: dict[str, float]) -> str:
    """One line of the backtest's agreement (:func:`agreement_metrics`) for the terminal.

    Examples
    --------
    >>> agreement_line({"agreement_households": 40.0, "agreement_reason_1_recorded": 0.5,
    ...                 "agreement_reasons_1_3_recorded": 0.75})
    ... # doctest: +NORMALIZE_WHITESPACE
    'reasons against the recorded risk types, 40 households identified in the horizon:
     reason_1 50.0%, reason_1..3 75.0%'
    """
    n = int(metrics.get("agreement_households", 0))
    line = (f"reasons against the recorded risk types, {n} households identified in the "
            f"horizon: reason_1 {metrics.get('agreement_reason_1_recorded', np.nan):.1%}, "
            f"reason_1..3 {metrics.get('agreement_reasons_1_3_recorded', np.nan):.1%}")
    if "agreement_truth_households" in metrics:
        line += (f"; reason_1 = true cause {metrics['agreement_reason_1_true']:.1%}, recorded "
                 f"types include the true cause {metrics['agreement_recorded_true']:.1%} "
                 f"({int(metrics['agreement_truth_households'])} with a true cause)")
    return line
