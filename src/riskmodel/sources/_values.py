"""Cell values of a county's exports read through the configured vocabularies and formats.

Every reader works on the distinct values of a column (a table of millions of persons holds a
few thousand distinct cells per column) and returns one value per row plus what it could not
read: a value outside its vocabulary or format is counted in :class:`Unknown` and read as
missing, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..months import month_label

#: Fields read as money (yuan): ``,`` and ``元`` are removed before parsing.
MONEY = ["annual_inc_wage", "annual_inc_business", "annual_inc_property", "annual_inc_transfer",
         "annual_exp_medical_oop", "annual_income_pc", "annual_income_total", "migrant_wage",
         "amount"]
#: Fields read as months (``YYYY-MM``).
MONTHS = ["identified_month", "eliminated_month", "warning_month", "work_start", "work_end"]
#: Fields whose codes are ``"true"`` / ``"false"``.
FLAGS = ["risk_eliminated", "dropout", "working", "dibao", "tekun", "welfare_job",
         "housing_unsafe", "water_safe"]
#: The code a vocabulary gives a value that means "nothing recorded".
NONE = "none"

_MONTH = re.compile(r"^(\d{4})(?:[-/.]?(\d{1,2})|年(\d{1,2})月)"
                    r"(?:[-/.]?(\d{1,2})日?)?(?:\d{1,2}:\d{2}(?::\d{2})?)?$")
_YEAR = re.compile(r"^(\d{4})(?:年度?)?$")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Text as headers and values are matched: Unicode NFKC, all whitespace removed.

    Examples
    --------
    >>> normalise("工资性收入（元） "), normalise("１２ ０００")
    ('工资性收入(元)', '12000')
    """
    return _SPACE.sub("", unicodedata.normalize("NFKC", str(text)))


class Unknown:
    """Values read as missing because no vocabulary or format knows them: field -> value -> rows.

    Personal fields are never recorded (their values must not reach the report).
    """

    def __init__(self, personal: list[str] | tuple[str, ...] = ()):
        self.personal = set(personal)
        self.counts: dict[str, Counter] = defaultdict(Counter)

    def add(self, field: str, values: np.ndarray, counts: np.ndarray) -> None:
        if field in self.personal:
            return
        for value, count in zip(values, counts, strict=True):
            if count:
                self.counts[field][str(value)] += int(count)

    def as_dict(self, order: list[str]) -> dict[str, dict[str, int]]:
        """Fields in ``order`` (then any other, by name); values by count, then text."""
        fields = [f for f in order if f in self.counts]
        fields += sorted(f for f in self.counts if f not in fields)
        return {f: dict(sorted(self.counts[f].items(), key=lambda kv: (-kv[1], kv[0])))
                for f in fields if self.counts[f]}


def column(frame: pd.DataFrame, field: str) -> pd.Series:
    """The field's cells, ``""`` for every row when the file has no such column."""
    if field in frame:
        return frame[field]
    return pd.Series("", index=frame.index, dtype="string")


