"""Explanations: TreeSHAP per cause, consistency rules, reason text, measures."""

from __future__ import annotations

import unicodedata
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shap
from conftest import household_rows, households, small_model

from riskmodel import ConfigError, LedgerError, load_config, validate_ledger
from riskmodel.explain import (
    cause_contributions,
    cause_matrix,
    cause_shares_by,
    explain_household,
    explain_households,
    explain_month,
    explain_one,
    feature_contributions,
    format_yuan,
    global_explanations,
    household_facts,
    rank_causes,
    reason_texts,
    render_household,
    risk_without,
    suggested_measures,
    sum_by_cause,
    trailing_window,
    valid_causes,
    what_if,
)
from riskmodel.explain._causes import _shared_out
from riskmodel.model import build_features, poverty_status, save_model

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
        # Nobody works; medical bills without an ill member or a recorded illness: no 因病.
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
        [False, True, False, False],
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


@pytest.mark.parametrize("empty", [None, np.nan])
def test_measures_of_one_household_with_one_cause(empty):
    # A slot empty for every household (one household's second slot) is no cause.
    codes = np.array([["illness", empty, empty]], dtype=object)
    measures = suggested_measures(codes, np.array([True]), CONFIG)
    assert measures.tolist() == ["、".join(CONFIG.cause_by_code["illness"].measures_zh)]
    nothing = suggested_measures(np.array([[None, None]], dtype=object), np.array([True]), CONFIG)
    assert nothing.tolist() == [""]


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
    household, ex = _at_risk_household(ledger, model, month)
    text = explain_household(str(path), household, model_uri=str(tmp_path / "model"))
    row = ex.loc[household]
    assert household in text and month in text
    assert f"{row['risk_score']:.1%}" in text
    assert row["reason_text_zh"] in text and row["measures_zh"] in text
    assert "公益性岗位" in text or "一次性救助金" in text
    # The model's counterfactual per cause: the report shows the risk without the household's
    # first cause that has one (equal to the risk now where the cause took nothing from it).
    without = risk_without(model, ledger[ledger["household_id"] == household], CONFIG, month)
    first = next(c for c in row[["reason_1", "reason_2", "reason_3"]] if c in without)
    assert "risk with each cause taken away" in text
    assert f"{without.loc[household, first]:.1%}" in text
    # Across the month's households at risk, the first cause given back lowers the risk of
    # most (a cause that took nothing leaves it, a few give back what raises it).
    every = risk_without(model, ledger, CONFIG, month)
    above = _households(ledger, month, poor=False)
    at_risk = ex.loc[above][ex.loc[above, "risk_score"] > 0.2]
    moves = []
    for hh, r in at_risk.iterrows():
        cause = next((c for c in r[["reason_1", "reason_2", "reason_3"]] if c in every), None)
        if cause is not None:
            moves.append(every.loc[hh, cause] - r["risk_score"])
    assert len(moves) >= 20 and np.mean(np.array(moves) < 0) >= 0.8
    # Another household's broken rows, a CSV export and spaces around the id change nothing.
    broken = ledger.astype({"members": "string"})
    broken.loc[broken["household_id"] != household, "members"] = "?"
    broken.to_csv(tmp_path / "ledger.csv", index=False, encoding="utf-8-sig")
    assert explain_household(str(tmp_path / "ledger.csv"), f" {household} ",
                             model_uri=str(tmp_path / "model")) == text
    poor = _households(ledger, month, poor=True)[0]
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


def _households(ledger, month, *, poor: bool) -> pd.Index:
    """The households the ledger shows poor (or not poor) at the month, by its observed months."""
    status = poverty_status(ledger, CONFIG)
    now = status[status["month"] == month].set_index("household_id")["poor"]
    return now.index[now.eq(poor).fillna(False).to_numpy(dtype=bool)]


def _at_risk_household(ledger, model, month):
    ex = explain_month(model, ledger, CONFIG, month)
    return ex.loc[_households(ledger, month, poor=False), "risk_score"].idxmax(), ex


def test_a_household_explained_alone_gets_the_reasons_of_its_month(fitted):
    # To the last bit: the counterfactual, the sharing and the passing of weights read each
    # row alone, whichever households are explained with it.
    ledger, _, model = fitted
    month = ledger["month"].max()
    ex = explain_month(model, ledger, CONFIG, month)
    scored = _households(ledger, month, poor=False)
    for household in ex.loc[scored, "risk_score"].nlargest(20).index:
        e = explain_one(ledger, model, household)
        assert e.scored, household
        row = ex.loc[household]
        assert list(e.reasons["cause"]) == [c for c in row[["reason_1", "reason_2", "reason_3"]]
                                            if pd.notna(c)], household
        weights = row[[f"reason_{j}_weight" for j in e.reasons.index]].to_numpy(dtype=float)
        np.testing.assert_array_equal(e.reasons["weight"].to_numpy(dtype=float), weights,
                                      err_msg=household)


