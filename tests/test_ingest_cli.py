"""`riskmodel ingest` end to end on a small county folder of CSV files: the ledger, the report,
the quarantine, no personal value in any file written, the same bytes on a re-run, exit 4."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from riskmodel import ingest, validate_ledger
from riskmodel.cli import main

HEAD = "县,乡(镇),行政村,户编号,证件号码,姓名,联系电话,开户银行账号,与户主关系,户类型," \
       "劳动技能,健康状况,在校生状况,是否已务工,工资性收入（元）,人均纯收入（元）,监测对象类别," \
       "识别监测时间,致贫/返贫风险1,平台流水号"
IDS = {n: f"5301231980{n:02d}15{n:03d}X" for n in range(1, 8)}
NAMES = {n: f"标记姓名{n}号" for n in IDS}
PHONES = {n: f"1391234{n:04d}" for n in IDS}
BANKS = {n: f"62220202001{n:08d}" for n in IDS}
MARKERS = [*IDS.values(), *NAMES.values(), *PHONES.values(), *BANKS.values()]


def _person(n: int, household: str, wage: str = "１２，０００", **kw) -> str:
    cells = ["丘北县", "八道哨乡", "大坪村", household, IDS[n], NAMES[n], PHONES[n], BANKS[n],
             "户主", kw.get("kind", "脱贫户"), "普通劳动力", kw.get("health", "健康"), "",
             kw.get("working", "否"), wage, "\"8,000\"", kw.get("category", ""),
             kw.get("identified", ""), kw.get("risk", ""), f"LS{n}"]
    return ",".join(cells)


def county(root: Path) -> Path:
    """Two months of person tables, a migrant table and a warning list."""
    src = root / "sources"
    (src / "2024").mkdir(parents=True)
    jan = [HEAD, _person(1, "0001", working="是"), _person(2, "0001", health="长期慢性病、残疾"),
           _person(3, "0002", kind="一般农户", category="边缘易致贫户", identified="202401",
                   risk="因病"),
           _person(4, "0003", wage="900")]
    feb = [HEAD, _person(1, "0001"), _person(2, "0001"),
           _person(3, "0002", kind="一般农户", category="边缘易致贫户", identified="202401",
                   risk="因病"),
           _person(4, "0003", wage="900"), _person(5, "0003", wage="900"),
           _person(6, "0004"), _person(6, "0004")]              # 0004: one person twice
    (src / "2024" / "监测对象信息_20240105.csv").write_text("\n".join(jan) + "\n",
                                                         encoding="utf-8-sig")
    (src / "2024" / "监测对象信息_20240205.csv").write_text("\n".join(feb) + "\n",
                                                         encoding="gb18030")
    (src / "2024" / "务工月监测_20240210.csv").write_text(
        "户编号,证件号码,是否已务工,务工月收入（元）,开始时间,结束时间\n"
        f",{IDS[4]},是,\"3,500\",202312,\n0009,{IDS[7]},是,2000,,\n", encoding="utf-8")
    (src / "2024" / "医保预警_20240206.csv").write_text(
        "证件号码,预警月份,部门,预警事项,金额（元）\n"
        f"{IDS[2]},202401,医保,年度累计合规自付超5000元,\"５,２００\"\n"
        f"{IDS[7]},202402,医保,年度累计合规自付超5000元,6000\n", encoding="utf-8")
    (src / "说明.csv").write_text("标题,内容\n说明,本文件夹每月更新\n", encoding="utf-8")
    return src


def _texts(path: Path) -> str:
    """Everything a file holds, uncompressed: the bytes, a Parquet file's cells and metadata,
    a workbook's XML parts."""
    data = path.read_bytes()
    parts = [data.decode("utf-8", "replace")]
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        parts.append(table.to_pandas().astype(str).to_csv())
        parts.append(str(table.schema.metadata))
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as book:
            parts.extend(book.read(n).decode("utf-8") for n in book.namelist())
    return "\n".join(parts)


