from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_ledger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from riskmodel.config import load_aliases
from riskmodel.errors import LedgerError
from riskmodel.ledger import LEDGER_COLUMNS, OPTIONAL, read_ledger, validate_ledger

ZH = {v: k for k, v in load_aliases().items()}

BROKEN = [
    ("members", 0, "members_below_1"),
    ("elderly", -1, "count_negative"),
    ("children", 9, "children_exceeds_members"),
    ("labor_partial", 3, "labor_exceeds_members"),
    ("inc_wage", -5.0, "amount_negative"),
    ("exp_medical_oop", -1.0, "amount_negative"),
    ("household_type", "城市户", "household_type_unknown"),
    ("month", "2024-13", "month_format"),
    ("inc_transfer", "一百", "not_a_number"),
    ("members", "", "value_missing"),
    ("village", " ", "value_missing"),
    ("housing_safe", "maybe", "not_a_boolean"),
    ("students_compulsory", 1.5, "count_not_integer"),
    ("disabled_severe", 1, "disabled_severe_exceeds_disabled"),
    ("dropouts", 5, "dropouts_exceeds_members"),
]


@pytest.mark.parametrize(("column", "value", "rule"), BROKEN)
def test_each_rule_quarantines_the_row_that_breaks_it(column, value, rule):
    raw = tiny_ledger().astype(object)
    raw.loc[4, column] = value
    result = validate_ledger(raw)
    assert result.reconciles
    assert len(result.quarantine) == 1
    row = result.quarantine.iloc[0]
    assert row["source_row"] == 4
    assert row["rule"] == rule
    assert row["column"] == column
    assert row["household_id"] == raw.loc[4, "household_id"]
    assert len(result.valid) == len(raw) - 1


def test_offending_value_is_kept():
    raw = tiny_ledger().astype(object)
    raw.loc[2, "inc_wage"] = "12o0"
    q = validate_ledger(raw).quarantine
    assert q.loc[0, "value"] == "12o0"
    assert q.loc[0, "reasons"] == "not_a_number(inc_wage)"


def test_every_copy_of_a_duplicate_key_is_quarantined():
    raw = tiny_ledger()
    raw = pd.concat([raw, raw.iloc[[0, 5]]], ignore_index=True)
    result = validate_ledger(raw)
    assert result.reconciles
    assert len(result.quarantine) == 4
    assert set(result.quarantine["rule"]) == {"duplicate_key"}


def test_a_row_with_several_faults_lists_them_all():
    raw = tiny_ledger().astype(object)
    raw.loc[1, ["members", "inc_wage"]] = [0, "x"]
    q = validate_ledger(raw).quarantine
    assert len(q) == 1
    assert "members_below_1(members)" in q.loc[0, "reasons"]
    assert "not_a_number(inc_wage)" in q.loc[0, "reasons"]


def test_valid_rows_are_typed_and_complete():
    result = validate_ledger(tiny_ledger())
    valid = result.valid
    assert result.quarantine.empty
    assert list(valid.columns[: len(LEDGER_COLUMNS)]) == LEDGER_COLUMNS
    assert valid["members"].dtype == "int64"
    assert valid["inc_wage"].dtype == "float64"
    assert str(valid["housing_safe"].dtype) == "boolean"
    assert valid["month"].str.fullmatch(r"\d{4}-\d{2}").all()


def test_extra_columns_pass_through_and_optional_columns_may_be_absent():
    raw = tiny_ledger().drop(columns=["ev_epidemic", "province", "migrant_workers"])
    raw["cadre_note"] = "ok"
    result = validate_ledger(raw)
    assert result.quarantine.empty
    assert "cadre_note" in result.valid
    assert set(result.missing_optional) == {"ev_epidemic", "province", "migrant_workers"}
    assert not result.valid["ev_epidemic"].any()
    assert result.valid["migrant_workers"].isna().all()


def test_money_cells_may_be_empty_for_unvisited_months():
    raw = tiny_ledger().astype(object)
    raw.loc[3, ["inc_wage", "inc_business", "exp_education"]] = ""
    result = validate_ledger(raw)
    assert result.quarantine.empty
    assert np.isnan(result.valid.loc[3, "inc_wage"])


