import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import quick_selection
from matplotlib import font_manager
from matplotlib import image as mpimg
from threadpoolctl import threadpool_limits

from riskmodel import load_config, score_month, validate_ledger
from riskmodel.bulletin import (
    change_counts,
    high_tier_causes,
    measure_needs,
    read_month,
    read_quarantined,
    render_bulletin,
    tier_transitions,
    township_table,
    trigger_counts,
    write_bulletin,
)
from riskmodel.cli import main
from riskmodel.config import DEFAULT_CONFIG
from riskmodel.errors import ConfigError, LedgerError
from riskmodel.fonts import CJK_FILE_HINTS, cjk_font
from riskmodel.ledger import MEMBER_COUNTS
from riskmodel.model import FEATURE_NAMES, save_model, train
from riskmodel.scoring import NOT_SCORED
from riskmodel.synthetic import generate_ledger

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "synthetic" / "ledger.parquet"
MONTHS = ("2024-05", "2024-06")
BROKEN_ROWS = 7
# Rows of May broken too, of other households: in June they are back.
BROKEN_BEFORE = 5
# A code as a reader must never see one: snake_case, as features, rules and measures are coded.
CODE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
TIER_RANK = {"low": 0, "medium": 1, "high": 2}
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser",
                                                  "google-chrome", "google-chrome-stable")
                 if shutil.which(name)), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium not found: install Debian's `chromium` package "
                             "(./dev test does) to check the bulletin in a browser")


@pytest.fixture(scope="module")
def config():
    return load_config()


def _scores(rows: list[tuple], month: str = "2024-06") -> pd.DataFrame:
    """Scores from (household, county, township, tier, reason_1, measures, triggers) tuples."""
    frame = pd.DataFrame(rows, columns=["household_id", "county", "township", "risk_tier",
                                        "reason_1", "measures_zh", "rule_triggers"])
    frame["month"] = month
    frame["risk_score"] = frame["risk_tier"].map({"high": 0.4, "medium": 0.1, "low": 0.01})
    frame["risk_causes"] = frame["reason_1"]
    frame["reason_text_zh"] = np.where(frame["reason_1"].notna(), "因病：慢性病 2 人", None)
    frame["on_watchlist"] = frame["risk_tier"].eq("high") | frame["rule_triggers"].ne("")
    frame["elimination_candidate"] = frame["risk_tier"].eq("low")
    frame["not_scored_reason"] = np.where(frame["risk_tier"].isna(), "poor_now", None)
    frame["model_version"] = "return-to-poverty/7"
    return frame


@pytest.fixture
def current() -> pd.DataFrame:
    return _scores([
        ("H01", "甲县", "东镇", "high", "illness", "医疗救助、临时救助", ""),
        ("H02", "甲县", "东镇", "high", "illness", "医疗救助", "medical_oop_12m"),
        ("H03", "甲县", "东镇", "medium", "education", "教育资助", ""),
        ("H04", "甲县", "西乡", "high", "education", "教育资助、雨露计划",
         "dropout;housing_unsafe"),
        ("H05", "甲县", "西乡", "low", None, None, ""),
        ("H06", "甲县", "西乡", None, None, None, "income_below_line"),
        ("H07", "乙县", "东镇", "low", "income", "综合帮扶", ""),
    ])


@pytest.fixture
def previous() -> pd.DataFrame:
    return _scores([
        ("H01", "甲县", "东镇", "high", "illness", "医疗救助", ""),
        ("H02", "甲县", "东镇", "medium", "illness", "医疗救助", ""),
        ("H03", "甲县", "东镇", "high", "education", "教育资助", ""),
        ("H04", "甲县", "西乡", None, None, None, "income_below_line"),
        ("H05", "甲县", "西乡", "medium", "income", "综合帮扶", ""),
        ("H08", "甲县", "西乡", "low", "income", "综合帮扶", ""),
    ], month="2024-05")


def test_tier_transitions_follow_each_household(previous, current):
    moves = tier_transitions(previous, current)
    assert moves.to_numpy().sum() == len(set(previous["household_id"]) |
                                          set(current["household_id"]))
    assert moves.loc["medium", "high"] == 1 and moves.loc["not_scored", "high"] == 1
    assert moves.loc["low", "absent"] == 1 and moves.loc["absent", "low"] == 1
    counts = change_counts(moves)
    # H02 medium→high, H04 not scored→high; H03 high→medium, H05 medium→low.
    assert counts == {"newly_high": 2, "tier_fell": 2, "tier_rose": 1, "left": 1, "joined": 2,
                      "rejected": 0, "restored": 0}


