"""One home per setting: the defaults, the model URI, the clock, the months."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import riskmodel
from riskmodel.clock import Clock

SRC = Path(riskmodel.__file__).resolve().parent


def _sources() -> dict[str, str]:
    return {str(p.relative_to(SRC)): p.read_text(encoding="utf-8") for p in SRC.rglob("*.py")}


def test_one_clock():
    classes = [f"{path}: {node.name}" for path, text in _sources().items()
               for node in ast.walk(ast.parse(text))
               if isinstance(node, ast.ClassDef) and "clock" in node.name.lower()]
    assert classes == ["clock.py: Clock"]


def test_the_clock_counts_wall_and_optionally_cpu_seconds():
    wall = Clock()
    both = Clock(cpu=True)
    time.sleep(0.01)
    wall.lap("a")
    both.lap("a")
    assert list(wall.laps) == ["a"] and wall.laps["a"] >= 0.01
    assert list(both.laps) == ["a", "cpu:a"] and both.laps["a"] >= 0.01
    both.add("a", 1.0)
    assert both.laps["a"] >= 1.01


def test_the_config_models_carry_no_defaults_of_their_own():
    # configs/default.yaml is the one home of every setting: a section's field without a
    # default there is required, so the two cannot disagree.
    from pydantic import BaseModel

    from riskmodel import config as cfg

    entries = {cfg.PovertyLine, cfg.Cause, cfg.FeatureSpec, cfg.MeasureEffect, cfg.Measure,
               cfg.CauseText, cfg.Tiers, cfg.Candidate}
    sections = [c for c in vars(cfg).values() if isinstance(c, type)
                and issubclass(c, BaseModel) and c.__module__ == cfg.__name__
                and c not in entries and c is not cfg._Strict]
    assert cfg.ModelConfig in sections and cfg.Config in sections
    with_default = [f"{c.__name__}.{n}" for c in sections
                    for n, f in c.model_fields.items() if not f.is_required()]
    assert not with_default


def test_training_takes_the_model_settings_from_the_config():
    from riskmodel.config import load_config
    from riskmodel.model import RiskModel

    config = load_config()
    assert (config.model.max_iter, config.model.learning_rate) == (200, 0.1)
    model = RiskModel.from_config(config)
    assert (model.max_iter, model.learning_rate) == (200, 0.1)
    assert model.max_train_rows == config.model.max_train_rows


def test_one_default_model_uri():
    from riskmodel import cli
    from riskmodel.config import DEFAULT_MODEL_URI, MODEL_NAME
    from riskmodel.model import DEFAULT_MODEL_URI as from_model

    assert DEFAULT_MODEL_URI == f"models:/{MODEL_NAME}@champion" and from_model is DEFAULT_MODEL_URI
    spelt = [path for path, text in _sources().items()
             for node in ast.walk(ast.parse(text))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and MODEL_NAME in node.value and "``" not in node.value]
    assert spelt == ["config.py", "config.py"]  # MODEL_NAME and EXPERIMENT
    args = cli.build_parser().parse_args(["score", "--ledger", "l.csv", "--out", "o"])
    assert args.model == DEFAULT_MODEL_URI


def test_the_chinese_label_tables_have_one_home():
    from riskmodel.config import Triggers
    from riskmodel.ledger import HOUSEHOLD_TYPE_ZH, HOUSEHOLD_TYPES, TIER_ZH, TRIGGER_ZH

    assert set(TRIGGER_ZH) == set(Triggers.model_fields)
    assert set(TIER_ZH) == {"high", "medium", "low"}
    assert set(HOUSEHOLD_TYPE_ZH) == set(HOUSEHOLD_TYPES)
    defined = sorted(f"{path}: {target.id}" for path, text in _sources().items()
                     for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Assign)
                     for target in node.targets if isinstance(target, ast.Name)
                     and target.id in {"TIER_ZH", "TRIGGER_ZH", "HOUSEHOLD_TYPE_ZH"})
    assert defined == [f"ledger/_names.py: {n}"
                       for n in ("HOUSEHOLD_TYPE_ZH", "TIER_ZH", "TRIGGER_ZH")]


def test_no_package_imports_another_packages_private_module():
    private = [f"{path}: {node.module}" for path, text in _sources().items()
               for node in ast.walk(ast.parse(text))
               if isinstance(node, ast.ImportFrom) and node.level >= 2 and node.module
               and "._" in node.module]
    assert not private


def test_month_text_and_numbers_live_in_months():
    defined = sorted(f"{path}: {node.name}" for path, text in _sources().items()
                     for node in ast.walk(ast.parse(text)) if isinstance(node, ast.FunctionDef)
                     and node.name in {"_month_number", "_month_text", "_check_month",
                                       "_month_numbers", "months_of", "month_index",
                                       "month_label", "check_month", "month_number",
                                       "month_numbers"})
    assert defined == ["months.py: check_month", "months.py: month_index",
                       "months.py: month_label", "months.py: month_number",
                       "months.py: month_numbers"]


def test_a_user_given_month_is_checked_once_the_same_way():
    import argparse

    import numpy as np
    import pytest

    from riskmodel.cli import build_parser
    from riskmodel.errors import ArgumentError
    from riskmodel.months import check_month, month_label, month_number, month_numbers
    from riskmodel.synthetic import generate_ledger

    assert check_month("2024-03") == "2024-03" and month_number("2024-03") == 2024 * 12 + 2
    for bad in ["2024-3", "2024-13", "2024-00", " 2024-03", "2024-03\n", "２０２４-03", 202403,
                None]:
        with pytest.raises(ValueError, match="expected a month as 'YYYY-MM'"):
            check_month(bad)
    with pytest.raises(argparse.ArgumentTypeError, match=r"Got '2024-13', expected a month"):
        check_month("2024-13", None, argparse.ArgumentTypeError)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["score", "--ledger", "l", "--out", "o", "--month", "2024-3"])
    with pytest.raises(ArgumentError, match=r"Got start='2024-1', expected a month as 'YYYY-MM'"):
        generate_ledger(2, 2, start="2024-1")
    numbers, text = month_numbers(["2024-01", "2023-12"])
    assert numbers.tolist() == [24288, 24287] and text
    assert month_numbers(np.array([5, 6]))[0].tolist() == [5, 6]
    assert not month_numbers(np.array([5, 6]))[1]
    assert month_label(np.array([], dtype="int64")).shape == (0,)


def test_the_ledger_spells_months_as_before():
    import numpy as np
    import pandas as pd

    from riskmodel.ledger import parse_months

    spellings = pd.Series(["2024-03", "2024/3", "202403", "2024年12月", "2024.1.15",
                           "２０２４-０３", "2024-3-01 08:00", "2024-13", "bad", None, "",
                           "1999-07"],
                          dtype=object)
    parsed, bad = parse_months(spellings)
    assert parsed.dtype == "string"
    assert parsed.tolist() == ["2024-03", "2024-03", "2024-03", "2024-12", "2024-01", "2024-03",
                               "2024-03", pd.NA, pd.NA, pd.NA, pd.NA, "1999-07"]
    np.testing.assert_array_equal(bad.to_numpy(), parsed.isna().to_numpy())
    assert parse_months(pd.Series(["x"]))[1].tolist() == [True]