def _written(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_ingest_cli_writes_ledger_report_and_quarantine(tmp_path, capsys):
    src = county(tmp_path)
    out = tmp_path / "out" / "ledger.parquet"
    assert main(["ingest", "--sources", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    assert "4 files (4 parsed, 0 from the cache), 1 more of no known kind, 2 months" \
        in printed[0]
    assert "persons in 11 = 9 aggregated + 2 quarantined" in printed[0]
    assert "warnings 1 matched, 1 unmatched" in printed[0]
    assert main(["ingest", "--sources", str(src), "--out", str(out), "--force"]) == 0
    assert "4 files (0 parsed, 4 from the cache)" in capsys.readouterr().out

    ledger = pd.read_parquet(out).sort_values(["household_id", "month"], ignore_index=True)
    assert len(validate_ledger(ledger).quarantine) == 0
    assert ledger[["household_id", "month"]].values.tolist() == [
        ["0001", "2024-01"], ["0001", "2024-02"], ["0002", "2024-01"], ["0002", "2024-02"],
        ["0003", "2024-01"], ["0003", "2024-02"]]
    h1 = ledger.set_index(["household_id", "month"]).loc[("0001", "2024-02")]
    assert h1["ev_illness"] and h1["members"] == 2 and h1["annual_inc_wage"] == 12000.0
    assert h1["annual_recorded_month"] == "2024-01" and h1["wage_migrant"] == 0.0
    h3 = ledger.set_index(["household_id", "month"]).loc[("0003", "2024-02")]
    assert h3["wage_migrant"] == 3500.0 and h3["migrant_workers"] == 1
    assert ledger.loc[ledger["month"] == "2024-01", "wage_migrant"].isna().all()
    h2 = ledger.set_index(["household_id", "month"]).loc[("0002", "2024-01")]
    assert h2["household_type"] == "monitored" and h2["recorded_risk_1"] == "illness"
    assert h2["identified_month"] == "2024-01" and h2["monitoring_category"] == "marginal"

    folder = out.parent
    report = json.loads((folder / "ingest_report.json").read_text(encoding="utf-8"))
    assert [f["kind"] for f in report["files"]] == ["migrants", "warnings", "persons", "persons"]
    assert report["files"][2]["month"] == "2024-01" and len(report["files"][2]["sha256"]) == 64
    assert report["unrecognised_files"][0]["path"] == "说明.csv"
    assert report["persons_in"] == 11 and report["quarantined_by_rule"] == {
        "person_duplicated": 2}
    assert report["months"]["2024-02"]["households_quarantined"] == 1
    assert report["migrants"] == {"rows": 2, "working": 2, "matched": 1, "unmatched": 1}
    assert report["warnings"]["by_department"]["医保"]["unmatched"] == 1
    assert report["personal_columns"] == {"seen": sorted(["证件号码", "姓名", "联系电话",
                                                          "开户银行账号"]), "dropped": True}
    assert report["households"] == 3 and report["household_months"] == 6

    quarantine = pd.read_parquet(folder / "ingest_quarantine.parquet")
    assert quarantine["value"].tolist() == ["***", "***"]
    assert quarantine["file"].tolist() == ["2024/监测对象信息_20240205.csv"] * 2
    assert quarantine["row"].tolist() == [7, 8]
    sheet = pd.read_excel(folder / "ingest_quarantine.xlsx", dtype=str, engine="openpyxl")
    assert sheet["问题列"].tolist() == ["证件号码"] * 2
    assert sheet["填写内容"].tolist() == ["***"] * 2

    written = [p for p in folder.rglob("*") if p.is_file() and ".riskmodel-cache" not in p.parts]
    assert {p.relative_to(folder).as_posix() for p in written} >= {
        "ledger.parquet/2024-01.parquet", "ledger.parquet/2024-02.parquet", "ingest_report.json",
        "ingest_quarantine.parquet", "ingest_quarantine.xlsx"}
    for path in written:
        text = _texts(path)
        leaked = [m for m in MARKERS if m in text]
        assert not leaked, f"{path.name} holds personal values {leaked[:2]}"


def test_rerun_is_byte_identical_and_needs_force(tmp_path, capsys):
    src = county(tmp_path)
    out = tmp_path / "out" / "ledger.parquet"
    first = ingest(src, out)
    before = _written(out.parent)
    assert set(first.paths) == {"ledger", "report", "quarantine", "quarantine_xlsx"}
    assert main(["ingest", "--sources", str(src), "--out", str(out)]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0]
    assert _written(out.parent) == before
    assert main(["ingest", "--sources", str(src), "--out", str(out), "--force"]) == 0
    assert _written(out.parent) == before


def test_no_person_table_exits_2_with_one_line(tmp_path, capsys):
    src = tmp_path / "sources"
    src.mkdir()
    (src / "医保预警_20240206.csv").write_text(
        "证件号码,预警月份,部门,预警事项\n53012319800115001X,202401,医保,x\n", encoding="utf-8")
    out = tmp_path / "ledger.parquet"
    assert main(["ingest", "--sources", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no person table" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("name", ["ledger.csv"])
def test_the_ledger_must_be_parquet(tmp_path, name, capsys):
    assert main(["ingest", "--sources", str(county(tmp_path)), "--out",
                 str(tmp_path / name)]) == 2
    assert ".parquet" in capsys.readouterr().err