def test_a_household_whose_row_was_quarantined_neither_joined_nor_left(previous, current,
                                                                        config):
    # H08 (low last month) has its row quarantined this month; H07's row was quarantined last
    # month and is back; H06 is new.
    moves = tier_transitions(previous, current, quarantined=["H08"], previous_quarantined=["H07"])
    assert moves.loc["low", "quarantined"] == 1 and moves.loc["quarantined", "low"] == 1
    assert moves.loc["absent", "not_scored"] == 1 and moves["absent"].sum() == 0
    assert moves.to_numpy().sum() == 8
    counts = change_counts(moves)
    assert [counts[k] for k in ("joined", "left", "rejected", "restored")] == [1, 0, 1, 1]

    page = render_bulletin(current, {}, previous, config=config, quarantined=pd.Series(["H08"]),
                           previous_quarantined=pd.Series(["H07", None]))
    lead = _text(page.split('id="changes"')[1].split("</p>")[0])
    assert "本月新进入台账 1 户" in lead and "上月在册本月无记录 0 户" in lead
    assert "本月记录未通过数据校验被隔离 1 户" in lead
    assert "上月记录被隔离、本月恢复有效记录 1 户" in lead
    found = _Figures()
    found.feed(page)
    assert found.cells[("transition", "low", "quarantined")] == "1"
    assert found.cells[("transition", "quarantined", "low")] == "1"
    # Without the quarantines the page does not claim that a missing household joined or left.
    blind = _text(render_bulletin(current, {}, previous, config=config))
    assert "本月新进入台账" not in blind and "被隔离" not in blind
    assert "上月在册、本月无有效记录 1 户" in blind and "上月无有效记录、本月有记录 2 户" in blind


