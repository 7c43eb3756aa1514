"""The lowest-margin model: paths from the ledger, lifted falls, monotone prices, no peeking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel import load_config, validate_ledger
from riskmodel.labels import make_labels, poverty_status
from riskmodel.margin import LowestMarginModel, falls_under, margin_paths, training_rows
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


def test_training_rows_read_nothing_after_the_month(ledger, config):
    month = "2023-12"
    features, paths = training_rows(ledger, config, month)
    months = ledger.loc[features.index, "month"]
    assert months.max() <= "2023-06"
    later = ledger[ledger["month"] > month].copy()
    later["inc_wage"] = -1e5
    changed = pd.concat([ledger[ledger["month"] <= month], later]).sort_values(
        ["household_id", "month"])
    features2, paths2 = training_rows(changed, config, month)
    pd.testing.assert_frame_equal(features, features2.loc[features.index])
    np.testing.assert_array_equal(paths, paths2)


def test_model_prices_a_step_it_was_never_shown():
    # Paths that dip by a known amount below today's margin: P(fall | step) is known exactly.
    rng = np.random.default_rng(1)
    n = 20_000
    margin = rng.uniform(-500, 4000, n)
    dip = rng.exponential(1500, n)
    paths = (margin - dip)[:, None] + np.zeros((n, 6))
    X = pd.DataFrame({"income_margin_12m": margin})
    model = LowestMarginModel(max_iter=150, monotonic={"income_margin_12m": -1}).fit(X, paths)
    grid = pd.DataFrame({"income_margin_12m": np.full(5, 1000.0)})
    steps = np.array([0.0, 250.0, 500.0, 1000.0, 2000.0])
    got = model.fall_probability(grid, step=steps)
    expected = np.exp(-(1000.0 + steps) / 1500)
    assert np.all(np.diff(got) <= 1e-12)
    np.testing.assert_allclose(got, expected, atol=0.05)
    # A ramp of r a month lifts the lowest month (the first) by r only.
    ramp = model.fall_probability(grid.iloc[:1], ramp=np.array([500.0]))
    assert ramp[0] == pytest.approx(np.exp(-1500.0 / 1500), abs=0.06)


def test_refuses_paths_that_do_not_fit():
    X = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="shape"):
        LowestMarginModel().fit(X, np.zeros((3, 6)))
    with pytest.raises(ValueError, match="one outcome"):
        LowestMarginModel().fit(pd.DataFrame({"a": np.arange(50.0)}), np.ones((50, 6)))
