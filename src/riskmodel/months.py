"""Months as the ledger spells them (``YYYY-MM``) and as arithmetic needs them (integers).

Every module that counts months — the labels' horizon, the features' windows, the backtest's
splits, the job's "month before" — uses these three functions: a month is ``year × 12 + month −
1``, so that the month before is one less and a window of twelve months is twelve numbers. The
many spellings a county's ledger uses (2024/3, 2024年3月, dates) are read by the ledger
(:func:`riskmodel.ledger.parse_months`) into ``YYYY-MM`` first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def month_index(months: pd.Series | np.ndarray) -> np.ndarray:
    """``YYYY-MM`` strings as integer month numbers (year × 12 + month − 1)."""
    # A ledger holds few distinct months: parse those, not every row.
    codes, uniques = pd.factorize(pd.Series(months, copy=False), use_na_sentinel=False)
    text = pd.Series(np.asarray(uniques, dtype=object)).astype("string")
    year = text.str.slice(0, 4).astype("int64").to_numpy()
    mon = text.str.slice(5, 7).astype("int64").to_numpy()
    return (year * 12 + mon - 1)[codes]


def month_label(index: np.ndarray | int) -> np.ndarray | str:
    """Integer month numbers back to ``YYYY-MM`` strings."""
    idx = np.asarray(index, dtype="int64")
    out = np.char.add(np.char.add((idx // 12).astype(str), "-"),
                      np.char.zfill((idx % 12 + 1).astype(str), 2))
    return str(out) if out.ndim == 0 else out.astype(object)


def month_before(month: str) -> str:
    """The ``YYYY-MM`` month before ``month``.

    Examples
    --------
    >>> month_before("2025-01")
    '2024-12'
    """
    return str(month_label(int(month_index(pd.Series([month]))[0]) - 1))