def test_month_spellings_are_normalised():
    raw = tiny_ledger(households=1, months=4).astype(object)
    raw["month"] = ["2024/1", "202402", "2024年3月", pd.Timestamp("2024-04-01")]
    assert validate_ledger(raw).valid["month"].tolist() == [
        "2024-01", "2024-02", "2024-03", "2024-04"]


def test_chinese_household_types_and_booleans():
    raw = tiny_ledger(households=3, months=1).astype(object)
    raw["household_type"] = ["脱贫户", "监测户", "一般农户"]
    raw["dibao"] = ["是", "否", "1"]
    valid = validate_ledger(raw).valid
    assert valid["household_type"].tolist() == ["exited", "monitored", "general"]
    assert valid["dibao"].tolist() == [True, False, True]


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".xlsx"])
def test_all_three_file_types_read_the_same(tmp_path, suffix):
    frame = tiny_ledger().rename(columns=ZH)
    path = tmp_path / f"ledger{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8-sig")
    else:
        frame.to_excel(path, index=False)
    result = validate_ledger(read_ledger(path))
    expected = validate_ledger(tiny_ledger()).valid
    assert result.quarantine.empty
    pd.testing.assert_frame_equal(result.valid, expected, check_dtype=False)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_title_lines_above_the_header_are_skipped(tmp_path, suffix, caplog):
    frame = tiny_ledger().astype({"members": object}).rename(columns=ZH)
    frame.loc[4, ZH["members"]] = 0
    path = tmp_path / f"ledger{suffix}"
    title = "青岚县防止返贫动态监测台账（2024年3月）"
    if suffix == ".csv":
        # A title and a date line above the header, shorter than it, as exports write them.
        body = frame.to_csv(index=False)
        path.write_text(f"{title}\n制表日期：2024-04-02,,\n{body}", encoding="utf-8-sig")
    else:
        frame.to_excel(path, index=False, startrow=2)
        book = load_workbook(path)
        book.active.cell(row=1, column=1).value = title
        book.save(path)
    with caplog.at_level("INFO", logger="riskmodel"):
        result = validate_ledger(read_ledger(path))
    assert "under 2 title" in caplog.text
    expected = validate_ledger(tiny_ledger().astype({"members": object}).assign(
        members=lambda f: f["members"].where(f.index != 4, 0)))
    pd.testing.assert_frame_equal(result.valid, expected.valid, check_dtype=False)
    # Records are numbered from the first under the header.
    assert result.quarantine[["source_row", "rule"]].values.tolist() == [[4, "members_below_1"]]


def test_a_header_further_down_than_the_title_rows_searched_is_not_found(tmp_path):
    from riskmodel.ledger import HEADER_SEARCH_ROWS

    path = tmp_path / "ledger.csv"
    titles = "".join(f"title {i}\n" for i in range(HEADER_SEARCH_ROWS + 1))
    path.write_text(titles + tiny_ledger().to_csv(index=False), encoding="utf-8")
    with pytest.raises(LedgerError, match="none of its first 11 lines is a header naming"):
        read_ledger(path)
    path.write_text(titles[len("title 0\n"):] + tiny_ledger().to_csv(index=False),
                    encoding="utf-8")
    assert len(read_ledger(path)) == 12


