"""``summary.json``: the month's facts the scoring job writes beside its scores, as a model.

:class:`RunSummary` is the contract other tools read (the bulletin, dashboards, a county's own
scripts): the job writes the file through it (:meth:`RunSummary.write`) and readers read it
through it (:meth:`RunSummary.read`). ``schema_version`` says which version of the contract a
file follows; a field is only ever added within a version. Every field may be absent from a
file (a summary of an older version, or one written by hand); the job always writes them all.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from pydantic import Field

from ..ledger import Contract
from ..ledger import Part as _Part
from ..model import compare_reasons
from ..months import month_index, month_label

SCHEMA_VERSION = 1


class ModelFacts(_Part):
    """The model that scored the month."""

    uri: str | None = Field(None, description="Model URI the job loaded")
    name: str | None = Field(None, description="Registered model name, if from the registry")
    version: str | None = Field(None, description="Registered model version")
    run_id: str | None = Field(None, description="MLflow run that trained the model")
    label: str | None = Field(None, description="Model version label of scores.parquet")
    trained_at: str | None = Field(None, description="Date the model was trained")
    backtest: dict[str, Any] | None = Field(
        None, description="Backtest metrics of the model (model_/scorecard_/rules_…)")


class Reconciliation(_Part):
    """The month's rows: rows in = scored + not eligible + quarantined."""

    rows_in: int | None = Field(None, description="Rows of the month in the ledger")
    scored: int | None = Field(None, description="Households scored")
    not_eligible: int | None = Field(None, description="Valid households not scored")
    not_eligible_by_reason: dict[str, int] | None = Field(
        None, description="Households not scored, by not_scored_reason")
    insufficient_history_by_months_recorded: dict[str, int] | None = Field(
        None, description="Households with too little income history, by months recorded")
    quarantined: int | None = Field(None, description="Rows of the month quarantined")
    quarantined_by_rule: dict[str, int] | None = Field(
        None, description="Rows of the month quarantined, by validation rule")
    balanced: bool | None = Field(None, description="Whether the counts reconcile")


class LedgerFacts(_Part):
    """The whole ledger file as read."""

    rows: int | None = Field(None, description="Rows in the file")
    valid: int | None = Field(None, description="Rows that passed validation")
    quarantined: int | None = Field(None, description="Rows quarantined, all months")
    quarantined_by_rule: dict[str, int] | None = Field(
        None, description="Rows quarantined, all months, by rule")
    months: list[str] | None = Field(None, description="First and last month in the file")
    missing_optional_columns: list[str] | None = Field(
        None, description="Optional columns absent (read as unknown)")
    unfilled_optional_columns: list[str] | None = Field(
        None, description="Optional columns present but empty")
    empty_columns: list[str] | None = Field(None, description="Columns with no value at all")
    blank_rows_skipped: int | None = Field(None, description="Blank rows skipped")
    encoding: str | None = Field(None, description="Text encoding of the file (CSV)")
    sheet: str | None = Field(None, description="Worksheet read (Excel)")


class CoverageFacts(_Part):
    """How many valid households of the month could be scored."""

    valid_households: int | None = Field(None, description="Valid households of the month")
    scored: int | None = Field(None, description="Households scored")
    share: float | None = Field(None, description="scored / valid_households, 4 decimals")
    min_scored_share: float | None = Field(None, description="scoring.min_scored_share")
    published_below_min: bool | None = Field(
        None, description="Published with a share below the minimum (--allow-unscored)")


class TierCounts(_Part):
    """Households by tier."""

    high: int | None = Field(None, description="High-tier households")
    medium: int | None = Field(None, description="Medium-tier households")
    low: int | None = Field(None, description="Low-tier households")


class Thresholds(_Part):
    """The tier thresholds of the config (probabilities)."""

    high: float | None = Field(None, description="tiers.high")
    medium: float | None = Field(None, description="tiers.medium")


class WatchlistFacts(_Part):
    """The watch list."""

    households: int | None = Field(None, description="Households on the watch list")
    high_tier: int | None = Field(None, description="High-tier households")
    by_trigger: dict[str, int] | None = Field(None, description="Households by hard trigger")
    rows_written: int | None = Field(None, description="Rows of watchlist.csv")


class Lifecycle(_Part):
    """Risk elimination and the changes since last month."""

    elimination_candidates: int | None = Field(
        None, description="Risk-elimination candidates")
    previous_month: str | None = Field(None, description="Month compared with, if any")
    changes: dict[str, int] | None = Field(
        None, description="Households by change since last month (changes.parquet)")


class TownshipCounts(_Part):
    """One township's households."""

    county: str | None = Field(None, description="County")
    township: str | None = Field(None, description="Township")
    rows: int | None = Field(None, description="Households")
    scored: int | None = Field(None, description="Households scored")
    high: int | None = Field(None, description="High tier")
    medium: int | None = Field(None, description="Medium tier")
    low: int | None = Field(None, description="Low tier")
    not_eligible: int | None = Field(None, description="Not scored")
    watchlist: int | None = Field(None, description="On the watch list")
    elimination_candidates: int | None = Field(None, description="Risk-elimination candidates")


class Drift(_Part):
    """Drift of the month against the model's training reference."""

    threshold: float | None = Field(None, description="scoring.drift_psi_warning")
    score_psi: float | None = Field(None, description="PSI of the risk score")
    drifted: list[str] | None = Field(None, description="Names over the threshold")
    psi: dict[str, float] | None = Field(None, description="PSI by score and feature")
    features_compared_with: str | None = Field(
        None, description="The training months the features are compared with")


