"""The training job: ledger → labels → features → backtest → final model → MLflow.

A thin function: every step is a public function of its own module, so a notebook can run the
same steps one by one. The caller chooses the data: the job trains on the whole ledger it is
given (truncate the ledger to simulate a past date).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .backtest import (
    BacktestResult,
    backtest,
    model_features,
    plot_calibration,
    plot_caseload,
    plot_precision_recall,
    time_splits,
)
from .chunks import LedgerChunks
from .config import Config, load_config
from .errors import ConfigError, TrainingDataError
from .features import build_features, feature_causes
from .labels import make_labels, month_index
from .ledger import load_ledger, validate_ledger
from .margin import sample_households
from .models import RiskModel
from .tracking import (
    LoggedRun,
    check_alias,
    check_tracking_server,
    data_fingerprint,
    input_example,
    log_training_run,
    resolve_tracking_uri,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes
    ----------
    model : RiskModel
        Fitted on every training row of the ledger.
    backtest : BacktestResult
    run : LoggedRun or None
        The MLflow run and registered version (None when tracking was off).
    fingerprint : dict
        Hash and counts of the ledger trained on.
    """

    model: RiskModel
    backtest: BacktestResult
    run: LoggedRun | None
    fingerprint: dict


@dataclass(frozen=True)
class TrainingData:
    """The rows a model learns from: features, target and month of every labelled row."""

    features: pd.DataFrame
    target: np.ndarray
    months: np.ndarray
    households: np.ndarray
    groups: pd.DataFrame


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
                          "expected names of riskmodel.features.FEATURE_NAMES.")
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
            f"Got {positives} positive labels (households falling below the line within {h} "
            f"months) in {len(rows)} training rows, expected at least {need} "
            "(model.min_positive_labels).")
    months = labels["month"].to_numpy(dtype=object)[rows]
    _check_months(months, config)
    label_months = sorted(set(months))
    feats = build_features(ledger, config, months=label_months)
    feats = feats.loc[ledger.index[rows], list(causes)]
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


def train(
    ledger: pd.DataFrame,
    config: Config | None = None,
    tracking_uri: str | None = None,
    alias: str | None = None,
    truth: pd.DataFrame | None = None,
    *,
    track: bool = True,
    source: str | None = None,
) -> TrainResult:
    """Backtest, fit on the whole ledger and record the run in MLflow.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger (:func:`riskmodel.validate_ledger`).
    config : Config, optional
        Defaults to the packaged configuration.
    tracking_uri : str, optional
        See :func:`riskmodel.tracking.resolve_tracking_uri`.
    alias : str, optional
        Point this alias (e.g. ``champion``) at the registered version.
    truth : DataFrame, optional
        Synthetic truth (``household_id``, ``month``, ``true_risk``): the backtest then reports
        the true risk as the ceiling.
    track : bool, default=True
        Record the run in MLflow and register the model.
    source : str, optional
        Where the ledger came from, recorded with its fingerprint.

    Returns
    -------
    TrainResult

    Raises
    ------
    ArgumentError
        ``alias`` is not one MLflow accepts; said before anything trains.
    TrackingServerError
        With ``track``, the tracking server cannot be reached; said before anything trains.
    """
    config = config or load_config()
    if track:
        _check_tracking(tracking_uri, alias)
    started = time.perf_counter()
    data = training_data(ledger, config)
    _check_slices(data, config)
    log.info("labels and features: %d training rows, %d positive, %.1f s", len(data.target),
             int(data.target.sum()), time.perf_counter() - started)
    true_risk = _truth_for(truth, data, ledger, config)
    step = time.perf_counter()
    result = backtest(data.features, data.target, data.months, config,
                      households=data.households, groups=data.groups, true_risk=true_risk)
    log.info("backtest: %d origins, %.1f s", len(result.splits), time.perf_counter() - step)
    step = time.perf_counter()
    inputs = model_features(data.features.columns, config)
    model = RiskModel.from_config(config, inputs, calibration=result.calibration)
    model.fit(data.features[inputs], data.target, months=data.months)
    model.summary_ = result.summary()
    log.info("final model: %d trees, %.1f s", model.n_iter_, time.perf_counter() - step)
    fingerprint = {**data_fingerprint(ledger), "training_rows": len(data.target),
                   "positives": int(data.target.sum())}
    run = None
    if track:
        run = log_training_run(
            model,
            tracking_uri=tracking_uri,
            config=config.model_dump(mode="json"),
            metrics=_metrics(result),
            fingerprint=fingerprint,
            example=input_example(data.features[inputs]),
            figures={"calibration.png": plot_calibration(result),
                     "recall_at_caseload.png": plot_caseload(result),
                     "precision_recall.png": plot_precision_recall(result)},
            tables={"scorecard.csv": model.scorecard_.table(),
                    "scorecard_lookup.csv": model.scorecard_.lookup(),
                    "backtest_metrics.csv": result.metrics,
                    "backtest_intervals.csv": result.intervals,
                    "backtest_by_group.csv": result.by_group,
                    "reliability.csv": result.reliability},
            texts={"scorecard.html": model.scorecard_.to_html()},
            alias=alias,
            source=source,
        )
        log.info("tracked as %s, %.1f s in all", run.model_uri, time.perf_counter() - started)
    return TrainResult(model=model, backtest=result, run=run, fingerprint=fingerprint)


