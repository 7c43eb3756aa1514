"""summary.json and plan_summary.json: the contracts other tools read, as pydantic models."""

import json
import re
import types
import typing
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from riskmodel.errors import LedgerError
from riskmodel.plan import PlanSummary
from riskmodel.scoring import RunSummary

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _inner(annotation):
    """The model inside ``X | None``, ``list[X]``, ``dict[str, X]``, with the path suffix."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _inner(args[0])
    if typing.get_origin(annotation) is list and args and _is_model(args[0]):
        return args[0], "[]"
    if typing.get_origin(annotation) is dict and len(args) == 2 and _is_model(args[1]):
        return args[1], ".<key>"
    return (annotation, "") if _is_model(annotation) else (None, "")


def _is_model(annotation) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def field_paths(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """Every field of ``model`` and of the models inside it: (dotted path, description)."""
    rows = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        rows.append((path, field.description or ""))
        inner, suffix = _inner(field.annotation)
        if inner is not None:
            rows += field_paths(inner, f"{path}{suffix}.")
    return rows


def _section(page: str, heading: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end > 0 else None]


@pytest.mark.parametrize("model, page, heading", [
    (RunSummary, "operations.md", "## summary.json"),
    (PlanSummary, "plans.md", "## plan_summary.json"),
])
def test_the_docs_list_every_field(model, page, heading):
    listed = set(re.findall(r"^\| `([^`]+)` \|", _section(page, heading), flags=re.M))
    fields = {path for path, _ in field_paths(model)}
    assert fields - listed == set(), "fields the docs do not list"
    assert listed - fields == set(), "fields the docs list that the model does not have"


@pytest.mark.parametrize("model", [RunSummary, PlanSummary])
def test_a_key_the_contract_does_not_know_is_one_clear_line(model, tmp_path):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"month": "2024-06", "coverage": {"shares": 0.5}}),
                    encoding="utf-8")
    with pytest.raises(LedgerError, match=r"summary\.json: coverage\.shares: Extra inputs"):
        model.read(path)
    path.write_text(json.dumps({"month": "2024-06", "coverage": [0.5]}), encoding="utf-8")
    with pytest.raises(LedgerError, match="'coverage' holds an array; expected"):
        model.read(path)


def test_a_summary_is_written_with_its_schema_version_and_read_back(tmp_path):
    data = {"month": "2024-06",
            "reconciliation": {"rows_in": np.int64(10), "scored": 7, "quarantined": 3,
                               "balanced": True},
            "by_cause": {"illness": {"high": 1, "medium": 0, "low": 2}},
            "drift": {"threshold": 0.25, "score_psi": float("nan"), "drifted": [],
                      "psi": {"score": 0.01}},
            "warnings": []}
    path = RunSummary.parse(data).write(tmp_path / "summary.json")
    written = json.loads(path.read_text(encoding="utf-8"))
    assert list(written) == ["schema_version", *data]
    assert written["schema_version"] == 1
    assert written["drift"]["score_psi"] is None
    assert written["reconciliation"] == {"rows_in": 10, "scored": 7, "quarantined": 3,
                                         "balanced": True}
    again = RunSummary.read(path)
    assert again.reconciliation.rows_in == 10 and again.by_cause["illness"].low == 2


def test_a_plan_summary_keeps_its_keys_and_values(tmp_path):
    data = {"month": "2024-06", "budget": 30000.0, "spent": 29700.0, "households": 11,
            "grant": None, "measures_considered": ["grant", "dibao"],
            "by_measure": {"dibao": {"households": 2, "spent": 7200.0,
                                     "falls_prevented": 0.45}},
            "rules": {"measure": "grant",
                      "income_cutoff": {"households": 20, "spent": 30000.0,
                                        "falls_prevented": 0.98, "plan_ratio": 1.8},
                      "risk_ranking": {"households": 20, "spent": 30000.0,
                                       "falls_prevented": 0.0, "plan_ratio": None}},
            "model_version": "1", "timings_s": {"plan": 0.064}}
    path = PlanSummary.parse(data).write(tmp_path / "plan_summary.json")
    assert json.loads(path.read_text(encoding="utf-8")) == {"schema_version": 1, **data}
