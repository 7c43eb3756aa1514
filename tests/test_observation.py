"""The observation process of the county sources (docs/synthetic.md, "The observation process").

Each documented property is checked on what the generator writes and ingest reads: annual
figures change only at verification, identification and elimination months; identifications
follow the logged triggers by their lags, the triggers follow the latent income, and the lags
and misses keep their parameters (binomial tolerances from the sample size); eliminations come
six months or more after identification with the recorded income back at the line; 医保's
warnings only above its thresholds, every list at its department's delay; the recorded risk
types only from what the files show; the regime "annual" writes person tables alone.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from riskmodel.errors import ArgumentError
from riskmodel.months import month_number
from riskmodel.sources import ingest, read_sources
from riskmodel.synthetic import (
    Observation,
    county_sources,
    generate_ledger,
    policy_line,
    write_sources,
)

H, M, START, SEED = 300, 24, "2022-01", 4
ANNUAL = ["annual_inc_wage", "annual_inc_business", "annual_inc_property",
          "annual_inc_transfer", "annual_exp_medical_oop", "annual_income_pc",
          "annual_income_total", "annual_income_year"]
#: Fall triggers only, so that every identification has one trigger to answer for.
CUSTOM = Observation(verification_month=7, lag_min_months=2, lag_mean_months=3.0,
                     lag_max_months=5, miss_rate=0.4, warning_departments=(),
                     verification_identifies=False, elimination_months=8,
                     medical_threshold_listed=3000.0, medical_threshold_others=12000.0,
                     warning_delays={"医保": 2, "公安": 1}, unlisted_share={"应急": 0.5})


@pytest.fixture(scope="module")
def default():
    return county_sources(H, M, START, SEED, xlsx_max_rows=0)


@pytest.fixture(scope="module")
def custom():
    return county_sources(2 * H, M, START, SEED, observation=CUSTOM, xlsx_max_rows=0)


def _m(text: pd.Series) -> np.ndarray:
    return text.map(month_number).to_numpy()


def _recorded_changes(exp: pd.DataFrame) -> pd.DataFrame:
    """Household-months (after the first) whose annual figures differ from the month before."""
    exp = exp.sort_values(["household_id", "month"])
    values = exp[ANNUAL].astype("float64").to_numpy()
    same_household = exp["household_id"].to_numpy()[1:] == exp["household_id"].to_numpy()[:-1]
    changed = np.r_[False, same_household & (values[1:] != values[:-1]).any(1)]
    return exp[changed]


@pytest.mark.parametrize("which", ["default", "custom"])
def test_no_income_change_between_verifications(which, request):
    src = request.getfixturevalue(which)
    changes = _recorded_changes(src.expected)
    month_of_year = _m(changes["month"]) % 12 + 1
    at_visit = ((changes["identified_month"] == changes["month"])
                | (changes["eliminated_month"] == changes["month"])).to_numpy()
    verifying = month_of_year == src.observation.verification_month
    assert len(changes) > H and verifying.any() and at_visit.any()
    assert (verifying | at_visit).all()
    # Elsewhere the figures repeat: the share of household-months that change is small.
    assert len(changes) < 0.25 * len(src.expected)


def test_triggers_follow_the_latent_income(custom):
    latent = custom.latent_income_pc.sort_values(["household_id", "month"]).reset_index(drop=True)
    exp = custom.expected.sort_values(["household_id", "month"]).reset_index(drop=True)
    assert (latent[["household_id", "month"]] == exp[["household_id", "month"]]).all().all()
    lines = exp["month"].str[:4].astype(int).map(policy_line)
    assert (latent["line"] == lines).all()
    below = (latent["income_pc"] < latent["line"]).to_numpy()
    same = exp["household_id"].to_numpy()[1:] == exp["household_id"].to_numpy()[:-1]
    was_monitored = (exp["household_type"] == "monitored").to_numpy()[:-1]
    run_start = np.r_[False, same & below[1:] & ~below[:-1] & ~was_monitored]
    falls = custom.triggers[(custom.triggers["kind"] == "fall")
                            & (custom.triggers["month"] > START)]
    keys = set(zip(falls["household_id"], falls["month"], strict=True))
    want = set(zip(exp.loc[run_start, "household_id"], exp.loc[run_start, "month"],
                   strict=True))
    assert len(want) > 20 and keys == want
    assert set(custom.triggers["kind"]) == {"fall"}
    # An identification after a fall and an elimination record the latent income.
    visit = ((exp["identified_month"] == exp["month"])
             | (exp["eliminated_month"] == exp["month"])).to_numpy()
    assert visit.sum() > 20
    assert (exp.loc[visit, "annual_income_pc"].to_numpy()
            == latent.loc[visit, "income_pc"].to_numpy()).all()


def test_identification_lag_and_misses_within_parameters(custom):
    obs, log = custom.observation, custom.triggers
    n = len(log)
    assert n > 100
    assert log["lag"].between(obs.lag_min_months, obs.lag_max_months).all()
    p = obs.miss_rate
    assert abs(log["missed"].mean() - p) <= 4 * math.sqrt(p * (1 - p) / n)
    span = obs.lag_max_months - obs.lag_min_months
    q = (obs.lag_mean_months - obs.lag_min_months) / span
    sd = math.sqrt(span * q * (1 - q))
    assert abs(log["lag"].mean() - obs.lag_mean_months) <= 4 * sd / math.sqrt(n)
    exp = custom.expected.set_index(["household_id", "month"])
    last = month_number(exp.index.get_level_values("month").max())
    # A trigger not missed is followed by an identification within its lag.
    kept = log[~log["missed"]]
    due = _m(kept["month"]) + kept["lag"].to_numpy()
    inside = (due <= last) & (kept["month"] >= START).to_numpy()
    assert inside.sum() > 20
    due_label = pd.Series([f"{d // 12}-{d % 12 + 1:02d}" for d in due[inside]])
    at_due = exp.loc[list(zip(kept.loc[inside, "household_id"], due_label, strict=True)),
                     "identified_month"]
    assert at_due.notna().all()
    ident = _m(at_due)
    assert (ident <= due[inside]).all() and (ident >= _m(kept.loc[inside, "month"])).all()
    # Every identification in the ledger answers to a trigger not missed, due that month.
    new = custom.expected[custom.expected["identified_month"] == custom.expected["month"]]
    due_at = set(zip(kept["household_id"], [f"{d // 12}-{d % 12 + 1:02d}" for d in due],
                     strict=True))
    assert len(new) > 20
    assert set(zip(new["household_id"], new["month"], strict=True)) <= due_at


def test_identification_rates_and_routes_by_default(default):
    log, exp = default.triggers, default.expected
    assert set(log["kind"]) == {"fall", "warning", "verification"}
    triggered = log[log["kind"] != "verification"]
    p, n = default.observation.miss_rate, len(triggered)
    assert abs(triggered["missed"].mean() - p) <= 4 * math.sqrt(p * (1 - p) / n)
    assert (log.loc[log["kind"] == "verification", "lag"] == 0).all()
    assert not log.loc[log["kind"] == "verification", "missed"].any()
    share = (exp["household_type"] == "monitored").mean()
    assert 0.03 < share < 0.4


@pytest.mark.parametrize("which", ["default", "custom"])
def test_eliminations_after_months_with_income_back(which, request):
    src = request.getfixturevalue(which)
    exp = src.expected
    out = exp[exp["eliminated_month"] == exp["month"]]
    assert len(out) > 5
    months = _m(out["eliminated_month"]) - _m(out["identified_month"])
    assert (months >= src.observation.elimination_months).all()
    line = out["month"].str[:4].astype(int).map(policy_line)
    assert (out["annual_income_pc"] >= line).all()
    assert (out["household_type"] != "monitored").all()


def _read(src, root) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Warnings (with the list's folder month and the household) and persons read back."""
    write_sources(src, root)
    tables, _ = read_sources(root)
    persons = pd.concat([t.frame for t in tables if t.kind == "persons"])
    owner = dict(zip(persons["person_id"], persons["household_id"], strict=False))
    warnings = pd.concat([t.frame.assign(folder=t.path.split("/")[0]) for t in tables
                          if t.kind == "warnings"], ignore_index=True)
    household = warnings["household_id"].where(warnings["household_id"] != "",
                                                warnings["person_id"].map(owner))
    warnings = warnings.assign(household=household).dropna(subset=["household"])
    return warnings, persons


