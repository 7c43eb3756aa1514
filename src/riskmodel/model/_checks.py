"""Checks the monthly jobs (``score``, ``plan``) share before and while they read a ledger.

- :func:`check_model` refuses what is not a fitted risk model of this version.
- :func:`check_columns` refuses a model whose features the ledger leaves entirely empty.
- :class:`EmptyColumns` gathers, chunk by chunk, the columns a file leaves empty in every row,
  as ``riskmodel validate`` reports them.
- :class:`Coverage` counts the month's valid households that could be scored and why the
  others could not; :meth:`Coverage.check` refuses a month under ``scoring.min_scored_share``.

Both jobs raise the same errors with the same messages, so an operator reads one reason
whichever command stopped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelNotFoundError, TooFewScoredError
from ..ledger import LEDGER_COLUMNS, split_empty_columns
from ._features import FEATURE_NAMES
from ._tracking import ModelRef

# How the reasons a household has no score read in the one-line message.
NOT_SCORED_TEXT = {
    "poor_now": "already under the poverty line",
    "insufficient_history": "too little income history",
}


def check_model(model, ref: ModelRef) -> list[str]:
    """The model's feature names, once it is known to be a fitted model of this version.

    Parameters
    ----------
    model : object
        What :func:`riskmodel.model.load_model` loaded.
    ref : ModelRef
        Where it was loaded from (named in the error).

    Returns
    -------
    list of str
        ``model.feature_names_in_``.

    Raises
    ------
    ModelNotFoundError
        Exit code 3: no ``feature_names_in_`` or ``predict_proba``, or a feature this version
        does not build from the ledger.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None or not hasattr(model, "predict_proba"):
        raise ModelNotFoundError(f"{ref.uri} is not a fitted risk model (no feature_names_in_ "
                                 "or predict_proba).")
    unknown = [str(n) for n in names if str(n) not in FEATURE_NAMES]
    if unknown:
        raise ModelNotFoundError(
            f"{ref.uri} needs {len(unknown)} feature(s) this version does not build from the "
            f"ledger, e.g. {unknown[0]!r}; retrain the model or use a matching riskmodel.")
    return [str(n) for n in names]


def check_columns(model, ref: ModelRef, counts: dict | None) -> None:
    """Refuse a model whose features this ledger leaves entirely empty but training had.

    Parameters
    ----------
    model : RiskModel
        With ``reference_`` (the training distribution of each feature).
    ref : ModelRef
    counts : dict or None
        Summed :func:`riskmodel.model.count_bins` (or :func:`known_and_missing`) of the month's
        scored households: per feature, counts whose last is of missing values; None (nothing
        to check) when the model carries no reference.

    Raises
    ------
    ModelNotFoundError
        Exit code 3: a feature missing for every household that training rarely missed.
    """
    if not counts:
        return
    empty = []
    for name, observed in counts["features"].items():
        total = float(np.sum(observed))
        expected = float(model.reference_["features"][name].get("missing", 0.0))
        if total and observed[-1] == total and expected < 0.5:
            empty.append(name)
    if empty:
        raise ModelNotFoundError(
            f"{ref.uri} is incompatible with this ledger: {len(empty)} feature(s) it was "
            f"trained on are empty for every household, e.g. {empty[0]!r} — the ledger lacks "
            "the column(s) they are built from, or leaves them empty in every row.")


def known_and_missing(features) -> dict:
    """Per feature, the counts of known and of missing values: what :func:`check_columns`
    reads, without binning the known values as drift needs.

    Examples
    --------
    >>> import pandas as pd
    >>> known_and_missing(pd.DataFrame({"x": [1.0, None, 2.0]}))["features"]["x"].tolist()
    [2, 1]
    """
    missing = features.isna().sum().to_numpy()
    return {"features": {name: np.array([len(features) - m, m], dtype="int64")
                         for name, m in zip(features.columns, missing, strict=True)}}


