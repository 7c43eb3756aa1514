import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from riskmodel import load_config
from riskmodel.errors import OutputExistsError
from riskmodel.ledger import (
    LOCK_NAME,
    MonthOutput,
    OutputLock,
    write_json,
    write_parquet,
    write_parquet_atomic,
)
from riskmodel.scoring import WATCHLIST_HEADERS, watchlist_frame, write_watchlist


def _scores() -> pd.DataFrame:
    return pd.DataFrame({
        "rank": pd.array([1, 2, 3, pd.NA], dtype="Int64"),
        "household_id": ["H1", "H2", "H3", "H4"],
        "month": "2024-06",
        "county": "甲县",
        "township": ["乡一", "乡一", "乡二", "乡二"],
        "village": "村",
        "household_type": ["monitored", "exited", "general", "exited"],
        "risk_score": [0.41234, 0.25, 0.01, np.nan],
        "risk_tier": pd.array(["high", "high", "low", None], dtype="string"),
        "reason_1": pd.array(["illness", "education", None, None], dtype="string"),
        "reason_2": pd.array([None, "income", None, None], dtype="string"),
        "reason_3": pd.array([None, None, None, None], dtype="string"),
        "reason_text_zh": ["因病：…", "因学：…", "", None],
        "measures_zh": ["医疗救助", "教育资助", "", None],
        "rule_triggers": ["", "medical_oop_12m;dropout", "housing_unsafe", "income_below_line"],
        "on_watchlist": [True, True, True, True],
        "income_pc": [9000.4, 12000.0, 20000.0, 5000.0],
        "poverty_line": 8700.0,
        "model_version": "return-to-poverty/3",
    })


def test_parquet_bytes_depend_on_the_frame_only(tmp_path):
    frame = _scores()
    a = write_parquet(frame, tmp_path / "a.parquet").read_bytes()
    time.sleep(1.1)
    b = write_parquet(frame.copy(), tmp_path / "b.parquet").read_bytes()
    assert a == b
    changed = frame.assign(risk_score=frame["risk_score"] + 1e-9)
    assert write_parquet(changed, tmp_path / "c.parquet").read_bytes() != a
    back = pd.read_parquet(tmp_path / "a.parquet")
    assert back["risk_score"].isna().tolist() == [False, False, False, True]


def test_atomic_parquet_leaves_only_the_file(tmp_path):
    target = write_parquet_atomic(_scores(), tmp_path / "valid.parquet")
    assert _listing(tmp_path) == ["valid.parquet"]
    assert len(pd.read_parquet(target)) == 4


def test_json_is_readable_chinese_with_nan_as_null(tmp_path):
    path = write_json({"乡镇": "乡一", "psi": float("nan"), "n": np.int64(3),
                       "a": np.array([1.5])}, tmp_path / "s.json")
    text = path.read_text(encoding="utf-8")
    assert '"乡镇": "乡一"' in text and '"psi": null' in text and '"n": 3' in text


def test_lock_refuses_a_second_holder_and_is_released(tmp_path):
    with OutputLock(tmp_path):
        with pytest.raises(OutputExistsError, match="another run") as err:
            OutputLock(tmp_path).__enter__()
        assert str(os.getpid()) in str(err.value)
    with OutputLock(tmp_path):
        pass


def test_lock_of_a_killed_process_is_free(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from riskmodel.ledger import OutputLock
        with OutputLock({str(tmp_path)!r}):
            print("held", flush=True)
            time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputExistsError, match=str(holder.pid)):
            OutputLock(tmp_path).__enter__()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with OutputLock(tmp_path):
        pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forked children are POSIX's")
