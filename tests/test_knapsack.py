"""The budget knapsack: within budget, never a useless measure, optimal where it should be."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodel.plan import make_plan, plan_value

MEASURES = {"grant": 1500.0, "education_subsidy": 2500.0, "medical_assistance": 3000.0,
            "dibao": 3600.0, "welfare_job": 6000.0}


def effects_frame(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["household_id", "measure", "cost", "falls_prevented"])


def brute_force(effects: pd.DataFrame, budget: float) -> float:
    """The best plan's value by trying every assignment of at most one option per household."""
    useful = effects[effects["falls_prevented"] > 0]
    groups = [g[["cost", "falls_prevented"]].to_numpy() for _, g in useful.groupby("household_id")]
    best = 0.0
    for pick in itertools.product(*[range(len(g) + 1) for g in groups]):
        cost = sum(g[k - 1, 0] for g, k in zip(groups, pick, strict=True) if k)
        if cost <= budget:
            best = max(best, sum(g[k - 1, 1] for g, k in zip(groups, pick, strict=True) if k))
    return best


@st.composite
def small_problems(draw):
    n = draw(st.integers(1, 6))
    rows = []
    for i in range(n):
        for code in draw(st.sets(st.sampled_from(sorted(MEASURES)), min_size=1, max_size=3)):
            gain = draw(st.floats(-0.05, 0.4, allow_nan=False).map(lambda x: round(x, 4)))
            rows.append((f"H{i:03d}", code, MEASURES[code], gain))
    budget = draw(st.sampled_from([0.0, 1500.0, 2999.0, 4000.0, 6000.0, 7500.0, 12000.0]))
    return effects_frame(rows), budget


def check_feasible(plan: pd.DataFrame, effects: pd.DataFrame, budget: float) -> None:
    assert plan["cost"].sum() <= budget
    assert (plan["falls_prevented"] > 0).all()
    assert plan["household_id"].is_unique
    # Every chosen row is one of the household's real options, unchanged.
    merged = plan.merge(effects, on=["household_id", "measure"], suffixes=("", "_in"))
    assert len(merged) == len(plan)
    assert np.allclose(merged["cost"], merged["cost_in"])
    assert np.allclose(merged["falls_prevented"], merged["falls_prevented_in"])
    assert np.allclose(plan["cumulative_cost"], plan["cost"].cumsum())
    assert plan["priority"].tolist() == list(range(1, len(plan) + 1))


@settings(max_examples=80, deadline=None)
@given(small_problems())
def test_exact_is_optimal_and_greedy_feasible(problem):
    effects, budget = problem
    best = brute_force(effects, budget)
    exact = make_plan(effects, budget, method="exact")
    greedy = make_plan(effects, budget, method="greedy")
    auto = make_plan(effects, budget)
    for plan in (exact, greedy, auto):
        check_feasible(plan, effects, budget)
    assert plan_value(exact) == pytest.approx(best, abs=1e-12)
    assert plan_value(auto) == pytest.approx(best, abs=1e-12)
    assert plan_value(greedy) <= best + 1e-12


@settings(max_examples=80, deadline=None)
@given(gains=st.lists(st.floats(-0.1, 0.5, allow_nan=False), min_size=1, max_size=8),
       grants=st.integers(0, 9))
def test_greedy_is_optimal_with_one_price(gains, grants):
    # One grant of one amount for everyone: the plan is the households that gain most.
    effects = effects_frame([(f"H{i}", "grant", 1500.0, g) for i, g in enumerate(gains)])
    budget = 1500.0 * grants
    plan = make_plan(effects, budget, method="greedy")
    check_feasible(plan, effects, budget)
    assert plan_value(plan) == pytest.approx(brute_force(effects, budget), abs=1e-12)


def test_greedy_takes_upgrades_by_value_per_yuan():
    # A's job prevents 0.40 for 6,000 yuan (6.7e-5 a yuan), as good per yuan as its grant and
    # four times as much; B's grant prevents 6.0e-5 a yuan. 7,500 yuan: A's job and B's grant.
    effects = effects_frame([
        ("A", "grant", 1500.0, 0.10), ("A", "welfare_job", 6000.0, 0.40),
        ("B", "grant", 1500.0, 0.09),
    ])
    for method in ("greedy", "exact"):
        plan = make_plan(effects, 7500.0, method=method)
        assert plan[["household_id", "measure"]].values.tolist() == [["A", "welfare_job"],
                                                                      ["B", "grant"]]
        assert plan_value(plan) == pytest.approx(0.49)


