"""The Python interface as a notebook meets it: what help() says and what is importable."""

from __future__ import annotations

import pydoc

import riskmodel as rm


def test_load_ledger_says_that_its_rows_are_in_valid():
    text = pydoc.render_doc(rm.load_ledger, renderer=pydoc.plaintext)
    for attribute in ("valid", "quarantine", "n_in", "counts_by_rule", "missing_optional",
                      "empty_columns", "blank_rows"):
        assert f"``{attribute}``" in text, attribute
    assert "ValidationResult" in text and "Examples" in text


def test_one_households_explanation_is_exported():
    from riskmodel.explain import HouseholdExplanation, explain_one

    assert rm.explain_one is explain_one
    assert rm.HouseholdExplanation is HouseholdExplanation
    assert {"explain_one", "HouseholdExplanation"} <= set(rm.__all__) & set(dir(rm))