class EmptyColumns:
    """The contract columns a ledger file has but leaves empty in every row, chunk by chunk.

    A column is empty in the file when every chunk's validation lists it
    (:attr:`riskmodel.ledger.ValidationResult.empty_columns`), or when it is one of the optional
    counts the file leaves unfilled and the chunks read as absent
    (:attr:`riskmodel.ledger.LedgerChunks.unfilled`), as ``riskmodel validate`` decides.

    Examples
    --------
    >>> empty = EmptyColumns(unfilled=["elderly"])
    >>> empty.add(["inc_wage", "dibao"])
    >>> empty.add(["inc_wage"])
    >>> empty.columns, empty.warnings()
    (['elderly', 'inc_wage'], ['ledger columns present but empty in every row (read as unknown): elderly, inc_wage'])
    """  # noqa: E501

    def __init__(self, unfilled: Iterable[str] = ()):
        self.unfilled = list(unfilled)
        self._empty: set[str] | None = None

    def add(self, columns: Iterable[str] | None) -> None:
        """One chunk's empty columns; ``None`` when the chunk did not say."""
        if columns is not None:
            self._empty = set(columns) if self._empty is None else self._empty & set(columns)

    @property
    def columns(self) -> list[str]:
        """The file's empty columns, in contract order."""
        empty = (self._empty or set()) | set(self.unfilled)
        return [c for c in LEDGER_COLUMNS if c in empty]

    def warnings(self) -> list[str]:
        """The lines ``riskmodel validate`` prints for them, for ``summary.json``."""
        unknown, needed = split_empty_columns(self.columns)
        out = []
        if unknown:
            out.append("ledger columns present but empty in every row (read as unknown): "
                       + ", ".join(unknown))
        if needed:
            out.append("ledger columns present but empty in every row, which every row needs a "
                       "value in (each row quarantined): " + ", ".join(needed))
        return out


@dataclass
class Coverage:
    """How many of a month's valid households could be scored, and why the others could not.

    Attributes
    ----------
    month : str
    households : int
        Valid households of the month.
    scored : int
    by_reason : dict
        ``not_scored_reason`` → households.
    months_recorded : dict
        Households with too little income history by the number of the last 12 months with
        income recorded.
    min_months : int
        ``label.min_observed_months``.
    empty_columns : list of str
        Ledger columns present but empty in every row, read as unknown.

    Examples
    --------
    >>> c = Coverage("2024-12", 300, 0, {"insufficient_history": 300}, {0: 300}, 6,
    ...              ["inc_wage"])
    >>> print(c.describe())
    0 of 300 valid households of 2024-12 could be scored: 300 too little income history \
(insufficient_history; income recorded in fewer than 6 of the last 12 months: 300 with none); \
ledger columns present but empty in every row: inc_wage
    """

    month: str
    households: int
    scored: int
    by_reason: dict
    months_recorded: dict = field(default_factory=dict)
    min_months: int = 6
    empty_columns: list = field(default_factory=list)

    @property
    def share(self) -> float:
        """Scored over valid households; 0 when the month has none."""
        return self.scored / self.households if self.households else 0.0

    def describe(self) -> str:
        """One line: the counts, the reasons with their counts, the empty columns."""
        reasons = []
        for reason, n in sorted(self.by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
            if not n:
                continue
            text = f"{n:,} {NOT_SCORED_TEXT.get(reason, reason)} ({reason}"
            if reason == "insufficient_history" and self.months_recorded:
                groups = sorted((int(k), int(v)) for k, v in self.months_recorded.items())
                shown = ", ".join(f"{v:,} with {'none' if k == 0 else f'{k} month(s)'}"
                                  for k, v in groups[:4])
                text += (f"; income recorded in fewer than {self.min_months} of the last 12 "
                         f"months: {shown}{' …' if len(groups) > 4 else ''}")
            reasons.append(text + ")")
        share = f" ({self.share:.1%})" if self.scored else ""
        line = (f"{self.scored:,} of {self.households:,} valid households{share} of {self.month} "
                "could be scored")
        if reasons:
            line += ": " + ", ".join(reasons)
        unknown, _ = split_empty_columns(self.empty_columns)
        if unknown:
            line += "; ledger columns present but empty in every row: " + ", ".join(unknown)
        return line

    def check(self, min_share: float, allow: bool = False) -> str | None:
        """Refuse a month under ``min_share``, or, with ``allow``, the warning to record.

        Parameters
        ----------
        min_share : float
            ``scoring.min_scored_share``.
        allow : bool, default=False
            ``--allow-unscored``: publish anyway.

        Returns
        -------
        str or None
            The warning for ``summary.json`` when the month is under ``min_share`` and
            ``allow`` is true; None when the month is not under it.

        Raises
        ------
        TooFewScoredError
            Exit code 6: no household, or fewer than ``min_share`` of them, could be scored
            and ``allow`` is false.
        """
        if self.scored and self.share >= min_share:
            return None
        under = f"; under scoring.min_scored_share ({min_share:.0%})" if self.scored else ""
        if allow:
            return f"{self.describe()}{under}; published because --allow-unscored was given"
        raise TooFewScoredError(f"{self.describe()}{under}. Nothing was published; "
                                "--allow-unscored publishes anyway.")
