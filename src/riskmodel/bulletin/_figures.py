"""The bulletin's numbers: pure counts of a month's scores and its summary.

Every household figure on the page is counted here from ``scores.parquet`` (and last month's,
for the changes): households by tier, by township and by risk cause, the measures the high tier
calls for, hard triggers, risk-elimination candidates. The changes tell a household whose row
was quarantined (``quarantine.parquet`` of either month) from one that joined or left the
ledger. ``summary.json`` (:class:`riskmodel.scoring.RunSummary`) supplies only what
``scores.parquet`` cannot hold: rows quarantined, drift and the model's facts. Nothing here
reads a file or writes text of the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Config, load_config
from ..model import SAME_MONTH_OF_YEAR

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


def month_figures(scores: pd.DataFrame, summary, transitions: pd.DataFrame | None) -> dict:
    """The month's headline figures: households by state, triggers, quarantine, changes.

    Counted from the scores; ``summary`` (a :class:`~riskmodel.scoring.RunSummary`) supplies
    rows quarantined and read, and what the scores lack (an older file's columns).
    """
    states = _states(scores)
    tiers = states.value_counts().reindex(list(STATES), fill_value=0)
    reconciliation = summary.reconciliation
    lifecycle = summary.lifecycle
    fig = {
        "households": len(scores),
        "scored": int(tiers[list(TIERS)].sum()),
        **{state: int(tiers[state]) for state in STATES},
        "triggered": int(_triggered(scores).sum()),
        "quarantined": reconciliation and reconciliation.quarantined,
        "rows_in": reconciliation and reconciliation.rows_in,
        "quarantined_by_rule": (reconciliation and reconciliation.quarantined_by_rule) or {},
        "counties": scores["county"].nunique() if "county" in scores else 1,
    }
    fig["watchlist"] = (int(scores["on_watchlist"].astype(bool).sum())
                        if "on_watchlist" in scores
                        else summary.watchlist and summary.watchlist.households)
    fig["elimination"] = (int(scores["elimination_candidate"].astype(bool).sum())
                          if "elimination_candidate" in scores
                          else lifecycle and lifecycle.elimination_candidates)
    if transitions is not None:
        fig.update(change_counts(transitions))
    else:
        changes = lifecycle and lifecycle.changes
        fig.update({key: None if changes is None else int(changes.get(key, 0))
                    for key in ("newly_high", "tier_fell")})
    if "not_scored_reason" in scores:
        reasons = scores["not_scored_reason"].astype("string").dropna().value_counts()
        fig["not_scored_reasons"] = {str(k): int(v) for k, v in reasons.items()}
    else:
        by_reason = (reconciliation and reconciliation.not_eligible_by_reason) or {}
        fig["not_scored_reasons"] = {str(k): int(v) for k, v in by_reason.items() if v}
    return fig


def place_name(scores: pd.DataFrame) -> str:
    """The counties of the page's title: up to three by name, else how many."""
    if "county" not in scores:
        return ""
    counties = sorted(scores["county"].astype("string").dropna().unique())
    if len(counties) <= 3:
        return "、".join(counties)
    return f"{len(counties)}个县（市、区）"


def model_name(scores: pd.DataFrame, summary) -> str:
    """The model as the page names it: registered name and version, else its label."""
    model = summary.model
    if model and model.version:
        return f"{model.name or '模型'} 第 {model.version} 版"
    labels = (scores["model_version"].astype("string").dropna().unique()
              if "model_version" in scores else [])
    label = (model and model.label) or (labels[0] if len(labels) else "")
    # A model loaded from a folder is labelled by its path; the folder name is enough here.
    return Path(str(label)).name if label else ""


def backtest_recall(backtest: Mapping | None) -> dict | None:
    """Recall of the model and of the rules at the middle caseload of the backtest.

    Returns None when the backtest has no ``model_recall_at_<share>pct``; else ``share`` (%),
    ``recall`` and ``rules`` (None unless both are finite numbers).
    """
    backtest = backtest or {}
    caseloads = sorted({float(m.group(1)) for k in backtest
                        if (m := re.fullmatch(r"model_recall_at_(\d+(?:\.\d+)?)pct", k))})
    if not caseloads:
        return None
    share = caseloads[len(caseloads) // 2]
    tag = f"{share:g}pct"
    recall = backtest[f"model_recall_at_{tag}"]
    rules = backtest.get(f"rules_recall_at_{tag}")
    rules = rules if rules and recall is not None and np.isfinite([recall, rules]).all() \
        else None
    return {"share": share, "recall": recall, "rules": rules}


def agreement_facts(agreement) -> dict | None:
    """The facts of the line on reasons against the recorded risk types (None: no line).

    ``agreement`` is the summary's :class:`~riskmodel.scoring.RunSummary` ``reason_agreement``
    part. The line gives the reasons published the month before identification where there
    are such households (``before`` True), else this month's reasons: ``share``,
    ``households``, ``identified_from``, ``identified_to`` and ``before``.
    """
    if agreement is None:
        return None
    before = bool(agreement.before_households) and agreement.before_reason_1_share is not None
    share = agreement.before_reason_1_share if before else agreement.reason_1_share
    households = agreement.before_households if before else agreement.households
    if not households or share is None:
        return None
    return {"share": share, "households": households, "before": before,
            "identified_from": agreement.identified_from,
            "identified_to": agreement.identified_to}


def drift_facts(drift, config: Config) -> dict | None:
    """The drift sentence's facts (None when drift was not computed).

    ``drift`` is the summary's :class:`~riskmodel.scoring.RunSummary` ``drift`` part.
    """
    if drift is None or not drift.model_dump(exclude_unset=True):
        return None
    threshold = drift.threshold if "threshold" in drift.model_fields_set \
        else config.scoring.drift_psi_warning
    score_psi = drift.score_psi
    features = [n for n in drift.drifted or [] if n != "score"]
    zh = config.names_zh.features
    return {
        "threshold": threshold, "score_psi": score_psi,
        "score_over": score_psi is not None and score_psi > threshold,
        "seasonal": drift.features_compared_with == SAME_MONTH_OF_YEAR,
        "features": len(features),
        "feature_names": [zh.get(n, n) for n in features[:3]],
        "more_features": len(features) > 3,
        "drifted": bool(features) or (score_psi is not None and score_psi > threshold),
    }


def month_of(scores: pd.DataFrame, summary) -> str:
    """The month of the page: the summary's, else that of the scores (empty when neither)."""
    months = scores["month"].astype("string").dropna().unique()
    return str(summary.month or (months[0] if len(months) else ""))
