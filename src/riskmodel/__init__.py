"""riskmodel: forward-looking, calibrated and explained risk of households falling back into
poverty, for the monthly monitoring ledger (防止返贫动态监测).

The public functions are importable from here; the heavier ones (models, MLflow, SHAP, Spark)
load on first use so that the command line starts quickly.
"""

from importlib import import_module

from ._version import __version__ as __version__
from .config import Config, load_config
from .errors import (
    ConfigError,
    LedgerError,
    ModelNotFoundError,
    OutputExistsError,
    RiskModelError,
    TrainingDataError,
)
from .ledger import LEDGER_COLUMNS, ValidationResult, load_ledger, read_ledger, validate_ledger

_LAZY = {
    "make_labels": "model",
    "poverty_status": "model",
    "build_features": "model",
    "LedgerFeatures": "model",
    "FEATURE_NAMES": "model",
    "generate": "synthetic",
    "generate_ledger": "synthetic",
    "RiskModel": "model",
    "backtest": "model",
    "train": "model",
    "load_model": "model",
    "cause_contributions": "explain",
    "explain_households": "explain",
    "explain_month": "explain",
    "explain_one": "explain",
    "HouseholdExplanation": "explain",
    "global_explanations": "explain",
    "cause_shares_by": "explain",
    "shap_explanation": "explain",
    "shap_by_cause": "explain",
    "what_if": "explain",
    "score_frame": "scoring",
    "score_month": "_jobs",
    "write_bulletin": "bulletin",
    "plan_month": "plan",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'riskmodel' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "LEDGER_COLUMNS",
    "Config",
    "ConfigError",
    "LedgerError",
    "ModelNotFoundError",
    "OutputExistsError",
    "RiskModelError",
    "TrainingDataError",
    "ValidationResult",
    "load_config",
    "load_ledger",
    "read_ledger",
    "validate_ledger",
    *_LAZY,
]
