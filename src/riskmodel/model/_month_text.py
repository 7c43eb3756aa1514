"""``YYYY-MM`` text columns read as month numbers through their bytes, for the features.

A ledger's month columns (``identified_month``, ``eliminated_month``,
``annual_recorded_month``) hold Arrow text, almost always exactly seven ASCII characters
``YYYY-MM`` or nothing. Such a column is read in place: its characters laid out as one record
of seven bytes per filled row, the digits added column by column. Any other column, or any
other text in it, is read by :func:`riskmodel.model._recorded.column_months`, which gives the
same numbers for these records.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ._recorded import RecordedColumns, column_months

_WIDTH = len("YYYY-MM")
_DIGITS = (0, 1, 2, 3, 5, 6)


class FeatureColumns(RecordedColumns):
    """:class:`RecordedColumns` whose ``YYYY-MM`` columns are read by :func:`text_months`.

    Asked for the rows named :attr:`every` (set by the caller: all of the ledger's rows, in
    order), it hands out a copy of the whole column instead of gathering every row.
    """

    every: np.ndarray | None = None

    def months(self, column: str, rows: np.ndarray) -> np.ndarray:
        if column not in self._months:
            self._months[column] = text_months(self.ledger, column)
        return self._at(super().months, column, rows=rows)

    def income_pc(self, rows: np.ndarray) -> np.ndarray:
        return self._at(super().income_pc, rows=rows)

    def risks(self, rows: np.ndarray) -> np.ndarray:
        return self._at(super().risks, rows=rows)

    def _at(self, read, *args: str, rows: np.ndarray) -> np.ndarray:
        if rows is not None and rows is self.every:
            return read(*args, slice(None)).copy()  # a copy: callers write into what they get
        return read(*args, rows)


def text_months(ledger: pd.DataFrame, column: str) -> np.ndarray:
    """:func:`column_months` of one column (float64 month numbers, NaN where empty or not a
    month), read from the bytes of an Arrow text column of seven-character months."""
    if column not in ledger.columns:
        return column_months(ledger, column)
    values = ledger[column].array
    if not isinstance(values, pd.arrays.ArrowStringArray):
        return column_months(ledger, column)
    text = pa.array(values)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = text.cast(pa.large_string())
    valid = text.is_valid().to_numpy(zero_copy_only=False)
    digits = _digits(text, valid)
    if digits is None:
        return column_months(ledger, column)
    # Whole numbers, added in place: a chunk's columns are long, and every fresh array costs.
    number = digits[0].astype("int32")
    for d in digits[1:4]:
        number *= 10
        number += d
    month = digits[4].astype("int32")
    month *= 10
    month += digits[5]
    number *= 12
    number += month
    number -= 1
    months = number.astype("float64")
    months[(month < 1) | (month > 12)] = np.nan
    out = np.full(len(text), np.nan)
    out[valid] = months
    return out


def _digits(text: pa.LargeStringArray, valid: np.ndarray) -> list[np.ndarray] | None:
    """The six digits of each filled row's ``DDDD-DD``, one array per place, or None unless
    every filled row holds that in ASCII and every empty one no characters."""
    _, offsets, data = text.buffers()
    ends = np.frombuffer(offsets, dtype="int64")[text.offset:text.offset + len(text) + 1]
    lengths = np.diff(ends)
    lengths[valid] -= _WIDTH
    if lengths.any():
        return None
    if data is None:
        return [np.empty(0, dtype="uint8")] * len(_DIGITS)
    records = np.frombuffer(data, dtype="uint8")[ends[0]:ends[-1]].reshape(-1, _WIDTH)
    # Below "0" wraps round to above 9.
    digits = [records[:, k] - np.uint8(ord("0")) for k in _DIGITS]
    if any(bool((d > 9).any()) for d in digits) or bool((records[:, 4] != ord("-")).any()):
        return None
    return digits
