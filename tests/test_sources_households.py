"""Persons to households, the migrant table and the warnings, on hand-built source tables.

Each table is what ``read_sources`` gives: canonical field columns of "string" dtype, values
NFKC-normalised with whitespace removed, blank cells "", and the file's row number in ``_row``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel import load_config, validate_ledger
from riskmodel.config import WarningRule
from riskmodel.errors import SourceError
from riskmodel.ledger import LEDGER_COLUMNS, MEMBER_COUNTS
from riskmodel.sources import RECORDED_COLUMNS, SourceTable, households_from_tables
from riskmodel.sources import _values as values
from riskmodel.sources._personal import pseudonymised

CONFIG = load_config()
SOURCES = CONFIG.sources
PLACE = {"county": "丘北县", "township": "八道哨乡", "village": "大坪村"}


def table(kind: str, month: str | None, rows: list[dict], path: str | None = None) -> SourceTable:
    """A source table as the reader gives it (cells normalised, "" for blank, personal fields
    replaced)."""
    fields = sorted({k for r in rows for k in r})
    frame = pd.DataFrame({f: pd.array([values.normalise(r.get(f, "")) for r in rows],
                                      dtype="string") for f in fields})
    frame["_row"] = np.arange(3, len(rows) + 3, dtype="int64")  # a title line above the header
    # As the reader hands it on: 证件号码 a pseudonym beside the birth date it carries.
    frame = pseudonymised(frame, SOURCES.personal, key="test-key-16chars")
    return SourceTable(path or f"{kind}_{month}.csv", None, "0" * 64, kind, month, frame,
                       {f: f"<{f}>" for f in fields}, 0)


def person(household: str, pid: str, **fields) -> dict:
    """One person row: an adult, healthy, 普通劳动力, born 1980-05 (in the 证件号码)."""
    return {**PLACE, "household_id": household, "person_id": pid, "labor_skill": "普通劳动力",
            "health": "健康", **fields}


def pid(n: int, born: str = "19800515") -> str:
    return f"530123{born}{n:03d}X"


def run(*tables: SourceTable, config=CONFIG):
    return households_from_tables(list(tables), config)


def row(ledger: pd.DataFrame, household: str, month: str) -> pd.Series:
    found = ledger[(ledger["household_id"] == household) & (ledger["month"] == month)]
    assert len(found) == 1, f"{household} {month}: {len(found)} rows"
    return found.iloc[0]


def test_ledger_columns_types_order_and_validation():
    persons = [person("0001", pid(1), working="是"), person("0001", pid(2), labor_skill=""),
               person("0010", pid(3))]
    made = run(table("persons", "2024-02", persons), table("persons", "2024-01", persons))
    ledger = made.ledger
    assert list(ledger.columns) == [*LEDGER_COLUMNS, *RECORDED_COLUMNS]
    assert ledger[["household_id", "month"]].values.tolist() == [
        ["0001", "2024-01"], ["0001", "2024-02"], ["0010", "2024-01"], ["0010", "2024-02"]]
    for c in ["members", *MEMBER_COUNTS, "dropouts"]:
        assert ledger[c].dtype == "int16", c
    for c in ["inc_wage", "inc_business", "inc_property", "inc_transfer", "exp_medical_oop",
              "exp_education", "temp_assistance"]:
        assert ledger[c].dtype == "float64" and ledger[c].isna().all(), c
    assert ledger["insured_all"].isna().all() and ledger["insured_all"].dtype == "boolean"
    assert ledger["annual_income_year"].dtype == "Int64"
    result = validate_ledger(ledger)
    assert len(result.quarantine) == 0 and len(result.valid) == 4
    assert row(ledger, "0001", "2024-01")[["members", "labor_full", "migrant_workers"]].tolist() \
        == [2, 1, 1]


def _one_household_per_value(field: str, vocab: dict[str, str], extra=None) -> pd.DataFrame:
    rows = [person(f"H{i:03d}", pid(i), **{field: value, **(extra or {})})
            for i, value in enumerate(vocab)]
    return run(table("persons", "2024-03", rows)).ledger.set_index("household_id")


PERSON_COUNTS = {
    "labor_skill": {"full": {"labor_full": 1}, "partial": {"labor_partial": 1}, "none": {}},
    "schooling": {"compulsory": {"students_compulsory": 1},
                  "noncompulsory": {"students_noncompulsory": 1}, "none": {}},
    "health": {"healthy": {}, "chronic_ill": {"chronic_ill": 1},
               "serious_ill": {"serious_ill": 1}, "disabled": {"disabled": 1}},
}


@pytest.mark.parametrize("field", list(PERSON_COUNTS))
def test_every_person_value_counts_as_its_code(field):
    vocab = SOURCES.values[field]
    ledger = _one_household_per_value(field, vocab, {"labor_skill": ""} if field != "labor_skill"
                                      else None)
    watched = sorted({c for counts in PERSON_COUNTS[field].values() for c in counts})
    for i, (value, code) in enumerate(vocab.items()):
        got = ledger.loc[f"H{i:03d}", watched].astype(int).to_dict()
        expected = {c: PERSON_COUNTS[field][code].get(c, 0) for c in watched}
        assert got == expected, (field, value, code)


def test_every_disability_grade():
    ledger = _one_household_per_value("disability_grade", SOURCES.values["disability_grade"],
                                      {"health": "残疾"})
    for i, code in enumerate(SOURCES.values["disability_grade"].values()):
        assert ledger.loc[f"H{i:03d}", "disabled"] == 1
        assert ledger.loc[f"H{i:03d}", "disabled_severe"] == int(code in ("1", "2")), code


@pytest.mark.parametrize("field,column", [("dropout", "dropouts"),
                                          ("working", "migrant_workers"),
                                          ("dibao", "dibao"), ("tekun", "dibao"),
                                          ("welfare_job", "welfare_job")])
def test_every_flag_value(field, column):
    vocab = SOURCES.values[field]
    ledger = _one_household_per_value(field, vocab)
    for i, code in enumerate(vocab.values()):
        assert int(ledger.loc[f"H{i:03d}", column]) == int(code == "true"), (field, code)


def test_welfare_job_as_months_held():
    ledger = _one_household_per_value("welfare_job", {"6": "", "0": "", "否": ""})
    assert ledger["welfare_job"].tolist() == [True, False, False]


@pytest.mark.parametrize("field,column,invert", [("housing_unsafe", "housing_safe", True),
                                                 ("water_safe", "water_safe", False)])
def test_every_housing_and_water_value(field, column, invert):
    vocab = SOURCES.values[field]
    ledger = _one_household_per_value(field, vocab)
    for i, code in enumerate(vocab.values()):
        got = ledger.loc[f"H{i:03d}", column]
        if code == "none":
            assert pd.isna(got)
        else:
            assert bool(got) == ((code == "true") != invert), (field, code)


def test_every_household_type_category_and_elimination():
    types = SOURCES.values["household_type"]
    ledger = _one_household_per_value("household_type", types)
    assert ledger["household_type"].tolist() == list(types.values())
    categories = SOURCES.values["monitoring_category"]
    ledger = _one_household_per_value("monitoring_category", categories,
                                      {"household_type": "脱贫户"})
    for i, code in enumerate(categories.values()):
        h = ledger.loc[f"H{i:03d}"]
        assert h["household_type"] == ("exited" if code == "none" else "monitored")
        assert (pd.isna(h["monitoring_category"]) if code == "none"
                else h["monitoring_category"] == code)
    eliminated = _one_household_per_value("risk_eliminated", SOURCES.values["risk_eliminated"],
                                          {"monitoring_category": "边缘易致贫户",
                                           "household_type": "一般农户"})
    expected = ["general" if c == "true" else "monitored"
                for c in SOURCES.values["risk_eliminated"].values()]
    assert eliminated["household_type"].tolist() == expected


def test_every_recorded_risk_value_in_each_of_the_five_columns():
    vocab = SOURCES.values["recorded_risk"]
    for k in range(1, 6):
        ledger = _one_household_per_value(f"recorded_risk_{k}", vocab)
        for i, code in enumerate(vocab.values()):
            got = ledger.loc[f"H{i:03d}", f"recorded_risk_{k}"]
            assert pd.isna(got) if code == "none" else got == code


def test_every_vocabulary_value_maps_through_the_readers():
    for field, vocab in SOURCES.values.items():
        codes = values.vocabulary(field, pd.Series(list(vocab), dtype="string"), vocab)
        assert codes.tolist() == list(vocab.values()), field
    assert values.vocabulary("elimination_way", pd.Series(["帮扶消除", "自然消除"]),
                             SOURCES.values["elimination_way"]).tolist() == ["assisted",
                                                                              "natural"]


def test_unknown_values_are_reported_with_counts_and_never_guessed():
    rows = [person("A", pid(1), labor_skill="半劳力"), person("A", pid(2), labor_skill="半劳力"),
            person("B", pid(3), health="慢病、残疾", household_type="贫困户",
                   annual_inc_wage="十二万", identified_month="2024年13月",
                   recorded_risk_1="因赌")]
    made = run(table("persons", "2024-03", rows))
    unknown = made.report["unknown_values"]
    assert unknown["labor_skill"] == {"半劳力": 2}
    assert unknown["health"] == {"慢病": 1}
    assert unknown["household_type"] == {"贫困户": 1}
    assert unknown["annual_inc_wage"] == {"十二万": 1}
    assert unknown["identified_month"] == {"2024年13月": 1}
    assert unknown["recorded_risk_1"] == {"因赌": 1}
    a, b = row(made.ledger, "A", "2024-03"), row(made.ledger, "B", "2024-03")
    assert a["labor_full"] == 0 and a["labor_partial"] == 0
    assert b["disabled"] == 1 and b["chronic_ill"] == 0
    assert pd.isna(b["annual_inc_wage"]) and pd.isna(b["identified_month"])
    assert pd.isna(b["recorded_risk_1"])
    assert "person_id" not in unknown


def test_health_lists_several_values_joined_by_comma_and_enumeration_comma():
    rows = [person("A", pid(1), health="长期慢性病、残疾", disability_grade="一级"),
            person("A", pid(2), health="患大病,长期慢性病"),
            person("A", pid(3), health="残疾、患大病、长期慢性病", disability_grade="三级")]
    a = row(run(table("persons", "2024-03", rows)).ledger, "A", "2024-03")
    assert a[["chronic_ill", "serious_ill", "disabled", "disabled_severe"]].tolist() == [3, 2, 2,
                                                                                        1]


def test_ages_from_birth_date_else_the_id_turning_at_the_birth_month():
    rows = [person("A", pid(1, "19640315")),                          # 60 in 2024-03
            person("A", pid(2, "19500101"), birth_date="19640401"),   # birth_date wins: 2024-04
            person("A", "short-id", birth_date="2008-03-20"),         # 16 in 2024-03
            person("A", pid(4, "20080415"))]                          # 16 in 2024-04
    ledger = run(*[table("persons", m, rows) for m in ["2024-02", "2024-03", "2024-04"]]).ledger
    got = {m: row(ledger, "A", m)[["elderly", "children"]].tolist()
           for m in ["2024-02", "2024-03", "2024-04"]}
    assert got == {"2024-02": [0, 2], "2024-03": [1, 1], "2024-04": [2, 0]}
    assert values.birth_months(pd.Series(["", "19901301"]),
                               pd.Series(["19900101", ""])).tolist() == [23880, -1]
    # A birth date without its day is no birth date (the id's, when it has one, is read).
    assert values.birth_months(pd.Series(["1990-03", "1990年3月", "19900315", "1990-03-15"]),
                               pd.Series(["", "19851231", "", ""])).tolist() == [
        -1, 23831, 23882, 23882]


def test_money_with_full_width_digits_thousands_separators_and_yuan():
    rows = [person("A", pid(1), annual_inc_wage="１２，０００元", annual_income_pc="8,500.5",
                   annual_income_year="2023年"),
            person("A", pid(2), annual_inc_wage="12000", annual_income_pc="８５００.５",
                   annual_income_year="2023")]
    a = row(run(table("persons", "2024-03", rows)).ledger, "A", "2024-03")
    assert a["annual_inc_wage"] == 12000.0 and a["annual_income_pc"] == 8500.5
    assert a["annual_income_year"] == 2023


def test_months_in_every_spelling():
    got = values.months("identified_month", pd.Series(
        ["202403", "2024-03", "20240315", "2024-03-15", "2024年3月", "2024年03月15日", ""]))
    assert got.tolist()[:6] == ["2024-03"] * 6 and pd.isna(got.iloc[6])


def test_a_household_whose_rows_disagree_is_quarantined_whole():
    rows = [person("A", pid(1), annual_inc_wage="12000"),
            person("A", pid(2), annual_inc_wage="12,000"),       # the same figure
            person("A", pid(3), annual_inc_wage="13000"),
            person("B", pid(4), village="大坪村"), person("B", pid(5), village="小坪村"),
            person("C", pid(6))]
    made = run(table("persons", "2024-03", rows, path="县/监测对象_20240305.csv"))
    assert made.ledger["household_id"].tolist() == ["C"]
    q = made.quarantine
    assert len(q) == 5 and set(q["rule"]) == {"household_disagrees"}
    a = q[q["household_id"] == "A"]
    assert set(a["field"]) == {"annual_inc_wage"}
    assert set(a["value"]) == {"annual_inc_wage: 12000 | 13000"}
    assert set(q.loc[q["household_id"] == "B", "value"]) == {"village: 大坪村 | 小坪村"}
    assert q["row"].tolist() == [3, 4, 5, 6, 7] and set(q["file"]) == {"县/监测对象_20240305.csv"}
    assert made.report["months"]["2024-03"]["households_quarantined"] == 2


def test_a_duplicated_person_quarantines_the_household_with_the_id_masked():
    rows = [person("A", pid(1)), person("A", pid(1)), person("A", pid(2)), person("B", pid(1))]
    made = run(table("persons", "2024-03", rows))
    q = made.quarantine.set_index("row")
    assert q.loc[[3, 4], "rule"].tolist() == ["person_duplicated"] * 2
    assert q.loc[[3, 4], "value"].tolist() == ["***", "***"]
    assert q.loc[5, "rule"] == "member_of_quarantined_household"
    assert made.ledger["household_id"].tolist() == ["B"]
    assert not made.quarantine.isin([pid(1), pid(2)]).any().any()


def test_missing_household_id_and_unreadable_birth():
    rows = [person("", pid(1)), person("A", "123", birth_date=""), person("A", pid(2)),
            person("B", pid(3))]
    made = run(table("persons", "2024-03", rows))
    q = made.quarantine.set_index("row")
    assert q.loc[3, "rule"] == "household_id_missing" and pd.isna(q.loc[3, "household_id"])
    assert q.loc[4, "rule"] == "birth_date_unreadable"
    assert q.loc[5, "rule"] == "member_of_quarantined_household"
    assert made.ledger["household_id"].tolist() == ["B"]
    assert made.report["quarantined_by_rule"] == {
        "birth_date_unreadable": 1, "household_id_missing": 1,
        "member_of_quarantined_household": 1}


def test_persons_reconcile_per_month_and_in_total():
    jan = [person("A", pid(1)), person("A", pid(2)), person("", pid(3)), person("B", pid(4)),
           {}]  # a blank row
    feb = [person("A", pid(1)), person("A", pid(1)), person("B", pid(4)),
           person("C", pid(5), county="")]
    report = run(table("persons", "2024-01", jan), table("persons", "2024-02", feb)).report
    for month, m in report["months"].items():
        assert m["persons"] == m["persons_aggregated"] + m["persons_quarantined"], month
    assert report["months"]["2024-01"] == {"persons": 4, "persons_aggregated": 3,
                                           "persons_quarantined": 1, "households": 2,
                                           "households_quarantined": 0}
    assert report["months"]["2024-02"]["households"] == 1
    assert report["months"]["2024-02"]["households_quarantined"] == 2
    assert report["persons_in"] == 8 == report["persons_aggregated"] + report[
        "persons_quarantined"]
    assert report["blank_rows"] == 1
    assert report["quarantined_by_rule"]["place_missing"] == 1


def test_warnings_keyed_by_household_and_by_person_through_that_months_table():
    jan = [person("A", pid(1)), person("B", pid(2))]
    feb = [person("A", pid(9)), person("B", pid(2)), person("B", pid(1))]  # pid 1 moved to B
    warnings = table("warnings", "2024-02", [
        {"person_id": pid(1), "warning_month": "202402", "department": "医保",
         "warning_item": "年度累计自付超5000元", "amount": "６,２００"},
        {"household_id": "A", "warning_month": "2024-02", "department": "应急",
         "warning_item": "洪涝受灾"},
        {"person_id": pid(7), "warning_month": "202402", "department": "公安",
         "warning_item": "交通事故"},
        {"household_id": "Z", "warning_month": "202402", "department": "残联",
         "warning_item": "新办残疾证"},
        {"household_id": "A", "warning_month": "202402", "department": "气象",
         "warning_item": "大风"}])
    made = run(table("persons", "2024-01", jan), table("persons", "2024-02", feb), warnings)
    ledger = made.ledger
    assert row(ledger, "B", "2024-02")["ev_illness"] and not row(ledger, "A", "2024-02")[
        "ev_illness"]
    assert row(ledger, "A", "2024-02")["ev_disaster"]
    assert not ledger.loc[ledger["month"] == "2024-01", ["ev_illness", "ev_disaster"]].any().any()
    w = made.report["warnings"]
    assert (w["matched"], w["unmatched"], w["no_rule"], w["unreadable"]) == (2, 2, 1, 0)
    assert w["by_department"]["公安"] == {"matched": 0, "unmatched": 1, "no_rule": 0,
                                        "unreadable": 0}
    assert w["by_department"]["气象"]["no_rule"] == 1


def test_late_warnings_count_from_the_month_the_list_arrived():
    persons = [person("A", pid(1))]
    late = table("warnings", "2024-03", [{"household_id": "A", "warning_month": "202401",
                                          "department": "人社", "warning_item": "失业"}])
    undated = table("warnings", None, [
        {"household_id": "A", "warning_month": "202402", "department": "公安",
         "warning_item": "意外"},
        {"household_id": "A", "warning_month": "", "department": "公安", "warning_item": "意外"}])
    made = run(*[table("persons", m, persons) for m in ["2024-01", "2024-02", "2024-03"]], late,
               undated)
    assert made.ledger["ev_job_loss"].tolist() == [False, False, True]
    assert made.ledger["ev_accident"].tolist() == [False, True, False]
    assert made.report["warnings"]["unreadable"] == 1


def test_warning_rules_with_keywords_and_the_flags_they_set():
    rules = [WarningRule(department="教育", keywords=["辍学"], column="ev_education"),
             WarningRule(department="教育", keywords=[], column="ev_job_loss"),
             *SOURCES.warning_rules]
    config = CONFIG.sources.model_copy(update={"warning_rules": rules})
    persons = [person(h, pid(i), housing_unsafe="否", water_safe="是")
               for i, h in enumerate("ABCDE")]
    warnings = table("warnings", "2024-03", [
        {"household_id": "A", "warning_month": "202403", "department": "教育",
         "warning_item": "疑似辍学"},
        {"household_id": "B", "warning_month": "202403", "department": "教育",
         "warning_item": "新入高中"},
        {"household_id": "C", "warning_month": "202403", "department": "住建",
         "warning_item": "C级危房"},
        {"household_id": "D", "warning_month": "202403", "department": "水利",
         "warning_item": "停水"},
        {"household_id": "E", "warning_month": "202403", "department": "民政",
         "warning_item": "新纳入特困"}])
    ledger = run(table("persons", "2024-03", persons), warnings,
                 config=config).ledger.set_index("household_id")
    assert ledger["ev_education"].tolist() == [True, False, False, False, False]
    assert ledger["ev_job_loss"].tolist() == [False, True, False, False, False]
    assert ledger["housing_safe"].tolist() == [True, True, False, True, True]
    assert ledger["water_safe"].tolist() == [True, True, True, False, True]
    assert ledger["dibao"].tolist() == [False, False, False, False, True]


def test_migrant_wages_and_workers_without_double_counting():
    persons = [person("A", pid(1), working="是"), person("A", pid(2)), person("A", pid(3)),
               person("B", pid(4)), person("C", pid(5))]
    migrants = table("migrants", "2024-03", [
        {"household_id": "A", "person_id": pid(1), "working": "是", "migrant_wage": "3,000"},
        {"household_id": "", "person_id": pid(2), "working": "是", "migrant_wage": "２５００"},
        {"household_id": "A", "person_id": pid(3), "working": "是", "migrant_wage": "900",
         "work_start": "202404"},                                   # not started yet
        {"household_id": "B", "person_id": pid(4), "working": "是", "migrant_wage": "1000",
         "work_end": "202402"},                                     # ended
        {"household_id": "C", "person_id": pid(5), "working": "否", "migrant_wage": "800"},
        {"household_id": "Q", "person_id": pid(8), "working": "是", "migrant_wage": "700"},
        {"household_id": "", "person_id": pid(9), "working": "是", "migrant_wage": "700"}])
    made = run(table("persons", "2024-03", persons), table("persons", "2024-02", persons),
               migrants)
    ledger = made.ledger
    a = row(ledger, "A", "2024-03")
    assert a["wage_migrant"] == 5500.0 and a["migrant_workers"] == 2
    assert row(ledger, "B", "2024-03")["wage_migrant"] == 0.0
    assert row(ledger, "C", "2024-03")["migrant_workers"] == 0
    assert ledger.loc[ledger["month"] == "2024-02", "wage_migrant"].isna().all()
    assert row(ledger, "A", "2024-02")["migrant_workers"] == 1
    assert made.report["migrants"] == {"rows": 7, "working": 4, "matched": 5, "unmatched": 2}


def test_annual_recorded_month_looks_only_backwards():
    def figures(wage):
        return person("A", pid(1), annual_inc_wage=wage, annual_income_pc=wage)
    months = {"2023-01": "5000", "2023-02": "5000", "2023-04": "5000", "2023-05": "6000",
              "2023-06": "", "2023-07": "6000", "2023-08": "5000"}
    ledger = run(*[table("persons", m, [figures(w)]) for m, w in months.items()]).ledger
    got = dict(zip(ledger["month"], ledger["annual_recorded_month"], strict=True))
    assert got["2023-01"] == got["2023-02"] == got["2023-04"] == "2023-01"
    assert got["2023-05"] == got["2023-07"] == "2023-05"
    assert pd.isna(got["2023-06"])
    assert got["2023-08"] == "2023-08"
    # A quarantined month (its rows disagree) is no part of the history looked back on.
    broken = [figures("9000"), person("A", pid(2), annual_inc_wage="9500")]
    tables = [table("persons", "2023-01", [figures("5000")]), table("persons", "2023-02", broken),
              table("persons", "2023-03", [figures("5000")])]
    assert run(*tables).ledger["annual_recorded_month"].tolist() == ["2023-01", "2023-01"]
    # Point in time: the months up to 2023-04 alone give the same answer for them.
    early = run(*[table("persons", m, [figures(w)]) for m, w in list(months.items())[:3]]).ledger
    assert early["annual_recorded_month"].tolist() == ["2023-01"] * 3


def test_identified_and_eliminated_months_are_kept():
    rows = [person("A", pid(1), identified_month="2023年6月", monitoring_category="突发严重困难户",
                   risk_eliminated="是", eliminated_month="202402", household_type="脱贫户")]
    a = row(run(table("persons", "2024-03", rows)).ledger, "A", "2024-03")
    assert (a["identified_month"], a["eliminated_month"]) == ("2023-06", "2024-02")
    assert a["monitoring_category"] == "sudden" and a["household_type"] == "exited"


def test_no_person_table_is_an_error():
    warnings = table("warnings", "2024-03", [{"household_id": "A", "warning_month": "202403",
                                              "department": "医保", "warning_item": "x"}])
    with pytest.raises(SourceError, match="no person table"):
        run(warnings)


def test_a_month_depends_on_no_file_of_a_later_month():
    def persons(wage):
        return [person("A", pid(1), annual_inc_wage=wage, working="是"),
                person("B", pid(2), annual_inc_wage="7000")]

    def warning(month, file_month, household="A"):
        return table("warnings", file_month, [{"household_id": household, "warning_month": month,
                                               "department": "医保", "warning_item": "超5000"}],
                     path=f"w_{file_month}.csv")

    def migrant(month):
        return table("migrants", month, [{"household_id": "B", "person_id": pid(2),
                                          "working": "是", "migrant_wage": "3000"}])

    early = [table("persons", "2024-01", persons("5000")), table("persons", "2024-02",
                                                                  persons("5000")),
             warning("202401", "2024-02"), migrant("2024-02")]
    later = [table("persons", "2024-03", persons("6000")), warning("202402", "2024-03"),
             warning("202402", "2024-03", "B"), migrant("2024-03")]
    before = run(*early).ledger
    after = run(*early, *later).ledger
    pd.testing.assert_frame_equal(after[after["month"] < "2024-03"].reset_index(drop=True),
                                  before)
    assert row(after, "B", "2024-03")["ev_illness"] and row(after, "A", "2024-03")["ev_illness"]


def test_a_table_whose_every_person_is_quarantined_gives_an_empty_ledger():
    made = run(table("persons", "2024-03", [person("", pid(1)), person("", pid(2))]),
               table("warnings", "2024-03", [{"household_id": "A", "warning_month": "202403",
                                              "department": "医保", "warning_item": "x"}]))
    assert made.ledger.empty and list(made.ledger.columns) == [*LEDGER_COLUMNS,
                                                               *RECORDED_COLUMNS]
    assert made.report["persons_quarantined"] == 2 == made.report["persons_in"]
    assert made.report["warnings"]["unmatched"] == 1 and made.report["households"] == 0
