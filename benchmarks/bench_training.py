"""Training quality and time on a synthetic ledger with a known truth.

Run from the repository root (several minutes on a 2-core machine):

    python benchmarks/bench_training.py [--households 20000] [--months 54] [--seed 0]

1. Generates the ledger and its truth: ``true_risk`` at the last month with a full horizon
   ahead (the prediction month).
2. Quality, the issue's protocol: a model trained only on the months before the prediction
   month scores its eligible households; recall and precision at caseloads, average precision,
   calibration — against today's rules and the true risk (the ceiling).
3. The same with the label embargo (training labels realised by the prediction month), as a
   model trained in production would be.
4. Times ``riskmodel.model.train`` on the whole ledger with the default config: labels,
   features, the three-origin backtest, the final fit and the MLflow run.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time

from riskmodel import load_config, validate_ledger
from riskmodel.model import backtest, time_splits, train, training_data
from riskmodel.model._training import _truth_for
from riskmodel.synthetic import generate

TARGETS = (
    ("recall@5% ≥ 1.6 × rules", lambda m: m["model_recall_at_5pct"]
     >= 1.6 * m["rules_recall_at_5pct"]),
    ("recall@5% within 0.08 of ceiling", lambda m: m["model_recall_at_5pct"]
     >= m["truth_recall_at_5pct"] - 0.08),
    ("AP within 0.10 of ceiling", lambda m: m["model_ap"] >= m["truth_ap"] - 0.10),
    ("mean predicted within ±10% of realised", lambda m: abs(
        m["model_mean_predicted"] / m["model_observed_rate"] - 1) <= 0.10),
    ("ECE ≤ 0.01", lambda m: m["model_ece"] <= 0.01),
)
SHOWN = ("auc", "ap", "brier", "ece", "mean_predicted", "observed_rate", "recall_at_2pct",
         "precision_at_2pct", "recall_at_5pct", "precision_at_5pct", "recall_at_10pct",
         "precision_at_10pct")


def _quality(data, true_risk, config, embargo: bool) -> tuple[dict, object]:
    splits = time_splits(data.months, origins=1, test_months=1,
                         horizon=config.label.horizon_months, label_embargo=embargo)
    result = backtest(data.features, data.target, data.months, config,
                      households=data.households, groups=data.groups, true_risk=true_risk,
                      splits=splits)
    return result.summary(), result


def _print_quality(title: str, summary: dict, result) -> None:
    split = result.splits[0]
    print(f"\n## {title}")
    print(f"prediction month {split.origin}, trained on months up to {split.train_last}, "
          f"{int(summary['model_rows'])} eligible households, "
          f"{int(summary['model_positives'])} fell within the horizon; "
          f"calibration: {result.calibration}")
    scorers = ("model", "scorecard", "rules", "rules_income", "truth")
    print("| metric | " + " | ".join(scorers) + " |")
    print("|---" * (len(scorers) + 1) + "|")
    for key in SHOWN:
        cells = [f"{summary[f'{s}_{key}']:.4f}" if f"{s}_{key}" in summary else "—"
                 for s in scorers]
        print(f"| {key} | " + " | ".join(cells) + " |")
    ci = result.intervals.set_index(["scorer", "metric"])
    for scorer in ("model", "rules", "truth"):
        if (scorer, "recall_at_5pct") in ci.index:
            low, high = ci.loc[(scorer, "recall_at_5pct"), ["low", "high"]]
            print(f"{scorer} recall@5% 95% bootstrap interval: [{low:.3f}, {high:.3f}]")
    for scorer in ("model", "truth"):
        recall = summary[f"{scorer}_recall_at_5pct"]
        print(f"{scorer} recall@5% lift: {recall / summary['rules_recall_at_5pct']:.2f}× "
              f"today's rules, {recall / summary['rules_income_recall_at_5pct']:.2f}× the rules "
              "ranked by income")
    for name, check in TARGETS:
        print(f"- {name}: {'met' if check(summary) else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=54)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-train", action="store_true", help="quality only, no timing")
    args = parser.parse_args(argv)

    config = load_config()
    t = time.perf_counter()
    data = generate(households=args.households, months=args.months, seed=args.seed)
    ledger = validate_ledger(data.ledger).valid
    print(f"# bench_training: {args.households} households × {args.months} months, "
          f"seed {args.seed}; ledger and truth made in {time.perf_counter() - t:.0f} s")

    rows = training_data(ledger, config)
    true_risk = _truth_for(data.truth, rows, ledger, config)
    for title, embargo in (("Quality: trained on the months before the prediction month", False),
                           ("Quality with the label embargo (production)", True)):
        t = time.perf_counter()
        summary, result = _quality(rows, true_risk, config, embargo)
        _print_quality(title, summary, result)
        print(f"({time.perf_counter() - t:.0f} s)")
    del rows

    if not args.skip_train:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            trained = train(ledger, config, tracking_uri=f"sqlite:///{tmp}/mlruns.db",
                            alias="champion")
            seconds = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"\n## riskmodel train on the whole ledger\n{seconds:.0f} s "
              f"(target < 300 s), {trained.model.n_iter_} trees, calibration "
              f"{trained.backtest.calibration}, peak memory of the process {peak:.1f} GB")
        print(f"backtest origins {[s.origin for s in trained.backtest.splits]}: model recall@5% "
              f"{trained.model.summary_['model_recall_at_5pct']:.3f}, rules "
              f"{trained.model.summary_['rules_recall_at_5pct']:.3f}, ECE "
              f"{trained.model.summary_['model_ece']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
