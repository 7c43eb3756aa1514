"""Counterfactual cause weights: each cause given back in the ledger, the household re-scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import households, small_model

from riskmodel import load_config
from riskmodel.explain import (
    cause_contributions,
    cause_drops,
    cause_givebacks,
    cause_matrix,
    trailing_window,
)
from riskmodel.explain._causes import _share_by_drops
from riskmodel.explain._counterfactual import _given_back
from riskmodel.model import build_features
from riskmodel.months import month_index

CONFIG = load_config()
LAST = "2024-12"


@pytest.fixture(scope="module")
def fitted():
    ledger, _, model = small_model(seed=11)
    return ledger, model


def rewritten(history: pd.DataFrame, cause: str) -> pd.DataFrame:
    """The households' last 24 months with ``cause`` given back, as cause_drops builds them."""
    rows = history[history["month"] == LAST]
    amounts = cause_givebacks(rows, trailing_window(rows, history))[cause]
    age = int(month_index(pd.Series([LAST]))[0]) - np.asarray(month_index(history["month"]))
    position = pd.Index(rows["household_id"]).get_indexer(history["household_id"])
    return _given_back(history.copy(), cause, amounts, position, age)


def test_illness_given_back_repays_the_last_years_bills_and_ends_the_illness():
    medical = [900.0] * 6 + [0.0] * 14 + [5000.0, 0.0, 0.0, 3000.0]
    events = [False] * 20 + [True, False, False, False]
    history = households({"months": 24, "exp_medical_oop": medical, "ev_illness": events,
                          "chronic_ill": 1})
    changed = rewritten(history, "illness")
    # The last 12 months' bills are repaid; older ones (outside the window) stay.
    np.testing.assert_array_equal(changed["exp_medical_oop"].to_numpy()[:12], medical[:12])
    assert changed["exp_medical_oop"].to_numpy()[12:].sum() == 0
    assert not changed["ev_illness"].to_numpy()[12:].any()
    assert (changed["chronic_ill"] == 0).all()
    # Nothing else moved.
    pd.testing.assert_series_equal(changed["inc_wage"], history["inc_wage"].astype("float64"),
                                   check_dtype=False)


def test_disability_given_back_puts_the_disabled_adult_to_work():
    history = households({"months": 24, "labor_full": 1, "disabled": 1, "disabled_severe": 1})
    changed = rewritten(history, "disability")
    assert (changed["labor_full"] == 2).all()
    assert (changed["disabled"] == 0).all() and (changed["disabled_severe"] == 0).all()
    # The wage the adult would earn, at the household's wage per laborer, in the last year.
    added = changed["inc_wage"].to_numpy() - history["inc_wage"].to_numpy(dtype="float64")
    np.testing.assert_allclose(added[12:], 2000.0)
    np.testing.assert_allclose(added[:12], 0.0)
    # A disabled adult the ledger counts as a partial laborer works full time instead.
    history = households({"months": 24, "labor_full": 1, "labor_partial": 1, "disabled": 1})
    changed = rewritten(history, "disability")
    assert (changed["labor_full"] == 2).all() and (changed["labor_partial"] == 0).all()
    assert (changed["labor_full"] + changed["labor_partial"] <= changed["members"]).all()


def test_a_job_loss_given_back_restores_the_wage_it_cut():
    wage = [3000.0] * 18 + [1000.0] * 6
    events = [False] * 18 + [True] + [False] * 5
    history = households({"months": 24, "inc_wage": wage, "ev_job_loss": events})
    changed = rewritten(history, "employment")
    np.testing.assert_allclose(changed["inc_wage"].to_numpy(), 3000.0)
    assert not changed["ev_job_loss"].any()


def test_drops_are_the_fall_of_the_log_odds_on_the_rewritten_ledger(fitted):
    ledger, model = fitted
    month = ledger["month"].max()
    rows = ledger[ledger["month"] == month]
    features = build_features(ledger, CONFIG, months=[month])
    raw = model.decision_function(features[list(model.feature_names_in_)])
    select = np.zeros(len(rows), dtype=bool)
    select[:200] = True
    drops = cause_drops(model, rows, ledger, CONFIG, select=select)
    assert drops.index.equals(rows.index)
    assert drops[~select].isna().all().all() and drops[select].notna().all().all()
    # With and without the log-odds given: the same weights.
    given = cause_drops(model, rows, ledger, CONFIG, select=select, raw=raw)
    np.testing.assert_allclose(given.to_numpy()[select], drops.to_numpy()[select], atol=1e-9)
    # Recomputed by hand for the households with medical bills: rewrite, rebuild, re-score.
    window = trailing_window(rows, ledger)
    amounts = cause_givebacks(rows, window)["illness"]
    billed = select & (amounts["exp_medical_oop"] > 0).any(axis=1)
    assert billed.sum() >= 20
    ids = rows["household_id"].to_numpy()[billed]
    t = int(month_index(pd.Series([month]))[0])
    hist = ledger[ledger["household_id"].isin(ids).to_numpy()]
    age = t - np.asarray(month_index(hist["month"]))
    position = pd.Index(rows["household_id"]).get_indexer(hist["household_id"])
    changed = _given_back(hist.copy(), "illness", amounts, position, age)
    after = build_features(changed, CONFIG, months=[month])
    after = after.set_index(changed.loc[after.index, "household_id"]).loc[ids]
    expected = raw[billed] - model.decision_function(after[list(model.feature_names_in_)])
    np.testing.assert_allclose(drops["illness"].to_numpy()[billed], expected, atol=1e-9)
    # Causes that took nothing weigh nothing.
    nothing = select & ~(amounts["exp_medical_oop"] > 0).any(axis=1) & ~(
        amounts["inc_wage"] > 0).any(axis=1) & (rows["chronic_ill"].fillna(0).to_numpy() == 0) & (
        rows["serious_ill"].fillna(0).to_numpy() == 0)
    assert (drops["illness"].to_numpy()[nothing] == 0).all()


