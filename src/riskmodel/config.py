"""Configuration: pydantic models of ``configs/*.yaml``.

A misspelt or unknown key is an error that names it; nothing falls back to a silent default.
A user's file is laid over ``configs/default.yaml`` (:func:`load_config`), so a county gives only
the keys it changes. Every setting's default lives in ``default.yaml`` alone: the models below
state each key's type and bounds but no default of their own, so a key missing from the file is
an error, never a second default (only the fields of one entry of a list or table, such as
``poverty_lines[].region``, say what the entry means without them).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from .errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
ALIASES_FILE = CONFIG_DIR / "aliases.yaml"
# The registry's names: the registered model, the experiment of training runs, and the model that
# `score`, `plan` and `explain` load unless told otherwise.
MODEL_NAME = "return-to-poverty"
EXPERIMENT = "return-to-poverty"
DEFAULT_MODEL_URI = f"models:/{MODEL_NAME}@champion"

CAUSE_CODES = (
    "illness",
    "disability",
    "accident",
    "education",
    "disaster",
    "labor_shortage",
    "employment",
    "business",
    "housing",
    "water",
    "income",
)


# The figures of a household's own months that reasons quote and evidence rules may read
# (riskmodel.explain computes them; the rules in the cause table name them).
MEMBER_FACTS = [
    "members", "laborers", "labor_full", "elderly", "children", "students",
    "students_noncompulsory", "ill", "chronic_ill", "serious_ill", "disabled", "disabled_severe",
    "dropouts", "migrants_returned", "disabled_adults",
]
MONEY_FACTS = [
    "medical_3m", "medical_12m", "education_12m", "income_12m", "wage_3m", "wage_before",
    "business_3m", "business_before", "income_pc", "line",
    # The highest line in force within the horizon (the coming year's line), and its year.
    "line_ahead",
]
SHARE_FACTS = ["medical_share", "education_share"]
EVENT_FACTS = ["accident", "disaster", "illness", "job_loss", "business_loss"]
FLAG_FACTS = ["housing_unsafe", "water_unsafe"]
FACTS = [
    *MEMBER_FACTS, *MONEY_FACTS, *SHARE_FACTS, *FLAG_FACTS, "observed_months",
    *[f"{e}_events" for e in EVENT_FACTS], *[f"{e}_month" for e in EVENT_FACTS],
    "line_ahead_year",
]
# The figures evidence rules may read: every fact but the months.
RULE_FACTS = [f for f in FACTS if not f.endswith("_month")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelConfig(_Strict):
    horizon_months: int = Field(gt=0, le=36)
    min_observed_months: int = Field(ge=1, le=12)
    target_column: str | None
    kind: Literal["income", "identified", "either"]

    @model_validator(mode="after")
    def _one_target(self) -> LabelConfig:
        # A named target column replaces the derived label; a kind other than the default
        # beside it would be silently ignored.
        if self.target_column is not None and self.kind != "income":
            raise ValueError(
                f"label.target_column ({self.target_column!r}) and label.kind "
                f"({self.kind!r}) both choose the target; set one: target_column null, or "
                "kind income (the default).")
        return self


class PovertyLine(_Strict):
    year: int = Field(ge=2000, le=2100)
    line: float = Field(gt=0)
    region: str | None = None


_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_RULE = re.compile(
    rf"\s*(?P<figure>[a-z_0-9]+)\s*(?:(?P<op><=|>=|<|>)\s*"
    rf"(?:(?P<factor>{_NUMBER})\s*\*\s*)?(?P<other>[a-z_0-9]+|{_NUMBER}))?\s*")


class EvidenceRule(NamedTuple):
    """One evidence rule of a cause (``causes[].evidence``): ``figure op factor * other``
    (``other`` a figure's name) or ``figure op value``; a bare figure's name means
    ``figure > 0``."""

    figure: str
    op: str
    factor: float
    other: str | None
    value: float

    @classmethod
    def parse(cls, text: str) -> EvidenceRule:
        """The rule a string of ``causes[].evidence`` states.

        Examples
        --------
        >>> EvidenceRule.parse("income_pc < 1.5 * line")
        EvidenceRule(figure='income_pc', op='<', factor=1.5, other='line', value=0.0)
        >>> EvidenceRule.parse("ill")
        EvidenceRule(figure='ill', op='>', factor=1.0, other=None, value=0.0)
        """
        match = _RULE.fullmatch(str(text))
        if match is None:
            raise ValueError(
                f"Got evidence rule {text!r}, expected `figure`, `figure > number`, "
                "`figure < other_figure` or `figure < number * other_figure` "
                "(operators <, <=, >, >=)."
            )
        figure, op, factor, other = match.group("figure", "op", "factor", "other")
        if op is None:
            return cls(figure, ">", 1.0, None, 0.0)
        if re.fullmatch(_NUMBER, other):
            if factor is not None:
                raise ValueError(f"Got evidence rule {text!r}, expected a number times a "
                                 "figure's name on the right, not two numbers.")
            return cls(figure, op, 1.0, None, float(other))
        return cls(figure, op, 1.0 if factor is None else float(factor), other, 0.0)

    @property
    def figures(self) -> list[str]:
        """The household figures the rule reads."""
        return [self.figure] if self.other is None else [self.figure, self.other]


class Cause(_Strict):
    code: str
    name_zh: str
    name_en: str
    measures_zh: list[str]
    measures_no_labor_zh: list[str]
    # What the ledger must hold for the cause to be named: any one of these rules.
    evidence: list[str] = []

    @field_validator("code")
    @classmethod
    def _known_code(cls, code: str) -> str:
        if code not in CAUSE_CODES:
            raise ValueError(f"Got cause code {code!r}, expected one of {', '.join(CAUSE_CODES)}.")
        return code

    @field_validator("evidence")
    @classmethod
    def _evidence_rules(cls, rules: list[str]) -> list[str]:
        if not rules:
            return rules
        for text in rules:
            unknown = [f for f in EvidenceRule.parse(text).figures if f not in RULE_FACTS]
            if unknown:
                raise ValueError(f"Evidence rule {text!r} names {unknown[0]!r}, expected "
                                 f"figures of {', '.join(RULE_FACTS)}.")
        return rules

    @property
    def evidence_rules(self) -> list[EvidenceRule]:
        """``evidence`` parsed."""
        return [EvidenceRule.parse(text) for text in self.evidence]


class FeatureSpec(_Strict):
    cause: str
    monotonic: Literal[-1, 0, 1] = 0


class Tiers(_Strict):
    high: float = Field(gt=0, lt=1)
    medium: float = Field(gt=0, lt=1)

    def assign(self, risk) -> np.ndarray:
        """Tier of each probability: ``high``, ``medium``, ``low``, or None when unscored.

        Examples
        --------
        >>> Tiers(high=0.2, medium=0.08).assign([0.3, 0.1, 0.01, float("nan")]).tolist()
        ['high', 'medium', 'low', None]
        """
        risk = np.asarray(risk, dtype="float64")
        return np.select([risk >= self.high, risk >= self.medium, risk >= 0],
                         ["high", "medium", "low"], default=None).astype(object)

    @model_validator(mode="after")
    def _ordered(self) -> Tiers:
        if not self.medium < self.high:
            raise ValueError(
                f"Got tiers medium={self.medium} and high={self.high}, expected medium < high."
            )
        return self


class Triggers(_Strict):
    income_below_line: bool
    medical_oop_12m: float = Field(gt=0)
    housing_unsafe: bool
    dropout: bool
    water_unsafe: bool


class Baseline(_Strict):
    income_ratio: float = Field(gt=0)
    medical_oop_12m: float = Field(gt=0)
    shock_months: int = Field(ge=1)


class MeasureEffect(_Strict):
    column: Literal["inc_wage", "inc_transfer", "exp_medical_oop", "exp_education"]
    amount: float | None = None
    share: float | None = Field(None, ge=-1, le=1)
    months: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> MeasureEffect:
        if (self.amount is None) == (self.share is None):
            raise ValueError("A measure effect needs exactly one of `amount` and `share`.")
        return self


class Measure(_Strict):
    code: str
    name_zh: str
    cost: float = Field(gt=0)
    effect: MeasureEffect
    requires: Literal["labor", "medical_bills", "students"] | None = None


class Scoring(_Strict):
    max_quarantine_share: float = Field(ge=0, le=1)
    chunk_households: int = Field(gt=0)
    threads: int = Field(ge=1)
    workers: int = Field(ge=1)
    drift_psi_warning: float = Field(gt=0)
    experiment: str = Field(min_length=1)
    min_scored_share: float = Field(ge=0, le=1)


class Elimination(_Strict):
    """Rules a household must all meet to be proposed for risk elimination (风险消除)."""

    household_types: list[Literal["exited", "monitored", "general"]]
    months_above_line: int = Field(ge=1, le=36)
    rigid_spending_months: int = Field(ge=1, le=12)
    rigid_spending_max_share: float = Field(ge=0)
    guarantees: list[Literal["insured_all", "housing_safe", "water_safe"]]
    max_risk_tier: Literal["low", "medium"]
    min_laborers: int = Field(ge=1)


class Lifecycle(_Strict):
    elimination: Elimination


class Candidate(_Strict):
    """One candidate of ``model.selection``: a name and the ``model`` keys it changes.

    A key left out keeps the ``model`` block's value; ``exclude_causes`` adds the features of
    those causes (the ``features`` table's ``cause``) to ``exclude_features``.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", max_length=40)
    max_iter: int | None = Field(None, gt=0)
    learning_rate: float | None = Field(None, gt=0, le=1)
    max_leaf_nodes: int | None = Field(None, ge=2)
    min_samples_leaf: int | None = Field(None, ge=1)
    l2_regularization: float | None = Field(None, ge=0)
    max_train_rows: int | None = Field(None, ge=1000)
    calibration: Literal["auto", "isotonic", "sigmoid"] | None = None
    exclude_features: list[str] | None = None
    exclude_causes: list[str] | None = None

    @model_validator(mode="after")
    def _no_empty_override(self) -> Candidate:
        # null is a value only for max_train_rows (every row); elsewhere it would be no setting.
        empty = sorted(k for k in self.model_fields_set
                       if getattr(self, k) is None and k != "max_train_rows")
        if empty:
            raise ValueError(f"candidate {self.name!r} sets {empty[0]!r} to null; expected a "
                             "value, or the key left out to keep the model block's.")
        return self

    @model_serializer(mode="wrap")
    def _given_only(self, handler):
        # Written out and read back, a candidate gives the keys it gave, and no others.
        data = handler(self)
        return {k: v for k, v in data.items() if k == "name" or k in self.model_fields_set}

    def overrides(self) -> dict:
        """The keys this candidate gives, as given (``name`` aside)."""
        return {k: getattr(self, k) for k in type(self).model_fields
                if k in self.model_fields_set and k != "name"}


class ModelSelection(_Strict):
    """``model.selection``: the candidates ``riskmodel train`` backtests and chooses among.

    The ``model`` block as it is runs first as ``base``; then each candidate in order while
    ``max_cost`` allows (units of ``riskmodel.model.candidate_cost``, decided before any run);
    ``time_budget_s`` is a safety cap on wall seconds. ``metric`` is a ranking figure of the
    backtest (``auc``, ``ap``, ``recall_at_<n>pct`` or ``precision_at_<n>pct``), compared by its
    mean over the origins.
    """

    enabled: bool
    time_budget_s: float = Field(gt=0)
    max_cost: float = Field(ge=0)
    metric: str = Field(pattern=r"^(auc|ap|(recall|precision)_at_\d+pct)$")
    candidates: list[Candidate]

    @field_validator("candidates")
    @classmethod
    def _names(cls, candidates: list[Candidate]) -> list[Candidate]:
        names = [c.name for c in candidates]
        if "base" in names:
            raise ValueError("a candidate is named 'base', the name of the model block itself; "
                             "expected another name.")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"candidate {twice[0]!r} is named twice; expected unique names.")
        return candidates


class ModelConfig(_Strict):
    max_iter: int = Field(gt=0)
    learning_rate: float = Field(gt=0, le=1)
    max_leaf_nodes: int = Field(ge=2)
    min_samples_leaf: int = Field(ge=1)
    l2_regularization: float = Field(ge=0)
    validation_months: int = Field(ge=1)
    calibration_months: int = Field(ge=1)
    # Trees refitted on every labelled month once early stopping has fixed their number, and
    # the blocks of out-of-time predictions pooled for the calibrator (docs/training.md).
    refit: bool
    refit_trees: Literal["same", "rows"]
    calibration_folds: int = Field(ge=1)
    calibration_gap: int | None = Field(ge=1)
    # Partly labelled months after the labelled ones whose falls so far move the calibrated
    # level (docs/training.md, "A level that follows the months after the cut-off"); 0: off.
    level_months: int = Field(ge=0)
    random_state: int
    n_iter_no_change: int = Field(ge=1)
    calibration: Literal["auto", "isotonic", "sigmoid"]
    scorecard_bins: int = Field(ge=2)
    scorecard_features: int = Field(ge=1)
    min_positive_labels: int = Field(ge=1)
    max_train_rows: int | None = Field(ge=1000)
    train_households: int | None = Field(ge=1)
    exclude_features: list[str]
    selection: ModelSelection


class BacktestConfig(_Strict):
    origins: int = Field(ge=1)
    test_months: int = Field(ge=1)
    label_embargo: bool
    caseloads: list[float]
    bootstrap: int = Field(ge=0)
    calibration_bins: int = Field(ge=2)
    min_group_rows: int = Field(ge=1)

    @field_validator("caseloads")
    @classmethod
    def _shares(cls, caseloads: list[float]) -> list[float]:
        if not caseloads or any(not 0 < c < 1 for c in caseloads):
            raise ValueError(f"Got caseloads={caseloads!r}, expected shares between 0 and 1.")
        return sorted(caseloads)


class Promotion(_Strict):
    """What ``riskmodel train --alias`` asks of a new model before it moves the alias.

    ``metric`` is a ranking metric of the backtest (``auc``, ``ap``, ``recall_at_<n>pct`` or
    ``precision_at_<n>pct`` for a caseload of ``backtest.caseloads``); gains are differences
    of it, the new model's minus the other's.
    """

    metric: str = Field(pattern=r"^(auc|ap|(recall|precision)_at_\d+pct)$")
    baselines: list[Literal["rules", "rules_income", "scorecard"]] = Field(min_length=1)
    min_gain_over_rules: float = Field(ge=-1, le=1)
    min_gain_over_champion: float = Field(ge=-1, le=1)


class TrainingConfig(_Strict):
    """The training job's policy beyond the model itself."""

    promotion: Promotion


class CauseText(_Strict):
    zh: str
    en: str
    # The text where the line in force within the horizon (``line_ahead``) is above the
    # month's line, so it can quote the coming line; without it ``zh``/``en`` serve.
    zh_ahead: str | None = None
    en_ahead: str | None = None


class Reasons(_Strict):
    """How cause contributions become reason codes, the risk-cause list and reason text."""

    min_weight: float = Field(ge=0)
    max_causes: int = Field(ge=1, le=11)
    text_causes: int = Field(ge=1, le=3)
    labor_shortage_max_labor_share: float = Field(ge=0, le=1)
    structural_margin: float = Field(ge=0)
    counterfactual_min_risk: float | None = Field(ge=0, le=1)
    counterfactual_reach: float = Field(ge=0)
    first_min_share: float | None = Field(ge=0, le=1)
    structural_share: float = Field(ge=0, le=1)
    text: dict[str, CauseText]
    # The causes a low or falling recorded income may be read as (null: every cause with
    # evidence rules but 收入偏低).
    recorded_income_causes: list[str] | None

    @field_validator("recorded_income_causes")
    @classmethod
    def _recorded_codes(cls, codes: list[str] | None) -> list[str] | None:
        unknown = sorted(set(codes or ()) - set(CAUSE_CODES))
        if unknown:
            raise ValueError(
                f"Got cause codes {unknown}, expected codes of {', '.join(CAUSE_CODES)}."
            )
        return codes

    @field_validator("text")
    @classmethod
    def _cause_keys(cls, table: dict) -> dict:
        unknown = sorted(set(table) - set(CAUSE_CODES))
        if unknown:
            raise ValueError(
                f"Got cause codes {unknown}, expected codes of {', '.join(CAUSE_CODES)}."
            )
        return table


class MarginModelConfig(_Strict):
    """The model of how far households fall below the line, which prices help in plans."""

    months: int = Field(ge=1)
    households: int = Field(ge=1)
    max_rows: int = Field(ge=100)
    draws: int = Field(ge=1)
    max_iter: int = Field(gt=0)
    learning_rate: float = Field(gt=0, le=1)
    max_leaf_nodes: int = Field(ge=2)
    min_samples_leaf: int = Field(ge=1)


class PlanConfig(_Strict):
    """Budget and visit plans (``riskmodel plan``)."""

    estimate: Literal["auto", "margin", "response"]
    rule_measure: str
    margin_model: MarginModelConfig


class NamesZh(_Strict):
    """Chinese names of the codes a reader meets: model features, validation rules and the
    reasons a household is not scored (causes and measures carry ``name_zh`` themselves)."""

    features: dict[str, str]
    rules: dict[str, str]
    not_scored: dict[str, str]

    @field_validator("features", "rules", "not_scored")
    @classmethod
    def _named(cls, table: dict[str, str]) -> dict[str, str]:
        blank = [code for code, name in table.items() if not str(name).strip()]
        if blank:
            raise ValueError(f"Got no Chinese name for {blank[0]!r}, expected a name.")
        return table


#: Ledger columns a department warning can set (``sources.warning_rules[].column``).
WARNING_COLUMNS = ("ev_illness", "ev_disability", "ev_accident", "ev_education", "ev_disaster",
                   "ev_job_loss", "ev_business_loss", "ev_epidemic", "housing_unsafe",
                   "water_unsafe", "dibao")
#: Codes of the departments whose warnings the ledger counts (``sources.departments`` maps a
#: department's name to one; the ledger's ``warnings_<code>`` columns).
DEPARTMENT_CODES = ("medical", "civil", "education", "police", "emergency", "disability",
                    "labour", "housing", "water")


class WarningRule(_Strict):
    """Which ledger column a department's warning sets (``sources.warning_rules``)."""

    department: str
    keywords: list[str]
    column: str

    @field_validator("column")
    @classmethod
    def _known_column(cls, column: str) -> str:
        if column not in WARNING_COLUMNS:
            raise ValueError(f"Got warning column {column!r}, expected one of "
                             f"{', '.join(WARNING_COLUMNS)}.")
        return column


class SourcesConfig(_Strict):
    """How ``riskmodel ingest`` reads a county's exports (``sources`` in ``default.yaml``)."""

    header_search_rows: int = Field(ge=1, le=100)
    separators: list[str]
    headers: dict[str, list[str]]
    personal: list[str]
    kinds: dict[str, list[str]]
    values: dict[str, dict[str, str]]
    warning_rules: list[WarningRule]
    departments: dict[str, str]

    @field_validator("departments")
    @classmethod
    def _known_departments(cls, table: dict[str, str]) -> dict[str, str]:
        for name, code in table.items():
            if not str(name).strip():
                raise ValueError(f"sources.departments names a blank department for {code!r}.")
            if code not in DEPARTMENT_CODES:
                raise ValueError(f"Got department code {code!r} for {name!r}, expected one of "
                                 f"{', '.join(DEPARTMENT_CODES)}.")
        return table

    @model_validator(mode="after")
    def _fields_known(self) -> SourcesConfig:
        named = [*self.personal, *[f for fs in self.kinds.values() for f in fs]]
        unknown = [f for f in named if f not in self.headers]
        if unknown:
            raise ValueError(f"sources names field {unknown[0]!r}, which has no spellings "
                             "under sources.headers.")
        return self


class Config(_Strict):
    """The whole configuration of a run.

    Examples
    --------
    >>> cfg = load_config()
    >>> cfg.label.horizon_months
    6
    >>> cfg.line_for(2024, province="云南省")
    8700.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    label: LabelConfig
    poverty_lines: list[PovertyLine]
    causes: list[Cause]
    features: dict[str, FeatureSpec]
    tiers: Tiers
    triggers: Triggers
    baseline: Baseline
    measures: list[Measure]
    scoring: Scoring
    model: ModelConfig
    backtest: BacktestConfig
    training: TrainingConfig
    reasons: Reasons
    lifecycle: Lifecycle
    plan: PlanConfig
    sources: SourcesConfig
    names_zh: NamesZh

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        codes = [c.code for c in self.causes]
        if len(set(codes)) != len(codes):
            raise ValueError("Cause codes must be unique.")
        for name, spec in self.features.items():
            if spec.cause not in codes:
                raise ValueError(
                    f"Feature {name!r} names cause {spec.cause!r}, expected one of "
                    f"{', '.join(codes)}."
                )
        seen = set()
        for pl in self.poverty_lines:
            key = (pl.year, pl.region)
            if key in seen:
                raise ValueError(f"Poverty line for year={pl.year} region={pl.region!r} twice.")
            seen.add(key)
        return self

    @model_validator(mode="after")
    def _names_of_features(self) -> Config:
        # A misspelt feature code would leave the feature it meant shown as its code.
        unknown = [n for n in self.names_zh.features if n not in self.features]
        if self.features and unknown:
            raise ValueError(f"names_zh.features names {unknown[0]!r}, which is not a feature "
                             "of the `features` table.")
        return self

    @cached_property
    def cause_by_code(self) -> dict[str, Cause]:
        return {c.code: c for c in self.causes}

    def line_for(self, year: int, province: str | None = None, county: str | None = None) -> float:
        """The monitoring line for one year and place: county, then province, then national."""
        table = self.line_table()
        for region in [r for r in (county, province) if r] + [None]:
            hit = table.get((year, region))
            if hit is not None:
                return hit
        known = sorted({y for y, _ in table})
        raise ConfigError(f"No poverty line for year {year}; lines are configured for {known}.")

    def line_table(self) -> dict[tuple[int, str | None], float]:
        return {(pl.year, pl.region): float(pl.line) for pl in self.poverty_lines}


def _format_validation_error(err: ValidationError, source: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key {loc!r}")
        else:
            parts.append(f"{loc or 'config'}: {e['msg']}")
    return f"{source}: " + "; ".join(parts)


def _duplicate_key(node: yaml.Node, path: str = "") -> tuple[str, int, int] | None:
    """The first key given twice in one mapping under ``node``: its dotted path and both lines."""
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            if found := _duplicate_key(item, f"{path}.{i}" if path else str(i)):
                return found
    elif isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            # A merge key (``<<``) brings keys that the mapping's own keys may override.
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            name = f"{path}.{key}" if path else key
            if key in lines:
                return name, lines[key], line
            lines[key] = line
            if found := _duplicate_key(value_node, name):
                return found
    return None


def _read_yaml(source: Path):
    """The YAML document of ``source``; any failure, or a key given twice, is a ConfigError."""
    try:
        loader = yaml.SafeLoader(source.read_text(encoding="utf-8-sig"))
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            duplicate = _duplicate_key(node)
            if duplicate is not None:
                name, first, second = duplicate
                # YAML itself keeps the last of two equal keys: a block pasted twice would
                # silently replace the first.
                raise ConfigError(f"{source}: key {name!r} appears twice, on lines {first} and "
                                  f"{second}; expected each key once.")
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found.") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a folder; expected a YAML config file.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text (saved as GBK?); save the config as "
                          "UTF-8.") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read ({exc.strerror or exc}).") from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_yaml_error(source, exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc.__class__.__name__}).") from None


def _yaml_error(source: Path, exc: yaml.MarkedYAMLError) -> str:
    """One line naming where the YAML breaks: file, line and column (1-based), and what broke."""
    mark = exc.problem_mark or exc.context_mark
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = " ".join(str(exc.problem or exc.context or "").split())
    return (f"{source}{where}: not valid YAML" + (f": {what}" if what else "")
            + f" ({exc.__class__.__name__}).")


def _layered(base: dict, override: dict) -> dict:
    """``override`` laid over ``base``: mappings merge key by key, anything else (a list, a
    number, a string) replaces the base's value whole."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _layered(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a YAML configuration, laid over the packaged defaults.

    A county's file gives only the keys it changes: its mappings merge key by key into
    ``configs/default.yaml`` (``label: {horizon_months: 3}`` keeps the rest of ``label``),
    while a list or a single value replaces the default's whole (``poverty_lines`` lists every
    line the county uses). Unknown keys are still errors.

    Parameters
    ----------
    path : str or Path, optional
        YAML file of overrides (a complete config is an override of every key). ``None``
        loads the packaged ``default.yaml`` alone.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        The file is missing, is not YAML (the message gives the line and column), gives a key
        twice in one mapping, or has an unknown, misspelt or invalid key.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> county = Path(tempfile.mkdtemp()) / "county.yaml"
    >>> _ = county.write_text("poverty_lines:\\n  - {year: 2024, line: 9000}\\n", encoding="utf-8")
    >>> cfg = load_config(county)
    >>> cfg.line_for(2024), cfg.causes == load_config().causes
    (9000.0, True)
    """
    source = Path(path) if path is not None else DEFAULT_CONFIG
    raw = _read_yaml(source)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level.")
    if source.resolve() != DEFAULT_CONFIG.resolve():
        raw = _layered(_read_yaml(DEFAULT_CONFIG), raw)
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, str(source))) from None


def load_aliases(path: str | Path | None = None) -> dict[str, str]:
    """Map of a county export's Chinese headers to the ledger's column names.

    Raises
    ------
    ConfigError
        The file is not a mapping of columns to lists of headers, or one header is listed
        under two columns (which column it means would be a guess).
    """
    source = Path(path) if path is not None else ALIASES_FILE
    raw = _read_yaml(source)
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        raise ConfigError(f"{source}: expected a mapping of each column to a list of headers.")
    aliases: dict[str, str] = {}
    for column, names in raw.items():
        for name in (str(n).strip() for n in names):
            if aliases.get(name, column) != column:
                raise ConfigError(f"{source}: header {name!r} is listed under both "
                                  f"{aliases[name]!r} and {column!r}; expected it under one.")
            aliases[name] = column
    return aliases
