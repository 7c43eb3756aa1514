"""Explanations: why the model flags a household, in the national list of risk causes.

It owns exact TreeSHAP of the trees, the attribution of the model's log-odds to risk causes
(with the counterfactual share-out of the net-income features), the reason codes and reason
text built from the household's own figures, the suggested measures, the what-if of a measure
or a grant on the model's risk, and the plots of explanations. It may import the ground
modules, :mod:`riskmodel.ledger` and :mod:`riskmodel.model`.

Inside, imports go one way: ``_leafshares`` (a leaf's share) under ``_treeshap`` (the
algorithm), and ``_facts`` (the household's figures from its ledger) under ``_reasons``
(evidence rules, ranking, reason text, measures), at the bottom; ``_counterfactual`` (a cause
given back) and ``_whatif`` (a measure applied) above ``_reasons``; ``_causes`` (attribution per
cause) above ``_counterfactual``; ``_text`` (the terminal report), ``_plots`` and ``_shap``
above ``_causes``; ``_household`` (the explanation API, with its I/O) on top.
"""

from ._causes import (
    N_REASONS,
    NET_CHANGE,
    NET_INCOME,
    cause_contributions,
    cause_matrix,
    cause_shares_by,
    feature_contributions,
    scorecard_cause_points,
    sum_by_cause,
)
from ._counterfactual import (
    CLEARED_EVENTS,
    ILL_MEMBERS,
    STRUCTURAL,
    UNREAD,
    cause_drops,
    first_by_counterfactual,
    risk_shares,
)
from ._facts import (
    MISSING,
    RECENT,
    SPAN,
    WINDOW,
    WINDOW_COUNTS,
    LedgerWindow,
    annual_per_capita,
    cause_givebacks,
    cause_losses,
    disabled_adults,
    household_facts,
    member_count,
    months_of,
    not_full_time,
    printed_figures,
    trailing_window,
)
from ._household import (
    HouseholdExplanation,
    explain_household,
    explain_households,
    explain_month,
    explain_one,
    reasons_frame,
    risk_without,
)
from ._plots import global_explanations, plot_beeswarm, plot_cause_bar, plot_cause_shares
from ._reasons import (
    contradiction_share,
    format_yuan,
    pass_to_evidence,
    rank_causes,
    reason_texts,
    render,
    required_rules,
    rule_holds,
    suggested_measures,
    text_contradictions,
    valid_causes,
)
from ._shap import shap_by_cause, shap_explanation
from ._text import render_household
from ._treeshap import TreeShapExplainer, tree_shap
from ._whatif import ASSISTANCE_FEATURES, REQUIREMENTS, grant_measures, measure_names, what_if

__all__ = [
    "ASSISTANCE_FEATURES",
    "CLEARED_EVENTS",
    "ILL_MEMBERS",
    "MISSING",
    "NET_CHANGE",
    "NET_INCOME",
    "N_REASONS",
    "RECENT",
    "REQUIREMENTS",
    "SPAN",
    "STRUCTURAL",
    "UNREAD",
    "WINDOW",
    "WINDOW_COUNTS",
    "HouseholdExplanation",
    "LedgerWindow",
    "TreeShapExplainer",
    "annual_per_capita",
    "cause_contributions",
    "cause_drops",
    "cause_givebacks",
    "cause_losses",
    "cause_matrix",
    "cause_shares_by",
    "contradiction_share",
    "disabled_adults",
    "explain_household",
    "explain_households",
    "explain_month",
    "explain_one",
    "feature_contributions",
    "first_by_counterfactual",
    "format_yuan",
    "global_explanations",
    "grant_measures",
    "household_facts",
    "measure_names",
    "member_count",
    "months_of",
    "not_full_time",
    "pass_to_evidence",
    "plot_beeswarm",
    "plot_cause_bar",
    "plot_cause_shares",
    "printed_figures",
    "rank_causes",
    "reason_texts",
    "reasons_frame",
    "render",
    "render_household",
    "required_rules",
    "risk_shares",
    "risk_without",
    "rule_holds",
    "scorecard_cause_points",
    "shap_by_cause",
    "shap_explanation",
    "suggested_measures",
    "sum_by_cause",
    "text_contradictions",
    "trailing_window",
    "tree_shap",
    "valid_causes",
    "what_if",
]
