"""riskmodel: forward-looking, calibrated and explained risk of households falling back into
poverty, for the monthly monitoring ledger (防止返贫动态监测).
"""

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
]
