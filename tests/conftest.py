"""Shared fixtures: small hand-built ledgers that every module's tests can rely on."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodel import validate_ledger
from riskmodel.ledger import EVENTS

# The legacy model's folder holds the script that made it with the code of its time.
collect_ignore_glob = ["data/*"]

# Spark's Python workers must run this interpreter (it has pyarrow and the project).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("MPLBACKEND", "Agg")

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "synthetic"


def small_model(seed: int, households: int = 800, months: int = 30, **params):
    """A validated synthetic ledger (800 households × 30 months unless told), its features and
    a small risk model fitted on it: ``(ledger, features, model)``; ``params`` override the
    model's."""
    from threadpoolctl import threadpool_limits

    from riskmodel import load_config
    from riskmodel.model import RiskModel, build_features, ledger_features, make_labels
    from riskmodel.synthetic import generate_ledger

    config = load_config()
    ledger = validate_ledger(generate_ledger(households=households, months=months,
                                             seed=seed)).valid
    # The features training would learn from: a monthly ledger has no recorded figures.
    features = build_features(ledger, config)[ledger_features(ledger)]
    target = make_labels(ledger, config)["target"].to_numpy()
    train = ~np.isnan(target)
    # One thread: the trees fit in seconds, where competing OpenMP threads take a minute.
    with threadpool_limits(1):
        model = RiskModel.from_config(config, list(features.columns),
                                      **{"max_iter": 60, "min_samples_leaf": 40,
                                         **params}).fit(
            features[train], target[train].astype(int), months=ledger.loc[train, "month"])
    return ledger, features, model


def tiny_ledger(households: int = 4, months: int = 3, start: str = "2024-01") -> pd.DataFrame:
    """A valid ledger of plain numbers, every contract column present."""
    rng = np.random.default_rng(0)
    periods = pd.period_range(start, periods=months, freq="M").strftime("%Y-%m")
    hid = np.repeat([f"H{i:04d}" for i in range(households)], months)
    n = len(hid)
    frame = pd.DataFrame({
        "household_id": hid,
        "month": np.tile(periods, households),
        "province": "云南省",
        "county": "甲县",
        "township": np.repeat([f"乡{i % 2}" for i in range(households)], months),
        "village": np.repeat([f"村{i % 3}" for i in range(households)], months),
        "household_type": np.repeat(
            [("exited", "monitored", "general")[i % 3] for i in range(households)], months),
        "members": 4,
        "labor_full": 2,
        "labor_partial": 0,
        "elderly": 1,
        "children": 1,
        "students_compulsory": 1,
        "students_noncompulsory": 0,
        "chronic_ill": 0,
        "serious_ill": 0,
        "disabled": 0,
        "disabled_severe": 0,
        "migrant_workers": 1,
        "inc_wage": rng.integers(1500, 3000, n).astype(float),
        "inc_business": rng.integers(-200, 800, n).astype(float),
        "inc_property": 50.0,
        "inc_transfer": 100.0,
        "exp_medical_oop": 0.0,
        "exp_education": 100.0,
        "insured_all": True,
        "housing_safe": True,
        "water_safe": True,
        "dropouts": 0,
        "dibao": False,
        "welfare_job": False,
        "temp_assistance": 0.0,
    })
    for ev in EVENTS:
        frame[ev] = False
    return frame


@pytest.fixture
def ledger() -> pd.DataFrame:
    return tiny_ledger()


def quick_selection(config):
    """``model.selection`` with no cost budget for candidates: the model block alone is
    backtested, the others are recorded as skipped (tests/test_selection.py runs them)."""
    return config.model.selection.model_copy(update={"max_cost": 0.0})


def fast_config():
    """The default config with a small model and a short backtest, for tests that train."""
    from riskmodel import load_config

    config = load_config()
    return config.model_copy(update={
        "model": config.model.model_copy(update={
            "max_iter": 40, "min_samples_leaf": 20, "validation_months": 2,
            "calibration_months": 3, "selection": quick_selection(config)}),
        "backtest": config.backtest.model_copy(update={"origins": 1, "bootstrap": 20}),
    })


def household_rows(months: int = 12, **columns) -> pd.DataFrame:
    """One household's validated ledger rows ending 2024-12; ``columns`` override the defaults,
    a list giving one value per month."""
    periods = pd.period_range(end="2024-12", periods=months, freq="M").strftime("%Y-%m")
    frame = pd.DataFrame({
        "household_id": "H1", "month": periods, "province": "云南省", "county": "甲县",
        "township": "乙镇", "village": "丙村", "household_type": "exited", "members": 4,
        "labor_full": 2, "labor_partial": 0, "elderly": 1, "children": 1,
        "students_compulsory": 0, "students_noncompulsory": 0, "chronic_ill": 0,
        "serious_ill": 0, "disabled": 0, "disabled_severe": 0, "migrant_workers": 0,
        "inc_wage": 2000.0, "inc_business": 300.0, "inc_property": 0.0, "inc_transfer": 100.0,
        "exp_medical_oop": 0.0, "exp_education": 0.0, "insured_all": True,
        "housing_safe": True, "water_safe": True, "dropouts": 0, "dibao": False,
        "welfare_job": False, "temp_assistance": 0.0, **{ev: False for ev in EVENTS},
    })
    for name, value in columns.items():
        frame[name] = value
    result = validate_ledger(frame)
    assert result.quarantine.empty, result.quarantine
    return result.valid


def households(*specs: dict) -> pd.DataFrame:
    """Several households' rows, each from ``household_rows(**spec)``, ids H0, H1 …"""
    parts = []
    for i, spec in enumerate(specs):
        rows = household_rows(**spec)
        rows["household_id"] = f"H{i}"
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


def valid(raw: pd.DataFrame) -> pd.DataFrame:
    """The rows of a hand-built ledger, validated; none may be quarantined."""
    from riskmodel import validate_ledger

    result = validate_ledger(raw)
    assert result.quarantine.empty
    return result.valid


def features_of(ledger: pd.DataFrame, months=None, config=None) -> pd.DataFrame:
    """The ledger's features indexed by (household_id, month)."""
    from riskmodel import build_features, load_config
    from riskmodel.ledger import KEY

    out = build_features(ledger, config or load_config(), months=months)
    return out.set_axis(pd.MultiIndex.from_frame(ledger.loc[out.index, KEY]))
