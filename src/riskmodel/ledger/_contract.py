"""JSON contracts: the summary files other tools read, written and read through a model.

:class:`Contract` is the base of the pydantic models of ``summary.json``
(:class:`riskmodel.scoring.RunSummary`) and ``plan_summary.json``
(:class:`riskmodel.plan.PlanSummary`): no field beyond those listed (``extra="forbid"``), a
``schema_version``, and one way to read (one clear :class:`~riskmodel.errors.LedgerError`
line on any fault) and to write (pretty UTF-8 JSON, Chinese kept readable, no NaN).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import LedgerError


class Part(BaseModel):
    """A part of a contract: no field beyond those listed."""

    model_config = ConfigDict(extra="forbid")


class Contract(Part):
    """A JSON file other tools read; subclasses add ``schema_version`` and their fields."""

    expected: ClassVar[str] = "expected the file written by riskmodel"

    @classmethod
    def read(cls, path: str | Path):
        """Read the file.

        Raises
        ------
        LedgerError
            Not UTF-8 JSON, or not the object this model describes.
        """
        path, expected = Path(path), cls.expected
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise LedgerError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                              f"{expected}.") from None
        except UnicodeDecodeError:
            raise LedgerError(f"{path}: not UTF-8 text; {expected}.") from None
        if not isinstance(data, dict):
            raise LedgerError(f"{path}: holds {json_kind(data)}; {expected}, an object.")
        return cls.parse(data, path)

    @classmethod
    def parse(cls, data: dict, where: str | Path = "summary"):
        """The model of ``data`` (a mapping as read from JSON); a LedgerError when it is not."""
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is not None and _is_part(field.annotation) and not isinstance(
                    value, dict | None):
                raise LedgerError(f"{where}: {name!r} holds {json_kind(value)}; "
                                  f"{cls.expected}, where it is an object.")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            at = ".".join(str(p) for p in first["loc"]) or "the file"
            raise LedgerError(f"{where}: {at}: {first['msg']}; {cls.expected}.") from None

    def write(self, path: str | Path) -> Path:
        """Pretty UTF-8 JSON of the fields set, the schema version first."""
        path = Path(path)
        data = {"schema_version": self.schema_version,
                **self.model_dump(mode="python", exclude_unset=True)}
        path.write_text(json.dumps(_plain(data), ensure_ascii=False, indent=2, allow_nan=False)
                        + "\n", encoding="utf-8")
        return path


def _is_part(annotation) -> bool:
    return any(isinstance(a, type) and issubclass(a, BaseModel)
               for a in getattr(annotation, "__args__", (annotation,)))


def _plain(value):
    """JSON-ready: numpy scalars as Python numbers, NaN as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_kind(value) -> str:
    """``"an array"``, ``"a string"``…: what a JSON value is, for an error message."""
    kinds = {list: "an array", str: "a string", bool: "true or false", int: "a number",
             float: "a number"}
    return kinds.get(type(value), type(value).__name__)
