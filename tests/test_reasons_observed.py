"""Reasons on a ledger of what a county observes (incomes as recorded at the verification): which
causes a low recorded income is read as, 因残 only for a disabled adult at home, money that no
month shows printed as unknown, and the benchmark's interval of right causes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import valid
from sklearn.ensemble import HistGradientBoostingClassifier
from test_labels_recorded import recorded

from riskmodel import load_config
from riskmodel.explain import (
    cause_contributions,
    explain_households,
    feature_contributions,
    household_facts,
    text_contradictions,
    valid_causes,
)
from riskmodel.model import build_features

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from right_causes import cause_interval, right_causes  # noqa: E402

CONFIG = load_config()
RECORDED = ["recorded_income_ratio", "recorded_income_change", "months_since_recorded"]


def low_recorded_income(**households: dict) -> tuple:
    """Households with the same low recorded income (5,000 a person) and their own make-up,
    trees that read the recorded income alone, the features and rows of the last month."""
    frames = []
    for hid, columns in households.items():
        frame = recorded(hid, [5000.0] * 14)
        for name, value in columns.items():
            frame[name] = value
        frames.append(frame)
    ledger = valid(pd.concat(frames, ignore_index=True))
    features = build_features(ledger, CONFIG, months=[ledger["month"].max()])
    rows = ledger.loc[features.index]
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(0.0, 1.0, (600, features.shape[1])), columns=features.columns)
    X["recorded_income_ratio"] = rng.uniform(0.3, 3.0, 600)
    y = (X["recorded_income_ratio"] + rng.normal(0, 0.2, 600) < 1.2).astype(int)
    gbm = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    return gbm, features, rows, ledger


def test_a_disabled_member_is_read_as_the_cause_only_as_an_adult_who_does_not_work():
    # Four members: an elderly one, a child and two adults who both work full time, so the
    # disabled member is the child, the elderly one or a full laborer; then one adult at home.
    gbm, features, rows, ledger = low_recorded_income(
        working={"disabled": 1}, home={"disabled": 1, "labor_full": 1})
    facts = household_facts(rows, CONFIG, ledger).set_axis(rows["household_id"].to_numpy())
    assert facts["disabled_adults"].to_dict() == {"working": 0.0, "home": 1.0}
    allowed = valid_causes(facts, CONFIG)
    assert allowed["disability"].to_dict() == {"working": False, "home": True}
    reasons = explain_households(gbm, features, rows, CONFIG, history=ledger)
    first = reasons.set_axis(rows["household_id"].to_numpy())["reason_1"]
    # The low recorded income is the disabled adult's missing wage, or else the income itself.
    assert first.to_dict() == {"working": "income", "home": "disability"}


def test_a_low_recorded_income_is_never_read_as_unsafe_housing_or_water():
    gbm, features, rows, ledger = low_recorded_income(
        water={"water_safe": False}, both={"water_safe": False, "serious_ill": 1})
    ids = rows["household_id"].to_numpy()
    values, base = feature_contributions(gbm, features)
    part = values.set_axis(ids)[RECORDED].sum(axis=1)
    assert (part > 0.5).all()
    alone, _ = cause_contributions(gbm, features, CONFIG)
    shared, _ = cause_contributions(gbm, features, CONFIG, ledger_rows=rows)
    before, after = alone.set_axis(ids), shared.set_axis(ids)
    np.testing.assert_allclose(shared.sum(axis=1) + base,
                               gbm.decision_function(features[list(values.columns)]), atol=1e-9)
    # Unsafe water takes no money: the weight stays 收入偏低, or goes to the serious illness.
    pd.testing.assert_series_equal(after["water"], before["water"])
    # The same weight, added in another order (the net-income features after the rest).
    assert after.loc["water", "income"] == pytest.approx(before.loc["water", "income"], rel=1e-12,
                                                         abs=0)
    assert np.isclose(after.loc["both", "illness"], before.loc["both", "illness"] + part["both"])
    # Configured otherwise, a county may read it as every cause with evidence.
    every = CONFIG.model_copy(update={"reasons": CONFIG.reasons.model_copy(
        update={"recorded_income_causes": None})})
    widest, _ = cause_contributions(gbm, features, every, ledger_rows=rows)
    widest = widest.set_axis(ids)
    assert np.isclose(widest.loc["water", "water"], before.loc["water", "water"] + part["water"])
    assert np.isclose(widest.loc["both", "water"], before.loc["both", "water"] + part["both"] / 2)


def test_money_no_month_shows_is_printed_unknown_and_contradicts_nothing():
    gbm, features, rows, ledger = low_recorded_income(ill={"chronic_ill": 1})
    facts = household_facts(rows, CONFIG, ledger)
    assert facts[["medical_12m", "medical_3m", "wage_3m", "wage_before", "education_12m",
                  "business_3m", "business_before"]].isna().all().all()
    # The income as recorded is known: 5,000 a person.
    assert facts["income_pc"].tolist() == [5000.0]
    reasons = explain_households(gbm, features, rows, CONFIG, history=ledger)
    assert reasons["reason_1"].tolist() == ["illness"]
    text = reasons["reason_text_zh"].iloc[0]
    assert text.startswith("因病：近12个月合规自付医疗费用 — 元（近3个月 — 元）")
    assert not text_contradictions(reasons, CONFIG).fillna(False).to_numpy().any()


def test_the_interval_of_right_causes_draws_households_not_rows():
    # Household A judged right at three months, B and C wrong once each: 3 of 5 rows right.
    both = pd.DataFrame({
        "household_id": ["A", "A", "A", "B", "C", "D"],
        "true_risk": [0.5, 0.6, 0.7, 0.4, 0.3, 0.1],
        "poor_complete": [False] * 6,
        "true_cause": ["illness"] * 3 + ["education", "disaster", "illness"],
        "reason_1": ["illness"] * 3 + ["illness", "disability", "illness"],
        "reason_2": [None] * 6, "reason_3": [None] * 6,
    })
    rates = right_causes(both, 0.25)
    assert (rates["caused"], rates["households"], rates["reason_1"]) == (5, 3, 0.6)
    low, high = cause_interval(both, 0.25, draws=4000, seed=1)
    # Drawn by household, a sample without A has no right row and one of A alone no wrong one:
    # the interval reaches both ends; by rows (5 draws of 5 rows) it would rarely.
    assert (low, high) == (0.0, 1.0)
    assert cause_interval(both.assign(reason_1=both["true_cause"]), 0.25) == (1.0, 1.0)


def test_a_medical_warning_is_evidence_of_illness_and_the_text_quotes_it():
    # No member recorded ill and no monthly costs: only 医保's warning (ev_illness) in the year.
    gbm, features, rows, ledger = low_recorded_income(plain={}, warned={})
    warned = ledger["household_id"].eq("warned") & ledger["month"].eq(ledger["month"].max())
    ledger.loc[warned, "ev_illness"] = True
    features = build_features(ledger, CONFIG, months=[ledger["month"].max()])
    rows = ledger.loc[features.index]
    facts = household_facts(rows, CONFIG, ledger).set_axis(rows["household_id"].to_numpy())
    assert valid_causes(facts, CONFIG)["illness"].to_dict() == {"plain": False, "warned": True}
    reasons = explain_households(gbm, features, rows, CONFIG, history=ledger)
    reasons = reasons.set_axis(rows["household_id"].to_numpy())
    assert reasons["reason_1"].to_dict() == {"plain": "income", "warned": "illness"}
    assert reasons.loc["warned", "reason_text_zh"].startswith(
        "因病：近12个月合规自付医疗费用 — 元（近3个月 — 元），占年收入 —%；慢性病 0 人，重病 0 人，"
        "近12个月患病或大额医疗费用预警 1 次")
    assert not text_contradictions(reasons, CONFIG).fillna(False).to_numpy().any()