def test_the_command_line_reads_each_month_quarantine(tmp_path, previous, current, capsys):
    now = _month_folder(tmp_path, current, "2024-06")
    before = _month_folder(tmp_path, previous, "2024-05")
    for folder, ids in ((now, ["H08", "H08", None]), (before, ["H07"])):
        pd.DataFrame({"source_row": range(len(ids)), "household_id": pd.Series(ids, dtype="string"),
                      "rule": "members_below_1"}).to_parquet(folder / "quarantine.parquet")
    assert read_quarantined(now).tolist() == ["H08"]
    assert read_quarantined(tmp_path) is None
    assert main(["report", "--scores", str(now), "--out", str(tmp_path / "b.html")]) == 0
    lead = _text((tmp_path / "b.html").read_text(encoding="utf-8").split('id="changes"')[1]
                 .split("</p>")[0])
    assert "本月新进入台账 1 户" in lead and "被隔离 1 户" in lead and "恢复有效记录 1 户" in lead
    (now / "quarantine.parquet").write_bytes(b"PAR1 not parquet")
    assert main(["report", "--scores", str(now), "--out", str(tmp_path / "c.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "quarantine.parquet: cannot be read as Parquet" in err[0]
    assert not (tmp_path / "c.html").exists()


def test_township_table_counts_each_township_within_its_county(current, previous, config):
    table = township_table(current, config, previous=previous)
    assert list(table.index) == [("乙县", "东镇"), ("甲县", "东镇"), ("甲县", "西乡")]
    expected = (current.assign(state=current["risk_tier"].fillna("not_scored"))
                .groupby(["county", "township"])["state"].value_counts().unstack(fill_value=0))
    for state in expected.columns:
        assert table[state].to_dict() == expected[state].to_dict()
    assert table["households"].sum() == len(current)
    east = table.loc[("甲县", "东镇")]
    assert east["high_share"] == pytest.approx(2 / 3)
    assert east["newly_high"] == 1 and east["triggered"] == 1
    assert east["main_causes"] == "因病 2"
    assert table.loc[("甲县", "西乡"), "main_causes"] == "因学 1"
    assert table.loc[("乙县", "东镇"), "main_causes"] == "—"


def test_high_tier_causes_and_measures_use_the_config_names(current, config):
    causes = high_tier_causes(current, config)
    assert causes["cause"].tolist() == ["illness", "education"]
    assert causes["name_zh"].tolist() == [config.cause_by_code[c].name_zh
                                          for c in ("illness", "education")]
    assert causes["primary"].tolist() == [2, 1]
    assert causes["share"].sum() == pytest.approx(1.0)
    assert causes.loc[0, "measures_zh"] == "、".join(config.cause_by_code["illness"].measures_zh)
    needs = measure_needs(current, config).set_index("measure")["households"].to_dict()
    assert needs == {"医疗救助": 2, "教育资助": 1, "临时救助": 1, "雨露计划": 1}


def test_trigger_counts_split_every_listed_trigger(current):
    table = trigger_counts(current).set_index("trigger")
    assert table["households"].to_dict() == {"dropout": 1, "housing_unsafe": 1,
                                             "income_below_line": 1, "medical_oop_12m": 1}
    groups = ["high", "scored_not_high", "not_scored"]
    assert (table[groups].sum(axis=1) == table["households"]).all()
    assert table.loc["dropout", groups].tolist() == [1, 0, 0]


def test_table_1_says_not_scored_for_households_never_scored(current, config):
    # H06 is under the line already: the model never scored it, so it was not "not placed in
    # the high tier" by the model.
    table = trigger_counts(current).set_index("trigger")
    assert table.loc["income_below_line", ["high", "scored_not_high", "not_scored"]].tolist() \
        == [0, 0, 1]
    found = _Figures()
    found.feed(render_bulletin(current, {}, config=config))
    row = ("trigger", "income_below_line")
    assert [found.cells[(*row, c)] for c in ("households", "high", "scored_not_high",
                                             "not_scored")] == ["1", "0", "0", "1"]
    assert "未评为高风险" not in render_bulletin(current, {}, config=config)


def test_the_cause_table_tells_the_first_cause_from_every_cause_listed(config):
    # Four high-risk households: business is the first cause of one, among the first two of
    # two, and listed by all four; its measures go only to the households whose first two
    # causes name it and that have a laborer.
    scores = _scores([
        ("H1", "甲县", "东镇", "high", "illness", "医疗保障、产业补助", ""),
        ("H2", "甲县", "东镇", "high", "business", "产业补助", ""),
        ("H3", "甲县", "东镇", "high", "income", "综合帮扶", ""),
        ("H4", "甲县", "东镇", "high", "income", "综合帮扶", ""),
    ])
    scores["reason_2"] = ["business", "illness", "education", None]
    scores["reason_3"] = ["education", None, "business", None]
    scores["risk_causes"] = ["illness,business,education", "business,illness",
                             "income,education,business", "income,business"]
    table = high_tier_causes(scores, config).set_index("cause")
    assert table["primary"].sum() == len(scores) and table["share"].sum() == pytest.approx(1)
    assert table.loc["business", ["primary", "leading", "any"]].tolist() == [1, 2, 4]
    assert table.loc["education", ["primary", "leading", "any"]].tolist() == [0, 1, 2]
    assert table.loc["business", "measures_no_labor_zh"] == "、".join(
        config.cause_by_code["business"].measures_no_labor_zh)
    page = render_bulletin(scores, {}, config=config)
    found = _Figures()
    found.feed(page)
    assert [found.cells[("cause", "business", c)] for c in ("primary", "leading", "any")] \
        == ["1", "2", "4"]
    headers = re.search(r'id="table-cause">.*?<thead>(.*?)</thead>', page).group(1)
    assert [_text(h) for h in re.findall(r"<th>(.*?)</th>", headers)] == [
        "风险类型", "为首要风险类型的户数", "首要风险类型占高风险户", "列为前2项风险类型的户数",
        "风险类型中列有的户数", "对应帮扶措施"]
    assert "每户只计一个首要风险类型" in page and "帮扶措施只按每户前 2 项风险类型建议" in page


def test_every_name_a_reader_sees_is_chinese(current, previous, config):
    summary = {
        "drift": {"threshold": 0.25, "score_psi": 0.3,
                  "drifted": ["months_since_ev_epidemic", "wage_pc_3m", "score"]},
        "reconciliation": {"rows_in": 10, "quarantined": 3, "quarantined_by_rule": {
            "not_a_number": 2, "children_exceeds_members": 1},
            "not_eligible_by_reason": {"poor_now": 1, "insufficient_history": 0}},
    }
    page = render_bulletin(current.assign(not_scored_reason=["insufficient_history", *[None] * 4,
                                                             "poor_now", None]),
                           summary, previous, config=config, quarantined=["H08"],
                           previous_quarantined=[])
    text = _text(page)
    assert CODE.findall(text) == []
    names = config.names_zh
    for name in (names.features["months_since_ev_epidemic"], names.features["wage_pc_3m"],
                 f"{names.rules['not_a_number']} 2 条",
                 f"{names.rules['children_exceeds_members']} 1 条"):
        assert name in text
    # Every reason a household is not scored is counted, in the overview and the data check.
    reasons = (f"（{names.not_scored['insufficient_history']} 1 户，"
               f"{names.not_scored['poor_now']} 1 户）")
    assert text.count(reasons) == 2
    # Without the column in the scores, the summary's counts are shown.
    bare = _text(render_bulletin(current.drop(columns="not_scored_reason"), summary,
                                 config=config))
    assert f"未评分 1 户（{names.not_scored['poor_now']} 1 户）" in bare


def _rule_codes() -> set[str]:
    """Every rule the validation can break, broken by a small ledger on purpose."""
    ledger = generate_ledger(households=40, months=2, seed=3).astype(
        {"members": object, "dibao": object, "month": object, "household_type": object})
    edits = [("household_id", ""), ("month", "2024-13"), ("members", "多"), ("dibao", "也许"),
             ("members", 2.5), ("household_type", "某户"), ("members", 0), ("elderly", -1),
             ("inc_wage", -5.0), ("labor_full", 40), ("disabled_severe", 30)]
    edits += [(column, 99) for column in [*MEMBER_COUNTS, "dropouts"]]
    for row, (column, value) in enumerate(edits):
        ledger.loc[row, column] = value
    ledger = pd.concat([ledger, ledger.iloc[[-1]]], ignore_index=True)
    reasons = validate_ledger(ledger).quarantine["reasons"].str.split("; ").explode()
    return set(reasons.str.replace(r"\(.*\)$", "", regex=True))


def test_every_feature_rule_and_not_scored_reason_has_a_chinese_name(config, tmp_path):
    names = config.names_zh
    assert [f for f in FEATURE_NAMES if f not in names.features] == []
    assert [r for r in NOT_SCORED if r not in names.not_scored] == []
    rules = _rule_codes()
    assert {"duplicate_key", "not_a_boolean", "labor_exceeds_members",
            "disabled_severe_exceeds_disabled", "dropouts_exceeds_members"} <= rules
    assert sorted(rules - set(names.rules)) == []
    han = re.compile(r"[\u4e00-\u9fff]")
    assert all(han.search(n) for table in (names.features, names.rules, names.not_scored)
               for n in table.values())
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["names_zh"]["features"]["wage_pc_4m"] = "近4个月人均工资性收入"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="names_zh.features names 'wage_pc_4m'"):
        load_config(path)
    raw["names_zh"]["features"] = {"wage_pc_3m": " "}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="no Chinese name for 'wage_pc_3m'"):
        load_config(path)


def test_the_page_is_self_contained_and_names_no_household(current, previous, config):
    page = render_bulletin(current, {}, previous, config=config)
    assert "<script" not in page and "<link" not in page and "<img" not in page
    namespaces = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert set(re.findall(r"(?:https?:)?//[\w.-]+[^\s\"'<>)]*", page)) <= namespaces
    assert all(link.startswith("#") for link in re.findall(r"(?:href|src)=\"([^\"]*)\"", page))
    assert page.count("<svg") == 2
    for hid in current["household_id"]:
        assert hid not in page
    assert "慢性病" not in page
    assert 'id="fig-newly-high" data-value="2"' in page
    assert 'data-township="甲县/东镇"' in page


def test_what_the_ledger_holds_is_shown_as_text_never_as_markup(current, config):
    county = '甲县"><script>alert(1)</script>'
    page = render_bulletin(current.assign(county=county, township="<b>东镇</b>"), {},
                           config=config)
    assert "<script" not in page and "<b>" not in page
    assert "&lt;b&gt;东镇&lt;/b&gt;" in page
    assert f"{county}防止返贫动态监测月度通报" in _text(page)


def test_a_county_restyles_the_page_with_its_own_templates(tmp_path, current, config):
    ours = tmp_path / "templates"
    (ours / "sections").mkdir(parents=True)
    (ours / "sections" / "notes.html").write_text(
        '<section class="notes">本县说明：高风险概率≥{{ tiers.high|fmt(".0%") }}</section>',
        encoding="utf-8")
    page = render_bulletin(current, {}, config=config, templates=ours)
    assert "本县说明：高风险概率≥20%" in page and "风险消除候选：按风险消除政策" not in page
    # Every file it does not copy is the package's.
    assert 'id="fig-high" data-value="3"' in page and "<style>" in page
    (tmp_path / "2024-06").mkdir()
    current.to_parquet(tmp_path / "2024-06" / "scores.parquet")
    out = write_bulletin(tmp_path / "2024-06", tmp_path / "b.html", config=config,
                         templates=ours)
    assert "本县说明" in out.read_text(encoding="utf-8")


def test_without_last_month_the_changes_come_from_the_summary(current, config):
    summary = {"lifecycle": {"changes": {"newly_high": 4, "left_ledger": 1}}}
    page = render_bulletin(current, summary, config=config)
    assert 'id="fig-newly-high" data-value="4"' in page
    assert 'id="fig-tier-fell" data-value="0"' in page
    bare = render_bulletin(current, {}, config=config)
    assert 'id="fig-newly-high" data-value="—"' in bare and "无上月评分结果" in bare


def test_the_model_paragraph_reports_recall_against_the_rules_and_drift(current, config):
    summary = {
        "model": {"name": "return-to-poverty", "version": "7", "trained_at": "2024-04-02",
                  "backtest": {"model_recall_at_2pct": 0.2, "model_recall_at_5pct": 0.5,
                               "rules_recall_at_5pct": 0.25, "model_recall_at_10pct": 0.7}},
        "drift": {"threshold": 0.25, "score_psi": 0.04, "drifted": ["wage_pc_3m"]},
        "reconciliation": {"rows_in": 9, "quarantined": 2,
                           "quarantined_by_rule": {"members_below_1": 2}},
    }
    page = render_bulletin(current, summary, config=config)
    assert "return-to-poverty 第 7 版" in page and "2024-04-02" in page
    assert '<span id="backtest-recall">50.0%</span>' in page
    assert '<span id="backtest-rules">25.0%</span>' in page and "2.0 倍" in page
    assert 'class="warning" id="drift-status"' in page and "近3个月人均工资性收入" in page
    assert "家庭人口数小于1 2 条" in page and "三者合计与台账一致" in page
    calm = render_bulletin(current, {**summary, "drift": {"threshold": 0.25, "score_psi": 0.04,
                                                          "drifted": []}}, config=config)
    assert '<span id="drift-status">数据分布稳定</span>' in calm
    assert "历年同月" not in page + calm
    seasonal = render_bulletin(current, {**summary, "drift": {
        "threshold": 0.25, "score_psi": 0.04, "drifted": [],
        "features_compared_with": "the same month of the year in training"}}, config=config)
    assert "各项特征（与训练数据中历年同月相比）均低于预警线" in seasonal


def test_write_bulletin_finds_last_month_beside_and_writes_in_place(tmp_path, current,
                                                                     previous, config):
    for month, frame in (("2024-05", previous), ("2024-06", current)):
        (tmp_path / month).mkdir()
        frame.to_parquet(tmp_path / month / "scores.parquet")
    out = write_bulletin(tmp_path / "2024-06", tmp_path / "report" / "bulletin.html",
                         config=config)
    page = out.read_text(encoding="utf-8")
    assert 'id="fig-newly-high" data-value="2"' in page
    assert sorted(p.name for p in out.parent.iterdir()) == ["bulletin.html"]
    again = write_bulletin(tmp_path / "2024-06", tmp_path / "again.html", config=config)
    assert again.read_bytes() == out.read_bytes()


def test_a_folder_without_scores_is_bad_input(tmp_path, capsys):
    with pytest.raises(LedgerError, match="no scores.parquet"):
        read_month(tmp_path)
    assert main(["report", "--scores", str(tmp_path), "--out", str(tmp_path / "b.html")]) == 2
    assert "no scores.parquet" in capsys.readouterr().err


def test_a_cjk_font_is_found_where_one_is_installed():
    installed = [p for p in font_manager.findSystemFonts()
                 if any(h in Path(p).name.lower() for h in CJK_FILE_HINTS)]
    if installed:
        assert cjk_font() is not None
    else:
        assert cjk_font() is None


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, config):
    """Two months of the committed sample scored by the real job, a few rows broken."""
    work = tmp_path_factory.mktemp("bulletin")
    raw = pd.read_parquet(SAMPLE)
    broken = np.flatnonzero(raw["month"].astype(str).to_numpy() == MONTHS[1])[:BROKEN_ROWS]
    raw.iloc[broken, raw.columns.get_loc("members")] = 0
    may = np.flatnonzero(raw["month"].astype(str).to_numpy() == MONTHS[0])
    may = may[~raw["household_id"].iloc[may].isin(raw["household_id"].iloc[broken]).to_numpy()]
    raw.iloc[may[-BROKEN_BEFORE:], raw.columns.get_loc("members")] = 0
    raw.to_parquet(work / "ledger.parquet")

    # One thread: on a busy machine OpenMP workers spinning against each other cost far more
    # than they save on a model this small.
    with threadpool_limits(limits=1):
        return _score_sample(work, raw, config)


