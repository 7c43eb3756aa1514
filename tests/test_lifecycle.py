import numpy as np
import pandas as pd
import pytest
from conftest import tiny_ledger

from riskmodel import load_config, validate_ledger
from riskmodel.model import poverty_status
from riskmodel.scoring import CHANGES, changes_since, elimination_candidates, monitoring_columns

MONTH = "2024-12"


@pytest.fixture(scope="module")
def config():
    return load_config()


def _history(households: int = 1, months: int = 12) -> pd.DataFrame:
    """Households well above the 云南省 line (8,700 yuan per person per year) every month."""
    frame = tiny_ledger(households=households, months=months, start="2024-01")
    frame["inc_wage"] = 4000.0
    frame["inc_business"] = 300.0
    frame["exp_education"] = 0.0
    frame["household_type"] = "monitored"
    return frame


def _columns(frame: pd.DataFrame, config) -> pd.DataFrame:
    valid = validate_ledger(frame).valid
    return monitoring_columns(valid, poverty_status(valid, config), MONTH, config)


def test_months_above_line_counts_the_run_up_to_the_month(config):
    frame = _history(households=3)
    # Household 1 fell under the line in June (a large medical bill), household 2 skipped August.
    poor_june = (frame["household_id"] == "H0001") & (frame["month"] == "2024-06")
    frame.loc[poor_june, "exp_medical_oop"] = 60000.0
    frame = frame[~((frame["household_id"] == "H0002") & (frame["month"] == "2024-08"))]
    out = _columns(frame, config)
    runs = dict(zip(validate_ledger(frame).valid.loc[out.index, "household_id"],
                    out["months_above_line"], strict=True))
    # H0000 is known from its 6th month (min_observed_months) on: July to December.
    assert runs["H0000"] == 7
    # The June bill keeps the trailing year under the line until it is outweighed.
    assert runs["H0001"] < runs["H0000"]
    assert runs["H0002"] == 4


def test_rigid_spending_share_over_the_recent_months(config):
    frame = _history(households=2)
    late = (frame["household_id"] == "H0001") & (frame["month"] >= "2024-10")
    frame.loc[late, "exp_medical_oop"] = 2000.0
    out = _columns(frame, config)
    shares = out["rigid_spending_share"].to_numpy()
    assert shares[0] == 0.0
    income_6m = 6 * (4000 + 300 + 50 + 100)
    assert shares[1] == pytest.approx(3 * 2000 / income_6m)


def test_history_after_the_month_is_refused(config):
    valid = validate_ledger(_history(months=12)).valid
    with pytest.raises(ValueError, match="after 2024-06"):
        monitoring_columns(valid, poverty_status(valid, config), "2024-06", config)


def _candidate(**changes) -> dict:
    row = {
        "household_type": "monitored", "labor_full": 1, "labor_partial": 0,
        "insured_all": True, "housing_safe": True, "water_safe": True,
        "risk_tier": "low", "rule_triggers": "", "months_above_line": 6,
        "rigid_spending_share": 0.05,
    }
    row.update(changes)
    return row


@pytest.mark.parametrize("change", [
    {"household_type": "exited"},
    {"household_type": "general"},
    {"labor_full": 0, "labor_partial": 0},
    {"months_above_line": 5},
    {"rigid_spending_share": 0.35},
    {"rigid_spending_share": np.inf},
    {"insured_all": False},
    {"housing_safe": None},
    {"water_safe": False},
    {"risk_tier": "medium"},
    {"risk_tier": None},
    {"rule_triggers": "dropout"},
])
def test_each_elimination_rule_can_refuse(config, change):
    rows = pd.DataFrame([_candidate(), _candidate(**change)])
    for column in ("insured_all", "housing_safe", "water_safe"):
        rows[column] = rows[column].astype("boolean")
    assert elimination_candidates(rows, config).tolist() == [True, False]


def test_a_partial_laborer_counts_and_thresholds_come_from_config(config):
    rows = pd.DataFrame([_candidate(labor_full=0, labor_partial=1), _candidate(risk_tier="medium")])
    assert elimination_candidates(rows, config).tolist() == [True, False]
    lenient = config.model_copy(update={"lifecycle": config.lifecycle.model_copy(update={
        "elimination": config.lifecycle.elimination.model_copy(update={"max_risk_tier": "medium"})
    })})
    assert elimination_candidates(rows, lenient).tolist() == [True, True]


def test_elimination_on_hand_built_households(config):
    frame = _history(households=4, months=12)
    valid = validate_ledger(frame).valid
    at = valid[valid["month"] == MONTH].copy()
    at.loc[at["household_id"] == "H0001", ["labor_full", "labor_partial"]] = 0
    at.loc[at["household_id"] == "H0002", "water_safe"] = False
    months = _columns(frame, config)
    rows = at.join(months).assign(risk_tier="low", rule_triggers="")
    rows.loc[rows["household_id"] == "H0003", "risk_tier"] = "high"
    flags = dict(zip(rows["household_id"], elimination_candidates(rows, config), strict=True))
    assert flags == {"H0000": True, "H0001": False, "H0002": False, "H0003": False}


def test_changes_since_last_month():
    previous = pd.DataFrame({
        "household_id": ["A", "B", "C", "D", "E", "F", "P"],
        "risk_tier": ["low", "high", "medium", "high", "low", None, "medium"],
        "risk_score": [0.01, 0.5, 0.1, 0.4, 0.02, np.nan, 0.12],
        "not_scored_reason": [None, None, None, None, None, "insufficient_history", None],
    })
    current = pd.DataFrame({
        "household_id": ["A", "B", "C", "D", "F", "G", "P"],
        "township": ["t1"] * 7,
        "risk_tier": ["high", "medium", "low", "high", "high", "high", None],
        "risk_score": [0.3, 0.1, 0.01, 0.45, 0.6, 0.7, np.nan],
        "not_scored_reason": [None, None, None, None, None, None, "poor_now"],
        "elimination_candidate": [False, False, True, False, False, False, False],
    })
    out = changes_since(previous, current, quarantined=pd.Series(["E"]))
    got = sorted(zip(out["change"], out["household_id"], strict=True))
    assert got == sorted([
        ("newly_high", "A"), ("newly_high", "F"), ("newly_high", "G"),
        ("fell_below_line", "P"),
        ("tier_fell", "B"), ("tier_fell", "C"),
        ("quarantined", "E"),
        ("elimination_candidate", "C"),
    ])
    row = out[(out["change"] == "tier_fell") & (out["household_id"] == "B")].iloc[0]
    assert (row["tier_previous"], row["tier_now"]) == ("high", "medium")
    assert out["change"].tolist() == sorted(out["change"].tolist(), key=list(CHANGES).index)
    assert set(out.columns) >= {"township", "tier_previous", "tier_now", "risk_previous",
                                "risk_now"}


def test_a_household_gone_without_a_quarantined_row_left_the_ledger():
    previous = pd.DataFrame({"household_id": ["A", "B"], "risk_tier": ["low", "low"],
                             "risk_score": [0.01, 0.02]})
    current = pd.DataFrame({"household_id": ["A"], "risk_tier": ["low"], "risk_score": [0.01],
                            "elimination_candidate": [False]})
    out = changes_since(previous, current)
    assert out[["household_id", "change"]].values.tolist() == [["B", "left_ledger"]]
