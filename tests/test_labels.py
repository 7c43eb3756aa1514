from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_ledger

from riskmodel import load_config, validate_ledger
from riskmodel.config import PovertyLine
from riskmodel.ledger import INCOME, KEY, SPENDING
from riskmodel.model import make_labels, poverty_status
from riskmodel.months import month_index, month_label

CONFIG = load_config()
MEMBERS = 4


def household(hid: str, start: str, annual_pc: list[float] | float, months: int | None = None,
              province: str = "贵州省", county: str = "甲县") -> pd.DataFrame:
    """One household earning, each month, the wage that makes ``annual_pc`` per capita a year."""
    per_month = np.atleast_1d(np.asarray(annual_pc, dtype=float))
    months = len(per_month) if months is None else months
    raw = tiny_ledger(1, months, start)
    raw["household_id"], raw["province"], raw["county"] = hid, province, county
    raw["members"] = MEMBERS
    raw[INCOME + SPENDING] = 0.0
    raw["inc_wage"] = np.resize(per_month, months) * MEMBERS / 12
    return raw


def shock(raw: pd.DataFrame, months: list[str], medical: float = 12000.0) -> pd.DataFrame:
    """Medical bills that push the month's disposable income far below zero."""
    raw.loc[raw["month"].isin(months), "exp_medical_oop"] = medical
    return raw


def labels_of(*frames: pd.DataFrame, config=CONFIG, horizon: int | None = None) -> pd.DataFrame:
    result = validate_ledger(pd.concat(frames, ignore_index=True))
    assert result.quarantine.empty
    out = make_labels(result.valid, config, horizon=horizon)
    return out.set_index(KEY)


def test_month_numbers_round_trip():
    months = pd.Series(["2023-12", "2024-01", "2025-07"])
    idx = month_index(months)
    assert list(np.diff(idx)) == [1, 18]
    assert list(month_label(idx)) == list(months)
    assert month_label(idx[0]) == "2023-12"


@pytest.mark.parametrize(("observed", "known"), [(5, False), (6, True)])
def test_five_observed_months_are_too_few_six_are_annualised(observed, known):
    raw = household("A", "2024-01", 9000.0, months=12)
    raw.loc[observed:, INCOME] = np.nan
    status = labels_of(raw).loc[("A", "2024-12")]
    assert status["observed_months"] == observed
    if known:
        assert status["income_pc"] == pytest.approx(9000.0)  # 6 months × 12 / 6
        assert not status["poor"]
    else:
        assert np.isnan(status["income_pc"])
        assert pd.isna(status["poor"])
        assert np.isnan(status["target"])


def test_unobserved_months_are_not_counted_but_empty_cells_are_zero():
    raw = household("A", "2024-01", 9000.0, months=12)
    raw = raw[raw["month"] != "2024-03"].reset_index(drop=True)  # no row at all
    raw.loc[raw["month"] == "2024-05", INCOME] = np.nan           # visited, nothing recorded
    raw.loc[raw["month"] == "2024-07", "inc_wage"] = np.nan       # income recorded, wage empty
    raw.loc[raw["month"] == "2024-07", "inc_transfer"] = 0.0
    status = labels_of(raw).loc[("A", "2024-12")]
    assert status["observed_months"] == 10
    assert status["income_pc"] == pytest.approx(9000.0 * 9 / 10)


def test_rigid_spending_is_subtracted():
    raw = household("A", "2024-01", 9000.0, months=12)
    raw["exp_medical_oop"] = 100.0
    raw["exp_education"] = 50.0
    status = labels_of(raw).loc[("A", "2024-12")]
    assert status["income_pc"] == pytest.approx(9000.0 - 150.0 * 12 / MEMBERS)


def test_a_line_change_between_years_makes_a_fall():
    # 7,000 a head: above 2023's national line (6,900), below 2024's (7,200).
    labels = labels_of(household("A", "2023-01", 7000.0, months=24))
    assert labels.loc[("A", "2023-12"), "line"] == 6900
    assert labels.loc[("A", "2024-01"), "line"] == 7200
    assert not labels.loc[("A", "2023-12"), "poor"]
    assert labels.loc[("A", "2024-01"), "poor"]
    assert labels.loc[("A", "2023-07"), "target"] == 1.0   # 2024-01 is within 6 months
    assert labels.loc[("A", "2023-06"), "target"] == 0.0   # window ends 2023-12
    assert np.isnan(labels.loc[("A", "2024-01"), "target"])  # poor at t


