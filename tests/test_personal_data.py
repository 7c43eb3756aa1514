"""Personal data stops at the door: 证件号码, 姓名, phone numbers and bank accounts of the county's
exports reach no file that ingest → validate → train → score → plan → report writes.

The generator's county folder is rewritten so that every personal value is a unique marker string;
the whole pipeline then runs from the command line, and every file it wrote (Parquet read back,
workbooks and other zip archives opened, the MLflow SQLite store and its artifacts included) and
everything it printed is searched for any marker.
"""

from __future__ import annotations

import csv
import html
import io
import re
import zipfile
from pathlib import Path

import fastexcel
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest

from riskmodel.cli import main
from riskmodel.config import load_config

PERSONAL = ("person_id", "name", "phone", "bank_account")


def _markers(directory: Path) -> dict[str, str]:
    """Each personal value of the folder → a unique marker (the same value, the same marker).

    The values are found under every header the config spells a personal field with, in the
    first rows of each file that hold such a header.
    """
    sources = load_config().sources
    spellings = {_normalised(s) for f in PERSONAL for s in sources.headers[f]}
    values: set[str] = set()
    for path in sorted(directory.rglob("*")):
        rows = _rows(path)
        for i, row in enumerate(rows[: sources.header_search_rows]):
            columns = [j for j, cell in enumerate(row) if _normalised(cell) in spellings]
            if columns:
                values |= {_normalised(r[j]) for r in rows[i + 1:] for j in columns
                           if j < len(r) and _normalised(r[j])}
                break
    return {v: f"MK{i:07d}ZQ" for i, v in enumerate(sorted(values))}


def _rows(path: Path) -> list[list[str]]:
    if path.suffix == ".csv":
        return list(csv.reader(io.StringIO(_decode(path.read_bytes())[0])))
    if path.suffix == ".xlsx":
        sheet = fastexcel.read_excel(str(path)).load_sheet(0, header_row=None, dtypes="string")
        return [["" if v is None else str(v) for v in row.values()]
                for row in sheet.to_arrow().to_pylist()]
    return []


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
            replaced += _rewrite_workbook(path, markers)
    return replaced


_TEXT = re.compile(r"(<t(?:\s[^>]*)?>)([^<]*)(</t>)")


def _rewrite_workbook(path: Path, markers: dict[str, str]) -> int:
    """Replace personal text cells of a workbook in its XML parts (the generator writes every
    cell as text, so a value is a ``<t>`` element, shared or inline); the cells replaced.

    Loading and saving each workbook with openpyxl took most of this module's time.
    """
    replaced = 0

    def swap(match: re.Match) -> str:
        nonlocal replaced
        key = _normalised(html.unescape(match.group(2)))
        if key not in markers:
            return match.group(0)
        replaced += 1
        return f"{match.group(1)}{markers[key]}{match.group(3)}"

    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info.filename)) for info in archive.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, content in members:
            if info.filename.endswith(".xml"):
                content = _TEXT.sub(swap, content.decode("utf-8")).encode("utf-8")
            archive.writestr(info, content)
    path.write_bytes(out.getvalue())
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
    """Every marker found in what was printed or in a file under ``root`` but the exports."""
    pattern = re.compile(r"MK\d{7}ZQ")
    found = [f"printed: {m}" for m in set(pattern.findall(printed)) & markers]
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if "sources" in path.relative_to(root).parts:
            continue  # the county's own exports
        hits = set(pattern.findall("\n".join(_texts(path)))) & markers
        found.extend(f"{path.relative_to(root)}: {m}" for m in sorted(hits))
    return found


FAST = """\
label: {kind: either}
model: {max_iter: 40, min_samples_leaf: 20, validation_months: 2, calibration_months: 3,
        min_positive_labels: 20, selection: {time_budget_s: 0.000001}}
backtest: {origins: 1, bootstrap: 20}
"""


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    """The generator's county folder with every personal value a unique marker."""
    from riskmodel.synthetic import county_sources, write_sources

    root = tmp_path_factory.mktemp("pd")
    write_sources(county_sources(400, 30, start="2022-01", seed=11), root / "sources",
                  root / "expected.parquet")
    (root / "expected.parquet").unlink()  # the generator's own view, not the pipeline's
    markers = _markers(root / "sources")
    assert len(markers) > 1000 and _rewrite(root / "sources", markers) > len(markers)
    return root, set(markers.values())


def test_no_personal_value_reaches_any_file_the_pipeline_writes(marked, capsys, monkeypatch):
    root, markers = marked
    monkeypatch.chdir(root)
    (root / "fast.yaml").write_text(FAST, encoding="utf-8")
    # The markers are in the exports as read: a search that finds nothing has looked.
    exports = "\n".join(t for p in (root / "sources").rglob("*") if p.is_file()
                        for t in _texts(p))
    assert sum(m in exports for m in markers) == len(markers)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlruns.db'}")
    steps = [
        ["ingest", "--sources", "sources", "--out", "ledger.parquet"],
        ["validate", "--ledger", "ledger.parquet", "--out", "validated"],
        ["train", "--ledger", "ledger.parquet", "--config", "fast.yaml", "--alias", "champion",
         "--force-alias"],
        ["score", "--ledger", "ledger.parquet", "--config", "fast.yaml", "--out", "out",
         "--model", "models:/return-to-poverty@champion"],
        ["plan", "--ledger", "ledger.parquet", "--budget", "200000", "--out", "plan",
         "--model", "models:/return-to-poverty@champion"],
    ]
    printed = []
    for step in steps:
        code = main(["-v", *step]) if step[0] != "train" else main(step)
        out = capsys.readouterr()
        printed += [out.out, out.err]
        assert code == 0, (step, out.err[-2000:])
    month = sorted(p.name for p in (root / "out").iterdir() if p.is_dir())[-1]
    assert main(["report", "--scores", f"out/{month}", "--out", "bulletin.html"]) == 0
    out = capsys.readouterr()
    printed += [out.out, out.err]
    written = [p for p in root.rglob("*") if p.is_file()
               and "sources" not in p.relative_to(root).parts]
    assert {"ingest_report.json", "ingest_quarantine.parquet",
            "scores.parquet", "watchlist.csv", "bulletin.html", "mlruns.db"} <= {
        p.name for p in written}
    assert any(p.parent.name == "ledger.parquet" for p in written)  # its month files
    assert _leaks(root, markers, "\n".join(printed)) == []
    # The search finds a marker where one is: in a Parquet column and inside a workbook.
    some = sorted(markers)[:2]
    pd.DataFrame({"x": [some[0]]}).to_parquet(root / "control.parquet")
    book = openpyxl.Workbook()
    book.active["A1"] = some[1]
    book.save(root / "control.xlsx")
    assert sorted(_leaks(root, markers, "")) == [f"control.parquet: {some[0]}",
                                                 f"control.xlsx: {some[1]}"]
