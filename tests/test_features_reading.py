"""``YYYY-MM`` columns read through their bytes give the numbers the text parser gives, integer
household ids already numbered are kept as factorize would number them, and a
chunk that holds every row of the ledger (read without a gather) gives the features it gives
among other households' rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel import load_config, validate_ledger
from riskmodel.ledger import EVENTS
from riskmodel.model import build_features
from riskmodel.model._features import _household_numbers
from riskmodel.model._month_text import FeatureColumns, text_months
from riskmodel.model._recorded import column_months
from riskmodel.synthetic import generate_ledger

VALUES = {
    "months": ["2024-03", "2023-12", None, "2024-01"],
    "out of range": ["2024-13", "2024-00", "0000-01", None],
    "all empty": [None, None, None],
    "spaces": ["2024-03", " 2024-04", None],
    "other separator": ["2024-03", "2024/04"],
    "other digits": ["2024-03", "٢٠٢٤-05"],
    "empty text": ["2024-03", "", None],
    "longer": ["2024-03", "2024-03-01"],
    "none": [],
}


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", "string[python]", "object"])
@pytest.mark.parametrize("case", list(VALUES))
def test_text_months_equal_the_text_parser(case, dtype):
    frame = pd.DataFrame({"m": pd.Series(VALUES[case], dtype=dtype)})
    for part in (frame, frame.iloc[1:]):  # a slice starts inside the Arrow buffers
        got, expected = text_months(part, "m"), column_months(part, "m")
        assert got.dtype == expected.dtype == np.float64
        np.testing.assert_array_equal(got.view("uint64"), expected.view("uint64"))


def test_seven_character_months_are_read_in_place():
    frame = pd.DataFrame({"m": pd.Series(["2024-03", None, "1999-12", "2024-13"], dtype="str")})
    assert text_months(frame, "m").tolist()[::2] == [2024 * 12 + 2, 1999 * 12 + 11]
    assert np.isnan(text_months(frame, "m")[[1, 3]]).all()
    assert np.isnan(text_months(frame, "absent")).all()


def test_feature_columns_cache_and_gather_the_months():
    frame = pd.DataFrame({"m": pd.Series(["2024-03", None, "2024-01"], dtype="str")})
    columns = FeatureColumns(frame)
    rows = np.array([2, 0])
    got = columns.months("m", rows)
    np.testing.assert_array_equal(got, [2024 * 12, 2024 * 12 + 2])
    got[:] = 0  # the features write into what they are given
    np.testing.assert_array_equal(columns.months("m", rows), [2024 * 12, 2024 * 12 + 2])


def test_a_chunk_of_every_row_equals_the_chunk_among_others():
    # 24 months, every household in the last: the month's grid holds every row of the ledger.
    ledger = generate_ledger(households=60, months=24, seed=8)
    last = ledger["month"].max()
    ledger = ledger[ledger["household_id"].isin(ledger.loc[ledger["month"] == last,
                                                           "household_id"])]
    rng = np.random.default_rng(8)
    for ev in EVENTS:  # flags left empty here and there
        ledger[ev] = pd.array(np.where(rng.random(len(ledger)) < 0.1, None,
                                       rng.random(len(ledger)) < 0.2), dtype="boolean")
    ledger = validate_ledger(ledger).valid
    alone = build_features(ledger, load_config(), months=[last])
    # A household without the month is read as history of nobody: the other rows are gathered.
    other = ledger[ledger["household_id"] == ledger["household_id"].iloc[0]]
    other = other[other["month"] < last].assign(household_id="elsewhere")
    among = build_features(pd.concat([other, ledger]), load_config(), months=[last])
    pd.testing.assert_frame_equal(alone, among, check_exact=True)
    assert (alone[[c for c in alone.columns if c.startswith("ev_")]] > 0).any().all()


@pytest.mark.parametrize("ids", [
    [0, 0, 1, 1, 2], [0, 1, 0, 2], [1, 1, 2], [0, 2, 2], [0, 0, -1], [5], [],
    np.array([0, 1, 1, 2], dtype="uint16"), np.array([0, 2, 1], dtype="uint8"),
    pd.array([0, 1, None], dtype="Int64"), ["b", "a", "b"],
])
def test_household_numbers_are_the_factorized_ids(ids):
    series = pd.Series(ids)
    expected = pd.factorize(series)[0]
    got = _household_numbers(series)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)


def test_feature_columns_hand_out_every_row_as_a_copy():
    frame = pd.DataFrame({
        "members": [2, 3, 4],
        "annual_income_pc": [5000.0, None, 7000.0],
        "annual_recorded_month": pd.Series(["2024-03", None, "2024-01"], dtype="str"),
        "recorded_risk_1": pd.Series(["illness", None, "education"], dtype="str"),
    })
    every = np.arange(3)
    columns = FeatureColumns(frame)
    columns.every = every
    gathered = FeatureColumns(frame)
    reads = [lambda c, r: c.months("annual_recorded_month", r), lambda c, r: c.income_pc(r),
             lambda c, r: c.risks(r)]
    for read in reads:
        expected = read(gathered, np.arange(3))
        got = read(columns, every)
        np.testing.assert_array_equal(got, expected)
        got[:] = 0
        np.testing.assert_array_equal(read(columns, every), expected)
        np.testing.assert_array_equal(read(columns, np.array([2, 0])), expected[[2, 0]])
