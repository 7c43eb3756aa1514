import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import font_manager
from matplotlib import image as mpimg
from threadpoolctl import threadpool_limits

from riskmodel import load_config, validate_ledger
from riskmodel.cli import main
from riskmodel.errors import LedgerError
from riskmodel.fonts import CJK_FILE_HINTS, cjk_font
from riskmodel.report import (
    change_counts,
    high_tier_causes,
    measure_needs,
    read_month,
    render_bulletin,
    tier_transitions,
    township_table,
    trigger_counts,
    write_bulletin,
)
from riskmodel.score import score_month
from riskmodel.tracking import save_model
from riskmodel.train import train

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "synthetic" / "ledger.parquet"
MONTHS = ("2024-05", "2024-06")
BROKEN_ROWS = 7
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
    assert counts == {"newly_high": 2, "tier_fell": 2, "tier_rose": 1, "left": 1, "joined": 2}


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
    assert table.loc["income_below_line", "not_high"] == 1
    assert table.loc["dropout", "not_high"] == 0


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
    assert 'class="warning" id="drift-status"' in page and "wage_pc_3m" in page
    assert "members_below_1 2 条" in page and "三者合计与台账一致" in page
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
            "calibration_months": 3}),
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
    measures = high["measures_zh"].str.split("、").explode().value_counts()
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
