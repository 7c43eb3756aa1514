"""riskmodel: forward-looking, calibrated and explained risk of households falling back into
poverty, for the monthly monitoring ledger (防止返贫动态监测).

The public functions are importable from here (``riskmodel.__all__``, listed with one line each
in docs/api.md); the heavier ones (models, MLflow, SHAP, Spark) load on first use so that the
command line starts quickly. Every subpackage lists its own public names in its ``__all__``
(``riskmodel.model.__all__``, ...).
"""

from importlib import import_module

from ._version import __version__ as __version__
from .config import DEFAULT_MODEL_URI, MODEL_NAME, Config, load_aliases, load_config
from .errors import (
    ArgumentError,
    ConfigError,
    LedgerError,
    ModelNotFoundError,
    OutputExistsError,
    RiskModelError,
    TooFewScoredError,
    TrackingServerError,
    TrainingDataError,
)
from .ledger import (
    LEDGER_COLUMNS,
    LedgerChunks,
    ValidationResult,
    load_ledger,
    parse_months,
    read_ledger,
    validate_file,
    validate_ledger,
)
from .months import check_month, month_before, month_index, month_label

# Name -> the module (relative to the package) that defines it, imported on first use.
_LAZY = {
    # model
    "make_labels": "model",
    "poverty_status": "model",
    "build_features": "model",
    "LedgerFeatures": "model",
    "FEATURE_NAMES": "model",
    "model_features": "model",
    "training_data": "model",
    "RiskModel": "model",
    "Scorecard": "model",
    "RuleBaseline": "model",
    "time_splits": "model",
    "backtest": "model",
    "BacktestResult": "model",
    "train": "model",
    "TrainResult": "model",
    "save_model": "model",
    "load_model": "model",
    "ModelRef": "model",
    "drift_report": "model",
    # explain
    "cause_contributions": "explain",
    "feature_contributions": "explain",
    "TreeShapExplainer": "explain",
    "explain_households": "explain",
    "explain_month": "explain",
    "explain_one": "explain",
    "explain_household": "explain",
    "HouseholdExplanation": "explain",
    "global_explanations": "explain",
    "cause_shares_by": "explain",
    "shap_explanation": "explain",
    "shap_by_cause": "explain",
    "suggested_measures": "explain",
    "grant_measures": "explain",
    "what_if": "explain",
    # synthetic
    "generate": "synthetic",
    "generate_ledger": "synthetic",
    "SyntheticData": "synthetic",
    # scoring
    "score_frame": "scoring",
    "ScoreFrames": "scoring",
    "score_month": "jobs",
    "ScoreResult": "scoring",
    "score_spark": "scoring",
    # plan
    "plan_frame": "plan",
    "make_plan": "plan",
    "compare_rules": "plan",
    "plan_month": "plan",
    "PlanResult": "plan",
    "PlanInputError": "plan",
    "VisitsFileError": "plan",
    # bulletin
    "read_month": "bulletin",
    "township_table": "bulletin",
    "render_bulletin": "bulletin",
    "write_bulletin": "bulletin",
    # fonts
    "use_cjk_font": "fonts",
    # sources
    "ingest": "sources",
    "IngestResult": "sources",
    "read_sources": "sources",
    "SourceTable": "sources",
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
    # config
    "DEFAULT_MODEL_URI",
    "MODEL_NAME",
    "Config",
    "load_aliases",
    "load_config",
    # errors
    "ArgumentError",
    "ConfigError",
    "LedgerError",
    "ModelNotFoundError",
    "OutputExistsError",
    "RiskModelError",
    "TooFewScoredError",
    "TrackingServerError",
    "TrainingDataError",
    # ledger
    "LEDGER_COLUMNS",
    "LedgerChunks",
    "ValidationResult",
    "load_ledger",
    "parse_months",
    "read_ledger",
    "validate_file",
    "validate_ledger",
    # months
    "check_month",
    "month_before",
    "month_index",
    "month_label",
    *_LAZY,
]