def test_a_forked_child_does_not_keep_the_lock_of_a_killed_holder(tmp_path):
    """The holder forks a child that outlives it (a worker slow to die): once the holder is
    killed the folder is free, though the child still runs."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        from riskmodel.ledger import OutputLock
        with OutputLock({str(tmp_path)!r}):
            child = os.fork()
            if child == 0:
                time.sleep(600)
                os._exit(0)
            print(child, flush=True)
            time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(holder.stdout.readline())
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        os.kill(child, 0)  # the child is still running
        with OutputLock(tmp_path):
            pass
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
        if child is not None:
            os.kill(child, signal.SIGKILL)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME)


def _stage(out: Path, month: str, text: str, force: bool = False) -> Path:
    with OutputLock(out), MonthOutput(out, month, force=force) as staged:
        (staged.staging / "scores.txt").write_text(text)
        (staged.staging / "summary.txt").write_text(text)
        return staged.publish()


def test_month_appears_whole_and_is_not_overwritten(tmp_path):
    folder = _stage(tmp_path, "2024-06", "first")
    assert sorted(p.name for p in folder.iterdir()) == ["scores.txt", "summary.txt"]
    assert _listing(tmp_path) == ["2024-06"]
    with pytest.raises(OutputExistsError, match="--force"):
        _stage(tmp_path, "2024-06", "second")
    assert (folder / "scores.txt").read_text() == "first"
    _stage(tmp_path, "2024-06", "second", force=True)
    assert (folder / "scores.txt").read_text() == "second"
    assert _listing(tmp_path) == ["2024-06"]


def test_a_failed_run_leaves_the_previous_output(tmp_path):
    _stage(tmp_path, "2024-06", "first")
    with pytest.raises(RuntimeError), MonthOutput(tmp_path, "2024-06", force=True) as staged:
        (staged.staging / "scores.txt").write_text("half")
        raise RuntimeError("crash while writing")
    assert (tmp_path / "2024-06" / "scores.txt").read_text() == "first"
    assert _listing(tmp_path) == ["2024-06"]


def test_kill_while_replacing_leaves_no_mixed_month_and_next_run_restores(tmp_path):
    _stage(tmp_path, "2024-06", "first")
    marker = tmp_path.parent / f"{tmp_path.name}.marker"
    script = textwrap.dedent(f"""
        import os, pathlib, time
        from riskmodel.ledger import MonthOutput
        real = os.rename
        def slow_rename(src, dst):
            real(src, dst)
            pathlib.Path({str(marker)!r}).write_text("renamed")
            time.sleep(600)
        with MonthOutput({str(tmp_path)!r}, "2024-06", force=True) as staged:
            (staged.staging / "scores.txt").write_text("second")
            os.rename = slow_rename
            staged.publish()
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the child never reached the rename"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # Killed between the two renames: the month is absent, never half old and half new.
    assert not (tmp_path / "2024-06").exists()
    # The next run, of any month, puts the previous output back and removes the staging.
    _stage(tmp_path, "2024-07", "another month")
    assert _listing(tmp_path) == ["2024-06", "2024-07"]
    assert (tmp_path / "2024-06" / "scores.txt").read_text() == "first"
    _stage(tmp_path, "2024-06", "third", force=True)
    assert _listing(tmp_path) == ["2024-06", "2024-07"]
    assert (tmp_path / "2024-06" / "scores.txt").read_text() == "third"


def test_watchlist_frame_speaks_chinese():
    table = watchlist_frame(_scores(), load_config())
    assert list(table.columns) == list(WATCHLIST_HEADERS.values())
    first = table.iloc[0]
    assert first["风险等级"] == "高" and first["主要风险1"] == "因病"
    assert first["户类型"] == "监测户" and first["返贫致贫风险概率"] == 0.4123
    assert table.loc[1, "纳入原因"] == "高风险；触发：合规自付医疗费用超标、有辍学"
    assert table.loc[2, "纳入原因"] == "触发：住房不安全"
    assert table.loc[3, "纳入原因"] == "触发：收入低于监测线"
    assert pd.isna(table.loc[3, "风险等级"])


def test_only_watchlist_rows_are_written(tmp_path):
    scores = _scores()
    scores.loc[2, "on_watchlist"] = False
    table = write_watchlist(scores, tmp_path, load_config())
    assert table["户编号"].tolist() == ["H1", "H2", "H4"]


