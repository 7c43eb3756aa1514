"""Reading a county's person table: persons per second from CSV and from Excel, and peak memory.

Writes one monthly person table (监测对象信息) of ``--households`` households (about 3.3
persons each) with 60 columns — every column ``riskmodel ingest`` maps plus platform columns it
does not read — under three title lines, as UTF-8 CSV (with BOM), and, for
``--xlsx-households`` households, as an ``.xlsx`` workbook. Then reads them, each reader in a
fresh process (its own peak resident memory):

- CSV: :func:`riskmodel.sources.read_sources` (Arrow's CSV reader, mapped columns only,
  normalised), parsing and filling its cache, then again from the cache;
- xlsx: ``read_sources`` (fastexcel), and for comparison every column of the sheet as text by
  fastexcel, by pandas' ``calamine`` engine (python-calamine) and by pandas' ``openpyxl``.

Target: the CSV of 1,000,000 households read in a small part of the 60 seconds that ingest
has for it on 2 cores.

    python benchmarks/bench_sources_read.py --households 1000000 --xlsx-households 50000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

sys.path.insert(0, str(Path(__file__).parent))

TITLE = ["全国防返贫监测信息系统 监测对象信息", "导出时间：2024-01-05 08:30", ""]
FILLER = ["民族", "政治面貌", "文化程度", "在校生就读学校", "是否参加城乡居民基本医疗保险",
          "是否参加城乡居民基本养老保险", "是否享受人身意外保险补贴", "务工区域",
          "务工企业名称", "帮扶责任人", "帮扶责任人联系电话", "户主姓名", "家庭住址"]


def person_table(households: int, seed: int = 0) -> pa.Table:
    """A person table of ``households`` households as the platform exports it (text cells)."""
    rng = np.random.default_rng(seed)
    size = rng.choice([1, 2, 3, 4, 5, 6], p=[.1, .2, .25, .25, .12, .08], size=households)
    hh = np.repeat(np.arange(households), size)
    n = len(hh)

    def pick(values, count=n, p=None):
        return pc.take(pa.array(values), pa.array(rng.choice(len(values), size=count, p=p)))

    def digits(width, count=n, low=0):
        return pc.utf8_lpad(pc.cast(pa.array(rng.integers(low, 10 ** width, count)),
                                    pa.string()), width, "0")

    def per_household(column):
        return pc.take(column, pa.array(hh))

    def join(*parts):
        return pc.binary_join_element_wise(*parts, "")

    born = join(pc.cast(pa.array(rng.integers(1940, 2023, n)), pa.string()),
                pick([f"{m:02d}" for m in range(1, 13)]),
                pick([f"{d:02d}" for d in range(1, 29)]))
    money = {h: per_household(pc.cast(pa.array(rng.integers(0, 40_000, households)),
                                       pa.string()))
             for h in ["工资性收入（元）", "生产经营性收入（元）", "财产性收入（元）",
                       "转移性收入（元）", "合规自付支出（元）", "人均纯收入（元）",
                       "年收入（元）"]}
    surnames = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗")
    given = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华")
    names = [s + a + b for s in surnames for a in given for b in given]
    risk = ["因病", "因残", "因学", "因自然灾害", "因意外事故", "因产业失败", "因务工就业不稳",
            "缺劳动力", "其他", ""]
    columns = {
        "导出月份": pa.array(["202401"] * n),
        "省": pa.array(["云南省"] * n),
        "县(市、区、旗)": per_household(pick([f"{c}县" for c in "东南西北中"], households)),
        "乡(镇)": per_household(pick([f"第{t}镇" for t in range(20)], households)),
        "行政村": per_household(pick([f"{v}村" for v in range(300)], households)),
        "户编号": per_household(pc.utf8_lpad(pc.cast(pa.array(np.arange(households)),
                                                      pa.string()), 16, "0")),
        "证件号码": join(digits(6, low=100000), born, digits(4)),
        "姓名": pick(names),
        "联系电话": join(pa.array(["1"] * n), digits(10)),
        "开户银行账号": digits(18),
        "与户主关系": pick(["户主", "配偶", "之子", "之女", "之孙子", "之母"]),
        "出生日期": born,
        "户类型": per_household(pick(["脱贫户", "一般农户", ""], households)),
        "监测对象类别": per_household(pick(["脱贫不稳定户", "边缘易致贫户", "突发严重困难户",
                                           ""], households, p=[.05, .05, .02, .88])),
        "识别监测时间": per_household(pick(["202203", "202306", ""], households)),
        "风险是否已消除": per_household(pick(["是", "否", ""], households)),
        "消除监测时间": per_household(pick(["202312", ""], households)),
        "风险消除方式": per_household(pick(["帮扶消除", "自然消除", ""], households)),
        **{f"致贫/返贫风险{k}": per_household(pick(risk, households)) for k in range(1, 6)},
        "健康状况": pick(["健康", "长期慢性病", "患大病", "残疾", "长期慢性病、残疾"],
                         p=[.7, .15, .05, .07, .03]),
        "残疾等级": pick(["", "一级", "二级", "三级", "四级"], p=[.9, .025, .025, .025, .025]),
        "劳动技能": pick(["技能劳动力", "普通劳动力", "弱劳动力或半劳动力", "丧失劳动力",
                         "无劳动力"]),
        "在校生状况": pick(["", "小学三年级", "八年级", "高中一年级", "本科二年级"]),
        "是否义务教育阶段适龄儿童少年失学辍学": pick(["否", "是"], p=[.99, .01]),
        "是否已务工": pick(["否", "是"]),
        "享受低保政策情况": pick(["未享受", "农村低保", ""]),
        "享受特困供养政策情况": pick(["否", "是"], p=[.97, .03]),
        "公益性岗位": pick(["否", "是", "6"]),
        "是否危房户": per_household(pick(["否", "是"], households)),
        "是否解决安全饮用水": per_household(pick(["是", "否"], households)),
        **money,
        "收入年度": pa.array(["2023"] * n),
    }
    for header in FILLER:
        columns[header] = pick([f"{header[:2]}{v}" for v in range(50)] + [""])
    # Platform exports list columns in their own order: a fixed shuffle of them.
    order = np.random.default_rng(seed + 1).permutation(len(columns))
    headers = list(columns)
    return pa.table({headers[i]: columns[headers[i]] for i in order})


def write_csv(table: pa.Table, path: Path) -> Path:
    """UTF-8 with BOM, title lines above the header, as the platform's CSV export."""
    with open(path, "wb") as handle:
        handle.write(("\ufeff" + "\n".join(TITLE) + "\n").encode("utf-8"))
        pcsv.write_csv(table, handle, pcsv.WriteOptions(quoting_style="needed"))
    return path