@pytest.mark.parametrize("which", ["default", "custom"])
def test_warnings_only_above_thresholds_at_each_delay(which, request, tmp_path):
    src = request.getfixturevalue(which)
    obs = src.observation
    warnings, _ = _read(src, tmp_path / "county")
    event = warnings["warning_month"].str[:4] + "-" + warnings["warning_month"].str[4:6]
    delay = _m(warnings["folder"]) - _m(event)
    want = warnings["department"].map(lambda d: obs.delay(d)).to_numpy()
    assert (delay == want).all()
    medical = warnings[warnings["department"] == "医保"].assign(event=event)
    medical = medical[medical["event"] >= START]
    amount = medical["amount"].str.replace(",", "").str.replace("元", "").astype(float)
    status = src.expected.set_index(["household_id", "month"])["household_type"]
    kind = status.loc[list(zip(medical["household"], medical["event"], strict=True))].to_numpy()
    listed = np.isin(kind, ["monitored", "exited"])
    assert listed.sum() > 5 and (~listed).sum() > 0
    assert (amount[listed] >= obs.medical_threshold_listed).all()
    assert (amount[~listed] >= obs.medical_threshold_others).all()
    assert medical.loc[listed, "warning_item"].str.contains(
        f"{obs.medical_threshold_listed:.0f}").all()