def _score_sample(work: Path, raw: pd.DataFrame, config) -> tuple[Path, Path]:
    valid = validate_ledger(raw).valid
    households = valid["household_id"].drop_duplicates().iloc[::3]
    history = valid[valid["household_id"].isin(households)
                    & (valid["month"] < MONTHS[0])].reset_index(drop=True)
    quick = config.model_copy(update={
        "model": config.model.model_copy(update={
            "max_iter": 40, "min_samples_leaf": 20, "validation_months": 2,
            "calibration_months": 3, "selection": quick_selection(config)}),
        "backtest": config.backtest.model_copy(update={"origins": 1, "bootstrap": 0})})
    model = train(history, quick, track=False).model
    save_model(model, work / "model")
    for month in MONTHS:
        score_month(work / "ledger.parquet", work / "out", month=month,
                    model_uri=str(work / "model"), tracking_uri=f"sqlite:///{work}/mlruns.db")
    return work, work / "out" / MONTHS[1] / "bulletin.html"


def test_the_scoring_job_writes_the_bulletin_the_command_line_writes(sample_run, tmp_path):
    work, page = sample_run
    assert main(["report", "--scores", str(work / "out" / MONTHS[1]),
                 "--out", str(tmp_path / "bulletin.html")]) == 0
    assert (tmp_path / "bulletin.html").read_bytes() == page.read_bytes()
    text = page.read_text(encoding="utf-8")
    assert 'id="backtest-recall"' in text and 'id="backtest-rules"' in text


