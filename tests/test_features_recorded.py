"""Features of incomes as recorded, the screening rules and reasons on them, and a recorded-only
ledger trained and scored end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import features_of, quick_selection, tiny_ledger, valid
from test_labels_recorded import months_from, recorded
from threadpoolctl import threadpool_limits

from riskmodel import load_config, validate_ledger
from riskmodel.explain import household_facts
from riskmodel.ledger import INCOME, KEY, SPENDING
from riskmodel.model import (
    FEATURE_NAMES,
    OBSERVED_FEATURES,
    RECORDED_FEATURES,
    build_features,
    feature_causes,
    ledger_features,
    make_labels,
    rule_triggers,
    save_model,
    train,
)
from riskmodel.plan import plan_frame
from riskmodel.scoring import score_month
from riskmodel.synthetic import generate_ledger

CONFIG = load_config()


def test_recorded_features_have_causes_and_chinese_names():
    causes = feature_causes(CONFIG)
    assert FEATURE_NAMES[-len(RECORDED_FEATURES):] == RECORDED_FEATURES
    assert {causes[f] for f in RECORDED_FEATURES if f not in OBSERVED_FEATURES} == {
        "income", "employment", "illness"}
    assert all(CONFIG.names_zh.features.get(f) for f in RECORDED_FEATURES)


def test_recorded_income_against_the_line_months_since_and_change_at_verification():
    ledger = valid(recorded("A", [9000.0] * 8 + [6000.0] * 10))  # verified 2024-03
    f = features_of(ledger).loc["A"]
    assert f.loc["2023-12", "recorded_income_ratio"] == pytest.approx(9000 / 6900)
    assert f.loc["2024-01", "recorded_income_ratio"] == pytest.approx(9000 / 7200)
    assert f.loc["2024-03", "recorded_income_ratio"] == pytest.approx(6000 / 7200)
    assert f.loc["2024-02", "months_since_recorded"] == 7
    assert f.loc["2024-05", "months_since_recorded"] == 2
    # Before 2024-03 no earlier figure is known: the run started with the ledger.
    assert f.loc[:"2024-02", "recorded_income_change"].isna().all()
    assert (f.loc["2024-03":, "recorded_income_change"] == -3000.0).all()
    # Monthly features have nothing to read.
    assert f["income_ratio_12m"].isna().all()


def test_a_month_absent_before_the_verification_reads_the_last_row_with_a_figure():
    raw = recorded("A", [8000.0] * 5 + [np.nan] + [6000.0] * 4)
    ledger = valid(raw.drop(index=4))  # no row for 2023-11, no figure in 2023-12
    f = features_of(ledger).loc["A"]
    assert f.loc["2024-01", "recorded_income_change"] == -2000.0
    assert np.isnan(f.loc["2023-12", "recorded_income_ratio"])


def test_migrant_wages_per_capita_over_observed_months_only():
    raw = recorded("A", [9000.0] * 16)
    raw["wage_migrant"] = 1000.0
    raw.loc[[11, 12], "wage_migrant"] = np.nan  # no migrant table in 2024-06 and 2024-07
    f = features_of(valid(raw)).loc["A"]
    # 1,000 yuan a month for 4 members: 3,000 a year per person, over the months recorded.
    assert f.loc["2024-08", "migrant_wage_pc_12m"] == pytest.approx(3000.0)
    assert np.isnan(f.loc["2024-08", "migrant_wage_pc_3m"])  # 1 of 3 months known
    assert f.loc["2024-09", "migrant_wage_pc_3m"] == pytest.approx(3000.0)  # 2 of 3
    assert np.isnan(f.loc["2023-11", "migrant_wage_pc_12m"])  # 5 of the 6 needed


def test_a_ledger_of_monthly_incomes_leaves_the_recorded_features_out():
    ledger = valid(tiny_ledger(3, 14))
    f = build_features(ledger, CONFIG)
    assert f[RECORDED_FEATURES].isna().all().all()
    assert ledger_features(ledger) == [n for n in FEATURE_NAMES if n not in RECORDED_FEATURES]
    empty = ledger.assign(wage_migrant=np.nan, annual_income_pc=np.nan)
    assert ledger_features(empty) == ledger_features(ledger)
    some = ledger.assign(wage_migrant=1.0)
    assert "migrant_wage_pc_3m" in ledger_features(some)
    assert "recorded_income_ratio" not in ledger_features(some)


def test_recorded_features_at_t_ignore_everything_after_t():
    rng = np.random.default_rng(3)
    frames = []
    for i in range(3):
        pcs = np.repeat(rng.integers(4000, 12000, 4).astype(float), [4, 6, 5, 5])
        raw = recorded(f"H{i}", list(pcs), start="2023-01")
        raw["wage_migrant"] = rng.integers(0, 3000, len(raw)).astype(float)
        raw["annual_exp_medical_oop"] = np.repeat(rng.integers(0, 30000, 4).astype(float),
                                                  [4, 6, 5, 5])
        frames.append(raw)
    ledger = valid(pd.concat(frames, ignore_index=True))
    cut = "2023-11"
    past = ledger[ledger["month"] <= cut]
    later = ledger["month"] > cut
    changed = ledger.copy()
    n = int(later.sum())
    changed.loc[later, "annual_income_pc"] = rng.integers(0, 20000, n).astype(float)
    changed.loc[later, "annual_recorded_month"] = rng.choice(months_from("2022-06", 30), n)
    changed.loc[later, "wage_migrant"] = rng.integers(0, 9000, n).astype(float)
    changed.loc[later, "annual_exp_medical_oop"] = rng.integers(0, 40000, n).astype(float)
    changed.loc[later, "members"] = rng.integers(1, 8, n)
    pd.testing.assert_frame_equal(build_features(changed, CONFIG, months=[cut]),
                                  build_features(past, CONFIG, months=[cut]), check_exact=True)
    pd.testing.assert_frame_equal(build_features(changed, CONFIG).loc[past.index],
                                  build_features(ledger, CONFIG).loc[past.index],
                                  check_exact=True)


def test_rules_and_reasons_read_the_recorded_figure_where_monthly_is_unknown():
    ledger = valid(pd.concat([recorded("low", [6000.0] * 14), recorded("mid", [9000.0] * 14),
                              recorded("high", [20000.0] * 14)], ignore_index=True))
    last = ledger["month"].max()
    rows = ledger[ledger["month"] == last]
    fired = rule_triggers(build_features(ledger, CONFIG, months=[last]), CONFIG)
    assert fired["income_below_line"].tolist() == [False, True, False]  # high, low, mid
    assert fired["income_low"].tolist() == [False, True, True]
    facts = household_facts(rows, CONFIG, history=ledger)
    assert facts["income_pc"].tolist() == [20000.0, 6000.0, 9000.0]


def test_the_medical_rule_and_trigger_read_the_recorded_medical_costs_where_monthly_is_unknown():
    frames = [recorded(h, [9000.0] * 14) for h in ("big", "small")]
    frames[0]["annual_exp_medical_oop"] = 4.0 * 6000.0  # 24,000 yuan for 4 members
    frames[1]["annual_exp_medical_oop"] = 4.0 * 1000.0
    ledger = valid(pd.concat(frames, ignore_index=True))
    last = ledger["month"].max()
    features = features_of(ledger, months=[last])
    assert features["medical_pc_12m"].isna().all()
    assert features["recorded_medical_pc"].tolist() == [6000.0, 1000.0]
    fired = rule_triggers(build_features(ledger, CONFIG, months=[last]), CONFIG)
    assert fired["medical_oop_12m"].tolist() == [True, False]
    assert fired["medical_oop"].tolist() == [True, False]


# --- end to end ---------------------------------------------------------------------------------

def as_recorded(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger as a county's sources would give it: annual figures verified each March from
    the year's monthly flows, repeated until the next March; monthly incomes blank; migrant
    wages monthly; identified_month from the household's monitoring."""
    frame = ledger.sort_values(KEY, kind="stable").reset_index(drop=True)
    house = frame["household_id"]
    flows = ["inc_wage", "inc_business", "inc_property", "inc_transfer", "exp_medical_oop"]
    seen = frame[INCOME].notna().any(axis=1).astype(float)
    trailing = {c: frame[c].fillna(0.0).groupby(house).rolling(12, min_periods=1).sum()
                .to_numpy() for c in flows}
    observed = seen.groupby(house).rolling(12, min_periods=1).sum().to_numpy()
    month = frame["month"].str.slice(5, 7)
    verified = (month == "03").to_numpy()
    # The figures of the 12 months up to February, recorded at the March row.
    for c in flows:
        annual = np.where(observed > 0, trailing[c] * 12 / np.maximum(observed, 1), np.nan)
        before = pd.Series(annual).groupby(house).shift(1).to_numpy()
        frame[f"annual_{c}"] = pd.Series(np.where(verified, before, np.nan)).groupby(house).ffill()
    frame["annual_income_pc"] = np.nan
    frame["annual_recorded_month"] = pd.Series(
        np.where(verified, frame["month"], None)).groupby(house).ffill().astype("string")
    frame["wage_migrant"] = np.where(frame["migrant_workers"] > 0, frame["inc_wage"], 0.0)
    monitored = frame["household_type"].eq("monitored")
    starts = monitored & ~monitored.groupby(house).shift(1, fill_value=False)
    identified = pd.Series(np.where(starts, frame["month"], None)).groupby(house).ffill()
    frame["identified_month"] = identified.where(monitored).astype("string")
    frame[[*INCOME, *SPENDING, "temp_assistance"]] = np.nan
    return frame


