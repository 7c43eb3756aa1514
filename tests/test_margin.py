"""The lowest-margin model: paths from the ledger, lifted falls, monotone prices, no peeking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel import load_config, validate_ledger
from riskmodel.model import make_labels, poverty_status
from riskmodel.plan import LowestMarginModel, falls_under, margin_paths, training_rows
from riskmodel.plan import _margin as margin_module
from riskmodel.synthetic import generate_ledger


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def ledger():
    return validate_ledger(generate_ledger(households=150, months=30, seed=11)).valid


def test_paths_are_the_next_months_margins(ledger, config):
    paths = margin_paths(ledger, config)
    status = poverty_status(ledger, config)
    margin = (status["income_pc"] - status["line"]).to_numpy()
    same_household = ledger["household_id"].to_numpy()
    # Row i's column k − 1 is row i + k's margin when that row is the same household k months on.
    for k in range(1, 7):
        nxt = np.arange(len(ledger)) + k
        ok = nxt < len(ledger)
        ok[ok] &= same_household[nxt[ok]] == same_household[ok]
        np.testing.assert_array_equal(paths[ok, k - 1], margin[nxt[ok]])
    last = (ledger["month"] == ledger["month"].max()).to_numpy()
    assert np.isnan(paths[last]).all()


def test_falls_without_help_are_the_label(ledger, config):
    paths = margin_paths(ledger, config)
    labels = make_labels(ledger, config)
    rows = labels["target"].notna().to_numpy() & ~np.isnan(paths).all(axis=1)
    np.testing.assert_array_equal(falls_under(paths[rows]).astype(float),
                                  labels["target"].to_numpy()[rows])


def test_lifted_falls():
    paths = np.array([[500.0, -300.0, 200.0], [-100.0, -900.0, np.nan], [np.nan] * 3])
    assert falls_under(paths).tolist() == [True, True, False]
    assert falls_under(paths, step=np.array([300.0, 300.0, 0.0])).tolist() == [False, True, False]
    # A ramp of 350 a month lifts month 2 by 700: enough for the first path, not the second.
    assert falls_under(paths, ramp=np.array([350.0, 350.0, 0.0])).tolist() == [False, True, False]
    # Month 2 of the second path lifted by 500 + 2 × 200 reaches the line exactly: no fall.
    assert falls_under(paths, step=np.array([0.0, 500.0, 0.0]),
                       ramp=np.array([0.0, 200.0, 0.0])).tolist() == [True, False, False]


def test_training_rows_are_falls_and_read_nothing_after_the_month(ledger, config):
    month = "2023-12"
    features, paths, households = training_rows(ledger, config, month)
    months = ledger.loc[features.index, "month"]
    assert months.max() <= "2023-06"
    assert falls_under(paths).all()
    assert (ledger.loc[features.index, "household_id"].to_numpy() == households).all()
    later = ledger[ledger["month"] > month].copy()
    later["inc_wage"] = -1e5
    changed = pd.concat([ledger[ledger["month"] <= month], later]).sort_values(
        ["household_id", "month"])
    features2, paths2, _ = training_rows(changed, config, month)
    pd.testing.assert_frame_equal(features, features2)
    np.testing.assert_array_equal(paths, paths2)


def test_training_rows_sample_within_the_cap(ledger, config):
    features, paths, households = training_rows(ledger, config, "2024-06", max_rows=40)
    every, every_paths, _ = training_rows(ledger, config, "2024-06")
    assert len(features) == 40 < len(every)
    assert features.index.isin(every.index).all()
    # Built month by month for the sampled households only, the features are the same.
    pd.testing.assert_frame_equal(features, every.loc[features.index])
    np.testing.assert_array_equal(paths, every_paths[every.index.get_indexer(features.index)])
    assert (ledger.loc[features.index, "household_id"].to_numpy() == households).all()


def test_model_prices_lifts_it_was_never_shown():
    # Falls dip a known, exponential depth below the line: the share a lift prevents is known.
    rng = np.random.default_rng(1)
    n = 12_000
    scale = rng.choice([500.0, 2000.0], n)
    margin = rng.uniform(-500, 3000, n)
    depth = rng.exponential(scale)
    paths = (np.minimum(margin, 0) - depth)[:, None] + np.zeros((n, 6))
    X = pd.DataFrame({"shock_scale": scale})
    model = LowestMarginModel(max_iter=80, learning_rate=0.2).fit(X, paths)
    grid = pd.DataFrame({"shock_scale": np.repeat([500.0, 2000.0], 4)})
    steps = np.tile([250.0, 500.0, 1000.0, 2000.0], 2)
    got = model.prevented_share(grid, step=steps)
    np.testing.assert_allclose(got, 1 - np.exp(-steps / grid["shock_scale"].to_numpy()),
                               atol=0.05)
    assert np.all(np.diff(got[:4]) >= 0) and np.all(np.diff(got[4:]) >= 0)
    # A ramp of r a month lifts the lowest month (the first) by r only.
    ramp = model.prevented_share(grid.iloc[[4]], ramp=np.array([1000.0]))
    assert ramp[0] == pytest.approx(1 - np.exp(-0.5), abs=0.06)
    assert model.prevented_share(grid.iloc[:2]).tolist() == [0.0, 0.0]
    assert model.n_falls_ == n


def test_prevented_share_in_blocks_equals_one_pass(monkeypatch):
    rng = np.random.default_rng(3)
    n = 3_000
    scale = rng.choice([500.0, 2000.0], n)
    paths = (-rng.exponential(scale))[:, None] + np.zeros((n, 6))
    X = pd.DataFrame({"shock_scale": scale})
    model = LowestMarginModel(max_iter=30, learning_rate=0.2).fit(X, paths)
    step = rng.uniform(0, 3000, n)
    step[::7] = 0.0
    whole = model.prevented_share(X, step=step)
    monkeypatch.setattr(margin_module, "PREDICT_ROWS", 256)
    blocks = model.prevented_share(X, step=step)
    assert np.array_equal(blocks, whole)
    assert np.all(whole[::7] == 0.0) and np.all(whole[1::7] > 0.0)


def test_refuses_what_it_cannot_learn_from():
    X = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="shape"):
        LowestMarginModel().fit(X, np.zeros((3, 6)))
    with pytest.raises(ValueError, match="falling rows"):
        LowestMarginModel().fit(pd.DataFrame({"a": np.arange(50.0)}), np.ones((50, 6)))
