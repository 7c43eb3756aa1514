"""Reading a sources folder: CSV files with the header on their first line."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import Config, load_config
from ..errors import SourceError
from . import _values as values
from ._table import SourceTable

_NAME_MONTH = re.compile(r"(20\d{2})-?(\d{2})")


def _clean(series: pd.Series) -> pd.Series:
    text = pc.utf8_normalize(pa.array(series.fillna(""), type=pa.large_string()), "NFKC")
    text = pc.replace_substring_regex(text, r"\s+", "")
    return pd.Series(pd.array(text, dtype="string"), index=series.index)


def read_sources(directory, config: Config | None = None,
                 cache_dir=None) -> tuple[list[SourceTable], list[dict]]:
    """Every ``*.csv`` under ``directory`` as :class:`SourceTable` (header on the first line).

    Returns
    -------
    tables : list of SourceTable
    unrecognised : list of dict
        ``{"path", "reason"}`` of files whose headers match no kind.
    """
    sources = (config or load_config()).sources
    spelling = {values.normalise(h): f for f, hs in sources.headers.items() for h in hs}
    root = Path(directory)
    tables, unrecognised = [], []
    for path in sorted(root.rglob("*.csv"), key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        data = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding,
                                  index_col=False)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise SourceError(f"{rel}: neither UTF-8 nor GB18030 text.")
        headers, columns = {}, {}
        for i, header in enumerate(raw.columns):
            name = spelling.get(values.normalise(header))
            if name is not None and name not in headers:
                headers[name], columns[name] = str(header), i
        kind = next((k for k, fs in sources.kinds.items() if all(f in headers for f in fs)),
                    None)
        if kind is None:
            unrecognised.append({"path": rel, "reason": "no header of a known kind in the first "
                                                        f"{sources.header_search_rows} rows"})
            continue
        frame = pd.DataFrame({f: _clean(raw.iloc[:, i]) for f, i in columns.items()})
        frame["_row"] = pd.Series(range(2, len(raw) + 2), dtype="int64")
        month = _month(frame, path.name)
        if month is None and kind != "warnings":
            raise SourceError(f"{rel}: no download month (no month column, no date in the "
                              "file name).")
        tables.append(SourceTable(rel, None, hashlib.sha256(data).hexdigest(), kind, month,
                                  frame, headers,
                                  raw.shape[1] - len(headers)))
    return tables, unrecognised


def _month(frame: pd.DataFrame, name: str) -> str | None:
    if "month" in frame:
        found = values.months("month", frame["month"]).dropna().unique()
        if len(found):
            return str(found[0])
    match = _NAME_MONTH.search(name)
    return f"{match[1]}-{match[2]}" if match else None