@pytest.fixture(scope="module")
def county():
    return valid(as_recorded(validate_ledger(generate_ledger(households=400, months=30,
                                                              seed=11)).valid))


def test_as_recorded_ledger_has_no_monthly_income_and_carries_figures(county):
    assert county[INCOME].isna().all().all()
    status = make_labels(county, CONFIG)
    assert status["poor"].notna().mean() > 0.85  # all but the months before the first March
    # Of what else a county observes, only the identification history is on this ledger.
    identification = {"months_since_identified", "times_identified_24m", "monitored_now"}
    assert set(ledger_features(county)) == set(FEATURE_NAMES) - set(OBSERVED_FEATURES) | (
        identification)


@pytest.fixture(scope="module")
def trained(county):
    config = CONFIG.model_copy(update={
        "label": CONFIG.label.model_copy(update={"kind": "either"}),
        "model": CONFIG.model.model_copy(update={
            "max_iter": 30, "min_samples_leaf": 20, "validation_months": 2,
            "calibration_months": 2, "min_positive_labels": 20, "scorecard_features": 6,
            "selection": quick_selection(CONFIG)}),
        "backtest": CONFIG.backtest.model_copy(update={
            "origins": 2, "bootstrap": 10, "min_group_rows": 50}),
    })
    with threadpool_limits(1):
        return train(county, config, track=False), config


