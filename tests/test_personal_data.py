"""Personal data stops at the door: 证件号码, 姓名, phone numbers and bank accounts of the county's
exports reach no file that ingest → validate → train → score → plan → report writes.

The generator's county folder is rewritten so that every personal value is a unique marker string;
the whole pipeline then runs from the command line, and every file it wrote (Parquet read back,
workbooks and other zip archives opened, the MLflow SQLite store and its artifacts included) and
everything it printed is searched for any marker.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq

from riskmodel.config import load_config
from riskmodel.sources import read_sources

PERSONAL = ("person_id", "name", "phone", "bank_account")


def _markers(directory: Path) -> dict[str, str]:
    """Each personal value of the folder → a unique marker (the same value, the same marker)."""
    tables, _ = read_sources(directory, load_config())
    values = sorted({v for t in tables for f in PERSONAL if f in t.frame
                     for v in t.frame[f].tolist() if v})
    return {v: f"MK{i:07d}ZQ" for i, v in enumerate(values)}


def _decode(raw: bytes) -> tuple[str, str]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("a generated CSV is neither UTF-8 nor GB18030")


def _normalised(value: object) -> str:
    import unicodedata

    return "".join(unicodedata.normalize("NFKC", str(value)).split())


def _rewrite(directory: Path, markers: dict[str, str]) -> int:
    """Replace every personal cell of every file by its marker; the number of cells replaced."""
    replaced = 0
    for path in sorted(directory.rglob("*")):
        if path.suffix == ".csv":
            text, encoding = _decode(path.read_bytes())
            rows = list(csv.reader(io.StringIO(text)))
            for row in rows:
                for j, cell in enumerate(row):
                    key = _normalised(cell)
                    if key in markers:
                        row[j] = markers[key]
                        replaced += 1
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            path.write_bytes(out.getvalue().encode(encoding))
        elif path.suffix == ".xlsx":
            book = openpyxl.load_workbook(path)
            for sheet in book.worksheets:
                for row in sheet.iter_rows():
                    for cell in row:
                        if cell.value is not None and _normalised(cell.value) in markers:
                            cell.value = markers[_normalised(cell.value)]
                            replaced += 1
            book.save(path)
    return replaced


def _texts(path: Path) -> list[str]:
    """What a file holds, as text: Parquet read back, zip members opened, other bytes decoded."""
    raw = path.read_bytes()
    texts = [raw.decode("utf-8", "ignore"), raw.decode("gb18030", "ignore")]
    if path.suffix == ".parquet" or raw[:4] == b"PAR1":
        table = pq.read_table(path)
        texts.append(str(table.schema.metadata))
        texts.extend(str(v) for column in table.columns for v in column.to_pylist())
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                texts.append(archive.read(member).decode("utf-8", "ignore"))
    return texts


def _leaks(root: Path, markers: set[str], printed: str) -> list[str]:
    found = [f"printed: {m}" for m in markers if m in printed]
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if "sources" in path.relative_to(root).parts or ".riskmodel-cache" in path.parts:
            continue  # the county's own exports, and the ingest cache kept beside them
        blob = "\n".join(_texts(path))
        found.extend(f"{path.relative_to(root)}: {m}" for m in markers if m in blob)
    return found
