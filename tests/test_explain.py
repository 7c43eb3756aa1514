"""Explanations: TreeSHAP per cause, consistency rules, reason text, measures."""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shap
from conftest import household_rows, households, small_model

from riskmodel import ConfigError, LedgerError, load_config
from riskmodel.explain import (
    _shared_out,
    cause_contributions,
    cause_matrix,
    cause_shares_by,
    explain_household,
    explain_households,
    explain_month,
    feature_contributions,
    global_explanations,
    risk_without,
    sum_by_cause,
)
from riskmodel.features import build_features
from riskmodel.labels import poverty_status
from riskmodel.reasons import (
    format_yuan,
    household_facts,
    rank_causes,
    reason_texts,
    suggested_measures,
    trailing_window,
    valid_causes,
)
from riskmodel.tracking import save_model

CONFIG = load_config()
CODES = [c.code for c in CONFIG.causes]


@pytest.fixture(scope="module")
def fitted():
    return small_model(seed=7)


def test_cause_contributions_add_up_to_the_log_odds(fitted):
    ledger, features, model = fitted
    rows = features.sample(700, random_state=1)
    contributions, base = cause_contributions(model, rows, CONFIG)
    assert list(contributions.columns) == CODES
    assert contributions.index.equals(rows.index)
    raw = model.decision_function(rows)
    np.testing.assert_allclose(contributions.sum(axis=1) + base, raw, rtol=0, atol=1e-6)
    # The gbm learned from several causes, not one.
    assert (contributions.abs().mean() > 1e-3).sum() >= 4


def test_a_rows_cause_sums_do_not_depend_on_the_rows_summed_with_it(fitted):
    _, features, model = fitted
    rows = features.iloc[:400]
    values, _ = feature_contributions(model, rows)
    table = cause_matrix(list(values.columns), CONFIG).to_numpy()
    whole = sum_by_cause(values.to_numpy(), table)
    np.testing.assert_allclose(whole, values.to_numpy() @ table, rtol=0, atol=1e-12)
    # A BLAS product adds in an order that depends on the number of rows; these sums must not.
    for start, stop in [(0, 1), (5, 8), (17, 72), (100, 255)]:
        np.testing.assert_array_equal(sum_by_cause(values.to_numpy()[start:stop], table),
                                      whole[start:stop])
    with pytest.raises(ValueError, match="0 and 1"):
        sum_by_cause(values.to_numpy(), table * 0.5)


def test_feature_values_equal_shap_tree_explainer(fitted):
    _, features, model = fitted
    rows = features.iloc[:3000]
    values, base = feature_contributions(model, rows)
    explainer = shap.TreeExplainer(model.gbm_)
    expected = explainer.shap_values(rows[list(model.gbm_.feature_names_in_)])
    np.testing.assert_allclose(values.to_numpy(), expected, rtol=0, atol=1e-9)
    assert base == pytest.approx(float(np.ravel(explainer.expected_value)[0]), abs=1e-9)


def test_explanations_follow_a_model_refitted_in_place():
    # The TreeSHAP tables are kept per model between chunks; a refit must not reuse them.
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(5)
    X = pd.DataFrame({"medical_pc_12m": rng.exponential(500, 3000),
                      "income_margin_12m": rng.normal(2000, 1500, 3000)})
    gbm = HistGradientBoostingClassifier(max_iter=10, random_state=0)
    gbm.fit(X, (X["medical_pc_12m"] > 600).astype(int))
    first, _ = feature_contributions(gbm, X, n_jobs=2)
    gbm.set_params(max_iter=25).fit(X, (X["income_margin_12m"] < 1000).astype(int))
    values, base = feature_contributions(gbm, X, n_jobs=2)
    np.testing.assert_allclose(values.sum(axis=1) + base, gbm.decision_function(X),
                               rtol=0, atol=1e-9)
    assert values["income_margin_12m"].abs().mean() > first["income_margin_12m"].abs().mean()


def test_a_feature_without_a_cause_is_a_config_error(fitted):
    _, features, model = fitted
    partial = CONFIG.model_copy(update={
        "features": {k: v for k, v in CONFIG.features.items() if k != "medical_pc_12m"}})
    with pytest.raises(ConfigError, match="medical_pc_12m"):
        cause_contributions(model, features.iloc[:10], partial)


