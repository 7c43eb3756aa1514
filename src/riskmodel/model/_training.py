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
from ..errors import ArgumentError, ConfigError, ModelNotFoundError, TrainingDataError
from ..ledger import LedgerChunks, load_ledger, sample_households, validate_ledger
from ..months import month_index, month_label
from ._agreement import (
    agreement_line,
    agreement_metrics,
    has_recorded_risks,
    origin_agreement,
)
from ._backtest import (
    BacktestResult,
    comparable_origins,
    compare_fitted,
    model_features,
    plot_calibration,
    plot_caseload,
    plot_precision_recall,
    time_splits,
)
from ._estimator import RiskModel
from ._features import build_features, feature_causes, ledger_features
from ._labels import make_labels
from ._level import recent_falls
from ._selection import Selection, check_selection_config, select_model, selection_table
from ._store import check_tracking_server, resolve_tracking_uri
from ._tracking import (
    MODEL_NAME,
    LoggedRun,
    alias_version,
    check_alias,
    data_fingerprint,
    input_example,
    load_model,
    log_training_run,
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


@dataclass(frozen=True)
class Promotion:
    """The alias gate: whether a new version earned the alias, and the figures that decided.

    The new model's backtest figure of ``metric`` is compared with the best of the rule
    baselines' (``training.promotion.baselines``) and, when the alias already points at a
    version whose model can be judged on this ledger, with that version's on the backtest
    months it did not learn from (the new model's figure on the same rows beside it).

    Attributes
    ----------
    alias : str
    metric : str
    promoted : bool
        The alias points at the new version (earned, or forced).
    forced : bool
        Set by ``force_alias`` (``--force-alias``) although the gate was not passed.
    passed : bool
        The gate's own verdict, forced or not.
    model, baseline_value : float
        The new model's pooled backtest figure and the best baseline's.
    baseline : str
        Which baseline scorer that is.
    min_gain_over_rules, min_gain_over_champion : float
    champion_version : str or None
        The version the alias pointed at before this run.
    champion, model_on_champion_months : float or None
        That version's figure and the new model's on the same rows (None when not compared).
    champion_months : tuple of str
        The backtest origins compared with it.
    note : str
        Why the champion was not compared, when it was not.
    """

    alias: str
    metric: str
    promoted: bool
    forced: bool
    passed: bool
    model: float
    baseline: str
    baseline_value: float
    min_gain_over_rules: float
    min_gain_over_champion: float
    champion_version: str | None = None
    champion: float | None = None
    model_on_champion_months: float | None = None
    champion_months: tuple[str, ...] = ()
    note: str = ""

    @property
    def decision(self) -> str:
        """``promoted``, ``not_promoted`` or ``forced``."""
        if self.forced:
            return "forced"
        return "promoted" if self.promoted else "not_promoted"

    def line(self, version: str | None = None) -> str:
        """The decision and the figures of both sides, in one line."""
        new = f"version {version}" if version else "the new version"
        was = (f"left on version {self.champion_version}" if self.champion_version
               else "left unset")
        if self.forced:
            head = f"alias {self.alias} set on {new} by --force-alias, although the gate failed"
        elif self.promoted:
            head = f"alias {self.alias} moved to {new}"
        else:
            head = (f"alias {self.alias} {was} ({new} registered, not promoted; "
                    "--force-alias to set it anyway)")
        parts = [f"{self.metric} in the backtest: new {_fmt(self.model)} vs {self.baseline} "
                 f"{_fmt(self.baseline_value)} (gain {_gain(self.model, self.baseline_value)}, "
                 f"needs {self.min_gain_over_rules:+.3f})"]
        if self.champion is not None:
            months = (self.champion_months[0] if len(self.champion_months) == 1 else
                      f"{self.champion_months[0]}…{self.champion_months[-1]}")
            parts.append(f"vs version {self.champion_version} on {months}: new "
                         f"{_fmt(self.model_on_champion_months)} vs {_fmt(self.champion)} (gain "
                         f"{_gain(self.model_on_champion_months, self.champion)}, needs "
                         f"{self.min_gain_over_champion:+.3f})")
        elif self.champion_version:
            parts.append(f"version {self.champion_version} not compared: {self.note}")
        return f"{head}: " + "; ".join(parts)

    def tags(self) -> dict[str, str]:
        """Run and version tags recording the decision."""
        out = {"riskmodel.promotion": self.decision, "riskmodel.promotion.alias": self.alias,
               "riskmodel.promotion.metric": self.metric,
               "riskmodel.promotion.reason": self.line()}
        if self.champion_version:
            out["riskmodel.promotion.champion_version"] = self.champion_version
        return out

    def metrics(self) -> dict[str, float]:
        """Run metrics of the decision (the figures compared, their gains, 1/0 promoted)."""
        out = {"promotion_promoted": float(self.promoted), "promotion_forced": float(self.forced),
               "promotion_model": self.model, "promotion_baseline": self.baseline_value,
               "promotion_gain_over_rules": self.model - self.baseline_value}
        if self.champion is not None:
            out.update(promotion_champion=self.champion,
                       promotion_model_on_champion_months=self.model_on_champion_months,
                       promotion_gain_over_champion=self.model_on_champion_months - self.champion)
        return out


def _fmt(value: float | None) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.3f}"


def _gain(new: float | None, old: float | None) -> str:
    if new is None or old is None or not (np.isfinite(new) and np.isfinite(old)):
        return "not measurable"
    return f"{new - old:+.3f}"


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