def test_explain_one_gives_the_explanation_as_data(fitted, tmp_path):
    ledger, _, model = fitted
    month = ledger["month"].max()
    household, ex = _at_risk_household(ledger, model, month)
    e = explain_one(ledger, model, household)
    row = ex.loc[household]
    assert (e.household_id, e.month, e.scored, e.not_scored_reason) == (household, month,
                                                                        True, None)
    assert e.risk_score == row["risk_score"]
    assert e.risk_tier == CONFIG.tiers.assign([row["risk_score"]])[0]
    assert list(e.reasons["cause"]) == [c for c in row[["reason_1", "reason_2", "reason_3"]]
                                        if pd.notna(c)]
    np.testing.assert_array_equal(e.reasons["weight"], row[[f"reason_{j}_weight"
                                                            for j in e.reasons.index]])
    assert e.reasons.loc[1, "name_zh"] == CONFIG.cause_by_code[row["reason_1"]].name_zh
    assert ",".join(e.risk_causes) == row["risk_causes"]
    assert (e.reason_text_zh, e.reason_text_en) == (row["reason_text_zh"],
                                                    row["reason_text_en"])
    assert "、".join(e.measures_zh) == row["measures_zh"]
    mine = ledger[ledger["household_id"] == household]
    expected = what_if(model, mine, CONFIG, month).drop(columns="household_id")
    pd.testing.assert_frame_equal(e.what_if, expected.reset_index(drop=True))
    pd.testing.assert_series_equal(e.risk_without,
                                   risk_without(model, mine, CONFIG, month).iloc[0],
                                   check_names=False)
    # The text is the command's report: one implementation for both.
    save_model(model, tmp_path / "model")
    ledger.to_parquet(tmp_path / "ledger.parquet")
    assert str(e) == e.to_text() == explain_household(str(tmp_path / "ledger.parquet"),
                                                      household,
                                                      model_uri=str(tmp_path / "model"))
    assert household in repr(e) and "what_if" not in repr(e)
    # A ValidationResult, an id with spaces and an earlier month are taken too.
    earlier = sorted(ledger["month"].unique())[-2]
    result = validate_ledger(ledger[ledger["household_id"] == household])
    before = explain_one(result, model, f" {household} ", month=earlier, config=CONFIG)
    assert before.month == earlier
    assert before.risk_score == explain_month(model, ledger, CONFIG, earlier).loc[
        household, "risk_score"]


def test_a_household_new_this_month_says_it_has_too_little_history(fitted, tmp_path, capsys):
    from riskmodel.cli import main
    from riskmodel.scoring import score_frame

    ledger, _, model = fitted
    month = ledger["month"].max()
    last = ledger[ledger["month"] == month]
    # Two households first recorded this month, as a county adds them: one with nothing
    # amiss, one in unsafe housing (a hard trigger, whatever the score).
    new = last.iloc[:2].copy()
    new["household_id"] = ["N1", "N2"]
    new["housing_safe"] = [True, False]
    extended = pd.concat([ledger, new], ignore_index=True)
    scores = score_frame(extended[extended["household_id"].isin(["N1", "N2"])], model, CONFIG,
                         month).scores.set_index("household_id")
    path = tmp_path / "ledger.parquet"
    extended.to_parquet(path)
    save_model(model, tmp_path / "model")
    for household, fired in [("N1", ()), ("N2", ("housing_unsafe",))]:
        e = explain_one(extended, model, household)
        assert (e.scored, e.not_scored_reason, e.observed_months) == (
            False, "insufficient_history", 1)
        assert np.isnan(e.risk_score) and e.risk_tier is None and e.reasons.empty
        assert e.what_if.empty and e.risk_without.empty
        # The same hard triggers and reason as the monthly job's scores.parquet.
        assert e.rule_triggers == fired
        assert ";".join(e.rule_triggers) == scores.loc[household, "rule_triggers"]
        assert e.not_scored_reason == scores.loc[household, "not_scored_reason"]
        assert e.on_watchlist == bool(scores.loc[household, "on_watchlist"])
        text = explain_household(str(path), household, model_uri=str(tmp_path / "model"))
        assert text == str(e)
        assert "flagged by rule" not in text
        assert ("too little history to score: 1 month(s) of income observed in the last 12, "
                f"the model needs {CONFIG.label.min_observed_months}") in text
    assert "rules fired: 无 none; 未列入监测预警名单 not on the watch list" in str(
        explain_one(extended, model, "N1"))
    assert "rules fired: housing_unsafe; 列入监测预警名单 on the watch list" in str(
        explain_one(extended, model, "N2"))
    assert main(["explain", "--ledger", str(path), "--household", "N1", "--model",
                 str(tmp_path / "model")]) == 0
    assert "rules fired: 无 none" in capsys.readouterr().out


