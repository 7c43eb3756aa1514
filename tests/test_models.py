"""The risk model, its calibrators, the points scorecard and the rule baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

import riskmodel.model._threads as threads_module
from riskmodel import load_config
from riskmodel.ledger import EVENTS
from riskmodel.model import (
    BASELINE_RULES,
    SHOCK_FEATURES,
    Calibrator,
    RiskModel,
    RuleBaseline,
    Scorecard,
    format_triggers,
    predict_in_threads,
    reference_bins,
    rule_triggers,
)
from riskmodel.model._estimator import TIE_BREAK


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The trees' OpenMP threads crawl when the machine's cores are busy with other work.
    with threadpool_limits(1):
        yield


def _frame(n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "margin": rng.normal(size=n),
        "shock": rng.integers(0, 2, n).astype(float),
        "noise": rng.normal(size=n),
    })
    X.loc[rng.random(n) < 0.05, "margin"] = np.nan
    logit = -2.5 - 1.5 * X["margin"].fillna(0.0) + 1.2 * X["shock"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    months = np.repeat(np.arange(10), n // 10) + 24_000
    return X, y.to_numpy(), months


@pytest.fixture(scope="module")
def fitted():
    X, y, months = _frame()
    model = RiskModel(max_iter=60, min_samples_leaf=20, monotonic={"margin": -1},
                      validation_months=2, calibration_months=3, scorecard_features=3,
                      config={"label": {"horizon_months": 6}})
    return model.fit(X, y, months=months), X, y, months


def test_slices_are_cut_oldest_first(fitted):
    model, _, _, months = fitted
    s = model.slices_
    assert s["train"]["last"] < s["validation"]["first"]
    assert s["validation"]["last"] < s["calibration"]["first"]
    assert s["calibration"]["last"] == months.max()
    assert sum(p["rows"] for p in s.values()) == len(months)
    assert s["calibration"]["rows"] == 3 * len(months) // 10


def test_string_months_are_reported_as_months():
    X, y, _ = _frame(3000)
    months = np.repeat([f"2024-{m:02d}" for m in range(1, 11)], 300)
    model = RiskModel(max_iter=20, min_samples_leaf=20, validation_months=2,
                      calibration_months=2).fit(X, y, months=months)
    assert model.slices_["calibration"] == {"rows": 600, "first": "2024-09", "last": "2024-10"}


def test_contract_attributes(fitted):
    model, X, _, _ = fitted
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    raw = model.decision_function(X)
    assert np.allclose(raw, model.gbm_.decision_function(X))
    assert list(model.feature_names_in_) == list(model.gbm_.feature_names_in_)
    assert model.horizon_months_ == 6
    assert model.config_ == {"label": {"horizon_months": 6}}
    assert len(model.trained_at_) == 10 and model.trained_at_[4] == "-"
    assert model.code_version_
    assert model.summary_ == {}
    # The gbm is plain: numeric inputs, no native categorical features (TreeSHAP applies).
    assert model.gbm_.is_categorical_ is None


def test_extra_columns_are_ignored_and_order_does_not_matter(fitted):
    model, X, _, _ = fitted
    shuffled = X[["noise", "shock", "margin"]].assign(household_extra=1.0)
    assert np.allclose(model.predict_proba(shuffled), model.predict_proba(X))


def test_monotonic_constraint_holds(fitted):
    model, X, _, _ = fitted
    grid = pd.DataFrame({"margin": np.linspace(-3, 3, 61), "shock": 1.0, "noise": 0.0})
    risk = model.decision_function(grid)
    assert np.all(np.diff(risk) <= 1e-12)


def test_rows_split_over_threads_predict_exactly_as_one_call(fitted, monkeypatch):
    model, X, _, _ = fitted
    whole = model.gbm_.decision_function(X)
    monkeypatch.setattr(threads_module, "THREAD_ROWS", 500)
    calls = []

    def predict(rows):
        calls.append(len(rows))
        return model.gbm_.decision_function(rows)

    np.testing.assert_array_equal(predict_in_threads(predict, X, threads=3), whole)
    assert sorted(calls) == [1333, 1333, 1334]
    calls.clear()
    np.testing.assert_array_equal(predict_in_threads(predict, X.iloc[:900], threads=3),
                                  whole[:900])
    assert calls == [900]                       # under two blocks' worth: one call
    np.testing.assert_array_equal(model.decision_function(X), whole)


def test_calibrated_mean_matches_the_calibration_slice(fitted):
    model, X, y, months = fitted
    cal = months >= months.max() - 2
    for method in ("isotonic", "sigmoid"):
        p = model.calibrators_[method].transform(model.decision_function(X[cal]))
        assert p.mean() == pytest.approx(y[cal].mean(), abs=0.005)


def test_isotonic_calibrator_is_monotone_and_keeps_the_mean():
    rng = np.random.default_rng(1)
    raw = rng.normal(size=5000)
    y = (rng.random(5000) < 1 / (1 + np.exp(-(raw - 2)))).astype(float)
    cal = Calibrator("isotonic").fit(raw, y)
    assert np.all(np.diff(cal.x_) >= 0) and np.all(np.diff(cal.y_) >= 0)
    assert cal.transform(raw).mean() == pytest.approx(y.mean(), abs=1e-9)
    assert cal.transform(np.array([-1e9]))[0] == cal.y_[0]
    sig = Calibrator("sigmoid").fit(raw, y)
    assert sig.slope_ == pytest.approx(1.0, abs=0.15)
    assert sig.intercept_ == pytest.approx(-2, abs=0.2)
    with pytest.raises(ValueError, match="expected one of"):
        Calibrator("beta").fit(raw, y)


def test_isotonic_probability_rises_strictly_with_the_log_odds():
    """Inside one isotonic step the probability still orders households by their log-odds,
    and it stays within TIE_BREAK of the step function (so the mean keeps to 1e-9)."""
    rng = np.random.default_rng(2)
    raw = rng.normal(size=5000)
    y = (rng.random(5000) < 1 / (1 + np.exp(-(raw - 2)))).astype(float)
    cal = Calibrator("isotonic").fit(raw, y)
    steps = np.interp(raw, cal.x_, cal.y_)
    assert len(np.unique(steps)) < 100          # the step function ties most households
    # Log-odds a thousandth apart over a risk model's range, across every step.
    grid = np.linspace(-6.0, 6.0, 12_001)
    p = cal.transform(grid)
    assert np.all(np.diff(p) > 0)
    assert len(np.unique(cal.transform(raw))) == len(np.unique(raw))
    assert np.abs(p - np.interp(grid, cal.x_, cal.y_)).max() <= TIE_BREAK
    assert np.all((p >= 0) & (p <= 1))


def test_the_calibrated_risk_orders_rows_as_the_log_odds_do(fitted):
    model, X, _, _ = fitted
    assert model.calibration_ == "isotonic"
    raw = model.decision_function(X)
    risk = model.predict_proba(X)[:, 1]
    order = np.argsort(raw, kind="stable")
    distinct = np.diff(raw[order]) > 1e-5
    assert np.all(np.diff(risk[order])[distinct] > 0)
    assert np.all(np.diff(risk[order]) >= 0)


def test_fit_refuses_a_slice_with_one_class():
    X, y, months = _frame(2000)
    y = np.where(months >= months.max() - 1, 0, y)
    with pytest.raises(ValueError, match="calibration slice holds one class"):
        RiskModel(max_iter=10, validation_months=2, calibration_months=2).fit(X, y, months=months)


def test_fit_needs_enough_months():
    X, y, _ = _frame(2000)
    with pytest.raises(ValueError, match="at least 8"):
        RiskModel(validation_months=3, calibration_months=4).fit(X, y, months=np.repeat(
            np.arange(5), 400))


def test_reference_describes_the_calibration_slice(fitted):
    model, X, _, months = fitted
    ref = model.reference_
    assert set(ref["features"]) == set(X.columns)
    assert ref["rows"] == model.slices_["calibration"]["rows"]
    for bins in [*ref["features"].values(), ref["score"]]:
        assert bins["edges"][0] == -np.inf and bins["edges"][-1] == np.inf
        assert np.all(np.diff(bins["edges"]) > 0)
        assert len(bins["shares"]) == len(bins["edges"]) - 1
        assert sum(bins["shares"]) == pytest.approx(1.0)
    cal = months >= months.max() - 2
    assert ref["features"]["margin"]["missing"] == pytest.approx(X.loc[cal, "margin"].isna().mean())


def test_reference_keeps_every_month_of_the_year_in_the_calibration_bins(fitted):
    model, X, _, months = fitted
    by_month = model.reference_["calendar_months"]
    calendar = months % 12
    assert sorted(by_month) == [f"{m + 1:02d}" for m in np.unique(calendar)]
    for key, entry in by_month.items():
        rows = calendar == int(key) - 1
        assert entry["rows"] == int(rows.sum())
        for name, shares in entry["features"].items():
            edges = model.reference_["features"][name]["edges"]
            assert len(shares["shares"]) == len(edges) - 1
            assert sum(shares["shares"]) == pytest.approx(1.0)
            values = X.loc[rows, name]
            assert shares["missing"] == pytest.approx(values.isna().mean())
            known = values.dropna().to_numpy()
            below_first = np.mean(known < edges[1]) if len(edges) > 2 else 1.0
            assert shares["shares"][0] == pytest.approx(below_first)


def test_reference_without_months_has_no_calendar():
    X, y, _ = _frame(2000)
    model = RiskModel(max_iter=10, scorecard_features=2).fit(X, y)
    assert "calendar_months" not in model.reference_


def test_reference_bins_of_all_missing():
    assert reference_bins(np.array([np.nan, np.nan])) == {
        "edges": [-np.inf, np.inf], "shares": [1.0], "missing": 1.0}


def test_from_config_takes_constraints_and_causes_from_config():
    config = load_config()
    model = RiskModel.from_config(config, ["income_margin_12m", "medical_pc_12m", "members"])
    assert model.monotonic == {"income_margin_12m": -1, "medical_pc_12m": 1}
    assert model.causes["medical_pc_12m"] == "illness"
    assert model.max_iter == config.model.max_iter
    assert model.config["label"]["horizon_months"] == config.label.horizon_months
    assert RiskModel.from_config(config, calibration="sigmoid").calibration == "sigmoid"


# --- scorecard --------------------------------------------------------------------------


def test_scorecard_points_reproduce_its_probabilities(fitted):
    model, X, _, _ = fitted
    card = model.scorecard_
    points = card.points(X)
    total = points.sum(axis=1)
    assert list(points.columns) == card.features_
    assert total.between(0, 100).all()
    lookup = card.lookup().set_index("points")["probability"]
    assert np.allclose(lookup[total].to_numpy(), model.scorecard_.predict_proba(X)[:, 1])
    table = card.table()
    # The riskiest bin of every feature together make exactly 100 points.
    assert table.groupby("feature")["points"].max().sum() == 100
    assert (table.groupby("feature")["points"].min() == 0).all()
    assert (table["bin"] == "missing").sum() == len(card.features_)


def test_scorecard_table_scores_a_household_by_hand(fitted):
    model, X, _, _ = fitted
    card = model.scorecard_
    table = card.table()
    row = X.iloc[7]
    by_hand = 0
    for name in card.features_:
        rows = table[table["feature"] == name]
        value = row[name]
        if np.isnan(value):
            hit = rows[rows["bin"] == "missing"]
        else:
            hit = rows[(rows["lower"] <= value) & (value < rows["upper"])]
        assert len(hit) == 1
        by_hand += int(hit["points"].iloc[0])
    assert by_hand == card.points(X.iloc[[7]]).sum(axis=1).iloc[0]


def test_scorecard_ranks_the_signal_first():
    X, y, _ = _frame(6000, seed=3)
    card = Scorecard(max_features=2).fit(X, y)
    assert card.features_ == ["margin", "shock"]
    assert card.information_value_["noise"] < 0.05 < card.information_value_["margin"]
    margin = card.table().query("feature == 'margin' and bin != 'missing'")["points"]
    assert margin.is_monotonic_decreasing


def test_scorecard_html_is_a_printable_card(fitted):
    html = fitted[0].scorecard_.to_html()
    assert html.startswith("<!DOCTYPE html>") and "评分卡" in html and "<table" in html


def test_scorecard_binary_feature_has_no_empty_bin():
    X, y, _ = _frame(2000)
    card = Scorecard(max_features=3).fit(X, y)
    shock = card.table().query("feature == 'shock'")["bin"].tolist()
    assert shock == ["< 1", "≥ 1", "missing"]


# --- rule baseline ----------------------------------------------------------------------


def _households(**overrides) -> pd.DataFrame:
    base = {"income_ratio_12m": 3.0, "medical_pc_12m": 0.0, "members": 4.0,
            "housing_safe": 1.0, "water_safe": 1.0, "dropouts": 0.0}
    base.update({c: 24.0 for c in SHOCK_FEATURES})
    frame = pd.DataFrame([base] * 8)
    frame.loc[1, "income_ratio_12m"] = 1.4      # under 1.5× the line
    frame.loc[2, "income_ratio_12m"] = 0.9      # under the line itself
    frame.loc[3, "medical_pc_12m"] = 6000.0     # 24,000 yuan for 4 members
    frame.loc[4, "medical_pc_12m"] = 4000.0     # 16,000 yuan: under the trigger
    frame.loc[5, "months_since_ev_illness"] = 2.0   # a shock two months ago
    frame.loc[6, "months_since_ev_job_loss"] = 3.0  # three months ago: not recent
    frame.loc[7, "income_ratio_12m"] = np.nan       # income unknown
    for key, value in overrides.items():
        frame[key] = value
    return frame


def test_rule_baseline_fires_on_hand_built_cases():
    fired = RuleBaseline.from_config(load_config()).triggers(_households())
    assert list(fired.columns) == list(BASELINE_RULES)
    assert fired.to_numpy().tolist() == [
        [False, False, False],
        [True, False, False],
        [True, False, False],
        [False, True, False],
        [False, False, False],
        [False, False, True],
        [False, False, False],
        [False, False, False],
    ]


def test_rule_baseline_ranks_and_estimates():
    X = _households()
    y = np.array([0, 1, 1, 1, 0, 0, 0, 0])
    rules = RuleBaseline().fit(X, y)
    assert rules.decision_function(X).tolist() == [0, 1, 1, 1, 0, 1, 0, 0]
    score = RuleBaseline(rank_by_income=True).fit(X, y).decision_function(X)
    assert score[2] > score[1] > score[0]          # lower income ranks higher among the flagged
    assert score[3] > score[4] and score[0] > score[7]
    assert rules.predict(X).tolist() == [0, 1, 1, 1, 0, 1, 0, 0]
    p = rules.predict_proba(X)[:, 1]
    assert p[1] > p[0] and p[0] == p[4]
    with pytest.raises(KeyError, match="income_ratio_12m"):
        rules.decision_function(X.drop(columns="income_ratio_12m"))


def test_rule_triggers_reports_hard_triggers_from_config():
    X = _households()
    X.loc[0, "housing_safe"] = 0.0
    X.loc[4, "dropouts"] = 1.0
    fired = rule_triggers(X, load_config())
    assert fired.columns.tolist() == [*BASELINE_RULES, "income_below_line", "medical_oop_12m",
                                      "housing_unsafe", "dropout", "water_unsafe"]
    assert fired["income_below_line"].tolist() == [False, False, True, False, False, False,
                                                   False, False]
    assert fired["housing_unsafe"].tolist()[0] and fired["dropout"].tolist()[4]
    text = format_triggers(fired)
    assert text.tolist()[:3] == ["housing_unsafe", "income_low", "income_low;income_below_line"]
    assert text.iloc[6] == ""

    config = load_config()
    off = config.model_copy(update={"triggers": config.triggers.model_copy(
        update={"housing_unsafe": False})})
    assert "housing_unsafe" not in rule_triggers(X, off).columns


def test_every_event_counts_as_a_shock():
    assert SHOCK_FEATURES == [f"months_since_{ev}" for ev in EVENTS]


# --- scikit-learn's estimator checks ---------------------------------------------------


@parametrize_with_checks(
    [RiskModel(max_iter=5, min_samples_leaf=2, n_iter_no_change=2),
     Scorecard(n_bins=3, max_features=3)],
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
