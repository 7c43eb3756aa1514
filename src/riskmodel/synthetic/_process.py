"""Process specifications: a household process as a YAML file of structural knobs.

A specification names a process, says whether it is held out, and sets any of the scale
parameters of :class:`Params` (``params:``) and the structural knobs of :class:`Knobs`, in
sections: ``bills``, ``wages``, ``employment``, ``villages``, ``correlated``, ``composition``,
``visits`` and ``lines``. What it leaves out is the default process. The packaged processes are
``processes/<name>.yaml`` beside this module; ``docs/synthetic.md`` ("Processes") describes every
key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..config import Config, PovertyLine
from ..errors import ConfigError
from ._knobs import DEFAULT_KNOBS, DEFAULT_LINES, Knobs
from ._simulate import PROVINCE, Params, policy_line

PROCESS_DIR = Path(__file__).with_name("processes")
#: The packaged processes, by name (``processes/<name>.yaml``).
PROCESSES = ("default", "seasonal", "long-bills", "volatile-wages", "return-migration",
             "village-shocks", "sparse-visits")

_Share = Annotated[float, Field(ge=0, le=1)]
_Positive = Annotated[float, Field(gt=0)]
_NonNegative = Annotated[float, Field(ge=0)]
_Months = Annotated[int, Field(ge=1, le=60)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Bills(_Section):
    illness_bill_sd: _NonNegative | None = None
    accident_bill_sd: _NonNegative | None = None
    chronic_share: _Share | None = None
    sick_recovery: _Share | None = None
    injury_recovery: _Share | None = None
    serious_recovery: _Share | None = None


class _Wages(_Section):
    seasonality: _NonNegative | None = None
    volatility: _NonNegative | None = None
    volatility_spread: _NonNegative | None = None
    persistence: Annotated[float, Field(ge=0, lt=1)] | None = None
    trend_sd: _NonNegative | None = None


class _Employment(_Section):
    return_rate: _Share | None = None
    cycle_amplitude: _Share | None = None
    cycle_wage: _Share | None = None
    cycle_months: Annotated[int, Field(ge=2, le=240)] | None = None


_Twelve = Field(min_length=12, max_length=12)


class _Villages(_Section):
    disaster_season: Annotated[list[_NonNegative], _Twelve] | None = None
    harvest_shock_rate: _Share | None = None
    disaster_months: tuple[_Months, _Months] | None = None
    disaster_wage_cut: _Share | None = None
    severity_spread: Annotated[float, Field(ge=0, le=2)] | None = None
    business_months: tuple[_Months, _Months] | None = None
    job_wave_rate: _Share | None = None
    job_wave_loss: _Share | None = None


class _Correlated(_Section):
    illness_job_loss: _Share | None = None
    disaster_illness: _NonNegative | None = None


class _Composition(_Section):
    elderly_death_rate: _Share | None = None
    departure_rate: _Share | None = None


class _Visits(_Section):
    month_odds: Annotated[list[_Positive], _Twelve] | None = None
    migrant_odds: _Positive | None = None
    village_sd: _NonNegative | None = None


_PARAM_TYPES = {f.name: (int if f.type in (int, "int") else float) for f in fields(Params)}
_Params = create_model(
    "_Params", __base__=_Section,
    **{name: (Annotated[kind, Field(gt=0) if kind is int else Field(ge=0)] | None, None)
       for name, kind in _PARAM_TYPES.items()})
# Knobs whose section key differs from the knob's name.
_RENAMED = {"visits": "visit_"}


class _Spec(_Section):
    name: Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    description: Annotated[str, Field(min_length=1)]
    held_out: bool = False
    params: _Params = _Params()  # type: ignore[valid-type]
    bills: _Bills = _Bills()
    wages: _Wages = _Wages()
    employment: _Employment = _Employment()
    villages: _Villages = _Villages()
    correlated: _Correlated = _Correlated()
    composition: _Composition = _Composition()
    visits: _Visits = _Visits()
    lines: dict[Annotated[int, Field(ge=2000, le=2100)], _Positive] = {}


@dataclass(frozen=True)
class Process:
    """A household process: its name, whether it is held out, its parameters and knobs.

    Attributes
    ----------
    name, description : str
        As the specification gives them.
    held_out : bool
        No choice of features, hyperparameters, reason rules or plan settings may be made
        looking at a held-out process; it only measures.
    params : Params
        The scale parameters.
    knobs : Knobs
        The structural knobs.
    source : Path or None
        The specification's file.
    """

    name: str
    description: str
    held_out: bool = False
    params: Params = field(default_factory=Params)
    knobs: Knobs = DEFAULT_KNOBS
    source: Path | None = field(default=None, compare=False)

    @property
    def is_default(self) -> bool:
        """Whether it is the default process (same parameters and knobs)."""
        return self.params == Params() and self.knobs == DEFAULT_KNOBS

    def apply_lines(self, config: Config) -> Config:
        """``config`` with the process's own lines for its province (as is when it has none).

        Parameters
        ----------
        config : Config
            A configuration.

        Returns
        -------
        Config
            The same configuration where the process keeps the default lines; else, for every
            year the configuration has a line, the 云南省 line the process's cadres act on
            (the nearest year of the process's table outside it).
        """
        if self.knobs.lines == DEFAULT_LINES:
            return config
        years = sorted({pl.year for pl in config.poverty_lines})
        own = {y: policy_line(y, self.knobs.lines) for y in years}
        own = {y: v for y, v in own.items() if config.line_for(y, province=PROVINCE) != v}
        if not own:
            return config
        kept = [pl for pl in config.poverty_lines
                if not (pl.region == PROVINCE and pl.year in own)]
        added = [PovertyLine(year=y, line=v, region=PROVINCE) for y, v in sorted(own.items())]
        return Config.model_validate({**config.model_dump(), "poverty_lines": [
            pl.model_dump() for pl in [*kept, *added]]})


def _error(err: ValidationError, source: Path) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {key!r} in a process specification."
    if first["type"] == "missing":
        return f"{source}: key {key!r} is required in a process specification."
    return f"{source}: {key}: {first['msg']} (got {first.get('input')!r})."


def _process(spec: _Spec, source: Path | None) -> Process:
    params = replace(Params(), **{k: v for k, v in spec.params.model_dump().items()
                                  if v is not None})
    knobs: dict[str, object] = {}
    for section in ("bills", "wages", "employment", "villages", "correlated", "composition",
                    "visits"):
        prefix = _RENAMED.get(section, "")
        for key, value in getattr(spec, section).model_dump().items():
            if value is not None:
                knobs[prefix + key] = tuple(value) if isinstance(value, list | tuple) else value
    for name in ("disaster_months", "business_months"):
        if name in knobs and knobs[name][0] > knobs[name][1]:
            raise ConfigError(f"{source}: villages.{name} is {list(knobs[name])}, expected "
                              "[shortest, longest] with shortest ≤ longest.")
    lines = {**dict(DEFAULT_LINES), **{y: float(v) for y, v in spec.lines.items()}}
    knobs["lines"] = tuple(sorted(lines.items()))
    return Process(spec.name, spec.description.strip(), spec.held_out, params,
                   Knobs(**knobs), source)


def load_process(name_or_path: str | Path) -> Process:
    """Load a process: a packaged name (:data:`PROCESSES`) or a specification's YAML file.

    Parameters
    ----------
    name_or_path : str or Path
        ``"default"``, another packaged name, or the path of a ``.yaml`` file.

    Returns
    -------
    Process

    Raises
    ------
    ConfigError
        An unknown name, a file that cannot be read, an unknown key (named in the message) or
        a value out of range.

    Examples
    --------
    >>> from riskmodel.synthetic import load_process
    >>> load_process("default").is_default
    True
    >>> [name for name in PROCESSES if load_process(name).held_out]
    ['village-shocks', 'sparse-visits']
    """
    text = str(name_or_path)
    if text in PROCESSES:
        path = PROCESS_DIR / f"{text}.yaml"
    else:
        path = Path(name_or_path)
        if path.suffix.lower() not in (".yaml", ".yml"):
            raise ConfigError(f"Got process {text!r}, expected one of {', '.join(PROCESSES)} "
                              "or a .yaml file.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the process specification "
                          f"({type(exc).__name__}).") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level.")
    try:
        spec = _Spec.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_error(err, path)) from None
    return _process(spec, path)


def resolve_process(process: str | Path | Process | None) -> Process:
    """A :class:`Process` from what ``generate`` was given (None: the default process)."""
    if process is None:
        return load_process("default")
    return process if isinstance(process, Process) else load_process(process)