def _check_tracking(tracking_uri: str | None, alias: str | None) -> None:
    """What would stop the run at the end, said before the minutes of training."""
    if alias is not None:
        check_alias(alias)
    check_tracking_server(resolve_tracking_uri(tracking_uri))


def _metrics(result: BacktestResult) -> dict[str, float]:
    out = dict(result.summary())
    for row in result.intervals.itertuples(index=False):
        out[f"{row.scorer}_{row.metric}_ci_low"] = row.low
        out[f"{row.scorer}_{row.metric}_ci_high"] = row.high
    return out


def _truth_for(truth: pd.DataFrame | None, data: TrainingData, ledger: pd.DataFrame,
               config: Config) -> np.ndarray | None:
    if truth is None or "true_risk" not in truth:
        return None
    key = pd.MultiIndex.from_arrays([truth["household_id"].astype(str),
                                     truth["month"].astype(str)])
    risk = pd.Series(truth["true_risk"].to_numpy(dtype="float64"), index=key)
    risk = risk[~risk.index.duplicated()]
    rows = pd.MultiIndex.from_arrays([pd.Series(data.households).astype(str),
                                      pd.Series(data.months).astype(str)])
    return risk.reindex(rows).to_numpy(dtype="float64")


def train_from_path(
    ledger_path: str | Path,
    config_path: str | Path | None = None,
    tracking_uri: str | None = None,
    alias: str | None = None,
) -> TrainResult:
    """Read and validate a ledger file, train, print the backtest table, return the result.

    This is what ``riskmodel train`` runs. The alias and the tracking server are checked
    before the ledger is read (see :func:`train`).
    """
    from rich.console import Console
    from rich.table import Table

    config = load_config(config_path)
    _check_tracking(tracking_uri, alias)
    console = Console()
    loaded, sample = None, config.model.train_households
    if sample is not None:
        # Only the drawn households' rows are read and validated.
        chunks = LedgerChunks(ledger_path, config.scoring.chunk_households)
        ids = chunks.households
        if len(ids) > sample:
            drawn = ids[sample_households(ids, sample / len(ids))]
            loaded = validate_ledger(chunks.rows_of(drawn))
            console.print(f"{ledger_path}: {len(drawn)} of {len(ids)} households drawn "
                          f"(model.train_households: {sample})")
    if loaded is None:
        loaded = load_ledger(ledger_path)
    console.print(f"{ledger_path}: {loaded.n_in} rows read, {len(loaded.valid)} valid, "
                  f"{len(loaded.quarantine)} quarantined")
    result = train(loaded.valid, config, tracking_uri=tracking_uri, alias=alias,
                   source=str(ledger_path))
    bt = result.backtest
    table = Table(title=f"Backtest, {len(bt.splits)} origin(s) "
                        f"({', '.join(s.origin for s in bt.splits)}); "
                        f"calibration: {bt.calibration}")
    shown = bt.table()
    table.add_column("metric")
    for scorer in shown.columns:
        table.add_column(str(scorer), justify="right")
    for metric, values in shown.iterrows():
        table.add_row(str(metric), *[f"{v:.3f}" if pd.notna(v) else "—" for v in values])
    console.print(table)
    if result.run is not None:
        where = result.run.model_uri + (f" (alias @{result.run.alias})" if result.run.alias else "")
        console.print(f"run {result.run.run_id} in {result.run.tracking_uri}; model {where}")
    return result
