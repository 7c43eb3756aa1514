"""The monthly scoring job: one command over the month's ledger, run unattended.

:func:`score_month` reads the ledger in chunks of households, validates each chunk, scores it
with :func:`score_frame`, and writes ``<out>/<month>/`` atomically:

- ``scores.parquet`` — every valid household of the month, in rank order. Households already
  under the line (``poor_now``) or with too little income history (``insufficient_history``)
  have no model score and say why in ``not_scored_reason``.
- ``watchlist.csv`` / ``watchlist.xlsx`` — the high tier and every household a hard trigger
  fired for (应纳尽纳), with Chinese headers.
- ``quarantine.parquet`` — the month's rejected rows with the rule each broke; the same as
  ``quarantine.xlsx`` for the offices that fix them (Chinese, by township, their row numbers).
- ``changes.parquet`` — what changed since last month's output in ``<out>``, when it exists.
- ``summary.json`` — reconciliation, counts by tier, township and cause, drift, timings, the
  model version and the MLflow run.

and whatever the ``writers`` it is given add before the month is published: the command line
and :func:`riskmodel.score_month` (:mod:`riskmodel.jobs`) add ``bulletin.html``, the month's
bulletin (一月一通报, :mod:`riskmodel.bulletin`).

Rows in = scored + not eligible + quarantined is checked before anything is published. The
job is boring on purpose: the same inputs give a byte-identical ``scores.parquet``; a killed run
leaves the previous complete output or none; an existing month is replaced only with
``force``; a second run on the same output folder is refused.

:func:`riskmodel.scoring.score_frame` (in :mod:`._core`, shared with the Spark engine) is the
pure core; this module is the job around it.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..clock import Clock
from ..config import Config, load_config
from ..errors import LedgerError, RiskModelError
from ..ledger import (
    LedgerChunks,
    MonthOutput,
    OutputLock,
    write_parquet,
    write_quarantine_xlsx,
)
from ..model import (
    CALIBRATION_MONTHS,
    DEFAULT_MODEL_URI,
    SAME_MONTH_OF_YEAR,
    Coverage,
    EmptyColumns,
    ModelRef,
    ScoringRun,
    add_counts,
    check_columns,
    check_model,
    drift_report,
    load_model,
)
from ..months import check_month, month_before
from ._core import (
    NOT_SCORED,
    TIERS,
    ChunkResult,
    finalize_scores,
    model_version_label,
    score_frame,
)
from ._lifecycle import changes_since
from ._summary import RunSummary, reason_agreement_part
from ._watchlist import watchlist_frame, write_watchlist_file
from ._workers import ChunkWorkers, ForkedTask, shares

logger = logging.getLogger(__name__)

ENGINES = ("pandas", "spark")


@dataclass
class StagedMonth:
    """A month's outputs, staged and not yet published: what a writer passed to
    :func:`score_month` (``writers``) reads to add its own file to the month's folder.

    Attributes
    ----------
    folder : Path
        The staging folder, published as ``<out>/<month>`` once every writer is done.
    month : str
    scores : DataFrame
        ``scores.parquet``.
    summary : dict
        ``summary.json``, as written.
    quarantine : DataFrame
        ``quarantine.parquet``.
    previous_folder : Path or None
        Last month's folder in ``<out>`` when it holds ``scores.parquet``, else None.
    previous_scores : DataFrame or None
        Its ``scores.parquet``.
    config : Config
    """

    folder: Path
    month: str
    scores: pd.DataFrame
    summary: dict
    quarantine: pd.DataFrame
    previous_folder: Path | None
    previous_scores: pd.DataFrame | None
    config: Config


@dataclass
class ScoreResult:
    """What a monthly run produced.

    Attributes
    ----------
    month : str
    folder : Path
        ``<out>/<month>``.
    model : ModelRef
    model_version : str
    summary : dict
        The contents of ``summary.json``.
    run_id : str or None
        The MLflow scoring run.
    """

    month: str
    folder: Path
    model: ModelRef
    model_version: str
    summary: dict
    run_id: str | None

    def describe(self) -> str:
        """A few lines for the operator's terminal or log."""
        r = self.summary["reconciliation"]
        tiers = self.summary["tiers"]
        lines = [
            f"{self.month}: {r['rows_in']:,} rows in = {r['scored']:,} scored + "
            f"{r['not_eligible']:,} not eligible + {r['quarantined']:,} quarantined",
            f"  tiers: high {tiers['high']:,}, medium {tiers['medium']:,}, low {tiers['low']:,}; "
            f"watch list {self.summary['watchlist']['households']:,}; elimination candidates "
            f"{self.summary['lifecycle']['elimination_candidates']:,}",
            f"  model {self.model_version}; MLflow run {self.run_id}",
            f"  wrote {self.folder}",
        ]
        lines += [f"  warning: {w}" for w in self.summary["warnings"]]
        return "\n".join(lines)


