"""The monthly bulletin (一月一通报): one printable HTML page of the month, in Chinese.

Township heads and county leaders read a page, not a Parquet file. :func:`write_bulletin` turns
a month's output folder of ``riskmodel score`` into ``bulletin.html``: one self-contained file
(styles and SVG charts embedded, nothing fetched from the network) with an A4 print
stylesheet, so "print to PDF" from a browser gives clean pages.

Every household figure on the page is counted from ``scores.parquet`` (and last month's, for
the changes): households by tier, by township and by risk cause, the measures the high tier
calls for, hard triggers, risk-elimination candidates. The changes tell a household whose row
was quarantined (``quarantine.parquet`` of either month) from one that joined or left the
ledger. ``summary.json`` supplies only what ``scores.parquet`` cannot hold: rows quarantined,
drift and the model's facts. Every name on the page is Chinese: causes and measures from their
tables in config, features, validation rules and not-scored reasons from ``names_zh``. The page
holds counts only — no household identifier, name or health detail, since bulletins are circulated;
the watch list is the place for names.

Charts are drawn with matplotlib in a CJK font found on the machine (:func:`cjk_font`) and
embedded as SVG with the glyphs as paths, so they look the same wherever the file is opened;
the page text asks the browser for the same font family first.
"""

from __future__ import annotations

import html
import io
import json
import logging
import os
import re
import string
from collections.abc import Mapping
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .._version import __version__
from ..config import Config, load_config
from ..errors import LedgerError
from ..fonts import cjk_font
from ..ledger import TRIGGER_ZH, parse_months, temp_beside
from ..model import SAME_MONTH_OF_YEAR
from ..months import month_before

logger = logging.getLogger(__name__)

TEMPLATE = Path(__file__).resolve().parent / "templates" / "bulletin.html"
TIERS = ("high", "medium", "low")
STATES = (*TIERS, "not_scored")
STATE_ZH = {"high": "高风险", "medium": "中风险", "low": "低风险", "not_scored": "未评分"}
STATE_COLORS = {"high": "#b8322a", "medium": "#e08a1e", "low": "#3f8f5a", "not_scored": "#9aa0a6"}
# A household of one month's output that has no row in the other month's: its row was
# quarantined there, or it had none at all.
QUARANTINED = "quarantined"
ABSENT = "absent"
MOVES = (*STATES, QUARANTINED, ABSENT)
BEFORE_ZH = {**STATE_ZH, QUARANTINED: "上月记录被隔离", ABSENT: "上月无记录"}
NOW_ZH = {**STATE_ZH, QUARANTINED: "本月记录被隔离", ABSENT: "本月无记录"}
NO_TOWNSHIP = "（未填乡镇）"
CHART_TOWNSHIPS = 30
NO_CAUSE = "unattributed"
NO_CAUSE_ZH = "无明显风险因素"
REQUIRED = ("household_id", "month", "risk_score", "risk_tier")
# The page's own font first, then the CJK fonts of common desktops; the font found on this
# machine is appended, so the text and the charts share one typeface where it is installed.
FONT_STACK = ("Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
              "Hiragino Sans GB", "WenQuanYi Micro Hei")
# The parts of ``summary.json`` the page reads, each a JSON object when present.
SUMMARY_SECTIONS = ("reconciliation", "lifecycle", "model", "drift", "watchlist")


def read_month(folder: str | Path) -> tuple[pd.DataFrame, dict]:
    """A month's ``scores.parquet`` and ``summary.json`` (empty dict when absent).

    Parameters
    ----------
    folder : str or Path
        ``<out>/<month>`` written by ``riskmodel score``, or the ``scores.parquet`` in it.

    Returns
    -------
    scores : DataFrame
    summary : dict

    Raises
    ------
    LedgerError
        No ``scores.parquet`` there; it cannot be read as Parquet (truncated, another kind of
        file), lacks a column the bulletin needs or holds more than one month; or
        ``summary.json`` is not the JSON object ``riskmodel score`` writes.
    """
    path = Path(folder)
    if path.is_dir():
        path = path / "scores.parquet"
    if not path.is_file():
        raise LedgerError(f"{folder}: no scores.parquet; expected a month's output folder "
                          "written by `riskmodel score`.")
    try:
        scores = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
        raise LedgerError(f"{path}: cannot be read as Parquet ({exc.__class__.__name__}); "
                          "expected the scores.parquet written by `riskmodel score`.") from None
    missing = [c for c in REQUIRED if c not in scores.columns]
    if missing:
        raise LedgerError(f"{path}: missing columns {missing}; expected the scores of "
                          "`riskmodel score`.")
    if not pd.api.types.is_numeric_dtype(scores["risk_score"]):
        raise LedgerError(f"{path}: column 'risk_score' holds {scores['risk_score'].dtype} "
                          "values; expected probabilities (numbers).")
    months = scores["month"].astype("string").dropna().unique()
    if len(months) > 1:
        raise LedgerError(f"{path}: holds the months {sorted(months)[:3]}; expected the "
                          "scores of one month.")
    summary_path = path.parent / "summary.json"
    return scores, _read_summary(summary_path) if summary_path.is_file() else {}


def _read_summary(path: Path) -> dict:
    expected = "expected the summary.json written by `riskmodel score`"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LedgerError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                          f"{expected}.") from None
    except UnicodeDecodeError:
        raise LedgerError(f"{path}: not UTF-8 text; {expected}.") from None
    if not isinstance(summary, dict):
        raise LedgerError(f"{path}: holds {_json_kind(summary)}; {expected}, an object.")
    wrong = [k for k in SUMMARY_SECTIONS if not isinstance(summary.get(k), dict | None)]
    if wrong:
        raise LedgerError(f"{path}: {wrong[0]!r} holds {_json_kind(summary[wrong[0]])}; "
                          f"{expected}, where it is an object.")
    return summary


def read_quarantined(folder: str | Path) -> pd.Series | None:
    """Household ids of the rows a month's job quarantined (``quarantine.parquet``).

    Parameters
    ----------
    folder : str or Path
        ``<out>/<month>`` written by ``riskmodel score``, or the ``scores.parquet`` in it.

    Returns
    -------
    Series or None
        The distinct household ids (a row without an id names no household); None when the
        folder has no ``quarantine.parquet``, so whether a row was quarantined is unknown.

    Raises
    ------
    LedgerError
        ``quarantine.parquet`` cannot be read as Parquet or has no ``household_id``.
    """
    folder = Path(folder)
    path = (folder.parent if folder.is_file() else folder) / "quarantine.parquet"
    if not path.is_file():
        return None
    expected = "expected the quarantine.parquet written by `riskmodel score`"
    try:
        ids = pd.read_parquet(path, columns=["household_id"])["household_id"]
    except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
        raise LedgerError(f"{path}: cannot be read as Parquet with a household_id column "
                          f"({exc.__class__.__name__}); {expected}.") from None
    return ids.astype("string").dropna().drop_duplicates().reset_index(drop=True)


