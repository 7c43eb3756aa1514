"""Benchmark budget plans against the synthetic truth's true effects, and their speed.

1. **Quality.** Generates a synthetic ledger with its truth (default 20,000 households × 54
   months; the true risk with and without a one-off grant at the last month with a full horizon
   ahead), trains the risk model on the months up to that month only, and plans grants
   (default 1,500 yuan) for budgets of 1% to 20% of the households. Every plan is scored by the
   truth — the falls its households' grants truly prevent (``true_risk − true_risk_grant``) —
   beside, at the same budget and among the same eligible households:

   - the income cut-off: the poorest first (lowest per-capita disposable income);
   - risk ranking: the highest calibrated risk of the same model first;
   - the plan by the model's what-if response (``estimate="response"``);
   - the ceiling: the households with the largest true effect.

   The true effects are Monte Carlo estimates; the ceiling, chosen on them, also chooses their
   noise and scores high on it. A second, independent estimate of the same truth
   (``truth_seed``) scores the ceiling's households and the plan's again: the exact ceiling lies
   between that and the first.

   Prints the table, with 95% intervals of the plan's ratios from a Poisson bootstrap over
   households, and draws the cost curve (true falls prevented against yuan spent).
2. **Speed.** Writes a large ledger (default 1,000,000 households × 24 months) to Parquet and
   runs ``riskmodel plan`` on its last month with the model from step 1, each time in a fresh
   process as an operator would, once with a grant and once choosing among the configured
   measures: time in all, time after reading and validating the ledger, and the process's peak
   memory.

Run: ``python benchmarks/bench_plan.py [--households N] [--months M] [--speed-households N]``
(``--speed-households 0`` skips step 2). The figures are recorded in ``docs/plans.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from peak import run_measured

from riskmodel import load_config, validate_ledger
from riskmodel.model import RiskModel, model_features, save_model, training_data
from riskmodel.months import month_index
from riskmodel.plan import compare_rules, make_plan, plan_frame
from riskmodel.synthetic import generate, generate_ledger, write

# The ``riskmodel`` console script, run with this interpreter.
PLAN_COMMAND = "import sys; from riskmodel.cli import main; sys.exit(main(sys.argv[1:]))"
SHARES = (0.01, 0.02, 0.05, 0.10, 0.15, 0.20)
# Offset of the seed of the second, independent Monte Carlo estimate of the truth.
INDEPENDENT = 10_000
METHODS = {
    "plan": "plan (margin model)",
    "response": "plan (what-if response)",
    "risk_ranking": "risk ranking",
    "income_cutoff": "income cut-off",
    "ceiling": "ceiling (true effect)",
}


def fit_model(ledger: pd.DataFrame, config) -> RiskModel:
    """The risk model as the training job fits it, on every labelled row of ``ledger``."""
    data = training_data(ledger, config)
    inputs = model_features(data.features.columns, config)
    model = RiskModel.from_config(config, inputs)
    return model.fit(data.features[inputs], data.target, months=data.months)


def true_falls(chosen: pd.Series, effect: pd.Series) -> float:
    """Falls the chosen households' grants truly prevent."""
    return float(effect.reindex(chosen.astype(str)).fillna(0.0).sum())


