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

from ..config import Config, load_config
from ..errors import ArgumentError
from ..ledger import LedgerChunks, load_ledger, sample_households, validate_ledger
from ._agreement import agreement_line, agreement_metrics, has_recorded_risks, origin_agreement
from ._backtest import (
    BacktestResult,
    model_features,
    plot_calibration,
    plot_caseload,
    plot_precision_recall,
)
from ._estimator import RiskModel
from ._level import recent_falls
from ._promotion import Promotion, _champion, check_promotion_config, promotion_gate
from ._rows import TrainingData, _check_slices, training_data
from ._selection import Selection, check_selection_config, select_model, selection_table
from ._store import check_tracking_server, resolve_tracking_uri
from ._tracking import LoggedRun, check_alias, data_fingerprint, input_example, log_training_run

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
    promotion : Promotion or None
        The alias gate's decision (None when no alias was asked for, or tracking was off).
    selection : Selection or None
        The candidates backtested and the one chosen (``selection.table``); with
        ``model.selection.enabled: false``, ``base`` alone.
    """

    model: RiskModel
    backtest: BacktestResult
    run: LoggedRun | None
    fingerprint: dict
    promotion: Promotion | None = None
    selection: Selection | None = None


















def train(
    ledger: pd.DataFrame,
    config: Config | None = None,
    tracking_uri: str | None = None,
    alias: str | None = None,
    truth: pd.DataFrame | None = None,
    *,
    track: bool = True,
    source: str | None = None,
    force_alias: bool = False,
    reasons=None,
) -> TrainResult:
    """Backtest, choose among candidates, fit on the whole ledger and record the run in MLflow.

    With ``model.selection.enabled`` (the default), the ``model`` block (``base``) and each
    candidate of ``model.selection`` are backtested in turn as its cost budget allows
    (:func:`riskmodel.model.select_model`); the one with the best mean over origins of
    ``model.selection.metric`` is fitted on the whole ledger, gated and registered, and every
    candidate's figures are recorded. Disabled, ``base`` alone is backtested and fitted.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger (:func:`riskmodel.validate_ledger`).
    config : Config, optional
        Defaults to the packaged configuration.
    tracking_uri : str, optional
        See :func:`riskmodel.model.resolve_tracking_uri`.
    alias : str, optional
        Point this alias (e.g. ``champion``) at the registered version — only when the model
        passes the alias gate (``training.promotion``): in its backtest it beats the rule
        baselines, and the version the alias points at now where that one can be judged, by
        the configured margins. Otherwise the version is registered and the alias stays where
        it was; ``result.promotion`` says why.
    truth : DataFrame, optional
        Synthetic truth (``household_id``, ``month``, ``true_risk``): the backtest then reports
        the true risk as the ceiling.
    track : bool, default=True
        Record the run in MLflow and register the model.
    source : str, optional
        Where the ledger came from, recorded with its fingerprint.
    force_alias : bool, default=False
        Set ``alias`` even when the gate is not passed; the run records that it was forced.
    reasons : callable, optional
        ``reasons(model, ledger, config, month)`` → ``reason_1`` … by household
        (:func:`riskmodel.explain.explain_month`). When given and the ledger records
        identifications and risk types, the backtest checks each origin's reasons against the
        recorded types (:func:`riskmodel.model.origin_agreement`; with a ``truth`` holding
        ``true_cause``, against the true cause too), logged as ``agreement_*`` metrics and
        ``reason_agreement.csv``.

    Returns
    -------
    TrainResult

    Raises
    ------
    ArgumentError
        ``alias`` is not one MLflow accepts, or ``force_alias`` comes without an alias; said
        before anything trains.
    ConfigError
        With an alias, ``training.promotion.metric`` is not a figure the backtest measures;
        ``model.selection`` asks for a figure or a feature that is not there (said before
        anything trains).
    TrackingServerError
        With ``track``, the tracking server cannot be reached; said before anything trains.
    """
    config = config or load_config()
    _check_force(alias, force_alias)
    check_selection_config(config)
    if track:
        _check_tracking(tracking_uri, alias)
        if alias is not None:
            check_promotion_config(config)
    started = time.perf_counter()
    data = training_data(ledger, config)
    _check_slices(data, config)
    log.info("labels and features: %d training rows, %d positive, %.1f s", len(data.target),
             int(data.target.sum()), time.perf_counter() - started)
    true_risk = _truth_for(truth, data, ledger, config)
    step = time.perf_counter()
    check = (origin_agreement(reasons, ledger, config, truth)
             if reasons is not None and has_recorded_risks(ledger) else None)
    selection = select_model(data.features, data.target, data.months, config,
                             households=data.households, groups=data.groups,
                             true_risk=true_risk, origin_check=check)
    result = selection.backtest
    log.info("backtest: %d origins, %.1f s", len(result.splits), time.perf_counter() - step)
    if selection.enabled:
        log.info("%s", selection.line())
    # The chosen candidate's config: its model block is what the final model learns with.
    config = selection.config
    step = time.perf_counter()
    inputs = model_features(data.features.columns, config)
    model = RiskModel.from_config(config, inputs, calibration=result.calibration)
    model.fit(data.features[inputs], data.target, months=data.months)
    recent = (recent_falls(ledger, config)
              if config.model.level_months and config.label.target_column is None else None)
    if recent is not None and recent.usable:
        # The calibrated level follows the falls seen after the labelled months.
        model.follow_level(recent)
        log.info("level: ratio %.3f of falls seen to expected after %s, log-odds %+.3f",
                 model.level_["ratio"], model.level_["labelled_to"], model.level_["shift"])
    elif recent is not None:
        log.warning("level: the months after %s show no fall, or a year before them none is "
                    "labelled; the calibrator's level is kept", recent.labelled_to)
    model.summary_ = result.summary()
    log.info("final model: %d trees, %.1f s", model.n_iter_, time.perf_counter() - step)
    fingerprint = {**data_fingerprint(ledger), "training_rows": len(data.target),
                   "positives": int(data.target.sum())}
    run, promotion = None, None
    if track and alias is not None:
        promotion = promotion_gate(result, data, config, alias,
                                   **_champion(alias, tracking_uri), force=force_alias)
        (log.info if promotion.passed else log.warning)("%s", promotion.line())
    if track:
        run = log_training_run(
            model,
            tracking_uri=tracking_uri,
            config={**config.model_dump(mode="json"),
                    **({"selected_candidate": selection.chosen} if selection.enabled else {})},
            metrics={**_metrics(result), **agreement_metrics(result.agreement),
                     **(promotion.metrics() if promotion else {}),
                     **(selection.metrics() if selection.enabled else {}),
                     **_level_metrics(model)},
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
                    "reliability.csv": result.reliability,
                    **({} if result.agreement is None
                       else {"reason_agreement.csv": result.agreement}),
                    **({"selection.csv": selection.table} if selection.enabled else {})},
            texts={"scorecard.html": model.scorecard_.to_html()},
            alias=alias if promotion is not None and promotion.promoted else None,
            source=source,
            tags={**(promotion.tags() if promotion else {}),
                  **(selection.tags() if selection.enabled else {})},
        )
        log.info("tracked as %s, %.1f s in all", run.model_uri, time.perf_counter() - started)
    return TrainResult(model=model, backtest=result, run=run, fingerprint=fingerprint,
                       promotion=promotion, selection=selection)


def _level_metrics(model: RiskModel) -> dict[str, float]:
    """The level the final model follows (``level_``), as run metrics: the shift of its
    log-odds, the ratio of falls seen to expected and both counts; none without a level."""
    level = getattr(model, "level_", None)
    if level is None:
        return {}
    return {f"level_{k}": float(level[k]) for k in ("shift", "ratio", "seen", "expected")}


def _check_tracking(tracking_uri: str | None, alias: str | None) -> None:
    """What would stop the run at the end, said before the minutes of training."""
    if alias is not None:
        check_alias(alias)
    check_tracking_server(resolve_tracking_uri(tracking_uri))


def _check_force(alias: str | None, force_alias: bool) -> None:
    if force_alias and alias is None:
        raise ArgumentError("Got --force-alias without --alias, expected --alias NAME too "
                            "(the alias to set whatever the gate says).")












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
    force_alias: bool = False,
    reasons=None,
) -> TrainResult:
    """Read and validate a ledger file, train, print the backtest table, return the result.

    This is what ``riskmodel train`` runs (``reasons`` as for :func:`train`; the command line
    gives :func:`riskmodel.explain.explain_month`). The alias, ``training.promotion`` and the
    tracking server are checked before the ledger is read (see :func:`train`); the alias gate's
    decision is printed in one line.
    """
    from rich.console import Console
    from rich.table import Table

    config = load_config(config_path)
    _check_force(alias, force_alias)
    check_selection_config(config)
    _check_tracking(tracking_uri, alias)
    if alias is not None:
        check_promotion_config(config)
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
                   source=str(ledger_path), force_alias=force_alias, reasons=reasons)
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
    if result.selection is not None and result.selection.enabled:
        console.print(selection_table(result.selection))
    agreement = agreement_metrics(bt.agreement)
    if agreement:
        console.print(agreement_line(agreement), highlight=False, markup=False)
    if result.run is not None:
        where = result.run.model_uri + (f" (alias @{result.run.alias})" if result.run.alias else "")
        console.print(f"run {result.run.run_id} in {result.run.tracking_uri}; model {where}")
    if result.promotion is not None:
        version = result.run.version if result.run is not None else None
        console.print(result.promotion.line(version), soft_wrap=True, highlight=False,
                      markup=False)
    return result
