"""The scoring both engines share: validated rows of a set of households in, scores out.

:func:`score_frame` is the pure core: no I/O, a household's scores depend on its own rows
only, so any partition by household (the pandas job's chunks, Spark's buckets) gives the same
rows; only ``rank`` is global, assigned by :func:`finalize_scores` after the parts are put
together. :class:`ChunkResult` is what an engine yields per partition for the job to add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..clock import Clock
from ..config import Config
from ..explain import explain_households
from ..ledger import INCOME, SPENDING, ValidChunk
from ..model import (
    HARD_TRIGGERS,
    RECORDED_RISKS,
    ModelRef,
    build_features,
    count_bins,
    format_triggers,
    has_recorded_risks,
    poverty_status,
    recorded_at_identification,
    rule_triggers,
)
from ..months import month_index, month_index_or_nan, month_label
from ._lifecycle import elimination_candidates, monitoring_columns

NOT_SCORED = ("poor_now", "insufficient_history")
TIERS = ("high", "medium", "low")
REASON_COLUMNS = [
    "reason_1", "reason_1_weight", "reason_2", "reason_2_weight", "reason_3", "reason_3_weight",
    "risk_causes", "reason_text_zh", "reason_text_en", "measures_zh",
]
# The scores.parquet contract, in column order, with the types every run writes.
SCORE_SCHEMA = {
    "household_id": "string",
    "month": "string",
    "county": "string",
    "township": "string",
    "village": "string",
    "household_type": "string",
    "risk_score": "float64",
    "risk_tier": "string",
    "rank": "Int64",
    "reason_1": "string",
    "reason_1_weight": "float64",
    "reason_2": "string",
    "reason_2_weight": "float64",
    "reason_3": "string",
    "reason_3_weight": "float64",
    "risk_causes": "string",
    "reason_text_zh": "string",
    "reason_text_en": "string",
    "measures_zh": "string",
    "rule_triggers": "string",
    "on_watchlist": "bool",
    "elimination_candidate": "bool",
    "months_above_line": "int64",
    "income_pc": "float64",
    "poverty_line": "float64",
    "not_scored_reason": "string",
    "model_version": "string",
}


@dataclass
class ScoreFrames:
    """What :func:`score_frame` returns for one set of households.

    Attributes
    ----------
    scores : DataFrame
        One row per household at the month, columns :data:`SCORE_SCHEMA`, in rank order
        (``rank`` counts within these households only).
    drift_counts : dict or None
        Bin counts of the scored rows against the model's ``reference_``
        (see :func:`riskmodel.model.count_bins`); None when the model carries no reference.
    timings : dict
        Wall seconds per stage (status, features, predict, explain, flags) and CPU seconds
        under ``cpu:<stage>``.
    months_recorded : dict
        The households with too little income history (``insufficient_history``) by the
        number of the last 12 months with income recorded.
    identified : DataFrame or None
        On a ledger that records identifications and risk types: the households identified
        in the ``label.horizon_months`` months up to the month, (t − H, t], with the types
        recorded at identification (:func:`riskmodel.model.recorded_at_identification`);
        None otherwise.
    """

    scores: pd.DataFrame
    drift_counts: dict | None
    timings: dict = field(default_factory=dict)
    months_recorded: dict = field(default_factory=dict)
    identified: pd.DataFrame | None = None


def score_frame(ledger: pd.DataFrame, model, config: Config, month: str,
                model_version: str | None = None) -> ScoreFrames:
    """Score, explain and flag every household of ``month``: validated rows in, scores out.

    Parameters
    ----------
    ledger : DataFrame
        Validated ledger rows (:func:`riskmodel.validate_ledger`) of a set of households, with
        their history; rows after ``month`` are ignored, so features read months ≤ ``month``
        only.
    model : RiskModel
        A fitted model: ``predict_proba``, ``feature_names_in_``, ``gbm_`` and, for drift,
        ``reference_``.
    config : Config
    month : str
        ``YYYY-MM``.
    model_version : str, optional
        Written in the ``model_version`` column.

    Returns
    -------
    ScoreFrames
    """
    clock = Clock(cpu=True)
    t = int(month_index(pd.Series([month]))[0])
    months = month_index(ledger["month"])
    history = ledger
    if (months > t).any():
        history, months = ledger[months <= t], months[months <= t]
    now = np.flatnonzero(months == t)
    rows = history.iloc[now]
    if len(rows) == 0:
        return ScoreFrames(_typed(pd.DataFrame(index=rows.index)), None, clock.laps)
    # The stages group the rows by household and read their months: integer codes group them
    # as the ids do (in order of first appearance), and months as categories are read without
    # parsing every row's text again. The ids and months as written go to the explanations.
    house = _household_codes(history["household_id"])
    keys = history.assign(household_id=house)
    status = poverty_status(keys, config, months=months)
    poor = status["poor"].to_numpy(dtype="float64", na_value=np.nan)[now]
    eligible = poor == 0
    clock.lap("status")

    first = int(months.min())
    keys["month"] = pd.Categorical.from_codes(
        months - first, categories=month_label(np.arange(first, t + 1)))
    features = build_features(keys, config, months=[month]).loc[rows.index]
    clock.lap("features")
    names = [str(c) for c in model.feature_names_in_]
    scored = features.loc[eligible, names]
    risk = np.full(len(rows), np.nan)
    if len(scored):
        risk[eligible] = model.predict_proba(scored)[:, 1]
    clock.lap("predict")

    out = pd.DataFrame(index=rows.index)
    for column in ("household_id", "month", "county", "township", "village", "household_type"):
        out[column] = rows[column].to_numpy()
    out["risk_score"] = risk
    out["risk_tier"] = pd.array(config.tiers.assign(risk), dtype="string")
    if len(scored):
        reasons = explain_households(model, scored, rows[eligible], config,
                                     n_jobs=config.scoring.threads, history=history,
                                     risk=risk[eligible])
        for column in REASON_COLUMNS:
            out[column] = reasons[column].reindex(out.index)
    clock.lap("explain")

    fired = rule_triggers(features, config)
    hard = fired[[c for c in HARD_TRIGGERS if c in fired.columns]].copy()
    if config.triggers.income_below_line:
        # The label's own "poor now" fires the trigger, so every household the model does not
        # score for being under the line is on the watch list.
        hard["income_below_line"] |= poor == 1
    out["rule_triggers"] = format_triggers(hard).fillna("")
    out["on_watchlist"] = out["risk_tier"].eq("high").fillna(False) | (out["rule_triggers"] != "")

    monitoring = monitoring_columns(keys[["household_id", "month", *INCOME, *SPENDING]],
                                    status, month, config, months=months)
    rule = config.lifecycle.elimination
    facts = rows[["household_type", "labor_full", "labor_partial", *rule.guarantees]].join(
        monitoring).assign(risk_tier=out["risk_tier"], rule_triggers=out["rule_triggers"])
    out["elimination_candidate"] = elimination_candidates(facts, config)
    out["months_above_line"] = monitoring["months_above_line"]
    out["income_pc"] = status["income_pc"].to_numpy()[now]
    out["poverty_line"] = status["line"].to_numpy()[now]
    out["not_scored_reason"] = np.where(np.isnan(poor), NOT_SCORED[1],
                                        np.where(poor == 1, NOT_SCORED[0], None))
    out["model_version"] = model_version
    reference = getattr(model, "reference_", None)
    counts = count_bins(reference, scored, risk[eligible]) if reference else None
    recorded, n = np.unique(status["observed_months"].to_numpy()[now][np.isnan(poor)],
                            return_counts=True)
    identified = None
    if has_recorded_risks(history):
        # The rows and columns it reads: those of the months in the window that record an
        # identification in the window, known at the row's month.
        start = t - config.label.horizon_months
        window = np.flatnonzero(months > start)
        ident = month_index_or_nan(history["identified_month"].iloc[window])
        with np.errstate(invalid="ignore"):
            window = window[(ident > start) & (ident <= t) & (months[window] >= ident)]
        read = [c for c in ["household_id", "month", "identified_month", *RECORDED_RISKS]
                if c in history.columns]
        identified = recorded_at_identification(history[read].iloc[window], start, t)
    clock.lap("flags")
    return ScoreFrames(finalize_scores(out), counts, clock.laps,
                       dict(zip(recorded.tolist(), n.tolist(), strict=True)), identified)


def _household_codes(ids: pd.Series) -> np.ndarray:
    """``pd.factorize(ids)[0]``: each row's household numbered in order of first appearance.
    Where each household's rows are together (a validated ledger's are), read from the runs of
    equal ids, comparing neighbours instead of hashing every id."""
    n = len(ids)
    if n < 2 or not isinstance(ids.dtype, pd.StringDtype) or ids.isna().any():
        return pd.factorize(ids)[0]
    text = pa.array(ids.array, type=pa.large_string(), from_pandas=True)
    changes = pc.not_equal(text.slice(1), text.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    new = np.concatenate([[True], changes])
    starts = np.flatnonzero(new)
    if len(pd.unique(ids.iloc[starts])) < len(starts):
        return pd.factorize(ids)[0]  # a household's rows apart
    return np.cumsum(new) - 1


def finalize_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Sort into the published order and number the scored households.

    Scored households come first by decreasing ``risk_score`` (ties by ``household_id``), then
    the households without a score by ``household_id``; ``rank`` is 1, 2, … over the scored.
    Applied to the union of partitions it gives the same frame whatever the partition.
    """
    frame = _typed(scores)
    risk = frame["risk_score"].to_numpy(dtype="float64", na_value=np.nan)
    unscored = np.isnan(risk)
    # Arrow's sort is stable and orders text by its UTF-8 bytes, which is the order of its
    # code points, as Python compares strings; ids are not turned into Python objects.
    key = pa.table({"unscored": unscored, "risk": -np.where(unscored, 0.0, risk),
                    "household_id": pa.array(frame["household_id"].array,
                                             type=pa.large_string(), from_pandas=True)})
    order = pc.sort_indices(key, sort_keys=[("unscored", "ascending"), ("risk", "ascending"),
                                            ("household_id", "ascending")])
    frame = frame.iloc[order.to_numpy()].reset_index(drop=True)
    position = pd.Series(np.arange(1, len(frame) + 1), dtype="Int64")
    frame["rank"] = position.where(frame["risk_score"].notna())
    return frame


