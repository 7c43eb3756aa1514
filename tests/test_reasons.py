"""Reasons only with evidence in the household's own figures, and texts that never contradict
the figures they quote."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import households, small_model

from riskmodel import ConfigError, load_config
from riskmodel.config import DEFAULT_CONFIG, EvidenceRule
from riskmodel.explain import (
    cause_contributions,
    explain_households,
    household_facts,
    pass_to_evidence,
    rank_causes,
    reasons_frame,
    text_contradictions,
    valid_causes,
)

CONFIG = load_config()
CODES = [c.code for c in CONFIG.causes]
FLAT = [2000.0] * 12


def allowed_for(*specs: dict, month: str = "2024-12") -> pd.DataFrame:
    """valid_causes of hand-built households (conftest.households) at ``month``."""
    rows = households(*specs)
    now = rows[rows["month"] == month]
    return valid_causes(household_facts(now, CONFIG, rows), CONFIG).reset_index(drop=True)


def at(ages: list[int], months: int = 12) -> list[bool]:
    """An event flag per month, set ``ages`` months before the last (0: the last month)."""
    return [months - 1 - i in ages for i in range(months)]


def test_employment_needs_a_fall_in_wages_a_job_loss_or_a_migrant_come_home():
    allowed = allowed_for(
        {"inc_wage": [1155.0] * 9 + [1168.0] * 3},      # wages up a little: the issue's H0000097
        {"inc_wage": [2000.0] * 9 + [1900.0] * 3},      # down 5%: less than the rule's tenth
        {"inc_wage": [2000.0] * 9 + [1700.0] * 3},      # down 15%
        {"inc_wage": FLAT, "ev_job_loss": at([7])},     # a job lost 7 months ago
        {"migrant_workers": [1] * 8 + [0] * 4},         # a migrant worker home since 4 months
        {"migrant_workers": 1},                         # a migrant worker away all year
    )
    assert allowed["employment"].tolist() == [False, False, True, True, True, False]


def test_business_needs_a_fall_in_business_income_or_a_loss():
    allowed = allowed_for(
        {"inc_business": 0.0},                          # 0 before and after: the issue's H0000178
        {"inc_business": 300.0},
        {"inc_business": [300.0] * 9 + [100.0] * 3},
        {"inc_business": 300.0, "ev_business_loss": at([2])},
    )
    assert allowed["business"].tolist() == [False, False, True, True]


def test_low_income_needs_an_income_under_the_configured_multiple_of_the_line():
    # The line is 8,700 (云南省 2024), the rule 1.5 times it: 13,050 a person.
    allowed = allowed_for(
        {"inc_wage": 4600.0},                           # (4,600 + 400) × 12 / 4 = 15,000
        {"inc_wage": 3800.0},                           # 12,600
        # Three months observed of twelve: the income is unknown, nothing says it is low.
        {"inc_wage": [np.nan] * 9 + [1000.0] * 3, "inc_business": [np.nan] * 9 + [0.0] * 3,
         "inc_property": [np.nan] * 9 + [0.0] * 3, "inc_transfer": [np.nan] * 9 + [0.0] * 3},
    )
    assert allowed["income"].tolist() == [False, True, False]


def test_education_needs_a_student_beyond_compulsory_school_or_costs_above_the_share():
    allowed = allowed_for(
        # A pupil of compulsory school and 220 yuan in the year: 1% of income.
        {"students_compulsory": 1, "exp_education": [0.0] * 11 + [220.0]},
        {"students_noncompulsory": 1, "children": 0},
        # No student on record, but 300 a month: 12.5% of an income of 28,800.
        {"exp_education": 300.0},
    )
    assert allowed["education"].tolist() == [False, True, True]


def test_illness_disability_accident_disaster_and_status_causes():
    allowed = allowed_for(
        {},
        # Medical costs without an ill member or an illness: routine costs, no 因病.
        {"exp_medical_oop": [0.0] * 11 + [150.0]},
        {"chronic_ill": 1},
        # A disabled member, but every member of working age works full time: no 因残.
        {"disabled": 1},
        {"ev_accident": at([3]), "ev_disaster": at([11])},
        # Events 13 months back are outside the year the reasons read.
        {"months": 24, "ev_accident": at([13], 24), "ev_disaster": at([13], 24)},
        {"housing_safe": False, "water_safe": False},
        {"labor_full": 1},
        # One of the two adults is disabled and does not work full time.
        {"disabled": 1, "labor_full": 1},
    )
    table = allowed[["illness", "disability", "accident", "disaster", "housing", "water",
                     "labor_shortage"]].to_numpy()
    np.testing.assert_array_equal(table, [
        [False, False, False, False, False, False, False],
        [False, False, False, False, False, False, False],
        [True, False, False, False, False, False, False],
        [False, False, False, False, False, False, False],
        [False, False, True, True, False, False, False],
        [False, False, False, False, False, False, False],
        [False, False, False, False, True, True, False],
        [False, False, False, False, False, False, True],
        [False, True, False, False, False, False, True],
    ])


def test_evidence_reads_only_months_up_to_the_one_explained():
    # Explained at 2024-06; the job loss (2024-09) and the fall in wages come after it.
    wage = [2000.0] * 9 + [1000.0] * 3
    allowed = allowed_for({"inc_wage": wage, "ev_job_loss": at([3])}, month="2024-06")
    assert not allowed.loc[0, "employment"]
    allowed = allowed_for({"inc_wage": wage, "ev_job_loss": at([3])})
    assert allowed.loc[0, "employment"]


def test_a_cause_without_evidence_is_never_named_its_weight_goes_to_the_strongest_with():
    # Each household's contributions name first a cause its ledger gives no evidence for.
    rows = households(
        {"inc_wage": [1155.0] * 9 + [1168.0] * 3, "exp_medical_oop": [0.0] * 11 + [300.0],
         "chronic_ill": 1},
        {"inc_business": 0.0, "students_noncompulsory": 1, "children": 0},
        {"inc_wage": 4600.0, "disabled": 1, "labor_full": 1},  # a disabled adult at home
        {"students_compulsory": 1, "exp_education": [0.0] * 11 + [220.0]},
    )
    now = rows[rows["month"] == "2024-12"]
    facts = household_facts(now, CONFIG, rows)
    contributions = pd.DataFrame(0.0, index=now.index, columns=CODES)
    contributions["employment"] = [1.2, 0.0, 0.0, 0.0]
    contributions["business"] = [0.0, 0.9, 0.0, 0.0]
    contributions["income"] = [-0.2, 0.3, 1.5, 0.4]
    contributions["education"] = [0.0, 0.2, 0.0, 0.6]
    contributions["illness"] = [0.1, -0.3, 0.0, 0.0]
    contributions["disability"] = [0.0, 0.0, 0.2, 0.0]
    allowed = valid_causes(facts, CONFIG)
    passed = pass_to_evidence(contributions, allowed)
    codes, weights = rank_causes(passed, allowed, CONFIG)
    # 因务工就业不稳 → 因病 (a chronic patient: its only cause with evidence, 0.1); 因产业失败 →
    # 收入偏低 (0.3, above 因学's 0.2); 收入偏低 at 15,000 a person → 因残; 因学 for 220 yuan →
    # 收入偏低.
    assert codes[:, 0].tolist() == ["illness", "income", "disability", "income"]
    np.testing.assert_allclose(weights[:, 0], [1.3, 1.2, 1.7, 1.0])
    np.testing.assert_allclose(passed.sum(axis=1), contributions.sum(axis=1), atol=1e-12)
    # Negative contributions stay where they are; a cause that passes its weight is not named.
    assert passed.loc[now.index[1], "illness"] == -0.3
    assert (passed.to_numpy()[~allowed[CODES].to_numpy()] <= 0).all()
    text = reasons_frame(codes, weights, facts, CONFIG)
    assert not text_contradictions(text, CONFIG).fillna(False).to_numpy().any()


def test_a_household_without_any_evidence_keeps_its_contributions_and_gets_no_reason():
    contributions = pd.DataFrame({"employment": [0.7, 0.2], "income": [0.3, -0.1]})
    allowed = pd.DataFrame({"employment": [False, False], "income": [False, True]})
    passed = pass_to_evidence(contributions, allowed)
    np.testing.assert_array_equal(passed.to_numpy(), [[0.7, 0.3], [0.0, 0.1]])
    codes, _ = rank_causes(passed, allowed.reindex(columns=CODES, fill_value=False), CONFIG)
    assert codes[0, 0] is None and codes[1, 0] == "income"


def test_a_household_gets_the_same_passed_weights_alone_or_among_others():
    rng = np.random.default_rng(3)
    contributions = pd.DataFrame(rng.normal(0, 1, (500, len(CODES))), columns=CODES)
    allowed = pd.DataFrame(rng.random((500, len(CODES))) < 0.3, columns=CODES)
    together = pass_to_evidence(contributions, allowed).to_numpy()
    alone = np.vstack([pass_to_evidence(contributions.iloc[[i]], allowed.iloc[[i]]).to_numpy()
                       for i in range(len(contributions))])
    np.testing.assert_array_equal(together, alone)  # to the last bit, as the job's chunks need


def explained(*rows: tuple[str, str | None, str]) -> pd.DataFrame:
    """Rows of (reason_1, reason_2, reason_text_zh) as explain_households writes them."""
    frame = pd.DataFrame(rows, columns=["reason_1", "reason_2", "reason_text_zh"])
    frame["reason_3"] = None
    return frame.astype("string")


def test_the_contradiction_check_reads_the_texts_of_the_issue():
    # The template of today's config without the job losses and migrants it quotes now.
    employment = CONFIG.reasons.text["employment"].model_copy(update={
        "zh": "因务工就业不稳：近3个月月均工资性收入 {wage_3m} 元，此前9个月月均 {wage_before} 元"})
    old = CONFIG.model_copy(update={"reasons": CONFIG.reasons.model_copy(update={
        "text": {**CONFIG.reasons.text, "employment": employment}})})
    frame = explained(
        ("employment", "accident", "因务工就业不稳：近3个月月均工资性收入 1,168 元，"
         "此前9个月月均 1,155 元；因意外事故：近12个月发生意外事故 1 次（最近 2024-12），"
         "合规自付医疗费用 2,063 元"),
        ("employment", None, "因务工就业不稳：近3个月月均工资性收入 1,000 元，"
         "此前9个月月均 1,155 元"),
    )
    table = text_contradictions(frame, old)
    assert table["reason_1"].tolist() == [True, False]
    assert table["reason_2"].tolist() == [False, pd.NA]
    frame = explained(
        ("business", None, "因产业失败：近3个月月均经营净收入 0 元，此前9个月月均 0 元；"
         "近12个月经营受损 0 次"),
        ("income", None, "收入偏低：近12个月人均可支配收入 14,848 元，监测线 8,700 元"),
        ("income", None, "收入偏低：近12个月人均可支配收入 — 元，监测线 8,700 元"),
        ("education", "illness", "因学：在校生 1 人（非义务教育 0 人），近12个月教育支出 220 元，"
         "占年收入 0%；因病：近12个月合规自付医疗费用 150 元（近3个月 150 元），占年收入 1%；"
         "慢性病 0 人，重病 0 人，近12个月患病或大额医疗费用预警 0 次"),
        ("employment", None, "因务工就业不稳：近3个月月均工资性收入 1,168 元，此前9个月月均 "
         "1,155 元；近12个月失业 1 次，返乡务工 0 人"),
        ("labor_shortage", None, "缺劳动力：4 口人中劳动力 2 人，老人 1 人，儿童 1 人"),
        ("housing", None, "因安全住房：住房安全未保障"),
    )
    table = text_contradictions(frame, CONFIG)
    assert table["reason_1"].tolist() == [True, True, True, True, False, True, False]
    # 150 yuan of medical costs with nobody ill and no illness on record: not 因病.
    assert table["reason_2"].tolist()[3] is True
    with pytest.raises(ValueError, match="does not read back with the templates of income"):
        text_contradictions(explained(("income", None, "收入偏低")), CONFIG)


@pytest.fixture(scope="module")
def fitted():
    return small_model(seed=7)


def test_no_named_reason_contradicts_its_own_figures_and_weights_still_add_up(fitted):
    ledger, features, model = fitted
    month = ledger["month"].max()
    rows = features[(ledger.loc[features.index, "month"] == month).to_numpy()]
    ledger_rows = ledger.loc[rows.index]
    out = explain_households(model, rows, ledger_rows, CONFIG, history=ledger)
    table = text_contradictions(out, CONFIG)
    assert table.notna().sum().sum() > len(out) / 2
    assert not table.fillna(False).to_numpy().any()
    # The weights the reasons carry are the contributions after passing, which add up.
    contributions, base = cause_contributions(model, rows, CONFIG, ledger_rows=ledger_rows,
                                              history=ledger)
    allowed = valid_causes(household_facts(ledger_rows, CONFIG, ledger), CONFIG)
    passed = pass_to_evidence(contributions, allowed)
    np.testing.assert_allclose(passed.sum(axis=1) + base, model.decision_function(rows),
                               rtol=0, atol=1e-6)
    _, weights = rank_causes(passed, allowed, CONFIG)
    # Without the counterfactual's check of the first cause (tests/test_structural.py).
    off = CONFIG.model_copy(update={"reasons": CONFIG.reasons.model_copy(
        update={"first_min_share": None})})
    plain = explain_households(model, rows, ledger_rows, off, history=ledger)
    np.testing.assert_allclose(plain["reason_1_weight"], weights[:, 0], rtol=0, atol=1e-9)
    moved = (contributions.to_numpy() > CONFIG.reasons.min_weight) & ~allowed[CODES].to_numpy()
    assert moved.any()


@pytest.mark.parametrize("rule, message", [
    ("wage_3m << wage_before", "expected `figure`"),
    ("wage_3m < 0.9 * 2", "not two numbers"),
    ("wages < 0.9 * wage_before", "names 'wages', expected figures of"),
    ("income_pc < 1.5 * poverty_line", "names 'poverty_line'"),
])
def test_a_bad_evidence_rule_is_a_config_error(tmp_path, rule, message):
    path = tmp_path / "config.yaml"
    text = (DEFAULT_CONFIG.read_text(encoding="utf-8")
            .replace("evidence: [income_pc < 1.5 * line, income_pc < 1.5 * line_ahead]",
                     f"evidence: [{rule}]"))
    assert rule in text
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"causes\.10\.evidence: .*{message}"):
        load_config(path)


def test_evidence_rules_parse():
    rules = {c.code: c.evidence_rules for c in CONFIG.causes}
    assert rules["income"] == [EvidenceRule("income_pc", "<", 1.5, "line", 0.0),
                               EvidenceRule("income_pc", "<", 1.5, "line_ahead", 0.0)]
    assert rules["education"][1] == EvidenceRule("education_share", ">", 1.0, None, 0.1)
    assert rules["labor_shortage"] == []
    assert EvidenceRule.parse("disabled") == EvidenceRule("disabled", ">", 1.0, None, 0.0)
    assert EvidenceRule.parse(" wage_3m<=wage_before ").figures == ["wage_3m", "wage_before"]
