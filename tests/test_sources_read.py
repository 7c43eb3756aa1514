"""Reading county source files: kinds from headers, title lines, spellings, encodings, months,
row numbers and the per-file cache (riskmodel.sources.read_sources)."""

from __future__ import annotations

import csv
import datetime
import logging

import openpyxl
import pandas as pd
import pytest

from riskmodel.config import load_config
from riskmodel.errors import SourceError
from riskmodel.sources import SourceTable, read_sources

CONFIG = load_config()
SOURCES = CONFIG.sources
PERSON_HEADERS = ["户编号", "劳动技能", "健康状况"]
FULL_WIDTH = str.maketrans("()/0123456789", "（）／０１２３４５６７８９")


def write_csv(path, rows, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def write_xlsx(path, rows, extra_sheet=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    book.active.title = "人员"
    for row in rows:
        book.active.append(row)
    if extra_sheet:
        book.create_sheet("其他").append(["户编号", "劳动技能", "健康状况"])
    book.save(path)
    return path


def read_one(folder, **kw) -> SourceTable:
    tables, unrecognised = read_sources(folder, **kw)
    assert len(tables) == 1 and not unrecognised, (tables, unrecognised)
    return tables[0]


def test_each_kind_is_recognised_from_its_headers_never_its_name(tmp_path):
    write_csv(tmp_path / "预警_20240105.csv", [PERSON_HEADERS, ["H1", "普通劳动力", "健康"]])
    write_csv(tmp_path / "人员_20240205.csv",
              [["户编号", "证件号码", "务工月收入（元）"], ["H1", "X1", "3000"]])
    write_csv(tmp_path / "务工.csv", [["证件号码", "预警月份", "部门", "预警事项"],
                                      ["X1", "202401", "医保", "大额医疗费用"]])
    tables, unrecognised = read_sources(tmp_path)
    assert [(t.path, t.kind, t.month) for t in tables] == [
        ("人员_20240205.csv", "migrants", "2024-02"),
        ("务工.csv", "warnings", None),
        ("预警_20240105.csv", "persons", "2024-01"),
    ]
    assert unrecognised == []


def _spelling_rows(k: int, full_width: bool) -> tuple[list[str], dict[str, str]]:
    """A header naming each field by its k-th spelling (fields with one), and what it means."""
    written = {}
    for field, spellings in SOURCES.headers.items():
        if len(spellings) > k:
            written[field] = spellings[k].translate(FULL_WIDTH) if full_width else spellings[k]
    for field, header in zip(["household_id", "labor_skill", "health"], PERSON_HEADERS,
                             strict=True):
        written.setdefault(field, header)
    return list(written.values()), written


@pytest.mark.parametrize("full_width", [False, True])
@pytest.mark.parametrize("k", range(max(len(s) for s in SOURCES.headers.values())))
def test_every_header_spelling_is_read_as_its_field(tmp_path, k, full_width):
    header, written = _spelling_rows(k, full_width)
    spaced = [f" {h[0]} {h[1:]}" if len(h) > 1 else h for h in header]
    values = ["202401" if f == "month" else f"v{i}" for i, f in enumerate(written)]
    write_csv(tmp_path / "t_202401.csv", [spaced, values])
    table = read_one(tmp_path)
    assert table.headers == {f: s.strip() for f, s in zip(written, spaced, strict=True)}
    # Names, phones and bank accounts are dropped as soon as they are read; 证件号码 gives
    # way to a pseudonym and the birth date it carries.
    kept = [f for f in SOURCES.headers if f in written
            and (f == "person_id" or f not in SOURCES.personal)]
    if "person_id" in kept:
        kept.insert(kept.index("person_id") + 1, "id_birth")
    assert list(table.frame.columns) == kept + ["_row"]
    plain = [f for f in table.frame.columns[:-1] if f not in ("person_id", "id_birth")]
    assert table.frame.loc[0, plain].tolist() == [
        dict(zip(written, values, strict=True))[f] for f in plain]
    if "person_id" in kept:
        assert table.frame.loc[0, "person_id"] not in ("", values[list(written).index("person_id")])
    assert table.unmapped == 0


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
@pytest.mark.parametrize("titles", range(6))
def test_the_header_is_found_under_title_lines_and_rows_are_numbered_as_shown(
        tmp_path, titles, suffix):
    title = [["监测对象信息"], ["导出时间：2024-01-05"], [], ["单位：人"], [""], ["说明"]][:titles]
    rows = [*title, PERSON_HEADERS, ["H1", "普通劳动力", "健康"], ["H2", "无劳动力", "残疾"]]
    if suffix == "csv":
        write_csv(tmp_path / "人员_202401.csv", rows)
    else:
        write_xlsx(tmp_path / "人员_202401.xlsx", rows)
    frame = read_one(tmp_path).frame
    assert frame["household_id"].tolist() == ["H1", "H2"]
    assert frame["_row"].tolist() == [titles + 2, titles + 3]


def test_a_header_below_the_rows_searched_is_not_recognised(tmp_path):
    rows = [["标题"]] * SOURCES.header_search_rows + [PERSON_HEADERS, ["H1", "普通劳动力", "健康"]]
    write_csv(tmp_path / "人员_202401.csv", rows)
    write_csv(tmp_path / "sub" / "名单.csv", [["序号", "备注"], ["1", "x"]])
    tables, unrecognised = read_sources(tmp_path)
    reason = f"no header of a known kind in the first {SOURCES.header_search_rows} rows"
    assert tables == []
    assert unrecognised == [{"path": "sub/名单.csv", "reason": reason},
                            {"path": "人员_202401.csv", "reason": reason}]


def test_only_mapped_columns_are_kept_in_any_order_as_normalised_text(tmp_path):
    rows = [["备注", "健康状况", "工资性收入（元）", "户编号", "民族", "劳动技能", "户编号"],
            ["x", "长期慢性病、 残疾", "１２，０００", "００１", "汉", "普通劳动力", "H9"],
            ["y", "", "", "002", "", "", ""]]
    write_csv(tmp_path / "人员_202401.csv", rows)
    table = read_one(tmp_path)
    assert table.unmapped == 2
    assert table.headers == {"household_id": "户编号", "health": "健康状况",
                             "labor_skill": "劳动技能", "annual_inc_wage": "工资性收入（元）"}
    frame = table.frame
    assert list(frame.columns) == ["household_id", "health", "labor_skill", "annual_inc_wage",
                                   "_row"]
    assert all(frame[c].dtype == "string" for c in frame.columns[:-1])
    assert frame["_row"].dtype == "int64"
    assert frame.to_dict("list") == {
        "household_id": ["001", "002"], "health": ["长期慢性病、残疾", ""],
        "labor_skill": ["普通劳动力", ""], "annual_inc_wage": ["12,000", ""], "_row": [2, 3]}
    assert not frame.isna().any().any()


def test_blank_lines_quoted_line_breaks_and_empty_rows_keep_the_numbering(tmp_path):
    path = tmp_path / "人员_202401.csv"
    path.write_text("标题\n\n户编号,劳动技能,健康状况,备注\nH1,普通劳动力,健康,\"两\n行\"\n\n"
                    ",,,x\nH2,无劳动力,残疾,\n", encoding="utf-8")
    frame = read_one(tmp_path).frame
    assert frame.to_dict("list") == {"household_id": ["H1", "H2"],
                                     "health": ["健康", "残疾"],
                                     "labor_skill": ["普通劳动力", "无劳动力"], "_row": [4, 7]}


def test_a_row_is_a_record_when_any_mapped_cell_is_filled_not_only_the_first(tmp_path):
    path = tmp_path / "人员_202401.csv"
    path.write_text("户编号,劳动技能,健康状况,备注\n,,残疾,\n　,,,x\n,普通劳动力,,\nH1,,,\n"
                    " ,\u200b,,\n", encoding="utf-8")
    frame = read_one(tmp_path).frame
    assert frame.to_dict("list") == {"household_id": ["", "", "H1"],
                                     "health": ["残疾", "", ""],
                                     "labor_skill": ["", "普通劳动力", ""], "_row": [2, 4, 5]}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_utf8_with_or_without_bom_and_in_gb18030(tmp_path, encoding):
    rows = [["监测对象信息"], PERSON_HEADERS, ["H1", "弱劳动力或半劳动力", "患大病"]]
    write_csv(tmp_path / "人员_202401.csv", rows, encoding=encoding)
    table = read_one(tmp_path)
    assert table.frame.drop(columns="_row").iloc[0].tolist() == [
        "H1", "患大病", "弱劳动力或半劳动力"]
    assert table.headers["household_id"] == "户编号"


def test_xlsx_first_sheet_numbers_and_dates_read_as_text(tmp_path):
    rows = [["监测对象信息"], [*PERSON_HEADERS, "出生日期", "年收入（元）", "导出月份"],
            ["H1", "普通劳动力", "健康", datetime.datetime(1980, 3, 9), 12000, 202401],
            [7, "无劳动力", "残疾", "19900102", 1500.5, 202401]]
    write_xlsx(tmp_path / "人员.xlsx", rows, extra_sheet=True)
    table = read_one(tmp_path)
    assert (table.sheet, table.month, table.kind) == ("人员", "2024-01", "persons")
    assert table.frame.to_dict("list") == {
        "month": ["202401", "202401"], "household_id": ["H1", "7"],
        "birth_date": ["1980-03-09", "19900102"], "health": ["健康", "残疾"],
        "labor_skill": ["普通劳动力", "无劳动力"], "annual_income_total": ["12000", "1500.5"],
        "_row": [3, 4]}


@pytest.mark.parametrize(("header", "value", "month"), [
    ("导出月份", "202312", "2023-12"), ("数据月份", "2024-01", "2024-01"),
    ("导出月份", "2024年3月", "2024-03"), ("导出月份", "２０２４０５", "2024-05")])
def test_month_from_the_month_column(tmp_path, header, value, month):
    write_csv(tmp_path / "人员_20200101.csv",
              [[*PERSON_HEADERS, header], ["H1", "普通劳动力", "健康", value],
               ["H2", "普通劳动力", "健康", ""]])
    assert read_one(tmp_path).month == month


@pytest.mark.parametrize(("name", "month"), [
    ("监测对象信息_20231218.csv", "2023-12"), ("人员202312.csv", "2023-12"),
    ("2024-02 人员.csv", "2024-02"), ("第3批_2024年1月.csv", "2024-01"),
    ("人员１２_２０２４０６０１.csv", "2024-06")])
def test_month_from_the_first_date_in_the_file_name(tmp_path, name, month):
    write_csv(tmp_path / name, [PERSON_HEADERS, ["H1", "普通劳动力", "健康"]])
    assert read_one(tmp_path).month == month


def test_no_month_two_months_or_a_bad_month_is_one_clear_error(tmp_path):
    path = write_csv(tmp_path / "a" / "人员.csv", [PERSON_HEADERS, ["H1", "普通劳动力", "健康"]])
    with pytest.raises(SourceError, match=r"人员\.csv: no download month") as caught:
        read_sources(path.parent)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 2
    rows = [[*PERSON_HEADERS, "导出月份"], ["H1", "普通劳动力", "健康", "202401"],
            ["H2", "普通劳动力", "健康", "202402"]]
    write_csv(tmp_path / "b" / "人员_202401.csv", rows)
    with pytest.raises(SourceError, match=r"several months \(2024-01, 2024-02\)"):
        read_sources(tmp_path / "b")
    rows[2][3] = "上月"
    write_csv(tmp_path / "c" / "人员_202401.csv", rows)
    with pytest.raises(SourceError, match="holds '上月'"):
        read_sources(tmp_path / "c")


def test_unreadable_files_and_missing_folders_are_errors_hidden_files_are_skipped(tmp_path):
    write_csv(tmp_path / ".tmp" / "x.csv", [PERSON_HEADERS])
    write_csv(tmp_path / ".隐藏_202401.csv", [PERSON_HEADERS])
    (tmp_path / "~$人员.xlsx").write_bytes(b"lock")
    assert read_sources(tmp_path) == ([], [])
    (tmp_path / "人员.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(SourceError, match=r"人员\.xlsx: cannot be read as xlsx"):
        read_sources(tmp_path)
    with pytest.raises(SourceError, match="no such folder"):
        read_sources(tmp_path / "absent")


def _parsed(caplog) -> list[str]:
    """The files read_sources says it parsed (rather than took from the cache)."""
    return sorted(r.getMessage().split(": parsed (")[0] for r in caplog.records
                  if ": parsed (" in r.getMessage())


def _same(a: list[SourceTable], b: list[SourceTable]) -> bool:
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x.frame, y.frame)
    return [(t.path, t.sheet, t.sha256, t.kind, t.month, t.headers, t.unmapped) for t in a] \
        == [(t.path, t.sheet, t.sha256, t.kind, t.month, t.headers, t.unmapped) for t in b]


def test_the_cache_parses_a_file_once_until_its_bytes_or_the_config_change(tmp_path, caplog):
    sources, cache = tmp_path / "sources", tmp_path / "cache"
    write_csv(sources / "人员_202401.csv", [PERSON_HEADERS, ["H1", "普通劳动力", "健康"]])
    write_csv(sources / "名单.csv", [["序号"], ["1"]])
    caplog.set_level(logging.INFO, logger="riskmodel.sources")
    first = read_sources(sources, cache_dir=cache)
    assert _parsed(caplog) == ["人员_202401.csv", "名单.csv"]
    assert not any(t.from_cache for t in first[0])

    caplog.clear()
    second = read_sources(sources, cache_dir=cache)
    assert _parsed(caplog) == []
    assert all(t.from_cache for t in second[0])
    assert _same(second[0], first[0]) and second[1] == first[1]

    # A new month's file alone is parsed; a renamed file is found by its content.
    (sources / "人员_202401.csv").rename(sources / "人员_20240105.csv")
    write_csv(sources / "人员_202402.csv", [PERSON_HEADERS, ["H1", "无劳动力", "健康"]])
    caplog.clear()
    tables, _ = read_sources(sources, cache_dir=cache)
    assert _parsed(caplog) == ["人员_202402.csv"]
    assert [t.month for t in tables] == ["2024-01", "2024-02"]

    caplog.clear()
    changed = CONFIG.model_copy(update={"sources": SOURCES.model_copy(
        update={"header_search_rows": SOURCES.header_search_rows + 1})})
    read_sources(sources, changed, cache_dir=cache)
    assert _parsed(caplog) == ["人员_20240105.csv", "人员_202402.csv", "名单.csv"]


def test_a_corrupt_cache_entry_is_ignored_and_rewritten(tmp_path, caplog):
    sources, cache = tmp_path / "sources", tmp_path / "cache"
    write_csv(sources / "人员_202401.csv", [PERSON_HEADERS, ["H1", "普通劳动力", "健康"]])
    first, _ = read_sources(sources, cache_dir=cache)
    entries = sorted(p.name for p in cache.iterdir() if p.name != "key")
    assert entries == [f"{first[0].sha256}-{n}" for n in
                       sorted(p.name.split("-", 1)[1] for p in cache.iterdir()
                              if p.name != "key")]
    # Entries hold pseudonyms made with the folder's key: only their owner may read them.
    assert cache.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in cache.iterdir()} == {0o600}
    table_file = next(cache.glob("*.arrow"))
    table_file.write_bytes(table_file.read_bytes()[:40])
    caplog.set_level(logging.INFO, logger="riskmodel.sources")
    again, _ = read_sources(sources, cache_dir=cache)
    assert _parsed(caplog) == ["人员_202401.csv"] and not again[0].from_cache
    third, _ = read_sources(sources, cache_dir=cache)
    assert third[0].from_cache
    assert _same(again, first) and _same(third, first)


@pytest.mark.parametrize("repeat", [1, 20_001])
def test_cells_are_normalised_alike_on_every_path_of_the_vectorised_normalisation(repeat):
    import pyarrow as pa

    from riskmodel.sources._text import normalise_array, normalise_text

    spaces = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
    cases = [["户编号", "H001", "残疾"],                       # nothing to change
             ["H 001", "12\t000", ""],                          # ASCII with spaces
             ["１２，０００", "长期慢性病、残疾", "致贫／返贫风险１"],  # NFKC
             [f"户{spaces}编号", "\u200b是\ufeff", "（元）"],        # every whitespace
             ["Ⅻ号", "㈱户", "ｱ是", "𠀀〇"]]            # lead bytes beside E4-E9
    for values in cases:
        column = pa.chunked_array([pa.array(values * repeat), pa.array([None, values[0]])])
        expected = [normalise_text(v) for v in values] * repeat + ["", normalise_text(values[0])]
        assert normalise_array(column).to_pylist() == expected
    assert normalise_text(f"户{spaces}编号（元）１") == "户编号(元)1"


def test_line_breaks_in_cells_across_arrow_blocks_are_read_whole(tmp_path, monkeypatch):
    from riskmodel.sources import _read

    monkeypatch.setattr(_read, "_CSV_BLOCK", 1 << 10)  # many blocks from a small file
    lines = ["户编号,劳动技能,健康状况,备注"] + [
        f'H{i},普通劳动力,健康,"第{i}行\n续"' if i % 5 == 0 else f"H{i},无劳动力,残疾,"
        for i in range(400)]
    (tmp_path / "人员_202401.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    frame = read_one(tmp_path).frame
    assert frame["household_id"].tolist() == [f"H{i}" for i in range(400)]
    assert frame["_row"].tolist() == list(range(2, 402))


def test_ragged_rows_are_read_and_errors_never_quote_a_cell(tmp_path):
    marker = "110101199001011234"
    write_csv(tmp_path / "a" / "人员_202401.csv",
              [[*PERSON_HEADERS, "证件号码"], ["H1", "普通劳动力"],
               ["H2", "无劳动力", "健康", marker]])
    frame = read_one(tmp_path / "a").frame.to_dict("list")
    pseudonym = frame["person_id"][1]
    assert pseudonym not in ("", marker)
    assert frame == {
        "household_id": ["H1", "H2"], "person_id": ["", pseudonym], "id_birth": ["", "19900101"],
        "health": ["", "健康"], "labor_skill": ["普通劳动力", "无劳动力"], "_row": [2, 3]}
    write_csv(tmp_path / "b" / "人员_202401.csv",
              [[*PERSON_HEADERS, "证件号码"], ["H1", "普通劳动力", "健康", marker, marker]])
    with pytest.raises(SourceError, match="row 2 has more cells than the header") as caught:
        read_sources(tmp_path / "b")
    assert marker not in str(caught.value) and "\n" not in str(caught.value)
    write_csv(tmp_path / "c" / "人员_202401.csv",
              [[*PERSON_HEADERS, "证件号码"], [], ["H1", "普通劳动力", "健康", marker, "", marker]])
    with pytest.raises(SourceError, match=r"line 3, saw 6 \(the header has 4 cells\)") as caught:
        read_sources(tmp_path / "c")
    assert marker not in str(caught.value)
