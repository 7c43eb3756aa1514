"""Features of what a county observes: department warnings and their amounts carried by ingest,
warnings over 3/6/12 months, 低保 starting, the identification history and the recorded risk
types, on hand-built households; point in time; left out on ledgers without their columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import features_of, tiny_ledger, valid
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sources_households import person, pid, row, run, table

from riskmodel import load_config, validate_ledger
from riskmodel.config import CAUSE_CODES, DEPARTMENT_CODES, SourcesConfig, WarningRule
from riskmodel.ledger import KEY
from riskmodel.model import (
    FEATURE_NAMES,
    OBSERVED_FEATURES,
    build_features,
    feature_causes,
    feature_monotonic,
    ledger_features,
)
from riskmodel.model._recorded import DEPARTMENT_CAUSES
from riskmodel.sources import RECORDED_COLUMNS, WARNING_COUNTS
from riskmodel.synthetic import generate_ledger

CONFIG = load_config()


# --- ingest: warnings per department and their amounts -----------------------------------------

def test_ingest_counts_matched_warnings_per_department_and_sums_their_amounts():
    months = ["2024-01", "2024-02", "2024-03"]
    persons = [table("persons", m, [person("A", pid(1)), person("B", pid(2))]) for m in months]
    feb = table("warnings", "2024-02", [
        {"person_id": pid(1), "warning_month": "202402", "department": "医保",
         "warning_item": "年度累计自付超5000元", "amount": "６,２００"},
        {"household_id": "A", "warning_month": "202402", "department": "医保",
         "warning_item": "年度累计自付超5000元", "amount": "1000元"},
        {"household_id": "A", "warning_month": "202402", "department": "应急",
         "warning_item": "洪涝受灾"},
        {"household_id": "Z", "warning_month": "202402", "department": "残联",
         "warning_item": "新办残疾证", "amount": "500"},  # no such household: unmatched
        {"household_id": "B", "warning_month": "202402", "department": "气象",
         "warning_item": "大风", "amount": "900"}])  # no rule: not counted
    mar = table("warnings", "2024-03", [
        {"household_id": "B", "warning_month": "202403", "department": "教育",
         "warning_item": "辍学"},
        # A list that arrived late counts from the month it arrived.
        {"household_id": "B", "warning_month": "202401", "department": "人社",
         "warning_item": "失业", "amount": "0"}])
    made = run(*persons, feb, mar)
    ledger = made.ledger
    assert list(ledger.columns[-len(WARNING_COUNTS) - 1:]) == [*WARNING_COUNTS, "warning_amount"]
    assert WARNING_COUNTS == [f"warnings_{c}" for c in DEPARTMENT_CODES]
    assert RECORDED_COLUMNS[-1] == "warning_amount"
    a_feb, b_mar = row(ledger, "A", "2024-02"), row(ledger, "B", "2024-03")
    assert (a_feb["warnings_medical"], a_feb["warnings_emergency"]) == (2, 1)
    assert a_feb["warning_amount"] == 7200.0
    assert (b_mar["warnings_education"], b_mar["warnings_labour"]) == (1, 1)
    assert b_mar["warning_amount"] == 0.0  # an amount of 0 was carried
    assert (row(ledger, "B", "2024-01")[WARNING_COUNTS] == 0).all()
    # No warning, or none with an amount: the amount is unknown, not zero.
    assert np.isnan(row(ledger, "B", "2024-02")["warning_amount"])
    assert np.isnan(row(ledger, "A", "2024-03")["warning_amount"])
    assert ledger[WARNING_COUNTS].dtypes.eq("int16").all()
    assert ledger["warning_amount"].dtype == "float64"
    # Counts reconcile with the report: every matched warning counted once.
    assert int(ledger[WARNING_COUNTS].to_numpy().sum()) == made.report["warnings"]["matched"]
    assert len(validate_ledger(ledger).quarantine) == 0


def test_a_county_names_its_departments_its_own_way():
    sources = CONFIG.sources.model_copy(update={
        "departments": {"医疗保障局": "medical", "县医保局": "medical"},
        "warning_rules": [WarningRule(department="医疗保障局", keywords=[], column="ev_illness"),
                          WarningRule(department="县医保局", keywords=[], column="ev_illness")]})
    warnings = table("warnings", "2024-01", [
        {"household_id": "A", "warning_month": "202401", "department": "医疗保障局",
         "warning_item": "大额医疗费用", "amount": "3000"},
        {"household_id": "A", "warning_month": "202401", "department": "县医保局",
         "warning_item": "大额医疗费用", "amount": "2000"}])
    ledger = run(table("persons", "2024-01", [person("A", pid(1))]), warnings,
                 config=sources).ledger
    a = row(ledger, "A", "2024-01")
    assert (a["warnings_medical"], a["warning_amount"], a["ev_illness"]) == (2, 5000.0, True)


def test_departments_must_name_known_codes():
    raw = CONFIG.sources.model_dump()
    with pytest.raises(ValueError, match="department code 'health'"):
        SourcesConfig.model_validate({**raw, "departments": {"医保": "health"}})
    with pytest.raises(ValueError, match="blank department"):
        SourcesConfig.model_validate({**raw, "departments": {" ": "medical"}})
    assert set(CONFIG.sources.departments.values()) == set(DEPARTMENT_CODES)


# --- features on hand-built households -------------------------------------------------------

START, MONTHS = "2023-01", 48


def county_household() -> pd.DataFrame:
    """One household over 2023-01..2026-12 with every column ingest gives, nothing recorded."""
    raw = tiny_ledger(1, MONTHS, START)
    for c in WARNING_COUNTS:
        raw[c] = np.int16(0)
    raw["warning_amount"] = np.nan
    raw["dibao"] = False
    for c in ["identified_month", "eliminated_month", *[f"recorded_risk_{i}" for i in
                                                         range(1, 6)]]:
        raw[c] = pd.Series(pd.NA, index=raw.index, dtype="string")
    return raw


def at(raw: pd.DataFrame, *months: str) -> pd.Series:
    return raw["month"].isin(months)


def between(raw: pd.DataFrame, first: str, last: str | None = None) -> pd.Series:
    return (raw["month"] >= first) & (raw["month"] <= (last or "9999-12"))


def test_warnings_by_department_over_3_6_12_months_and_the_amount_over_12():
    raw = county_household()
    raw.loc[at(raw, "2024-01"), "warnings_medical"] = 2
    raw.loc[at(raw, "2024-06", "2024-10"), "warnings_medical"] = 1
    raw.loc[at(raw, "2024-09"), "warnings_labour"] = 1
    raw.loc[at(raw, "2024-01"), "warning_amount"] = 6000.0
    raw.loc[at(raw, "2024-10"), "warning_amount"] = 1500.0
    f = features_of(valid(raw)).loc["H0000"]
    t = f.loc["2024-10"]
    assert (t["warnings_medical_3m"], t["warnings_medical_6m"], t["warnings_medical_12m"]) == (
        1, 2, 4)
    assert (t["warnings_labour_3m"], t["warnings_police_12m"]) == (1, 0)
    assert t["warning_amount_12m"] == 7500.0
    assert f.loc["2024-12", "warnings_medical_12m"] == 4
    assert f.loc["2025-01", "warnings_medical_12m"] == 2  # 2024-01 is 12 months back
    assert f.loc["2025-01", "warning_amount_12m"] == 1500.0
    assert f.loc["2023-12", "warning_amount_12m"] == 0.0


def test_dibao_starting_within_3_and_12_months():
    raw = county_household()
    raw.loc[between(raw, "2024-05"), "dibao"] = True
    f = features_of(valid(raw)).loc["H0000"]
    assert f.loc[:"2024-04", ["dibao_started_3m", "dibao_started_12m"]].eq(0).all().all()
    assert f.loc["2024-05":"2024-07", "dibao_started_3m"].eq(1).all()
    assert f.loc["2024-08", "dibao_started_3m"] == 0
    assert f.loc["2025-04", "dibao_started_12m"] == 1
    assert f.loc["2025-05", "dibao_started_12m"] == 0
    # 低保 from the ledger's first month is no start the ledger saw.
    raw = county_household()
    raw["dibao"] = True
    assert features_of(valid(raw))["dibao_started_12m"].eq(0).all()


def test_identification_and_elimination_history():
    raw = county_household()
    raw.loc[between(raw, "2024-03"), "identified_month"] = "2024-03"
    raw.loc[between(raw, "2024-09"), "eliminated_month"] = "2024-09"
    raw.loc[between(raw, "2024-12"), "identified_month"] = "2024-12"  # identified again
    raw.loc[at(raw, "2023-06"), "identified_month"] = "2023-09"  # dated after its month
    f = features_of(valid(raw)).loc["H0000"]
    assert f.loc[:"2024-02", "months_since_identified"].isna().all()
    assert f.loc["2024-05", "months_since_identified"] == 2
    assert f.loc["2025-03", "months_since_identified"] == 3
    assert f.loc["2024-08", "monitored_now"] == 1
    assert f.loc["2024-09":"2024-11", "monitored_now"].eq(0).all()
    assert f.loc["2024-12", "monitored_now"] == 1
    assert f.loc["2023-06", "monitored_now"] == 0
    assert f.loc["2024-02", "times_identified_24m"] == 0
    assert f.loc["2024-05", "times_identified_24m"] == 1
    assert f.loc["2025-03", "times_identified_24m"] == 2
    assert f.loc["2024-08", "times_eliminated_24m"] == 0
    assert f.loc["2024-10", "times_eliminated_24m"] == 1
    # The rows dated 2024-03 (up to 2024-11) leave the window 24 months on...
    assert f.loc["2026-10", "times_identified_24m"] == 2
    assert f.loc["2026-11", "times_identified_24m"] == 1
    # ...but a date every row repeats is counted once whatever the window.
    assert f.loc["2026-12", "times_eliminated_24m"] == 1


def test_recorded_risk_types_as_of_t_for_24_months():
    raw = county_household()
    raw.loc[between(raw, "2024-03", "2024-08"), "recorded_risk_1"] = "illness"
    raw.loc[between(raw, "2024-03", "2024-08"), "recorded_risk_3"] = "labor_shortage"
    f = features_of(valid(raw)).loc["H0000"]
    assert f.loc["2024-02", "recorded_illness"] == 0
    assert f.loc["2024-03", ["recorded_illness", "recorded_labor_shortage"]].eq(1).all()
    assert f.loc["2026-07", "recorded_illness"] == 1
    assert f.loc["2026-08", "recorded_illness"] == 0
    others = [f"recorded_{c}" for c in DEPARTMENT_CAUSES.values()
              if c not in ("illness", "labor_shortage")]
    assert f[others].eq(0).all().all()


def test_observed_features_causes_directions_and_names():
    causes, directions = feature_causes(CONFIG), feature_monotonic(CONFIG)
    assert FEATURE_NAMES[-len(OBSERVED_FEATURES):] == OBSERVED_FEATURES
    for dept, cause in DEPARTMENT_CAUSES.items():
        for w in (3, 6, 12):
            assert causes[f"warnings_{dept}_{w}m"] == cause
            assert directions[f"warnings_{dept}_{w}m"] == 1
    assert {causes[f"recorded_{c}"] for c in CAUSE_CODES} == set(CAUSE_CODES)
    assert all(CONFIG.names_zh.features.get(f) for f in OBSERVED_FEATURES)


def test_left_out_on_a_ledger_of_monthly_incomes():
    ledger = valid(generate_ledger(households=8, months=14, seed=2))
    assert not set(ledger_features(ledger)) & set(OBSERVED_FEATURES)
    assert build_features(ledger, CONFIG)[OBSERVED_FEATURES].isna().all().all()


# --- point in time ---------------------------------------------------------------------------

def _county(seed: int, households: int, months: int, gaps: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    raw = tiny_ledger(households, months, "2023-07")
    n = len(raw)
    for c in WARNING_COUNTS:
        raw[c] = (rng.random(n) < 0.1) * rng.integers(1, 3, n)
    raw["warning_amount"] = np.where(rng.random(n) < 0.2, rng.integers(0, 9000, n), np.nan)
    raw["dibao"] = pd.array(rng.random(n) < 0.3, dtype="boolean")
    dates = np.asarray([str(p) for p in pd.period_range("2021-01", "2025-12", freq="M")])
    for c in ("identified_month", "eliminated_month"):
        raw[c] = pd.Series(np.where(rng.random(n) < 0.5, rng.choice(dates, n), None),
                           dtype="string")
    for i in range(1, 6):
        codes = np.asarray(CAUSE_CODES, dtype=object)
        raw[f"recorded_risk_{i}"] = pd.Series(
            np.where(rng.random(n) < 0.3, rng.choice(codes, n), None), dtype="string")
    return valid(raw[rng.random(n) >= gaps].reset_index(drop=True))


@st.composite
def later_rows(draw, past: pd.DataFrame, cut: str) -> pd.DataFrame:
    """Rows after ``cut`` for known households and a new one, with arbitrary observed values."""
    households = [*past["household_id"].unique(), "NEW"]
    rows = []
    # Every household's next month, then some months further on.
    picks = [(h, 1) for h in households] + [
        (draw(st.sampled_from(households)), draw(st.integers(1, 12)))
        for _ in range(draw(st.integers(0, 6)))]
    for household, ahead in picks:
        row_ = tiny_ledger(1, 1).iloc[0].to_dict()
        row_.update({
            "household_id": household,
            "month": str(pd.Period(cut, "M") + ahead),
            **{c: draw(st.integers(0, 30)) for c in WARNING_COUNTS},
            "warning_amount": draw(st.one_of(st.just(np.nan), st.floats(0, 1e7))),
            "dibao": draw(st.booleans()),
            "identified_month": draw(st.sampled_from([None, "2020-01", cut, "2027-05"])),
            "eliminated_month": draw(st.sampled_from([None, "2020-02", cut])),
            **{f"recorded_risk_{i}": draw(st.sampled_from([None, *CAUSE_CODES]))
               for i in range(1, 6)},
        })
        rows.append(row_)
    return valid(pd.DataFrame(rows).drop_duplicates(KEY))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), households=st.integers(1, 4), months=st.integers(1, 30),
       gaps=st.sampled_from([0.0, 0.15, 0.4]), cut_at=st.integers(0, 29), data=st.data())
def test_observed_features_at_t_ignore_everything_after_t(seed, households, months, gaps,
                                                          cut_at, data):
    ledger = _county(seed, households, months, gaps)
    if ledger.empty:
        return
    month_list = sorted(ledger["month"].unique())
    cut = month_list[min(cut_at, len(month_list) - 1)]
    past = ledger[ledger["month"] <= cut]
    later = data.draw(later_rows(past, cut))
    later.index = later.index + 10_000
    extended = pd.concat([past, later]).sort_values(KEY, kind="stable")
    alone = build_features(past, CONFIG)
    assert alone[OBSERVED_FEATURES].notna().any().all() or len(past) < 40
    with_future = build_features(extended, CONFIG)
    pd.testing.assert_frame_equal(with_future.loc[past.index], alone, check_exact=True)
    pd.testing.assert_frame_equal(build_features(extended, CONFIG, months=[cut]),
                                  build_features(past, CONFIG, months=[cut]), check_exact=True)
    # A month built alone reads what a build of every month reads.
    pd.testing.assert_frame_equal(build_features(past, CONFIG, months=[cut]),
                                  alone.loc[past.index[past["month"] == cut]], check_exact=True)