def test_csv_without_bom(tmp_path):
    path = tmp_path / "ledger.csv"
    tiny_ledger().to_csv(path, index=False, encoding="utf-8")
    assert len(validate_ledger(read_ledger(path)).valid) == 12


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("ledger.json", "{}", "unsupported file type '.json'"),
        ("ledger.xls", "old", r"unsupported file type '.xls'.*save the workbook as .xlsx"),
        ("empty.csv", "", "the file is empty"),
        ("header.csv", ",".join(LEDGER_COLUMNS) + "\n", "the file has no rows"),
        ("broken.parquet", "not parquet", "cannot be read as parquet"),
        ("nofile.csv", None, "file not found"),
    ],
)
def test_unreadable_files_stop_with_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(LedgerError, match=message) as info:
        read_ledger(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_missing_required_column_is_named(tmp_path):
    path = tmp_path / "ledger.csv"
    tiny_ledger().drop(columns=["inc_wage"]).to_csv(path, index=False)
    with pytest.raises(LedgerError, match="required column 'inc_wage' is missing"):
        read_ledger(path)


GARBAGE = st.sampled_from(["", "abc", "-7", "1e9", "NaN", "是", "2024-99", "  ", "-0.5", "99"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cells=st.lists(
        st.tuples(st.integers(0, 23), st.sampled_from(LEDGER_COLUMNS), GARBAGE), max_size=25),
    duplicates=st.lists(st.integers(0, 23), max_size=4),
    renamed=st.lists(st.sampled_from(sorted(ZH)), max_size=10, unique=True),
)
def test_counts_reconcile_under_random_corruption(cells, duplicates, renamed):
    raw = tiny_ledger(households=6, months=4).astype(object)
    for row, column, value in cells:
        raw.loc[row, column] = value
    raw = pd.concat([raw, raw.iloc[duplicates]], ignore_index=True)
    raw = raw.rename(columns={c: ZH[c] for c in renamed})
    from riskmodel.ledger import normalise_columns

    result = validate_ledger(normalise_columns(raw))
    assert result.reconciles
    assert len(result.valid) + len(result.quarantine) == len(raw)
    assert result.quarantine["source_row"].is_unique
    assert result.quarantine["rule"].notna().all()
    assert not result.valid.duplicated(["household_id", "month"]).any()
    assert (result.valid["members"] >= 1).all()


def test_optional_list_is_the_complement_of_required():
    assert "ev_epidemic" in OPTIONAL
    assert "household_id" not in OPTIONAL


def _with_blank_rows(frame: pd.DataFrame, at: list[int]) -> pd.DataFrame:
    """``frame`` with a row of empty cells inserted before each position in ``at``."""
    parts, start = [], 0
    blank = pd.DataFrame([[None] * frame.shape[1]], columns=frame.columns)
    for row in at:
        parts += [frame.iloc[start:row], blank]
        start = row
    return pd.concat([*parts, frame.iloc[start:]], ignore_index=True)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".xlsx"])
def test_blank_rows_are_skipped_and_counted_not_quarantined(tmp_path, suffix):
    frame = tiny_ledger().astype({"members": object})
    frame.loc[5, "members"] = 0
    raw = _with_blank_rows(frame, [2, 7, 7])
    path = tmp_path / f"ledger{suffix}"
    if suffix == ".parquet":
        raw.to_parquet(path)
    elif suffix == ".xlsx":
        raw.to_excel(path, index=False)
        # Rows after the last one, empty but for a cell holding a space, are read as rows.
        book = load_workbook(path)
        book.active.cell(row=18, column=3).value = " "
        book.save(path)
    else:
        raw.to_csv(path, index=False)
        # Excel ends a CSV with empty lines of commas only, with or without spaces.
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("," * (raw.shape[1] - 1) + "\n" + " ," * (raw.shape[1] - 1) + "\n")
    result = validate_ledger(read_ledger(path))
    blank = [2, 8, 9] + ([] if suffix == ".parquet" else [15, 16])
    assert result.blank_rows.tolist() == blank and result.n_blank == len(blank)
    assert result.n_in == len(frame) and result.reconciles
    assert len(result.valid) == len(frame) - 1
    # The broken row keeps its number in the file, blank rows counted.
    assert result.quarantine[["source_row", "rule"]].values.tolist() == [[6, "members_below_1"]]


def test_a_row_with_one_field_is_not_blank():
    raw = _with_blank_rows(tiny_ledger(), [12]).astype(object)
    raw.loc[12, "village"] = "合计"
    result = validate_ledger(raw)
    assert result.n_blank == 0 and result.n_in == 13
    assert result.quarantine["source_row"].tolist() == [12]


def test_columns_present_but_empty_are_told_from_absent_ones(tmp_path):
    frame = tiny_ledger().drop(columns=["province", "ev_illness"]).astype(object)
    frame[["inc_wage", "dibao", "ev_accident"]] = ""
    frame.loc[3, "elderly"] = None
    path = tmp_path / "ledger.csv"
    frame.to_csv(path, index=False)
    result = validate_ledger(read_ledger(path))
    assert result.missing_optional == ["province", "ev_illness"]
    assert result.empty_columns == ["inc_wage", "dibao", "ev_accident"]
    assert result.quarantine["source_row"].tolist() == [3]