def check_promotion_config(config: Config) -> None:
    """Refuse a ``training.promotion`` block the backtest cannot answer, before training.

    Raises
    ------
    ConfigError
        ``metric`` is a caseload figure for a caseload not in ``backtest.caseloads``.
    """
    metric = config.training.promotion.metric
    measured = {f"{kind}_at_{round(c * 100):g}pct" for c in config.backtest.caseloads
                for kind in ("recall", "precision")}
    if metric not in {"auc", "ap"} | measured:
        raise ConfigError(
            f"training.promotion.metric is {metric!r}, which the backtest does not measure; "
            f"expected auc, ap or one of {', '.join(sorted(measured))} (backtest.caseloads).")


# Differences within floating-point noise of the margin count as meeting it.
_TOLERANCE = 1e-12


def promotion_gate(
    result: BacktestResult,
    data: TrainingData,
    config: Config,
    alias: str,
    *,
    champion: RiskModel | None = None,
    champion_version: str | None = None,
    note: str = "",
    force: bool = False,
) -> Promotion:
    """Decide whether a new model earns ``alias`` (``training.promotion`` of the config).

    Parameters
    ----------
    result : BacktestResult
        The new model's backtest.
    data : TrainingData
        The rows the backtest ran on (the champion is scored on their features).
    config : Config
    alias : str
    champion : RiskModel, optional
        The model the alias points at now; judged at the backtest origins it did not learn
        from (:func:`riskmodel.model.comparable_origins`), when its horizon and features
        fit this config.
    champion_version : str, optional
        Its registered version.
    note : str, optional
        Why there is a version but no model to compare (e.g. it could not be loaded).
    force : bool, default=False
        Promote whatever the verdict; the decision records that it was forced.

    Returns
    -------
    Promotion
    """
    rule = config.training.promotion
    pooled = {s: result.pooled(s).get(rule.metric, np.nan) for s in rule.baselines}
    baseline = max(pooled, key=lambda s: -np.inf if not np.isfinite(pooled[s]) else pooled[s])
    model_value = result.pooled("model").get(rule.metric, np.nan)
    passed = bool(model_value - pooled[baseline] >= rule.min_gain_over_rules - _TOLERANCE)
    compared: dict = {}
    if champion is not None:
        compared, note = _judge_champion(result, data, config, champion)
    if compared:
        passed &= bool(compared["model_on_champion_months"] - compared["champion"]
                       >= rule.min_gain_over_champion - _TOLERANCE)
    return Promotion(
        alias=alias, metric=rule.metric, promoted=passed or force, forced=force and not passed,
        passed=passed, model=float(model_value), baseline=baseline,
        baseline_value=float(pooled[baseline]), min_gain_over_rules=rule.min_gain_over_rules,
        min_gain_over_champion=rule.min_gain_over_champion, champion_version=champion_version,
        note=note, **compared)


def _judge_champion(result: BacktestResult, data: TrainingData, config: Config,
                    champion: RiskModel) -> tuple[dict, str]:
    """The champion's and the new model's figures on the rows both can be judged on, or why
    there are none."""
    metric = config.training.promotion.metric
    horizon = config.label.horizon_months
    theirs = getattr(champion, "horizon_months_", None)
    if theirs is not None and int(theirs) != horizon:
        return {}, (f"it predicts falls within {theirs} months, this config within {horizon}")
    names = [str(c) for c in getattr(champion, "feature_names_in_", [])]
    missing = [c for c in names if c not in data.features.columns]
    if missing:
        return {}, (f"it needs features this config does not build "
                    f"({', '.join(missing[:3])}{' …' if len(missing) > 3 else ''})")
    lasts = [v["last"] for v in getattr(champion, "slices_", {}).values()
             if isinstance(v, dict) and isinstance(v.get("last"), str)]
    if not lasts:
        return {}, "the months it learnt from are not recorded"
    trained_to = max(lasts)
    bt = config.backtest
    origins = comparable_origins(result.splits, trained_to, horizon=horizon,
                                 label_embargo=bt.label_embargo)
    if not origins:
        gap = horizon if bt.label_embargo else 1
        latest = result.splits[-1].origin
        limit = str(month_label(int(month_index(pd.Series([latest]))[0]) - gap))
        return {}, (f"it learnt from months up to {trained_to}, and no backtest origin comes "
                    f"late enough to judge it without outcomes it learnt from (the last, "
                    f"{latest}, needs a model that learnt up to {limit} at most)")
    both = compare_fitted(result, data.features, champion, origins, n_bins=bt.calibration_bins)
    new, old = both["model"].get(metric, np.nan), both["other"].get(metric, np.nan)
    if not (np.isfinite(new) and np.isfinite(old)):
        return {}, f"{metric} cannot be measured on {', '.join(origins)} (no fall there)"
    return {"champion": float(old), "model_on_champion_months": float(new),
            "champion_months": tuple(origins)}, ""


def _champion(alias: str, tracking_uri: str | None) -> dict:
    """The version ``alias`` points at now and its model, or why it cannot be judged."""
    version = alias_version(alias, tracking_uri)
    if version is None:
        return {}
    try:
        model, _ = load_model(f"models:/{MODEL_NAME}/{version}", tracking_uri=tracking_uri)
    except ModelNotFoundError as exc:
        return {"champion_version": version, "note": f"it cannot be loaded ({exc})"}
    return {"champion": model, "champion_version": version}


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