_EMPTY = {"bool": False, "float64": np.nan, "int64": 0}


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for column, dtype in SCORE_SCHEMA.items():
        values = frame[column] if column in frame else pd.Series(
            _EMPTY.get(dtype, pd.NA), index=frame.index, dtype=dtype)
        out[column] = values.astype(dtype)
    return out


def model_version_label(ref: ModelRef) -> str:
    """How a model is named in outputs: ``name/version`` when registered, else its URI."""
    return f"{ref.name}/{ref.version}" if ref.version is not None else str(ref.uri)


@dataclass
class ChunkResult:
    """One chunk of households, validated and scored: what the job adds up.

    An engine that partitions the ledger differently (Spark) yields these for the job.

    Attributes
    ----------
    frames : ScoreFrames
    chunk : ValidChunk
        The chunk's counts and the month's quarantine, without its rows
        (:meth:`riskmodel.ledger.ValidChunk.without_rows`).
    timings : dict
        Wall and CPU seconds per stage, validation included.
    """

    frames: ScoreFrames
    chunk: ValidChunk
    timings: dict

    @classmethod
    def of(cls, chunk: ValidChunk, frames: ScoreFrames) -> ChunkResult:
        """The result of scoring ``chunk``'s valid rows into ``frames``."""
        return cls(frames, chunk.without_rows(), {**chunk.timings, **frames.timings})
