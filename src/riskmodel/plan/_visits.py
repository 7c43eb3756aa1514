"""Visit plans: which households each township's cadres should visit this month.

Cadre time is the other budget. With a number of visits available per township, the visits
should reach the most households that will fall below the line: households that meet a hard
trigger first (应纳尽纳), then the highest risk, equal risks to the household whose last
recorded visit is oldest. :func:`riskmodel.plan.plan_month` writes the result as
``visits.csv`` when given ``--visits``, and refuses a visits file that names a township the
month's ledger has no household in (:func:`unknown_townships`): a misspelt name would
otherwise lose that township's visits.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import RiskModelError
from ..ledger import TRIGGER_ZH


class VisitsFileError(RiskModelError):
    """The visits file cannot be read or holds a bad number of visits."""

    exit_code = 2


# The columns of visits.csv, for cadres: every value a name in Chinese (the hard triggers and
# the main cause by name, not by code).
VISIT_COLUMNS = {
    "county": "县",
    "township": "乡镇",
    "visit_order": "走访顺序",
    "household_id": "户编号",
    "village": "村",
    "household_type": "户类型",
    "risk_score": "返贫致贫风险概率",
    "hard_triggers_zh": "触发硬性条件",
    "months_since_visit": "距上次走访（月）",
    "reason_1_zh": "主要风险类型",
}
VISITS_ALIASES = {
    "县": "county", "县（市、区）": "county", "乡镇": "township", "乡（镇）": "township",
    "走访户数": "visits", "可走访户数": "visits", "走访次数": "visits",
}


def read_visits(path: str | Path) -> pd.DataFrame:
    """Visits available per township this month, from a CSV file.

    Columns ``township`` and ``visits`` (or 乡镇 and 走访户数), optionally ``county`` (县) to tell
    apart townships of the same name in different counties.
    """
    try:
        raw = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    except FileNotFoundError:
        raise VisitsFileError(f"{path}: visits file not found.") from None
    except IsADirectoryError:
        raise VisitsFileError(f"{path}: a folder, not a visits file; give the CSV file of "
                              "visits per township.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise VisitsFileError(f"{path}: not a readable CSV file ({exc.__class__.__name__}).") \
            from None
    raw = raw.rename(columns=lambda c: VISITS_ALIASES.get(str(c).strip(), str(c).strip()))
    missing = [c for c in ("township", "visits") if c not in raw.columns]
    if missing:
        raise VisitsFileError(f"{path}: no {missing[0]!r} column; expected columns township and "
                             "visits (乡镇, 走访户数), optionally county (县).")
    visits = pd.to_numeric(raw["visits"].str.strip(), errors="coerce")
    bad = visits.isna() | (visits < 0) | (visits != visits.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise VisitsFileError(f"{path}: row {row + 2} has visits={raw['visits'].iloc[row]!r}, "
                             "expected a whole number ≥ 0.")
    key = [c for c in ("county", "township") if c in raw.columns]
    out = raw[key].apply(lambda s: s.str.strip()).astype("string")
    blank = out.fillna("").eq("")
    if blank.any(axis=None):
        row, column = np.argwhere(blank.to_numpy())[0]
        raise VisitsFileError(f"{path}: row {row + 2} names no {key[column]}; every row needs "
                             "one.")
    out["visits"] = visits.astype("int64")
    return out.groupby(key, as_index=False, sort=True)["visits"].sum()


def visit_plan(
    scores: pd.DataFrame, visits_per_township: pd.DataFrame | Mapping[str, int]
) -> pd.DataFrame:
    """Which households each township's cadres should visit this month, in order.

    Within a township, households that meet a hard trigger come first, then the highest risk
    (the expected number of future fallers visited is largest), ties to the household whose last
    recorded visit is oldest, then ``household_id``. Households without a model score (under the
    line now, or too little history) come after the scored ones unless a trigger fired.

    Parameters
    ----------
    scores : DataFrame
        One row per household: ``household_id``, ``township`` (and ``county`` when the visits
        name counties), ``risk_score`` (NaN when not scored), ``hard_triggers`` (names joined
        by ``;``, empty when none) and ``months_since_visit`` (months since the last month with
        income recorded; NaN when never).
    visits_per_township : DataFrame or mapping
        ``township`` → visits available, or a frame with ``township``, ``visits`` and optionally
        ``county``. A township not named gets no visits.

    Returns
    -------
    DataFrame
        The households to visit: the columns of ``scores`` plus ``visit_order`` (1, 2, … within
        the township) and ``hard_triggers_zh`` (the triggers' Chinese names joined by 、),
        sorted by township and order.

    Examples
    --------
    >>> scores = pd.DataFrame({"household_id": ["A", "B", "C", "D"],
    ...                        "township": ["T1", "T1", "T1", "T2"],
    ...                        "risk_score": [0.30, 0.05, 0.30, 0.9],
    ...                        "hard_triggers": ["", "dropout", "", ""],
    ...                        "months_since_visit": [1.0, 0.0, 4.0, 0.0]})
    >>> visit_plan(scores, {"T1": 2})["household_id"].tolist()
    ['B', 'C']
    """
    visits, key = _visits_by_place(scores, visits_per_township)
    place = scores[key].astype("string").fillna("")
    wanted = visits.assign(**{c: visits[c].astype("string") for c in key})
    available = place.merge(wanted, on=key, how="left")["visits"].fillna(0).to_numpy()
    town, _ = pd.factorize(pd.MultiIndex.from_frame(place), sort=True)
    risk = scores["risk_score"].to_numpy(dtype="float64", na_value=np.nan)
    since = scores["months_since_visit"].to_numpy(dtype="float64", na_value=np.nan)
    hard = scores["hard_triggers"].fillna("").astype(str).to_numpy() != ""
    rank_id = pd.Series(scores["household_id"].astype(str).to_numpy()).rank(method="first")
    order = np.lexsort((
        rank_id.to_numpy(),
        -np.nan_to_num(since, nan=np.inf),
        -np.nan_to_num(risk, nan=-1.0),
        ~hard,
        town,
    ))
    sorted_town = town[order]
    starts = np.flatnonzero(np.r_[True, sorted_town[1:] != sorted_town[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    position = np.arange(len(order)) - np.repeat(starts, sizes)
    keep = position < available[order]
    out = scores.iloc[order[keep]].copy()
    out.insert(len(key), "visit_order", position[keep] + 1)
    out["hard_triggers_zh"] = trigger_names(out["hard_triggers"])
    return out.reset_index(drop=True)


def trigger_names(triggers: pd.Series) -> pd.Series:
    """Hard-trigger codes joined by ``;`` as their Chinese names joined by 、 (empty stays empty).

    Examples
    --------
    >>> trigger_names(pd.Series(["income_below_line;dropout", ""])).tolist()
    ['收入低于监测线、有辍学', '']
    """
    codes = triggers.fillna("").astype(str)
    names = {combo: "、".join(TRIGGER_ZH.get(c.strip(), c.strip()) for c in combo.split(";")
                             if c.strip())
             for combo in codes.unique()}
    return codes.map(names)


def unknown_townships(
    scores: pd.DataFrame, visits_per_township: pd.DataFrame | Mapping[str, int]
) -> pd.DataFrame:
    """The places the visits name that no household of ``scores`` is in.

    A township is matched by name, and by county too when the visits name counties: a
    misspelt township would otherwise get no visits without a word.

    Parameters
    ----------
    scores : DataFrame
        One row per household, with ``township`` (and ``county`` when the visits name counties).
    visits_per_township : DataFrame or mapping
        As for :func:`visit_plan`.

    Returns
    -------
    DataFrame
        The unknown places: ``township`` (and ``county``), in the visits' order.

    Examples
    --------
    >>> scores = pd.DataFrame({"household_id": ["A", "B"], "township": ["T1", "T2"]})
    >>> unknown_townships(scores, {"T1": 2, "T3": 1})["township"].tolist()
    ['T3']
    """
    visits, key = _visits_by_place(scores, visits_per_township)
    known = pd.MultiIndex.from_frame(scores[key].astype("string").fillna(""))
    wanted = visits[key].astype("string")
    return wanted[~pd.MultiIndex.from_frame(wanted).isin(known)].reset_index(drop=True)


def _visits_by_place(scores: pd.DataFrame, visits_per_township) -> tuple[pd.DataFrame, list]:
    """The visits as a frame and the place columns they are given by."""
    if isinstance(visits_per_township, Mapping):
        visits = pd.DataFrame({"township": list(visits_per_township),
                               "visits": list(visits_per_township.values())})
    else:
        visits = visits_per_township
    key = [c for c in ("county", "township") if c in visits.columns]
    missing = [c for c in key if c not in scores.columns]
    if missing:
        raise ValueError(f"The scores lack {missing[0]!r}, which the visits are given by.")
    return visits, key