def test_region_specific_lines_most_specific_wins():
    cfg = CONFIG.model_copy(update={"poverty_lines": [
        *CONFIG.poverty_lines, PovertyLine(year=2024, line=9500, region="乙县")]})
    frames = [household("national", "2024-01", 8000.0, months=12, province="贵州省"),
              household("yunnan", "2024-01", 8000.0, months=12, province="云南省"),
              household("county", "2024-01", 9000.0, months=12, province="云南省", county="乙县")]
    status = labels_of(*frames, config=cfg).xs("2024-12", level="month")
    assert status.loc["national", "line"] == 7200
    assert status.loc["yunnan", "line"] == 8700
    assert status.loc["county", "line"] == 9500
    assert status["poor"].to_dict() == {"county": True, "national": False, "yunnan": True}


def test_poor_at_t_and_windows_past_the_end_are_not_training_rows():
    # 9,000 a head, until medical bills in 2025-07..09 pull the trailing year under the line.
    raw = shock(household("A", "2024-01", 9000.0, months=30), ["2025-07", "2025-08", "2025-09"])
    labels = labels_of(raw)
    target = labels["target"].droplevel(0)
    poor = labels["poor"].droplevel(0)
    first_poor = poor[poor.fillna(False).astype(bool)].index.min()
    assert first_poor == "2025-07"
    assert target["2025-01"] == 1.0        # 2025-07 is 6 months on
    assert target["2024-12"] == 0.0        # window ends 2025-06
    assert poor["2025-07"] and np.isnan(target["2025-07"])
    last = labels.index.get_level_values("month").max()
    past_end = [m for m in target.index if month_index(pd.Series([m]))[0] + 6
                > month_index(pd.Series([last]))[0]]
    assert len(past_end) == 6
    assert target[past_end].isna().all()
    assert target[:"2024-05"].isna().all()  # income unknown before 6 observed months


def test_horizon_comes_from_config_or_argument():
    frame = shock(household("A", "2024-01", 9000.0, months=24), ["2025-07", "2025-08"])
    six = labels_of(frame)["target"].droplevel(0)
    two = labels_of(frame, horizon=2)["target"].droplevel(0)
    longer = CONFIG.model_copy(update={
        "label": CONFIG.label.model_copy(update={"horizon_months": 9})})
    nine = labels_of(frame, config=longer)["target"].droplevel(0)
    assert six["2025-01"] == 1.0 and two["2025-01"] == 0.0
    assert two["2025-05"] == 1.0 and two["2025-04"] == 0.0
    assert nine["2024-10"] == 1.0 and six["2024-10"] == 0.0
    assert np.isnan(six["2025-07"]) and six["2025-06"] == 1.0
    with pytest.raises(ValueError, match="horizon=0"):
        labels_of(frame, horizon=0)


def test_unknown_months_ahead_are_no_evidence_of_a_fall():
    raw = household("A", "2024-01", 9000.0, months=24)
    raw.loc[raw["month"] > "2024-12", INCOME] = np.nan  # nothing recorded in 2025
    target = labels_of(raw)["target"].droplevel(0)
    assert target["2024-12"] == 0.0


def test_a_users_label_column_is_the_target():
    raw = household("A", "2024-01", 9000.0, months=12)
    raw["identified"] = [np.nan] * 6 + [0, 0, 1, 0, 1, 0]
    cfg = CONFIG.model_copy(update={
        "label": CONFIG.label.model_copy(update={"target_column": "identified"})})
    labels = labels_of(raw, config=cfg)
    np.testing.assert_array_equal(labels["target"].to_numpy(), raw["identified"].to_numpy())
    missing = CONFIG.model_copy(update={
        "label": CONFIG.label.model_copy(update={"target_column": "not_there"})})
    with pytest.raises(KeyError, match="not_there"):
        labels_of(raw, config=missing)


def test_status_has_one_row_per_ledger_row_in_ledger_order():
    result = validate_ledger(pd.concat([household("B", "2024-01", 9000.0, months=8),
                                        household("A", "2024-03", 5000.0, months=5)]))
    status = poverty_status(result.valid, CONFIG)
    assert list(status["household_id"]) == list(result.valid["household_id"])
    assert list(status["month"]) == list(result.valid["month"])
    assert status["poor"].dtype == "boolean"
