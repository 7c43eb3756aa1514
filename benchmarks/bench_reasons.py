"""Right causes: do the reasons name the cause that, taken away, would lift the risk?

A model is trained on one synthetic ledger and explains the households of another whose truth
is known: at the truth months, ``true_cause`` is the cause whose removal lowers the true risk
most (``structural`` when none removes half of it). Among households not poor at the month
with true risk ≥ 0.25, the script reports how often ``reason_1`` is the true cause, how often
the true cause is among ``reason_1..3``, how often a ``structural`` household gets 缺劳动力 or
收入偏低 first, and the confusion table (true cause × ``reason_1``), as Markdown for
``docs/explanations.md``. Over every household explained, it reports the share of the reasons
spelt out in the texts that the figures those texts quote contradict
(:func:`riskmodel.explain.text_contradictions`; the target is none).

The truth is a Monte Carlo estimate (``--replicas`` futures per household and scenario). Where
two causes each remove nearly all of the risk, a small estimate picks between them by its own
noise, and no explanation can agree with that noise: the fewer the replicas, the lower the
measured rate. ``--second-truth`` draws a second, independent estimate of the same truth and
prints how often the two name the same true cause, and the rate measured against the second.

Run from the repository root (about 15 minutes on 2 cores, 10 of them for the truth's 4,000
replicas; each further estimate of the truth as long)::

    .venv/bin/python benchmarks/bench_reasons.py --households 20000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from riskmodel import load_config, validate_ledger
from riskmodel.explain import (
    cause_contributions,
    contradiction_share,
    explain_month,
    household_facts,
    rank_causes,
    valid_causes,
)
from riskmodel.model import RiskModel, build_features, training_data
from riskmodel.synthetic import CAUSES, generate, generate_ledger

STRUCTURAL_REASONS = ("labor_shortage", "income")
# Offset of the seed of the second, independent Monte Carlo estimate of the truth.
INDEPENDENT = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=20000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--start", default="2022-01")
    parser.add_argument("--truth-months", default="2024-03,2024-06")
    parser.add_argument("--replicas", type=int, default=4000,
                        help="Monte Carlo futures per household and scenario of the truth")
    parser.add_argument("--second-truth", action="store_true",
                        help="also score against an independent estimate of the same truth")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--min-risk", type=float, default=0.25)
    parser.add_argument("--config", help="YAML config (the packaged default when absent)")
    parser.add_argument("--cache", help="folder to keep the trained model and the synthetic "
                                            "ledger in, and to reuse them from on a re-run")
    args = parser.parse_args()
    config = load_config(args.config)
    cache = Path(args.cache) if args.cache else None
    months = args.truth_months.split(",")
    if cache is not None and (cache / "model.joblib").is_file():
        model = joblib.load(cache / "model.joblib")
        ledger = validate_ledger(pd.read_parquet(cache / "ledger.parquet")).valid
    else:
        model, ledger = prepare(args, config)
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            joblib.dump(model, cache / "model.joblib")
            ledger.to_parquet(cache / "ledger.parquet")
    truth = true_causes(args, config, months, cache)
    truth = truth.set_index(["household_id", "month"])

    frames = []
    for month in months:
        started = time.perf_counter()
        explained = explain_month(model, ledger, config, month).reset_index()
        print(f"explained {len(explained):,} households of {month} in "
              f"{time.perf_counter() - started:.1f} s")
        explained["plain_reason_1"] = plain_first_reasons(model, ledger, config, month)
        frames.append(explained)
    explained = pd.concat(frames, ignore_index=True)
    contradicted, named = contradiction_share(explained, config)
    print(f"reasons spelt out in the texts of all {len(explained):,} households explained: "
          f"{named:,}, of which {contradicted:,} ({contradicted / max(named, 1):.2%}) "
          "contradicted by the figures their text quotes")
    keys = pd.MultiIndex.from_frame(explained[["household_id", "month"]])
    without = [f"true_risk_without_{cause}" for cause in CAUSES]
    columns = ["true_risk", "true_cause", "poor_complete", *without]
    chosen = report(explained.join(truth.loc[keys, columns].reset_index(drop=True)),
                    args.min_risk)
    contradicted, named = contradiction_share(chosen, config)
    print(f"of them, reasons spelt out contradicted by their text's figures: {contradicted} of "
          f"{named}")
    if args.second_truth:
        second = true_causes(args, config, months, cache, truth_seed=args.seed + 1 + INDEPENDENT)
        second = second.set_index(["household_id", "month"])["true_cause"].astype(str)
        pairs = pd.MultiIndex.from_frame(chosen[["household_id", "month"]])
        first_truth = chosen["true_cause"].astype(str).to_numpy()
        other = second.loc[pairs].to_numpy()
        caused = first_truth != "structural"
        reason_1 = chosen["reason_1"].astype("string").fillna("(none)").to_numpy(dtype=object)
        right = (reason_1 == other)[other != "structural"].mean()
        print(f"\nan independent estimate of the truth ({args.replicas} replicas) names the same "
              f"true cause for {(other == first_truth)[caused].mean():.1%} of the households "
              f"with a true cause ({(other == first_truth).mean():.1%} of all {len(chosen):,}); "
              f"against it, reason_1 = true cause for {right:.1%}")


def plain_first_reasons(model, ledger: pd.DataFrame, config, month: str) -> np.ndarray:
    """``reason_1`` from TreeSHAP summed through the feature → cause map alone, for comparison."""
    features = build_features(ledger, config, months=[month])
    rows = ledger.loc[features.index]
    plain, _ = cause_contributions(model, features[list(model.feature_names_in_)], config)
    codes, _ = rank_causes(plain, valid_causes(household_facts(rows, config, ledger), config),
                           config)
    return codes[:, 0]


def prepare(args: argparse.Namespace, config):
    """Train on one synthetic ledger; generate the ledger to explain."""
    clock = time.perf_counter()
    train_ledger = validate_ledger(generate_ledger(args.households, args.months, args.start,
                                                   seed=args.seed)).valid
    data = training_data(train_ledger, config)
    # One OpenMP thread: on a shared 2-core machine competing threads slow the fit tenfold.
    with threadpool_limits(1):
        model = RiskModel.from_config(config, list(data.features.columns)).fit(
            data.features, data.target, months=data.months)
    print(f"trained on {len(data.target):,} rows in {time.perf_counter() - clock:.0f} s")
    ledger = generate_ledger(args.households, args.months, args.start, seed=args.seed + 1)
    return model, validate_ledger(ledger).valid


def true_causes(args: argparse.Namespace, config, months: list[str], cache: Path | None,
                truth_seed: int | None = None) -> pd.DataFrame:
    """The truth of the explained ledger at ``months`` (kept in ``cache`` per replica count
    and truth seed)."""
    name = f"truth-{args.replicas}r" + ("" if truth_seed is None else f"-{truth_seed}")
    path = None if cache is None else cache / f"{name}.parquet"
    if path is not None and path.is_file():
        return pd.read_parquet(path)
    clock = time.perf_counter()
    truth = generate(args.households, args.months, args.start, seed=args.seed + 1,
                     truth_months=months, replicas=args.replicas, truth_seed=truth_seed).truth
    print(f"truth at {', '.join(months)}, {args.replicas} replicas, in "
          f"{time.perf_counter() - clock:.0f} s")
    if path is not None:
        truth.to_parquet(path)
    return truth


def report(explained: pd.DataFrame, min_risk: float) -> pd.DataFrame:
    """Print the right-cause rates and the confusion table as Markdown; return the households
    they are measured on."""
    chosen = explained[explained["poor_complete"].eq(False)
                       & (explained["true_risk"] >= min_risk)]
    true = chosen["true_cause"].astype(str).to_numpy()
    top = (chosen[["reason_1", "reason_2", "reason_3"]].astype("string").fillna("(none)")
           .to_numpy(dtype=object))
    first = pd.Series(top[:, 0])
    caused = true != "structural"
    hit_1 = (first.to_numpy() == true)[caused].mean()
    hit_3 = (top == true[:, None]).any(axis=1)[caused].mean()
    structural = np.isin(first.to_numpy()[~caused], STRUCTURAL_REASONS).mean()
    plain = chosen["plain_reason_1"].to_numpy(dtype=object)
    plain_hit = (plain == true)[caused].mean()
    plain_structural = np.isin(plain[~caused], STRUCTURAL_REASONS).mean()
    print(f"\nhouseholds: {len(chosen):,} (not poor, true risk ≥ {min_risk}), "
          f"{caused.sum():,} with a true cause, {(~caused).sum():,} structural")
    print(f"reason_1 = true cause: {hit_1:.1%}")
    print(f"true cause in reason_1..3: {hit_3:.1%}")
    print(f"structural → 缺劳动力 or 收入偏低 first: {structural:.1%}")
    print(f"for comparison, TreeSHAP summed through the cause map alone: reason_1 = true cause "
          f"{plain_hit:.1%}, structural → 缺劳动力 or 收入偏低 {plain_structural:.1%}")
    # Two causes can each remove nearly all of the risk; the truth's replicas then pick one.
    drops = np.column_stack([chosen["true_risk"] - chosen[f"true_risk_without_{cause}"]
                             for cause in CAUSES])
    named = np.array([CAUSES.index(c) if c in CAUSES else -1 for c in first], dtype=int)
    named_drop = np.where(named >= 0, drops[np.arange(len(named)), np.maximum(named, 0)], 0.0)
    wrong = caused & (first.to_numpy() != true)
    tie = wrong & (named_drop >= 0.9 * drops.max(axis=1))
    print(f"wrong first causes: {wrong.sum()}, of which {tie.sum()} name a cause whose removal "
          f"takes away at least 90% as much true risk as the true cause's (near ties)\n")
    table = pd.crosstab(pd.Series(true, name="true cause"),
                        pd.Series(first.to_numpy(), name="reason_1"))
    table["n"] = table.sum(axis=1)
    print(markdown(table))
    return chosen


def markdown(table: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (index as the first column)."""
    head = [table.index.name or "", *map(str, table.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in table.iterrows():
        lines.append("| " + " | ".join([str(name), *map(str, row.tolist())]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
