"""How the cells of a text column are numbered: by runs of equal neighbours where the rows run
in household order, by hashing every cell otherwise; the same codes either way."""

import numpy as np
import pandas as pd
import pytest

from riskmodel.ledger._cells import _factorized, _run_starts, parse_months


def _expected(series: pd.Series) -> tuple[np.ndarray, list]:
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, pd.Series(uniques, dtype=object).tolist()


@pytest.mark.parametrize("dtype", ["str", "string"])
def test_runs_number_the_cells_as_factorizing_every_cell(dtype):
    rng = np.random.default_rng(0)
    values = np.repeat(rng.choice(["H1", "H2", "Ｈ3", " H1", "", "nan", None], size=400), 24)
    series = pd.Series(values, dtype=dtype)
    assert _run_starts(series) is not None
    codes, uniques = _factorized(series)
    expected_codes, expected_uniques = _expected(series)
    np.testing.assert_array_equal(codes, expected_codes)
    assert uniques.tolist() == expected_uniques
    assert uniques.dtype == object


def test_empty_cells_between_equal_values_keep_their_own_code():
    series = pd.Series(["A"] * 10 + [None] * 10 + ["A"] * 10 + [None] * 10, dtype="str")
    codes, uniques = _factorized(series)
    assert codes.tolist() == [0] * 10 + [-1] * 10 + [0] * 10 + [-1] * 10
    assert uniques.tolist() == ["A"]


def test_short_runs_and_other_types_are_factorized_cell_by_cell():
    shuffled = pd.Series([f"H{i % 7}" for i in range(100)], dtype="str")
    assert _run_starts(shuffled) is None
    numbers = pd.Series(np.repeat([3, 1, 2], 10))
    assert _run_starts(numbers) is None
    for series in (shuffled, numbers, pd.Series([], dtype="str"), pd.Series(["x"], dtype="str")):
        codes, uniques = _factorized(series)
        expected_codes, expected_uniques = _expected(series)
        np.testing.assert_array_equal(codes, expected_codes)
        assert uniques.tolist() == expected_uniques


@pytest.mark.parametrize("months", [
    ["2024-01", "2024-02", "2024-02"],
    ["2024-01", "2024/2", "2024-02"],
    ["2024-01", "2024-13", "2024-02"],
    ["2024-01", None, "2024-02"],
    ["2024-01", " 2024-02", "2024-02"],
])
def test_months_written_as_text_read_as_from_any_column(months):
    given = pd.Series(months, dtype="str", index=[5, 6, 7])
    parsed, bad = parse_months(given)
    expected, expected_bad = parse_months(pd.Series(months, dtype=object, index=[5, 6, 7]))
    pd.testing.assert_series_equal(parsed, expected, check_exact=True)
    pd.testing.assert_series_equal(bad, expected_bad, check_exact=True)
    assert parsed.dtype == "string"