def test_the_job_counts_households_with_quarantined_rows_as_quarantined(sample_run):
    work, page = sample_run
    out = work / "out"
    now, before = (pd.read_parquet(out / m / "scores.parquet") for m in MONTHS[::-1])
    held_now, held_before = (set(pd.read_parquet(out / m / "quarantine.parquet")["household_id"])
                             for m in MONTHS[::-1])
    ids_now, ids_before = set(now["household_id"]), set(before["household_id"])
    expected = {
        "rejected": len(ids_before & held_now),
        "restored": len(held_before & ids_now),
        "joined": len(ids_now - ids_before - held_before),
        "left": len(ids_before - ids_now - held_now),
    }
    assert expected == {"rejected": BROKEN_ROWS, "restored": BROKEN_BEFORE, "joined": 0,
                        "left": 0}
    changes = pd.read_parquet(out / MONTHS[1] / "changes.parquet")["change"].value_counts()
    assert changes.get("quarantined", 0) == BROKEN_ROWS and changes.get("left_ledger", 0) == 0
    text = page.read_text(encoding="utf-8")
    lead = _text(text.split('id="changes"')[1].split("</p>")[0])
    assert (f"本月新进入台账 {expected['joined']} 户" in lead
            and f"上月在册本月无记录 {expected['left']} 户" in lead)
    assert f"本月记录未通过数据校验被隔离 {expected['rejected']} 户" in lead
    assert f"上月记录被隔离、本月恢复有效记录 {expected['restored']} 户" in lead
    found = _Figures()
    found.feed(text)
    moved = sum(_int(found.cells[("transition", s, "quarantined")])
                for s in ("high", "medium", "low", "not_scored"))
    assert moved == BROKEN_ROWS


