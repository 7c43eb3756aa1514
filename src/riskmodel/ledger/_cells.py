"""How a ledger's cells are read: text (full width folded, stripped), empty cells, numbers,
yes/no and months in the spellings county exports use. Each distinct value is read once.
Validation (:mod:`riskmodel.ledger._validate`) builds on these.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as arrow
import pyarrow.compute as pc

from ..months import month_label

_TRUE = {"true", "1", "1.0", "yes", "y", "是", "t"}
_FALSE = {"false", "0", "0.0", "no", "n", "否", "f"}
_EMPTY = {"", "nan", "none", "null", "<na>", "nat"}
_MONTH = re.compile(r"^\s*(\d{4})\s*[-/.年]?\s*(\d{1,2})(?:\s*月)?(?:[-/.]\d{1,2})?(?:[ T].*)?\s*$")


def _text(series: pd.Series, fold: bool = False) -> pd.Series:
    """Values as stripped text (NA stays NA), each distinct value converted once; with
    ``fold``, full-width characters first folded to their ASCII forms (:func:`fold_width`)."""
    codes, _, text = _distinct_text(series, fold)
    return pd.Series(text.array.take(codes, allow_fill=True), index=series.index, dtype="string")


def _factorized(series: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each cell's code (-1: NA) and the distinct values as given."""
    starts = _run_starts(series)
    if starts is None:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    else:
        # A value first appears at the start of a run: the runs' first cells give the same
        # codes, in the same order, as every cell.
        codes, uniques = pd.factorize(series.iloc[starts], use_na_sentinel=True)
        codes = np.repeat(codes, np.diff(np.append(starts, len(series))))
    return codes, pd.Series(uniques, dtype=object)


def _run_starts(series: pd.Series) -> np.ndarray | None:
    """Where each run of equal neighbouring text cells starts, when the runs are long (a
    ledger's ids, places and types, its rows in household order): comparing neighbours is
    cheaper than hashing every cell. None for other columns, or runs too short to pay."""
    n = len(series)
    if n < 2 or not isinstance(series.dtype, pd.StringDtype):
        return None
    text = arrow.array(series.array, type=arrow.large_string(), from_pandas=True)
    # An empty cell beside anything opens a run of its own: factorizing says what it is.
    same = pc.fill_null(pc.equal(text.slice(1), text.slice(0, n - 1)), False)
    starts = np.flatnonzero(np.concatenate([[True], ~same.to_numpy(zero_copy_only=False)]))
    return starts if len(starts) <= n // 4 else None


def _distinct_text(series: pd.Series, fold: bool = False,
                   factorized: tuple[np.ndarray, pd.Series] | None = None,
                   ) -> tuple[np.ndarray, pd.Series, pd.Series]:
    """Each cell's code (-1: NA), the distinct values as given and as stripped text (see
    :func:`_text`); ``factorized``: :func:`_factorized` of the series, when known."""
    codes, given = _factorized(series) if factorized is None else factorized
    text = given.astype("string")
    if fold:
        text = fold_width(text)
    return codes, given, text.str.strip()


def _text_cells(series: pd.Series, fold: bool = False,
                aliases: dict[str, str] | None = None,
                factorized: tuple[np.ndarray, pd.Series] | None = None,
                ) -> tuple[pd.Series, np.ndarray]:
    """Values as stripped text, NA where empty (:func:`_is_empty`), and the mask of the empty
    cells: both decided once per distinct value, as is the replacement of ``aliases``
    (``factorized``: see :func:`_distinct_text`)."""
    codes, given, text = _distinct_text(series, fold, factorized)
    empty = _is_empty(text).to_numpy(dtype=bool, na_value=True)
    text = text.where(~empty)
    if aliases:
        text = text.replace(aliases)
    if (isinstance(series.dtype, pd.StringDtype) and not empty.any()
            and np.array_equal(text.to_numpy(dtype=object), given.to_numpy())):
        # Text as it is written: the column itself, not a copy.
        values = series.astype("string").array
    else:
        values = text.array.take(codes, allow_fill=True)
    return (pd.Series(values, index=series.index, dtype="string"),
            np.append(empty, True)[codes])


