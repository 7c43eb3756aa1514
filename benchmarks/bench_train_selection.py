"""`riskmodel train` with model selection: wall time and the candidates' table.

Run from the repository root (about ten minutes on a 2-core machine):

    python benchmarks/bench_train_selection.py [--households 20000] [--months 54] [--seed 0]
                                               [--config county.yaml]

1. Generates a synthetic ledger and writes it as Parquet.
2. Runs the command ``riskmodel train --ledger … --tracking-uri sqlite:///…/mlruns.db`` in a
   fresh process (the default config, or ``--config``: ``model.selection`` as configured), with
   a fresh SQLite store, and times it end to end (target: ≤ 600 s for 20,000 households × 54
   months).
3. Prints the run's ``tables/selection.csv`` as a Markdown table: each candidate's mean over
   origins of the selection metric, its per-origin figures, pooled AP, recall at 5% and ECE,
   its seconds, and which was chosen or skipped for the budget.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from riskmodel import validate_ledger
from riskmodel.synthetic import generate

TARGET_S = 600.0


def _markdown(table: pd.DataFrame) -> str:
    origins = [c for c in table.columns if c.startswith("at_")]
    cols = ["candidate", "status", "mean", *origins, "ap", "recall_at_5pct", "ece", "seconds",
            "estimated_seconds", "overrides"]
    cols = [c for c in cols if c in table.columns]
    lines = ["| " + " | ".join(c.removeprefix("at_") for c in cols) + " |",
             "|" + "---|" * len(cols)]
    for row in table[cols].itertuples(index=False):
        cells = []
        for col, value in zip(cols, row, strict=True):
            if isinstance(value, float):
                cells.append("—" if pd.isna(value) else
                             f"{value:.0f}" if col.endswith("seconds") else f"{value:.4f}")
            else:
                cells.append(str(value).replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=54)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path, default=None)
    args = parser.parse_args(argv)

    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        data = generate(households=args.households, months=args.months, seed=args.seed)
        ledger = validate_ledger(data.ledger).valid
        path = Path(tmp) / "ledger.parquet"
        ledger.to_parquet(path)
        print(f"# bench_train_selection: {args.households} households × {args.months} months, "
              f"seed {args.seed}; ledger written in {time.perf_counter() - t:.0f} s")
        del data, ledger
        uri = f"sqlite:///{tmp}/mlruns.db"
        command = [sys.executable, "-m", "riskmodel.cli", "train", "--ledger", str(path),
                   "--tracking-uri", uri]
        if args.config is not None:
            command += ["--config", str(args.config)]
        t = time.perf_counter()
        done = subprocess.run(command, env=os.environ.copy(), check=False)
        seconds = time.perf_counter() - t
        print(f"\n## riskmodel train: {seconds:.0f} s (target ≤ {TARGET_S:.0f} s: "
              f"{'met' if seconds <= TARGET_S else 'NOT met'}), exit code {done.returncode}")
        if done.returncode not in (0, 7):
            return done.returncode
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name("return-to-poverty").experiment_id
        (run,) = client.search_runs([exp], max_results=1)
        if "selected_candidate" not in run.data.params:
            print("model.selection is disabled: the model block alone was trained")
            return 0
        table = pd.read_csv(download_artifacts(run_id=run.info.run_id,
                                               artifact_path="tables/selection.csv",
                                               tracking_uri=uri, dst_path=tmp),
                            encoding="utf-8-sig")
        metric = table["metric"].iloc[0]
        print(f"chosen: {run.data.params['selected_candidate']} by mean {metric} over origins; "
              f"{run.data.metrics['selection.seconds']:.0f} s of backtests in a budget of "
              f"{run.data.metrics['selection.budget_s']:.0f} s\n")
        print(_markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
