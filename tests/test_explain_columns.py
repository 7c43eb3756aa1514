"""The explanation columns as built column-wise: the trailing window whatever the order of the
history, the reason text and lists where no household has a cause, and an empty month."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import households

from riskmodel import load_config
from riskmodel.explain import (
    cause_givebacks,
    household_facts,
    reason_texts,
    reasons_frame,
    trailing_window,
)

CONFIG = load_config()


def ledger() -> pd.DataFrame:
    return households(
        {"inc_wage": [2000.0] * 9 + [1500.0] * 3,
         "ev_job_loss": [False] * 9 + [True] + [False] * 2},
        {"inc_business": 300.0, "exp_medical_oop": [0.0] * 11 + [900.0]},
        {"inc_wage": 1800.0, "migrant_workers": [1] * 8 + [0] * 4},
    )


def test_the_window_does_not_depend_on_the_order_of_the_history():
    rows = ledger()
    now = rows[rows["month"] == rows["month"].max()]
    # Households' rows interleaved (month by month), and one household's rows split in two.
    by_month = rows.sort_values(["month", "household_id"], kind="stable")
    split = pd.concat([rows.iloc[:5], rows.iloc[12:], rows.iloc[5:12]])
    expected = trailing_window(now, rows)
    for history in (by_month, split):
        window = trailing_window(now, history)
        np.testing.assert_array_equal(window.observed, expected.observed)
        for name, values in expected.money.items():
            np.testing.assert_array_equal(window.money[name], values)
        np.testing.assert_array_equal(window.counts["migrant_workers"],
                                      expected.counts["migrant_workers"])
    # The wages lost since the job loss, against the months before it.
    lost = cause_givebacks(now, expected)["employment"]["inc_wage"]
    assert lost[0, :3].tolist() == [500.0, 500.0, 500.0]
    assert lost[1:].sum() == 0.0


def test_households_without_a_cause_get_the_none_text_and_an_empty_list():
    rows = ledger()
    now = rows[rows["month"] == rows["month"].max()]
    facts = household_facts(now, CONFIG, rows)
    codes = np.array([["employment", "illness", None], [None, None, None],
                      ["income", None, None]], dtype=object)
    weights = np.where(pd.isna(codes), np.nan, 0.5)
    out = reasons_frame(codes, weights, facts, CONFIG)
    assert out["risk_causes"].tolist() == ["employment,illness", "", "income"]
    assert out["reason_1"].isna().tolist() == [False, True, False]
    assert out["reason_text_zh"].iloc[1] == "无明显致贫返贫风险因素"
    assert out["reason_text_en"].iloc[1] == "no cause raises the risk"
    first = out["reason_text_zh"].iloc[0]
    assert first.startswith("因务工就业不稳：") and "；因病：" in first
    assert out["measures_zh"].iloc[1] == ""
    # Text columns are pandas' default text type, the codes nullable strings.
    assert str(out["reason_text_zh"].dtype) == "str" and str(out["reason_1"].dtype) == "string"
    none = reason_texts(np.empty((3, 0), dtype=object), facts, CONFIG)
    assert none["en"].tolist() == ["no cause raises the risk"] * 3


def test_an_empty_month_gives_empty_columns():
    rows = ledger()
    now = rows[rows["month"] == rows["month"].max()]
    facts = household_facts(now, CONFIG, rows).iloc[:0]
    out = reasons_frame(np.empty((0, 5), dtype=object), np.empty((0, 5)), facts, CONFIG)
    assert len(out) == 0
    assert list(out.columns[:3]) == ["reason_1", "reason_2", "reason_3"]
