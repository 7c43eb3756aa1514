"""The flags' shortcuts give what the row-by-row spelling gives: the fired triggers joined
once per combination, the tiers' order without a lookup per row, the monitoring history of
rows whose households are integer codes and whose months are given as numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel import load_config, validate_ledger
from riskmodel.model import format_triggers, poverty_status
from riskmodel.months import month_index
from riskmodel.scoring import monitoring_columns
from riskmodel.scoring._lifecycle import TIER_ORDER, _tier_order
from riskmodel.synthetic import generate_ledger


def _joined_row_by_row(fired: pd.DataFrame) -> pd.Series:
    names = np.asarray(fired.columns, dtype=object)
    marks = np.where(fired.to_numpy(dtype=bool), names + ";", "")
    joined = pd.Series(marks.sum(axis=1) if marks.size else np.full(len(fired), ""),
                       index=fired.index, dtype="string")
    return joined.str.rstrip(";")


@pytest.mark.parametrize("shape", [(500, 5), (500, 1), (0, 5), (7, 0), (40, 33)])
def test_triggers_joined_per_combination_as_row_by_row(shape):
    rng = np.random.default_rng(shape[0] + shape[1])
    names = [f"rule_{j}" for j in range(shape[1])]
    fired = pd.DataFrame(rng.random(shape) < 0.3, columns=names,
                         index=np.arange(shape[0]) * 2 + 5)
    pd.testing.assert_series_equal(format_triggers(fired), _joined_row_by_row(fired),
                                   check_exact=True)


def test_tier_order_is_the_map_of_the_tiers():
    tiers = pd.Series(["high", "low", None, "medium", "other", "low"], dtype="string")
    expected = tiers.map(TIER_ORDER).to_numpy(dtype="float64", na_value=np.nan)
    np.testing.assert_array_equal(_tier_order(tiers), expected)


def test_monitoring_of_integer_codes_and_month_numbers_is_the_monitoring_of_ids():
    config = load_config()
    valid = validate_ledger(generate_ledger(households=80, months=20, seed=4)).valid
    month = str(valid["month"].max())
    status = poverty_status(valid, config)
    whole = monitoring_columns(valid, status, month, config)
    codes = valid.assign(household_id=pd.factorize(valid["household_id"])[0])
    fast = monitoring_columns(codes, status, month, config,
                              months=month_index(valid["month"]))
    pd.testing.assert_frame_equal(fast, whole, check_exact=True)
    assert (whole["months_above_line"] > 0).any()