def _chromium(tmp_path: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}", *args],
        capture_output=True, timeout=timeout, check=True)


class _Figures(HTMLParser):
    """Text of elements with an id, and of table cells by (table key, row key, column)."""

    def __init__(self):
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.cells: dict[tuple[str, str, str], str] = {}
        self._open: list[tuple[str, tuple, list[str]]] = []
        self._row: tuple[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self._row = next(((k[5:], v) for k, v in attrs.items() if k.startswith("data-")),
                             None)
        if "id" in attrs:
            self._open.append((tag, ("id", attrs["id"]), []))
        elif tag == "td" and self._row and "data-col" in attrs:
            self._open.append((tag, ("cell", *self._row, attrs["data-col"]), []))

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            _, target, parts = self._open.pop()
            text = "".join(parts).strip()
            if target[0] == "id":
                self.by_id[target[1]] = text
            else:
                self.cells[target[1:]] = text

    def handle_data(self, data):
        for _, _, parts in self._open:
            parts.append(data)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _text(page: str) -> str:
    """The text a reader sees: no styles, no charts (their glyphs are outlines), no tags."""
    page = re.sub(r"<(style|svg)\b.*?</\1>", "", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


@pytest.mark.slow
@needs_chromium
def test_the_browser_shows_the_month_figures_of_scores_parquet(sample_run, tmp_path):
    work, page = sample_run
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout.decode("utf-8")
    found = _Figures()
    found.feed(dom)
    fig, cells = found.by_id, found.cells

    scores = pd.read_parquet(work / "out" / MONTHS[1] / "scores.parquet")
    before = pd.read_parquet(work / "out" / MONTHS[0] / "scores.parquet")
    quarantine = pd.read_parquet(work / "out" / MONTHS[1] / "quarantine.parquet")
    tier = scores["risk_tier"].astype(object)
    high_now = set(scores.loc[tier == "high", "household_id"])
    high_before = set(before.loc[before["risk_tier"] == "high", "household_id"])
    both = scores[["household_id", "risk_tier"]].merge(
        before[["household_id", "risk_tier"]], on="household_id", suffixes=("", "_before"))
    fell = (both["risk_tier"].map(TIER_RANK) < both["risk_tier_before"].map(TIER_RANK)).sum()
    expected = {
        "fig-households": len(scores),
        "fig-scored": int(scores["risk_score"].notna().sum()),
        "fig-high": int((tier == "high").sum()),
        "fig-medium": int((tier == "medium").sum()),
        "fig-low": int((tier == "low").sum()),
        "fig-newly-high": len(high_now - high_before),
        "fig-tier-fell": int(fell),
        "fig-triggered": int((scores["rule_triggers"].fillna("") != "").sum()),
        "fig-watchlist": int(scores["on_watchlist"].sum()),
        "fig-elimination": int(scores["elimination_candidate"].sum()),
        "fig-quarantined": len(quarantine),
    }
    assert {key: _int(fig[key]) for key in expected} == expected
    assert len(quarantine) == BROKEN_ROWS and expected["fig-high"] > 0
    assert fig["month"] == MONTHS[1] and "2024年6月" in fig["title"]

    by_place = (scores.assign(state=tier.fillna("not_scored"))
                .groupby(["county", "township"], observed=True)["state"].value_counts()
                .unstack(fill_value=0))
    for (county, township), row in by_place.iterrows():
        key = ("township", f"{county}/{township}")
        assert _int(cells[(*key, "households")]) == row.sum()
        for state in ("high", "medium", "low", "not_scored"):
            assert _int(cells[(*key, state)]) == row.get(state, 0), (county, township, state)
    assert _int(cells[("township", "__total__", "households")]) == len(scores)

    high = scores[tier == "high"]
    for cause, n in high["reason_1"].value_counts().items():
        assert _int(cells[("cause", cause, "primary")]) == n
    # A household no cause has evidence for has no reason and so no measure (measures_zh "").
    measures = high["measures_zh"].str.split("、").explode()
    measures = measures[measures.fillna("") != ""].value_counts()
    assert len(measures) > 3
    for measure, n in measures.items():
        assert _int(cells[("measure", measure, "households")]) == n
    assert not any(hid in dom for hid in scores["household_id"])


@pytest.mark.slow
@needs_chromium
def test_the_screenshot_is_not_blank(sample_run, tmp_path):
    _, page = sample_run
    shot = tmp_path / "bulletin.png"
    _chromium(tmp_path, "--hide-scrollbars", "--window-size=1000,2400",
              f"--screenshot={shot}", page.as_uri())
    pixels = mpimg.imread(shot)[..., :3]
    inked = (pixels < 0.9).any(axis=-1).mean()
    red = ((pixels[..., 0] > 0.6) & (pixels[..., 1] < 0.35) & (pixels[..., 2] < 0.35)).sum()
    assert inked > 0.05, f"only {inked:.1%} of the page is drawn"
    assert red > 1000, "the masthead and the high-risk bars are missing"


@pytest.mark.slow
@needs_chromium
def test_chromium_prints_the_bulletin_on_a4_pages(sample_run, tmp_path):
    _, page = sample_run
    pdf = tmp_path / "bulletin.pdf"
    _chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri())
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page(?![s\w])", data)) >= 1
    width, height = map(float, re.search(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)",
                                         data).groups())
    assert width == pytest.approx(595.3, abs=2) and height == pytest.approx(841.9, abs=2)


