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
# Chunks longer than _SAMPLE whose first _SAMPLE values hold fewer than _FEW * _SAMPLE
# distinct ones are normalised through their dictionary of distinct values.
_SAMPLE = 10_000
_FEW = 0.5
# A date cell of a workbook read as text: midnight carries no information.
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

    Work is spent only where it changes something: a chunk of ASCII and common Chinese
    characters without spaces is returned as it is (NFKC keeps them), an all-ASCII chunk
    skips NFKC, and a chunk of few distinct values (a vocabulary, a village) is normalised
    once per distinct value.

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
    if chunk.null_count:
        chunk = chunk.fill_null("")
    clean, ascii_only = _bytes_check(chunk)
    if clean:
        return chunk
    if ascii_only:
        return _without_whitespace(chunk)
    sample = chunk.slice(0, _SAMPLE)
    if len(chunk) > _SAMPLE and pc.count_distinct(sample).as_py() < _FEW * len(sample):
        encoded = pc.dictionary_encode(chunk)
        normalised = _normalise_chunk(encoded.dictionary)
        if normalised.equals(encoded.dictionary):
            return chunk
        return pc.take(normalised, encoded.indices)
    return _without_whitespace(pc.utf8_normalize(chunk, "NFKC"))


def _bytes_check(chunk: pa.Array) -> tuple[bool, bool]:
    """(nothing to change, only ASCII), from the chunk's bytes.

    Nothing changes when no byte is a space or a control character and every character is
    ASCII or a CJK unified ideograph (U+4E00-U+9FFF, lead bytes E4-E9), all of which NFKC
    keeps; a chunk of other characters is normalised.
    """
    if chunk.buffers()[2] is None:
        return True, True
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64,
                            count=len(chunk) + 1, offset=8 * chunk.offset)
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    if not len(data):
        return True, True
    # Whole-array reductions only (no mask as large as the text): a lead byte outside E4-E9
    # is one of EA-FF (the largest byte tells) or of C0-E3, which alone fall below 0x24 once
    # 0xC0 is taken from every byte (uint8 arithmetic wraps the rest above).
    spaces = bool(data.min() <= 0x20)
    top = data.max()
    if top < 0x80:
        return not spaces, True
    if spaces:
        return False, False
    return bool(top < 0xEA and (data - np.uint8(0xC0)).min() >= 0x24), False


def _without_whitespace(chunk: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(chunk, INVISIBLE, "")


def drop_midnight(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Date cells of a workbook (``2024-01-05 00:00:00``) as their date (``2024-01-05``)."""
    return pc.replace_substring_regex(values, _MIDNIGHT, r"\1")


def string_series(values: pa.ChunkedArray) -> pd.Series:
    """A normalised (``large_string``) Arrow column as a pandas ``string`` Series, without a
    copy."""
    return pd.Series(pd.arrays.ArrowStringArray(values))
