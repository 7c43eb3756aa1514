"""The calibration level that follows the falls seen after the labelled months."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from threadpoolctl import threadpool_limits

from riskmodel import load_config, validate_ledger
from riskmodel.ledger import EVENTS
from riskmodel.model import (
    RiskModel,
    build_features,
    follow_level,
    level_ratio,
    log_odds_shift,
    make_labels,
    model_features,
    recent_falls,
    training_data,
)
from riskmodel.months import month_index

HOUSEHOLDS = 3000
MONTHS = 36
START = "2022-01"
OLD, NEW = 0.02, 0.01  # monthly chance of a bill that pushes a household below the line


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with threadpool_limits(1):
        yield


def shock_ledger(households: int = HOUSEHOLDS, months: int = MONTHS, halve_after: int = 29,
                 seed: int = 0) -> pd.DataFrame:
    """Households whose incomes sit well above the line; a bill of 60,000 yuan in a month puts
    a household below it for a year. The monthly chance of a bill is ``OLD`` up to month
    ``halve_after`` (0-based) and ``NEW`` after it, whatever the household."""
    rng = np.random.default_rng(seed)
    periods = pd.period_range(START, periods=months, freq="M").strftime("%Y-%m")
    n = households * months
    month = np.tile(np.arange(months), households)
    chance = np.where(month > halve_after, NEW, OLD)
    frame = pd.DataFrame({
        "household_id": np.repeat([f"H{i:05d}" for i in range(households)], months),
        "month": np.tile(periods, households), "province": "贵州省", "county": "甲县",
        "township": "乙镇", "village": "丙村", "household_type": "exited",
        "members": 4, "labor_full": 2, "labor_partial": 0, "elderly": 1, "children": 1,
        "students_compulsory": 0, "students_noncompulsory": 0, "chronic_ill": 0,
        "serious_ill": 0, "disabled": 0, "disabled_severe": 0, "migrant_workers": 0,
        "inc_wage": rng.normal(3500.0, 300.0, n).round(), "inc_business": 300.0,
        "inc_property": 0.0, "inc_transfer": 100.0,
        "exp_medical_oop": np.where(rng.random(n) < chance, 60_000.0, 0.0),
        "exp_education": 0.0, "insured_all": True, "housing_safe": True, "water_safe": True,
        "dropouts": 0, "dibao": False, "welfare_job": False, "temp_assistance": 0.0,
        **{ev: False for ev in EVENTS},
    })
    result = validate_ledger(frame)
    assert result.quarantine.empty
    return result.valid


def small_config(level_months: int = 0):
    config = load_config()
    return config.model_copy(update={"model": config.model.model_copy(update={
        "max_iter": 30, "min_samples_leaf": 40, "validation_months": 2,
        "calibration_months": 4, "refit": False, "level_months": level_months})})


def fitted(ledger: pd.DataFrame, config) -> RiskModel:
    data = training_data(ledger, config)
    inputs = model_features(data.features.columns, config)
    return RiskModel.from_config(config, inputs).fit(data.features[inputs], data.target,
                                                      months=data.months)


def at_cutoff(ledger: pd.DataFrame, config) -> pd.DataFrame:
    """Features of the households not below the line in the ledger's last month."""
    last = ledger["month"].max()
    poor = make_labels(ledger, config)["poor"].to_numpy(dtype="float64", na_value=np.nan)
    rows = ledger.index[(ledger["month"] == last).to_numpy() & (poor == 0)]
    return build_features(ledger, config, months=[last]).loc[rows]


@pytest.fixture(scope="module")
def halved():
    """The ledger whose chance of a fall halves after its last labelled month, and a model
    fitted on its labelled months."""
    ledger = shock_ledger()
    config = small_config()
    return ledger, config, fitted(ledger, config)


def test_the_level_follows_a_fall_rate_that_halves_after_the_labelled_months(halved):
    ledger, config, model = halved
    h = config.label.horizon_months
    recent = recent_falls(ledger, config, months=h - 1)
    assert recent.labelled_to == "2024-06" and recent.cutoff == "2024-12"
    assert sorted(set(recent.months)) == ["2024-07", "2024-08", "2024-09", "2024-10", "2024-11"]
    # Falls seen within d months grow with d, up to the whole horizon's.
    shares = [recent.development[d] for d in range(1, h)]
    assert all(0 < a < b < 1 for a, b in zip(shares, shares[1:], strict=False))

    X = at_cutoff(ledger, config)
    truth = 1 - (1 - NEW) ** h  # every household's chance of a fall in the coming horizon
    before = model.predict_proba(X)[:, 1].mean()
    raw = model.decision_function(X)
    follow_level(model, recent)
    after = model.predict_proba(X)[:, 1].mean()
    # The calibrator's months still half see the old rate; the falls after them do not.
    assert before > 1.15 * truth
    assert 0.8 * truth < after < 1.2 * truth
    assert model.level_["ratio"] < 0.85 and model.level_["shift"] < 0
    assert model.level_["seen"] == recent.fell.sum()
    assert model.level_["first"] == "2024-07" and model.level_["last"] == "2024-11"
    # A shift of the log-odds: the trees and the ranking stay.
    np.testing.assert_array_equal(model.decision_function(X), raw)
    p = model.predict_proba(X)[:, 1]
    assert (np.diff(p[np.argsort(raw, kind="stable")]) >= 0).all()
    # The score's reference bins moved with the shift, so drift monitoring reads no drift.
    edges = model.reference_["score"]["edges"]
    assert edges[0] == -np.inf and edges[-1] == np.inf
    assert all(a <= b for a, b in zip(edges, edges[1:], strict=False))


