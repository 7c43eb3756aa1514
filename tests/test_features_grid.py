"""The features of what a county observes do not depend on which months are built with them.

A month built alone lays a grid of the 24 months up to it; built among every month of a longer
ledger, the grid is wider than the lookback of the history counts. Both must give the same
values, whether the recorded columns come as text or as Python objects. And the recorded income
per capita sums a row's figures exactly as ``np.nansum`` over the row does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel import load_config, validate_ledger
from riskmodel.config import CAUSE_CODES, DEPARTMENT_CODES
from riskmodel.model import OBSERVED_FEATURES, build_features, recorded_income_pc
from riskmodel.months import month_index, month_label
from riskmodel.synthetic import generate_ledger

CONFIG = load_config()


def _observed(ledger: pd.DataFrame, dtype: str, seed: int = 3) -> pd.DataFrame:
    """The ledger with warnings, identification history, recorded types and annual figures
    filled at random (dates at or before each row's month)."""
    rng = np.random.default_rng(seed)
    n = len(ledger)
    month = month_index(ledger["month"])
    out = ledger.copy()
    for dept in DEPARTMENT_CODES:
        out[f"warnings_{dept}"] = rng.poisson(0.1, n).astype("int16")
    out["warning_amount"] = np.where(rng.random(n) < 0.1, rng.gamma(2.0, 500.0, n), np.nan)

    def dates(share: float, back: int) -> pd.Series:
        # Few distinct dates per household: a date repeats over the months that carry it.
        values = month_label(month - rng.integers(0, back, n) // 6 * 6)
        return pd.Series(np.where(rng.random(n) < share, values, None), dtype=dtype)

    out["identified_month"] = dates(0.4, 30)
    out["eliminated_month"] = dates(0.2, 30)
    out["annual_recorded_month"] = dates(0.9, 14)
    out["annual_income_pc"] = np.where(rng.random(n) < 0.8, rng.gamma(4.0, 2500.0, n), np.nan)
    texts = np.array([*CAUSE_CODES, "其他"], dtype=object)
    for k in range(1, 6):
        picked = rng.choice(texts, n)
        out[f"recorded_risk_{k}"] = pd.Series(
            np.where(rng.random(n) < 0.15 / k, picked, None), dtype=dtype)
    return out


@pytest.mark.parametrize("dtype", ["string", "object"])
def test_a_month_built_alone_equals_the_month_built_among_all(dtype):
    ledger = validate_ledger(_observed(generate_ledger(households=120, months=36, seed=4),
                                       dtype)).valid
    every = build_features(ledger, CONFIG)
    for month in ("2023-12", ledger["month"].max()):
        alone = build_features(ledger, CONFIG, months=[month])
        among = every.loc[alone.index]
        pd.testing.assert_frame_equal(alone, among, check_exact=True)
    observed = every[OBSERVED_FEATURES]
    # The random columns reach the features: counts above zero, recorded types seen.
    assert (observed["times_identified_24m"] > 1).any()
    assert (observed[[f"recorded_{c}" for c in CAUSE_CODES]] == 1).any().all()


def test_text_and_object_columns_give_the_same_features():
    base = generate_ledger(households=80, months=30, seed=5)
    text = validate_ledger(_observed(base, "string")).valid
    objects = validate_ledger(_observed(base, "object")).valid
    pd.testing.assert_frame_equal(build_features(text, CONFIG), build_features(objects, CONFIG),
                                  check_exact=True)


def test_recorded_income_sums_a_rows_figures_as_nansum_does():
    rng = np.random.default_rng(11)
    n = 20_000
    figures = {}
    for column in ("annual_inc_wage", "annual_inc_business", "annual_inc_property",
                   "annual_inc_transfer"):
        values = rng.normal(0.0, 1.0, n) * 10.0 ** rng.integers(-2, 7, n)
        values[rng.random(n) < 0.3] = np.nan
        values[rng.random(n) < 0.1] = 0.0
        values[rng.random(n) < 0.1] = -0.0
        figures[column] = values
    ledger = pd.DataFrame({**figures, "annual_exp_medical_oop": rng.gamma(1.0, 300.0, n),
                           "members": rng.integers(1, 7, n)})
    stacked = np.column_stack(list(figures.values()))
    recorded = ~np.isnan(stacked).all(axis=1)
    expected = (np.nansum(stacked, axis=1) - ledger["annual_exp_medical_oop"]) / ledger["members"]
    expected = np.where(recorded, expected, np.nan)
    got = recorded_income_pc(ledger)
    # Bit for bit: signed zeros and rounding as np.nansum leaves them.
    assert np.array_equal(got.view("int64"), np.asarray(expected).view("int64"))