def _json_kind(value) -> str:
    kinds = {list: "an array", str: "a string", bool: "true or false", int: "a number",
             float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _state_codes(scores: pd.DataFrame) -> np.ndarray:
    """Each row's index in :data:`STATES` (a row without a tier is ``not_scored``)."""
    tier = scores["risk_tier"].astype("string")
    codes = np.full(len(tier), len(TIERS))
    for i, name in enumerate(TIERS):
        codes[tier.eq(name).fillna(False).to_numpy(dtype=bool)] = i
    return codes


def _states(scores: pd.DataFrame) -> pd.Series:
    return pd.Series(np.asarray(STATES, dtype=object)[_state_codes(scores)], index=scores.index)


def _places(scores: pd.DataFrame) -> pd.DataFrame:
    """County and township of each row; a township is named within its county."""
    out = pd.DataFrame(index=scores.index)
    for column, missing in (("county", ""), ("township", NO_TOWNSHIP)):
        values = scores[column] if column in scores else pd.Series(pd.NA, index=scores.index)
        out[column] = values.astype("string").fillna(missing).astype(object)
    return out


def _count_listed(column: pd.Series, pattern: str, by: pd.Series | None = None):
    """Rows listing each code (``"a;b"`` lists two; a code listed twice in a row counts once).

    Lists are split once per distinct list, not once per row. With ``by``, counts per value of
    ``by`` (a DataFrame, one column per value).
    """
    lists = column.astype("string").fillna("")
    counts = lists.value_counts() if by is None else pd.crosstab(lists, by.to_numpy())
    codes = counts.index.to_series().str.split(pattern, regex=True).explode().str.strip()
    pairs = pd.DataFrame({"list": codes.index, "code": codes.to_numpy()}).drop_duplicates()
    pairs = pairs[pairs["code"] != ""]
    return counts.loc[pairs["list"]].set_axis(pairs["code"].to_numpy()).groupby(level=0).sum()


def _triggered(scores: pd.DataFrame) -> pd.Series:
    if "rule_triggers" not in scores:
        return pd.Series(False, index=scores.index)
    return scores["rule_triggers"].astype("string").fillna("").str.strip() != ""


def _primary_cause(scores: pd.DataFrame) -> pd.Series:
    if "reason_1" not in scores:
        return pd.Series(NO_CAUSE, index=scores.index, dtype=object)
    return scores["reason_1"].astype("string").fillna(NO_CAUSE).astype(object)


def _cause_names(config: Config) -> dict[str, str]:
    return {**{c.code: c.name_zh for c in config.causes}, NO_CAUSE: NO_CAUSE_ZH}


def _ids(values) -> pd.Series:
    return pd.Series(values, dtype=object).astype("string")


def _month_states(households: pd.Index, scores: pd.DataFrame, quarantined) -> np.ndarray:
    """Each household's index in :data:`MOVES` for one month: its state in the month's scores,
    else ``quarantined`` when one of its rows was, else ``absent``."""
    # Household ids are unique within a month's scores, so positions map one to one.
    at = pd.Index(_ids(scores["household_id"])).get_indexer(households)
    codes = np.full(len(households), MOVES.index(ABSENT))
    codes[at >= 0] = _state_codes(scores)[at[at >= 0]]
    if quarantined is not None:
        held = (at < 0) & households.isin(_ids(quarantined).dropna())
        codes[held] = MOVES.index(QUARANTINED)
    return codes


def tier_transitions(previous: pd.DataFrame, current: pd.DataFrame,
                     quarantined=None, previous_quarantined=None) -> pd.DataFrame:
    """Households by last month's state (rows) and this month's (columns).

    States are the tiers, ``not_scored`` (in the month's scores without a score),
    ``quarantined`` (not in the scores: a row of it was quarantined that month) and ``absent``
    (no row that month at all).

    Parameters
    ----------
    previous, current : DataFrame
        Last month's and this month's ``scores.parquet``.
    quarantined, previous_quarantined : sequence of str, optional
        Household ids of this month's and last month's quarantined rows
        (:func:`read_quarantined`). Without them a household missing from a month's scores
        counts as ``absent``.

    Examples
    --------
    >>> prev = pd.DataFrame({"household_id": ["A", "B", "C", "E"],
    ...                      "risk_tier": ["low", "high", None, "low"]})
    >>> cur = pd.DataFrame({"household_id": ["A", "B", "D"],
    ...                     "risk_tier": ["high", "medium", "low"]})
    >>> int(tier_transitions(prev, cur).loc["low", "high"])
    1
    >>> int(tier_transitions(prev, cur).loc["not_scored", "absent"])
    1
    >>> int(tier_transitions(prev, cur, quarantined=["E"]).loc["low", "quarantined"])
    1
    """
    listed = [_ids(previous["household_id"]), _ids(current["household_id"])]
    listed += [_ids(ids) for ids in (quarantined, previous_quarantined) if ids is not None]
    households = pd.Index(pd.concat(listed, ignore_index=True).dropna().unique())
    before = _month_states(households, previous, previous_quarantined)
    now = _month_states(households, current, quarantined)
    n = len(MOVES)
    counts = np.bincount(before * n + now, minlength=n * n).reshape(n, n)
    return pd.DataFrame(counts, index=pd.Index(MOVES, name="before"),
                        columns=pd.Index(MOVES, name="now")).astype("int64")


def change_counts(transitions: pd.DataFrame) -> dict[str, int]:
    """Headline changes from :func:`tier_transitions`.

    ``newly_high`` (high now, not last month), ``tier_fell``, ``tier_rose`` (between tiers),
    ``left`` (in last month's scores, no row this month), ``joined`` (no row last month, in this
    month's scores), ``rejected`` (in last month's scores, this month's row quarantined) and
    ``restored`` (last month's row quarantined, in this month's scores).
    """
    order = {tier: i for i, tier in enumerate(reversed(TIERS))}
    before = np.array([order.get(s, -1) for s in transitions.index])
    now = np.array([order.get(s, -1) for s in transitions.columns])
    scored = (before[:, None] >= 0) & (now[None, :] >= 0)
    values = transitions.to_numpy()
    listed = list(STATES)
    moves = transitions.reindex(index=MOVES, columns=MOVES, fill_value=0)
    return {
        "newly_high": int(transitions["high"].sum() - transitions.loc["high", "high"]),
        "tier_fell": int(values[scored & (now[None, :] < before[:, None])].sum()),
        "tier_rose": int(values[scored & (now[None, :] > before[:, None])].sum()),
        "left": int(moves.loc[listed, ABSENT].sum()),
        "joined": int(moves.loc[ABSENT, listed].sum()),
        "rejected": int(moves.loc[listed, QUARANTINED].sum()),
        "restored": int(moves.loc[QUARANTINED, listed].sum()),
    }


def township_table(scores: pd.DataFrame, config: Config | None = None,
                   previous: pd.DataFrame | None = None, top_causes: int = 2) -> pd.DataFrame:
    """Households of each township by tier, with the main causes of its high tier.

    Parameters
    ----------
    scores : DataFrame
        A month's ``scores.parquet``.
    config : Config, optional
        Names of the causes; the packaged default when None.
    previous : DataFrame, optional
        Last month's scores: adds ``newly_high``.
    top_causes : int, default=2
        Causes named per township.

    Returns
    -------
    DataFrame
        Indexed by ``county`` and ``township``, by county, most high-risk households first:
        ``households``, ``high``, ``medium``, ``low``, ``not_scored``, ``high_share`` (of the
        scored), ``triggered`` (households a hard trigger fired for), ``watchlist`` and
        ``elimination`` (when ``scores`` has them), ``newly_high`` (with ``previous``) and
        ``main_causes`` (e.g. ``"因病 3、因学 1"``).
    """
    config = config or load_config()
    places = _places(scores)
    states = _states(scores)
    flags = pd.DataFrame({"households": 1, **{s: states == s for s in STATES},
                          "triggered": _triggered(scores)}, index=scores.index)
    if "on_watchlist" in scores:
        flags["watchlist"] = scores["on_watchlist"].astype(bool)
    if "elimination_candidate" in scores:
        flags["elimination"] = scores["elimination_candidate"].astype(bool)
    if previous is not None:
        was_high = scores["household_id"].isin(
            previous.loc[_states(previous) == "high", "household_id"])
        flags["newly_high"] = (states == "high") & ~was_high
    table = pd.concat([places, flags], axis=1).groupby(["county", "township"]).sum()
    scored = table[list(TIERS)].sum(axis=1)
    table.insert(5, "high_share", (table["high"] / scored.where(scored > 0)).astype("float64"))

    high = states == "high"
    names = _cause_names(config)
    counted = (places[high].assign(cause=_primary_cause(scores)[high]).value_counts()
               .rename("n").reset_index())
    counted["order"] = counted["cause"].map({code: i for i, code in enumerate(names)})
    counted = counted.sort_values(["county", "township", "n", "order"],
                                  ascending=[True, True, False, True])
    counted = counted.groupby(["county", "township"], sort=False).head(top_causes)
    counted["text"] = counted["cause"].map(names) + " " + counted["n"].astype(str)
    table["main_causes"] = counted.groupby(["county", "township"])["text"].agg("、".join)
    table["main_causes"] = table["main_causes"].fillna("—")
    return table.sort_values(["county", "high", "households"], ascending=[True, False, False],
                             kind="stable")


def high_tier_causes(scores: pd.DataFrame, config: Config | None = None) -> pd.DataFrame:
    """The risk causes of the high tier and the measures each calls for.

    A household has one first cause but may list several: ``primary`` counts each household
    once (the column sums to the high tier), ``leading`` and ``any`` count a household under
    every cause it lists there.

    Returns
    -------
    DataFrame
        One row per cause seen in the high tier, most common first cause first: ``cause``
        (code), ``name_zh``, ``primary`` (high-risk households whose first reason it is),
        ``share`` (``primary`` over the high tier), ``leading`` (households for which it is one
        of the first ``reasons.text_causes`` reasons, those whose measures are suggested),
        ``any`` (households whose risk-cause list, up to ``reasons.max_causes`` causes, names
        it), ``measures_zh`` and ``measures_no_labor_zh`` (the cause's measures in config, for
        households with and without a laborer).
    """
    config = config or load_config()
    high = _states(scores) == "high"
    primary = _primary_cause(scores)[high].value_counts()
    firsts = pd.Series("", index=scores.index[high], dtype="string")
    for j in range(1, config.reasons.text_causes + 1):
        if f"reason_{j}" in scores:
            firsts = firsts + "," + scores.loc[high, f"reason_{j}"].astype("string").fillna("")
    leading = _count_listed(firsts, ",")
    if "risk_causes" in scores:
        lists = scores.loc[high, "risk_causes"]
    else:
        lists = pd.Series("", index=scores.index[high], dtype="string")
        for column in ("reason_1", "reason_2", "reason_3"):
            if column in scores:
                lists = lists + "," + scores.loc[high, column].astype("string").fillna("")
    named = _count_listed(lists, "[,;]")
    names = _cause_names(config)
    codes = [code for code in names if primary.get(code, 0) or named.get(code, 0)]
    n_high = int(high.sum())
    table = pd.DataFrame({
        "cause": codes,
        "name_zh": [names[c] for c in codes],
        "primary": [int(primary.get(c, 0)) for c in codes],
        "leading": [int(leading.get(c, 0)) for c in codes],
        "any": [int(named.get(c, 0)) for c in codes],
        "measures_zh": ["、".join(config.cause_by_code[c].measures_zh)
                        if c in config.cause_by_code else "—" for c in codes],
        "measures_no_labor_zh": ["、".join(config.cause_by_code[c].measures_no_labor_zh)
                                 if c in config.cause_by_code else "—" for c in codes],
    })
    table.insert(3, "share", table["primary"] / n_high if n_high else np.nan)
    return table.sort_values(["primary", "any"], ascending=False, kind="stable").reset_index(
        drop=True)


def measure_needs(scores: pd.DataFrame, config: Config | None = None) -> pd.DataFrame:
    """Households of the high tier for which each measure is suggested (``measures_zh``).

    Returns
    -------
    DataFrame
        ``measure``, ``households`` and ``causes`` (the causes whose measures in config name
        it), most households first.
    """
    config = config or load_config()
    high = _states(scores) == "high"
    if "measures_zh" not in scores or not high.any():
        return pd.DataFrame({"measure": [], "households": [], "causes": []})
    counts = _count_listed(scores.loc[high, "measures_zh"], "[、,;]")
    by_measure: dict[str, list[str]] = {}
    for cause in config.causes:
        for measure in dict.fromkeys(cause.measures_zh + cause.measures_no_labor_zh):
            by_measure.setdefault(measure, []).append(cause.name_zh)
    table = pd.DataFrame({"measure": counts.index.astype(str),
                          "households": counts.to_numpy(dtype="int64")})
    table["causes"] = table["measure"].map(lambda m: "、".join(by_measure.get(m, [])) or "—")
    return table.sort_values(["households", "measure"], ascending=[False, True],
                             kind="stable").reset_index(drop=True)


def trigger_counts(scores: pd.DataFrame) -> pd.DataFrame:
    """Households each hard trigger fired for, split by what the model made of them.

    Returns
    -------
    DataFrame
        ``trigger``, ``households``, and of those ``high`` (the model's high tier),
        ``scored_not_high`` (scored, medium or low) and ``not_scored`` (no model score: under
        the line already, or too little history), most households first.
    """
    groups = ("high", "scored_not_high", "not_scored")
    if "rule_triggers" not in scores:
        return pd.DataFrame({c: [] for c in ("trigger", "households", *groups)})
    states = _states(scores)
    group = np.where(states == "high", groups[0],
                     np.where(states == "not_scored", groups[2], groups[1]))
    counts = _count_listed(scores["rule_triggers"], "[,;]", by=pd.Series(group))
    counts = counts.reindex(columns=list(groups), fill_value=0)
    table = pd.DataFrame({"trigger": counts.index.astype(str),
                          "households": counts.sum(axis=1).to_numpy(dtype="int64"),
                          **{g: counts[g].to_numpy(dtype="int64") for g in groups}})
    return table.sort_values(["households", "trigger"], ascending=[False, True],
                             kind="stable").reset_index(drop=True)


def _figures(scores: pd.DataFrame, summary: Mapping, transitions: pd.DataFrame | None) -> dict:
    states = _states(scores)
    tiers = states.value_counts().reindex(list(STATES), fill_value=0)
    reconciliation = summary.get("reconciliation", {})
    lifecycle = summary.get("lifecycle", {})
    fig = {
        "households": len(scores),
        "scored": int(tiers[list(TIERS)].sum()),
        **{state: int(tiers[state]) for state in STATES},
        "triggered": int(_triggered(scores).sum()),
        "quarantined": reconciliation.get("quarantined"),
        "rows_in": reconciliation.get("rows_in"),
        "quarantined_by_rule": reconciliation.get("quarantined_by_rule") or {},
        "counties": scores["county"].nunique() if "county" in scores else 1,
    }
    fig["watchlist"] = (int(scores["on_watchlist"].astype(bool).sum())
                        if "on_watchlist" in scores else summary.get("watchlist", {}).get(
                            "households"))
    fig["elimination"] = (int(scores["elimination_candidate"].astype(bool).sum())
                          if "elimination_candidate" in scores
                          else lifecycle.get("elimination_candidates"))
    if transitions is not None:
        fig.update(change_counts(transitions))
    else:
        changes = lifecycle.get("changes")
        fig.update({key: None if changes is None else int(changes.get(key, 0))
                    for key in ("newly_high", "tier_fell")})
    if "not_scored_reason" in scores:
        reasons = scores["not_scored_reason"].astype("string").dropna().value_counts()
        fig["not_scored_reasons"] = {str(k): int(v) for k, v in reasons.items()}
    else:
        by_reason = reconciliation.get("not_eligible_by_reason") or {}
        fig["not_scored_reasons"] = {str(k): int(v) for k, v in by_reason.items() if v}
    return fig


def _num(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    return f"{int(value):,}"


def _pct(value) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.1%}"


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _month_zh(month: str) -> str:
    year, mon = month.split("-")
    return f"{year}年{int(mon)}月"


def _card(key: str, label: str, value, note: str = "", css: str = "") -> str:
    note_html = f'<span class="note">{_esc(note)}</span>' if note else ""
    return (f'<div class="card {css}"><span class="label">{_esc(label)}</span>'
            f'<span class="value" id="fig-{key}" data-value="{_esc(_num(value))}">'
            f"{_num(value)}</span>{note_html}</div>")


def _table(columns: list[tuple[str, str, bool]], rows: list[tuple[str, dict]], caption: str,
           key: str, total: dict | None = None) -> str:
    """An HTML table; ``columns`` are (key, header, numeric), each row a (data-key, values)."""
    head = "".join(f"<th>{_esc(h)}</th>" for _, h, _ in columns)

    def row(values: dict, attr: str, css: str = "") -> str:
        cells = "".join(
            f'<td class="num" data-col="{c}">{_esc(values[c])}</td>' if numeric
            else f'<td data-col="{c}">{_esc(values[c])}</td>' for c, _, numeric in columns)
        return f'<tr{css} {attr}>{cells}</tr>'

    body = "".join(row(values, f'data-{key}="{_esc(k)}"') for k, values in rows)
    if total is not None:
        body += row(total, f'data-{key}="__total__"', ' class="total"')
    return (f'<table id="table-{key}"><caption>{_esc(caption)}</caption><thead><tr>{head}'
            f"</tr></thead><tbody>{body}</tbody></table>")


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "riskmodel-bulletin", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None},
                    bbox_inches="tight")
    text = buffer.getvalue()
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)