def quality(args: argparse.Namespace, config) -> RiskModel:
    clock = time.perf_counter()
    data = generate(households=args.households, months=args.months, seed=args.seed,
                    grant_amounts=(args.grant,), replicas=args.replicas)
    ledger = validate_ledger(data.ledger).valid
    truth = data.truth.dropna(subset=["true_risk"])
    month = str(truth["month"].iloc[0])
    # The same truth again from independent futures: the ceiling chooses on the first
    # estimate's noise as well as on the true effect, so it is also scored on the second.
    second = generate(households=args.households, months=args.months, seed=args.seed,
                      grant_amounts=(args.grant,), replicas=args.replicas,
                      truth_seed=args.seed + INDEPENDENT).truth
    second = second.dropna(subset=["true_risk"])
    print(f"ledger {args.households:,} households × {args.months} months, truth at {month} "
          f"(twice, independent futures): {time.perf_counter() - clock:.0f} s")
    past = ledger[month_index(ledger["month"]) <= month_index(pd.Series([month]))[0]]
    clock = time.perf_counter()
    model = fit_model(past, config)
    print(f"risk model on months up to {month}: {model.n_iter_} trees, "
          f"{time.perf_counter() - clock:.0f} s")

    top = max(SHARES) * args.households * args.grant
    timings = {}
    frames = {}
    for estimate in ("margin", "response"):
        clock = time.perf_counter()
        frames[estimate] = plan_frame(past, model, config, month, budget=top, grant=args.grant,
                                      estimate=estimate)
        timings[estimate] = time.perf_counter() - clock
    print(f"plan_frame: margin {timings['margin']:.0f} s, response {timings['response']:.0f} s")

    households = frames["margin"].households
    eligible = households[households["eligible"]]
    at = truth.set_index(truth["household_id"].astype(str))
    effect = (at["true_risk"] - at[f"true_risk_grant_{args.grant:g}"]).reindex(
        eligible["household_id"].astype(str))
    measure = f"grant_{args.grant:g}"
    again = second.set_index(second["household_id"].astype(str))
    effect_again = (again["true_risk"] - again[f"true_risk_grant_{args.grant:g}"]).reindex(
        effect.index)
    ceiling_effects = pd.DataFrame({"household_id": effect.index, "measure": measure,
                                    "cost": args.grant, "falls_prevented": effect.to_numpy()})
    # Poisson bootstrap over households: how far the comparisons could move in another county.
    weights = np.random.default_rng(0).poisson(1.0, (args.bootstrap, len(effect)))
    position = pd.Series(np.arange(len(effect)), index=effect.index)
    values = effect.fillna(0.0).to_numpy()

    def resampled(ids: pd.Series) -> np.ndarray:
        picked = position.reindex(ids.astype(str)).dropna().to_numpy(dtype=int)
        return weights[:, picked] @ values[picked]

    rows = []
    for share in SHARES:
        budget = share * args.households * args.grant
        row = {"share": share, "budget": budget}
        chosen = {}
        for estimate, name in (("margin", "plan"), ("response", "response")):
            plan = make_plan(frames[estimate].effects, budget)
            chosen[name] = plan["household_id"]
            row[name] = true_falls(plan["household_id"], effect)
            row[f"{name}_spent"] = float(plan["cost"].sum())
            if estimate == "margin":
                row["plan_model_estimate"] = float(plan["falls_prevented"].sum())
        for rule in ("income_cutoff", "risk_ranking"):
            row[rule], chosen[rule] = _rule_falls(rule, eligible, budget, args.grant, effect)
            row[f"{rule}_spent"] = min(len(eligible), int(budget // args.grant)) * args.grant
        ceiling = make_plan(ceiling_effects, budget)
        row["ceiling"] = true_falls(ceiling["household_id"], effect)
        # Scored on the independent futures: the ceiling without its own noise's gain, and
        # the plan on the same footing.
        row["ceiling_independent"] = true_falls(ceiling["household_id"], effect_again)
        row["plan_independent"] = true_falls(chosen["plan"], effect_again)
        row["ceiling_spent"] = float(ceiling["cost"].sum())
        chosen["ceiling"] = ceiling["household_id"]
        sampled = {name: resampled(ids) for name, ids in chosen.items()}
        for other in ("income_cutoff", "risk_ranking", "ceiling"):
            low, high = np.percentile(sampled["plan"] / sampled[other], [2.5, 97.5])
            row[f"plan_vs_{other}_95"] = f"{low:.3f}–{high:.3f}"
        rows.append(row)
    table = pd.DataFrame(rows)
    table["plan_vs_income_cutoff"] = table["plan"] / table["income_cutoff"]
    table["plan_vs_risk_ranking"] = table["plan"] / table["risk_ranking"]
    table["plan_vs_ceiling"] = table["plan"] / table["ceiling"]
    table["ceiling_vs_income_cutoff"] = table["ceiling"] / table["income_cutoff"]
    table["plan_vs_ceiling_independent"] = (table["plan_independent"]
                                            / table["ceiling_independent"])
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", "{:,.3f}".format):
        print(table[["share", "budget", *METHODS, "plan_model_estimate"]].to_string(index=False))
        print(table[["share", "plan_vs_income_cutoff", "plan_vs_income_cutoff_95",
                     "plan_vs_risk_ranking", "plan_vs_risk_ranking_95", "plan_vs_ceiling",
                     "plan_vs_ceiling_95", "ceiling_vs_income_cutoff"]].to_string(index=False))
        print("scored on independent futures of the same truth (the exact ceiling lies between "
              "ceiling_independent and ceiling):")
        print(table[["share", "plan_independent", "ceiling_independent",
                     "plan_vs_ceiling_independent"]].to_string(index=False))
    print(f"eligible households: {len(eligible):,} of {len(households):,}; "
          f"true falls the grant could prevent among them: {effect.clip(lower=0).sum():.1f}")
    _plot(table, args)
    return model


def _rule_falls(rule: str, eligible: pd.DataFrame, budget: float, grant: float,
                effect: pd.Series) -> tuple[float, pd.Series]:
    """True falls prevented by a rule, and its households: those compare_rules gives money."""
    per_household = pd.DataFrame({"household_id": eligible["household_id"].astype(str),
                                  "measure": "grant", "cost": grant})
    keys = {"income_cutoff": [eligible["income_pc"]],
            "risk_ranking": [-eligible["risk_score"], -eligible["risk_log_odds"]]}
    ranked = per_household.assign(**{f"key{i}": k.to_numpy() for i, k in enumerate(keys[rule])})
    ranked = ranked.sort_values([*[f"key{i}" for i in range(len(keys[rule]))], "household_id"],
                                kind="stable")
    n = int(np.floor(budget / grant + 1e-9))
    chosen = ranked["household_id"].iloc[:n]
    falls = true_falls(chosen, effect)
    # compare_rules prices the same households by the model; check it chose the same ones.
    check = compare_rules(per_household.assign(falls_prevented=effect.reindex(
        per_household["household_id"]).fillna(0.0).to_numpy()), eligible, budget, "grant")
    assert abs(check.loc[rule, "falls_prevented"] - falls) < 1e-6
    return falls, chosen


def _plot(table: pd.DataFrame, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"plan": ("#c0392b", "-", "o"), "response": ("#e67e22", "--", "s"),
              "risk_ranking": ("#2c3e50", "-.", "^"), "income_cutoff": ("#7f8c8d", ":", "v"),
              "ceiling": ("#27ae60", "-", "")}
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for name, label in METHODS.items():
        colour, line, marker = styles[name]
        spent = np.r_[0.0, table[f"{name}_spent"].to_numpy()] / 1e4
        ax.plot(spent, np.r_[0.0, table[name].to_numpy()], color=colour, linestyle=line,
                marker=marker, label=label, linewidth=2 if name == "plan" else 1.4)
    ax.set_xlabel("yuan spent (10,000 yuan); one-off grants of "
                  f"{args.grant:,.0f} yuan, 1%–20% of households")
    ax.set_ylabel("falls prevented (by the truth's true effects)")
    ax.set_title(f"Cost curve on a synthetic ledger of {args.households:,} households")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(args.plot)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")


def speed(args: argparse.Namespace, config, model: RiskModel) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clock = time.perf_counter()
        write(generate_ledger(households=args.speed_households, months=24, seed=args.seed + 1),
              folder / "ledger.parquet")
        gc.collect()
        print(f"speed ledger {args.speed_households:,} households × 24 months: "
              f"{time.perf_counter() - clock:.0f} s to generate and write")
        save_model(model, folder / "model")
        budget = 0.05 * args.speed_households * args.grant
        for grant in (args.grant, None):
            out = folder / ("out-grant" if grant else "out-measures")
            command = [sys.executable, "-c", PLAN_COMMAND, "plan",
                       "--ledger", str(folder / "ledger.parquet"), "--budget", f"{budget:.0f}",
                       "--model", str(folder / "model"), "--out", str(out)]
            if grant:
                command += ["--grant", f"{grant:.0f}"]
            # The command as an operator runs it: a fresh process, with its own peak memory.
            log = folder / "plan.log"
            with open(log, "w", encoding="utf-8") as handle:
                done = run_measured(command, stdout=handle, stderr=subprocess.STDOUT)
            took = done.seconds
            if done.returncode != 0:
                sys.exit(f"riskmodel plan failed ({done.returncode}):\n"
                         f"{log.read_text('utf-8')[-4000:]}")
            summary = json.loads(next(out.glob("*/plan_summary.json")).read_text("utf-8"))
            timings = summary["timings_s"]
            planned = took - timings["read_validate"]
            what = f"grant {grant:,.0f}" if grant else f"{len(config.measures)} measures"
            parts = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
            print(f"riskmodel plan, {summary['households_in_month']:,} households, {what}: "
                  f"{took:.0f} s in all, {planned:.0f} s after reading and validating ({parts}); "
                  f"{summary['households']:,} households chosen, solver "
                  f"{summary['solver']}, estimate {summary['effect_estimate']}; "
                  f"peak memory {done.peak_bytes / 2**30:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=54)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--grant", type=float, default=1500.0)
    parser.add_argument("--replicas", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--speed-households", type=int, default=1_000_000)
    parser.add_argument("--plot", default="docs/img/plan_cost_curve.png")
    parser.add_argument("--config", help="YAML config (the packaged default when absent)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    config = load_config(args.config)
    model = quality(args, config)
    if args.speed_households:
        speed(args, config, model)


if __name__ == "__main__":
    main()