def test_consistency_rules_on_hand_built_households():
    rows = households(
        # Two laborers of four, no students, no medical costs, nobody ill.
        {},
        # One laborer of four (a quarter: 缺劳动力 allowed), a student, a chronic patient.
        {"labor_full": 1, "students_noncompulsory": 1, "chronic_ill": 1},
        # Nobody works; medical bills without a recorded illness.
        {"members": 3, "labor_full": 0, "exp_medical_oop": 500.0},
        # Education fees without a student on record; a partial laborer.
        {"labor_full": 1, "labor_partial": 1, "exp_education": 300.0},
    )
    last = rows[rows["month"] == "2024-12"]
    allowed = valid_causes(household_facts(last, CONFIG, rows), CONFIG)
    assert list(allowed.columns) == CODES
    table = allowed[["education", "labor_shortage", "illness", "employment"]].to_numpy()
    # Wages flat all year: no household's employment is unstable, laborers or not.
    np.testing.assert_array_equal(table, [
        [False, False, False, False],
        [True, True, True, False],
        [False, True, True, False],
        [True, False, False, False],
    ])


def test_reasons_skip_disallowed_and_weak_causes_and_keep_order():
    allowed = pd.DataFrame(True, index=range(2), columns=CODES)
    allowed.loc[0, "education"] = False
    values = pd.DataFrame(0.0, index=range(2), columns=CODES)
    values.loc[0, ["education", "illness", "income", "employment"]] = [2.0, 0.9, 0.3, 0.01]
    values.loc[1, CODES] = np.linspace(1.0, 0.1, len(CODES))
    codes, weights = rank_causes(values, allowed, CONFIG)
    assert codes.shape == (2, CONFIG.reasons.max_causes)
    assert codes[0, :3].tolist() == ["illness", "income", None]
    np.testing.assert_allclose(weights[0, :2], [0.9, 0.3])
    assert np.isnan(weights[0, 2:]).all()
    assert codes[1].tolist() == CODES[:5]
    assert (np.diff(weights[1]) < 0).all()


def test_reason_text_quotes_the_households_own_figures():
    medical = [0.0] * 9 + [6000.0, 6000.0, 6400.0]
    rows = household_rows(exp_medical_oop=medical, chronic_ill=1)
    last = rows.iloc[[-1]]
    facts = household_facts(last, CONFIG, rows)
    codes = np.array([["illness", "income", None]], dtype=object)
    texts = reason_texts(codes, facts, CONFIG)
    zh, en = texts["zh"].iloc[0], texts["en"].iloc[0]
    annual_income = 12 * (2000 + 300 + 100)
    share = round(18400 / annual_income * 100)
    assert "因病：近12个月合规自付医疗费用 18,400 元（近3个月 18,400 元）" in zh
    assert f"占年收入 {share}%" in zh
    assert "慢性病 1 人" in zh
    net_pc = (annual_income - 18400) / 4
    assert f"人均可支配收入 {net_pc:,.0f} 元，监测线 8,700 元" in zh
    assert "18,400 yuan" in en and f"{share}% of annual income" in en


def test_households_without_labor_get_the_safety_net_measures():
    codes = np.array([["illness", "labor_shortage"], ["illness", "labor_shortage"]],
                     dtype=object)
    measures = suggested_measures(codes, np.array([True, False]), CONFIG)
    illness = CONFIG.cause_by_code["illness"]
    shortage = CONFIG.cause_by_code["labor_shortage"]
    assert measures[0] == "、".join(dict.fromkeys(illness.measures_zh + shortage.measures_zh))
    assert measures[1] == "、".join(
        dict.fromkeys(illness.measures_no_labor_zh + shortage.measures_no_labor_zh))


def test_format_yuan():
    text = format_yuan(np.array([18400, 0, -1234.6, 1234567, np.nan, 999.5]))
    assert text.tolist() == ["18,400", "0", "-1,235", "1,234,567", "—", "1,000"]


def test_explain_households_contract(fitted):
    ledger, features, model = fitted
    month = ledger["month"].max()
    rows = features[(ledger.loc[features.index, "month"] == month).to_numpy()]
    out = explain_households(model, rows, ledger.loc[rows.index], CONFIG, history=ledger)
    assert out.index.equals(rows.index)
    reasons = out[["reason_1", "reason_2", "reason_3"]]
    weights = out[["reason_1_weight", "reason_2_weight", "reason_3_weight"]].to_numpy()
    assert set(reasons.stack().dropna()) <= set(CODES)
    assert reasons["reason_1"].notna().sum() > len(out) / 4
    # Strongest first, NA after the last cause, never a cause twice.
    assert (np.nan_to_num(np.diff(weights, axis=1), nan=-1) <= 0).all()
    assert (reasons.isna().to_numpy() == np.isnan(weights)).all()
    assert not reasons.isna().to_numpy()[:, :-1][reasons.notna().to_numpy()[:, 1:]].any()
    listed = out["risk_causes"].str.split(",")
    first = listed.str[0].where(out["risk_causes"] != "")
    assert (first.fillna("") == out["reason_1"].fillna("")).all()
    assert listed.str.len().max() <= CONFIG.reasons.max_causes
    assert out["reason_text_zh"].str.len().min() > 0
    assert out.loc[out["reason_1"].isna(), "reason_text_zh"].eq("无明显致贫返贫风险因素").all()