def test_drops_for_a_month_use_no_later_month(fitted):
    ledger, model = fitted
    months = sorted(ledger["month"].unique())
    month = months[-4]
    rows = ledger[ledger["month"] == month].iloc[:150]
    before = cause_drops(model, rows, ledger, CONFIG)
    later = ledger["month"] > month
    scrambled = ledger.copy()
    rng = np.random.default_rng(0)
    for column in ("inc_wage", "exp_medical_oop", "exp_education"):
        scrambled.loc[later, column] = rng.uniform(0, 50_000, later.sum())
    scrambled.loc[later, "ev_illness"] = True
    after = cause_drops(model, rows, scrambled, CONFIG)
    pd.testing.assert_frame_equal(before, after)


def test_net_income_is_shared_by_the_counterfactual_up_to_its_reach():
    names = ["income_margin_12m", "income_ratio_12m", "medical_pc_12m"]
    table = cause_matrix(names, CONFIG)
    codes = list(table.columns)
    net = pd.DataFrame({"income_margin_12m": [0.6, 0.6, -0.3], "income_ratio_12m": [0.4, 0.4, 0.1]})
    drops = pd.DataFrame({c: 0.0 for c in ["illness", "education", "employment"]}, index=net.index)
    drops.loc[0, ["illness", "education"]] = [0.2, 0.1]   # reach 1.5: 0.45 of the 1.0 moves
    drops.loc[1, ["illness", "education"]] = [np.nan, 0.1]  # not evaluated: left as it was
    drops.loc[2, "illness"] = 0.5                           # lowers the risk in all: nothing moves
    given = pd.DataFrame(0.0, index=net.index, columns=codes)
    given.loc[1, "employment"] = 0.7
    _share_by_drops(given, net, drops, table, CONFIG)
    assert CONFIG.reasons.counterfactual_reach == 1.5
    assert given.loc[0, "illness"] == pytest.approx(0.30)
    assert given.loc[0, "education"] == pytest.approx(0.15)
    assert given.loc[0, "income"] == pytest.approx(0.55)
    assert given.loc[1, "employment"] == 0.7 and given.loc[1].abs().sum() == 0.7
    assert given.loc[2, "income"] == pytest.approx(-0.2) and given.loc[2, "illness"] == 0
    np.testing.assert_allclose(given.loc[[0, 2]].sum(axis=1), net.loc[[0, 2]].sum(axis=1))


def test_counterfactual_weights_keep_the_contributions_additive(fitted):
    ledger, model = fitted
    month = ledger["month"].max()
    features = build_features(ledger, CONFIG, months=[month])[list(model.feature_names_in_)]
    rows = ledger.loc[features.index]
    off = CONFIG.model_copy(update={"reasons": CONFIG.reasons.model_copy(
        update={"counterfactual_min_risk": None})})
    shared, base = cause_contributions(model, features, CONFIG, ledger_rows=rows, history=ledger)
    plain, _ = cause_contributions(model, features, off, ledger_rows=rows, history=ledger)
    np.testing.assert_allclose(shared.sum(axis=1) + base, model.decision_function(features),
                               rtol=0, atol=1e-6)
    risk = model.predict_proba(features)[:, 1]
    at_risk = risk >= CONFIG.reasons.counterfactual_min_risk
    assert at_risk.sum() >= 20
    # Households below the threshold keep the yuan sharing; those at risk may differ.
    np.testing.assert_allclose(shared[~at_risk], plain[~at_risk], atol=1e-12)
    assert not np.allclose(shared[at_risk], plain[at_risk])


def test_rows_of_several_months_get_the_same_weights_as_month_by_month(fitted):
    ledger, model = fitted
    months = sorted(ledger["month"].unique())[-3:]
    rows = ledger[ledger["month"].isin(months).to_numpy()].groupby("month").head(60)
    together = cause_drops(model, rows, ledger, CONFIG)
    apart = pd.concat([cause_drops(model, rows[rows["month"] == m], ledger, CONFIG)
                       for m in months]).loc[rows.index]
    pd.testing.assert_frame_equal(together, apart)
    assert (together.to_numpy() != 0).any()