class ReasonAgreement(_Part):
    """The model's reasons against the risk types cadres recorded (ledgers that record them).

    The households identified as monitoring objects in the ``label.horizon_months`` months up
    to the month (``identified_from`` … ``identified_to``) with at least one risk type recorded
    at identification (their first row at or after ``identified_month``) are compared twice.
    ``before_*``: their ``reason_1`` (``reason_1`` … ``reason_3``) published the month before
    their identification, read from that month's ``scores.parquet`` in the same output folder
    (households whose month before was not scored there, or who had no reason then, are not
    counted) — what the model said before the cadres saw the household. The plain fields:
    their reasons this month, after identification — whether the model and the cadres name
    the same cause now.
    """

    identified_from: str | None = Field(None, description="First month of identification")
    identified_to: str | None = Field(None, description="Last month of identification")
    households: int | None = Field(
        None, description="Households compared this month (scored, with a recorded type)")
    reason_1_recorded: int | None = Field(
        None, description="Households whose reason_1 this month is a recorded risk type")
    reasons_1_3_recorded: int | None = Field(
        None, description="Households whose reason_1 … reason_3 this month include one")
    reason_1_share: float | None = Field(
        None, description="reason_1_recorded / households (null without households)")
    reasons_1_3_share: float | None = Field(
        None, description="reasons_1_3_recorded / households (null without households)")
    before_households: int | None = Field(
        None, description="Households with reasons published the month before identification")
    before_reason_1_recorded: int | None = Field(
        None, description="Of those, reason_1 then was a recorded risk type")
    before_reasons_1_3_recorded: int | None = Field(
        None, description="Of those, reason_1 … reason_3 then included one")
    before_reason_1_share: float | None = Field(
        None, description="before_reason_1_recorded / before_households (null without)")
    before_reasons_1_3_share: float | None = Field(
        None, description="before_reasons_1_3_recorded / before_households (null without)")


def reason_agreement_part(scores: pd.DataFrame, recorded: pd.DataFrame,
                          before: pd.DataFrame, month: str, config) -> dict:
    """The ``reason_agreement`` entry of ``summary.json``.

    Parameters
    ----------
    scores : DataFrame
        The month's scores (``household_id``, ``reason_1`` … ``reason_3``).
    recorded : DataFrame
        :func:`riskmodel.model.recorded_at_identification` over (t − H, t].
    before : DataFrame
        The reasons published the month before each household's identification.
    month : str
    config : Config
    """
    t = int(month_index(pd.Series([month]))[0])
    out = {"identified_from": str(month_label(t - config.label.horizon_months + 1)),
           "identified_to": month}
    # Only the households identified count: compare those alone.
    scores = scores[scores["household_id"].astype(str).isin(recorded.index)]
    for prefix, reasons in (("", scores), ("before_", before)):
        counts = compare_reasons(reasons, recorded)
        n = counts["households"]
        first, any_of = counts["reason_1_recorded"], counts["reasons_1_3_recorded"]
        out.update({f"{prefix}households": n, f"{prefix}reason_1_recorded": first,
                    f"{prefix}reasons_1_3_recorded": any_of,
                    f"{prefix}reason_1_share": round(first / n, 4) if n else None,
                    f"{prefix}reasons_1_3_share": round(any_of / n, 4) if n else None})
    return out


class MlflowRun(_Part):
    """The MLflow run of the job."""

    run_id: str | None = Field(None, description="Run id")
    tracking_uri: str | None = Field(None, description="Tracking URI")


class RunSummary(Contract):
    """The contents of ``summary.json``.

    Read it with :meth:`RunSummary.read` (``RunSummary.read(folder / "summary.json")``) and
    write it with :meth:`RunSummary.write`.

    Examples
    --------
    >>> summary = RunSummary.model_validate({"month": "2024-06", "tiers": {"high": 3}})
    >>> summary.tiers.high, summary.schema_version
    (3, 1)
    """

    expected: ClassVar[str] = "expected the summary.json written by `riskmodel score`"

    schema_version: int = Field(SCHEMA_VERSION, description="Version of this contract")
    month: str | None = Field(None, description="The month scored, YYYY-MM")
    model: ModelFacts | None = Field(None, description="The model")
    reconciliation: Reconciliation | None = Field(None, description="The month's rows")
    ledger: LedgerFacts | None = Field(None, description="The ledger file")
    coverage: CoverageFacts | None = Field(None, description="Share of households scored")
    tiers: TierCounts | None = Field(None, description="Households by tier")
    thresholds: Thresholds | None = Field(None, description="Tier thresholds")
    watchlist: WatchlistFacts | None = Field(None, description="The watch list")
    lifecycle: Lifecycle | None = Field(None, description="Elimination and changes")
    by_township: list[TownshipCounts] | None = Field(None, description="Counts by township")
    by_cause: dict[str, TierCounts] | None = Field(
        None, description="Households by first cause (reason_1) and tier")
    drift: Drift | None = Field(None, description="Drift; null without a reference")
    reason_agreement: ReasonAgreement | None = Field(
        None, description="Reasons against the recorded risk types; absent on a ledger "
                          "without identified_month and recorded_risk_1 … 5")
    warnings: list[str] | None = Field(None, description="Warnings of the run")
    timings_s: dict[str, float] | None = Field(None, description="Wall seconds by step")
    cpu_s: dict[str, float] | None = Field(None, description="CPU seconds by step")
    mlflow: MlflowRun | None = Field(None, description="The MLflow run")
