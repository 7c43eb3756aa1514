"""The plausibility figures of a synthetic ledger (and its truth), as ``generate`` prints them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import Config, load_config
from ..ledger import EVENTS, INCOME
from ..model import make_labels, poverty_lines
from ..months import month_index
from ._simulate import CAUSES


def base_rates(ledger: pd.DataFrame, config: Config | None = None,
               truth: pd.DataFrame | None = None) -> dict[str, float]:
    """The figures that say whether a ledger is plausible, as the ``generate`` command prints.

    Parameters
    ----------
    ledger : DataFrame
        A ledger (raw or validated).
    config : Config, optional
        Lines and horizon; the packaged default when omitted.
    truth : DataFrame, optional
        The ledger's truth, for the same figures on complete data and the true risks.

    Returns
    -------
    dict
        ``households``, ``months``, ``unvisited_share`` (months whose income cells are all
        empty), ``poor_share`` (of household-months whose poverty is known), ``fall_rate``
        (share of training rows whose target is 1) and ``fall_rate_same_line`` (the same over
        months whose horizon stays under one line, so that a raised line is not counted as
        falls), ``dibao_share``, ``welfare_job_share``, ``monitored_share``, ``<event>_per_year``
        (event-months per household-year), and with a truth ``poor_share_complete``,
        ``fall_rate_complete``, ``fall_rate_complete_same_line``, ``true_risk_not_poor`` (mean
        over the non-poor at the truth months) and ``true_cause_<cause>`` (shares of the causes
        among the non-poor whose true risk is at least 0.25).
    """
    config = load_config() if config is None else config
    labels = make_labels(ledger, config)
    m = month_index(labels["month"])
    horizon = config.label.horizon_months
    province, county = ledger.get("province"), ledger.get("county")
    same = (poverty_lines(config, m // 12, province, county)
            == poverty_lines(config, np.minimum(m + horizon, m.max()) // 12, province, county))
    target = labels["target"].to_numpy()
    rates = {
        "households": float(ledger["household_id"].nunique()),
        "months": float(ledger["month"].nunique()),
        "unvisited_share": float(ledger[INCOME].isna().all(axis=1).mean()),
        "poor_share": _mean(_floats(labels["poor"])),
        "fall_rate": _mean(target),
        "fall_rate_same_line": _mean(target[same]),
        "dibao_share": float(ledger["dibao"].astype(float).mean()),
        "welfare_job_share": float(ledger["welfare_job"].astype(float).mean()),
        "monitored_share": float((ledger["household_type"] == "monitored").mean()),
    }
    for event in EVENTS:
        rates[f"{event}_per_year"] = float(ledger[event].astype(float).mean() * 12)
    if truth is not None:
        complete = truth["target_complete"].to_numpy()
        at = truth[truth["true_risk"].notna() & (truth["poor_complete"] == False)]  # noqa: E712
        high = at.loc[at["true_risk"] >= 0.25, "true_cause"].astype(str)
        rates.update({
            "poor_share_complete": _mean(_floats(truth["poor_complete"])),
            "fall_rate_complete": _mean(complete),
            "fall_rate_complete_same_line": _mean(complete[same]),
            "true_risk_not_poor": _mean(at["true_risk"].to_numpy()),
        })
        for cause in [*CAUSES, "structural"]:
            rates[f"true_cause_{cause}"] = float((high == cause).mean()) if len(high) else np.nan
    return rates


def _mean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else np.nan


def _floats(flags: pd.Series) -> np.ndarray:
    """A nullable boolean column as 1.0 / 0.0 / NaN."""
    return flags.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def share_text(value: float) -> str:
    return "unknown" if np.isnan(value) else f"{value:.1%}"

