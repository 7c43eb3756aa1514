"""Rolling-origin splits, caseload metrics, calibration metrics and the backtest itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from riskmodel import load_config
from riskmodel.model import (
    SHOCK_FEATURES,
    backtest,
    caseload_hits,
    expected_calibration_error,
    model_features,
    plot_calibration,
    plot_caseload,
    plot_precision_recall,
    reliability_table,
    scorer_metrics,
    time_splits,
)
from riskmodel.months import month_index

MONTHS = [f"{2023 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}" for m in range(1, 25)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The trees' OpenMP threads crawl when the machine's cores are busy with other work.
    with threadpool_limits(1):
        yield


@pytest.mark.parametrize("embargo", [True, False])
@pytest.mark.parametrize("horizon", [1, 3, 6])
def test_time_splits_never_leak(embargo, horizon):
    rng = np.random.default_rng(horizon)
    months = rng.choice(MONTHS, size=3000)
    splits = time_splits(months, origins=3, test_months=2, horizon=horizon,
                         label_embargo=embargo)
    idx = month_index(pd.Series(months))
    assert [s.origin for s in splits] == ["2024-07", "2024-09", "2024-11"]
    tested = set()
    for split in splits:
        assert not set(split.train) & set(split.test)
        first_test = idx[split.test].min()
        last_train = idx[split.train].max()
        # Every training label is realised before the first prediction month with the
        # embargo; without it, training rows still all precede the prediction months.
        assert last_train + (horizon if embargo else 1) <= first_test
        assert last_train == first_test - (horizon if embargo else 1)
        assert set(split.test) == set(np.flatnonzero(np.isin(idx, np.unique(idx[split.test]))))
        assert len(np.unique(idx[split.test])) == 2
        assert not tested & set(split.test)
        tested |= set(split.test)
        assert split.train_last == MONTHS[MONTHS.index(split.origin) - (horizon if embargo
                                                                           else 1)]
    assert max(idx[list(tested)]) == idx.max()


def test_time_splits_skip_origins_without_history():
    months = np.repeat(MONTHS[:4], 5)
    splits = time_splits(months, origins=3, horizon=2)
    assert [s.origin for s in splits] == ["2023-03", "2023-04"]
    assert splits[0].train.tolist() == list(range(5))


def test_caseload_hits_visits_the_top_share_of_each_month():
    score = np.array([0.9, 0.8, 0.1, 0.2, 0.5, 0.3, 0.7, 0.6, 0.4, 0.05])
    month = np.array([0] * 5 + [1] * 5)
    hits = caseload_hits(score, month, 0.4)
    assert hits.tolist() == [1, 1, 0, 0, 0, 0, 1, 1, 0, 0]
    tie = caseload_hits(np.zeros(4), np.zeros(4), 0.5, tiebreak=np.array([1, 4, 3, 2.0]))
    assert tie.tolist() == [0, 1, 1, 0]
    # Without a tie-break, rows tied at the cut share the places left.
    shared = caseload_hits(np.array([3, 2, 2, 2, 2, 1.0]), np.zeros(6), 0.5)
    assert shared.tolist() == [1, 0.5, 0.5, 0.5, 0.5, 0]
    # A household drawn twice by the bootstrap fills two places; one not drawn fills none.
    weighted = caseload_hits(score[:5], month[:5], 0.4, weight=np.array([1.0, 0, 1, 1, 1]))
    assert weighted.tolist() == [1, 0, 0, 0, 1]
    twice = caseload_hits(score[:5], month[:5], 0.4, weight=np.array([2.0, 0, 1, 1, 1]))
    assert twice.tolist() == [1, 0, 0, 0, 0]


def test_scorer_metrics_on_a_hand_built_month():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    rank = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1.0])
    m = scorer_metrics(y, None, rank, np.zeros(10), caseloads=(0.2, 0.3))
    assert m["recall_at_20pct"] == pytest.approx(1 / 3)
    assert m["precision_at_20pct"] == pytest.approx(1 / 2)
    assert m["recall_at_30pct"] == pytest.approx(2 / 3)
    assert m["observed_rate"] == pytest.approx(0.3)
    assert "brier" not in m
    assert 0.5 < m["auc"] < 1


def test_calibration_metrics():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.3, 200_000)
    y = (rng.random(p.size) < p).astype(float)
    assert expected_calibration_error(y, p) < 0.003
    assert expected_calibration_error(y, p * 2) > 0.1
    table = reliability_table(y, p, 10)
    assert len(table) == 10 and table["rows"].sum() == p.size
    assert np.allclose(table["mean_predicted"], table["observed"], atol=0.01)
    assert table["mean_predicted"].is_monotonic_increasing


def _features(n_house: int = 600, seed: int = 0):
    """A features frame over 16 months: low income, shocks and a wage drop raise the risk."""
    rng = np.random.default_rng(seed)
    months = np.tile(MONTHS[:16], n_house)
    house = np.repeat(np.arange(n_house), 16)
    level = np.repeat(rng.lognormal(0.7, 0.4, n_house), 16)
    ratio = level * rng.lognormal(0, 0.1, months.size)
    since = rng.integers(0, 30, (months.size, len(SHOCK_FEATURES))).astype(float)
    frame = pd.DataFrame(since, columns=SHOCK_FEATURES)
    frame["income_ratio_12m"] = ratio
    frame["medical_pc_12m"] = rng.exponential(500, months.size)
    frame["members"] = 4.0
    frame["wage_change_3v12"] = rng.normal(0, 1, months.size)
    logit = (-2.0 - 1.5 * (ratio - 1.5) + 1.0 * (since.min(axis=1) < 3)
             - 1.5 * frame["wage_change_3v12"].to_numpy())
    y = (rng.random(months.size) < 1 / (1 + np.exp(-logit))).astype(float)
    groups = pd.DataFrame({"county": np.where(house % 2, "甲县", "乙县"),
                           "household_type": "general"})
    true_risk = np.where(months == MONTHS[15], 1 / (1 + np.exp(-logit)), np.nan)
    return frame, y, months, house, groups, true_risk


def _config(**backtest):
    config = load_config()
    return config.model_copy(update={
        "model": config.model.model_copy(update={
            "max_iter": 30, "min_samples_leaf": 20, "validation_months": 2,
            "calibration_months": 2, "scorecard_features": 3}),
        "backtest": config.backtest.model_copy(update={
            "origins": 2, "bootstrap": 20, "min_group_rows": 100, **backtest}),
    })


@pytest.fixture(scope="module")
def result():
    frame, y, months, house, groups, true_risk = _features()
    return backtest(frame, y, months, _config(), households=house, groups=groups,
                    true_risk=true_risk)


def test_backtest_compares_model_rules_and_truth(result):
    assert [s.origin for s in result.splits] == [MONTHS[14], MONTHS[15]]
    assert result.calibration in ("isotonic", "sigmoid")
    pooled = result.metrics[result.metrics["origin"] == "all"].set_index("scorer")
    assert set(pooled.index) == {"model", "scorecard", "rules", "rules_income", "truth"}
    # The model learns the income gradient the rules only cut at 1.5× the line.
    assert pooled.loc["model", "auc"] > pooled.loc["rules", "auc"]
    assert pooled.loc["truth", "rows"] == 600
    assert pooled.loc["model", "rows"] == 1200
    for share in ("2pct", "5pct", "10pct"):
        assert 0 <= pooled.loc["model", f"recall_at_{share}"] <= 1
    assert result.predictions["model"].equals(result.predictions[f"model_{result.calibration}"])
    assert "_household" not in result.predictions.columns


def test_backtest_intervals_bracket_the_pooled_figures(result):
    pooled = result.pooled("model")
    ci = result.intervals.set_index(["scorer", "metric"])
    for metric in ("auc", "recall_at_5pct", "brier"):
        low, high = ci.loc[("model", metric), ["low", "high"]]
        assert low <= high
        assert low - 0.05 <= pooled[metric] <= high + 0.05


def test_backtest_by_group_and_summary(result):
    by = result.by_group
    assert set(by["value"]) == {"甲县", "乙县", "general"}
    assert set(by["scorer"]) <= {"model", "rules", "rules_income", "truth"}
    summary = result.summary()
    assert summary["recall_lift_over_rules_at_5pct"] == pytest.approx(
        summary["model_recall_at_5pct"] / summary["rules_recall_at_5pct"])
    assert summary["origins"] == 2
    table = result.table()
    assert list(table.columns) == ["model", "scorecard", "rules", "rules_income", "truth"]
    assert np.isnan(table.loc["brier", "rules_income"])
    assert "recall_at_5pct" in table.index


def test_backtest_plots(result):
    for plot in (plot_calibration, plot_caseload, plot_precision_recall):
        fig = plot(result)
        assert fig.axes and fig.axes[0].get_lines()


def test_excluded_features_stay_out_of_the_model():
    frame, *_ = _features(10)
    config = _config()
    config = config.model_copy(update={"model": config.model.model_copy(
        update={"exclude_features": ["medical_pc_12m"]})})
    assert "medical_pc_12m" not in model_features(frame.columns, config)
    assert "income_ratio_12m" in model_features(frame.columns, config)


def test_fast_ranking_metrics_match_scikit_learn_with_ties_and_weights():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(5)
    y = (rng.random(3000) < 0.1).astype(float)
    score = np.round(rng.random(3000) + y * 0.3, 1)  # coarse: many ties
    w = rng.integers(0, 3, 3000).astype(float)
    m = scorer_metrics(y, None, score, np.zeros(3000), (0.05,), weight=w)
    assert m["auc"] == pytest.approx(roc_auc_score(y, score, sample_weight=w))
    assert m["ap"] == pytest.approx(average_precision_score(y, score, sample_weight=w))
    hit = caseload_hits(score, np.zeros(3000), 0.05, weight=w)
    assert m["recall_at_5pct"] == pytest.approx((w * y * hit).sum() / (w * y).sum())
    p = rng.uniform(0, 0.3, 3000)
    assert scorer_metrics(y, p, p, np.zeros(3000), (0.05,))["ece"] == pytest.approx(
        expected_calibration_error(y, p))