def distinct(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the cells into their distinct texts (NA read as ""), and those texts."""
    array = pa.array(series.array, type=pa.large_string(), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    encoded = pc.dictionary_encode(pc.fill_null(array, ""))
    return (encoded.indices.to_numpy(zero_copy_only=False),
            np.asarray(encoded.dictionary.to_pylist(), dtype=object))


def _report(field: str, uniques: np.ndarray, codes: np.ndarray, bad: np.ndarray,
            unknown: Unknown | None) -> None:
    if unknown is not None and bad.any():
        counts = np.bincount(codes, minlength=len(uniques))
        unknown.add(field, uniques[bad], counts[bad])


def vocabulary(field: str, series: pd.Series, vocab: dict[str, str],
               unknown: Unknown | None = None) -> pd.Series:
    """Codes of the values through ``vocab`` (keys normalised), as a categorical series; NaN
    for a value not listed. A blank cell not in the vocabulary is NaN and not reported.

    Examples
    --------
    >>> vocabulary("labor_skill", pd.Series(["技能劳动力", "弱劳动力或半劳动力", "?"]),
    ...            {"技能劳动力": "full", "弱劳动力或半劳动力": "partial"}).tolist()
    ['full', 'partial', nan]
    """
    table = {normalise(k): v for k, v in vocab.items()}
    codes, uniques = distinct(series)
    mapped = [table.get(u) for u in uniques]
    bad = np.array([m is None and u != "" for u, m in zip(uniques, mapped, strict=True)],
                   dtype=bool)
    _report(field, uniques, codes, bad, unknown)
    categories = sorted({m for m in mapped if m is not None})
    position = {c: i for i, c in enumerate(categories)}
    per_unique = np.array([position.get(m, -1) for m in mapped], dtype="int64")
    return pd.Series(pd.Categorical.from_codes(per_unique[codes] if len(codes) else codes,
                                               categories=categories), index=series.index)


def flags(field: str, series: pd.Series, vocab: dict[str, str],
          unknown: Unknown | None = None, numbers: bool = False) -> pd.Series:
    """A yes/no field as nullable booleans (NA: blank without a code, ``none``, or unknown).

    With ``numbers``, a value outside the vocabulary that is a number reads as ``number > 0``
    (公益性岗位 may hold the months held).
    """
    table = {normalise(k): v for k, v in vocab.items()}
    codes, uniques = distinct(series)
    out = np.full(len(uniques), -1, dtype="int8")
    bad = np.zeros(len(uniques), dtype=bool)
    for i, value in enumerate(uniques):
        code = table.get(value)
        if code is None and numbers and value != "":
            number = pd.to_numeric(value.replace(",", ""), errors="coerce")
            code = None if pd.isna(number) else ("true" if number > 0 else "false")
        if code is None:
            bad[i] = value != ""
        elif code in ("true", "false"):
            out[i] = code == "true"
    _report(field, uniques, codes, bad, unknown)
    rows = out[codes]
    return pd.Series(pd.arrays.BooleanArray(rows == 1, rows < 0), index=series.index)


def money(field: str, series: pd.Series, unknown: Unknown | None = None) -> pd.Series:
    """Yuan as float64 (NaN when blank or unreadable); ``,`` and ``元`` removed.

    Examples
    --------
    >>> money("annual_inc_wage", pd.Series(["12,000", "3500元", "", "-200.5"])).tolist()
    [12000.0, 3500.0, nan, -200.5]
    """
    codes, uniques = distinct(series)
    text = pd.Series(uniques, dtype="string").str.replace(",", "", regex=False)
    text = text.str.replace("元", "", regex=False)
    values = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan, copy=True)
    values[~np.isfinite(values)] = np.nan
    bad = np.isnan(values) & (uniques != "")
    _report(field, uniques, codes, bad, unknown)
    return pd.Series(values[codes], index=series.index, dtype="float64")


def _parse_months(uniques: np.ndarray, need_day: bool = False) -> np.ndarray:
    """Month numbers (year × 12 + month − 1) of distinct texts; -1 where unreadable.

    Eight ASCII digits (``YYYYMMDD``, the birth date a 证件号码 carries), the common case, are
    read by their positions; any other text by the pattern.
    """
    uniques = np.asarray(uniques, dtype=object)
    plain = pc.match_substring_regex(pa.array(uniques, type=pa.large_string()),
                                     r"^[0-9]{8}$").to_numpy(zero_copy_only=False)
    if not plain.any():
        return _parse_pattern(uniques, need_day)
    out = np.full(len(uniques), -1, dtype="int64")
    digits = (np.frombuffer("".join(uniques[plain]).encode("ascii"), dtype=np.uint8)
              .reshape(-1, 8).astype("int64") - ord("0"))
    year = digits[:, :4] @ np.array([1000, 100, 10, 1])
    month = digits[:, 4] * 10 + digits[:, 5]
    ok = (month >= 1) & (month <= 12)
    if need_day:
        day = digits[:, 6] * 10 + digits[:, 7]
        ok &= (day >= 1) & (day <= 31)
    out[plain] = np.where(ok, year * 12 + month - 1, -1)
    if not plain.all():
        out[~plain] = _parse_pattern(uniques[~plain], need_day)
    return out


def _parse_pattern(uniques: np.ndarray, need_day: bool) -> np.ndarray:
    parts = pd.Series(uniques, dtype="string").str.extract(_MONTH)
    year = pd.to_numeric(parts[0], errors="coerce")
    month = pd.to_numeric(parts[1].fillna(parts[2]), errors="coerce")
    ok = year.notna() & month.between(1, 12)
    if need_day:
        day = pd.to_numeric(parts[3], errors="coerce")
        ok &= day.between(1, 31)
    number = (year.fillna(0) * 12 + month.fillna(1) - 1).astype("int64").to_numpy()
    return np.where(ok.to_numpy(dtype=bool, na_value=False), number, -1)


def parse_months(field: str, series: pd.Series, unknown: Unknown | None = None) -> np.ndarray:
    """Months as numbers (year × 12 + month − 1), -1 when blank or unreadable: YYYYMM,
    YYYY-MM, YYYYMMDD, YYYY-MM-DD, YYYY年M月 (also with a day).

    Examples
    --------
    >>> parse_months("work_start", pd.Series(["202403", "2024-3", "20240315", "2024年3月", ""]))
    array([24290, 24290, 24290, 24290,    -1])
    """
    codes, uniques = distinct(series)
    numbers = _parse_months(uniques)
    _report(field, uniques, codes, (numbers < 0) & (uniques != ""), unknown)
    return numbers[codes]


def months(field: str, series: pd.Series, unknown: Unknown | None = None) -> pd.Series:
    """Months as ``YYYY-MM`` text (NA when blank or unreadable); see :func:`parse_months`."""
    codes, uniques = distinct(series)
    numbers = _parse_months(uniques)
    _report(field, uniques, codes, (numbers < 0) & (uniques != ""), unknown)
    labels = np.where(numbers >= 0, month_label(np.maximum(numbers, 0)), None).astype(object)
    return pd.Series(pd.array(labels[codes], dtype="string"), index=series.index)


def years(field: str, series: pd.Series, unknown: Unknown | None = None) -> pd.Series:
    """A year (``2023``, ``2023年``, ``2023年度``) as Int64; NA when blank or unreadable."""
    codes, uniques = distinct(series)
    found = pd.Series(uniques, dtype="string").str.extract(_YEAR)[0]
    values = pd.to_numeric(found, errors="coerce").astype("Int64").to_numpy()
    bad = pd.isna(values) & (uniques != "")
    _report(field, uniques, codes, bad, unknown)
    return pd.Series(pd.array(values, dtype="Int64")[codes], index=series.index)


def birth_months(birth_date: pd.Series, id_birth: pd.Series) -> np.ndarray:
    """Birth month numbers from ``birth_date`` (YYYYMMDD / YYYY-MM-DD), else from ``id_birth``
    (digits 7–14 of an 18-character 证件号码, kept when the number itself was dropped); -1 where
    neither is readable.

    Examples
    --------
    >>> birth_months(pd.Series(["19600315", "", ""]),
    ...              pd.Series(["", "19991231", ""])).tolist()
    [23522, 23999, -1]
    """
    codes, uniques = distinct(birth_date)
    born = _parse_months(uniques, need_day=True)[codes]
    missing = np.flatnonzero(born < 0)
    if len(missing):
        id_codes, id_uniques = distinct(id_birth.iloc[missing])
        born[missing] = _parse_months(id_uniques, need_day=True)[id_codes]
    return born


def health(series: pd.Series, vocab: dict[str, str], separators: list[str],
           unknown: Unknown | None = None) -> dict[str, np.ndarray]:
    """The health codes each person has: code -> bool per row. A cell may list several values
    joined by any of ``separators`` (``长期慢性病、残疾``); a part not in ``vocab`` is reported.

    Examples
    --------
    >>> vocab = {"健康": "healthy", "长期慢性病": "chronic_ill", "残疾": "disabled"}
    >>> has = health(pd.Series(["长期慢性病、残疾", "健康", "残疾,长期慢性病"]), vocab, [",", "、"])
    >>> has["chronic_ill"].tolist(), has["disabled"].tolist()
    ([True, False, True], [True, False, True])
    """
    table = {normalise(k): v for k, v in vocab.items()}
    split = re.compile("|".join(re.escape(normalise(s)) for s in separators if normalise(s)))
    codes, uniques = distinct(series)
    wanted = sorted(set(table.values()))
    has = {code: np.zeros(len(uniques), dtype=bool) for code in wanted}
    rows = np.bincount(codes, minlength=len(uniques))
    bad: Counter = Counter()
    for i, value in enumerate(uniques):
        parts = [p for p in split.split(value) if p] if value else [""]
        for part in parts:
            code = table.get(part)
            if code is None:
                if part:
                    bad[part] += int(rows[i])
            else:
                has[code][i] = True
    if unknown is not None and bad:
        unknown.add("health", np.array(list(bad), dtype=object), np.array(list(bad.values())))
    return {code: mask[codes] for code, mask in has.items()}
