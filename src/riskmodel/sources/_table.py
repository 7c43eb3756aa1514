"""One source file as read: its kind, download month and canonical columns."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class SourceTable:
    """A county export file read into its canonical fields.

    Attributes
    ----------
    path : str
        Posix path relative to the sources folder (``"2024/persons_20240105.csv"``).
    sheet : str or None
        The xlsx sheet read (the first one); None for CSV.
    sha256 : str
        Of the file's bytes.
    kind : str
        ``"persons"``, ``"migrants"`` or ``"warnings"``: the first of ``sources.kinds`` whose
        fields are all among the file's headers.
    month : str or None
        ``YYYY-MM`` download month; None only for a warnings file without one.
    frame : DataFrame
        One column per canonical field found, dtype ``"string"``, values NFKC-normalised with
        all whitespace removed, blank cells ``""`` (never NA); plus ``_row`` (int64), the
        1-based row number a user sees in the file (title lines counted). Personal fields are
        kept for deriving ages and joining feeds and are never written anywhere.
    headers : dict
        Canonical field -> the header as written in the file.
    unmapped : int
        Columns with no known spelling (dropped).
    """

    path: str
    sheet: str | None
    sha256: str
    kind: str
    month: str | None
    frame: pd.DataFrame
    headers: dict[str, str]
    unmapped: int
