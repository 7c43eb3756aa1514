"""Writing a run's outputs so that a crash never leaves half a month behind.

- :func:`write_parquet` writes with fixed settings and no timestamps, so the same frame gives
  the same bytes; :func:`write_parquet_atomic` adds write-beside-then-rename for a single file.
- :class:`OutputLock` holds an exclusive ``fcntl`` lock on ``<out>/.riskmodel.lock``: a second
  run on the same output folder is refused, and because the kernel drops the lock when its
  process dies, a killed run never leaves a stale lock behind. Where there is no ``fcntl``
  (Windows), the lock is that file itself, created exclusively and removed at the end.
- :class:`MonthOutput` stages the month's files in a hidden folder beside ``<out>/<month>``,
  fsyncs them and renames the folder into place, so readers see the previous complete output
  or the new complete output, never a mixture.
- :func:`write_xlsx` writes a table as a workbook (the watch list's, written by
  :mod:`riskmodel.scoring`).
- :func:`write_quarantine_xlsx` writes the rejected rows as a workbook for the offices that fix
  them: Chinese headers, each rule explained, the township, the row number their file shows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl.utils import get_column_letter

from ..config import load_aliases
from ..errors import OutputExistsError
from ._validate import PLACE, RULES_ZH

logger = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # Windows: OutputLock creates its lock file exclusively instead
    fcntl = None

# Fixed writer settings: changing any of them changes the bytes of every output.
PARQUET_OPTIONS = {
    "compression": "zstd",
    "compression_level": 3,
    "version": "2.6",
    "data_page_version": "1.0",
    "use_dictionary": True,
    "write_statistics": True,
    "row_group_size": 65_536,
}
LOCK_NAME = ".riskmodel.lock"

QUARANTINE_HEADERS = {
    "county": "县",
    "township": "乡镇",
    "village": "村",
    "file_row": "原表行号",
    "household_id": "户编号",
    "month": "月份",
    "column": "问题列",
    "value": "填写内容",
    "rule_zh": "问题说明",
    "reasons_zh": "本行全部问题",
    "rule": "规则代码",
}
# The most rows a worksheet holds, the header row included.
XLSX_MAX_ROWS = 1_048_576


def fsync_path(path: str | Path) -> None:
    """Flush a file's or a folder's contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` (without its index) as Parquet with fixed settings; same frame, same bytes.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> frame = pd.DataFrame({"household_id": ["H1", "H2"], "risk_score": [0.1, None]})
    >>> a = write_parquet(frame, folder / "a.parquet").read_bytes()
    >>> a == write_parquet(frame, folder / "b.parquet").read_bytes()
    True
    """
    path = Path(path)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, **PARQUET_OPTIONS)
    fsync_path(path)
    return path


def temp_beside(path: Path) -> Path:
    """The hidden file beside ``path`` that a writer fills before renaming it into place."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_parquet_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """:func:`write_parquet` to a hidden file beside ``path``, then rename it into place."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        write_parquet(frame, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)
    return path


def write_json(data: dict, path: str | Path) -> Path:
    """Pretty UTF-8 JSON (Chinese kept readable); NaN and numpy scalars become plain JSON."""
    path = Path(path)
    path.write_text(json.dumps(_plain(data), ensure_ascii=False, indent=2, allow_nan=False) + "\n",
                    encoding="utf-8")
    return path


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA:
        return None
    return value


#: The lock files this process holds. A forked child (a scoring worker, a watch-list writer)
#: closes its copies at once: a lock held through a child's copy would outlive a job killed
#: outright for as long as the child takes to die, and the rerun would find the folder locked.
_HELD: set[int] = set()


def _let_go_in_child() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_let_go_in_child)


class OutputLock:
    """Exclusive lock on an output folder for the length of a run.

    Once held, leftovers of killed runs are tidied (see :class:`MonthOutput`). A folder the
    lock created is removed on exit when it holds nothing but the lock file (a run that failed
    before writing), so a failed first run leaves no empty output folder behind.

    Parameters
    ----------
    out_dir : str or Path
        The output folder (created if absent).

    Raises
    ------
    OutputExistsError
        On entry, when another process holds the lock.
    """

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / LOCK_NAME
        self._fd: int | None = None
        self._created = False

    def __enter__(self) -> OutputLock:
        if fcntl is None:
            self._fd = self._create_exclusively()
            _tidy(self.out_dir)
            return self
        while True:
            self._make_out_dir()
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                continue  # the run that created the folder removed it in between
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise OutputExistsError(
                    f"{self.out_dir}: another run is writing to this folder (pid {holder}, lock "
                    f"{self.path}); wait for it to finish, or stop it."
                ) from None
            if _same_file(fd, self.path):
                break
            # Its last holder removed the file (and perhaps the folder) before letting go:
            # a lock on it guards nothing, so lock the file now at the path.
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd
        _HELD.add(fd)
        _tidy(self.out_dir)
        return self

    def _make_out_dir(self) -> None:
        """Create ``out_dir`` unless it exists, noting that this run created it."""
        try:
            self.out_dir.mkdir(parents=True)
            self._created = True
        except FileExistsError:
            if not self.out_dir.is_dir():
                raise

    def _create_exclusively(self) -> int:
        """Without ``fcntl``: the lock is the file itself, created only if absent."""
        while True:
            self._make_out_dir()
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileNotFoundError:
                continue  # the run that created the folder removed it in between
            except FileExistsError:
                try:
                    holder = self.path.read_text("ascii", "replace").strip() or "unknown"
                except OSError:
                    holder = "unknown"
                raise OutputExistsError(
                    f"{self.out_dir}: another run is writing to this folder (pid {holder}, lock "
                    f"{self.path}); wait for it to finish, or stop it. A killed run leaves this "
                    f"file behind on this platform: delete it if no run is writing here."
                ) from None
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            return fd

    def __exit__(self, *exc) -> None:
        if self._fd is None:
            return
        if fcntl is None:
            # Removing the file releases the lock; it is closed first, as Windows requires.
            alone = self._created and [p.name for p in self.out_dir.iterdir()] == [LOCK_NAME]
            os.close(self._fd)
            self._fd = None
            self.path.unlink(missing_ok=True)
            if alone:
                with contextlib.suppress(OSError):  # another run has just made its lock file
                    self.out_dir.rmdir()
            return
        if self._fd not in _HELD:  # a forked child: its copy was closed, the lock is the parent's
            self._fd = None
            return
        try:
            if self._created and [p.name for p in self.out_dir.iterdir()] == [LOCK_NAME]:
                # Still holding the lock, so no other run writes here. A run that opened the
                # file meanwhile finds it gone once it gets the lock, and starts again.
                self.path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # another run has just made its lock file
                    self.out_dir.rmdir()
        finally:
            _HELD.discard(self._fd)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the open file ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _tidy(out_dir: Path) -> None:
    """Clear what killed runs left behind; only safe while holding the folder's lock."""
    for stale in out_dir.glob(".????-??.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for old in out_dir.glob(".????-??.replaced-*"):
        # A run killed between its two renames left the previous output aside: restore it.
        month = out_dir / old.name[1:8]
        if month.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(old, month)


class MonthOutput:
    """Stage a month's output files beside ``<out>/<month>`` and publish them with one rename.

    Use under :class:`OutputLock`, which on entry tidies what killed runs left behind: it
    removes their staging folders and puts back a previous output that a run killed
    mid-replacement had moved aside. Entering creates a fresh staging folder, ``staging``. Leaving
    without :meth:`publish` removes it, so a failed run leaves the previous output untouched.

    Parameters
    ----------
    out_dir : str or Path
    month : str
        ``YYYY-MM``.
    force : bool, default=False
        Replace an existing ``<out>/<month>``; without it :meth:`check` refuses.
    """

    def __init__(self, out_dir: str | Path, month: str, force: bool = False):
        self.out_dir = Path(out_dir)
        self.month = month
        self.force = force
        self.final = self.out_dir / month
        self.staging = self.out_dir / f".{month}.staging-{os.getpid()}"
        self.published = False

    def check(self) -> None:
        """Raise OutputExistsError when the month exists and ``force`` is not set."""
        if self.final.exists() and not self.force:
            raise OutputExistsError(
                f"{self.final} exists already; pass --force (force=True) to replace it."
            )

    def __enter__(self) -> MonthOutput:
        self.check()
        self.staging.mkdir(parents=True)
        return self

    def publish(self) -> Path:
        """Make the staged files the month's output."""
        self.check()
        for path in self.staging.iterdir():
            fsync_path(path)
        fsync_path(self.staging)
        replaced = self.out_dir / f".{self.month}.replaced-{os.getpid()}"
        if self.final.exists():
            # A kill between these two renames leaves no month folder (never a mixed one);
            # the next run puts the previous one back.
            os.rename(self.final, replaced)
        os.rename(self.staging, self.final)
        fsync_path(self.out_dir)
        shutil.rmtree(replaced, ignore_errors=True)
        self.published = True
        return self.final

    def __exit__(self, *exc) -> None:
        if not self.published:
            shutil.rmtree(self.staging, ignore_errors=True)


def write_xlsx(table: pd.DataFrame, path: str | Path, sheet: str = "监测预警名单") -> Path:
    """Write ``table`` as a one-sheet workbook, headers as given, the file depending on the
    table only (no timestamps); written as SpreadsheetML a block of rows at a time, so a
    province's watch list takes seconds.

    Returns
    -------
    Path
        ``path``.
    """
    _write_xlsx(table, Path(path), sheet=sheet)
    return Path(path)


def quarantine_frame(quarantine: pd.DataFrame, located: pd.DataFrame | None = None,
                     headers: dict[str, str] | None = None) -> pd.DataFrame:
    """The quarantine as the offices read it: Chinese headers, each rule explained in Chinese
    (:data:`riskmodel.ledger.RULES_ZH`), by county, township and row.

    Parameters
    ----------
    quarantine : DataFrame
        Quarantine rows (:func:`riskmodel.ledger.empty_quarantine` columns).
    located : DataFrame, optional
        ``file_row``, ``county``, ``township`` and ``village`` of each quarantine row, in the
        same order (:meth:`riskmodel.ledger.LedgerChunks.locate`). Without it the row number is
        ``source_row + 2`` (the header in row 1) and the places are empty.
    headers : dict, optional
        Column → its header as the ledger file writes it; the first Chinese alias otherwise.

    Returns
    -------
    DataFrame
        Columns :data:`QUARANTINE_HEADERS` (values), sorted by county, township, row.

    Examples
    --------
    >>> from riskmodel.ledger import empty_quarantine
    >>> q = pd.concat([empty_quarantine(), pd.DataFrame({
    ...     "source_row": [4], "household_id": ["H1"], "month": ["2024-03"],
    ...     "rule": ["not_a_number"], "column": ["members"], "value": ["四"],
    ...     "reasons": ["not_a_number(members); labor_exceeds_members(labor_partial)"]})])
    >>> row = quarantine_frame(q).iloc[0]
    >>> int(row["原表行号"]), row["问题说明"]
    (6, '“家庭人口数”应填数字')
    >>> row["本行全部问题"]
    '“家庭人口数”应填数字；全劳动力与弱劳动力人数之和大于家庭人口'
    """
    named = {}
    for header, column in load_aliases().items():
        named.setdefault(column, header)
    named.update({c: h for c, h in (headers or {}).items() if h != c})
    frame = quarantine.reset_index(drop=True)
    if located is None:
        located = pd.DataFrame({"file_row": frame["source_row"].to_numpy() + 2,
                                **{c: pd.Series(pd.NA, index=frame.index, dtype="string")
                                   for c in PLACE}})
    located = located.reset_index(drop=True)

    def explain(rule, column) -> str:
        text = RULES_ZH.get(str(rule), str(rule))
        return text.format(column=named.get(str(column), str(column)))

    # Few distinct rules and combinations: each is explained once.
    pairs = frame[["rule", "column"]].astype(object).drop_duplicates()
    rule_zh = {(r, c): explain(r, c) for r, c in pairs.itertuples(index=False)}
    reasons_zh = {text: "；".join(explain(r, c) for r, c in re.findall(r"(\w+)\((\w+)\)", text))
                  for text in frame["reasons"].dropna().unique()}
    out = pd.DataFrame({
        "county": located["county"], "township": located["township"],
        "village": located["village"], "file_row": located["file_row"].astype("int64"),
        "household_id": frame["household_id"], "month": frame["month"],
        "column": frame["column"].map(lambda c: named.get(c, c)),
        "value": frame["value"],
        "rule_zh": pd.Series(list(zip(frame["rule"], frame["column"], strict=True)),
                             dtype=object).map(rule_zh),
        "reasons_zh": frame["reasons"].map(reasons_zh),
        "rule": frame["rule"],
    })
    out = out.sort_values(["county", "township", "file_row"], kind="stable", na_position="last")
    return out.rename(columns=QUARANTINE_HEADERS).reset_index(drop=True)


def write_quarantine_xlsx(quarantine: pd.DataFrame, path: str | Path,
                          located: pd.DataFrame | None = None,
                          headers: dict[str, str] | None = None) -> pd.DataFrame:
    """Write :func:`quarantine_frame` as a one-sheet workbook (``隔离记录``, filterable by
    township) to a hidden file beside ``path``, then rename it into place.

    A worksheet holds 1,048,575 rows under its header: a longer quarantine is written up to
    that many, with a warning (``quarantine.parquet`` holds every row).

    Returns
    -------
    DataFrame
        The table as written.
    """
    path = Path(path)
    table = quarantine_frame(quarantine, located, headers)
    if len(table) > XLSX_MAX_ROWS - 1:
        logger.warning("%s: %d quarantined rows, more than a worksheet holds; the first %d "
                       "are written (all of them are in quarantine.parquet)", path, len(table),
                       XLSX_MAX_ROWS - 1)
        table = table.iloc[:XLSX_MAX_ROWS - 1]
    tmp = temp_beside(path)
    try:
        _write_xlsx(table, tmp, sheet="隔离记录", autofilter=True, wide=("说明", "问题"))
        fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)
    return table


_NS = "http://schemas.openxmlformats.org"
_XLSX_PARTS = {
    "[Content_Types].xml": (
        f'<Types xmlns="{_NS}/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
        'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.styles+xml"/></Types>'),
    "_rels/.rels": (
        f'<Relationships xmlns="{_NS}/package/2006/relationships"><Relationship Id="rId1" '
        f'Type="{_NS}/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (
        f'<workbook xmlns="{_NS}/spreadsheetml/2006/main" '
        f'xmlns:r="{_NS}/officeDocument/2006/relationships"><sheets>'
        '<sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        f'<Relationships xmlns="{_NS}/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_NS}/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_NS}/officeDocument/2006/relationships/styles" '
        'Target="styles.xml"/></Relationships>'),
    "xl/styles.xml": (
        f'<styleSheet xmlns="{_NS}/spreadsheetml/2006/main">'
        '<fonts count="2"><font><sz val="11"/></font><font><b/><sz val="11"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        '</cellStyleXfs><cellXfs count="2">'
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
        '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
        '</cellStyles></styleSheet>'),
}
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_BAD_XML = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
_XLSX_BLOCK_ROWS = 50_000


def _xml_text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.replace(_BAD_XML, "", regex=True)
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        text = text.str.replace(char, entity, regex=False)
    return text


def _xlsx_cells(values: pd.Series, letter: str, rows: pd.Series) -> pd.Series:
    ref = '<c r="' + letter + rows
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        cells = ref + '"><v>' + values.astype("string") + "</v></c>"
    else:
        cells = (ref + '" t="inlineStr"><is><t xml:space="preserve">' + _xml_text(values)
                 + "</t></is></c>")
    return cells.fillna("")


def _write_xlsx(table: pd.DataFrame, path: Path, sheet: str = "监测预警名单",
                autofilter: bool = False, wide: tuple[str, ...] = ("说明", "措施")) -> None:
    """A one-sheet workbook written as SpreadsheetML directly, a block of rows at a time.

    A general-purpose writer spends minutes on a province's watch list, cell by cell; this one
    builds each block's XML with vectorised string operations. The file depends on the table
    only (no timestamps). With ``autofilter`` the header row gets Excel's filter buttons; a
    column whose header holds one of ``wide`` is wide.
    """
    letters = [get_column_letter(i + 1) for i in range(table.shape[1])]
    widths = "".join(
        f'<col min="{i + 1}" max="{i + 1}" width="{40 if any(w in h for w in wide) else 14}" '
        'customWidth="1"/>' for i, h in enumerate(table.columns))
    header = "".join(f'<c r="{letter}1" t="inlineStr" s="1"><is><t>{_xml_text(pd.Series([h]))[0]}'
                     "</t></is></c>" for letter, h in zip(letters, table.columns, strict=True))
    head = (f'{_XML_HEAD}<worksheet xmlns="{_NS}/spreadsheetml/2006/main"><sheetViews>'
            '<sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
            'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
            f'<cols>{widths}</cols><sheetData><row r="1">{header}</row>')
    tail = "</sheetData>"
    if autofilter:
        tail += f'<autoFilter ref="A1:{letters[-1]}{len(table) + 1}"/>'
    parts = {**_XLSX_PARTS, "xl/workbook.xml": _XLSX_PARTS["xl/workbook.xml"].replace(
        "{sheet}", _xml_text(pd.Series([sheet]))[0].replace('"', "&quot;"))}

    # Members opened by name get a fixed 1980 timestamp (``writestr`` would stamp the time).
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, xml in parts.items():
            with book.open(name, "w") as part:
                part.write((_XML_HEAD + xml).encode("utf-8"))
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            out.write(head.encode("utf-8"))
            for start in range(0, len(table), _XLSX_BLOCK_ROWS):
                block = table.iloc[start:start + _XLSX_BLOCK_ROWS]
                rows = pd.Series(np.arange(start + 2, start + 2 + len(block)),
                                 index=block.index).astype("string")
                xml = '<row r="' + rows + '">'
                for letter, column in zip(letters, block.columns, strict=True):
                    xml = xml + _xlsx_cells(block[column], letter, rows)
                out.write(("".join((xml + "</row>").tolist())).encode("utf-8"))
            out.write(f"{tail}</worksheet>".encode())

__all__ = [
    "LOCK_NAME",
    "PARQUET_OPTIONS",
    "QUARANTINE_HEADERS",
    "MonthOutput",
    "OutputLock",
    "fsync_path",
    "quarantine_frame",
    "write_json",
    "write_parquet",
    "temp_beside",
    "write_parquet_atomic",
    "write_quarantine_xlsx",
    "write_xlsx",
]


class AtomicParquetWriter:
    """Parquet written frame by frame to a hidden file beside ``path``, renamed into place
    when the ``with`` block ends without an error (removed otherwise).

    Every frame is cast to the first one's schema; at least one frame must be written.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._tmp = temp_beside(self.path)
        self._writer: pq.ParquetWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        # The writer takes the file's options; the row-group size belongs to each write.
        options = {k: v for k, v in PARQUET_OPTIONS.items() if k != "row_group_size"}
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, table.schema, **options)
        else:
            table = table.cast(self._writer.schema)
        self._writer.write_table(table, row_group_size=PARQUET_OPTIONS["row_group_size"])

    def __enter__(self) -> AtomicParquetWriter:
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None and self._writer is None:
                raise ValueError("Got no frame to write, expected at least one for the columns.")
            if self._writer is not None:
                self._writer.close()
            if kind is None:
                fsync_path(self._tmp)
                os.replace(self._tmp, self.path)
                fsync_path(self.path.parent)
        finally:
            self._tmp.unlink(missing_ok=True)