def test_greedy_equals_exact_when_its_steps_fill_the_budget():
    # Concave options and a budget the greedy steps use up exactly: the LP optimum is integral.
    effects = effects_frame([
        ("A", "grant", 1500.0, 0.12), ("A", "dibao", 3600.0, 0.20),
        ("B", "grant", 1500.0, 0.09), ("B", "welfare_job", 6000.0, 0.15),
        ("C", "grant", 1500.0, 0.03),
    ])
    budget = 1500.0 + 2100.0 + 1500.0
    greedy = make_plan(effects, budget, method="greedy")
    assert plan_value(greedy) == pytest.approx(brute_force(effects, budget))
    assert greedy["measure"].tolist() == ["grant", "dibao"]
    assert greedy["household_id"].tolist() == ["B", "A"]


def test_greedy_can_miss_where_exact_does_not():
    # The classic knapsack trap: one cheap high-value option blocks a better pair.
    effects = effects_frame([
        ("A", "grant", 1500.0, 0.05),
        ("B", "dibao", 3600.0, 0.10), ("C", "dibao", 3600.0, 0.10),
    ])
    assert plan_value(make_plan(effects, 7200.0, method="greedy")) == pytest.approx(0.15)
    exact = make_plan(effects, 7200.0)
    assert plan_value(exact) == pytest.approx(0.20)
    assert exact["household_id"].tolist() == ["B", "C"]


def test_never_a_non_positive_or_missing_effect():
    effects = effects_frame([
        ("A", "grant", 1500.0, 0.0), ("B", "grant", 1500.0, -0.2),
        ("C", "grant", 1500.0, np.nan), ("D", "grant", 1500.0, 1e-9),
    ])
    for method in ("greedy", "exact", "auto"):
        assert make_plan(effects, 1e7, method=method)["household_id"].tolist() == ["D"]


def test_ties_broken_by_household_id_whatever_the_row_order():
    rng = np.random.default_rng(3)
    ids = [f"H{i:04d}" for i in range(300)]
    effects = pd.DataFrame({
        "household_id": np.repeat(ids, 2),
        "measure": np.tile(["grant", "dibao"], 300),
        "cost": np.tile([1500.0, 3600.0], 300),
        # Few distinct values, as an isotonic calibration gives: many exact ties.
        "falls_prevented": rng.choice([0.0, 0.02, 0.05, 0.1], 600),
        "extra": np.arange(600),
    })
    first = make_plan(effects, 90_000.0, method="greedy")
    shuffled = make_plan(effects.sample(frac=1.0, random_state=1), 90_000.0, method="greedy")
    pd.testing.assert_frame_equal(first, shuffled)
    grants = first[first["measure"] == "grant"]
    # Among equal values the lower household_id comes first.
    for _, same in grants.groupby("falls_prevented"):
        assert same["household_id"].is_monotonic_increasing
    assert "extra" in first.columns


def test_large_problem_within_budget_and_fast():
    rng = np.random.default_rng(0)
    n = 200_000
    codes = np.array(sorted(MEASURES))
    effects = pd.DataFrame({
        "household_id": np.repeat([f"H{i:07d}" for i in range(n)], 2),
        "measure": rng.choice(codes, 2 * n),
    })
    effects["cost"] = effects["measure"].map(MEASURES)
    effects["falls_prevented"] = rng.beta(0.5, 8, 2 * n) - 0.01
    effects = effects.drop_duplicates(["household_id", "measure"])
    budget = 0.05 * n * 1500
    plan = make_plan(effects, budget)
    assert plan["cost"].sum() <= budget
    assert budget - plan["cost"].sum() < 1500
    assert (plan["falls_prevented"] > 0).all()
    assert plan["household_id"].is_unique


def test_bad_input_is_refused():
    effects = effects_frame([("A", "grant", 1500.0, 0.1)])
    with pytest.raises(ValueError, match="budget"):
        make_plan(effects, -1.0)
    with pytest.raises(ValueError, match="budget"):
        make_plan(effects, float("nan"))
    with pytest.raises(ValueError, match="method"):
        make_plan(effects, 100.0, method="lp")
    with pytest.raises(ValueError, match="cost"):
        make_plan(effects.assign(cost=0.0), 100.0)
    with pytest.raises(ValueError, match="lack"):
        make_plan(effects.drop(columns="measure"), 100.0)
    assert make_plan(effects.iloc[:0], 5000.0).empty
