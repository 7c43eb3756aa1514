"""The generic reference model of benchmarks/: point-in-time features and tuning months."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodel import load_config, validate_ledger
from riskmodel.months import month_index
from riskmodel.synthetic import generate_ledger

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from generic_reference import (  # noqa: E402
    FEATURES,
    fit_reference,
    generic_features,
    training_rows,
)

MONTH = "2023-07"


@pytest.fixture(scope="module")
def ledger() -> pd.DataFrame:
    return validate_ledger(generate_ledger(households=60, months=30, seed=5)).valid


def _after(ledger: pd.DataFrame, month: str) -> np.ndarray:
    return (np.asarray(month_index(ledger["month"]))
            > int(month_index(pd.Series([month]))[0]))


def test_names_are_unique_and_many():
    assert len(FEATURES) == len(set(FEATURES))
    assert len(FEATURES) >= 450


def test_features_of_month_t_do_not_read_later_months(ledger):
    config = load_config()
    before = generic_features(ledger, config, months=[MONTH])
    later = _after(ledger, MONTH)
    assert later.sum() > 0
    changed = ledger.copy()
    rng = np.random.default_rng(0)
    for name in ["inc_wage", "inc_business", "exp_medical_oop", "temp_assistance"]:
        changed.loc[later, name] = rng.uniform(0, 9000, int(later.sum()))
    for name in ["members", "labor_full", "disabled", "migrant_workers"]:
        changed.loc[later, name] = changed.loc[later, name] + 1
    for name in ["ev_illness", "ev_job_loss", "dibao"]:
        changed.loc[later, name] = True
    changed.loc[later, "household_type"] = "monitored"
    after = generic_features(changed, config, months=[MONTH])
    pd.testing.assert_frame_equal(before, after)
    # Without the later months at all: the same figures.
    cut = generic_features(ledger[~later], config, months=[MONTH])
    pd.testing.assert_frame_equal(before, cut)
    # Changing month t itself does change them: the check can fail.
    at = (ledger["month"] == MONTH).to_numpy()
    changed.loc[at, "inc_wage"] = changed.loc[at, "inc_wage"].fillna(0) + 5000
    assert not generic_features(changed, config, months=[MONTH]).equals(before)


def test_lags_windows_and_events_read_the_household_months(ledger):
    config = load_config()
    features = generic_features(ledger, config, months=[MONTH])
    house = ledger["household_id"].iloc[features.index[7]]
    rows = ledger[ledger["household_id"] == house].set_index("month")
    incomes = rows[["inc_wage", "inc_business", "inc_property", "inc_transfer"]]
    observed = incomes.notna().any(axis=1)
    net = (incomes.fillna(0).sum(axis=1)
           - rows[["exp_medical_oop", "exp_education"]].fillna(0).sum(axis=1)).where(observed)
    t = list(rows.index).index(MONTH)
    got = features.loc[features.index[7]]
    wage = rows["inc_wage"].where(~observed, rows["inc_wage"].fillna(0))
    assert got["inc_wage_lag0"] == pytest.approx(wage.iloc[t], nan_ok=True)
    assert got["inc_wage_lag3"] == pytest.approx(wage.iloc[t - 3], nan_ok=True)
    last6 = net.iloc[t - 5:t + 1]
    assert got["net_income_max_6m"] == pytest.approx(last6.max(), rel=1e-6)
    assert got["net_income_mean_6m"] == pytest.approx(last6.mean(), rel=1e-6)
    assert got["observed_6m"] == observed.iloc[t - 5:t + 1].sum()
    assert got["net_income_pc_12m"] == pytest.approx(
        net.iloc[t - 11:t + 1].mean() * 12 / rows["members"].iloc[t], rel=1e-5)
    ill = rows["ev_illness"].fillna(False).to_numpy(dtype=bool)[:t + 1]
    assert got["ev_illness_count_24m"] == ill[-24:].sum()
    expect = t - np.flatnonzero(ill)[-1] if ill.any() else 36
    assert got["months_since_ev_illness"] == min(expect, 36)


def test_a_missing_month_reads_as_unknown(ledger):
    config = load_config()
    house = ledger["household_id"].iloc[0]
    gap = ledger[~((ledger["household_id"] == house) & (ledger["month"] == "2023-05"))]
    features = generic_features(gap, config, months=[MONTH])
    row = features.loc[gap.index[(gap["household_id"] == house) & (gap["month"] == MONTH)]]
    assert np.isnan(row["inc_wage_lag2"].iloc[0])
    assert np.isnan(row["members_lag2"].iloc[0])
    assert not np.isnan(row["members_lag1"].iloc[0])


def test_tuning_chooses_on_the_last_months_before_the_cutoff():
    config = load_config()
    ledger = validate_ledger(generate_ledger(households=300, months=30, seed=2)).valid
    cutoff = "2023-12"
    last = int(month_index(pd.Series([cutoff]))[0]) + config.label.horizon_months
    past = ledger[np.asarray(month_index(ledger["month"])) <= last]
    features, target, months = training_rows(past, config, cutoff)
    assert max(months) == cutoff
    grid = {"learning_rate": (0.1,), "max_leaf_nodes": (7, 15), "min_samples_leaf": (40,)}
    reference = fit_reference(features, target, months, config, grid=grid, max_iter=15)
    held = config.model.validation_months + config.model.calibration_months
    assert reference.validation_months == sorted(set(months))[-held:]
    assert len(reference.tuning) == 2
    best = reference.tuning["validation_ap"].idxmax()
    assert reference.params["max_leaf_nodes"] == reference.tuning.loc[best, "max_leaf_nodes"]
    p = reference.predict_proba(features)
    assert p.shape == (len(target),) and np.all((p >= 0) & (p <= 1))