def _month_folder(root: Path, frame: pd.DataFrame, month: str) -> Path:
    folder = root / month
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "scores.parquet")
    (folder / "summary.json").write_text(json.dumps({"month": month}), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("scores.parquet", b"PAR1\x15\x04", "scores.parquet: cannot be read as Parquet"),
        ("scores.parquet", "户编号,月份\nH1,2024-06\n".encode(),
         "scores.parquet: cannot be read as Parquet"),
        ("summary.json", b'{"month": "2024-06", "reconciliation": {"rows_in"',
         "summary.json: not valid JSON"),
        ("summary.json", "本月".encode("gb18030"), "summary.json: not UTF-8 text"),
        ("summary.json", b'["2024-06"]', "summary.json: holds an array; expected"),
        ("summary.json", b'{"reconciliation": "7 rows"}',
         "summary.json: 'reconciliation' holds a string; expected"),
    ],
)
def test_a_corrupt_month_folder_is_one_line_naming_the_file(tmp_path, current, capsys, name,
                                                            content, message):
    folder = _month_folder(tmp_path, current, "2024-06")
    (folder / name).write_bytes(content)
    with pytest.raises(LedgerError, match=message):
        read_month(folder)
    assert main(["report", "--scores", str(folder), "--out", str(tmp_path / "b.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(folder / name) in err[0]
    assert not (tmp_path / "b.html").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns=["risk_tier"]), r"missing columns \['risk_tier'\]"),
        (lambda f: f.assign(risk_score="high"), "column 'risk_score' holds"),
        (lambda f: f.assign(month=["2024-05", "2024-06"] * 3 + ["2024-06"]),
         "holds the months"),
    ],
)
def test_scores_with_wrong_columns_are_bad_input(tmp_path, current, edit, message):
    folder = _month_folder(tmp_path, edit(current), "2024-06")
    with pytest.raises(LedgerError, match=message):
        read_month(folder)


