"""The plan job behind ``riskmodel plan``: one month of a ledger file planned and published.

:func:`plan_month` checks its arguments, the visits file, the model and the ledger's months,
reads the ledger chunk by chunk of households (:meth:`riskmodel.ledger.LedgerChunks.validated`,
held to the quarantine limit and reconciled as the scoring job is), gathers each chunk's inputs
(:func:`riskmodel.plan.month_inputs`) with its features spilled to disk until the margin model
that prices them is fitted, plans (:func:`riskmodel.plan.plan_inputs`), reads the chosen
households again to explain them, and publishes ``<out>/<month>/`` (``plan.parquet``,
``plan.csv``, ``plan_summary.json`` and, with visits, ``visits.csv``): staged in a hidden folder
and renamed into place whole, an existing month replaced only with ``force``. The plan is the
one :func:`riskmodel.plan.plan_frame` gives on the valid rows.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..clock import Clock
from ..config import Config, load_config
from ..errors import LedgerError, OutputExistsError
from ..ledger import (
    HOUSEHOLD_TYPE_ZH,
    LedgerChunks,
    MonthOutput,
    OutputLock,
    write_parquet,
)
from ..model import (
    DEFAULT_MODEL_URI,
    Coverage,
    EmptyColumns,
    add_counts,
    check_columns,
    check_model,
    known_and_missing,
    load_model,
)
from ._core import (
    PLAN_COLUMNS,
    RULES,
    PlanFrames,
    _check_amounts,
    _check_visits,
    _to_explain,
    _with_explanations,
    explain_chosen,
    plan_inputs,
)
from ._inputs import (
    MonthInputs,
    _check_estimate,
    _effect_source,
    _effects_frame,
    _response_effects,
    _sample_share,
    combine_inputs,
    margin_effects,
    month_inputs,
    plan_measures,
)
from ._summary import PlanSummary
from ._visits import VISIT_COLUMNS, read_visits

logger = logging.getLogger(__name__)



@dataclass
class PlanResult:
    """What a plan run produced.

    Attributes
    ----------
    month : str
    folder : Path
        ``<out>/<month>``.
    plan : DataFrame
    visits : DataFrame or None
    summary : dict
        The contents of ``plan_summary.json``.
    files : list of Path
    """

    month: str
    folder: Path
    plan: pd.DataFrame
    visits: pd.DataFrame | None
    summary: dict
    files: list[Path]

    def describe(self) -> str:
        """A few lines for the terminal."""
        s = self.summary
        lines = [
            f"{self.month}: {s['households']:,} households, {s['spent']:,.0f} of "
            f"{s['budget']:,.0f} yuan, {s['falls_prevented']:.1f} expected falls prevented "
            f"(model estimates; {s['eligible_households']:,} eligible households)",
        ]
        names = {"income_cutoff": "income cut-off (poorest first)",
                 "risk_ranking": "risk ranking (highest risk first)"}
        for rule in RULES:
            r = s["rules"][rule]
            ratio = f"{r['plan_ratio']:.2f}×" if r["plan_ratio"] is not None else "—"
            lines.append(f"  same budget, {names[rule]}: {r['falls_prevented']:.1f} falls "
                         f"prevented; the plan {ratio}")
        if "visits" in s:
            v = s["visits"]
            lines.append(f"  visits: {v['households']:,} households in {v['townships']} "
                         f"townships reach {v['expected_fallers_visited']:.1f} expected future "
                         f"fallers (triggers, then longest unvisited first: "
                         f"{v['rotation_expected_fallers_visited']:.1f})")
        lines.append(f"  wrote {', '.join(str(p) for p in self.files)}")
        lines += [f"  warning: {w}" for w in s.get("warnings", [])]
        return "\n".join(lines)


def plan_month(
    ledger_path: str | Path,
    out_dir: str | Path,
    budget: float,
    grant: float | None = None,
    month: str | None = None,
    model_uri: str | None = None,
    config_path: str | Path | None = None,
    visits: str | Path | None = None,
    tracking_uri: str | None = None,
    force: bool = False,
    allow_unscored: bool = False,
) -> PlanResult:
    """The ``riskmodel plan`` job: read, validate, plan one month and publish its folder.

    The arguments, the visits file, the model and the ledger's months are checked before
    ``out_dir`` is created; then, holding ``out_dir``'s lock (:class:`riskmodel.ledger.OutputLock`)
    for the rest of the run, an existing ``<out_dir>/<month>`` is refused unless ``force``,
    and the files are written into a hidden staging folder and published with one rename
    (:class:`riskmodel.ledger.MonthOutput`): a reader sees the previous plan or the new
    one, never a mixture, and a failed or killed run leaves the previous plan as it was.

    The ledger file is read and validated chunk by chunk of households
    (``scoring.chunk_households``), so memory is bounded by a chunk and what the plan keeps
    per household: each chunk's features wait on disk, in a temporary folder inside the
    staging folder (removed when priced; a killed run's is removed with its staging folder by
    the next run on ``out_dir``), until the margin model that prices them is fitted. The
    month's quarantine is held to ``scoring.max_quarantine_share`` and the model to the
    ledger's columns as :func:`riskmodel.scoring.score_month` does. The chosen households are
    read again to explain them. The plan is the one :func:`plan_frame` gives on the valid rows.

    Parameters
    ----------
    ledger_path : str or Path
        Ledger file (``.parquet``, ``.csv`` or ``.xlsx``).
    out_dir : str or Path
        Files go to ``<out_dir>/<month>/``.
    budget : float
        Yuan available.
    grant : float, optional
        One-off amount each chosen household receives; without it, the configured measures.
    month : str, optional
        ``YYYY-MM``; the ledger's last month when ``None``.
    model_uri : str, optional
        ``models:/return-to-poverty@champion`` when ``None``.
    config_path : str or Path, optional
    visits : str or Path, optional
        CSV of visits available per township (:func:`read_visits`); writes ``visits.csv``.
    tracking_uri : str, optional
    force : bool, default=False
        Replace an existing plan of the month.
    allow_unscored : bool, default=False
        Publish a plan even when no household, or fewer than ``scoring.min_scored_share`` of
        the month's valid households, can be scored, with a warning in ``plan_summary.json``.

    Returns
    -------
    PlanResult

    Raises
    ------
    PlanInputError
        Exit code 2: a bad budget or grant, or visits naming a township the month's ledger has
        no valid household in (a bad visits file: :class:`riskmodel.plan.VisitsFileError`,
        exit code 2 too).
    LedgerError
        Exit code 2: unreadable ledger, no rows for the month, or more of the month's rows
        quarantined than ``scoring.max_quarantine_share``.
    ModelNotFoundError
        Exit code 3: no model at the URI, or a model incompatible with the ledger's columns.
    OutputExistsError
        Exit code 4: the month exists and ``force`` is false, it holds a scoring run's output,
        or another run holds ``out_dir``.
    TooFewScoredError
        Exit code 6: no household, or fewer than ``scoring.min_scored_share`` of the month's
        valid households, can be scored (the message says why), and ``allow_unscored`` is
        false; checked as :func:`riskmodel.scoring.score_month` checks it.
    """
    _check_amounts(budget, grant)
    config = load_config(config_path)
    estimate = _check_estimate(config, None)
    out = Path(out_dir)
    if month is not None:
        _month_output(out, month, force).check()
    visits_table = read_visits(visits) if visits is not None else None
    model, ref = load_model(model_uri or DEFAULT_MODEL_URI, tracking_uri=tracking_uri)
    check_model(model, ref)
    clock = Clock()
    chunks = LedgerChunks(ledger_path, config.scoring.chunk_households)
    if not chunks.months:
        raise LedgerError(f"{ledger_path}: no row with a readable month to plan from.")
    month = month or chunks.months[-1]
    if month not in chunks.months:
        raise LedgerError(f"{ledger_path}: no rows for month {month}; the ledger holds "
                          f"{chunks.months[0]} … {chunks.months[-1]}.")
    if visits_table is not None:
        # A township the month has no row in at all is known before the ledger is read; one
        # whose rows are all quarantined only once it is.
        place = [c for c in ("county", "township") if c in visits_table.columns]
        _check_visits(visits_table, chunks.places(month, place), month)
    with OutputLock(out), _month_output(out, month, force) as staged:
        frames = _plan_chunks(chunks, model, ref, config, month, estimate, budget, grant,
                              visits_table, staged.staging, clock, allow_unscored)
        written = [
            write_parquet(frames.plan, staged.staging / "plan.parquet"),
            _write_csv(frames.plan, staged.staging / "plan.csv", PLAN_COLUMNS),
            PlanSummary.parse(frames.summary).write(staged.staging / "plan_summary.json"),
        ]
        if frames.visits is not None:
            written.append(_write_csv(frames.visits, staged.staging / "visits.csv",
                                      VISIT_COLUMNS))
        folder = staged.publish()
    logger.info("plan %s: %d households, %.0f yuan, %.1f expected falls prevented", month,
                len(frames.plan), frames.summary["spent"], frames.summary["falls_prevented"])
    return PlanResult(month, folder, frames.plan, frames.visits, frames.summary,
                      [folder / path.name for path in written])


def _plan_chunks(chunks: LedgerChunks, model, ref, config: Config, month: str, estimate: str,
                 budget: float, grant: float | None, visits: pd.DataFrame | None,
                 spill_dir: Path, clock: Clock, allow_unscored: bool = False) -> PlanFrames:
    """The plan of the file's month, read chunk by chunk, checked as the scoring job checks."""
    tally = chunks.counts(month, config.scoring.max_quarantine_share)
    reference = getattr(model, "reference_", None)
    column_counts = None
    empty = EmptyColumns(chunks.unfilled)
    share = _sample_share(config, tally.rows_in)
    # Each chunk's features wait on disk until the margin model that prices them is fitted:
    # memory holds one chunk's features, not the month's.
    with tempfile.TemporaryDirectory(prefix=".plan-features-", dir=spill_dir) as spill:
        parts, stored = [], []
        for chunk in chunks.validated(month, tally):
            clock.lap("read_validate")
            empty.add(chunk.empty_columns)
            part = month_inputs(chunk.valid, model, config, month, sample_share=share,
                                learn=estimate != "response", response=estimate == "response",
                                grant=grant)
            if reference:
                known = [c for c in reference["features"] if c in part.features.columns]
                column_counts = add_counts(column_counts,
                                           known_and_missing(part.features[known]))
            if estimate != "response":
                start = stored[-1].start + stored[-1].n_households if stored else 0
                stored.append(_SpilledFeatures.save(part, Path(spill) / f"{len(stored)}.npy",
                                                    start))
            # A new empty frame: a slice would keep the whole block alive.
            part.features = pd.DataFrame(columns=part.features.columns, dtype="float64")
            parts.append(part)
            clock.lap("inputs")
        tally.reconcile()
        check_columns(model, ref, column_counts)
        inputs = combine_inputs(parts)
        del parts
        if inputs.households.empty:
            raise LedgerError(f"{chunks.path}: no valid rows for month {month}; the ledger "
                              f"holds {chunks.months[0]} … {chunks.months[-1]}.")
        coverage = _coverage(inputs.households, config, month, empty)
        unscored = coverage.check(config.scoring.min_scored_share, allow=allow_unscored)
        _check_visits(visits, inputs.households, month)
        clock.lap("inputs")
        used, margin_model = _effect_source(inputs, model, config, estimate, None)
        if used == "response" and inputs.response is None:
            eligible = set(inputs.households.loc[inputs.households["eligible"], "household_id"])
            inputs.response = _effects_frame([
                _response_effects(model, chunk.valid, config, month,
                                  sorted(eligible & set(chunk.valid["household_id"])), grant)
                for chunk in chunks.validated()])
        clock.lap("margin_model")
        effects = None
        if used == "margin":
            measures = plan_measures(config, grant)
            effects = _effects_frame(
                [margin_effects(model, margin_model, chunk.inputs(inputs), config, measures)
                 for chunk in stored])
            clock.lap("effects")
    frames = plan_inputs(inputs, model, config, month, budget, grant=grant, visits=visits,
                         method="auto", estimate=used, margin_model=margin_model,
                         model_version=ref.version or ref.uri, effects=effects)
    clock.lap("plan")
    wanted = _to_explain(frames)
    # One pass over the file for the households shown, not one per chunk.
    reasons = explain_chosen(chunks.validated_rows_of(wanted).valid, model, config, month, wanted)
    clock.lap("explain")
    frames = _with_explanations(frames, reasons, config, clock.laps)
    frames.summary["ledger"] = {"rows": tally.n_rows, "valid": tally.n_valid,
                                "quarantined": tally.quarantined, "empty_columns": empty.columns}
    frames.summary["not_eligible_by_reason"] = coverage.by_reason
    frames.summary["insufficient_history_by_months_recorded"] = {
        str(k): int(v) for k, v in sorted(coverage.months_recorded.items())}
    frames.summary["coverage"] = {
        "valid_households": coverage.households, "scored": coverage.scored,
        "share": round(coverage.share, 4),
        "min_scored_share": config.scoring.min_scored_share,
        "published_below_min": unscored is not None}
    frames.summary["warnings"] = ([unscored] if unscored else []) + empty.warnings()
    for warning in frames.summary["warnings"]:
        logger.warning("plan %s: %s", month, warning)
    return frames