def write_xlsx(table: pa.Table, path: Path) -> Path:
    """A one-sheet workbook of text cells (inline strings) under the title rows."""
    def cells(values):
        escaped = pc.replace_substring(pc.replace_substring(pc.replace_substring(
            values, "&", "&amp;"), "<", "&lt;"), ">", "&gt;")
        return pc.binary_join_element_wise(
            '<c t="inlineStr"><is><t>', escaped, "</t></is></c>", "")

    header = "".join(f'<c t="inlineStr"><is><t>{h}</t></is></c>' for h in table.column_names)
    body = pc.binary_join_element_wise(*[cells(c) for c in table.columns], "")
    rows = [f'<row><c t="inlineStr"><is><t>{t}</t></is></c></row>' if t else "<row/>"
            for t in TITLE] + [f"<row>{header}</row>"]
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             "<sheetData>" + "".join(rows)
             + "".join(pc.binary_join_element_wise("<row>", body, "</row>", "").to_pylist())
             + "</sheetData></worksheet>")
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxml'
            'formats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"),
        "xl/workbook.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="监测对象信息" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>"),
        "xl/worksheets/sheet1.xml": sheet,
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, text in parts.items():
            book.writestr(name, text)
    return path


def read_one(reader: str, path: Path, cache: Path | None) -> tuple[int, float]:
    """Persons read by ``reader`` from ``path`` and the seconds it took (run in a child)."""
    if reader == "read_sources":
        from riskmodel.config import load_config
        from riskmodel.sources import read_sources

        config = load_config()
        start = time.perf_counter()
        tables, _ = read_sources(path.parent, config, cache_dir=cache)
        persons = len(tables[0].frame)
    elif reader == "fastexcel":
        import fastexcel

        start = time.perf_counter()
        sheet = fastexcel.read_excel(path).load_sheet(0, header_row=None, dtypes="string",
                                                       eager=True)
        persons = sheet.num_rows - len(TITLE) - 1
    else:
        import pandas as pd

        start = time.perf_counter()
        frame = pd.read_excel(path, engine=reader, header=None, dtype=str)
        persons = len(frame) - len(TITLE) - 1
    return persons, time.perf_counter() - start


