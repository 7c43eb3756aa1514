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