def test_recorded_risk_types_only_from_visible_evidence(default):
    exp = default.expected.sort_values(["household_id", "month"]).reset_index(drop=True)
    window = default.observation.risk_window_months

    def recent(column: str | pd.Series) -> np.ndarray:
        flag = (exp[column] if isinstance(column, str) else column).astype(bool).astype(int)
        return (flag.groupby(exp["household_id"]).rolling(window, min_periods=1).sum()
                .to_numpy() > 0)

    evidence = {
        "illness": recent("ev_illness") | (exp["serious_ill"] > 0).to_numpy(),
        "disability": recent("ev_disability") | (exp["disabled_severe"] > 0).to_numpy(),
        "education": recent("ev_education"),
        "accident": recent("ev_accident"),
        "disaster": recent("ev_disaster"),
        "employment": recent("ev_job_loss"),
        "business": np.zeros(len(exp), bool),
        "labor_shortage": (exp["labor_full"] == 0).to_numpy(),
        "housing": recent(~exp["housing_safe"].astype(bool)),
    }
    # Identified with a full window of warnings in the folder.
    new = ((exp["identified_month"] == exp["month"])
           & (_m(exp["month"]) >= month_number(START) + window - 1)).to_numpy()
    assert new.sum() > 10
    any_seen = np.zeros(len(exp), bool)
    for seen in evidence.values():
        any_seen |= seen
    recorded = set()
    for q in range(1, 6):
        codes = exp[f"recorded_risk_{q}"].to_numpy()
        for code, seen in evidence.items():
            hit = new & (codes == code)
            assert seen[hit].all(), code
            recorded |= {code} if hit.any() else set()
        other = new & (codes == "income")
        assert not any_seen[other].any()
    assert len(recorded) >= 3
    # Risk types stay as recorded until the next identification.
    first_q = exp.groupby(["household_id", "identified_month"])["recorded_risk_1"].nunique()
    assert (first_q <= 1).all()


