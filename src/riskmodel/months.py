"""Months as the ledger spells them (``YYYY-MM``) and as arithmetic needs them (integers).

Every module that counts months — the labels' horizon, the features' windows, the backtest's
splits, the job's "month before" — uses these functions: a month is ``year × 12 + month − 1``,
so that the month before is one less and a window of twelve months is twelve numbers. A month
a user gives (``--month``, ``start``) is checked by :func:`check_month`. The many spellings a
county's ledger uses (2024/3, 2024年3月, dates) are read by the ledger
(:func:`riskmodel.ledger.parse_months`) into ``YYYY-MM`` first.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])", re.ASCII)


def check_month(text: object, name: str | None = "month",
                error: type[Exception] = ValueError) -> str:
    """``text`` if it is a month spelt ``YYYY-MM``.

    Parameters
    ----------
    text : object
        The month as a user gave it.
    name : str or None, default="month"
        The argument's name, for the message.
    error : type of Exception, default=ValueError
        What is raised otherwise (the caller's kind of error).

    Raises
    ------
    ValueError, or ``error``
        ``text`` is anything else; the message names ``name`` and what was given.

    Examples
    --------
    >>> check_month("2024-03")
    '2024-03'
    >>> check_month("2024-3", "start")
    Traceback (most recent call last):
    ...
    ValueError: Got start='2024-3', expected a month as 'YYYY-MM'.
    """
    if not isinstance(text, str) or _MONTH.fullmatch(text) is None:
        given = f"{name}={text!r}" if name else repr(text)
        raise error(f"Got {given}, expected a month as 'YYYY-MM'.")
    return text


def month_number(text: object, name: str | None = "month",
                 error: type[Exception] = ValueError) -> int:
    """The month number of one ``YYYY-MM`` month (checked as :func:`check_month` does).

    Examples
    --------
    >>> month_number("2024-03")
    24290
    """
    month = check_month(text, name, error)
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_numbers(months) -> tuple[np.ndarray, bool]:
    """Months given as ``YYYY-MM`` text or as month numbers, as month numbers; and whether they
    were text."""
    values = np.asarray(months)
    if values.dtype.kind in "iu":
        return values.astype("int64"), False
    return month_index(pd.Series(values)), True


def month_index(months: pd.Series | np.ndarray) -> np.ndarray:
    """``YYYY-MM`` strings as integer month numbers (year × 12 + month − 1)."""
    # A ledger holds few distinct months: parse those, not every row.
    codes, uniques = pd.factorize(pd.Series(months, copy=False), use_na_sentinel=False)
    text = pd.Series(np.asarray(uniques, dtype=object)).astype("string")
    year = text.str.slice(0, 4).astype("int64").to_numpy()
    mon = text.str.slice(5, 7).astype("int64").to_numpy()
    return (year * 12 + mon - 1)[codes]


def month_index_or_nan(months: pd.Series | np.ndarray) -> np.ndarray:
    """``YYYY-MM`` strings as month numbers (float64), NaN where empty or not a month.

    Examples
    --------
    >>> month_index_or_nan(pd.Series(["2024-03", None, "2024-13", ""])).tolist()
    [24290.0, nan, nan, nan]
    """
    out = np.full(len(months), np.nan)
    codes, uniques = pd.factorize(pd.Series(months, copy=False), use_na_sentinel=True)
    if not len(uniques):
        return out
    parts = pd.Series(np.asarray(uniques, dtype=object)).astype("string").str.extract(
        r"^\s*(\d{4})-(\d{2})\s*$")
    year = pd.to_numeric(parts[0], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    mon = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    values = np.where((mon >= 1) & (mon <= 12), year * 12 + mon - 1, np.nan)
    known = codes >= 0
    out[known] = values[codes[known]]
    return out


def month_label(index: np.ndarray | int) -> np.ndarray | str:
    """Integer month numbers back to ``YYYY-MM`` strings.

    Examples
    --------
    >>> month_label(24290)
    '2024-03'
    >>> month_label([24290, 24289, 24290]).tolist()
    ['2024-03', '2024-02', '2024-03']
    """
    idx = np.asarray(index, dtype="int64")
    if idx.ndim == 0:
        return str(_labels(idx))
    if idx.size == 0:
        return np.empty(idx.shape, dtype=object)
    # Many rows, few distinct months: spell each distinct month once.
    distinct, position = np.unique(idx, return_inverse=True)
    return _labels(distinct).astype(object)[position.reshape(idx.shape)]


def _labels(idx: np.ndarray) -> np.ndarray:
    return np.char.add(np.char.add(np.char.zfill((idx // 12).astype(str), 4), "-"),
                       np.char.zfill((idx % 12 + 1).astype(str), 2))


def month_before(month: str) -> str:
    """The ``YYYY-MM`` month before ``month``.

    Examples
    --------
    >>> month_before("2025-01")
    '2024-12'
    """
    return str(month_label(int(month_index(pd.Series([month]))[0]) - 1))
