"""How a county's exports look: header spellings, title lines, filler columns, money cells, files.

Every choice is drawn from the generator's own random stream (never the simulator's), so the
same arguments give the same bytes. Header spellings come from ``config.sources.headers``.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

#: Money fields: written as whole yuan, sometimes with thousands separators, 元 or full-width
#: digits.
MONEY = {"annual_inc_wage", "annual_inc_business", "annual_inc_property", "annual_inc_transfer",
         "annual_exp_medical_oop", "annual_income_pc", "annual_income_total", "migrant_wage",
         "amount"}
#: Platform columns nobody reads here, with how to fill them.
FILLER = {
    "序号": "serial", "民族": ["汉族", "彝族", "哈尼族", "白族", "苗族"],
    "文化程度": ["小学", "初中", "高中", "文盲或半文盲", ""],
    "是否参加城乡居民基本医疗保险": ["是", "是", "是", "否"],
    "是否参加大病保险": ["是", "否"], "是否参加城乡居民基本养老保险": ["是", "否", ""],
    "是否享受人身意外保险补贴": ["是", "否"], "政治面貌": ["群众", "中共党员", ""],
    "信息采集人": ["村委会", "驻村工作队"], "所属片区": ["一片区", "二片区", "三片区"],
    "备注": [""], "是否易地扶贫搬迁": ["否", "否", "是"], "帮扶责任人": ["帮扶干部"],
    "数据来源": ["全国防返贫监测信息系统"], "证件类型": ["居民身份证"],
    "是否外出务工就业": ["", "是", "否"], "务工单位": ["", "建筑工地", "电子厂"],
}
_FULL_WIDTH = str.maketrans("0123456789,", "０１２３４５６７８９，")
_FIXED_TIME = (2000, 1, 1, 0, 0, 0)
_CORE_TIME = "2000-01-01T00:00:00Z"


def _normal(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def choose_headers(fields: list[str], spellings: dict[str, list[str]],
                   rng: np.random.Generator, alternatives: bool) -> dict[str, str]:
    """A header per field: the first spelling, or (``alternatives``) sometimes another one, and
    money headers sometimes with full-width parentheses as the platform writes them."""
    out = {}
    for f in fields:
        options = spellings[f]
        name = options[int(rng.integers(1, len(options)))] if (
            alternatives and len(options) > 1 and rng.random() < 0.6) else options[0]
        if "(" in name and rng.random() < 0.6:
            name = name.replace("(", "（").replace(")", "）")
        out[f] = name
    return out


def filler_columns(rows: int, spellings: dict[str, list[str]], rng: np.random.Generator,
                   count: int) -> dict[str, np.ndarray]:
    """``count`` platform columns that match no known spelling."""
    known = {_normal(s) for options in spellings.values() for s in options}
    names = [n for n in FILLER if _normal(n) not in known]
    picked = sorted(rng.choice(len(names), size=min(count, len(names)), replace=False))
    out = {}
    for i in picked:
        values = FILLER[names[i]]
        if values == "serial":
            out[names[i]] = np.arange(1, rows + 1).astype(str).astype(object)
        else:
            out[names[i]] = np.asarray(values, dtype=object)[rng.integers(0, len(values), rows)]
    return out


def money_text(values: np.ndarray, style: dict, rng: np.random.Generator) -> np.ndarray:
    """Whole yuan as the cells show them: plain, ``12,345``, ``12,345元``, full-width digits.

    NaN is an empty cell.
    """
    blank = np.isnan(values)
    whole = np.where(blank, 0, values).astype(np.int64)
    series = pd.Series(whole)
    text = (series.map("{:,}".format) if style["thousands"] else series.astype(str)).to_numpy(
        dtype=object)
    if style["yuan"]:
        text = text + "元"
    if style["full_width"]:
        wide = rng.random(len(text)) < 0.3
        text[wide] = pd.Series(text[wide], dtype=object).str.translate(_FULL_WIDTH).to_numpy(
            dtype=object)
    text[blank] = ""
    return text


def money_style(rng: np.random.Generator) -> dict:
    """How one file writes its money cells."""
    return {"thousands": bool(rng.random() < 0.4), "yuan": bool(rng.random() < 0.15),
            "full_width": bool(rng.random() < 0.35)}


def assemble(columns: dict[str, np.ndarray], headers: dict[str, str],
             filler: dict[str, np.ndarray], rng: np.random.Generator) -> pd.DataFrame:
    """The table as written: mapped headers and filler columns, in a shuffled order."""
    data = {headers[f]: v for f, v in columns.items()}
    data.update(filler)
    names = list(data)
    order = rng.permutation(len(names))
    return pd.DataFrame({names[i]: pd.array(data[names[i]], dtype=object) for i in order})


def csv_bytes(frame: pd.DataFrame, titles: list[str], encoding: str, quote_all: bool) -> bytes:
    """CSV text under title lines (one cell each), in ``utf-8-sig`` or ``gb18030``.

    ``quote_all`` quotes every cell (as some platforms export), written by pyarrow (fast);
    otherwise only cells that need it, written by pandas.
    """
    if quote_all:
        table = pa.table({c: pa.array(frame[c].to_numpy(dtype=object), pa.string())
                          for c in frame.columns})
        raw = io.BytesIO()
        pacsv.write_csv(table, raw, pacsv.WriteOptions(quoting_style="needed"))
        body = raw.getvalue().decode("utf-8")
    else:
        body = frame.to_csv(index=False, lineterminator="\r\n")
    head = "".join(f"{t}\r\n" for t in titles)
    return (head + body).encode(encoding)


def xlsx_bytes(frame: pd.DataFrame, titles: list[str], sheet: str) -> bytes:
    """An xlsx workbook (text cells) under title rows, with fixed timestamps (same bytes)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    for t in titles:
        ws.append([t])
    ws.append(list(frame.columns))
    for row in frame.itertuples(index=False, name=None):
        ws.append(list(row))
    raw = io.BytesIO()
    wb.save(raw)
    return _fixed_zip(raw.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """The same zip with fixed entry times and document properties."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = content.decode("utf-8")
                text = re.sub(r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                              rf"\g<1>{_CORE_TIME}\g<3>", text)
                content = text.encode("utf-8")
            fixed = zipfile.ZipInfo(info.filename, date_time=_FIXED_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, content)
    return out.getvalue()