def test_annual_regime_writes_person_tables_alone(tmp_path):
    annual = county_sources(40, 8, "2023-11", 2, observation=Observation(regime="annual"))
    full = county_sources(40, 8, "2023-11", 2)
    root = tmp_path / "annual"
    write_sources(annual, root / "sources", root / "expected.parquet")
    tables, unrecognised = read_sources(root / "sources")
    assert unrecognised == [] and {t.kind for t in tables} == {"persons"}
    assert len(tables) == 8 and annual.warnings == 0
    result = ingest(root / "sources", root / "ledger.parquet")
    got = pd.read_parquet(root / "ledger.parquet").sort_values(["household_id", "month"],
                                                              ignore_index=True)
    pd.testing.assert_frame_equal(got, pd.read_parquet(root / "expected.parquet"))
    assert got["wage_migrant"].isna().all() and result.report["warnings"]["matched"] == 0
    events = ["ev_illness", "ev_accident", "ev_disaster", "ev_job_loss", "ev_education"]
    assert not got[events].any().any()
    # The same households, the same cadres: records and counts as in the sources regime.
    same = ["household_id", "month", "members", "migrant_workers", "household_type",
            "identified_month", "eliminated_month", *ANNUAL,
            *[f"recorded_risk_{i}" for i in range(1, 6)]]
    pd.testing.assert_frame_equal(annual.expected[same], full.expected[same])
    assert full.expected["wage_migrant"].notna().all()


def test_observation_parameters_checked():
    for bad in [dict(regime="monthly"), dict(miss_rate=1.5), dict(lag_mean_months=9.0),
                dict(lag_min_months=3, lag_max_months=2), dict(verification_month=13),
                dict(warning_departments=("税务",)), dict(elimination_months=0),
                dict(medical_threshold_listed=30000.0)]:
        with pytest.raises(ArgumentError):
            Observation(**bad)
    with pytest.raises(ArgumentError, match="verification_month"):
        county_sources(5, 2, verification_month=4,
                       observation=Observation(verification_month=5))
    assert county_sources(5, 2, verification_month=4).observation.verification_month == 4


def test_observation_leaves_persons_and_file_shapes():
    """The cadres draw from their own stream: other parameters, the same persons and files."""
    a = county_sources(30, 4, START, SEED)
    # Which events reach a list is drawn with the files' shapes: leave it as by default.
    b = county_sources(30, 4, START, SEED,
                       observation=replace(CUSTOM, unlisted_share={"公安": 0.2}))
    assert a.persons == b.persons
    pd.testing.assert_frame_equal(a.household_ids, b.household_ids)
    tables = [p for p in a.files if "预警" not in p]
    assert tables == [p for p in b.files if "预警" not in p]
    counts = ["members", "labor_full", "elderly", "children", "disabled", "migrant_workers"]
    pd.testing.assert_frame_equal(a.expected[counts], b.expected[counts])


def _latent(src) -> pd.DataFrame:
    households = len(src.household_ids)
    latent = generate_ledger(households, M, START, SEED)
    code = dict(zip(src.household_ids["household_id"],
                    src.household_ids["source_household_id"], strict=True))
    latent = latent.assign(household_id=latent["household_id"].astype(str).map(code))
    return latent.set_index(["household_id", "month"]).sort_index()


def test_share_of_events_reaching_no_list(default, custom):
    """By default 公安 lists a share of the accidents and 应急 every disaster, in their month;
    with 应急's unlisted_share 0.5, half the disasters within a binomial tolerance."""
    lat = _latent(default)
    exp = default.expected.set_index(["household_id", "month"]).sort_index()
    assert (exp["ev_disaster"].to_numpy() == lat["ev_disaster"].to_numpy()).all()
    assert exp["ev_disaster"].any() and exp["ev_accident"].any()
    assert not (exp["ev_accident"].to_numpy() & ~lat["ev_accident"].to_numpy()).any()
    lat = _latent(custom)
    exp = custom.expected.set_index(["household_id", "month"]).sort_index()
    # 公安's list a month late here (warning_delays), every accident on it.
    late = exp["ev_accident"].to_numpy().reshape(-1, M)[:, 1:]
    assert (late == lat["ev_accident"].to_numpy().reshape(-1, M)[:, :-1]).all() and late.any()
    listed, happened = exp["ev_disaster"].to_numpy(), lat["ev_disaster"].to_numpy()
    assert not (listed & ~happened).any()
    n, p = int(happened.sum()), 1 - custom.observation.unlisted("应急")
    assert n > 100 and abs(listed.sum() / n - p) <= 4 * math.sqrt(p * (1 - p) / n)
