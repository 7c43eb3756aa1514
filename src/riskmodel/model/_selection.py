"""Model selection: training chooses among candidate models by the backtest on its own ledger.

A model tuned on one ledger (or one simulator) need not suit another: how many trees, how fine
their leaves, how many rows they learn on, which features and which calibration are best
depends on the ledger. ``model.selection`` lists candidates, each a set of ``model`` keys laid
over the ``model`` block. The block as it is runs first as ``base``; each candidate then runs
the same rolling-origin backtest (``backtest:`` block, label embargo included) in order, as far
as ``max_cost`` allows; the candidate with the best mean over origins of the chosen metric is
the one the training job fits on the whole ledger. Every figure compared is measured on months
the candidate's fold models never learnt from, so choosing among them is itself point in time.

Which candidates run is decided before any of them runs, from their costs alone
(:func:`candidate_cost`, a function of the config and the number of training rows), so the same
ledger, config and seed give the same model on a fast machine and on a slow one.
``time_budget_s`` is a safety cap on wall seconds: when it stops a candidate the plan allowed,
the choice depends on the machine, which is logged as a warning and recorded on the run.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..config import Config
from ..errors import ConfigError
from ._backtest import BacktestResult, _share_tag, backtest
from ._features import feature_causes

log = logging.getLogger(__name__)

BASE = "base"
#: Status of a candidate ``model.selection.max_cost`` leaves out (decided before any run).
SKIPPED_COST = "skipped: cost"
#: Status of a candidate the plan allowed but the wall-time cap ``time_budget_s`` stopped.
SKIPPED_CAP = "skipped: time cap"
SKIPPED = (SKIPPED_COST, SKIPPED_CAP)
#: Tag on the training run and its registered version: ``true`` when the time cap stopped a
#: candidate, so the same ledger and config may give another model on another machine.
MACHINE_TAG = "riskmodel.selection.machine_dependent"
# Trees a candidate is expected to grow before early stopping, per unit of learning rate: the
# cost estimate of a candidate not yet run (see :func:`candidate_cost`).
_TREES_AT_UNIT_RATE = 20.0


def measured_metrics(config: Config) -> set[str]:
    """The ranking figures the backtest measures under ``config``: ``auc``, ``ap`` and recall
    and precision at each caseload of ``backtest.caseloads``."""
    return {"auc", "ap"} | {f"{kind}_at_{_share_tag(c)}" for c in config.backtest.caseloads
                            for kind in ("recall", "precision")}


def candidate_configs(config: Config) -> list[tuple[str, dict, Config]]:
    """``base`` and every candidate of ``model.selection``, each as the config it trains with.

    Parameters
    ----------
    config : Config

    Returns
    -------
    list of (name, overrides, Config)
        In order, ``base`` (no override) first. ``exclude_causes`` is resolved into
        ``exclude_features`` (the features of those causes added to the candidate's own, or
        to the ``model`` block's when the candidate gives none). With
        ``model.selection.enabled: false``, ``base`` alone.

    Examples
    --------
    >>> from riskmodel import load_config
    >>> [name for name, _, _ in candidate_configs(load_config())]
    ['base', 'longer', 'wider', 'coarser']
    """
    out = [(BASE, {}, config)]
    sel = config.model.selection
    if not sel.enabled:
        return out
    causes = feature_causes(config)
    for cand in sel.candidates:
        over = cand.overrides()
        dropped = over.pop("exclude_causes", None)
        update = dict(over)
        if dropped is not None:
            own = update.get("exclude_features", config.model.exclude_features)
            update["exclude_features"] = list(dict.fromkeys(
                [*own, *[f for f, c in causes.items() if c in set(dropped)]]))
        model = config.model.model_copy(update=update)
        out.append((cand.name, over | ({"exclude_causes": dropped} if dropped else {}),
                    config.model_copy(update={"model": model})))
    return out


def check_selection_config(config: Config) -> None:
    """Refuse a ``model.selection`` block the training job cannot run, before anything trains.

    Raises
    ------
    ConfigError
        ``metric`` is a caseload figure for a caseload not in ``backtest.caseloads``; a
        candidate names a feature that is not built or a cause that is not in the cause
        table, or leaves no feature to learn from.
    """
    sel = config.model.selection
    if not sel.enabled:
        return
    measured = measured_metrics(config)
    if sel.metric not in measured:
        raise ConfigError(
            f"model.selection.metric is {sel.metric!r}, which the backtest does not measure; "
            f"expected one of {', '.join(sorted(measured))} (backtest.caseloads).")
    causes = feature_causes(config)
    codes = {c.code for c in config.causes}
    for cand in sel.candidates:
        unknown = sorted(set(cand.exclude_features or ()) - set(causes))
        if unknown:
            raise ConfigError(
                f"model.selection candidate {cand.name!r}: exclude_features names {unknown}, "
                "which are not features; expected names of riskmodel.model.FEATURE_NAMES.")
        unknown = sorted(set(cand.exclude_causes or ()) - codes)
        if unknown:
            raise ConfigError(
                f"model.selection candidate {cand.name!r}: exclude_causes names {unknown}, "
                f"which are not causes; expected codes of the cause table "
                f"({', '.join(sorted(codes))}).")
    for name, _, cfg in candidate_configs(config):
        if not set(causes) - set(cfg.model.exclude_features):
            raise ConfigError(f"model.selection candidate {name!r} leaves out every feature; "
                              "expected at least one to learn from.")


def candidate_cost(config: Config, rows: int) -> float:
    """A candidate's cost: the rows its trees learn on times the trees it may grow, in millions.

    Rows are ``model.max_train_rows`` capped by the ``rows`` there are; trees are
    ``model.max_iter``, or ``20 / learning_rate`` when fewer (early stopping stops a slower
    learner later), times the fits of one model: the early-stopped one, one more per earlier
    block of ``model.calibration_folds`` and one more with ``model.refit``. It depends on the
    config and the number of training rows alone, never on the machine:
    ``model.selection.max_cost`` is in these units. A candidate's time, for the wall-time cap,
    is estimated from the seconds per unit of cost of those already run.

    Examples
    --------
    >>> from riskmodel import load_config
    >>> config = load_config()
    >>> [candidate_cost(c, 1_000_000) for _, _, c in candidate_configs(config)]
    [48.0, 96.0, 96.0, 48.0]
    """
    m = config.model
    n = rows if m.max_train_rows is None else min(m.max_train_rows, rows)
    trees = min(float(m.max_iter), _TREES_AT_UNIT_RATE / m.learning_rate)
    fits = 1 + (m.calibration_folds - 1) + int(m.refit)
    return float(max(n, 1)) * trees * fits / 1e6


def selection_plan(config: Config, rows: int) -> list[tuple[str, float, bool]]:
    """Which candidates run, decided from their costs alone, before any of them runs.

    Parameters
    ----------
    config : Config
    rows : int
        Training rows of the ledger (the rows :func:`candidate_cost` counts).

    Returns
    -------
    list of (name, cost, planned)
        In the order of :func:`candidate_configs`. ``base`` is always planned; each further
        candidate is planned when its cost added to those already planned (``base``'s
        included) stays within ``model.selection.max_cost``; one that does not is left out,
        and a later, cheaper one may still be planned.

    Examples
    --------
    >>> from riskmodel import load_config
    >>> [(n, p) for n, _, p in selection_plan(load_config(), 717_592)]
    [('base', True), ('longer', True), ('wider', False), ('coarser', True)]
    """
    max_cost = config.model.selection.max_cost
    plan, total = [], 0.0
    for name, _, cfg in candidate_configs(config):
        cost = candidate_cost(cfg, rows)
        planned = name == BASE or total + cost <= max_cost
        total += cost if planned else 0.0
        plan.append((name, cost, planned))
    return plan


@dataclass
class Selection:
    """What model selection found.

    Attributes
    ----------
    metric : str
        The figure compared (``model.selection.metric``).
    chosen : str
        The candidate chosen: the best mean over origins, ties to the earlier.
    config : Config
        The chosen candidate's config (its ``model`` block is what the final model trains with).
    backtest : BacktestResult
        The chosen candidate's backtest.
    table : DataFrame
        One row per candidate, in order: ``candidate``, ``status`` (``chosen``, ``run``,
        ``skipped: cost`` — left out by ``max_cost`` before any run — or ``skipped: time cap``
        — stopped by ``time_budget_s``), ``overrides`` (the keys it sets, JSON), ``metric``,
        ``mean`` (over origins), one column per origin (``at_YYYY-MM``), the pooled figures of
        the model (``auc``, ``ap``, ``recall_at_<n>pct`` …, ``ece``, ``mean_predicted``,
        ``observed_rate``), ``calibration``, ``cost`` (:func:`candidate_cost`), ``seconds``
        and ``estimated_seconds`` (the estimate the time cap was checked with; NaN for
        ``base``, which always runs, and for a candidate left out by cost).
    enabled : bool
        ``model.selection.enabled``: with false, ``base`` alone ran and nothing of the
        selection is recorded in MLflow.
    budget_s : float
        ``time_budget_s``, the wall-time cap.
    seconds : float
        Wall time of every backtest run.
    backtests : dict of str to BacktestResult
        Every candidate run.
    max_cost : float
        ``max_cost``, the budget in units of :func:`candidate_cost`.
    capped : list of str
        The candidates the plan allowed but the time cap stopped: when not empty, the choice
        depended on the machine's speed.
    """

    metric: str
    chosen: str
    config: Config
    backtest: BacktestResult
    table: pd.DataFrame
    enabled: bool = True
    budget_s: float = float("nan")
    seconds: float = 0.0
    backtests: dict[str, BacktestResult] = field(default_factory=dict)
    max_cost: float = float("nan")
    capped: list[str] = field(default_factory=list)

    @property
    def machine_dependent(self) -> bool:
        """Whether the time cap stopped a candidate the plan allowed."""
        return bool(self.capped)

    def metrics(self) -> dict[str, float]:
        """Run metrics: every candidate's figures as ``selection.<candidate>.<figure>``."""
        planned = ~self.table["status"].eq(SKIPPED_COST)
        out = {"selection.budget_s": float(self.budget_s), "selection.seconds": self.seconds,
               "selection.max_cost": float(self.max_cost),
               "selection.planned_cost": float(self.table.loc[planned, "cost"].sum()),
               "selection.candidates_run": float((~self.table["status"].isin(SKIPPED)).sum()),
               "selection.candidates_capped": float(len(self.capped))}
        skip = {"candidate", "status", "overrides", "metric", "calibration"}
        for row in self.table.to_dict("records"):
            for key, value in row.items():
                if key in skip or value is None or not np.isfinite(value):
                    continue
                name = f"mean_{self.metric}" if key == "mean" else key
                out[f"selection.{row['candidate']}.{name}"] = float(value)
        return out

    def tags(self) -> dict[str, str]:
        """Run tags: :data:`MACHINE_TAG`, ``true`` when the time cap stopped a candidate."""
        return {MACHINE_TAG: "true" if self.capped else "false"}

    def line(self) -> str:
        """The choice and the figures compared, in one line."""
        run = self.table[~self.table["status"].isin(SKIPPED)]
        parts = [f"{r.candidate} {r.mean:.3f}" if np.isfinite(r.mean) else f"{r.candidate} —"
                 for r in run.itertuples(index=False)]
        by_cost = self.table.loc[self.table["status"] == SKIPPED_COST, "candidate"].tolist()
        tail = (f"; left out by the cost budget of {self.max_cost:g}: {', '.join(by_cost)}"
                if by_cost else "")
        if self.capped:
            tail += (f"; stopped by the {self.budget_s:g} s time cap: {', '.join(self.capped)} "
                     "(the choice depends on this machine's speed)")
        return (f"model selection: {self.chosen} chosen by mean {self.metric} over origins "
                f"({', '.join(parts)}){tail}; {self.seconds:.0f} s of backtests")


def _mean_over_origins(result: BacktestResult, metric: str) -> tuple[float, dict[str, float]]:
    m = result.metrics
    rows = m[(m["scorer"] == "model") & (m["origin"] != "all")]
    by_origin = {f"at_{o}": float(v) for o, v in zip(
        rows["origin"], rows[metric] if metric in rows else np.full(len(rows), np.nan),
        strict=True)}
    values = np.array(list(by_origin.values()), dtype="float64")
    mean = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return mean, by_origin


def _pooled(result: BacktestResult) -> dict[str, float]:
    pooled = result.pooled("model")
    keys = ["auc", "ap", *[f"{kind}_at_{_share_tag(c)}" for c in result.caseloads
                           for kind in ("recall", "precision")],
            "ece", "mean_predicted", "observed_rate"]
    return {k: float(pooled.get(k, np.nan)) for k in keys}


def select_model(
    features: pd.DataFrame,
    target: np.ndarray,
    months: np.ndarray,
    config: Config,
    *,
    households: np.ndarray | None = None,
    groups: pd.DataFrame | None = None,
    true_risk: np.ndarray | None = None,
    origin_check=None,
    clock=time.perf_counter,
) -> Selection:
    """Backtest ``base`` and the candidates of ``model.selection`` its cost budget allows;
    choose the best.

    Parameters
    ----------
    features, target, months, households, groups, true_risk
        As for :func:`riskmodel.model.backtest` (every candidate is backtested on the same
        rows and origins).
    config : Config
    origin_check : callable, optional
        As for :func:`riskmodel.model.backtest`, run on the chosen candidate's fold models
        only, after the choice (its counts in the chosen backtest's ``agreement``).
    clock : callable, default=time.perf_counter
        Seconds, for the time cap alone.

    Returns
    -------
    Selection

    Notes
    -----
    Which candidates run is decided first, from their costs alone (:func:`selection_plan`):
    the same ledger and config run the same candidates on any machine; one left out is
    recorded as ``skipped: cost``. ``base`` always runs. Before each further planned
    candidate, its time is estimated from those already run (their seconds per unit of
    :func:`candidate_cost`); a candidate whose backtest and, were it chosen, final fit (one
    origin's share of the backtest) would take selection past ``time_budget_s`` is not run:
    it is recorded as ``skipped: time cap``, a warning is logged and
    :attr:`Selection.capped` names it (the choice then depends on the machine) — a later,
    cheaper one may still run. The chosen candidate has the highest mean over origins of
    ``metric`` (NaN, at an origin without a fall, is left out of the mean); ties go to the
    earlier candidate, so ``base`` keeps its place unless another does better.
    """
    sel = config.model.selection
    metric = sel.metric
    plan = {name: (cost, planned) for name, cost, planned in
            selection_plan(config, len(target))}
    started = clock()
    records, results, folds, capped = [], {}, {}, []
    spent_seconds, spent_cost = 0.0, 0.0
    best_mean = None
    for name, over, cfg in candidate_configs(config):
        cost, planned = plan[name]
        record = {"candidate": name, "status": "run",
                  "overrides": json.dumps(over, ensure_ascii=False, sort_keys=True),
                  "metric": metric}
        if not planned:
            log.info("candidate %s left out: cost %.4g past the budget of %g", name, cost,
                     sel.max_cost)
            records.append({**record, "status": SKIPPED_COST, "mean": np.nan, "cost": cost,
                            "estimated_seconds": np.nan})
            continue
        estimate = (float("nan") if name == BASE
                    else spent_seconds / max(spent_cost, 1e-12) * cost)
        elapsed = 0.0 if name == BASE else clock() - started
        # Were it chosen, its fit on the whole ledger would follow: about one origin's share
        # of its backtest (each origin fits one model on rows of the same size).
        needed = estimate * (1.0 + 1.0 / max(config.backtest.origins, 1))
        if name != BASE and elapsed + needed > sel.time_budget_s:
            log.warning("model selection: candidate %s stopped by the time cap: about %.0f s, "
                        "%.0f s of the %g s of model.selection.time_budget_s left; the choice "
                        "depends on this machine's speed", name, estimate,
                        max(sel.time_budget_s - elapsed, 0.0), sel.time_budget_s)
            capped.append(name)
            records.append({**record, "status": SKIPPED_CAP, "mean": np.nan, "cost": cost,
                            "estimated_seconds": estimate})
            continue
        step = clock()
        kept = folds.setdefault(name, [])
        keep = None if origin_check is None else (
            lambda model, origin, kept=kept: kept.append((origin, model)) or {})
        result = backtest(features, target, months, cfg, households=households, groups=groups,
                          true_risk=true_risk, origin_check=keep)
        seconds = clock() - step
        spent_seconds += seconds
        spent_cost += cost
        results[name] = result
        mean, by_origin = _mean_over_origins(result, metric)
        # Fold models are kept for the best candidate so far alone (for the reasons check).
        # (the choice below: the highest finite mean, ties to the earlier, else base).
        if name == BASE or (np.isfinite(mean) and (best_mean is None or mean > best_mean)):
            folds = {name: folds[name]}
            best_mean = mean if np.isfinite(mean) else best_mean
        else:
            folds.pop(name)
        log.info("candidate %s: mean %s %.4f over %d origin(s), %.1f s", name, metric, mean,
                 len(by_origin), seconds)
        records.append({**record, "mean": mean, **by_origin, **_pooled(result),
                        "calibration": result.calibration, "cost": cost, "seconds": seconds,
                        "estimated_seconds": estimate})
    table = pd.DataFrame(records)
    ran = table[table["status"] == "run"]
    scores = ran["mean"].to_numpy(dtype="float64")
    best = int(np.argmax(np.where(np.isfinite(scores), scores, -np.inf)))
    chosen = str(ran["candidate"].iloc[best])
    table.loc[table["candidate"] == chosen, "status"] = "chosen"
    lead = ["candidate", "status", "overrides", "metric", "mean"]
    tail = ["cost", "seconds", "estimated_seconds"]
    table = table[lead + [c for c in table.columns if c not in lead + tail]
                  + [c for c in tail if c in table.columns]]
    seconds = clock() - started
    if origin_check is not None:
        # The reasons are checked for the chosen candidate's fold models alone: the check
        # explains every origin, and the other candidates' agreement would decide nothing.
        results[chosen].agreement = pd.DataFrame(
            [{"origin": origin, **origin_check(model, origin)} for origin, model in folds[chosen]])
        for name in results:
            if name != chosen:
                results[name].agreement = None
    folds.clear()
    chosen_config = next(c for n, _, c in candidate_configs(config) if n == chosen)
    return Selection(metric=metric, chosen=chosen, config=chosen_config,
                     backtest=results[chosen], table=table, enabled=sel.enabled,
                     budget_s=float(sel.time_budget_s), seconds=seconds,
                     backtests=results, max_cost=float(sel.max_cost), capped=capped)


def selection_table(selection: Selection):
    """The candidates compared, as the rich table ``riskmodel train`` prints; what each
    candidate changes in the caption."""
    from rich.table import Table

    shown = selection.table
    origins = [c for c in shown.columns if c.startswith("at_")]
    changes = []
    for row in shown.to_dict("records"):
        over = json.loads(row["overrides"])
        if over:
            changes.append(f"{row['candidate']}: " + ", ".join(
                f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in over.items()))
    table = Table(title=f"Model selection by mean {selection.metric} over origins "
                        f"(cost budget {selection.max_cost:g}, time cap "
                        f"{selection.budget_s:g} s): {selection.chosen} chosen",
                  caption="; ".join(changes) or None)
    for col in ("candidate", "status", "mean", *origins, "cost", "seconds"):
        table.add_column(col.removeprefix("at_"),
                         justify="left" if col in ("candidate", "status") else "right",
                         no_wrap=True)
    for row in shown.to_dict("records"):
        cells = [row["candidate"], row["status"]]
        for col in ("mean", *origins):
            value = row.get(col, np.nan)
            cells.append(f"{value:.3f}" if pd.notna(value) else "—")
        cells.append(f"{row['cost']:.4g}")
        seconds, estimate = row.get("seconds", np.nan), row.get("estimated_seconds", np.nan)
        cells.append(f"{seconds:.0f}" if pd.notna(seconds) else
                     f"~{estimate:.0f}" if pd.notna(estimate) else "—")
        table.add_row(*cells)
    return table