def test_watchlist_csv_has_bom_and_chinese_headers_and_xlsx_matches(tmp_path):
    write_watchlist(_scores(), tmp_path, load_config())
    raw = (tmp_path / "watchlist.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw[3:].decode("utf-8").splitlines()[0].split(",")
    assert header == list(WATCHLIST_HEADERS.values())
    back = pd.read_csv(tmp_path / "watchlist.csv", encoding="utf-8-sig", dtype={"户编号": str})
    assert back["户编号"].tolist() == ["H1", "H2", "H3", "H4"]
    sheet = load_workbook(tmp_path / "watchlist.xlsx", read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == list(WATCHLIST_HEADERS.values())
    assert [r[1] for r in rows[1:]] == ["H1", "H2", "H3", "H4"]
    assert rows[1][7] == pytest.approx(0.4123)


def test_xlsx_escapes_text_and_depends_on_the_table_only(tmp_path):
    scores = _scores()
    scores["reason_text_zh"] = ["A & B < C > D", "控制\x01字符", "  前后空格  ", None]
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write_watchlist(scores, first, load_config())
    time.sleep(1.1)
    write_watchlist(scores, second, load_config())
    assert (first / "watchlist.xlsx").read_bytes() == (second / "watchlist.xlsx").read_bytes()
    back = pd.read_excel(first / "watchlist.xlsx", dtype={"户编号": str})
    assert back["风险说明"].tolist()[:3] == ["A & B < C > D", "控制字符", "  前后空格  "]
    assert pd.isna(back["风险说明"].iloc[3]) and pd.isna(back["风险排名"].iloc[3])
    assert back["风险排名"].tolist()[:3] == [1, 2, 3]
    sheet = load_workbook(first / "watchlist.xlsx").active
    assert sheet.title == "监测预警名单" and sheet.freeze_panes == "A2"
    assert sheet["A1"].font.b


def test_a_folder_the_lock_made_is_removed_when_it_holds_only_the_lock(tmp_path):
    new = tmp_path / "new"
    with pytest.raises(RuntimeError), OutputLock(new):
        raise RuntimeError("the model cannot be loaded")
    assert not new.exists()
    # A folder that was there before stays, even empty; one holding output stays.
    (tmp_path / "old").mkdir()
    with OutputLock(tmp_path / "old"):
        pass
    assert _listing(tmp_path / "old") == [] and (tmp_path / "old").is_dir()
    _stage(new, "2024-06", "first")
    assert _listing(new) == ["2024-06"]


def test_a_failed_first_score_run_leaves_no_folder(tmp_path, capsys):
    from riskmodel.cli import main

    out = tmp_path / "out"
    code = main(["score", "--ledger", str(tmp_path / "ledger.parquet"), "--out", str(out),
                 "--model", str(tmp_path / "no-model"),
                 "--tracking-uri", f"sqlite:///{tmp_path}/mlruns.db"])
    assert code == 3 and "no-model" in capsys.readouterr().err
    assert not out.exists()


def test_a_lock_file_removed_by_its_last_holder_is_not_held(tmp_path, monkeypatch):
    import fcntl

    from riskmodel.ledger import _outputs as outputs

    lock = tmp_path / "out" / LOCK_NAME
    real = fcntl.flock
    calls = []

    def flock(fd, operation):
        real(fd, operation)
        if not calls:
            # The run that held the lock removed its file (and folder) before letting go,
            # while this run was opening the file.
            lock.unlink()
            lock.parent.rmdir()
        calls.append(operation)

    monkeypatch.setattr(outputs.fcntl, "flock", flock)
    with OutputLock(tmp_path / "out"):
        monkeypatch.setattr(outputs.fcntl, "flock", real)
        # Held on the file now at the path: a second run is refused, not let in beside it.
        assert lock.is_file() and len(calls) == 2
        with pytest.raises(OutputExistsError, match="another run"):
            OutputLock(tmp_path / "out").__enter__()


# --- quarantine.xlsx ------------------------------------------------------------------------------

def _county_ledger(tmp_path: Path, suffix: str) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A county's ledger with Chinese headers, two title lines and an empty line, and the
    faults planted in it: ``{household_id: (month, rule)}``."""
    from conftest import tiny_ledger

    from riskmodel.config import load_aliases

    zh = {}
    for header, column in load_aliases().items():
        zh.setdefault(column, header)
    frame = tiny_ledger(households=6).astype(object)
    frame.loc[4, "members"] = "四"
    frame.loc[9, "inc_wage"] = "-5"
    frame.loc[16, "township"] = ""
    planted = {frame.loc[r, "household_id"]: (frame.loc[r, "month"], rule) for r, rule in
               [(4, "not_a_number"), (9, "amount_negative"), (16, "value_missing")]}
    frame = frame.rename(columns=zh)
    blank = pd.DataFrame([[None] * frame.shape[1]], columns=frame.columns)
    frame = pd.concat([frame.iloc[:7], blank, frame.iloc[7:]], ignore_index=True)
    path = tmp_path / f"台账{suffix}"
    if suffix == ".csv":
        path.write_text("青岚县监测台账（2024年3月）\n制表日期：2024-04-02\n"
                        + frame.to_csv(index=False), encoding="utf-8-sig")
    else:
        frame.to_excel(path, index=False, startrow=2, sheet_name="台账")
        book = load_workbook(path)
        book.active.cell(row=1, column=1).value = "青岚县监测台账（2024年3月）"
        book.save(path)
    return path, planted


def _as_county_sees_it(path: Path) -> dict[int, list]:
    """The file's rows by the row number a spreadsheet shows."""
    import csv

    if path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return {i + 1: row for i, row in enumerate(csv.reader(handle))}
    sheet = load_workbook(path, read_only=True).active
    return {i + 1: list(row) for i, row in enumerate(sheet.iter_rows(values_only=True))}


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_quarantine_xlsx_speaks_chinese_with_township_and_the_files_row_numbers(tmp_path,
                                                                               suffix):
    from riskmodel.ledger import QUARANTINE_HEADERS, validate_file

    path, planted = _county_ledger(tmp_path, suffix)
    out = tmp_path / "out"
    result = validate_file(path, chunk_households=2, out=out)
    assert result.n_in + result.n_blank == 6 * 3 + 1 and result.reconciles
    assert sorted(p.name for p in out.iterdir()) == [
        "quarantine.parquet", "quarantine.xlsx", "valid.parquet"]
    book = load_workbook(out / "quarantine.xlsx")
    sheet = book.active
    assert sheet.title == "隔离记录" and sheet.auto_filter.ref == "A1:K4"
    rows = list(sheet.iter_rows(values_only=True))
    table = pd.DataFrame(rows[1:], columns=rows[0])
    assert list(table.columns) == list(QUARANTINE_HEADERS.values())
    assert len(table) == len(result.quarantine) == 3
    seen = _as_county_sees_it(path)
    for _, row in table.iterrows():
        month, rule = planted[row["户编号"]]
        assert row["月份"] == month and row["规则代码"] == rule
        # The row number is the one the county's spreadsheet shows for that record.
        assert seen[row["原表行号"]][:2] == [row["户编号"], month]
    by_id = table.set_index("户编号")
    assert by_id.loc["H0001", "问题说明"] == "“家庭人口数”应填数字"
    assert by_id.loc["H0001", "填写内容"] == "四" and by_id.loc["H0001", "问题列"] == "家庭人口数"
    assert by_id.loc["H0003", "问题说明"] == "“工资性收入”不能为负数（只有生产经营性收入可以为负）"
    assert by_id.loc["H0003", "乡镇"] == "乡1" and by_id.loc["H0003", "村"] == "村0"
    assert by_id.loc["H0005", "问题说明"] == "“乡”为空，此项必填"
    # Sorted by township, rows without one last.
    assert [r[1] for r in rows[1:]] == ["乡1", "乡1", None]


def test_every_quarantine_rule_is_explained_in_chinese():
    from conftest import tiny_ledger

    from riskmodel import validate_ledger
    from riskmodel.ledger import MEMBER_COUNTS, RULES_ZH, quarantine_frame

    broken = [("members", 0), ("elderly", -1), ("labor_partial", 3), ("inc_wage", -5.0),
              ("household_type", "城市户"), ("month", "2024-13"), ("inc_transfer", "一百"),
              ("village", " "), ("housing_safe", "maybe"), ("students_compulsory", 1.5),
              ("disabled_severe", 1), ("dropouts", 5),
              *[(c, 9) for c in MEMBER_COUNTS if c not in ("disabled_severe",)]]
    raw = tiny_ledger(households=len(broken) + 2, months=1).astype(object)
    for row, (column, value) in enumerate(broken):
        raw.loc[row, column] = value
    raw.loc[len(broken) + 1, "household_id"] = raw.loc[len(broken), "household_id"]
    quarantine = validate_ledger(raw).quarantine
    rules = set(quarantine["reasons"].str.findall(r"(\w+)\(").explode())
    assert rules <= set(RULES_ZH), rules - set(RULES_ZH)
    assert len(rules) >= 15
    table = quarantine_frame(quarantine)
    for text in [*table["问题说明"], *table["本行全部问题"]]:
        assert not any(code in text for code in rules), text
        assert "{" not in text


def test_quarantine_xlsx_of_a_parquet_ledger_finds_each_rows_township(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from conftest import tiny_ledger

    from riskmodel.ledger import validate_file

    frame = tiny_ledger(households=20, months=3)
    frame["township"] = [f"乡{i}" for i in range(len(frame))]
    bad = [0, 13, 14, 59]
    frame.loc[bad, "members"] = 0
    path = tmp_path / "ledger.parquet"
    # Several row groups: the places are read from the groups holding the rows only.
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=7)
    validate_file(path, chunk_households=6, out=tmp_path / "out")
    table = pd.read_excel(tmp_path / "out" / "quarantine.xlsx")
    by_row = table.sort_values("原表行号")
    # A Parquet file counts as a sheet whose header is row 1.
    assert by_row["原表行号"].tolist() == [r + 2 for r in bad]
    assert by_row["乡镇"].tolist() == [f"乡{r}" for r in bad]
    assert (by_row["问题说明"] == "家庭人口至少为 1").all()
