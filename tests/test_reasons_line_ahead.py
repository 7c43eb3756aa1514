"""收入偏低 read against the line in force within the horizon (the coming year's line), as the
label judges a fall and the model reads it: its evidence, its text, and the check of the text
against its own rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import features_of, households, small_model

from riskmodel import load_config
from riskmodel.explain import (
    cause_contributions,
    household_facts,
    reasons_frame,
    text_contradictions,
    valid_causes,
)

CONFIG = load_config()
# A province without lines of its own: the national lines, 7,200 in 2024 and 7,500 in 2025.
NATIONAL = "贵州省"
# (3,266 + 300 + 100) × 12 / 4 = 10,998 a person: above 1.5 × 7,200 = 10,800, under
# 1.5 × 7,500 = 11,250.
BETWEEN = {"province": NATIONAL, "inc_wage": 3266.0}


def config_with(tmp_path, text: str, name: str = "county.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def facts_at(month: str, *specs: dict, config=CONFIG) -> pd.DataFrame:
    rows = households(*specs)
    now = rows[rows["month"] == month]
    return household_facts(now, config, rows).reset_index(drop=True)


def explained_income(facts: pd.DataFrame, config=CONFIG) -> pd.DataFrame:
    codes = np.array([["income", None, None]] * len(facts), dtype=object)
    weights = np.where(pd.notna(codes), 1.0, np.nan)
    return reasons_frame(codes, weights, facts, config)


def test_an_income_under_the_coming_years_rule_is_evidence_within_the_horizon():
    # 2024-12: the six months ahead are 2025's, whose line is 7,500. 2024-06: all of 2024.
    december = facts_at("2024-12", BETWEEN, {**BETWEEN, "inc_wage": 3500.0})
    june = facts_at("2024-06", BETWEEN)
    assert december["income_pc"].tolist() == [10998.0, 11700.0]
    assert december[["line", "line_ahead", "line_ahead_year"]].to_numpy().tolist() == [
        [7200.0, 7500.0, 2025.0]] * 2
    assert june[["line", "line_ahead", "line_ahead_year"]].to_numpy().tolist() == [
        [7200.0, 7200.0, 2024.0]]
    assert valid_causes(december, CONFIG)["income"].tolist() == [True, False]
    assert valid_causes(june, CONFIG)["income"].tolist() == [False]


def test_the_line_ahead_is_the_one_the_model_reads():
    rows = households(BETWEEN, {}, {"province": "福建省"})
    facts = household_facts(rows, CONFIG, rows)
    features = features_of(rows)
    ratio = features.loc[list(zip(rows["household_id"], rows["month"], strict=True)),
                         "line_ahead_ratio"].to_numpy()
    np.testing.assert_allclose(facts["line_ahead"] / facts["line"], ratio)
    assert (facts["line_ahead"] > facts["line"]).any()


def test_the_text_prints_the_coming_line_and_its_year_and_agrees_with_its_rule():
    facts = facts_at("2024-12", BETWEEN, {"inc_wage": 3000.0})
    out = explained_income(facts)
    assert out["reason_text_zh"].tolist() == [
        "收入偏低：近12个月人均可支配收入 10,998 元，监测线 7,200 元，2025年监测线 7,500 元",
        # 云南省: 8,700 in 2024 and 2025, so the month's line says it all.
        "收入偏低：近12个月人均可支配收入 10,200 元，监测线 8,700 元",
    ]
    assert out["reason_text_en"].iloc[0] == (
        "low income: disposable income of 10,998 yuan per person over 12 months, monitoring "
        "line 7,200 yuan, 7,500 yuan in 2025")
    assert text_contradictions(out, CONFIG)["reason_1"].tolist() == [False, False]


def test_a_text_quoting_only_the_months_line_is_judged_by_that_line_alone():
    texts = pd.DataFrame({
        "reason_1": ["income"] * 4, "reason_2": [None] * 4, "reason_3": [None] * 4,
        "reason_text_zh": [
            "收入偏低：近12个月人均可支配收入 10,998 元，监测线 7,200 元",
            "收入偏低：近12个月人均可支配收入 10,998 元，监测线 7,200 元，2025年监测线 7,500 元",
            "收入偏低：近12个月人均可支配收入 11,300 元，监测线 7,200 元，2025年监测线 7,500 元",
            "收入偏低：近12个月人均可支配收入 10,700 元，监测线 7,200 元，2025年监测线 — 元",
        ]}).astype("string")
    assert text_contradictions(texts, CONFIG)["reason_1"].tolist() == [True, False, True, False]


def test_a_line_for_a_year_after_the_horizon_is_not_used(tmp_path):
    config = config_with(tmp_path, "poverty_lines:\n  - {year: 2024, line: 7200}\n"
                                   "  - {year: 2025, line: 7500}\n  - {year: 2026, line: 30000}\n")
    december = facts_at("2024-12", BETWEEN, config=config)
    assert december[["line_ahead", "line_ahead_year"]].to_numpy().tolist() == [[7500.0, 2025.0]]
    # Six months ahead of 2024-06 end in 2024-12: 2025's line is not read until the horizon
    # reaches it.
    assert facts_at("2024-06", BETWEEN, config=config)["line_ahead"].tolist() == [7200.0]
    seven = config_with(tmp_path, "label:\n  horizon_months: 7\n")
    june = facts_at("2024-06", BETWEEN, config=seven)
    assert june[["line_ahead", "line_ahead_year"]].to_numpy().tolist() == [[7500.0, 2025.0]]
    assert valid_causes(june, seven)["income"].tolist() == [True]


def test_past_the_configured_years_the_last_line_and_its_year_serve(tmp_path):
    config = config_with(tmp_path, "poverty_lines:\n  - {year: 2023, line: 6900}\n"
                                   "  - {year: 2024, line: 7200}\n")
    facts = facts_at("2024-12", BETWEEN, config=config)
    assert facts[["line", "line_ahead", "line_ahead_year"]].to_numpy().tolist() == [
        [7200.0, 7200.0, 2024.0]]
    assert valid_causes(facts, config)["income"].tolist() == [False]
    assert explained_income(facts, config)["reason_text_zh"].tolist() == [
        "收入偏低：近12个月人均可支配收入 10,998 元，监测线 7,200 元"]


@pytest.mark.parametrize("province, line", [(NATIONAL, 7500.0), ("云南省", 8700.0)])
def test_the_line_ahead_follows_the_place(province, line):
    facts = facts_at("2024-12", {**BETWEEN, "province": province})
    assert facts["line_ahead"].tolist() == [line]


def test_the_shortfall_left_to_low_income_is_measured_against_the_coming_line(tmp_path):
    ledger, features, model = small_model(seed=7, households=200)
    # 2023-09 (云南省): the month's line is the national 6,900, and the six months ahead reach
    # 2024, whose provincial line is 8,700. A county whose 2024 line stays at 6,900 reads the
    # same household against 6,900 throughout.
    flat = config_with(tmp_path, "poverty_lines:\n  - {year: 2022, line: 6600}\n"
                                 "  - {year: 2023, line: 6900}\n  - {year: 2024, line: 6900}\n"
                                 "reasons:\n  counterfactual_min_risk: null\n")
    rising = config_with(tmp_path, "reasons:\n  counterfactual_min_risk: null\n", "rising.yaml")
    now = (ledger.loc[features.index, "month"] == "2023-09").to_numpy()
    rows, ledger_rows = features[now], ledger.loc[features.index[now]]
    facts = household_facts(ledger_rows, rising, ledger)
    assert (facts[["line", "line_ahead"]].to_numpy() == [6900.0, 8700.0]).all()
    against = {name: cause_contributions(model, rows, config, ledger_rows=ledger_rows,
                                         history=ledger)[0]
               for name, config in (("flat", flat), ("rising", rising))}
    gained = against["rising"]["income"] - against["flat"]["income"]
    assert (gained >= -1e-12).all() and (gained > 0.01).sum() >= 5
    np.testing.assert_allclose(against["rising"].sum(axis=1), against["flat"].sum(axis=1),
                               rtol=0, atol=1e-9)