# --- input a county really sends -----------------------------------------------------------------

_FULL = str.maketrans("0123456789+-.,", "０１２３４５６７８９＋－．，")


def _full_width(text: str) -> str:
    return text.translate(_FULL)


def test_full_width_digits_signs_points_and_spaces_are_numbers(tmp_path):
    frame = tiny_ledger().astype(object).rename(columns=ZH)
    frame.loc[0, ZH["members"]] = "４"
    frame.loc[1, ZH["members"]] = "\u3000４\u3000"
    frame.loc[2, ZH["inc_wage"]] = _full_width("1,234.5")
    frame.loc[3, ZH["inc_business"]] = _full_width("-200")
    frame.loc[4, ZH["inc_transfer"]] = "+１００"
    frame.loc[5, ZH["elderly"]] = "１"
    frame.loc[6, ZH["inc_business"]] = "\u221250"  # the minus sign, as some exports write it
    frame.loc[7, ZH["month"]] = _full_width("2024-02").replace("－", "年") + "月"
    frame.loc[8, ZH["dibao"]] = "１"
    path = tmp_path / "ledger.csv"
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    result = validate_ledger(read_ledger(path))
    assert result.quarantine.empty, result.quarantine[["rule", "column", "value"]]
    valid = result.valid
    expected = tiny_ledger()
    assert valid["members"].tolist() == expected["members"].tolist()
    assert valid.loc[2, "inc_wage"] == 1234.5
    assert valid.loc[3, "inc_business"] == -200.0
    assert valid.loc[4, "inc_transfer"] == 100.0
    assert valid.loc[6, "inc_business"] == -50.0
    assert valid.loc[7, "month"] == "2024-02"
    assert bool(valid.loc[8, "dibao"])


def test_a_household_id_in_full_width_is_the_same_household():
    raw = tiny_ledger().astype(object)
    raw.loc[1, "household_id"] = "Ｈ００００"
    raw.loc[2, "household_id"] = "Ｈ０００１"  # H0001's month 2024-03 is also at row 5
    raw.loc[2, "month"] = "2024-03"
    result = validate_ledger(raw)
    assert result.valid["household_id"].str.isascii().all()
    assert result.valid.loc[result.valid["household_id"] == "H0000", "month"].tolist() == [
        "2024-01", "2024-02"]
    # Written in either width, one household and month twice is a duplicate.
    assert result.quarantine["rule"].tolist() == ["duplicate_key", "duplicate_key"]
    assert result.quarantine["household_id"].tolist() == ["Ｈ０００１", "H0001"]


def test_full_width_text_that_is_no_number_is_still_quarantined():
    raw = tiny_ledger().astype(object)
    raw.loc[3, "members"] = "四"
    raw.loc[4, "inc_wage"] = "约３０００"
    result = validate_ledger(raw)
    assert result.quarantine[["source_row", "rule", "value"]].values.tolist() == [
        [3, "not_a_number", "四"], [4, "not_a_number", "约３０００"]]


def test_parse_amount_reads_what_a_ledger_cell_may_write():
    from riskmodel.ledger import parse_amount

    assert parse_amount("30,000") == 30000.0
    assert parse_amount("３０，０００") == 30000.0
    assert parse_amount(" 1,234.5 ") == 1234.5
    for garbage in ("", "三万", "30000元", "inf", "nan", "1e"):
        with pytest.raises(ValueError, match="expected an amount"):
            parse_amount(garbage)


def test_a_gbk_csv_is_read_as_gb18030_and_says_so(tmp_path, caplog):
    from riskmodel.ledger import read_source

    frame = tiny_ledger().rename(columns=ZH)
    path = tmp_path / "ledger.csv"
    body = "青岚县监测台账（2024年3月）\n" + frame.to_csv(index=False)
    path.write_bytes(body.encode("gbk"))
    with caplog.at_level("INFO", logger="riskmodel"):
        raw, source = read_source(path)
    assert source.encoding == "gb18030" and source.title_rows == 1
    assert "read as GB18030" in caplog.text
    result = validate_ledger(raw)
    pd.testing.assert_frame_equal(result.valid, validate_ledger(tiny_ledger()).valid,
                                  check_dtype=False)
    path.write_bytes(frame.to_csv(index=False).encode("utf-8"))
    assert read_source(path)[1].encoding == "utf-8"