def measure(reader: str, path: Path, cache: Path | None = None) -> dict:
    from peak import run_measured

    command = [sys.executable, __file__, "--child", reader, str(path)]
    if cache is not None:
        command.append(str(cache))
    with tempfile.TemporaryFile("w+") as out:
        done = run_measured(command, stdout=out)
        out.seek(0)
        text = out.read()
    if done.returncode:
        raise SystemExit(f"{reader} on {path.name} failed ({done.returncode})")
    persons, seconds = text.split()
    return {"persons": int(persons), "seconds": float(seconds), "cpu": done.cpu_seconds,
            "wall": done.seconds, "peak_gib": done.peak_bytes / 2 ** 30,
            "load": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000, help="CSV households")
    parser.add_argument("--xlsx-households", type=int, default=50_000, help="0: no xlsx")
    parser.add_argument("--readers", default="read_sources,fastexcel,calamine,openpyxl",
                        help="xlsx readers to compare")
    parser.add_argument("--workdir", help="keep files here instead of a temporary folder")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        reader, path, *cache = args.child
        persons, seconds = read_one(reader, Path(path), Path(cache[0]) if cache else None)
        print(persons, seconds)
        return

    folder = Path(args.workdir or tempfile.mkdtemp(prefix="bench-sources-"))
    results = []
    try:
        if args.households:
            start = time.perf_counter()
            csv_path = folder / f"csv-{args.households}" / "监测对象信息_20240105.csv"
            csv_path.parent.mkdir(parents=True, exist_ok=True)
            if not csv_path.exists():  # a --workdir keeps the table of an earlier run
                write_csv(person_table(args.households), csv_path)
            print(f"{csv_path.stat().st_size / 2**20:.0f} MiB of CSV in "
                  f"{time.perf_counter() - start:.1f} s", flush=True)
            cache = folder / "cache"
            shutil.rmtree(cache, ignore_errors=True)
            results.append(("csv", args.households, "read_sources (parse, fill cache)",
                            measure("read_sources", csv_path, cache)))
            results.append(("csv", args.households, "read_sources (from cache)",
                            measure("read_sources", csv_path, cache)))
        if args.xlsx_households:
            start = time.perf_counter()
            xlsx_path = folder / f"xlsx-{args.xlsx_households}" / "监测对象信息_20240105.xlsx"
            xlsx_path.parent.mkdir(parents=True, exist_ok=True)
            if not xlsx_path.exists():
                write_xlsx(person_table(args.xlsx_households), xlsx_path)
            print(f"{xlsx_path.stat().st_size / 2**20:.0f} MiB of xlsx in "
                  f"{time.perf_counter() - start:.1f} s", flush=True)
            for reader in args.readers.split(","):
                label = {"read_sources": "read_sources (fastexcel, mapped columns)",
                         "fastexcel": "fastexcel, all columns",
                         "calamine": "pandas engine calamine, all columns",
                         "openpyxl": "pandas engine openpyxl, all columns"}[reader]
                results.append(("xlsx", args.xlsx_households, label,
                                measure(reader, xlsx_path)))
    finally:
        if not args.workdir:
            shutil.rmtree(folder, ignore_errors=True)
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(f"\n{cpu} cores; read time in the process (persons/s), the process's wall and CPU "
          "time, peak resident memory, 1-minute load average after it")
    for fmt, households, reader, r in results:
        print(f"{fmt:5s} {households:>9,d} households {r['persons']:>10,d} persons  "
              f"{reader:42s} {r['seconds']:7.1f} s {r['persons'] / r['seconds']:>12,.0f}/s "
              f"wall {r['wall']:6.1f} s CPU {r['cpu']:6.1f} s peak {r['peak_gib']:.2f} GiB "
              f"load {r['load']:.1f}")


if __name__ == "__main__":
    main()
