"""The first reason checked against the model's counterfactual: a shock cause whose give-back
takes away (almost) none of the risk does not come first; its weight goes to the cause that
takes away at least half of the risk, or else to 收入偏低/缺劳动力 (a structural household).
收入偏低/缺劳动力 do not come first where one cause's give-back takes away half of the risk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import small_model
from sklearn.linear_model import LogisticRegression

from riskmodel import load_config
from riskmodel.explain import (
    cause_drops,
    explain_households,
    first_by_counterfactual,
    rank_causes,
    risk_shares,
)

CONFIG = load_config()
CODES = [c.code for c in CONFIG.causes]
SHOCKS = ["illness", "accident", "education", "employment", "business", "disaster",
          "disability"]


def off(config=CONFIG):
    return config.model_copy(update={"reasons": config.reasons.model_copy(
        update={"first_min_share": None})})


def frame(rows: list[dict], columns: list[str], fill: float) -> pd.DataFrame:
    return pd.DataFrame([{c: r.get(c, fill) for c in columns} for r in rows])


def test_defaults_read_the_half_rule_and_check_the_first_cause():
    assert CONFIG.reasons.first_min_share == 0.1
    assert CONFIG.reasons.structural_share == 0.5


def test_a_first_cause_the_counterfactual_does_not_bear_out_passes_its_weight_on():
    weights = frame([
        # employment first on its own features, but its give-back takes nothing away;
        # illness's takes away 80%: illness first.
        {"employment": 1.0, "illness": 0.4, "income": 0.3},
        # illness first, takes away 5%; no cause takes away half: structural, 收入偏低.
        {"illness": 1.2, "education": 0.5, "income": 0.2, "labor_shortage": 0.1},
        # illness first and it takes away 60%: unchanged.
        {"illness": 1.2, "income": 0.9},
        # no counterfactual (risk under counterfactual_min_risk): unchanged.
        {"employment": 1.0, "income": 0.3},
        # 收入偏低 already first: unchanged.
        {"income": 1.5, "employment": 1.0},
        # structural, 收入偏低 without evidence: 缺劳动力, which has it.
        {"business": 0.8, "labor_shortage": 0.3, "income": 0.6},
        # structural, but no structural cause has evidence: nowhere to go, unchanged.
        {"business": 0.8, "employment": 0.2},
        # the cause taking away most has no evidence: the next allowed one, if above half.
        {"employment": 1.0, "illness": 0.2, "disability": 0.1},
    ], CODES, 0.0)
    shares = frame([
        {"employment": 0.0, "illness": 0.8},
        {"illness": 0.05, "education": 0.3},
        {"illness": 0.6},
        {},
        {"employment": 0.0},
        {"business": 0.02},
        {"business": 0.02, "employment": 0.3},
        {"employment": 0.05, "illness": 0.9, "disability": 0.55},
    ], SHOCKS, 0.0)
    shares.loc[3] = np.nan
    allowed = pd.DataFrame(True, index=weights.index, columns=CODES)
    allowed.loc[5, "income"] = False
    allowed.loc[6, ["income", "labor_shortage"]] = False
    allowed.loc[7, "illness"] = False
    out = first_by_counterfactual(weights, shares, allowed, CONFIG)
    np.testing.assert_allclose(out.sum(axis=1), weights.sum(axis=1), rtol=0, atol=1e-12)
    codes, ranked = rank_causes(out, allowed, CONFIG)
    assert list(codes[:, 0]) == ["illness", "income", "illness", "employment", "income",
                                 "labor_shortage", "business", "disability"]
    assert out.loc[0, "illness"] == pytest.approx(1.4) and out.loc[0, "employment"] == 0
    assert out.loc[1, "income"] == pytest.approx(1.4) and out.loc[1, "education"] == 0.5
    pd.testing.assert_frame_equal(out.loc[[2, 3, 4, 6]], weights.loc[[2, 3, 4, 6]])
    assert (np.nan_to_num(np.diff(ranked, axis=1), nan=-1) <= 0).all()
    # Turned off, or without shares: unchanged.
    assert first_by_counterfactual(weights, shares, allowed, off()) is weights
    assert first_by_counterfactual(weights, None, allowed, CONFIG) is weights


def test_a_structural_first_yields_to_a_cause_that_takes_away_half_the_risk():
    weights = frame([
        # 收入偏低 first, illness's give-back takes away 70%: illness first, with its weight.
        {"income": 1.5, "illness": 0.4, "employment": 0.3},
        # 收入偏低 first, the most any cause takes away is 40%: structural, unchanged.
        {"income": 1.5, "illness": 0.4},
        # illness takes away 90% but has no evidence; employment, allowed, 60%: employment.
        {"income": 1.5, "illness": 0.4, "employment": 0.2},
        # 缺劳动力 first, illness takes away 90%: illness first.
        {"labor_shortage": 1.5, "illness": 0.4},
        # no counterfactual: unchanged.
        {"income": 1.5, "illness": 0.4},
    ], CODES, 0.0)
    shares = frame([
        {"illness": 0.7, "employment": 0.2},
        {"illness": 0.4},
        {"illness": 0.9, "employment": 0.6},
        {"illness": 0.9},
        {},
    ], SHOCKS, 0.0)
    shares.loc[4] = np.nan
    allowed = pd.DataFrame(True, index=weights.index, columns=CODES)
    allowed.loc[2, "illness"] = False
    out = first_by_counterfactual(weights, shares, allowed, CONFIG)
    np.testing.assert_allclose(out.sum(axis=1), weights.sum(axis=1), rtol=0, atol=1e-12)
    codes, _ = rank_causes(out, allowed, CONFIG)
    assert list(codes[:, 0]) == ["illness", "income", "employment", "illness", "income"]
    assert out.loc[0, "illness"] == pytest.approx(1.9) and out.loc[0, "income"] == 0
    assert out.loc[2, "employment"] == pytest.approx(1.7)
    assert out.loc[3, "illness"] == pytest.approx(1.9) and out.loc[3, "labor_shortage"] == 0
    pd.testing.assert_frame_equal(out.loc[[1, 4]], weights.loc[[1, 4]])


def test_a_structural_household_takes_the_larger_structural_cause():
    weights = frame([{"illness": 1.0, "income": 0.2, "labor_shortage": 0.4}], CODES, 0.0)
    shares = frame([{"illness": 0.0}], SHOCKS, 0.0)
    allowed = pd.DataFrame(True, index=weights.index, columns=CODES)
    out = first_by_counterfactual(weights, shares, allowed, CONFIG)
    assert out.loc[0, "labor_shortage"] == pytest.approx(1.4)
    assert out.loc[0, "income"] == pytest.approx(0.2)


def test_risk_shares_are_the_share_of_the_risk_taken_away_in_probability():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    plain = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    drops = pd.DataFrame({"illness": [np.log(3.0), -1.0, np.nan], "education": 0.0})
    raw = np.zeros(3)  # risk 0.5; without illness 0.25 on the first row
    shares = risk_shares(plain, raw, drops)
    assert shares.loc[0, "illness"] == pytest.approx(0.5)
    assert shares.loc[1, "illness"] < 0   # giving it back raises the risk
    assert np.isnan(shares.loc[2, "illness"]) and shares.loc[2, "education"] == 0.0
    assert (shares["education"] == 0.0).all()


@pytest.fixture(scope="module")
def fitted():
    ledger, features, model = small_model(seed=11)
    month = ledger["month"].max()
    rows = features[(ledger.loc[features.index, "month"] == month).to_numpy()]
    return ledger, rows, model


def test_risk_shares_use_the_calibrated_risk(fitted):
    ledger, rows, model = fitted
    ledger_rows = ledger.loc[rows.index]
    drops = cause_drops(model, ledger_rows, ledger, CONFIG)
    raw = model.decision_function(rows)
    shares = risk_shares(model, raw, drops)
    risk = model.predict_proba(rows)[:, 1]
    without = model.calibrated(raw - drops["illness"].to_numpy())
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = (risk - without) / risk
    np.testing.assert_allclose(shares["illness"], np.where(risk > 0, expected, np.nan))


def test_explained_households_keep_their_weights_additive_and_ordered(fitted):
    ledger, rows, model = fitted
    ledger_rows = ledger.loc[rows.index]
    out = explain_households(model, rows, ledger_rows, CONFIG, history=ledger)
    plain = explain_households(model, rows, ledger_rows, off(), history=ledger)
    weights = out[["reason_1_weight", "reason_2_weight", "reason_3_weight"]].to_numpy()
    assert (np.nan_to_num(np.diff(weights, axis=1), nan=-1) <= 0).all()
    changed = (out["reason_1"].astype("string").fillna("")
               != plain["reason_1"].astype("string").fillna("")).to_numpy()
    assert changed.any()
    # A changed first reason was a shock cause, 收入偏低 or 缺劳动力 before; it is now a cause whose
    # give-back takes away at least half the risk, or a structural one.
    assert plain["reason_1"][changed].isin([*SHOCKS, "income", "labor_shortage"]).all()
    drops = cause_drops(model, ledger_rows, ledger, CONFIG)
    shares = risk_shares(model, model.decision_function(rows), drops)
    new = out["reason_1"][changed].astype(str).to_numpy()
    taken = np.array([shares[c].to_numpy()[i] if c in SHOCKS else np.nan
                      for i, c in zip(np.flatnonzero(changed), new, strict=True)])
    structural = np.isin(new, ["income", "labor_shortage"])
    assert (structural | (taken >= CONFIG.reasons.structural_share)).all()
    # Households below counterfactual_min_risk are untouched.
    low = model.predict_proba(rows)[:, 1] < CONFIG.reasons.counterfactual_min_risk
    pd.testing.assert_frame_equal(out[low], plain[low])