def _coverage(households: pd.DataFrame, config: Config, month: str,
              empty: EmptyColumns) -> Coverage:
    """The month's valid households that have a score (``eligible``), and why the others not:
    the reasons ``riskmodel score`` writes in ``not_scored_reason``."""
    eligible = households["eligible"].to_numpy(dtype=bool)
    unknown = households["income_pc"].isna().to_numpy()
    recorded = households.loc[unknown, "observed_months"].value_counts()
    return Coverage(
        month, len(households), int(eligible.sum()),
        {"poor_now": int((~eligible & ~unknown).sum()),
         "insufficient_history": int(unknown.sum())},
        {int(k): int(v) for k, v in recorded.items()}, config.label.min_observed_months,
        empty.columns)


def _month_output(out: Path, month: str, force: bool) -> MonthOutput:
    """The month's output folder, refused when it holds a scoring run's files: ``force``
    would replace the whole folder, scores and all."""
    output = MonthOutput(out, month, force)
    if (output.final / "scores.parquet").exists():
        raise OutputExistsError(f"{output.final} holds a scoring run's output (scores.parquet); "
                                "give plans an --out folder of their own.")
    return output


@dataclass
class _SpilledFeatures:
    """One chunk's eligible households' features, kept in a ``.npy`` file until priced."""

    path: Path
    columns: list[str]
    start: int  # the chunk's first row in the combined households
    n_households: int

    @classmethod
    def save(cls, part: MonthInputs, path: Path, start: int) -> _SpilledFeatures:
        np.save(path, part.features.to_numpy(dtype="float64"), allow_pickle=False)
        return cls(path, list(part.features.columns), start, len(part.households))

    def inputs(self, combined: MonthInputs) -> MonthInputs:
        """The chunk's households, features and figures, from the combined inputs."""
        households = combined.households.iloc[self.start:self.start + self.n_households]
        ids = pd.Index(households.loc[households["eligible"].to_numpy(), "household_id"]
                       .to_numpy(), name="household_id")
        features = pd.DataFrame(np.load(self.path, allow_pickle=False), index=ids,
                                columns=self.columns)
        return MonthInputs(households=households, features=features, facts=combined.facts)


def csv_table(frame: pd.DataFrame, headers: dict[str, str]) -> pd.DataFrame:
    """``frame`` with each header ``中文 name`` and household types in Chinese, for Excel."""
    out = frame[[c for c in headers if c in frame.columns]].copy()
    if "household_type" in out:
        out["household_type"] = out["household_type"].map(HOUSEHOLD_TYPE_ZH).fillna(
            out["household_type"])
    for column in ("risk_before", "risk_after", "risk_score", "falls_prevented"):
        if column in out:
            out[column] = out[column].round(4)
    return out.rename(columns={c: f"{headers[c]} {c}" for c in out.columns})


def _write_csv(frame: pd.DataFrame, path: Path, headers: dict[str, str]) -> Path:
    csv_table(frame, headers).to_csv(path, index=False, encoding="utf-8-sig")
    return path
