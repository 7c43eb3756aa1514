"""Choosing whom to help within a budget: a multiple-choice knapsack.

Each household may receive at most one measure; each option has a cost (yuan) and an expected
number of falls below the line it prevents (the fall in the household's risk). The plan spends
at most the budget and prevents the most falls it can.

Two solvers share the same input and output:

- **greedy** (any size, vectorised): the classic solution of the linear relaxation. Options a
  household would never be given at any budget (dearer and no better, or below the line joining
  its neighbours in the cost-effect plane) are dropped, so each household's remaining options
  form a concave staircase; its steps ("give the cheaper option" then "upgrade") are taken in
  order of falls prevented per yuan across all households while they fit. A step that no longer
  fits ends that household's upgrades; cheaper steps further down the list still fill what is
  left of the budget. With one measure of one price for everyone it is optimal.
- **exact** (small problems): dynamic programming over the budget in units of the greatest
  common divisor of the costs (in fen), the true optimum.

Ties are broken by ``household_id`` (then by the measure's code), so the same effects give the
same plan whatever their row order.
"""

from __future__ import annotations

import math
from functools import reduce

import numpy as np
import pandas as pd

REQUIRED = ("household_id", "measure", "cost", "falls_prevented")
METHODS = ("auto", "greedy", "exact")
# The exact solver runs when options × budget units stay under this (a few seconds of numpy).
EXACT_MAX_WORK = 4_000_000
EXACT_MAX_OPTIONS = 20_000


def make_plan(effects: pd.DataFrame, budget: float, method: str = "auto") -> pd.DataFrame:
    """The households to help and the measure each receives, within a budget.

    Parameters
    ----------
    effects : DataFrame
        One row per household and measure it may receive: ``household_id``, ``measure``,
        ``cost`` (yuan, > 0) and ``falls_prevented`` (the expected number of falls below the
        line the measure prevents: risk before minus risk after). Other columns are carried
        into the plan. Rows whose ``falls_prevented`` is zero, negative or NaN are never chosen.
    budget : float
        Yuan available (≥ 0).
    method : {"auto", "greedy", "exact"}, default="auto"
        ``auto`` solves exactly when the problem is small (few options, few budget units) and
        households have options of different prices, and greedily otherwise.

    Returns
    -------
    DataFrame
        The chosen rows of ``effects``, one per household, best value first (falls prevented
        per yuan, then ``household_id``), with a fresh index and two more columns:
        ``priority`` (1, 2, …) and ``cumulative_cost``. Total cost never exceeds ``budget``.
        ``attrs["method"]`` names the solver used.

    Examples
    --------
    >>> effects = pd.DataFrame({
    ...     "household_id": ["A", "A", "B", "C"],
    ...     "measure": ["grant", "dibao", "grant", "grant"],
    ...     "cost": [1500.0, 3600.0, 1500.0, 1500.0],
    ...     "falls_prevented": [0.10, 0.30, 0.20, 0.0],
    ... })
    >>> plan = make_plan(effects, budget=5100)
    >>> plan[["household_id", "measure", "cumulative_cost"]].values.tolist()
    [['B', 'grant', 1500.0], ['A', 'dibao', 5100.0]]
    """
    if method not in METHODS:
        raise ValueError(f"Got method={method!r}, expected one of {', '.join(METHODS)}.")
    if not (isinstance(budget, int | float | np.number) and math.isfinite(budget) and budget >= 0):
        raise ValueError(f"Got budget={budget!r}, expected a finite number of yuan ≥ 0.")
    options = _options(effects, float(budget))
    if method == "auto":
        method = "exact" if _exact_is_cheap(options, budget) else "greedy"
    chosen = _exact(options, budget) if method == "exact" else _greedy(options, budget)
    plan = _ordered(options.iloc[chosen])
    plan.attrs["method"] = method
    return plan


def plan_value(plan: pd.DataFrame) -> float:
    """Expected falls prevented by a plan (the sum of its ``falls_prevented``)."""
    return float(plan["falls_prevented"].sum())