def test_reason_text_matches_the_ledger_history(fitted):
    ledger, features, model = fitted
    month = ledger["month"].max()
    ex = explain_month(model, ledger, CONFIG, month)
    ill = ex[ex["reason_1"] == "illness"].head(5)
    assert len(ill) > 0
    months = pd.period_range(end=month, periods=12, freq="M").strftime("%Y-%m")
    for household_id, row in ill.iterrows():
        own = ledger[(ledger["household_id"] == household_id) & ledger["month"].isin(months)]
        bills = own["exp_medical_oop"].sum()
        assert row["reason_text_zh"].startswith(f"因病：近12个月合规自付医疗费用 {bills:,.0f} 元")


def test_explain_month_scores_every_household_of_the_month(fitted):
    ledger, _, model = fitted
    month = ledger["month"].max()
    ex = explain_month(model, ledger, CONFIG, month)
    ids = ledger.loc[ledger["month"] == month, "household_id"]
    assert ex.index.tolist() == ids.tolist()
    features = build_features(ledger, CONFIG, months=[month])
    np.testing.assert_allclose(ex["risk_score"], model.predict_proba(features)[:, 1])


def test_net_income_is_shared_by_what_each_cause_took():
    medical = [0.0] * 22 + [6000.0, 6000.0]
    rows = households(
        # Comfortable wages, then two large medical bills: the shortfall is the illness.
        {"months": 24, "inc_wage": 4000.0, "exp_medical_oop": medical},
        # Low wages, no shock: the shortfall is structural.
        {"months": 24, "inc_wage": 1200.0},
        # A disabled adult who cannot work and a labor shortage.
        {"months": 24, "labor_full": 1, "disabled": 1},
    )
    last = rows[rows["month"] == "2024-12"]
    features = build_features(rows, CONFIG, months=["2024-12"])
    values = pd.DataFrame(0.0, index=features.index, columns=features.columns)
    values["income_margin_12m"] = 1.0
    values["labor_ratio"] = [0.0, 0.0, 0.4]
    window = trailing_window(last, rows)
    line = np.full(len(last), CONFIG.line_for(2024, province="云南省"))
    shared = _shared_out(values, features, last, window, line, CONFIG)
    np.testing.assert_allclose(shared.sum(axis=1), values.sum(axis=1))
    ill, poor, disabled = shared.to_numpy()[:, [CODES.index("illness"), CODES.index("income"),
                                                CODES.index("disability")]]
    assert ill[0] > 0.9
    assert poor[1] == 1.0 and ill[1] == 0.0
    assert disabled[2] >= 0.4 and shared.iloc[2]["labor_shortage"] == 0.0


def test_cause_contributions_with_the_ledger_still_add_up(fitted):
    ledger, features, model = fitted
    month = ledger["month"].max()
    rows = features[(ledger.loc[features.index, "month"] == month).to_numpy()]
    shared, base = cause_contributions(model, rows, CONFIG, ledger_rows=ledger.loc[rows.index],
                                       history=ledger)
    plain, _ = cause_contributions(model, rows, CONFIG)
    np.testing.assert_allclose(shared.sum(axis=1) + base, model.decision_function(rows),
                               rtol=0, atol=1e-6)
    # Sharing moves weight from 收入偏低 to the causes, never the other way round in total.
    assert shared["income"].sum() < plain["income"].sum()
    assert shared["illness"].sum() > plain["illness"].sum()


