"""The watch list (监测预警名单): the month's households to follow up, for the cadres.

A household is on it when ``on_watchlist`` is true in ``scores.parquet``: the high tier, and
every household a hard trigger fired for whatever its score (应纳尽纳). :func:`write_watchlist`
writes it with Chinese headers and values as CSV (UTF-8 with BOM, so Excel opens it) and as an
Excel workbook.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Config
from ..ledger import HOUSEHOLD_TYPE_ZH, TIER_ZH, TRIGGER_ZH, write_xlsx

WATCHLIST_HEADERS = {
    "rank": "风险排名",
    "household_id": "户编号",
    "month": "月份",
    "county": "县",
    "township": "乡镇",
    "village": "村",
    "household_type": "户类型",
    "risk_score": "返贫致贫风险概率",
    "risk_tier": "风险等级",
    "watch_reason": "纳入原因",
    "reason_1": "主要风险1",
    "reason_2": "主要风险2",
    "reason_3": "主要风险3",
    "reason_text_zh": "风险说明",
    "measures_zh": "建议帮扶措施",
    "income_pc": "年人均可支配收入（元）",
    "poverty_line": "监测线（元）",
    "model_version": "模型版本",
}


def watchlist_frame(scores: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The watch list rows of ``scores`` with Chinese headers and values, in rank order.

    A row is on the watch list when ``on_watchlist`` is true: the high tier, and every household
    that meets a hard trigger whatever its score (应纳尽纳).
    """
    rows = scores[scores["on_watchlist"].to_numpy(dtype=bool)]
    causes = {c.code: c.name_zh for c in config.causes}
    high = rows["risk_tier"].eq("high").fillna(False).to_numpy(dtype=bool)
    triggers = rows["rule_triggers"].fillna("").astype(str)
    names = {combo: "、".join(TRIGGER_ZH.get(c, c) for c in combo.split(";") if c)
             for combo in triggers.unique()}
    trigger_text = triggers.map(names)
    reason = np.where(high, "高风险", "")
    joiner = np.where(high & (trigger_text != ""), "；", "")
    out = pd.DataFrame(index=rows.index)
    for column, header in WATCHLIST_HEADERS.items():
        if column == "watch_reason":
            out[header] = pd.Series(reason, index=rows.index) + joiner + np.where(
                trigger_text != "", "触发：" + trigger_text, "")
        elif column not in rows:
            continue
        elif column in ("reason_1", "reason_2", "reason_3"):
            out[header] = rows[column].map(causes)
        elif column == "risk_tier":
            out[header] = rows[column].map(TIER_ZH)
        elif column == "household_type":
            out[header] = rows[column].map(HOUSEHOLD_TYPE_ZH).fillna(rows[column])
        elif column == "risk_score":
            out[header] = rows[column].round(4)
        elif column in ("income_pc", "poverty_line"):
            out[header] = rows[column].round(0)
        else:
            out[header] = rows[column]
    return out.reset_index(drop=True)


def write_watchlist(scores: pd.DataFrame, folder: str | Path, config: Config) -> pd.DataFrame:
    """Write ``watchlist.csv`` (UTF-8 with BOM) and ``watchlist.xlsx`` into ``folder``.

    Returns
    -------
    DataFrame
        The watch list as written.
    """
    table = watchlist_frame(scores, config)
    for kind in ("csv", "xlsx"):
        write_watchlist_file(table, folder, kind)
    return table


def write_watchlist_file(table: pd.DataFrame, folder: str | Path, kind: str) -> Path:
    """Write the watch list ``table`` (:func:`watchlist_frame`) as ``watchlist.csv`` (UTF-8
    with BOM; ``kind`` "csv") or ``watchlist.xlsx`` ("xlsx") into ``folder``."""
    path = Path(folder) / f"watchlist.{kind}"
    if kind == "csv":
        table.to_csv(path, index=False, encoding="utf-8-sig")
    elif kind == "xlsx":
        write_xlsx(table, path)
    else:
        raise ValueError(f"Got kind={kind!r}, expected 'csv' or 'xlsx'.")
    return path
