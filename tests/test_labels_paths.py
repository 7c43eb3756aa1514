"""The shortcuts of the poverty status give what the whole computation gives: integer
household codes for the ids, month numbers given, lines read once per run of rows, a ledger
without monthly incomes, incomes recorded on every row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel import load_config, validate_ledger
from riskmodel.config import PovertyLine
from riskmodel.ledger import INCOME
from riskmodel.model import net_income, poverty_lines, poverty_status, recorded_income_pc
from riskmodel.model._labels import _lines
from riskmodel.months import month_index
from riskmodel.synthetic import generate_ledger

CONFIG = load_config()
REGIONAL = CONFIG.model_copy(update={"poverty_lines": [
    *CONFIG.poverty_lines, PovertyLine(year=2022, line=9500, region="乙县"),
    PovertyLine(year=2023, line=9900, region="云南省")]})


def _ledger(recorded: bool, monthly: bool = True, seed: int = 3) -> pd.DataFrame:
    raw = generate_ledger(households=60, months=30, seed=seed)
    rng = np.random.default_rng(seed)
    n = len(raw)
    raw["province"] = np.where(rng.random(n) < 0.3, "云南省", raw["province"])
    raw.loc[rng.random(n) < 0.05, "province"] = None
    raw["county"] = np.where(raw["household_id"].str[-1].isin(["1", "2"]), "乙县", raw["county"])
    if not monthly:
        raw[INCOME] = np.nan
    if recorded:
        raw["annual_income_pc"] = rng.gamma(4.0, 2500.0, n)
        raw["annual_inc_wage"] = raw["annual_income_pc"] * 2
    return validate_ledger(raw).valid


@pytest.mark.parametrize(("recorded", "monthly"), [(False, True), (True, True), (True, False)])
def test_integer_codes_and_month_numbers_give_the_same_status(recorded, monthly):
    ledger = _ledger(recorded, monthly)
    whole = poverty_status(ledger, REGIONAL)
    codes = ledger.assign(household_id=pd.factorize(ledger["household_id"])[0])
    fast = poverty_status(codes, REGIONAL, months=month_index(ledger["month"]))
    assert fast["household_id"].tolist() == codes["household_id"].tolist()
    pd.testing.assert_frame_equal(fast.drop(columns="household_id"),
                                  whole.drop(columns="household_id"), check_exact=True)
    assert whole["poor"].notna().any()


def test_codes_out_of_range_are_numbered_as_ids():
    ledger = _ledger(recorded=False)
    whole = poverty_status(ledger, CONFIG)
    codes = ledger.assign(household_id=pd.factorize(ledger["household_id"])[0] * 1000 + 7)
    pd.testing.assert_frame_equal(poverty_status(codes, CONFIG).drop(columns="household_id"),
                                  whole.drop(columns="household_id"), check_exact=True)


@pytest.mark.parametrize("order", ["ledger", "shuffled"])
def test_lines_read_per_run_are_the_lines_of_every_row(order):
    ledger = _ledger(recorded=False)
    if order == "shuffled":
        ledger = ledger.sample(frac=1.0, random_state=0).reset_index(drop=True)
    year = month_index(ledger["month"]) // 12
    province, county = ledger["province"], ledger["county"]
    expected = _lines(REGIONAL, year, province, county)
    assert len(np.unique(expected)) >= 3
    for args in ((province, county), (province.to_numpy(dtype=object), None), (None, None)):
        np.testing.assert_array_equal(
            poverty_lines(REGIONAL, year, *args), _lines(REGIONAL, year, *args))


def test_a_ledger_without_monthly_incomes_has_no_observed_month():
    ledger = _ledger(recorded=True, monthly=False)
    net, observed = net_income(ledger)
    assert not observed.any() and np.isnan(net).all()
    status = poverty_status(ledger, CONFIG)
    assert (status["observed_months"] == 0).all()
    np.testing.assert_array_equal(status["income_pc"].to_numpy(), recorded_income_pc(ledger))


def test_incomes_recorded_on_every_row_are_read_as_recorded():
    ledger = _ledger(recorded=True)
    pc = recorded_income_pc(ledger)
    np.testing.assert_array_equal(pc, ledger["annual_income_pc"].to_numpy())
    pc[0] = -1.0  # the caller's own array: the ledger is left as it was
    assert ledger["annual_income_pc"].iloc[0] != -1.0
