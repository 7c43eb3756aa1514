"""Budget and visit plans: for the same money and the same visits, prevent the most falls.

It owns the effect of each measure on each household (priced by the lowest-margin model from
how far the ledger's households fell below the line, or by the model's what-if response), the
multiple-choice knapsack that chooses measures within a budget, the visit order by township,
and the plan job with its files. It may import the ground modules, :mod:`riskmodel.ledger`,
:mod:`riskmodel.model` and :mod:`riskmodel.explain`; not :mod:`riskmodel.scoring`, its peer.
"""

from ._core import (
    PLAN_COLUMNS,
    REASON_COLUMNS,
    RULES,
    PlanFrames,
    compare_rules,
    explain_chosen,
    plan_frame,
    plan_inputs,
)
from ._inputs import (
    ESTIMATE_NOTES,
    ESTIMATES,
    HOUSEHOLD_COLUMNS,
    MonthInputs,
    PlanInputError,
    combine_inputs,
    fit_from_inputs,
    margin_effects,
    month_inputs,
    plan_measures,
    risk_scores,
)
from ._job import PlanResult, csv_table, plan_month
from ._knapsack import EXACT_MAX_OPTIONS, EXACT_MAX_WORK, METHODS, REQUIRED, make_plan, plan_value
from ._margin import (
    HELP,
    PREDICT_ROWS,
    RISK_COLUMN,
    LowestMarginModel,
    cap_rows,
    falls_under,
    fit_margin_model,
    help_lift,
    lift_columns,
    margin_features,
    margin_paths,
    training_rows,
)
from ._summary import PlanSummary
from ._visits import (
    VISIT_COLUMNS,
    VISITS_ALIASES,
    VisitsFileError,
    read_visits,
    trigger_names,
    unknown_townships,
    visit_plan,
)

__all__ = [
    "PlanSummary",
    "ESTIMATES",
    "ESTIMATE_NOTES",
    "EXACT_MAX_OPTIONS",
    "EXACT_MAX_WORK",
    "HELP",
    "HOUSEHOLD_COLUMNS",
    "METHODS",
    "PLAN_COLUMNS",
    "PREDICT_ROWS",
    "REASON_COLUMNS",
    "REQUIRED",
    "RISK_COLUMN",
    "RULES",
    "VISITS_ALIASES",
    "VISIT_COLUMNS",
    "LowestMarginModel",
    "MonthInputs",
    "PlanFrames",
    "PlanInputError",
    "PlanResult",
    "VisitsFileError",
    "cap_rows",
    "combine_inputs",
    "compare_rules",
    "csv_table",
    "explain_chosen",
    "falls_under",
    "fit_from_inputs",
    "fit_margin_model",
    "help_lift",
    "lift_columns",
    "make_plan",
    "margin_effects",
    "margin_features",
    "margin_paths",
    "month_inputs",
    "plan_frame",
    "plan_inputs",
    "plan_measures",
    "plan_month",
    "plan_value",
    "read_visits",
    "risk_scores",
    "training_rows",
    "trigger_names",
    "unknown_townships",
    "visit_plan",
]