def test_a_recorded_only_ledger_trains_and_its_households_are_scored(county, trained, tmp_path):
    result, _ = trained
    names = [str(c) for c in result.model.feature_names_in_]
    assert set(RECORDED_FEATURES) - set(OBSERVED_FEATURES) <= set(names)
    path = tmp_path / "ledger.parquet"
    county.to_parquet(path)
    folder = save_model(result.model, tmp_path / "model")
    last = county["month"].max()
    with threadpool_limits(1):
        out = score_month(path, tmp_path / "out", month=last, model_uri=str(folder),
                          tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    scores = pd.read_parquet(out.folder / "scores.parquet")
    assert len(scores) == int((county["month"] == last).sum())
    scored = scores["risk_score"].notna()
    assert scored.mean() > 0.7
    assert (scores.loc[~scored, "not_scored_reason"] == "poor_now").all()
    # Reasons name the causes that raise a household's risk, read from the recorded figures.
    risky = scores["risk_tier"].isin(["high", "medium"]).to_numpy(dtype=bool)
    assert risky.any() and scores.loc[risky, "reason_1"].notna().mean() > 0.8
    assert (scores["reason_1"] == "income").any()
    assert scores["income_pc"].notna().all()


def test_a_plan_is_made_on_a_recorded_only_ledger(county, trained):
    result, config = trained
    with threadpool_limits(1):
        frames = plan_frame(county, result.model, config, county["month"].max(),
                            budget=30_000.0, grant=1500.0)
    assert 0 < len(frames.plan) and frames.plan["cost"].sum() <= 30_000.0


# --- reasons on recorded incomes ----------------------------------------------------------------

def test_a_low_recorded_income_is_read_as_the_cause_the_record_shows():
    """The recorded-income features' weight goes to the causes with evidence (here a disabled
    adult who does not work and a seriously ill member), in equal parts, and stays 收入偏低
    without any; the contributions still add up to the log-odds."""
    from test_reasons_observed import low_recorded_income

    from riskmodel.explain import (
        cause_contributions,
        explain_households,
        feature_contributions,
    )

    # The disabled member is an adult who does not work (one full laborer of two left). The
    # trees read the recorded income alone: low income, high risk.
    gbm, features, rows, ledger = low_recorded_income(
        plain={}, disabled={"disabled": 1, "labor_full": 1},
        both={"disabled": 1, "labor_full": 1, "serious_ill": 1})

    alone, base = cause_contributions(gbm, features, CONFIG)
    shared, base2 = cause_contributions(gbm, features, CONFIG, ledger_rows=rows)
    assert base2 == base
    raw = gbm.decision_function(features)
    np.testing.assert_allclose(shared.sum(axis=1) + base, raw, atol=1e-9)
    ids = rows["household_id"].to_numpy()
    by_id, before = shared.set_axis(ids), alone.set_axis(ids)
    values, _ = feature_contributions(gbm, features)
    part = values.set_axis(ids)[["recorded_income_ratio", "recorded_income_change",
                                 "months_since_recorded"]].sum(axis=1)
    assert (part > 0.5).all()  # the low recorded income raises the risk of all three
    pd.testing.assert_frame_equal(by_id.loc[["plain"]], before.loc[["plain"]])
    moved = before.copy()
    moved.loc["disabled", "disability"] += part["disabled"]
    moved.loc[["disabled", "both"], "income"] -= part[["disabled", "both"]]
    moved.loc["both", ["disability", "illness"]] += part["both"] / 2
    # A disabled adult's missing labor is read as 因残 (cause_contributions).
    moved.loc[["disabled", "both"], "disability"] += moved.loc[["disabled", "both"],
                                                               "labor_shortage"]
    moved.loc[["disabled", "both"], "labor_shortage"] = 0.0
    pd.testing.assert_frame_equal(by_id, moved, check_exact=False, atol=1e-9)

    reasons = explain_households(gbm, features, rows, CONFIG, history=ledger)
    first = reasons.set_axis(rows["household_id"].to_numpy())["reason_1"]
    assert first["plain"] == "income"
    assert first["disabled"] == "disability"
    assert first["both"] in {"disability", "illness"}