def fold_width(text: pd.Series) -> pd.Series:
    """Unicode NFKC of text values: full-width digits, letters, signs, decimal points, commas
    and spaces (``８８４８``, ``－３``, ``１，２３４．５``, ``　``) become their ASCII forms, as a
    county's export mixes them; the minus sign U+2212 becomes ``-``. Chinese characters are
    kept.

    Examples
    --------
    >>> fold_width(pd.Series(["８８４８", "－１，２３４．５", "Ｈ００１", "是", None],
    ...                      dtype="string")).tolist()
    ['8848', '-1,234.5', 'H001', '是', <NA>]
    """
    folded = pc.utf8_normalize(arrow.array(text, type=arrow.large_string(),
                                              from_pandas=True), "NFKC")
    folded = pc.replace_substring(folded, "\u2212", "-")
    return pd.Series(pd.array(folded, dtype="string"), index=text.index)


def household_ids(series: pd.Series) -> pd.Series:
    """Household ids as validation reads them: full-width folded, stripped, NA when empty.

    Examples
    --------
    >>> household_ids(pd.Series(["Ｈ０１", " H01 ", ""])).tolist()
    ['H01', 'H01', <NA>]
    """
    return _text_cells(series, fold=True)[0]


def _is_empty(text: pd.Series) -> pd.Series:
    return text.isna() | text.str.lower().isin(_EMPTY)


def empty_cells(series: pd.Series) -> np.ndarray:
    """Mask of the cells without a value: missing, blank, or written as empty (``nan``, ``null``
    …), as validation reads them.

    Examples
    --------
    >>> empty_cells(pd.Series(["H1", " ", None, "NaN", "0"])).tolist()
    [False, True, True, True, False]
    """
    return _text_cells(series)[1]


def _to_number(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Float values and a mask of cells that held something that is not a number."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.astype("float64")
        return values, pd.Series(False, index=series.index)
    text = _text(series, fold=True)
    empty = _is_empty(text)
    values = pd.to_numeric(text.str.replace(",", "", regex=False).where(~empty), errors="coerce")
    values = values.astype("float64")
    return values, values.isna() & ~empty


def parse_amount(text: str) -> float:
    """One amount written as a ledger cell may write it: thousands separators, full-width
    digits and signs (``30,000``, ``３００００``).

    Raises
    ------
    ValueError
        When the text is empty or not a finite number.

    Examples
    --------
    >>> parse_amount("30,000"), parse_amount("１２，５００．５")
    (30000.0, 12500.5)
    """
    values, bad = _to_number(pd.Series([text], dtype="string"))
    value = float(values.iloc[0])
    if bool(bad.iloc[0]) or not np.isfinite(value):
        raise ValueError(f"Got {text!r}, expected an amount such as 30000 or 30,000.")
    return value


def _to_bool(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean"), pd.Series(False, index=series.index)
    text = _text(series, fold=True).str.lower()
    empty = _is_empty(text)
    out = pd.Series(pd.NA, index=series.index, dtype="boolean")
    out[text.isin(_TRUE).fillna(False).to_numpy()] = True
    out[text.isin(_FALSE).fillna(False).to_numpy()] = False
    return out, out.isna() & ~empty


def parse_months(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Months as ``YYYY-MM`` text from the spellings ledgers use (2024-03, 2024/3, 202403,
    2024年3月, dates, in full-width digits too), and a mask of the values left NA (empty or
    unreadable)."""
    # A ledger holds few distinct months: parse each spelling once.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    uniq = pd.Series(uniques)
    if pd.api.types.is_datetime64_any_dtype(uniq):
        parsed = uniq.dt.strftime("%Y-%m").astype("string")
    else:
        parts = _text(uniq, fold=True).str.extract(_MONTH)
        year = pd.to_numeric(parts[0], errors="coerce")
        mon = pd.to_numeric(parts[1], errors="coerce")
        ok = (year.notna() & mon.between(1, 12)).to_numpy()
        parsed = pd.Series(pd.NA, index=uniq.index, dtype="string")
        parsed[ok] = month_label(year[ok].to_numpy("int64") * 12 + mon[ok].to_numpy("int64") - 1)
    if (isinstance(series.dtype, pd.StringDtype) and (codes >= 0).all()
            and parsed.notna().all() and parsed.tolist() == uniq.tolist()):
        # Every month written as YYYY-MM already: the column itself, not a copy.
        out = series.astype("string")
    else:
        out = pd.Series(parsed.array.take(codes, allow_fill=True), index=series.index,
                        dtype="string")
    return out, out.isna()
