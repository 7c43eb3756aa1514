"""The final refit on every labelled month and the calibrator pooled over out-of-time blocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import small_model
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from riskmodel import load_config
from riskmodel.explain import cause_contributions
from riskmodel.model import RiskModel, candidate_cost

MONTHS = 24


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with threadpool_limits(1):
        yield


def _months_frame(n_per_month: int = 400, seed: int = 0, late_from: int = 19,
                  rate_shift_from: int | None = None):
    """Rows over 24 months; from month ``late_from`` on, the ``late`` feature drives the risk
    (before, it does not); from ``rate_shift_from`` on, every row's log-odds rise by 1."""
    rng = np.random.default_rng(seed)
    n = n_per_month * MONTHS
    month = np.repeat(np.arange(MONTHS), n_per_month)
    X = pd.DataFrame({"margin": rng.normal(size=n), "late": rng.normal(size=n),
                      "noise": rng.normal(size=n)})
    logit = -2.5 - 1.2 * X["margin"].to_numpy() + np.where(month >= late_from,
                                                           2.0 * X["late"].to_numpy(), 0.0)
    if rate_shift_from is not None:
        logit = logit + np.where(month >= rate_shift_from, 1.0, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, month + 24_000


def _model(**params) -> RiskModel:
    return RiskModel(max_iter=80, min_samples_leaf=20, validation_months=2,
                     calibration_months=3, scorecard_features=3,
                     config={"label": {"horizon_months": 2}}, **params)


def test_without_refit_the_trees_are_the_early_stopped_ones():
    X, y, months = _months_frame()
    model = _model().fit(X, y, months=months)
    assert model.n_iter_ == model.stopped_iter_ == model.gbm_.n_iter_
    assert model.refit_ is None
    assert [f["first"] for f in model.calibration_folds_] == [24_021]


def test_refit_learns_what_only_the_latest_months_show():
    X, y, months = _months_frame()
    plain = _model().fit(X, y, months=months)
    refit = _model(refit=True).fit(X, y, months=months)
    assert refit.refit_ == {"rows": len(y), "trees": refit.stopped_iter_,
                                      "first": 24_000, "last": 24_023}
    assert refit.n_iter_ == refit.stopped_iter_ == plain.stopped_iter_
    # New rows of the latest regime: only the refitted trees have seen `late` matter.
    Xn, yn, _ = _months_frame(seed=1, late_from=0)
    auc_plain = roc_auc_score(yn, plain.decision_function(Xn))
    auc_refit = roc_auc_score(yn, refit.decision_function(Xn))
    assert auc_refit > auc_plain + 0.05
    # The refit does not touch the calibrators: both fitted on the early-stopped trees.
    for method in ("isotonic", "sigmoid"):
        a, b = plain.calibrators_[method], refit.calibrators_[method]
        np.testing.assert_array_equal(a.transform(np.linspace(-6, 2, 50)),
                                      b.transform(np.linspace(-6, 2, 50)))


def test_refit_trees_scaled_by_rows():
    X, y, months = _months_frame()
    model = _model(refit=True, refit_trees="rows").fit(X, y, months=months)
    train_rows = model.slices_["train"]["rows"]
    assert model.n_iter_ == round(model.stopped_iter_ * len(y) / train_rows)
    assert model.n_iter_ > model.stopped_iter_


def test_calibration_folds_pool_out_of_time_blocks_and_keep_their_mean():
    X, y, months = _months_frame(rate_shift_from=21)
    one = _model().fit(X, y, months=months)
    three = _model(calibration_folds=3).fit(X, y, months=months)
    folds = three.calibration_folds_
    assert [(f["first"], f["last"]) for f in folds] == [(24_021, 24_023), (24_018, 24_020),
                                                        (24_015, 24_017)]
    # Each block was predicted by trees that learnt only months at least the gap before it:
    # the early-stopped trees for the latest, for the others months up to first − horizon (2).
    assert folds[0]["learnt_to"] == one.slices_["train"]["last"] == 24_018
    assert [f["learnt_to"] for f in folds[1:]] == [24_016, 24_013]
    assert all(f["trees"] == three.stopped_iter_ for f in folds)
    # The pool is those nine months, and each calibrator keeps its fall rate.
    pooled = (months >= 24_015)
    pool = three.calibration_pool_
    assert pool["rows"] == int(pooled.sum()) == sum(f["rows"] for f in folds)
    assert pool["rate"] == pytest.approx(y[pooled].mean(), abs=1e-12)
    assert pool["predicted_isotonic"] == pytest.approx(pool["rate"], abs=1e-9)
    assert pool["predicted_sigmoid"] == pytest.approx(pool["rate"], abs=1e-4)
    # The latest three months fall more often than the nine: one block follows them alone.
    assert one.calibration_pool_["rate"] == pytest.approx(y[months >= 24_021].mean())
    assert one.calibration_pool_["rate"] > pool["rate"] + 0.02
    latest = X[months >= 24_021]
    assert one.predict_proba(latest)[:, 1].mean() > three.predict_proba(latest)[:, 1].mean()


def test_folds_that_the_months_do_not_allow_are_left_out():
    X, y, months = _months_frame()
    model = _model(calibration_folds=10).fit(X, y, months=months)
    firsts = [f["first"] for f in model.calibration_folds_]
    # Blocks start at 21, 18, 15, 12, 9, 6; a block's trees need 3 months up to first − 2.
    assert firsts == [24_021, 24_018, 24_015, 24_012, 24_009, 24_006]
    assert model.calibration_folds_[-1]["learnt_to"] == 24_004


def test_calibration_gap_sets_the_months_the_fold_trees_learn():
    X, y, months = _months_frame()
    model = _model(calibration_folds=2, calibration_gap=1).fit(X, y, months=months)
    assert model.calibration_folds_[1]["learnt_to"] == 24_017
    # Without a config the gap is one month: the months before the block.
    bare = RiskModel(max_iter=40, min_samples_leaf=20, validation_months=2,
                     calibration_months=3, scorecard_features=3, calibration_folds=2)
    bare.fit(X, y, months=months)
    assert bare.calibration_folds_[1]["learnt_to"] == 24_017


def test_refit_without_months_learns_every_row():
    X, y, _ = _months_frame()
    model = _model(refit=True).fit(X, y)
    assert model.refit_ == {"rows": len(y), "trees": model.stopped_iter_}
    assert model.predict_proba(X).shape == (len(y), 2)


@pytest.mark.parametrize("params, message", [
    ({"refit_trees": "double"}, "refit_trees"),
    ({"calibration_folds": 0}, "calibration_folds"),
])
def test_bad_settings_are_refused(params, message):
    X, y, months = _months_frame(n_per_month=100)
    with pytest.raises(ValueError, match=message):
        _model(**params).fit(X, y, months=months)


def test_config_carries_the_settings_to_the_model():
    config = load_config()
    m = config.model
    model = RiskModel.from_config(config)
    assert (model.refit, model.refit_trees, model.calibration_folds, model.calibration_gap) == (
        m.refit, m.refit_trees, m.calibration_folds, m.calibration_gap)
    with pytest.raises(ValidationError, match="calibration_folds"):
        config.model.model_validate({**m.model_dump(), "calibration_folds": 0})
    with pytest.raises(ValidationError, match="refit_trees"):
        config.model.model_validate({**m.model_dump(), "refit_trees": "all"})


def test_selection_cost_counts_the_extra_fits():
    config = load_config()
    base = config.model.model_copy(update={"refit": False, "calibration_folds": 1})
    more = config.model.model_copy(update={"refit": True, "calibration_folds": 3})
    plain = candidate_cost(config.model_copy(update={"model": base}), 1_000_000)
    heavy = candidate_cost(config.model_copy(update={"model": more}), 1_000_000)
    assert heavy == pytest.approx(4 * plain)


def test_refitted_trees_explain_additively():
    config = load_config()
    ledger, features, model = small_model(seed=7, refit=True, calibration_folds=2)
    assert model.refit_ is not None
    rows = features.sample(500, random_state=2)
    contributions, base = cause_contributions(model, rows, config)
    np.testing.assert_allclose(contributions.sum(axis=1) + base, model.decision_function(rows),
                               rtol=0, atol=1e-6)
