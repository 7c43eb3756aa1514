"""The label on incomes as recorded (annual figures, no monthly flows) and ``label.kind``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_ledger

from riskmodel import load_config, validate_ledger
from riskmodel.errors import ConfigError, LedgerError
from riskmodel.ledger import INCOME, KEY, SPENDING
from riskmodel.model import make_labels, poverty_status, recorded_income_pc

CONFIG = load_config()
MEMBERS = 4
START = "2023-07"
MONTHS = 18  # 2023-07 … 2024-12; training rows end at 2024-06 (horizon 6)


def kind(name: str):
    return CONFIG.model_copy(update={"label": CONFIG.label.model_copy(update={"kind": name})})


def months_from(start: str = START, n: int = MONTHS) -> list[str]:
    return list(pd.period_range(start, periods=n, freq="M").strftime("%Y-%m"))


def recorded(hid: str, pcs: list[float], identified: list[str | None] | None = None,
             monitored_from: str | None = None, start: str = START) -> pd.DataFrame:
    """One household whose monthly incomes nobody recorded: each month carries the annual
    per-capita figure of the last verification (NaN: none recorded), as a download repeats it."""
    raw = tiny_ledger(1, len(pcs), start)
    raw["household_id"], raw["province"], raw["county"] = hid, "贵州省", "甲县"
    raw["members"] = MEMBERS
    raw["household_type"] = "exited"
    raw[INCOME + SPENDING] = np.nan
    raw["annual_income_pc"] = np.asarray(pcs, dtype="float64")
    run_start, current = [], None
    for i, (month, pc) in enumerate(zip(raw["month"], pcs, strict=True)):
        if np.isnan(pc):
            current = None
        elif i == 0 or current is None or pc != pcs[i - 1]:
            current = month
        run_start.append(current)
    raw["annual_recorded_month"] = pd.array(run_start, dtype="string")
    raw["identified_month"] = pd.array(identified or [None] * len(pcs), dtype="string")
    if monitored_from is not None:
        raw.loc[raw["month"] >= monitored_from, "household_type"] = "monitored"
    return raw


def labels_of(*frames: pd.DataFrame, config=CONFIG) -> pd.DataFrame:
    result = validate_ledger(pd.concat(frames, ignore_index=True))
    assert result.quarantine.empty
    return make_labels(result.valid, config).set_index(KEY)


def targets(labels: pd.DataFrame, hid: str) -> dict[str, float]:
    return labels.loc[hid, "target"].to_dict()


# --- income, as recorded -----------------------------------------------------------------------

def test_a_repeated_figure_is_no_new_fall():
    labels = labels_of(recorded("above", [9000.0] * MONTHS), recorded("below", [5000.0] * MONTHS))
    above, below = labels.loc["above"], labels.loc["below"]
    assert (above["income_pc"] == 9000.0).all() and (above["observed_months"] == 0).all()
    assert not above["poor"].any()
    train = above["target"].dropna()
    assert list(train.index) == months_from(n=12) and (train == 0).all()
    # Poor at every month on one repeated figure: never a training row, never a fall.
    assert below["poor"].all() and below["target"].isna().all()


def test_a_verification_below_the_line_is_a_fall():
    pcs = [9000.0] * 8 + [5000.0] * 10  # verified at 2024-03 below the line
    got = targets(labels_of(recorded("A", pcs)), "A")
    assert [got[m] for m in months_from(n=8)] == [0.0, 0.0] + [1.0] * 6  # 2024-03 ahead of t
    assert all(np.isnan(got[m]) for m in months_from("2024-03", 10))  # poor at t


def test_the_recorded_figure_is_judged_against_the_line_of_its_month():
    # 7,000 yuan: above 2023's national line (6,900), below 2024's (7,200).
    status = labels_of(recorded("A", [7000.0] * MONTHS))["poor"].loc["A"]
    assert not status.loc["2023-12"] and status.loc["2024-01"]


def test_per_capita_from_the_recorded_parts_when_no_per_capita_figure():
    raw = recorded("A", [np.nan] * 3)
    raw["annual_inc_wage"], raw["annual_inc_transfer"] = 30000.0, 4000.0
    raw["annual_exp_medical_oop"] = 6000.0
    raw.loc[2, "annual_inc_transfer"] = np.nan  # an empty part of a recorded set is zero
    status = labels_of(raw).loc["A"]
    assert status["income_pc"].tolist() == [7000.0, 7000.0, 6000.0]


def test_monthly_figures_win_where_known_and_the_record_fills_the_rest():
    raw = recorded("A", [5000.0] * 12, start="2024-01")
    raw[INCOME + SPENDING] = 0.0
    raw["inc_wage"] = 9000.0 * MEMBERS / 12
    status = labels_of(raw).loc["A"]
    # Five observed months are too few: the recorded figure speaks; from six, the months.
    assert status["poor"].tolist() == [True] * 5 + [False] * 7
    assert status["income_pc"].iloc[5:].tolist() == pytest.approx([9000.0] * 7)


def test_no_figure_and_no_month_is_unknown():
    status = labels_of(recorded("A", [np.nan] * 4 + [9000.0] * 2)).loc["A"]
    assert status["poor"].isna().tolist() == [True] * 4 + [False] * 2


def test_a_ledger_without_recorded_columns_reads_as_before():
    raw = tiny_ledger(3, 14)
    assert np.isnan(recorded_income_pc(raw)).all()
    with_empty = raw.assign(annual_income_pc=np.nan, annual_recorded_month=pd.NA)
    pd.testing.assert_frame_equal(poverty_status(with_empty, CONFIG), poverty_status(raw, CONFIG))


def test_eligibility_of_a_recorded_only_ledger():
    """The households of an ingested ledger get a poverty status at t, so they can be scored."""
    status = labels_of(recorded("A", [9000.0] * 3), recorded("B", [5000.0] * 3),
                       recorded("C", [np.nan] * 3))
    now = status.xs("2023-09", level="month")
    assert now["poor"].tolist() == [False, True, pd.NA]


# --- identified --------------------------------------------------------------------------------

def identified_from(month: str, recorded_from: str | None = None) -> list[str | None]:
    """identified_month as downloads show it: blank until the identification is recorded."""
    shown = recorded_from or month
    return [month if m >= shown else None for m in months_from()]


def test_identified_inside_the_horizon_and_monitored_rows_excluded():
    got = targets(labels_of(recorded("A", [9000.0] * MONTHS, identified_from("2024-05"),
                                     monitored_from="2024-05"), config=kind("identified")), "A")
    assert [got[m] for m in months_from(n=4)] == [0.0] * 4  # 2024-05 is 7+ months ahead
    assert [got[m] for m in months_from("2023-11", 6)] == [1.0] * 6
    assert all(np.isnan(got[m]) for m in months_from("2024-05", 8))  # monitored at t


def test_identified_counts_as_recorded_up_to_the_horizon():
    # Identified in 2024-05, but the downloads show it only from 2024-08.
    got = targets(labels_of(recorded("A", [9000.0] * MONTHS,
                                     identified_from("2024-05", recorded_from="2024-08"),
                                     monitored_from="2024-08"), config=kind("identified")), "A")
    assert got["2024-01"] == 0.0  # (t, t+6] holds 2024-05, but nobody knew it by 2024-07
    assert got["2024-02"] == 1.0 and got["2024-04"] == 1.0
    assert got["2024-05"] == 0.0 and got["2024-06"] == 0.0  # not after t


def test_identified_needs_no_income_and_never_identified_is_zero():
    labels = labels_of(recorded("A", [np.nan] * MONTHS), config=kind("identified"))
    assert (labels["target"].dropna() == 0).all() and labels["target"].notna().sum() == 12


def test_either_is_income_or_identified_on_rows_of_both():
    fall = recorded("fall", [9000.0] * 8 + [5000.0] * 10)
    named = recorded("named", [9000.0] * MONTHS, identified_from("2024-05"),
                     monitored_from="2024-05")
    either = labels_of(fall, named, config=kind("either"))
    income = labels_of(fall, named)
    identified = labels_of(fall, named, config=kind("identified"))
    both = income["target"].notna() & identified["target"].notna()
    assert (either["target"].notna() == both).all()
    expected = np.maximum(income["target"], identified["target"])[both]
    pd.testing.assert_series_equal(either["target"][both], expected)
    assert either.loc[("fall", "2023-09"), "target"] == 1.0
    assert either.loc[("named", "2023-11"), "target"] == 1.0
    assert either.loc[("named", "2023-10"), "target"] == 0.0


def test_identified_needs_the_column():
    with pytest.raises(LedgerError, match="identified_month"):
        make_labels(validate_ledger(tiny_ledger(2, 8)).valid, kind("identified"))


def test_kind_and_target_column_are_not_both_set(tmp_path):
    path = tmp_path / "county.yaml"
    path.write_text("label: {kind: identified, target_column: fell}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="target_column"):
        load_config(path)
    path.write_text("label: {kind: identified}\n", encoding="utf-8")
    assert load_config(path).label.kind == "identified"
    assert CONFIG.label.kind == "income"