def _chart_rc() -> dict:
    font = cjk_font()
    return {"font.family": "sans-serif",
            "font.sans-serif": [font, "DejaVu Sans"] if font else ["DejaVu Sans"],
            "axes.unicode_minus": False, "font.size": 9}


def _labels(index: pd.MultiIndex) -> list[str]:
    """Township names, prefixed by the county when there are several counties."""
    counties = index.get_level_values("county")
    towns = index.get_level_values("township")
    if counties.nunique() <= 1:
        return list(towns)
    return [f"{c} {t}" for c, t in zip(counties, towns, strict=True)]


def _township_chart(table: pd.DataFrame) -> str:
    with matplotlib.rc_context(_chart_rc()):
        fig = Figure(figsize=(7.2, 0.9 + 0.3 * len(table)))
        ax = fig.subplots()
        names = _labels(table.index)[::-1]
        left = np.zeros(len(names))
        for state in STATES:
            values = table[state].to_numpy(dtype="float64")[::-1]
            ax.barh(names, values, left=left, color=STATE_COLORS[state], label=STATE_ZH[state],
                    height=0.65)
            left += values
        for y, (total, high) in enumerate(zip(left, table["high"].to_numpy()[::-1],
                                              strict=True)):
            ax.text(total, y, f" {int(total):,}（高 {int(high):,}）", va="center", fontsize=8)
        ax.set_xlim(0, max(left.max(), 1) * 1.22)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_xlabel("户数")
        ax.legend(ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _svg(fig)


def _cause_chart(causes: pd.DataFrame) -> str:
    with matplotlib.rc_context(_chart_rc()):
        shown = causes[causes["primary"] > 0].iloc[::-1]
        fig = Figure(figsize=(7.2, 0.8 + 0.3 * len(shown)))
        ax = fig.subplots()
        ax.barh(shown["name_zh"], shown["share"] * 100, color=STATE_COLORS["high"], height=0.6)
        for y, (share, n) in enumerate(zip(shown["share"], shown["primary"], strict=True)):
            ax.text(share * 100, y, f" {int(n):,} 户（{share:.1%}）", va="center", fontsize=8)
        ax.set_xlim(0, max(float(shown["share"].max()) * 100, 1) * 1.3)
        ax.set_xlabel("占高风险户比例（%，按首要风险类型）")
        ax.spines[["top", "right"]].set_visible(False)
        return _svg(fig)


def _place_name(scores: pd.DataFrame) -> str:
    if "county" not in scores:
        return ""
    counties = sorted(scores["county"].astype("string").dropna().unique())
    if len(counties) <= 3:
        return "、".join(counties)
    return f"{len(counties)}个县（市、区）"


def _model_name(scores: pd.DataFrame, summary: Mapping) -> str:
    model = summary.get("model") or {}
    if model.get("version"):
        return f"{model.get('name') or '模型'} 第 {model['version']} 版"
    labels = (scores["model_version"].astype("string").dropna().unique()
              if "model_version" in scores else [])
    label = model.get("label") or (labels[0] if len(labels) else "")
    # A model loaded from a folder is labelled by its path; the folder name is enough here.
    return Path(str(label)).name if label else ""


def _model_paragraph(scores: pd.DataFrame, summary: Mapping, config: Config) -> str:
    model = summary.get("model") or {}
    name = _model_name(scores, summary)
    text = f"本月评分使用返贫致贫风险模型{f'（{_esc(name)}）' if name else ''}"
    text += f"，{_esc(model['trained_at'])} 训练" if model.get("trained_at") else ""
    text += (f"，估计每户在未来 {config.label.horizon_months} 个月内年人均可支配收入跌破"
             "监测线的概率。")
    backtest = model.get("backtest") or {}
    caseloads = sorted({float(m.group(1)) for k in backtest
                        if (m := re.fullmatch(r"model_recall_at_(\d+(?:\.\d+)?)pct", k))})
    if caseloads:
        share = caseloads[len(caseloads) // 2]
        tag = f"{share:g}pct"
        recall = backtest[f"model_recall_at_{tag}"]
        rules = backtest.get(f"rules_recall_at_{tag}")
        rules = rules if rules and recall is not None and np.isfinite([recall, rules]).all() \
            else None
        text += (f'历史回测中，按风险从高到低走访 {share:g}% 的户，模型提前找出了'
                 f'<span id="backtest-recall">{_pct(recall)}</span>的后来跌破监测线的户')
        if rules:
            text += (f"；同样的走访量下，现行规则筛查（收入低于监测线 "
                     f"{config.baseline.income_ratio:g} 倍、大额医疗支出、近期突发事件）找出"
                     f'<span id="backtest-rules">{_pct(rules)}</span>，模型为规则的 '
                     f"{recall / rules:.1f} 倍")
        text += "。"
    else:
        text += "本月结果未附模型回测指标。"
    return text + _drift_sentence(summary.get("drift") or {}, config)


def _data_paragraph(fig: dict, config: Config) -> str:
    if fig.get("rows_in") is None:
        return ""
    text = (f"本月台账记录 {fig['rows_in']:,} 条：模型评分 {fig['scored']:,} 户，未评分 "
            f"{fig['not_scored']:,} 户{_not_scored_text(fig, config)}，数据校验未通过 "
            f"{_num(fig.get('quarantined'))} 条")
    balanced = fig["scored"] + fig["not_scored"] + (fig.get("quarantined") or 0) == fig["rows_in"]
    text += "，三者合计与台账一致，无遗漏户。" if balanced else "，三者合计与台账不一致，请核查。"
    top = sorted(fig["quarantined_by_rule"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    if top:
        rules = config.names_zh.rules
        text += ("未通过校验的主要问题：" + "；".join(f"{rules.get(r, r)} {n:,} 条" for r, n in top)
                 + "。明细见本月隔离记录（quarantine），请相关乡镇核实更正后重报。")
    return f"<p>{_esc(text)}</p>"


def _drift_sentence(drift: Mapping, config: Config) -> str:
    if not drift:
        return "本月未计算数据漂移。"
    threshold = drift.get("threshold", config.scoring.drift_psi_warning)
    score_psi = drift.get("score_psi")
    features = [n for n in drift.get("drifted") or [] if n != "score"]
    parts = []
    if score_psi is not None:
        parts.append(f"风险分布的稳定性指数（PSI）为 {score_psi:.3f}，"
                     f"{'超过' if score_psi > threshold else '低于'} {threshold:g} 的预警线")
    seasonal = drift.get("features_compared_with") == SAME_MONTH_OF_YEAR
    against = "（与训练数据中历年同月相比）" if seasonal else ""
    if features:
        zh = config.names_zh.features
        names = "、".join(zh.get(n, n) for n in features[:3]) + ("等" if len(features) > 3 else "")
        parts.append(f"{len(features)} 项特征的 PSI{against}超过预警线（{names}）")
    else:
        parts.append(f"各项特征{against}均低于预警线")
    if features or (score_psi is not None and score_psi > threshold):
        status = ('<span class="warning" id="drift-status">数据分布有漂移，建议复核台账数据，'
                  "并考虑用近期数据重新训练模型</span>")
    else:
        status = '<span id="drift-status">数据分布稳定</span>'
    return f"本月数据与训练数据相比，{_esc('；'.join(parts))}：{status}。"


def render_bulletin(scores: pd.DataFrame, summary: Mapping | None = None,
                    previous_scores: pd.DataFrame | None = None,
                    config: Config | None = None, quarantined=None,
                    previous_quarantined=None) -> str:
    """The month's bulletin as one self-contained HTML page.

    Parameters
    ----------
    scores : DataFrame
        The month's ``scores.parquet``.
    summary : mapping, optional
        The month's ``summary.json``: read for rows quarantined (``reconciliation``), drift and
        the model's facts (``model``); changes since last month come from it only when
        ``previous_scores`` is not given.
    previous_scores : DataFrame, optional
        Last month's ``scores.parquet``: the changes since last month are counted from it.
    config : Config, optional
        Cause and measure names, tier thresholds and the horizon; the packaged default when
        None.
    quarantined, previous_quarantined : sequence of str, optional
        Household ids of this month's and last month's quarantined rows
        (:func:`read_quarantined`): a household missing from one month's scores is then
        counted as quarantined, not as having joined or left the ledger. Without them the
        page says it cannot tell the two apart.

    Returns
    -------
    str
        The HTML page.

    Examples
    --------
    >>> scores = pd.DataFrame({
    ...     "household_id": ["A", "B", "C"], "month": ["2024-06"] * 3,
    ...     "township": ["甲镇", "甲镇", "乙乡"], "risk_score": [0.4, 0.1, None],
    ...     "risk_tier": ["high", "medium", None], "reason_1": ["illness", "education", None],
    ...     "measures_zh": ["医疗救助、临时救助", "教育资助", None]})
    >>> page = render_bulletin(scores, {"reconciliation": {"quarantined": 2}})
    >>> 'id="fig-high" data-value="1"' in page and "因病" in page
    True
    """
    config = config or load_config()
    summary = summary or {}
    months = scores["month"].astype("string").dropna().unique()
    month = str(summary.get("month") or (months[0] if len(months) else ""))
    transitions = (tier_transitions(previous_scores, scores, quarantined, previous_quarantined)
                   if previous_scores is not None else None)
    fig = _figures(scores, summary, transitions)
    towns = township_table(scores, config, previous=previous_scores)
    causes = high_tier_causes(scores, config)
    measures = measure_needs(scores, config)
    triggers = trigger_counts(scores)
    place = _place_name(scores)
    month_zh = _month_zh(month) if month else ""
    title = f"{place}防止返贫动态监测月度通报（{month_zh}）"
    model_name = _model_name(scores, summary)

    sections = [
        '<header class="masthead"><div class="series">一月一监测　一月一分析　一月一汇总　'
        f'一月一通报</div><h1 id="title">{_esc(title)}</h1><div class="meta">数据月份 '
        f'<span id="month">{_esc(month)}</span>'
        + (f"　模型 {_esc(model_name)}" if model_name else "") + "</div></header>",
        _overview(fig, month_zh, config),
        _trigger_section(triggers, fig),
        _township_section(towns, previous_scores is not None),
        _cause_section(causes, measures, fig, config),
        _change_section(transitions, fig, quarantined is not None,
                        previous_quarantined is not None),
        "<section id=\"model\"><h2>五、模型与数据质量</h2><p>"
        + _model_paragraph(scores, summary, config) + "</p>" + _data_paragraph(fig, config)
        + "</section>",
        _notes(config),
    ]
    template = string.Template(TEMPLATE.read_text(encoding="utf-8"))
    font = cjk_font()
    stack = [*FONT_STACK, *([font] if font and font not in FONT_STACK else []), "sans-serif"]
    return template.substitute(
        title=_esc(title), version=_esc(__version__),
        font_stack=", ".join(f'"{f}"' if f != "sans-serif" else f for f in stack),
        body="\n".join(s for s in sections if s),
    )


def _not_scored_text(fig: dict, config: Config) -> str:
    """``"（当月收入已低于监测线 43 户，收入记录不足 6 户）"``: every reason and its count."""
    names = config.names_zh.not_scored
    reasons = "，".join(f"{names.get(k, k)} {v:,} 户" for k, v in fig["not_scored_reasons"].items())
    return f"（{reasons}）" if reasons else ""


def _overview(fig: dict, month_zh: str, config: Config) -> str:
    scored = fig["scored"]
    area = "全县" if fig["counties"] == 1 else "全域"
    lead = (f"{month_zh}，{area}纳入本月台账并通过校验的农户共 {fig['households']:,} 户，"
            f"其中模型评分 {scored:,} 户：高风险 {fig['high']:,} 户"
            f"（{_pct(fig['high'] / scored if scored else np.nan)}），"
            f"中风险 {fig['medium']:,} 户，低风险 {fig['low']:,} 户；"
            f"未评分 {fig['not_scored']:,} 户" + _not_scored_text(fig, config) + "。")
    if fig.get("newly_high") is not None:
        lead += f"较上月新增高风险 {fig['newly_high']:,} 户。"
    if fig.get("triggered"):
        lead += f"触发硬性监测指标的 {fig['triggered']:,} 户全部纳入监测预警名单（应纳尽纳）。"
    if fig.get("quarantined"):
        lead += (f"另有 {fig['quarantined']:,} 条台账记录因数据校验未通过暂未评分，"
                 "请相关乡镇核实更正。")
    tiers_note = (f"概率≥{config.tiers.high:.0%}", f"{config.tiers.medium:.0%}–"
                  f"{config.tiers.high:.0%}", f"<{config.tiers.medium:.0%}")
    cards = [
        _card("households", "监测农户", fig["households"], "本月台账有效户"),
        _card("scored", "模型评分", scored, f"未评分 {fig['not_scored']:,} 户"),
        _card("high", "高风险", fig["high"], tiers_note[0], "high"),
        _card("medium", "中风险", fig["medium"], tiers_note[1], "medium"),
        _card("low", "低风险", fig["low"], tiers_note[2], "low"),
        _card("newly-high", "新增高风险", fig.get("newly_high"),
              "较上月" if fig.get("newly_high") is not None else "无上月数据", "high"),
        _card("tier-fell", "风险等级下降", fig.get("tier_fell"),
              "较上月" if fig.get("tier_fell") is not None else "无上月数据", "low"),
        _card("watchlist", "监测预警名单", fig.get("watchlist"), "高风险及触发硬性指标"),
        _card("triggered", "触发硬性指标", fig["triggered"], "应纳尽纳"),
        _card("elimination", "风险消除候选", fig.get("elimination"), "待核实，非结论"),
        _card("quarantined", "数据校验未通过", fig.get("quarantined"), "台账记录（条）"),
        _card("rows-in", "台账记录总数", fig.get("rows_in"), "本月（条）"),
    ]
    return (f'<section id="overview"><h2>一、本月概况</h2><p class="lead">{_esc(lead)}</p>'
            f'<div class="cards">{"".join(cards)}</div></section>')


def _trigger_section(triggers: pd.DataFrame, fig: dict) -> str:
    if triggers.empty:
        body = '<p class="empty">本月无农户触发硬性监测指标。</p>'
    else:
        counted = ("households", "high", "scored_not_high", "not_scored")
        rows = [(t["trigger"], {"trigger": TRIGGER_ZH.get(t["trigger"], t["trigger"]),
                                **{c: _num(t[c]) for c in counted}})
                for t in triggers.to_dict("records")]
        body = _table([("trigger", "硬性指标", False), ("households", "触发户数", True),
                       ("high", "其中模型评为高风险", True),
                       ("scored_not_high", "其中模型评为中、低风险", True),
                       ("not_scored", "其中未评分", True)], rows,
                      "表1　硬性监测指标触发情况（一户可触发多项；未评分户已低于监测线或收入记录"
                      "不足，模型不评分）", "trigger")
    return f'<section id="triggers"><h3>硬性监测指标</h3>{body}</section>'


def _township_section(towns: pd.DataFrame, with_changes: bool) -> str:
    several = towns.index.get_level_values("county").nunique() > 1
    columns = [("county", "县", False)] if several else []
    columns += [("township", "乡镇", False), ("households", "监测户数", True),
                ("high", "高风险", True), ("medium", "中风险", True), ("low", "低风险", True),
                ("not_scored", "未评分", True), ("high_share", "高风险占比", True)]
    if with_changes:
        columns.append(("newly_high", "新增高风险", True))
    columns.append(("triggered", "触发硬性指标", True))
    if "elimination" in towns:
        columns.append(("elimination", "风险消除候选", True))
    columns.append(("main_causes", "高风险户首要风险类型（户）", False))
    counted = [c for c, _, numeric in columns if numeric and c != "high_share"]

    def values(place: tuple[str, str], row: Mapping) -> dict:
        out = {c: _num(row[c]) for c in counted}
        out.update(county=place[0], township=place[1], high_share=_pct(row["high_share"]),
                   main_causes=row["main_causes"])
        return out

    rows = [(f"{place[0]}/{place[1]}", values(place, row)) for place, row in towns.iterrows()]
    sums = towns[counted].sum()
    scored = float(sums[list(TIERS)].sum())
    total = values(("合计", "" if several else "合计"), {
        **sums.to_dict(), "high_share": sums["high"] / scored if scored else np.nan,
        "main_causes": ""})
    table = _table(columns, rows, "表2　各乡镇监测户风险等级分布", "township", total)
    shown = towns[towns.index.isin(towns.nlargest(CHART_TOWNSHIPS, "high", keep="first").index)]
    caption = "图1　各乡镇监测户风险等级分布（户）" + (
        f"，高风险户最多的 {CHART_TOWNSHIPS} 个乡镇" if len(shown) < len(towns) else "")
    chart = (f"<figure>{_township_chart(shown)}<figcaption>{caption}</figcaption></figure>"
             if len(towns) else "")
    return f'<section id="townships"><h2>二、分乡镇情况</h2>{table}{chart}</section>'


def _cause_section(causes: pd.DataFrame, measures: pd.DataFrame, fig: dict,
                   config: Config) -> str:
    if fig["high"] == 0:
        return ('<section id="causes"><h2>三、高风险户风险类型与帮扶需求</h2>'
                '<p class="empty">本月无高风险户。</p></section>')
    top = causes.iloc[0]
    k, most = config.reasons.text_causes, config.reasons.max_causes
    lead = (f"本月 {fig['high']:,} 户高风险户中，首要风险类型以{top['name_zh']}为首"
            f"（{int(top['primary']):,} 户，占 {_pct(top['share'])}）")
    if len(causes) > 1:
        second = causes.iloc[1]
        lead += f"，其次为{second['name_zh']}（{int(second['primary']):,} 户）"
    lead += "。各乡镇应按风险类型分类施策，本月需统筹安排的帮扶措施见表4。"
    cause_rows = [(c["cause"], {
        "name_zh": c["name_zh"], "primary": _num(c["primary"]), "share": _pct(c["share"]),
        "leading": _num(c["leading"]), "any": _num(c["any"]),
        "measures_zh": c["measures_zh"] + (f"；无劳动力户：{c['measures_no_labor_zh']}"
                                           if c["measures_no_labor_zh"] != c["measures_zh"]
                                           else "")})
        for c in causes.to_dict("records")]
    cause_table = _table([("name_zh", "风险类型", False),
                          ("primary", "为首要风险类型的户数", True),
                          ("share", "首要风险类型占高风险户", True),
                          ("leading", f"列为前{k}项风险类型的户数", True),
                          ("any", "风险类型中列有的户数", True),
                          ("measures_zh", "对应帮扶措施", False)], cause_rows,
                         "表3　高风险户风险类型", "cause")
    note = ("说明：每户只计一个首要风险类型，“为首要风险类型的户数”合计为高风险户数，"
            "占比按此计算；一户可列多项风险类型（至多 "
            f"{most} 项），“列为前{k}项风险类型的户数”“风险类型中列有的户数”两列中一户计入"
            f"其所列每一项，合计可大于高风险户数。帮扶措施只按每户前 {k} 项风险类型建议，"
            "无劳动力户改为兜底措施，故表4中某项措施的户数可少于列有相应风险类型的户数。")
    chart = (f"<figure>{_cause_chart(causes)}<figcaption>图2　高风险户首要风险类型构成"
             "</figcaption></figure>")
    if measures.empty:
        measure_table = '<p class="empty">评分结果未给出建议帮扶措施。</p>'
    else:
        measure_rows = [(m["measure"], {"measure": m["measure"], "households": _num(
            m["households"]), "causes": m["causes"]}) for m in measures.to_dict("records")]
        measure_table = _table([("measure", "帮扶措施", False),
                                ("households", "涉及高风险户数", True),
                                ("causes", "适用风险类型", False)], measure_rows,
                               "表4　高风险户建议帮扶措施需求（一户可涉及多项措施）", "measure")
    return (f'<section id="causes"><h2>三、高风险户风险类型与帮扶需求</h2><p>{_esc(lead)}</p>'
            f'{cause_table}<p class="table-note">{_esc(note)}</p>{chart}{measure_table}'
            "</section>")


def _change_section(transitions: pd.DataFrame | None, fig: dict, known_now: bool = False,
                    known_before: bool = False) -> str:
    """Section 四; ``known_now``/``known_before``: whether this month's and last month's
    quarantines were given, so that a household missing from the scores can be told apart."""
    head = '<section id="changes"><h2>四、较上月变化</h2>'
    if transitions is None:
        known = {k: fig.get(k) for k in ("newly_high", "tier_fell") if fig.get(k) is not None}
        if not known:
            return head + '<p class="empty">无上月评分结果，本月不作比较。</p></section>'
        return head + (f"<p>较上月新增高风险 {_num(known.get('newly_high'))} 户，风险等级下降 "
                       f"{_num(known.get('tier_fell'))} 户。</p></section>")
    parts = [f"较上月，新增高风险 {fig['newly_high']:,} 户，风险等级上升 {fig['tier_rose']:,} 户、"
             f"下降 {fig['tier_fell']:,} 户"]
    parts.append(f"本月新进入台账 {fig['joined']:,} 户" if known_before else
                 f"上月无有效记录、本月有记录 {fig['joined']:,} 户（上月隔离记录未附，其中可能有"
                 "上月记录未通过校验的户）")
    parts.append(f"上月在册本月无记录 {fig['left']:,} 户（请核实是否销号或漏报）" if known_now else
                 f"上月在册、本月无有效记录 {fig['left']:,} 户（本月隔离记录未附，请核实是否销号、"
                 "漏报或记录未通过校验）")
    if known_now:
        parts.append(f"上月在册、本月记录未通过数据校验被隔离 {fig['rejected']:,} 户"
                     "（仍在台账，请相关乡镇更正后重报）")
    if known_before:
        parts.append(f"上月记录被隔离、本月恢复有效记录 {fig['restored']:,} 户")
    lead = "；".join(parts) + "。"
    states = [s for s in MOVES if s != QUARANTINED or known_before or known_now]
    before_states = [s for s in states if s != QUARANTINED or known_before]
    now_states = [s for s in states if s != QUARANTINED or known_now]
    columns = [("state", "上月＼本月", False), *[(s, NOW_ZH[s], True) for s in now_states]]
    rows = [(before, {"state": BEFORE_ZH[before],
                      **{s: _num(transitions.loc[before, s]) for s in now_states}})
            for before in before_states]
    table = _table(columns, rows, "表5　风险等级变化（户）", "transition")
    return head + f"<p>{_esc(lead)}</p>{table}</section>"


def _notes(config: Config) -> str:
    not_scored = "、".join(config.names_zh.not_scored.values()) or "无法评分"
    items = [
        f"风险概率：模型估计的未来 {config.label.horizon_months} 个月内家庭年人均可支配收入"
        "（扣除合规自付医疗、教育支出）跌破当年监测线的概率。"
        f"高风险：概率≥{config.tiers.high:.0%}；中风险：{config.tiers.medium:.0%}至"
        f"{config.tiers.high:.0%}；低风险：低于{config.tiers.medium:.0%}。",
        f"未评分：模型不评分的户（{not_scored}）；当月收入已低于监测线的户直接纳入监测。",
        "硬性监测指标：收入低于监测线、合规自付医疗费用超标、住房不安全、有辍学、饮水不安全；"
        "触发任一项即纳入监测预警名单，不论模型评分。",
        "风险消除候选：按风险消除政策规则筛出的监测户，供乡村核实，不是消除结论。",
        "本通报仅含汇总数字，不含任何户信息；具体名单见本月监测预警名单（watchlist）。",
    ]
    return ('<section class="notes"><strong>说明</strong><ol>'
            + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ol></section>")


def _month(scores: pd.DataFrame, summary: Mapping) -> str | None:
    """The ``YYYY-MM`` month of a month's scores (of its summary when it has no row)."""
    months = scores["month"].dropna().unique()
    given = pd.Series([months[0] if len(months) else summary.get("month")], dtype=object)
    parsed, unreadable = parse_months(given)
    return None if unreadable.iloc[0] else str(parsed.iloc[0])


def previous_month_folder(folder: str | Path) -> Path | None:
    """The output folder of the month before ``folder``'s, beside it, when it holds scores."""
    folder = Path(folder)
    if not re.fullmatch(r"\d{4}-\d{2}", folder.name):
        return None
    before = folder.parent / month_before(folder.name)
    return before if (before / "scores.parquet").is_file() else None


def write_bulletin(scores_dir: str | Path, out_path: str | Path,
                   previous: str | Path | None = None, config: Config | None = None) -> Path:
    """Write the month's bulletin (``bulletin.html``) from a month's output folder.

    Parameters
    ----------
    scores_dir : str or Path
        ``<out>/<month>`` written by ``riskmodel score``.
    out_path : str or Path
        The HTML file to write; written beside and renamed into place.
    previous : str or Path, optional
        Last month's output folder: its scores must be of the calendar month before
        ``scores_dir``'s. When None, the folder of the month before beside ``scores_dir`` is
        used if it exists. Each folder's ``quarantine.parquet`` tells households whose row was
        quarantined from those that joined or left the ledger.
    config : Config, optional

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    LedgerError
        A folder holds no readable scores (see :func:`read_month`) or an unreadable
        ``quarantine.parquet`` (see :func:`read_quarantined`), or ``previous`` holds another
        month than the one before.
    """
    scores, summary = read_month(scores_dir)
    previous = previous if previous is not None else previous_month_folder(scores_dir)
    previous_scores = previous_quarantined = None
    if previous is not None:
        previous_scores, previous_summary = read_month(previous)
        previous_quarantined = read_quarantined(previous)
        month, before = _month(scores, summary), _month(previous_scores, previous_summary)
        expected = month_before(month) if month else None
        if before and expected and before != expected:
            raise LedgerError(
                f"{previous}: holds the scores of {before}, expected {expected}, the month "
                f"before {month} of {scores_dir}; give that month's output folder as "
                "--previous.")
    page = render_bulletin(scores, summary, previous_scores, config=config,
                           quarantined=read_quarantined(scores_dir),
                           previous_quarantined=previous_quarantined)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(out_path)
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(page)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


__all__ = [
    "change_counts",
    "cjk_font",
    "high_tier_causes",
    "measure_needs",
    "previous_month_folder",
    "read_month",
    "read_quarantined",
    "render_bulletin",
    "tier_transitions",
    "township_table",
    "trigger_counts",
    "write_bulletin",
]
