import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodel.model import (
    EPSILON,
    add_counts,
    bin_values,
    calendar_month_shares,
    calendar_reference,
    count_bins,
    drift_report,
    expected_shares,
    psi,
    reference_bins,
)


def _reference(frame: pd.DataFrame, score: np.ndarray) -> dict:
    return {"features": {c: reference_bins(frame[c].to_numpy(), 10) for c in frame.columns},
            "score": reference_bins(score, 10), "rows": len(frame)}


def test_psi_matches_the_formula():
    expected = np.array([0.2, 0.3, 0.5])
    counts = np.array([30, 30, 40])
    actual = counts / counts.sum()
    assert psi(expected, counts) == pytest.approx(
        float(np.sum((actual - expected) * np.log(actual / expected))))
    assert psi(expected, expected * 1000) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_an_empty_bin_is_large_but_finite():
    value = psi(np.array([0.5, 0.5]), np.array([100, 0]))
    assert np.isfinite(value)
    assert value == pytest.approx((1 - 0.5) * np.log(1 / 0.5) + (EPSILON - 0.5)
                                  * np.log(EPSILON / 0.5))


def test_psi_of_nothing_counted_is_nan():
    assert np.isnan(psi(np.array([0.5, 0.5]), np.array([0, 0])))


def test_bins_agree_with_the_model_reference_bins():
    rng = np.random.default_rng(0)
    values = rng.normal(size=5000)
    values[rng.random(5000) < 0.1] = np.nan
    bins = reference_bins(values, 10)
    counts = bin_values(values, bins)
    assert counts.sum() == values.size
    np.testing.assert_allclose(counts / counts.sum(), expected_shares(bins))


def test_same_distribution_is_stable_shifted_one_drifts():
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"margin": rng.normal(0, 1, 20000), "events": rng.poisson(1, 20000)})
    reference = _reference(train, rng.random(20000))
    same = pd.DataFrame({"margin": rng.normal(0, 1, 20000), "events": rng.poisson(1, 20000)})
    moved = same.assign(margin=same["margin"] + 1.0)
    stable = drift_report(reference, count_bins(reference, same, rng.random(20000)), 0.25)
    assert not stable["drifted"].any()
    assert (stable["psi"] < 0.02).all()
    shifted = drift_report(reference, count_bins(reference, moved, rng.random(20000)), 0.25)
    flagged = shifted.set_index("name")["drifted"]
    assert bool(flagged["margin"]) and not bool(flagged["events"])


def test_a_feature_going_missing_drifts():
    rng = np.random.default_rng(2)
    train = pd.DataFrame({"wage": rng.normal(size=5000)})
    reference = _reference(train, rng.random(5000))
    month = pd.DataFrame({"wage": np.where(rng.random(5000) < 0.6, np.nan, rng.normal(size=5000))})
    table = drift_report(reference, count_bins(reference, month, None), 0.25).set_index("name")
    assert table.loc["wage", "drifted"]
    assert table.loc["wage", "missing_share"] == pytest.approx(0.6, abs=0.03)
    assert np.isnan(table.loc["score", "psi"]) and not table.loc["score", "drifted"]


def test_report_puts_the_score_first_then_features_by_psi():
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    reference = _reference(train, rng.random(3000))
    month = pd.DataFrame({"a": rng.normal(0.2, 1, 3000), "b": rng.normal(2, 1, 3000)})
    table = drift_report(reference, count_bins(reference, month, rng.random(3000)), 0.25)
    assert table["name"].tolist() == ["score", "b", "a"]
    assert table["kind"].tolist() == ["score", "feature", "feature"]


def test_report_without_counts_has_nan_psi():
    reference = _reference(pd.DataFrame({"a": [1.0, 2.0, 3.0]}), np.array([0.1, 0.2, 0.3]))
    table = drift_report(reference, None, 0.25)
    assert table["psi"].isna().all() and not table["drifted"].any()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5) | st.just(float("nan")), min_size=1, max_size=200),
       st.integers(1, 199))
def test_counts_add_up_across_chunks(values, cut):
    values = np.array(values)
    reference = {"features": {"x": reference_bins(np.linspace(-3, 3, 50), 5)},
                 "score": reference_bins(np.linspace(0, 1, 50), 5)}
    frame = pd.DataFrame({"x": values})
    whole = count_bins(reference, frame, values)
    cut = min(cut, len(values))
    parts = None
    for piece in (slice(0, cut), slice(cut, None)):
        parts = add_counts(parts, count_bins(reference, frame.iloc[piece], values[piece]))
    np.testing.assert_array_equal(parts["features"]["x"], whole["features"]["x"])
    np.testing.assert_array_equal(parts["score"], whole["score"])


def _seasonal_training(rng, years: int = 2, per_month: int = 2000):
    """Wages that drop every February (the spring festival) on top of noise."""
    months = np.repeat(np.arange(24_000, 24_000 + 12 * years), per_month)
    season = np.where(months % 12 == 1, -2.0, 0.0)
    frame = pd.DataFrame({"wage_change": rng.normal(size=months.size) + season,
                          "noise": rng.normal(size=months.size)})
    cal = months >= months.max() - 2
    reference = _reference(frame[cal], rng.random(int(cal.sum())))
    reference["calendar_months"] = calendar_month_shares(frame, months, reference["features"])
    return reference


def test_a_season_that_comes_back_is_not_drift_a_new_shift_is():
    rng = np.random.default_rng(5)
    reference = _seasonal_training(rng)
    february = pd.DataFrame({"wage_change": rng.normal(size=3000) - 2.0,
                             "noise": rng.normal(size=3000)})
    counts = count_bins(reference, february, None)
    seasonal = drift_report(reference, counts, 0.25, month="2026-02").set_index("name")
    assert seasonal.loc["wage_change", "reference"] == "calendar_month"
    assert not seasonal.loc["wage_change", "drifted"]
    assert seasonal.loc["wage_change", "psi"] < 0.05
    # Against the calibration months (October to December) the same February is far off.
    flat = drift_report(reference, counts, 0.25).set_index("name")
    assert flat.loc["wage_change", "reference"] == "calibration"
    assert flat.loc["wage_change", "drifted"]
    # A February whose wages fall further than every February before has drifted.
    worse = february.assign(wage_change=february["wage_change"] - 1.5)
    moved = drift_report(reference, count_bins(reference, worse, None), 0.25, month="2026-02")
    assert moved.set_index("name").loc["wage_change", "drifted"]
    assert not moved.set_index("name").loc["noise", "drifted"]


def test_the_score_is_always_compared_with_calibration():
    rng = np.random.default_rng(6)
    reference = _seasonal_training(rng)
    table = drift_report(reference, None, 0.25, month="2026-02").set_index("name")
    assert table.loc["score", "reference"] == "calibration"


def test_a_thin_month_of_the_year_falls_back_to_calibration():
    rng = np.random.default_rng(7)
    reference = _seasonal_training(rng, years=1, per_month=400)
    assert calendar_reference(reference, "2026-02", min_rows=1000) is None
    assert calendar_reference(reference, "2026-02", min_rows=400) is not None
    assert calendar_reference(reference, None, min_rows=1) is None
    month = pd.DataFrame({"wage_change": rng.normal(size=500) - 2.0,
                          "noise": rng.normal(size=500)})
    table = drift_report(reference, count_bins(reference, month, None), 0.25,
                         month="2026-02", min_rows=1000)
    assert set(table["reference"]) == {"calibration"}