def test_previous_must_be_the_month_before(tmp_path, current, previous, capsys):
    now = _month_folder(tmp_path / "out", current, "2024-06")
    same = _month_folder(tmp_path / "copy", current, "2024-06")
    older = _month_folder(tmp_path / "archive", previous.assign(month="2024-04"), "2024-04")
    before = _month_folder(tmp_path / "archive", previous, "2024-05")
    for wrong, held in ((same, "2024-06"), (older, "2024-04")):
        assert main(["report", "--scores", str(now), "--previous", str(wrong),
                     "--out", str(tmp_path / "b.html")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and (f"holds the scores of {held}, expected 2024-05, the month "
                                  f"before 2024-06 of {now}") in err[0]
    assert not (tmp_path / "b.html").exists()
    assert main(["report", "--scores", str(now), "--previous", str(before),
                 "--out", str(tmp_path / "b.html")]) == 0
    page = (tmp_path / "b.html").read_text(encoding="utf-8")
    assert 'id="fig-newly-high" data-value="2"' in page
    # A year's first month follows the last of the year before.
    january = _month_folder(tmp_path / "out", current.assign(month="2025-01"), "2025-01")
    december = _month_folder(tmp_path / "out", previous.assign(month="2024-12"), "2024-12")
    assert main(["report", "--scores", str(january), "--previous", str(december),
                 "--out", str(tmp_path / "c.html")]) == 0
