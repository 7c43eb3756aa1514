"""Errors a user can act on. Each carries a one-line message and the CLI exit code."""


class RiskModelError(Exception):
    """Base class: a clear, one-line reason the run cannot go on."""

    exit_code = 1


class ConfigError(RiskModelError):
    """The configuration file is missing, malformed or names an unknown key."""

    exit_code = 2


class LedgerError(RiskModelError):
    """The ledger cannot be read: missing file, unsupported type, missing required column."""

    exit_code = 2


class SourceError(LedgerError):
    """A county's export cannot be ingested: an unreadable file, no download month, no person
    table."""


class TrainingDataError(RiskModelError):
    """The ledger cannot train a model: too few months or positive labels."""

    exit_code = 2


class ModelNotFoundError(RiskModelError):
    """The model cannot be loaded or does not fit the ledger's columns."""

    exit_code = 3


class OutputExistsError(RiskModelError):
    """The month's output exists already and ``--force`` was not given, or a run holds it."""

    exit_code = 4


class ArgumentError(RiskModelError, ValueError):
    """An argument is malformed or out of range: a seed, a month, an alias, an output path."""

    exit_code = 2


class TrackingServerError(RiskModelError):
    """The MLflow tracking server named by the tracking URI cannot be reached."""

    exit_code = 5


class TooFewScoredError(RiskModelError):
    """None, or fewer than ``scoring.min_scored_share``, of the month's valid households could
    be scored (too little income history, income columns left empty, all under the line)."""

    exit_code = 6
