"""The monthly scoring job: every valid household of a month scored, tiered, ranked and explained.

It owns :func:`score_frame` (the scoring both engines share), the job over a ledger file with
the pandas engine or Spark per bucket of households, the monitoring lifecycle (what changed
since last month, risk-elimination candidates) and the month's output files (scores, watch
list, quarantine, changes, summary). It may import the ground modules,
:mod:`riskmodel.ledger`, :mod:`riskmodel.model` and :mod:`riskmodel.explain`; not
:mod:`riskmodel.plan`, its peer.
"""

from ._core import (
    NOT_SCORED,
    REASON_COLUMNS,
    SCORE_SCHEMA,
    TIERS,
    ChunkResult,
    ScoreFrames,
    finalize_scores,
    model_version_label,
    score_frame,
)
from ._job import ENGINES, ScoreResult, StagedMonth, score_month
from ._lifecycle import (
    CHANGES,
    TIER_ORDER,
    changes_since,
    elimination_candidates,
    monitoring_columns,
)
from ._spark import BUCKET, ROW, read_ledger_spark, score_chunks, score_spark, spark_session
from ._summary import RunSummary
from ._watchlist import (
    WATCHLIST_HEADERS,
    watchlist_frame,
    write_watchlist,
    write_watchlist_file,
)

__all__ = [
    "RunSummary",
    "BUCKET",
    "CHANGES",
    "ENGINES",
    "NOT_SCORED",
    "REASON_COLUMNS",
    "ROW",
    "SCORE_SCHEMA",
    "TIERS",
    "TIER_ORDER",
    "WATCHLIST_HEADERS",
    "ChunkResult",
    "ScoreFrames",
    "ScoreResult",
    "StagedMonth",
    "changes_since",
    "elimination_candidates",
    "finalize_scores",
    "model_version_label",
    "monitoring_columns",
    "read_ledger_spark",
    "score_chunks",
    "score_frame",
    "score_month",
    "score_spark",
    "spark_session",
    "watchlist_frame",
    "write_watchlist",
    "write_watchlist_file",
]