def _pandas_chunks(chunks: LedgerChunks, model, config: Config, month: str,
                   version: str) -> ChunkWorkers:
    workers = config.scoring.workers
    if len(shares(chunks.n_chunks, workers)) > 1 and \
            "fork" in multiprocessing.get_all_start_methods():
        # The processes share the cores: each explains with its share of the threads.
        threads = max(1, config.scoring.threads // workers)
        config = config.model_copy(update={
            "scoring": config.scoring.model_copy(update={"threads": threads})})

    def score(chunk):
        frames = score_frame(chunk.valid, model, config, month, model_version=version)
        return ChunkResult.of(chunk, frames)

    return ChunkWorkers(chunks, month, workers, score)


def _chunk_size(config: Config, engine: str = "pandas") -> int:
    """Households per chunk: ``scoring.chunk_households`` shared among the
    ``scoring.workers`` of the pandas engine, so that the chunks in flight together hold no
    more households than one chunk of a single process."""
    workers = config.scoring.workers if engine == "pandas" else 1
    return -(-config.scoring.chunk_households // workers)


class _Progress:
    """A rich progress bar on a terminal; plain log lines otherwise (cron, systemd, Airflow)."""

    def __init__(self, total: int | None, month: str):
        self.total, self.month, self.done = total, month, 0
        self._bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._bar = Progress("[progress.description]{task.description}", BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
            self._task = self._bar.add_task(f"scoring {month}", total=total)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def advance(self, part: ChunkResult, seconds: float) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.advance(self._task)
            return
        logger.info("%s chunk %d/%s: %d rows, %d quarantined, %d households scored (%.1f s)",
                    self.month, self.done, self.total or "?", part.chunk.n_in,
                    part.chunk.n_in - part.chunk.n_valid,
                    int(part.frames.scores["risk_score"].notna().sum()), seconds)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


def score_month(
    ledger_path: str | Path,
    out_dir: str | Path,
    month: str | None = None,
    model_uri: str | None = None,
    config_path: str | Path | None = None,
    force: bool = False,
    engine: str = "pandas",
    tracking_uri: str | None = None,
    allow_unscored: bool = False,
    writers: Sequence[Callable[[StagedMonth], object]] = (),
) -> ScoreResult:
    """Score one month of a ledger file and publish ``<out_dir>/<month>/`` atomically.

    Parameters
    ----------
    ledger_path : str or Path
        ``.parquet``, ``.csv`` or ``.xlsx`` ledger with the months' history.
    out_dir : str or Path
        Output folder; the month's files go to ``<out_dir>/<month>/``.
    month : str, optional
        ``YYYY-MM``; the ledger's last month when None.
    model_uri : str, optional
        ``models:/return-to-poverty@champion`` when None; any URI or model folder that
        :func:`riskmodel.model.load_model` accepts. An alias is resolved to its version once,
        at the start, and that version is recorded in every output.
    config_path : str or Path, optional
        YAML config; the packaged default when None.
    force : bool, default=False
        Replace an existing month's output.
    engine : {"pandas", "spark"}, default="pandas"
    tracking_uri : str, optional
        MLflow store (see :func:`riskmodel.model.resolve_tracking_uri`).
    allow_unscored : bool, default=False
        Publish a month in which no household, or fewer than ``scoring.min_scored_share`` of
        the month's valid households, could be scored, with a warning in ``summary.json``.
    writers : sequence of callable, optional
        Each called with the :class:`StagedMonth` once ``summary.json`` is staged and before
        the month is published, to add its own files to the staging folder (the command line
        and :func:`riskmodel.score_month` pass the bulletin's writer); a writer that raises
        leaves the previous month's folder as it was.

    Returns
    -------
    ScoreResult

    Raises
    ------
    LedgerError
        Exit code 2: unreadable ledger, bad month, or more of the month's rows quarantined
        than ``scoring.max_quarantine_share``.
    ConfigError
        Exit code 2.
    ModelNotFoundError
        Exit code 3: no model at the URI, or a model incompatible with the ledger's columns.
    OutputExistsError
        Exit code 4: the month exists and ``force`` is false, or another run holds ``out_dir``.
    TooFewScoredError
        Exit code 6: no household, or fewer than ``scoring.min_scored_share`` of the month's
        valid households, could be scored (the message says why), and ``allow_unscored`` is
        false.
    """
    if engine not in ENGINES:
        raise ValueError(f"Got engine={engine!r}, expected one of {', '.join(ENGINES)}.")
    if engine == "spark" and Path(ledger_path).suffix.lower() in (".csv", ".xlsx"):
        raise LedgerError(
            f"{ledger_path}: the spark engine reads a Parquet ledger; this one is "
            f"{Path(ledger_path).suffix.lower()[1:]}. Score it with --engine pandas, or write "
            "it as Parquet (one row per ledger row, in the same order) and score that.")
    clock = Clock(cpu=True)
    config = load_config(config_path)
    out = Path(out_dir)
    if month is not None:
        month = check_month(month, "month", LedgerError)
    with OutputLock(out):
        if month is not None:
            MonthOutput(out, month, force).check()
        # The ledger is indexed while the model loads: the index is mostly Arrow reading the
        # ledger's files, which runs outside the interpreter lock, and loading the model
        # mostly Python, so the two overlap on two cores.
        with ThreadPoolExecutor(1, thread_name_prefix="index") as pool:
            indexing = pool.submit(LedgerChunks, ledger_path, _chunk_size(config, engine))
            model, ref = load_model(model_uri or DEFAULT_MODEL_URI, tracking_uri=tracking_uri)
            version = model_version_label(ref)
            names = check_model(model, ref)
            clock.lap("load_model")
            chunks = indexing.result()
        known = chunks.months
        if not known:
            raise LedgerError(f"{ledger_path}: no row has a readable month.")
        month = month or known[-1]
        if month not in known:
            raise LedgerError(f"{ledger_path} has no rows for {month}; it holds {known[0]} to "
                              f"{known[-1]}.")
        MonthOutput(out, month, force).check()
        rows_in = chunks.rows_in(month)
        clock.lap("plan")
        logger.info("scoring %s with model %s: %d rows of the month in %d chunk(s)", month,
                    version, rows_in, chunks.n_chunks)
        # The workers start reading while the MLflow run starts.
        source = _pandas_chunks(chunks, model, config, month, version) \
            if engine == "pandas" else None
        try:
            run = ScoringRun(tracking_uri, config.scoring.experiment, month, {
                "month": month, "model_uri": ref.uri, "model_name": ref.name,
                "model_version": ref.version, "model_run_id": ref.run_id, "engine": engine,
                "chunk_households": config.scoring.chunk_households, "features": len(names),
            })
            try:
                result = _run(chunks, model, ref, version, config, month, rows_in, out, force,
                              engine, ledger_path, run, clock, allow_unscored, writers, source)
            except BaseException:
                run.end("FAILED")
                raise
            run.end("FINISHED")
        finally:
            if source is not None:
                source.close()
    return result


def _run(chunks, model, ref, version, config, month, rows_in, out, force, engine, ledger_path,
         run, clock, allow_unscored=False, writers=(), source=None) -> ScoreResult:
    tally = chunks.counts(month, config.scoring.max_quarantine_share)
    parts, quarantined = [], []
    months_recorded: Counter = Counter()
    empty = EmptyColumns(chunks.unfilled)
    counts = None
    identified: list[pd.DataFrame] = []
    missing: list[str] = []
    if engine == "spark":
        try:
            from ._spark import score_chunks
        except ImportError as exc:
            raise RiskModelError(f"The spark engine is not available ({exc}).") from None
        source = score_chunks(ledger_path, model, config, month, version,
                              unfilled=chunks.unfilled)
    elif source is None:
        source = _pandas_chunks(chunks, model, config, month, version)
    with _Progress(chunks.n_chunks if engine == "pandas" else None, month) as progress:
        tick = time.perf_counter()
        for part in source:
            parts.append(part.frames.scores)
            quarantined.append(part.chunk.quarantine)
            missing = [c for c in part.chunk.missing_optional if c not in chunks.unfilled]
            empty.add(part.chunk.empty_columns)
            months_recorded.update(part.frames.months_recorded)
            if part.frames.identified is not None:
                identified.append(part.frames.identified)
            counts = add_counts(counts, part.frames.drift_counts) if part.frames.drift_counts \
                else counts
            for name, seconds in part.timings.items():
                clock.add(name, seconds)
            tally.add(part.chunk)
            progress.advance(part, time.perf_counter() - tick)
            tick = time.perf_counter()
    clock.restart()
    check_columns(model, ref, counts)

    scores = finalize_scores(pd.concat(parts, ignore_index=True))
    quarantine = pd.concat(quarantined, ignore_index=True).sort_values(
        "source_row", kind="stable").reset_index(drop=True)
    scored = int(scores["risk_score"].notna().sum())
    not_eligible = len(scores) - scored
    # Every household without a score says why.
    tally.reconcile({"scored": scored, "not eligible": not_eligible},
                    agree=scores["not_scored_reason"].notna().sum() == not_eligible)
    coverage = Coverage(month, len(scores), scored,
                        scores["not_scored_reason"].value_counts().to_dict(),
                        dict(months_recorded), config.label.min_observed_months, empty.columns)
    unscored = coverage.check(config.scoring.min_scored_share, allow=allow_unscored)

    previous_month = month_before(month)
    previous_path = out / previous_month / "scores.parquet"
    changes = previous_scores = None
    if previous_path.is_file():
        previous_scores = pd.read_parquet(previous_path)
        changes = changes_since(previous_scores, scores,
                                quarantined=quarantine["household_id"].dropna())
    reference = getattr(model, "reference_", None)
    drift = drift_report(reference, counts, config.scoring.drift_psi_warning, month=month) \
        if reference else None
    clock.lap("assemble")

    summary = _summary(month, ref, version, config, scores, quarantine, rows_in, chunks,
                       tally.n_valid, tally.by_rule, missing, drift, changes, previous_month, model,
                       empty, coverage, unscored)
    if identified:
        recorded = pd.concat(identified)
        summary["reason_agreement"] = reason_agreement_part(
            scores, recorded, _reasons_before(out, recorded), month, config)
    for warning in summary["warnings"]:
        logger.warning("%s: %s", month, warning)
    with MonthOutput(out, month, force) as staged:
        # The watch list's two files are written by forked processes while this one writes
        # the rest.
        table = watchlist_frame(scores, config)
        listing = []
        try:
            for kind in ("csv", "xlsx"):
                listing.append(ForkedTask(write_watchlist_file, table, staged.staging, kind))
            write_parquet(scores, staged.staging / "scores.parquet")
            write_parquet(quarantine, staged.staging / "quarantine.parquet")
            write_quarantine_xlsx(quarantine, staged.staging / "quarantine.xlsx",
                                  chunks.locate(quarantine["source_row"]),
                                  chunks.source.headers)
            if changes is not None:
                write_parquet(changes, staged.staging / "changes.parquet")
            summary["watchlist"]["rows_written"] = len(table)
            clock.lap("write")
            summary["timings_s"] = {k: round(v, 3) for k, v in clock.laps.items()
                                    if not k.startswith("cpu:")}
            summary["timings_s"]["total"] = round(sum(summary["timings_s"].values()), 3)
            summary["cpu_s"] = {k[4:]: round(v, 3) for k, v in clock.laps.items()
                                if k.startswith("cpu:")}
            summary["cpu_s"]["total"] = round(sum(summary["cpu_s"].values()), 3)
            summary["mlflow"] = {"run_id": run.run_id, "tracking_uri": run.uri}
            path = RunSummary.parse(summary).write(staged.staging / "summary.json")
            month_files = StagedMonth(staged.staging, month, scores, summary, quarantine,
                                      previous_path.parent if previous_scores is not None
                                      else None, previous_scores, config)
            for writer in writers:
                writer(month_files)
            for task in listing:
                task.wait()
        finally:
            for task in listing:
                task.close()
        run.finish(_metrics(summary, drift), path)
        folder = staged.publish()
    logger.info("%s published to %s", month, folder)
    return ScoreResult(month, folder, ref, version, summary, run.run_id)


def _summary(month, ref, version, config, scores, quarantine, rows_in, chunks, n_valid, by_rule,
             missing, drift, changes, previous_month, model, empty, coverage, unscored) -> dict:
    scored = scores["risk_score"].notna()
    reasons = scores["not_scored_reason"].value_counts()
    # Every reason a household has no score, the two known ones always.
    reason_keys = [*NOT_SCORED, *sorted(str(r) for r in reasons.index if r not in NOT_SCORED)]
    tiers = scores["risk_tier"].value_counts()
    flags = scores.assign(
        rows=1, scored=scored, **{t: scores["risk_tier"].eq(t).fillna(False) for t in TIERS},
        not_eligible=~scored, watchlist=scores["on_watchlist"],
        elimination_candidates=scores["elimination_candidate"])
    columns = ["rows", "scored", *TIERS, "not_eligible", "watchlist", "elimination_candidates"]
    township = flags.groupby(["county", "township"], dropna=False, sort=True)[columns].sum()
    causes = pd.crosstab(scores["reason_1"], scores["risk_tier"]).reindex(
        index=[c.code for c in config.causes], columns=list(TIERS), fill_value=0)
    # Households by trigger: each distinct list of triggers split once, counted by its rows.
    triggers = Counter()
    for fired, n in scores["rule_triggers"].value_counts().items():
        for name in str(fired).split(";"):
            if name != "":
                triggers[name] += int(n)
    warnings = [unscored] if unscored else []
    if missing:
        warnings.append("optional ledger columns absent (read as unknown): " + ", ".join(missing))
    warnings += empty.warnings()
    horizon = getattr(model, "horizon_months_", None)
    if horizon is not None and horizon != config.label.horizon_months:
        warnings.append(f"the model was trained for a {horizon}-month horizon, the config says "
                        f"{config.label.horizon_months}")
    drift_part = None
    if drift is not None:
        drifted = drift[drift["drifted"]]
        score_psi = drift.loc[drift["kind"] == "score", "psi"]
        drift_part = {
            "threshold": config.scoring.drift_psi_warning,
            "score_psi": float(score_psi.iloc[0]) if len(score_psi) else None,
            "drifted": drifted["name"].tolist(),
            "psi": dict(zip(drift["name"], drift["psi"], strict=True)),
            "features_compared_with": (SAME_MONTH_OF_YEAR
                                       if (drift["reference"] == "calendar_month").any()
                                       else CALIBRATION_MONTHS),
        }
        if len(drifted):
            warnings.append(f"drift over PSI {config.scoring.drift_psi_warning}: "
                            + ", ".join(f"{n} ({p:.2f})" for n, p in
                                        zip(drifted["name"], drifted["psi"], strict=True)))
    else:
        warnings.append("the model carries no training reference; drift not computed")
    return {
        "month": month,
        "model": {"uri": ref.uri, "name": ref.name, "version": ref.version,
                  "run_id": ref.run_id, "label": version,
                  "trained_at": getattr(model, "trained_at_", None),
                  "backtest": dict(getattr(model, "summary_", None) or {})},
        "reconciliation": {
            "rows_in": rows_in, "scored": int(scored.sum()),
            "not_eligible": int((~scored).sum()),
            "not_eligible_by_reason": {r: int(reasons.get(r, 0)) for r in reason_keys},
            "insufficient_history_by_months_recorded": {
                str(k): int(v) for k, v in sorted(coverage.months_recorded.items())},
            "quarantined": len(quarantine),
            "quarantined_by_rule": {str(k): int(v) for k, v in
                                    quarantine["rule"].value_counts().items()},
            "balanced": True,
        },
        "ledger": {"rows": chunks.n_rows, "valid": n_valid,
                   "quarantined": sum(by_rule.values()), "quarantined_by_rule": dict(by_rule),
                   "months": [chunks.months[0], chunks.months[-1]],
                   "missing_optional_columns": missing,
                   "unfilled_optional_columns": chunks.unfilled,
                   "empty_columns": empty.columns,
                   "blank_rows_skipped": len(chunks.blank_rows),
                   "encoding": chunks.source.encoding, "sheet": chunks.source.sheet},
        "coverage": {"valid_households": coverage.households, "scored": coverage.scored,
                     "share": round(coverage.share, 4),
                     "min_scored_share": config.scoring.min_scored_share,
                     "published_below_min": unscored is not None},
        "tiers": {t: int(tiers.get(t, 0)) for t in TIERS},
        "thresholds": {"high": config.tiers.high, "medium": config.tiers.medium},
        "watchlist": {"households": int(scores["on_watchlist"].sum()),
                      "high_tier": int(tiers.get("high", 0)),
                      "by_trigger": {k: triggers[k] for k in sorted(triggers)}},
        "lifecycle": {
            "elimination_candidates": int(scores["elimination_candidate"].sum()),
            "previous_month": previous_month if changes is not None else None,
            "changes": ({c: int(n) for c, n in changes["change"].value_counts().sort_index()
                         .items()} if changes is not None else None),
        },
        "by_township": [{"county": c, "township": t, **{k: int(v) for k, v in row.items()}}
                        for (c, t), row in township.iterrows()],
        "by_cause": {code: {t: int(causes.loc[code, t]) for t in TIERS} for code in causes.index},
        "drift": drift_part,
        "warnings": warnings,
    }


def _reasons_before(out: Path, recorded: pd.DataFrame) -> pd.DataFrame:
    """The reasons published the month before each household's identification.

    Read from ``<out>/<month before>/scores.parquet`` of each identification month where that
    month was scored into the same folder; a household is kept only in the month before its
    own identification. An empty frame when none was.
    """
    columns = ["household_id", "reason_1", "reason_2", "reason_3"]
    parts = []
    for identified, ids in recorded.groupby("identified_month", sort=True).groups.items():
        path = out / month_before(str(identified)) / "scores.parquet"
        if path.is_file():
            frame = pd.read_parquet(path, columns=columns)
            parts.append(frame[frame["household_id"].astype(str).isin(ids.astype(str))])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _metrics(summary: dict, drift: pd.DataFrame | None) -> dict:
    r = summary["reconciliation"]
    metrics = {
        "rows_in": r["rows_in"], "scored": r["scored"], "not_eligible": r["not_eligible"],
        "scored_share": summary["coverage"]["share"],
        "quarantined": r["quarantined"], "quarantined_ledger": summary["ledger"]["quarantined"],
        **{f"not_eligible_{k}": v for k, v in r["not_eligible_by_reason"].items()},
        **{f"tier_{k}": v for k, v in summary["tiers"].items()},
        "watchlist": summary["watchlist"]["households"],
        **{f"trigger_{k}": v for k, v in summary["watchlist"]["by_trigger"].items()},
        "elimination_candidates": summary["lifecycle"]["elimination_candidates"],
        **{f"change_{k}": v for k, v in (summary["lifecycle"]["changes"] or {}).items()},
        **{f"time_{k}_s": v for k, v in summary["timings_s"].items()},
    }
    if drift is not None:
        metrics.update({f"psi_{n}": p for n, p in zip(drift["name"], drift["psi"], strict=True)})
        metrics["drifted_features"] = int(drift["drifted"].sum())
    agreement = summary.get("reason_agreement")
    if agreement:
        for when, prefix in (("", "agreement"), ("before_", "agreement_before")):
            if agreement[f"{when}households"]:
                metrics.update({
                    f"{prefix}_households": agreement[f"{when}households"],
                    f"{prefix}_reason_1_recorded": agreement[f"{when}reason_1_share"],
                    f"{prefix}_reasons_1_3_recorded": agreement[f"{when}reasons_1_3_share"]})
    return metrics
