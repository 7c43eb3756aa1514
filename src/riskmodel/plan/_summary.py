"""``plan_summary.json``: what a plan run chose and how it compares, as a model.

:class:`PlanSummary` is the contract other tools read: ``riskmodel plan`` writes the file
through it (:meth:`PlanSummary.write`) and readers read it through it
(:meth:`PlanSummary.read`). ``schema_version`` says which version of the contract a file
follows; a field is only ever added within a version. Every field may be absent from a file (a
summary of an older version); the job always writes them all, ``visits`` only with a visit
plan.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from ..ledger import Contract, Part

SCHEMA_VERSION = 1


class MeasureSpend(Part):
    """What the plan spends on one measure."""

    households: int | None = Field(None, description="Households given the measure")
    spent: float | None = Field(None, description="Yuan spent on it")
    falls_prevented: float | None = Field(None, description="Expected falls it prevents")


class RuleOutcome(Part):
    """What a rule of today's practice would do with the same budget."""

    households: int | None = Field(None, description="Households the rule would fund")
    spent: float | None = Field(None, description="Yuan it would spend")
    falls_prevented: float | None = Field(None, description="Expected falls it would prevent")
    plan_ratio: float | None = Field(
        None, description="The plan's falls prevented over the rule's; null when the rule's is 0")


class RuleComparison(Part):
    """The plan against today's rules, each funding one measure."""

    measure: str | None = Field(None, description="The measure the rules fund")
    income_cutoff: RuleOutcome | None = Field(None, description="Lowest income first")
    risk_ranking: RuleOutcome | None = Field(None, description="Highest risk first")


class VisitFacts(Part):
    """The visit plan (with ``--visits``)."""

    households: int | None = Field(None, description="Households to visit")
    townships: int | None = Field(None, description="Townships visited")
    hard_trigger_households: int | None = Field(
        None, description="Visited households with a hard trigger")
    expected_fallers_visited: float | None = Field(
        None, description="Sum of the visited households' risk")
    rotation_expected_fallers_visited: float | None = Field(
        None, description="The same for today's rotation (triggers, then longest waiting)")


class PlanLedger(Part):
    """The ledger file as read."""

    rows: int | None = Field(None, description="Rows in the file")
    valid: int | None = Field(None, description="Rows that passed validation")
    quarantined: int | None = Field(None, description="Rows quarantined")
    empty_columns: list[str] | None = Field(None, description="Columns with no value at all")


class PlanCoverage(Part):
    """How many valid households of the month could be scored."""

    valid_households: int | None = Field(None, description="Valid households of the month")
    scored: int | None = Field(None, description="Households scored")
    share: float | None = Field(None, description="scored / valid_households, 4 decimals")
    min_scored_share: float | None = Field(None, description="scoring.min_scored_share")
    published_below_min: bool | None = Field(
        None, description="Planned with a share below the minimum (--allow-unscored)")


class PlanSummary(Contract):
    """The contents of ``plan_summary.json``.

    Examples
    --------
    >>> PlanSummary.model_validate({"month": "2024-06", "budget": 30000}).budget
    30000.0
    """

    expected: ClassVar[str] = "expected the plan_summary.json written by `riskmodel plan`"

    schema_version: int = Field(SCHEMA_VERSION, description="Version of this contract")
    month: str | None = Field(None, description="The month planned, YYYY-MM")
    budget: float | None = Field(None, description="Budget, yuan")
    spent: float | None = Field(None, description="Yuan the plan spends")
    households: int | None = Field(None, description="Households in the plan")
    falls_prevented: float | None = Field(None, description="Expected falls prevented")
    grant: float | None = Field(None, description="--grant amount, if given")
    measures_considered: list[str] | None = Field(None, description="Measure codes weighed")
    solver: str | None = Field(None, description="Knapsack method used")
    effect_estimate: str | None = Field(None, description="margin or response")
    effect_note: str | None = Field(None, description="What the estimate is (not causal)")
    households_in_month: int | None = Field(None, description="Households of the month")
    eligible_households: int | None = Field(None, description="Households that may be funded")
    by_measure: dict[str, MeasureSpend] | None = Field(None, description="Spend by measure")
    rules: RuleComparison | None = Field(None, description="The plan against the rules")
    model_version: str | None = Field(None, description="The model's version or URI")
    visits: VisitFacts | None = Field(None, description="The visit plan, with --visits")
    timings_s: dict[str, float] | None = Field(None, description="Wall seconds by step")
    ledger: PlanLedger | None = Field(None, description="The ledger file")
    not_eligible_by_reason: dict[str, int] | None = Field(
        None, description="Households not scored, by not_scored_reason")
    insufficient_history_by_months_recorded: dict[str, int] | None = Field(
        None, description="Households with too little income history, by months recorded")
    coverage: PlanCoverage | None = Field(None, description="Share of households scored")
    warnings: list[str] | None = Field(None, description="Warnings of the run")
