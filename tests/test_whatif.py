"""What-if: measures written into the ledger, features rebuilt, households re-scored."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small_model

from riskmodel import load_config, validate_ledger
from riskmodel.explain import explain_month, grant_measures, what_if
from riskmodel.explain._whatif import _apply
from riskmodel.model import build_features
from riskmodel.months import month_index
from riskmodel.synthetic import generate_ledger

CONFIG = load_config()


@pytest.fixture(scope="module")
def fitted():
    ledger, _, model = small_model(seed=11)
    return ledger, model


def test_medical_assistance_lowers_the_risk_of_households_ill_first(fitted):
    ledger, model = fitted
    month = ledger["month"].max()
    ex = explain_month(model, ledger, CONFIG, month)
    recent = month_index(ledger["month"]) > month_index(month) - 6
    billed = ledger[recent].groupby("household_id")["exp_medical_oop"].sum()
    ill = ex[(ex["reason_1"] == "illness") & (ex["risk_score"] > 0.05)
             & (billed.reindex(ex.index) > 0)]
    assert len(ill) >= 3
    table = what_if(model, ledger, CONFIG, month, measures=["medical_assistance"],
                    households=list(ill.index))
    assert sorted(table["household_id"]) == sorted(ill.index)
    assert (table["risk_change"] <= 1e-12).all()
    assert table["risk_change"].mean() < 0
    # Most ill households' risk falls; one at the top of an isotonic calibration step can stay
    # level, but none rises.
    assert (table["risk_change"] < 0).mean() >= 0.5
    np.testing.assert_allclose(table.set_index("household_id")["risk_before"],
                               ex.loc[table["household_id"], "risk_score"].to_numpy())


def test_money_paid_as_a_transfer_never_raises_the_risk(fitted):
    ledger, model = fitted
    month = ledger["month"].max()
    table = what_if(model, ledger, CONFIG, month, measures=["grant", "dibao"],
                    grant_amounts=[500, 5000])
    assert set(table["measure"]) == {"grant", "dibao", "grant_500", "grant_5000"}
    # The transfer features that mark households on assistance are held, as the status flags
    # are; what the payment moves is constrained never to raise the risk.
    assert (table["risk_change"] <= 1e-12).all()
    assert (table["risk_change"] < 0).mean() > 0.1
    by_amount = table[table["measure"].isin(["grant_500", "grant_5000"])].pivot(
        index="household_id", columns="measure", values="risk_after")
    assert (by_amount["grant_5000"] <= by_amount["grant_500"] + 1e-12).all()


def test_measures_apply_only_where_their_requirement_is_met(fitted):
    ledger, model = fitted
    month = ledger["month"].max()
    table = what_if(model, ledger, CONFIG, month, grant_amounts=[800, 5000])
    assert {"household_id", "measure", "cost", "risk_before", "risk_after",
            "risk_change"} <= set(table.columns)
    now = ledger[ledger["month"] == month].set_index("household_id")
    n = len(now)
    counts = table["measure"].value_counts()
    assert counts["grant"] == counts["dibao"] == counts["grant_5000"] == n
    laborers = (now["labor_full"] + now["labor_partial"]) > 0
    assert set(table.loc[table["measure"] == "welfare_job", "household_id"]) == set(
        now.index[laborers])
    assert 0 < counts["medical_assistance"] < n
    assert (table.loc[table["measure"] == "grant_5000", "cost"] == 5000).all()
    np.testing.assert_allclose(table["risk_change"], table["risk_after"] - table["risk_before"])
    # Ranked within a household: the largest fall first.
    first = table.groupby("household_id", sort=False)["risk_change"].transform("min")
    heads = ~table["household_id"].duplicated()
    assert (table.loc[heads, "risk_change"] == first[heads]).all()


def test_an_amount_raises_every_annual_window_by_the_payment():
    ledger = validate_ledger(generate_ledger(households=60, months=24, seed=2)).valid
    month = ledger["month"].max()
    features = build_features(ledger, CONFIG, months=[month])
    full = features["observed_months_12m"] == 12
    grant, = grant_measures([2400], CONFIG)
    age = month_index(month) - month_index(ledger["month"])
    observed = ledger[["inc_wage", "inc_business", "inc_property", "inc_transfer"]].notna().any(
        axis=1).to_numpy()
    changed = _apply(ledger, grant.effect, np.ones(len(ledger), bool), age, observed)
    after = build_features(changed, CONFIG, months=[month])
    members = ledger.loc[features.index, "members"].to_numpy()
    for window in (3, 6, 12):
        rise = (after[f"income_margin_{window}m"] - features[f"income_margin_{window}m"])[full]
        np.testing.assert_allclose(rise, (2400 / members)[full.to_numpy()], rtol=1e-9)
    # No trend, no volatility: a payment is not a shock.
    for name in ("income_change_3v12", "income_slope_12m", "income_volatility_12m"):
        np.testing.assert_allclose(after[name][full], features[name][full], atol=1e-6)


def test_unknown_measure_and_bad_grant_are_rejected(fitted):
    ledger, model = fitted
    month = ledger["month"].max()
    with pytest.raises(ValueError, match="bogus"):
        what_if(model, ledger, CONFIG, month, measures=["bogus"])
    with pytest.raises(ValueError, match="positive"):
        grant_measures([0], CONFIG)
