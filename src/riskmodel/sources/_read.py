"""Reading a county's source files: each file's kind from its headers, the header under title
lines, the download month, and the mapped columns as normalised text.

A file's kind is never read from its name: it is the first of ``sources.kinds`` whose fields
all have a header in the first row (of the first ``sources.header_search_rows``) that names all
of one kind's fields. Headers match ``sources.headers`` spellings after NFKC with whitespace
removed (:mod:`riskmodel.sources._text`); columns with no known spelling are dropped unread.
CSV is read by Arrow (UTF-8 with or without BOM, else GB18030), workbooks (``.xlsx``, the first
sheet) by fastexcel, both straight into Arrow string columns.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ..config import Config, SourcesConfig, load_config
from ..errors import SourceError
from ._cache import ROW, Parsed, SourceCache, StoreBehind
from ._personal import cache_key, new_key, pseudonymised
from ._text import drop_midnight, normalise_array, normalise_text, string_series

logger = logging.getLogger(__name__)

SOURCE_SUFFIXES = (".csv", ".xlsx")
# Encodings a CSV is read in, in order: UTF-8 (a BOM is skipped), then GB18030, the superset of
# GBK that Excel on a Chinese Windows saves "CSV (逗号分隔)" in.
_ENCODINGS = (("utf-8-sig", "utf8"), ("gb18030", "gb18030"))
_HASH_BLOCK = 1 << 22
# Bytes of CSV per Arrow block: blocks are parsed in parallel, and each becomes one chunk of
# every column, large enough for normalisation to work per distinct value.
_CSV_BLOCK = 1 << 24

# A month as a month column writes it: 202401, 2024-01, 2024/1, 2024年1月 (a day may follow).
_MONTH_CELLS = (re.compile(r"^(\d{4})(\d{2})(?:\d{2})?$"),
                re.compile(r"^(\d{4})[-/.](\d{1,2})(?:[-/.]\d{1,2})?$"),
                re.compile(r"^(\d{4})年(\d{1,2})月(?:\d{1,2}日)?$"))
# The first date in a file name: 20231218, 202312, 2023-12(-18), 2023_12, 2023年12月.
_NAME_MONTH = re.compile(r"(?<!\d)(\d{4})(?:[-_.]?(\d{2})(?:[-_.]?\d{2})?|年(\d{1,2})月)(?!\d)")


@dataclass(frozen=True, eq=False)
class SourceTable:
    """One county source file as read: its kind, download month and mapped columns.

    Attributes
    ----------
    path : str
        The file's path relative to the sources folder, with ``/`` (``2024/人员_20240105.csv``).
    sheet : str or None
        The workbook sheet read (the first), None for CSV.
    sha256 : str
        The SHA-256 of the file's bytes.
    kind : str
        ``persons``, ``migrants`` or ``warnings``: the first of ``sources.kinds`` whose
        fields all have a header.
    month : str or None
        The download month, ``YYYY-MM``; None only for a warnings file without one.
    frame : DataFrame
        One column per canonical field found (the first column when a field's header appears
        twice), dtype ``string``, values NFKC with whitespace removed, blank cells ``""``; and
        ``_row`` (int64), the row number a user sees in Excel or a text editor (title lines
        counted). Rows whose every mapped cell is blank are not records and are left out.
        Holds personal fields (``sources.personal``): never write them anywhere.
    headers : dict
        Canonical field -> the header as the file writes it.
    unmapped : int
        Columns with no known header spelling (dropped).
    from_cache : bool
        Whether the table came from the cache rather than from parsing the file.
    """

    path: str
    sheet: str | None
    sha256: str
    kind: str
    month: str | None
    frame: pd.DataFrame
    headers: dict[str, str]
    unmapped: int
    from_cache: bool = False


def read_sources(directory: str | Path, config: Config | None = None,
                 cache_dir: str | Path | None = None, only: set[str] | None = None
                 ) -> tuple[list[SourceTable], list[dict]]:
    """Read every ``.csv`` and ``.xlsx`` file under ``directory``, recognising each by its
    headers.

    Parameters
    ----------
    directory : str or Path
        The county's sources folder, searched recursively (hidden files and folders, and
        Excel's ``~$`` lock files, are skipped), files taken in the order of their paths.
    config : Config, optional
        Its ``sources`` block gives header spellings, kinds and the rows searched for the
        header; :func:`riskmodel.load_config` by default.
    cache_dir : str or Path, optional
        Folder of the per-file cache (:mod:`riskmodel.sources._cache`): a file whose bytes and
        ``sources`` configuration are unchanged is not parsed again. No cache when None.
    only : set of str, optional
        Read only these files (paths relative to ``directory``, with ``/``); every file when
        None. An appending ingest reads the files added since the last one this way.

    Returns
    -------
    tables : list of SourceTable
        The recognised files, in path order.
    unrecognised : list of dict
        ``{"path": ..., "reason": ...}`` for each file with no header of a known kind.

    Raises
    ------
    SourceError
        A missing folder, an unreadable file, a persons or migrants file with no download
        month (neither a month column nor a date in its name), a month column holding
        several months or a value that is not a month.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "人员_20240105.csv").write_text(
    ...     "监测对象信息\\n户编号,劳动技能,健康状况,其他\\n０１,普通劳动力,健康,x\\n",
    ...     encoding="utf-8")
    >>> tables, unrecognised = read_sources(folder)
    >>> t = tables[0]
    >>> t.kind, t.month, t.unmapped, t.frame.to_dict("list")
    ('persons', '2024-01', 1, {'household_id': ['01'], 'health': ['健康'], \
'labor_skill': ['普通劳动力'], '_row': [3]})
    """
    with StoreBehind() as behind:
        return read_tables(directory, config, cache_dir, only, behind)


def read_tables(directory: str | Path, config: Config | None, cache_dir: str | Path | None,
                only: set[str] | None, behind: StoreBehind
                ) -> tuple[list[SourceTable], list[dict]]:
    """:func:`read_sources`, the cache entries of the files parsed handed to ``behind`` to
    write (the caller waits for them)."""
    config = load_config() if config is None else config
    directory = Path(directory)
    if not directory.is_dir():
        raise SourceError(f"{directory}: no such folder of county sources.")
    spec = _Spec(config.sources)
    key = cache_key(Path(cache_dir)) if cache_dir is not None else new_key()
    cache = SourceCache(cache_dir, config.sources, key) if cache_dir is not None else None
    paths = [p for p in _source_files(directory)
             if only is None or p.relative_to(directory).as_posix() in only]
    # The next files' digests are taken while this one is parsed (hashing releases the GIL).
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
    try:
        return _read_each(directory, paths, hasher.map(_sha256, paths), spec, cache, key,
                          config, behind)
    finally:
        hasher.shutdown(wait=True, cancel_futures=True)


def _read_each(directory: Path, paths: list[Path], digests, spec: _Spec,
               cache: SourceCache | None, key: str, config: Config, behind: StoreBehind
               ) -> tuple[list[SourceTable], list[dict]]:
    tables, unrecognised = [], []
    for path, sha256 in zip(paths, digests, strict=True):
        relative = path.relative_to(directory).as_posix()
        parsed = cache.load(sha256) if cache is not None else None
        from_cache = parsed is not None
        if parsed is None:
            parsed = _parse(path, spec)
            if parsed.frame is not None:
                parsed = replace(parsed, frame=pseudonymised(parsed.frame,
                                                             config.sources.personal, key))
            logger.info("%s: parsed (%s)", relative, parsed.kind or "not recognised")
            if cache is not None:
                behind.store(cache, sha256, parsed)
        else:
            logger.info("%s: from the cache (%s)", relative, parsed.kind or "not recognised")
        if parsed.kind is None:
            unrecognised.append({"path": relative, "reason": parsed.reason})
            continue
        month = parsed.column_month or _name_month(path.name)
        if month is None and parsed.kind != "warnings":
            raise SourceError(
                f"{path}: no download month: no month column "
                f"({' / '.join(config.sources.headers['month'])}) and no date in the file "
                "name (such as _20240105); add one of them.")
        tables.append(SourceTable(relative, parsed.sheet, sha256, parsed.kind, month,
                                  parsed.frame, parsed.headers, parsed.unmapped, from_cache))
    return tables, unrecognised


class _Spec:
    """The ``sources`` settings as matching uses them."""

    def __init__(self, sources: SourcesConfig):
        self.search_rows = sources.header_search_rows
        self.fields = list(sources.headers)
        self.kinds = sources.kinds
        self.field_of: dict[str, str] = {}
        for name, spellings in sources.headers.items():
            for spelling in spellings:
                self.field_of.setdefault(normalise_text(spelling), name)

    def header(self, rows: list[list]) -> tuple[int, str, dict[str, int], int] | None:
        """The first row naming every field of a kind: (row, kind, field -> column, unmapped)."""
        for at, cells in enumerate(rows[:self.search_rows]):
            columns: dict[str, int] = {}
            unmapped = 0
            for i, cell in enumerate(cells):
                name = self.field_of.get(normalise_text(cell))
                if name is None:
                    unmapped += 1
                else:
                    columns.setdefault(name, i)
            for kind, needed in self.kinds.items():
                if all(f in columns for f in needed):
                    ordered = {f: columns[f] for f in self.fields if f in columns}
                    return at, kind, ordered, unmapped
        return None

    def not_recognised(self) -> Parsed:
        return Parsed(kind=None, reason=f"no header of a known kind in the first "
                                        f"{self.search_rows} rows")


def _source_files(directory: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if (Path(name).suffix.lower() in SOURCE_SUFFIXES
                    and not name.startswith((".", "~$"))):
                found.append(Path(root, name))
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(_HASH_BLOCK):
                digest.update(block)
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc.__class__.__name__})."
                          ) from None
    return digest.hexdigest()


def _parse(path: Path, spec: _Spec) -> Parsed:
    try:
        if path.suffix.lower() == ".csv":
            return _parse_csv(path, spec)
        return _parse_xlsx(path, spec)
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
        raise SourceError(f"{path}: cannot be read as {path.suffix.lower()[1:]} "
                          f"({exc.__class__.__name__}).") from None


def _parse_csv(path: Path, spec: _Spec) -> Parsed:
    head = _first_lines(path, spec.search_rows)
    for python_name, arrow_name in _ENCODINGS:
        try:
            text = head.decode(python_name)
        except UnicodeDecodeError:
            continue
        rows = list(csv.reader(io.StringIO(text, newline="")))
        found = spec.header(rows)
        if found is None:
            return spec.not_recognised()
        at, kind, columns, unmapped = found
        try:
            table = _arrow_csv(path, arrow_name, at, len(rows[at]), columns)
        except _NotUtf8:
            continue
        logger.info("%s: %s, read as %s, header on line %d", path, kind, arrow_name, at + 1)
        return _finish(path, table, at, kind, columns, unmapped, rows[at], sheet=None)
    raise SourceError(f"{path}: cannot be read as csv: its text is neither UTF-8 nor GB18030 "
                      "(GBK); save it from Excel as \"CSV UTF-8\".")


def _first_lines(path: Path, n: int) -> bytes:
    lines = []
    with open(path, "rb") as handle:
        for _ in range(n):
            line = handle.readline()
            if not line:
                break
            lines.append(line)
    return b"".join(lines)


class _NotUtf8(Exception):
    pass


def _arrow_csv(path: Path, encoding: str, at: int, width: int,
               columns: dict[str, int]) -> dict[str, pa.ChunkedArray]:
    """The mapped columns by Arrow's reader; when a quoted cell holds a line break (which
    the fast reading of blocks in parallel forbids), again allowing them; when a line is
    blank or has another number of cells than the header, by pandas, which keeps the
    numbering of rows."""
    names = [f"c{i}" for i in range(width)]
    keep = [names[i] for i in columns.values()]
    for newlines_in_values in (False, True):
        try:
            table = pcsv.read_csv(
                path,
                read_options=pcsv.ReadOptions(skip_rows=at + 1, column_names=names,
                                              encoding=encoding, block_size=_CSV_BLOCK),
                parse_options=pcsv.ParseOptions(newlines_in_values=newlines_in_values,
                                                ignore_empty_lines=False),
                convert_options=pcsv.ConvertOptions(
                    include_columns=keep, column_types=dict.fromkeys(keep, pa.large_string()),
                    strings_can_be_null=False, quoted_strings_can_be_null=False))
            return {name: table.column(f"c{i}") for name, i in columns.items()}
        except pa.ArrowInvalid as exc:
            # Arrow's message quotes the offending line: never shown (personal data).
            if "invalid UTF8" in str(exc) and encoding == "utf8":
                raise _NotUtf8 from None
    return _pandas_csv(path, "utf-8-sig" if encoding == "utf8" else encoding, at, width,
                       columns)


def _pandas_csv(path: Path, encoding: str, at: int, width: int,
                columns: dict[str, int]) -> dict[str, pa.ChunkedArray]:
    """The mapped columns of a CSV with blank lines or rows of other lengths than the header's.

    A short row reads as blanks in its missing cells; a row with a filled cell right of the
    header's last column is an error (an unquoted comma in a cell would shift every cell
    after it into the wrong column).
    """
    try:
        frame = pd.read_csv(path, header=None, names=list(range(width + 1)), index_col=False,
                            skiprows=at + 1, dtype=str, keep_default_na=False,
                            encoding=encoding, skip_blank_lines=False)
    except pd.errors.ParserError as exc:
        # pandas names the line and the counts of cells, never a cell's content.
        raise SourceError(f"{path}: cannot be read as csv: {str(exc).splitlines()[-1]} "
                          f"(the header has {width} cells).") from None
    beyond = np.flatnonzero(frame[width].to_numpy() != "")
    if len(beyond):
        raise SourceError(f"{path}: row {at + 2 + beyond[0]} has more cells than the header "
                          f"({width}); quote cells that hold a comma, or save the file again "
                          "from Excel.")
    return {name: pa.chunked_array([pa.array(frame[i], type=pa.large_string())])
            for name, i in columns.items()}


def _parse_xlsx(path: Path, spec: _Spec) -> Parsed:
    import fastexcel

    reader = fastexcel.read_excel(path)
    sheet = reader.sheet_names[0]
    # One load of the sheet: fastexcel parses the whole sheet on every load, however few
    # rows or columns it is asked for.
    cells = reader.load_sheet(0, header_row=None, skip_rows=0, dtypes="string", eager=True)
    head = cells.slice(0, spec.search_rows)
    rows = [list(r) for r in zip(*(c.to_pylist() for c in head.columns), strict=True)]
    found = spec.header(rows)
    if found is None:
        return Parsed(kind=None, reason=spec.not_recognised().reason, sheet=sheet)
    at, kind, columns, unmapped = found
    body = cells.slice(at + 1)
    table = {name: drop_midnight(pa.chunked_array([body.column(i)]))
             for name, i in columns.items()}
    logger.info("%s: %s, sheet %r, header on row %d", path, kind, sheet, at + 1)
    return _finish(path, table, at, kind, columns, unmapped, rows[at], sheet=sheet)


def _finish(path: Path, table: dict[str, pa.ChunkedArray], at: int, kind: str,
            columns: dict[str, int], unmapped: int, headers: list,
            sheet: str | None) -> Parsed:
    """The parsed file: normalised columns, ``_row``, blank rows left out, the month column's
    month."""
    names = list(table)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        normalised = dict(zip(names, pool.map(normalise_array, table.values()), strict=True))
    n = len(next(iter(normalised.values()))) if normalised else 0
    rows = np.arange(at + 2, at + 2 + n, dtype=np.int64)
    # Rows blank in every column so far; each further column is read at those rows only.
    blank = np.arange(n)
    for values in normalised.values():
        if not len(blank):
            break
        cells = values if len(blank) == n else values.take(pa.array(blank))
        blank = blank[pc.equal(pc.binary_length(cells), 0).to_numpy(zero_copy_only=False)]
    filled = np.ones(n, dtype=bool)
    filled[blank] = False
    keep = None if filled.all() else pa.array(filled)
    frame = pd.DataFrame({
        name: string_series(values if keep is None else values.filter(keep))
        for name, values in normalised.items()})
    frame[ROW] = rows if keep is None else rows[filled]
    month = _column_month(path, frame, headers[columns["month"]]) if "month" in frame else None
    return Parsed(kind=kind, sheet=sheet, column_month=month,
                  headers={name: str(headers[i]).strip().lstrip("\ufeff")
                           for name, i in columns.items()},
                  unmapped=unmapped, frame=frame)


def _column_month(path: Path, frame: pd.DataFrame, header: str) -> str | None:
    values = [v for v in pc.unique(pa.array(frame["month"].array)).to_pylist() if v]
    months = set()
    for value in values:
        month = _cell_month(value)
        if month is None:
            raise SourceError(f"{path}: its month column {header!r} holds {value!r}; expected "
                              "a month such as 202401, 2024-01 or 2024年1月.")
        months.add(month)
    if len(months) > 1:
        raise SourceError(f"{path}: its month column {header!r} holds several months ("
                          f"{', '.join(sorted(months))}); a download is of one month: split "
                          "the file by month.")
    return months.pop() if months else None


def _cell_month(value: str) -> str | None:
    """``YYYY-MM`` of a month cell (YYYYMM, YYYY-MM, YYYY年MM月, or a date), None if none."""
    match = next((m for m in (p.match(value) for p in _MONTH_CELLS) if m), None)
    if match is None:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    return f"{year:04d}-{month:02d}" if 1 <= month <= 12 and 1900 <= year <= 2199 else None


def _name_month(name: str) -> str | None:
    """The month of the first date in a file name (``…_20231218.xlsx`` -> ``2023-12``)."""
    for match in _NAME_MONTH.finditer(normalise_text(Path(name).stem)):
        year = int(match.group(1))
        month = int(match.group(2) or match.group(3))
        if 1900 <= year <= 2199 and 1 <= month <= 12:
            return f"{year:04d}-{month:02d}"
    return None
