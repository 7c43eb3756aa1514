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
