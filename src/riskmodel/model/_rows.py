"""The rows a model learns from: labels and point-in-time features of every labelled row.

:func:`training_data` builds them from a ledger and checks them before any fit: the features
the config names exist, there are months enough to hold out validation, calibration and the
backtest's origins, and positive labels enough (:class:`TrainingData`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import Config
from ..errors import ConfigError, TrainingDataError
from ..months import month_index
from ._backtest import time_splits
from ._features import build_features, feature_causes, ledger_features
from ._labels import make_labels


@dataclass(frozen=True)
class TrainingData:
    """The rows a model learns from: features, target and month of every labelled row."""

    features: pd.DataFrame
    target: np.ndarray
    months: np.ndarray
    households: np.ndarray
    groups: pd.DataFrame


# What a positive label is, by label.kind, for the messages.
FALLS = {"income": "households falling below the line",
         "identified": "households identified as monitoring objects",
         "either": "households falling below the line or identified"}


def training_data(ledger: pd.DataFrame, config: Config) -> TrainingData:
    """Labels and point-in-time features of every row that has a label, checked for training.

    Raises
    ------
    ConfigError
        The config's ``features`` block names a feature that is not built, or misses one.
    TrainingDataError
        One month only, no labelled row, too few positive labels, or too few months to hold
        out validation, calibration and backtest months.
    """
    causes = feature_causes(config)
    unknown = sorted(set(config.model.exclude_features) - set(causes))
    if unknown:
        raise ConfigError(f"model.exclude_features names {unknown}, which are not features; "
                          "expected names of riskmodel.model.FEATURE_NAMES.")
    n_months = int(ledger["month"].nunique()) if len(ledger) else 0
    h = config.label.horizon_months
    if n_months < 2:
        raise TrainingDataError(
            f"Got a ledger of {n_months} month(s), expected a history: labels look {h} months "
            "ahead, so training needs many months.")
    labels = make_labels(ledger, config)
    rows = np.flatnonzero(labels["target"].notna().to_numpy())
    target = labels["target"].to_numpy()[rows]
    positives = int(target.sum())
    need = config.model.min_positive_labels
    if positives < need:
        raise TrainingDataError(
            f"Got {positives} positive labels ({FALLS[config.label.kind]} within {h} "
            f"months) in {len(rows)} training rows, expected at least {need} "
            "(model.min_positive_labels).")
    months = labels["month"].to_numpy(dtype=object)[rows]
    _check_months(months, config)
    label_months = sorted(set(months))
    feats = build_features(ledger, config, months=label_months)
    # Features whose ledger columns this ledger lacks (incomes as recorded, on a ledger of
    # monthly incomes) are left out; the fitted model records the columns it learnt from.
    usable = set(ledger_features(ledger))
    feats = feats.loc[ledger.index[rows], [n for n in causes if n in usable]]
    groups = pd.DataFrame({
        c: ledger[c].to_numpy(dtype=object)[rows] if c in ledger else "all"
        for c in ("county", "household_type")})
    return TrainingData(features=feats.reset_index(drop=True), target=target, months=months,
                        households=ledger["household_id"].to_numpy(dtype=object)[rows],
                        groups=groups)


def _check_months(months: np.ndarray, config: Config) -> None:
    m = config.model
    bt = config.backtest
    distinct = np.unique(month_index(pd.Series(months)))
    fit_needs = m.validation_months + m.calibration_months + 1
    gap = config.label.horizon_months if bt.label_embargo else 1
    backtest_needs = fit_needs + gap - 1 + bt.origins * bt.test_months
    if len(distinct) < backtest_needs:
        raise TrainingDataError(
            f"Got {len(distinct)} months with labels, expected at least {backtest_needs}: "
            f"{fit_needs} to train, validate and calibrate, "
            f"{gap - 1} of label embargo and {bt.origins * bt.test_months} to backtest. "
            "Give a longer ledger or lower model.validation_months, model.calibration_months or "
            "backtest.origins.")


def _check_slices(data: TrainingData, config: Config) -> None:
    """Every slice a fit will cut must hold positive labels: say so before anything trains."""
    bt = config.backtest
    splits = time_splits(data.months, origins=bt.origins, test_months=bt.test_months,
                         horizon=config.label.horizon_months, label_embargo=bt.label_embargo)
    idx = month_index(pd.Series(data.months))
    m = config.model
    for rows, what in [(s.train, f"backtest origin {s.origin}") for s in splits] + [
            (np.arange(len(idx)), "final model")]:
        distinct = np.unique(idx[rows])
        if len(distinct) < m.validation_months + m.calibration_months + 1:
            raise TrainingDataError(
                f"The {what} has {len(distinct)} months of labels, expected at least "
                f"{m.validation_months + m.calibration_months + 1}.")
        cal_from = distinct[-m.calibration_months]
        val_from = distinct[-m.calibration_months - m.validation_months]
        sub_idx, sub_y = idx[rows], data.target[rows]
        for name, sel in (("train", sub_idx < val_from),
                          ("validation", (sub_idx >= val_from) & (sub_idx < cal_from)),
                          ("calibration", sub_idx >= cal_from)):
            if sub_y[sel].sum() == 0 or sub_y[sel].min() == 1:
                raise TrainingDataError(
                    f"The {name} months of the {what} hold "
                    f"{int(sub_y[sel].sum())} positive labels in {int(sel.sum())} rows; "
                    "expected both outcomes. Give more households or months.")