def test_a_csv_in_neither_utf8_nor_gbk_stops_with_one_line(tmp_path):
    path = tmp_path / "ledger.csv"
    path.write_bytes(tiny_ledger().rename(columns=ZH).to_csv(index=False).encode("utf-8")
                     + b"\x81\x20\xff\xff\n")
    with pytest.raises(LedgerError, match="neither UTF-8 nor GBK") as info:
        read_ledger(path)
    assert "\n" not in str(info.value)


def _workbook_with_instructions(path, frame: pd.DataFrame, ledger_sheet: str = "台账"):
    """A workbook whose first sheet is 填报说明 (instructions), the ledger second, under a
    title row."""
    with pd.ExcelWriter(path) as writer:
        notes = ["1. 户编号、月份必填", "2. 人数填整数", "3. 金额单位：元"]
        pd.DataFrame({"填报说明": notes}).to_excel(writer, sheet_name="填报说明", index=False)
        frame.to_excel(writer, sheet_name=ledger_sheet, index=False, startrow=1)
        writer.sheets[ledger_sheet].cell(row=1, column=1).value = "青岚县监测台账"


def test_the_sheet_holding_the_header_is_read_and_named(tmp_path, caplog):
    from riskmodel.ledger import LedgerChunks, ledger_sheet, read_source

    path = tmp_path / "台账.xlsx"
    _workbook_with_instructions(path, tiny_ledger().rename(columns=ZH))
    with caplog.at_level("INFO", logger="riskmodel"):
        raw, source = read_source(path)
    assert source.sheet == "台账" and source.title_rows == 1 and source.first_row == 3
    assert "read sheet '台账'" in caplog.text
    pd.testing.assert_frame_equal(validate_ledger(raw).valid,
                                  validate_ledger(tiny_ledger()).valid, check_dtype=False)
    # Named: read as named; a name the workbook lacks is one line listing its sheets.
    assert read_source(path, sheet="台账")[1].sheet == "台账"
    with pytest.raises(LedgerError, match="required column 'household_id' is missing"):
        read_ledger(path, sheet="填报说明")
    with pytest.raises(LedgerError, match="has no sheet '六月'; its sheets are '填报说明', '台账'"):
        read_ledger(path, sheet="六月")
    # The command line's --sheet reaches readers given only a path.
    with ledger_sheet("填报说明"), pytest.raises(LedgerError, match="sheet 填报说明"):
        LedgerChunks(path, 100)
    assert LedgerChunks(path, 100).source.sheet == "台账"


def test_a_sheet_for_a_file_without_sheets_is_refused(tmp_path):
    from riskmodel.ledger import LedgerChunks, ledger_sheet

    path = tmp_path / "ledger.csv"
    tiny_ledger().to_csv(path, index=False)
    with pytest.raises(LedgerError, match="only an .xlsx workbook has sheets"):
        read_ledger(path, sheet="台账")
    tiny_ledger().to_parquet(path.with_suffix(".parquet"))
    with ledger_sheet("台账"), pytest.raises(LedgerError, match="only an .xlsx workbook"):
        LedgerChunks(path.with_suffix(".parquet"), 100)


def test_an_empty_line_in_a_csv_keeps_the_numbering_of_the_file(tmp_path):
    frame = tiny_ledger().astype({"members": object})
    frame.loc[6, "members"] = 0
    lines = frame.to_csv(index=False).splitlines()
    # An empty line between records 2 and 3: record 6 is on line 2 + 6 + 1 = 9 of the file.
    path = tmp_path / "ledger.csv"
    path.write_text("\n".join([*lines[:3], "", *lines[3:]]) + "\n", encoding="utf-8")
    result = validate_ledger(read_ledger(path))
    assert result.blank_rows.tolist() == [2] and result.n_in == len(frame)
    assert result.quarantine["source_row"].tolist() == [7]
    assert path.read_text(encoding="utf-8").splitlines()[7 + 1].startswith(
        frame.loc[6, "household_id"])
