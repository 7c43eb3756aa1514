"""The public API: ``riskmodel.__all__`` resolves, and docs/api.md lists every name of it under
the package that defines it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import riskmodel

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _listed() -> dict[str, str]:
    """name -> the package heading it stands under in docs/api.md."""
    out, package = {}, None
    for line in API_PAGE.read_text(encoding="utf-8").splitlines():
        if heading := re.fullmatch(r"## `(riskmodel\.\w+)`", line):
            package = heading[1]
        elif item := re.match(r"- `(\w+)`: \S", line):
            assert package, f"docs/api.md lists {item[1]} before any package"
            assert item[1] not in out, f"docs/api.md lists {item[1]} twice"
            out[item[1]] = package
    return out


def test_the_api_page_lists_every_public_name_and_nothing_else():
    listed = _listed()
    assert len(riskmodel.__all__) == len(set(riskmodel.__all__))
    missing = [n for n in riskmodel.__all__ if n not in listed]
    extra = [n for n in listed if n not in riskmodel.__all__]
    assert not missing, f"docs/api.md does not list {missing}"
    assert not extra, f"docs/api.md lists names not in riskmodel.__all__: {extra}"


@pytest.mark.parametrize("name", riskmodel.__all__)
def test_each_public_name_resolves_to_its_packages(name):
    package = importlib.import_module(_listed()[name])
    value = getattr(riskmodel, name)
    assert value is not None and value is getattr(package, name)
    if hasattr(package, "__all__"):
        assert name in package.__all__, f"{package.__name__}.__all__ lacks {name}"
    assert name in dir(riskmodel)


def test_the_main_job_of_every_subpackage_is_reachable_from_riskmodel():
    for name in ["load_ledger", "validate_file", "train", "load_model", "explain_one",
                 "score_month", "plan_month", "write_bulletin", "generate", "check_month"]:
        assert name in riskmodel.__all__, name