def _options(effects: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Useful, affordable options sorted by household, cost, then larger effect first; the
    options no household would take at any budget (dearer and no better) dropped."""
    missing = [c for c in REQUIRED if c not in effects.columns]
    if missing:
        raise ValueError(f"The effects lack column(s) {missing}; expected {list(REQUIRED)}.")
    cost = effects["cost"].to_numpy(dtype="float64", na_value=np.nan)
    if not np.all(np.isfinite(cost) & (cost > 0)):
        bad = effects.loc[~(np.isfinite(cost) & (cost > 0)), "cost"].iloc[0]
        raise ValueError(f"Got cost={bad!r}, expected every option to cost a positive amount.")
    gain = effects["falls_prevented"].to_numpy(dtype="float64", na_value=np.nan)
    keep = np.isfinite(gain) & (gain > 0) & (cost <= budget)
    out = effects.loc[keep].copy()
    out["household_id"] = out["household_id"].astype("string")
    out["measure"] = out["measure"].astype("string")
    out = out.sort_values(["household_id", "cost", "falls_prevented", "measure"],
                          ascending=[True, True, False, True], kind="stable", ignore_index=True)
    group = _group_codes(out)
    best_before = _shifted_group_cummax(out["falls_prevented"].to_numpy(), group)
    return out[out["falls_prevented"].to_numpy() > best_before].reset_index(drop=True)


def _group_codes(options: pd.DataFrame) -> np.ndarray:
    """Household number of each (household-sorted) option, 0, 1, 2 … in household_id order."""
    ids = options["household_id"].to_numpy(dtype=object)
    if len(ids) == 0:
        return np.zeros(0, dtype="int64")
    return np.concatenate([[0], np.cumsum(ids[1:] != ids[:-1])])


def _shifted_group_cummax(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For each option, the largest value among the earlier options of its household (0 when
    none): a group-wise running maximum, vectorised by offsetting each group above the last."""
    if len(values) == 0:
        return values
    span = float(np.max(np.abs(values))) * 2 + 1
    lifted = np.maximum.accumulate(values + group * span) - group * span
    out = np.empty_like(values)
    out[0] = 0.0
    out[1:] = lifted[:-1]
    out[np.r_[True, group[1:] != group[:-1]]] = 0.0
    return np.maximum(out, 0.0)


def _hull(options: pd.DataFrame) -> np.ndarray:
    """Positions of the options on each household's upper concave hull, starting from
    ``(cost 0, effect 0)``: the options the linear relaxation can take."""
    pos = np.arange(len(options))
    cost = options["cost"].to_numpy(dtype="float64")
    gain = options["falls_prevented"].to_numpy(dtype="float64")
    group = _group_codes(options)
    while len(pos):
        g, c, f = group[pos], cost[pos], gain[pos]
        first = np.r_[True, g[1:] != g[:-1]]
        prev_c = np.where(first, 0.0, np.r_[0.0, c[:-1]])
        prev_f = np.where(first, 0.0, np.r_[0.0, f[:-1]])
        slope_in = (f - prev_f) / (c - prev_c)
        last = np.r_[g[1:] != g[:-1], True]
        slope_next = np.where(last, -np.inf, np.r_[slope_in[1:], -np.inf])
        # A point no steeper coming in than going out lies under the chord of its neighbours.
        under = slope_in <= slope_next
        if not under.any():
            break
        pos = pos[~under]
    return pos


def _greedy(options: pd.DataFrame, budget: float) -> np.ndarray:
    """Positions of the chosen options by the greedy hull-step rule."""
    hull = _hull(options)
    if len(hull) == 0:
        return hull
    group = _group_codes(options)[hull]
    cost = options["cost"].to_numpy(dtype="float64")[hull]
    gain = options["falls_prevented"].to_numpy(dtype="float64")[hull]
    first = np.r_[True, group[1:] != group[:-1]]
    step_cost = np.where(first, cost, cost - np.r_[0.0, cost[:-1]])
    step_gain = np.where(first, gain, gain - np.r_[0.0, gain[:-1]])
    start = np.flatnonzero(first)
    level = np.arange(len(hull)) - np.repeat(start, np.diff(np.r_[start, len(hull)]))
    # Best value first; ties by household_id (group codes follow it), then the household's order.
    order = np.lexsort((level, group, -(step_gain / step_cost)))
    fen, capacity = _fen(step_cost, budget)
    spent = np.cumsum(fen[order])
    n_fit = int(np.searchsorted(spent, capacity, side="right"))
    taken = np.full(group.max() + 1, -1)
    taken[group[order[:n_fit]]] = level[order[:n_fit]]
    left = capacity - (int(spent[n_fit - 1]) if n_fit else 0)
    tail = order[n_fit:]
    # Past the first step that does not fit, walk on: a step fits only if its household took
    # every step before it and the budget left covers it. Each pass takes one step.
    while len(tail):
        ok = (level[tail] == taken[group[tail]] + 1) & (fen[tail] <= left)
        if not ok.any():
            break
        j = int(np.argmax(ok))
        step = tail[j]
        taken[group[step]] = level[step]
        left -= int(fen[step])
        tail = tail[j + 1:]
    is_chosen = (taken[group] == level)
    return hull[is_chosen]


def _fen(cost: np.ndarray, budget: float) -> tuple[np.ndarray, int]:
    """Costs rounded up and the budget rounded down to whole fen: integer sums of costs are
    exact, so a plan that fits in fen never exceeds the budget in yuan."""
    fen = np.ceil(np.round(cost * 100, 6)).astype("int64")
    return fen, int(math.floor(round(budget * 100, 6)))


def _units(options: pd.DataFrame, budget: float) -> tuple[np.ndarray, int]:
    """Option costs and the budget in units of the costs' greatest common divisor (in fen)."""
    fen, capacity = _fen(options["cost"].to_numpy(dtype="float64"), budget)
    unit = reduce(math.gcd, np.unique(fen).tolist(), 0) or 1
    return fen // unit, capacity // unit


def _exact_is_cheap(options: pd.DataFrame, budget: float) -> bool:
    if len(options) == 0 or len(options) > EXACT_MAX_OPTIONS:
        return False
    # With one price, whoever prevents most per household is the optimum: greedy is exact.
    if options["cost"].nunique() == 1:
        return False
    cost, capacity = _units(options, budget)
    return len(options) * (capacity + 1) <= EXACT_MAX_WORK


def _exact(options: pd.DataFrame, budget: float) -> np.ndarray:
    """Positions of the chosen options by dynamic programming over budget units."""
    if len(options) == 0:
        return np.zeros(0, dtype="int64")
    cost, capacity = _units(options, budget)
    if len(options) * (capacity + 1) > EXACT_MAX_WORK * 25:
        raise ValueError(
            f"Got {len(options)} options over {capacity} budget units, too large to solve "
            "exactly; expected method='greedy' or 'auto'.")
    gain = options["falls_prevented"].to_numpy(dtype="float64")
    group = _group_codes(options)
    bounds = np.flatnonzero(np.r_[True, group[1:] != group[:-1], True])
    best = np.zeros(capacity + 1)
    # choice[h, b]: option (+1) household h takes in an optimal plan of b units; 0 for none.
    choice = np.zeros((len(bounds) - 1, capacity + 1), dtype="int32")
    for h, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        new = best.copy()
        for k in range(a, b):
            c = cost[k]
            if c > capacity:
                continue
            candidate = best[:capacity + 1 - c] + gain[k]
            better = candidate > new[c:]
            new[c:] = np.where(better, candidate, new[c:])
            choice[h, c:][better] = k + 1
        best = new
    chosen = []
    left = capacity
    for h in range(len(bounds) - 2, -1, -1):
        k = choice[h, left] - 1
        if k >= 0:
            chosen.append(k)
            left -= cost[k]
    return np.sort(np.asarray(chosen, dtype="int64"))


def _ordered(chosen: pd.DataFrame) -> pd.DataFrame:
    value = chosen["falls_prevented"].to_numpy() / chosen["cost"].to_numpy()
    order = np.lexsort((_group_codes(chosen), -value))
    out = chosen.iloc[order].reset_index(drop=True)
    out["priority"] = np.arange(1, len(out) + 1)
    out["cumulative_cost"] = out["cost"].cumsum()
    return out