def test_explain_household_prints_score_causes_text_measures_and_what_if(fitted, tmp_path):
    ledger, _, model = fitted
    save_model(model, tmp_path / "model")
    path = tmp_path / "ledger.parquet"
    ledger.to_parquet(path)
    month = ledger["month"].max()
    ex = explain_month(model, ledger, CONFIG, month)
    status = poverty_status(ledger, CONFIG)
    now = status[status["month"] == month].set_index("household_id")["poor"]
    above = now.index[now.eq(False).fillna(False).to_numpy(dtype=bool)]
    household = ex.loc[above, "risk_score"].idxmax()
    text = explain_household(str(path), household, model_uri=str(tmp_path / "model"))
    row = ex.loc[household]
    assert household in text and month in text
    assert f"{row['risk_score']:.1%}" in text
    assert row["reason_text_zh"] in text and row["measures_zh"] in text
    assert "welfare_job" in text or "grant" in text
    # The model's counterfactual per cause: the household's first cause, taken away, lowers
    # its risk, and the report shows the risk without it.
    without = risk_without(model, ledger[ledger["household_id"] == household], CONFIG, month)
    first = next(c for c in row[["reason_1", "reason_2", "reason_3"]] if c in without)
    assert without.loc[household, first] < row["risk_score"]
    assert "risk with each cause taken away" in text
    assert f"{without.loc[household, first]:.1%}" in text
    # Another household's broken rows, a CSV export and spaces around the id change nothing.
    broken = ledger.astype({"members": "string"})
    broken.loc[broken["household_id"] != household, "members"] = "?"
    broken.to_csv(tmp_path / "ledger.csv", index=False, encoding="utf-8-sig")
    assert explain_household(str(tmp_path / "ledger.csv"), f" {household} ",
                             model_uri=str(tmp_path / "model")) == text
    poor = now.index[now.eq(True).fillna(False).to_numpy(dtype=bool)][0]
    text = explain_household(str(path), poor, model_uri=str(tmp_path / "model"))
    assert "already below the line" in text and "risk:" not in text
    with pytest.raises(LedgerError, match="Household .nobody. is not in"):
        explain_household(str(path), "nobody", model_uri=str(tmp_path / "model"))


def test_global_plots_render_chinese_labels(fitted):
    _, features, model = fitted
    rows = features.iloc[:400]
    groups = pd.Series(np.where(np.arange(len(rows)) % 2, "甲镇", "乙镇"), index=rows.index)
    with warnings.catch_warnings():
        # Matplotlib warns of every glyph its font lacks: an empty box in the picture.
        warnings.simplefilter("error", UserWarning)
        figures = global_explanations(model, rows, CONFIG, groups=groups)
        for figure in figures.values():
            figure.canvas.draw()
    assert set(figures) == {"beeswarm_features", "bar_features", "beeswarm_causes",
                            "bar_causes", "cause_shares"}
    labels = [t.get_text() for t in figures["bar_causes"].axes[0].get_yticklabels()]
    assert "因病" in labels
    plt.close("all")


def test_cause_shares_by_township_sum_to_one(fitted):
    ledger, features, model = fitted
    rows = features.iloc[:500]
    contributions, _ = cause_contributions(model, rows, CONFIG)
    shares = cause_shares_by(contributions, ledger.loc[rows.index, "township"])
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert (shares.to_numpy() >= 0).all()
    assert set(shares.index) == set(ledger.loc[rows.index, "township"])


def test_explain_says_why_a_household_has_no_row_to_explain(tmp_path, capsys):
    from conftest import tiny_ledger

    from riskmodel.cli import main

    ledger = tiny_ledger(households=3, months=3).astype({"members": object})
    # H0000: no row for the last month; H0001: its last month's row is broken.
    ledger = ledger[~((ledger["household_id"] == "H0000") & (ledger["month"] == "2024-03"))]
    ledger.loc[(ledger["household_id"] == "H0001") & (ledger["month"] == "2024-03"),
               "members"] = 0
    path = tmp_path / "ledger.csv"
    ledger.to_csv(path, index=False)
    model = str(tmp_path / "no-model")   # never loaded: each case stops before
    with pytest.raises(LedgerError, match=r"Household 'nobody' is not in .*ledger.csv "
                                          r"\(3 households\)"):
        explain_household(str(path), "nobody", model_uri=model)
    with pytest.raises(LedgerError, match=r"Household 'H0000' has no row for 2024-03 in "
                                          r".*; its rows are for 2024-01, 2024-02\.$"):
        explain_household(str(path), "H0000", model_uri=model)
    with pytest.raises(LedgerError, match="The row of household 'H0001' for 2024-03 in .* is "
                                          r"quarantined: it breaks members_below_1 "
                                          r"\(members='0'\) and \d+ other rule"):
        explain_household(str(path), "H0001", model_uri=model)
    assert main(["explain", "--ledger", str(path), "--household", "H0002", "--month",
                 "2024-07", "--model", model]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"riskmodel explain: Household 'H0002' has no row for 2024-07 in {path}; "
                   "its rows are for 2024-01, 2024-02, 2024-03."]
