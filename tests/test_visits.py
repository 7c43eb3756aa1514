"""Visit plans: hard triggers first, then risk, then the longest unvisited; the visits file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel.ledger import TRIGGER_ZH
from riskmodel.plan import (
    VISIT_COLUMNS,
    VisitsFileError,
    csv_table,
    read_visits,
    unknown_townships,
    visit_plan,
)


def test_visit_plan_triggers_first_then_risk_then_longest_unvisited():
    scores = pd.DataFrame({
        "household_id": ["H1", "H2", "H3", "H4", "H5", "H6", "H7"],
        "township": ["甲乡", "甲乡", "甲乡", "甲乡", "甲乡", "乙镇", "乙镇"],
        "risk_score": [0.10, np.nan, 0.40, 0.40, 0.40, 0.2, 0.3],
        "hard_triggers": ["", "income_below_line", "", "", "", "", ""],
        "months_since_visit": [0.0, 0.0, 1.0, 5.0, 3.0, 2.0, 2.0],
    })
    plan = visit_plan(scores, {"甲乡": 3, "乙镇": 5, "丙镇": 2})
    jia = plan[plan["township"] == "甲乡"]
    assert jia["household_id"].tolist() == ["H2", "H4", "H5"]
    assert jia["visit_order"].tolist() == [1, 2, 3]
    # A township with more visits than households visits them all, highest risk first.
    assert plan.loc[plan["township"] == "乙镇", "household_id"].tolist() == ["H7", "H6"]
    assert len(visit_plan(scores, {"甲乡": 0})) == 0


def test_visit_plan_maximises_expected_fallers_visited():
    rng = np.random.default_rng(0)
    n = 2000
    scores = pd.DataFrame({
        "household_id": [f"H{i:05d}" for i in range(n)],
        "township": rng.choice(["甲乡", "乙镇", "丙镇"], n),
        "risk_score": rng.beta(1, 12, n),
        "hard_triggers": "",
        "months_since_visit": rng.integers(0, 6, n).astype(float),
    })
    visits = {"甲乡": 50, "乙镇": 10, "丙镇": 0}
    plan = visit_plan(scores, visits)
    for town, k in visits.items():
        mine = scores[scores["township"] == town]
        chosen = plan[plan["township"] == town]
        assert len(chosen) == min(k, len(mine))
        assert chosen["risk_score"].sum() == pytest.approx(mine["risk_score"].nlargest(k).sum())


def test_read_visits_takes_chinese_headers(tmp_path):
    path = tmp_path / "visits.csv"
    path.write_text("乡镇,走访户数\n甲乡,12\n乙镇, 3\n甲乡,1\n", encoding="utf-8-sig")
    table = read_visits(path)
    assert dict(zip(table["township"], table["visits"], strict=True)) == {"乙镇": 3, "甲乡": 13}
    path.write_text("township,visits\n甲乡,-1\n", encoding="utf-8")
    with pytest.raises(VisitsFileError, match="row 2"):
        read_visits(path)
    path.write_text("place,visits\n甲乡,1\n", encoding="utf-8")
    with pytest.raises(VisitsFileError, match="township"):
        read_visits(path)
    with pytest.raises(VisitsFileError, match="not found"):
        read_visits(tmp_path / "missing.csv")
    with pytest.raises(VisitsFileError, match="folder"):
        read_visits(tmp_path)
    path.write_text("乡镇,走访户数\n甲乡,1\n ,2\n", encoding="utf-8")
    with pytest.raises(VisitsFileError, match="row 3 names no township"):
        read_visits(path)


def test_unknown_townships_are_found_by_name_and_county():
    scores = pd.DataFrame({"household_id": ["H1", "H2", "H3"], "county": ["甲县", "甲县", "乙县"],
                           "township": ["甲乡", "乙镇", "甲乡"]})
    assert unknown_townships(scores, {"甲乡": 2, "乙镇": 1}).empty
    assert unknown_townships(scores, {"甲乡": 2, "甲相": 1})["township"].tolist() == ["甲相"]
    visits = pd.DataFrame({"county": ["甲县", "乙县", "丙县"], "township": ["乙镇", "甲乡", "甲乡"],
                           "visits": [1, 1, 1]})
    unknown = unknown_townships(scores, visits)
    assert unknown.to_dict("records") == [{"county": "丙县", "township": "甲乡"}]


def test_visits_csv_names_triggers_and_causes_in_chinese():
    # The columns plan writes to visits.csv, as it writes them (csv_table of VISIT_COLUMNS),
    # with the main cause the plan adds: a cadre reads names, not codes.
    scores = pd.DataFrame({
        "household_id": ["H1", "H2", "H3"], "township": ["甲乡"] * 3,
        "village": ["一村", "二村", "一村"], "household_type": ["monitored", "exited", "general"],
        "risk_score": [np.nan, 0.3, 0.1],
        "hard_triggers": ["income_below_line;dropout", "medical_oop_12m", ""],
        "months_since_visit": [0.0, 1.0, 2.0],
    })
    plan = visit_plan(scores, {"甲乡": 3})
    assert dict(zip(plan["household_id"], plan["hard_triggers_zh"], strict=True)) == {
        "H1": f"{TRIGGER_ZH['income_below_line']}、{TRIGGER_ZH['dropout']}",
        "H2": TRIGGER_ZH["medical_oop_12m"], "H3": ""}
    plan["reason_1"] = plan["household_id"].map({"H2": "illness", "H3": "income"})
    plan["reason_1_zh"] = plan["household_id"].map({"H2": "因病", "H3": "收入偏低"})
    table = csv_table(plan[[c for c in VISIT_COLUMNS if c in plan.columns]], VISIT_COLUMNS)
    values = table.drop(columns=[c for c in table.columns if c.endswith(" household_id")])
    codes = values.astype("string").stack().str.fullmatch(r"[a-z]+(?:_[a-z0-9]+)*")
    assert not codes.any(), values.astype("string").stack()[codes].tolist()
    assert "合规自付医疗费用超标" in table["触发硬性条件 hard_triggers_zh"].tolist()
