"""riskmodel: forward-looking, calibrated and explained risk of households falling back into
poverty, for the monthly monitoring ledger (防止返贫动态监测).

The public functions are importable from here; the heavier ones (models, MLflow, SHAP, Spark)
load on first use so that the command line starts quickly.
"""

from importlib import import_module

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

__version__ = "0.1.0"

_LAZY = {
    "make_labels": "labels",
    "poverty_status": "labels",
    "build_features": "features",
    "LedgerFeatures": "features",
    "FEATURE_NAMES": "features",
    "generate": "synthetic",
    "generate_ledger": "synthetic",
    "RiskModel": "models",
    "backtest": "backtest",
    "train": "train",
    "load_model": "tracking",
    "cause_contributions": "explain",
    "explain_households": "explain",
    "explain_month": "explain",
    "explain_one": "explain",
    "HouseholdExplanation": "explain",
    "global_explanations": "explain",
    "cause_shares_by": "explain",
    "shap_explanation": "shapviews",
    "shap_by_cause": "shapviews",
    "what_if": "whatif",
    "score_frame": "score",
    "score_month": "score",
    "write_bulletin": "report",
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
