"""The Chinese names that output files and pages give to codes: risk tiers, hard triggers and
household types (the causes, measures, features and validation rules are named in
``configs/default.yaml``)."""

from __future__ import annotations

from ._validate import HOUSEHOLD_TYPE_ALIASES

TIER_ZH = {"high": "高", "medium": "中", "low": "低"}
TRIGGER_ZH = {
    "income_below_line": "收入低于监测线",
    "medical_oop_12m": "合规自付医疗费用超标",
    "housing_unsafe": "住房不安全",
    "dropout": "有辍学",
    "water_unsafe": "饮水不安全",
}
HOUSEHOLD_TYPE_ZH = {code: name for name, code in HOUSEHOLD_TYPE_ALIASES.items()}

__all__ = ["HOUSEHOLD_TYPE_ZH", "TIER_ZH", "TRIGGER_ZH"]
