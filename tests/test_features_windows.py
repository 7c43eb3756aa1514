"""Window sums month by month are numpy's row sums of the block to the last bit, and a grid
gives the same windows in both layouts, laid out or read in place."""

from __future__ import annotations

import numpy as np
import pytest

from riskmodel.model._grid import Grid, ObservedMonths, window_count, window_sum


def _awkward(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Magnitudes far apart (so the order of the additions shows), zeros of both signs, and a
    few infinities."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * 10.0 ** rng.integers(-12, 13, shape)
    values[rng.random(shape) < 0.1] = 0.0
    values[rng.random(shape) < 0.1] = -0.0
    values[rng.random(shape) < 0.001] = np.inf
    return values


@pytest.mark.parametrize("w", [1, 2, 3, 6, 7, 8, 9, 12])
def test_window_sum_is_the_row_sum_to_the_bit(w):
    block = _awkward((50_000, 12), seed=w)
    expected = block[:, -w:].sum(axis=1)
    got = window_sum(np.ascontiguousarray(block.T), w)
    np.testing.assert_array_equal(got.view("uint64"), expected.view("uint64"))
    all_negative_zero = np.full((12, 3), -0.0)
    assert not np.signbit(window_sum(all_negative_zero, w)).any()  # 0.0 + ..., as numpy


def test_window_count_counts_flags_and_whole_numbers():
    rng = np.random.default_rng(1)
    flags = rng.random((12, 1000)) < 0.3
    for w in (3, 6, 12):
        np.testing.assert_array_equal(window_count(flags, w), flags[-w:].sum(axis=0))
        counts = rng.poisson(2.0, (12, 1000)).astype("int16")
        np.testing.assert_array_equal(window_count(counts, w), counts[-w:].sum(axis=0))


def test_observed_months_slope_and_spread_as_computed_on_the_block():
    rng = np.random.default_rng(2)
    obs = rng.random((5000, 12)) < 0.8
    values = _awkward((5000, 12), seed=3)
    values[~np.isfinite(values)] = 1.0
    values *= obs
    x = np.arange(12, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        n = obs.sum(axis=1, dtype="float64")
        dx = (x - ((obs * x).sum(axis=1) / n)[:, None]) * obs
        dy = (values - ((obs * values).sum(axis=1) / n)[:, None]) * obs
        slope = (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)
        spread = np.sqrt((dy * dy).sum(axis=1) / (n - 1))
    got = ObservedMonths(np.ascontiguousarray(obs.T)).slope_and_spread(
        np.ascontiguousarray(values.T))
    np.testing.assert_array_equal(got[0].view("uint64"), slope.view("uint64"))
    np.testing.assert_array_equal(got[1].view("uint64"), spread.view("uint64"))


def test_a_full_grid_read_in_place_gives_the_windows_laid_out():
    households, width = 7, 24
    house = np.repeat(np.arange(households), width)
    col = np.tile(np.arange(width), households)
    is_target = col == width - 1
    full = Grid(house, col, width, is_target)
    assert full.full
    # The same cells given with one row missing: laid out on a grid, the gap read as ``fill``.
    gap = np.ones(len(house), dtype=bool)
    gap[15] = False
    laid = Grid(house[gap], col[gap], width, is_target[gap])
    assert not laid.full
    rng = np.random.default_rng(4)
    values, flags = rng.random(len(house)), rng.random(len(house)) < 0.5
    for recent in (False, True):
        at = full.recent if recent else slice(None)
        block = full.block(values[at], recent=recent)
        assert block.shape == (households, 12) and block.flags.c_contiguous
        np.testing.assert_array_equal(full.months(values[at], recent=recent), block.T)
        assert full.months(values[at], recent=recent).flags.c_contiguous
        assert full.block(flags[at], recent=recent).dtype == bool
        part = laid.recent if recent else slice(None)
        expected = block.copy()
        expected[0, 15 - 12] = np.nan
        np.testing.assert_array_equal(
            laid.months(values[gap][part], recent=recent, fill=np.nan), expected.T)
        np.testing.assert_array_equal(
            laid.months(flags[gap][part], recent=recent),
            np.where(np.isnan(expected), False, full.block(flags[at], recent=recent)).T)