def test_a_household_under_the_line_names_the_trigger_that_lists_it(fitted):
    ledger, _, model = fitted
    month = ledger["month"].max()
    poor = _households(ledger, month, poor=True)[0]
    e = explain_one(ledger, model, poor)
    assert (e.scored, e.not_scored_reason) == (False, "poor_now")
    assert "income_below_line" in e.rule_triggers and e.on_watchlist
    assert e.income_pc < e.poverty_line
    assert "already below the line" in str(e) and "income_below_line" in str(e)
    # With the trigger turned off in the config, nothing is said to have fired for it.
    off = CONFIG.model_copy(update={
        "triggers": CONFIG.triggers.model_copy(update={"income_below_line": False})})
    assert "income_below_line" not in explain_one(ledger, model, poor, config=off).rule_triggers


def test_explain_one_says_why_a_household_has_no_row_to_explain():
    from conftest import tiny_ledger

    ledger = tiny_ledger(households=3, months=3).astype({"members": object})
    ledger = ledger[~((ledger["household_id"] == "H0000") & (ledger["month"] == "2024-03"))]
    ledger.loc[(ledger["household_id"] == "H0001") & (ledger["month"] == "2024-03"),
               "members"] = 0
    result = validate_ledger(ledger)
    # Every case stops before the model is used.
    with pytest.raises(LedgerError, match=r"Household 'nobody' is not in the ledger "
                                          r"\(3 households\)"):
        explain_one(result, None, "nobody")
    with pytest.raises(LedgerError, match=r"Household 'H0000' has no row for 2024-03 in the "
                                          r"ledger; its rows are for 2024-01, 2024-02\.$"):
        explain_one(result.valid, None, "H0000")
    with pytest.raises(LedgerError, match=r"The row of household 'H0001' for 2024-03 in the "
                                          r"ledger is quarantined: it breaks members_below_1"):
        explain_one(result, None, "H0001")
    # Without the quarantine, the row is only missing.
    with pytest.raises(LedgerError, match=r"Household 'H0001' has no row for 2024-03"):
        explain_one(result.valid, None, "H0001")
def test_the_household_report_names_measures_and_causes_in_chinese():
    row = pd.Series({
        "month": "2024-12", "risk_score": 0.31, "reason_1": "employment",
        "reason_1_weight": 0.8, "reason_2": "business", "reason_2_weight": 0.2,
        "reason_3": None, "reason_3_weight": np.nan, "risk_causes": "employment,business",
        "reason_text_zh": "因务工就业不稳：……", "reason_text_en": "unstable employment: …",
        "measures_zh": "就业帮扶、公益性岗位",
    })
    options = pd.DataFrame({"household_id": "H1",
                            "measure": ["welfare_job", "dibao", "grant_500"],
                            "cost": [6000.0, 3600.0, 500.0], "risk_before": 0.31,
                            "risk_after": [0.2, 0.25, 0.3]})
    options["risk_change"] = options["risk_after"] - options["risk_before"]
    text = render_household("H1", row, options, CONFIG)
    what_if = text.split("what-if")[1].splitlines()[1:]
    names = {m.code: m.name_zh for m in CONFIG.measures}
    assert [line.split()[0] for line in what_if] == [names["welfare_job"], names["dibao"],
                                                     "一次性救助金"]
    assert "500 元" in what_if[2]
    assert not any(code in text for code in ("welfare_job", "dibao", "grant_500"))
    assert "风险类型 risk causes: 因务工就业不稳、因产业失败" in text and "高风险" in text
    # The cost column lines up in a terminal, where a Chinese character fills two columns.
    columns = {sum(1 + (unicodedata.east_asian_width(ch) == "W")
                   for ch in line[:line.rindex(" 元")]) for line in what_if}
    assert len(columns) == 1