def test_the_plan_reads_the_risk_with_the_level(halved):
    """The plan's risk is the score's: the calibrated risk moved by the level."""
    from riskmodel.plan._inputs import risk_scores

    ledger, config, model = halved
    X = at_cutoff(ledger, config)
    follow_level(model, recent_falls(ledger, config, months=config.label.horizon_months - 1))
    assert model.level_["shift"] != 0
    log_odds, risk = risk_scores(model, X)
    np.testing.assert_array_equal(log_odds, model.decision_function(X))
    np.testing.assert_array_equal(risk, model.predict_proba(X)[:, 1])


def test_a_second_call_replaces_the_first_shift(halved):
    ledger, config, model = halved
    recent = recent_falls(ledger, config, months=5)
    follow_level(model, recent)
    first = (model.level_["shift"], list(model.reference_["score"]["edges"]))
    follow_level(model, recent)
    assert model.level_["shift"] == pytest.approx(first[0])
    np.testing.assert_allclose(model.reference_["score"]["edges"][1:-1], first[1][1:-1],
                               rtol=1e-9)


def test_with_the_key_off_the_model_is_todays():
    ledger = shock_ledger(households=1200, halve_after=40)
    off = fitted(ledger, small_config(level_months=0))
    assert off.level_ is None
    X = at_cutoff(ledger, small_config())
    p = off.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(p, off.calibrators_[off.calibration_].transform(
        off.decision_function(X)))
    # A steady fall rate: the falls seen after the labelled months are those expected.
    follow_level(off, recent_falls(ledger, small_config(), months=5))
    assert 0.75 < off.level_["ratio"] < 1.25


def test_months_after_the_cutoff_change_nothing():
    ledger = shock_ledger(households=600)
    config = small_config()
    idx = np.asarray(month_index(ledger["month"]))
    upto = ledger[idx <= idx.max() - 3]
    later = ledger.copy()
    # Every household falls in the months after the cut-off.
    later.loc[idx > idx.max() - 3, "exp_medical_oop"] = 90_000.0
    a = recent_falls(upto, config, months=5)
    b = recent_falls(later, config, months=5, cutoff=upto["month"].max())
    assert a.cutoff == b.cutoff == "2024-09"
    np.testing.assert_array_equal(a.fell, b.fell)
    np.testing.assert_array_equal(a.lead, b.lead)
    assert a.development == b.development
    pd.testing.assert_frame_equal(a.features, b.features)
    # The shares seen by each lead, from the same month a year before: the same falls seen.
    year = recent_falls(upto, config, months=5, development="year")
    np.testing.assert_array_equal(year.fell, a.fell)
    shares = [year.development[d] for d in range(1, 6)]
    assert all(0 <= x <= y <= 1 for x, y in zip(shares, shares[1:], strict=False))
    with pytest.raises(ValueError, match="expected one of year, calibration"):
        recent_falls(upto, config, months=5, development="season")
    # Read to its own end, the later ledger shows those falls.
    c = recent_falls(later, config, months=5)
    assert c.fell.mean() > 0.9


def test_the_key_is_validated():
    config = load_config()
    assert config.model.level_months == 5
    data = config.model.model_dump()
    data["level_months"] = -1
    with pytest.raises(ValidationError):
        type(config.model).model_validate(data)
    with pytest.raises(ValueError, match="expected 1 to 5"):
        recent_falls(shock_ledger(households=50), config, months=6)


def test_the_ratio_and_the_shift():
    ratio, seen, expected = level_ratio(np.array([0.1, 0.2]), np.array([1.0, 0.0]),
                                        np.array([3, 6]), {3: 0.5, 6: 1.0})
    assert (seen, expected) == (1.0, pytest.approx(0.25)) and ratio == pytest.approx(4.0)
    risk = np.array([0.0, 0.01, 0.1, 0.5])
    shift = log_odds_shift(risk, 0.6)
    moved = 1 / (1 + np.exp(-(np.log(risk[1:] / (1 - risk[1:])) + shift)))
    assert moved.sum() / risk.sum() == pytest.approx(0.6)
    with pytest.raises(ValueError, match="beyond what a shift"):
        log_odds_shift(risk, 10.0)


def test_train_follows_the_level_only_with_the_key_on():
    from conftest import fast_config

    from riskmodel.model import train

    ledger = shock_ledger(households=800)
    config = fast_config()
    on = config.model_copy(update={"model": config.model.model_copy(update={
        "level_months": 5})})
    off = config.model_copy(update={"model": config.model.model_copy(update={
        "level_months": 0})})
    with_level = train(ledger, on, track=False).model
    without = train(ledger, off, track=False).model
    assert without.level_ is None
    assert with_level.level_["labelled_to"] == "2024-06" and with_level.level_["ratio"] < 1
    X = at_cutoff(ledger, config)
    raw = without.decision_function(X)
    # The same trees and calibrator; on, one shift of the calibrated log-odds.
    np.testing.assert_array_equal(with_level.decision_function(X), raw)
    plain = without.calibrators_[without.calibration_].transform(raw)
    np.testing.assert_array_equal(without.predict_proba(X)[:, 1], plain)
    moved = with_level.predict_proba(X)[:, 1]
    assert moved.mean() < plain.mean()
    assert (np.diff(moved[np.argsort(plain, kind="stable")]) >= -1e-15).all()


def test_the_training_run_records_the_level(halved):
    from riskmodel.model._training import _level_metrics

    ledger, config, model = halved
    follow_level(model, recent_falls(ledger, config, months=config.label.horizon_months - 1))
    got = _level_metrics(model)
    assert got == {"level_shift": model.level_["shift"], "level_ratio": model.level_["ratio"],
                   "level_seen": float(model.level_["seen"]),
                   "level_expected": model.level_["expected"]}
    assert _level_metrics(fitted(shock_ledger(households=200), small_config())) == {}
