"""Text as county sources are matched: Unicode NFKC, then every whitespace character removed.

NFKC makes full-width letters, digits and brackets half-width (``工资性收入（元）`` becomes
``工资性收入(元)``, ``１２０００`` becomes ``12000``); removing whitespace makes ``户 编 号`` and
``户编号`` one header. The same rule applies to a header, a config spelling and a cell, so
that they compare equal exactly when a reader would call them the same. The column functions
run on whole Arrow arrays (no Python loop over cells).
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Python's whitespace (str.isspace) plus the invisible characters spreadsheets carry in pasted
# text (zero-width spaces and joiners, word joiner, byte order mark). Literal characters, so
# that the one class serves Python's re and Arrow's RE2.
INVISIBLE = ("[\t-\r\x1c- \x85\xa0\u1680\u2000-\u200d\u2028\u2029\u202f\u205f\u2060\u3000"
             "\ufeff]")
_INVISIBLE = re.compile(INVISIBLE)
# A date cell of a workbook read as text: midnight carries no information.
# Chunks longer than _SAMPLE whose first _SAMPLE values are less than _FEW distinct are
# normalised through their dictionary of distinct values.
_SAMPLE = 10_000
_FEW = 0.5
_MIDNIGHT = r"^(\d{4}-\d{2}-\d{2})[ T]00:00:00$"


def normalise_text(text: object) -> str:
    """One value (a header, a spelling, a cell) as it is matched: NFKC, whitespace removed.

    Parameters
    ----------
    text : object
        A cell's value; None is an empty cell.

    Returns
    -------
    str

    Examples
    --------
    >>> normalise_text("工资性收入（元）")
    '工资性收入(元)'
    >>> normalise_text(" 户 编\\u3000号 ")
    '户编号'
    >>> normalise_text(None)
    ''
    """
    if text is None:
        return ""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", str(text)))


def normalise_array(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """:func:`normalise_text` of every value of a string array, as ``large_string`` (what a
    pandas ``string`` column holds); nulls become ``""``.

    Work is spent only where it changes something: an all-ASCII chunk skips NFKC (which
    leaves ASCII unchanged) and, when none of its bytes is a space or a control character,
    the whitespace removal too; a chunk of few distinct values (a vocabulary, a village) is
    normalised once per distinct value.

    Examples
    --------
    >>> normalise_array(pa.array(["１２，０００ 元", None, " 是"])).to_pylist()
    ['12,000元', '', '是']
    """
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values])
    return pa.chunked_array([_normalise_chunk(c) for c in values.chunks],
                            type=pa.large_string())


def _normalise_chunk(chunk: pa.Array) -> pa.Array:
    if not pa.types.is_large_string(chunk.type):
        chunk = chunk.cast(pa.large_string())
    chunk = chunk.fill_null("")
    if pc.all(pc.string_is_ascii(chunk)).as_py() is not False:
        return _without_whitespace(chunk) if _may_hold_whitespace(chunk) else chunk
    sample = chunk.slice(0, _SAMPLE)
    if len(chunk) > _SAMPLE and pc.count_distinct(sample).as_py() < _FEW * len(sample):
        encoded = pc.dictionary_encode(chunk)
        return pc.take(_normalise_chunk(encoded.dictionary), encoded.indices)
    return _without_whitespace(pc.utf8_normalize(chunk, "NFKC"))


def _may_hold_whitespace(chunk: pa.Array) -> bool:
    """Whether an ASCII chunk has a byte that could be whitespace (space or control)."""
    if chunk.buffers()[2] is None:
        return False
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64,
                            count=len(chunk) + 1, offset=8 * chunk.offset)
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return bool((data <= 0x20).any())


def _without_whitespace(chunk: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(chunk, INVISIBLE, "")


def drop_midnight(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Date cells of a workbook (``2024-01-05 00:00:00``) as their date (``2024-01-05``)."""
    return pc.replace_substring_regex(values, _MIDNIGHT, r"\1")


def string_series(values: pa.ChunkedArray) -> pd.Series:
    """A normalised (``large_string``) Arrow column as a pandas ``string`` Series, without a
    copy."""
    return pd.Series(pd.arrays.ArrowStringArray(values))
