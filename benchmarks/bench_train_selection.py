"""`riskmodel train` with model selection: wall time, the candidates' table, the same model twice.

Run from the repository root (about ten minutes on a 2-core machine):

    python benchmarks/bench_train_selection.py [--households 20000] [--months 54] [--seed 0]
                                               [--config county.yaml] [--twice]

1. Generates a synthetic ledger and writes it as Parquet.
2. Runs the command ``riskmodel train --ledger … --tracking-uri sqlite:///…/mlruns.db`` in a
   fresh process (the default config, or ``--config``: ``model.selection`` as configured), with
   a fresh SQLite store, and times it end to end (target: ≤ 600 s for 20,000 households × 54
   months).
3. Prints the run's ``tables/selection.csv`` as a Markdown table: each candidate's mean over
   origins of the selection metric, its per-origin figures, pooled AP, recall at 5% and ECE,
   its cost, its seconds, and which was chosen, left out by the cost budget or stopped by the
   time cap; and the tag ``riskmodel.selection.machine_dependent``.
4. With ``--twice``, trains again in another fresh process and store, on one thread
   (``OMP_NUM_THREADS=1``) and while the first run's timings are gone: the machine differs,
   the ledger and config do not. It then compares the two runs: the candidates run and chosen,
   every figure of the selection table but the seconds, and the registered models'
   probabilities on every training row (the largest difference is printed; 0 is the same
   model).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel import load_config, validate_ledger
from riskmodel.synthetic import generate

TARGET_S = 600.0
TIMING = ("seconds", "estimated_seconds")


def _markdown(table: pd.DataFrame) -> str:
    origins = [c for c in table.columns if c.startswith("at_")]
    cols = ["candidate", "status", "mean", *origins, "ap", "recall_at_5pct", "ece", "cost",
            "seconds", "estimated_seconds", "overrides"]
    cols = [c for c in cols if c in table.columns]
    lines = ["| " + " | ".join(c.removeprefix("at_") for c in cols) + " |",
             "|" + "---|" * len(cols)]
    for row in table[cols].itertuples(index=False):
        cells = []
        for col, value in zip(cols, row, strict=True):
            if isinstance(value, float):
                cells.append("—" if pd.isna(value) else
                             f"{value:.0f}" if col.endswith("seconds") else
                             f"{value:.1f}" if col == "cost" else f"{value:.4f}")
            else:
                cells.append(str(value).replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _train(path: Path, folder: Path, config: Path | None, env: dict) -> tuple[float, int, str]:
    """One ``riskmodel train`` in a fresh process and store: seconds, exit code, store URI."""
    folder.mkdir()
    uri = f"sqlite:///{folder}/mlruns.db"
    command = [sys.executable, "-m", "riskmodel.cli", "train", "--ledger", str(path),
               "--tracking-uri", uri]
    if config is not None:
        command += ["--config", str(config)]
    t = time.perf_counter()
    done = subprocess.run(command, env=env, check=False)
    return time.perf_counter() - t, done.returncode, uri


def _report(uri: str, tmp: str):
    """The run of a store: prints its selection; returns (run, selection table or None)."""
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("return-to-poverty").experiment_id
    (run,) = client.search_runs([exp], max_results=1)
    if "selected_candidate" not in run.data.params:
        print("model.selection is disabled: the model block alone was trained")
        return run, None
    table = pd.read_csv(download_artifacts(run_id=run.info.run_id,
                                           artifact_path="tables/selection.csv",
                                           tracking_uri=uri, dst_path=tmp),
                        encoding="utf-8-sig")
    metric = table["metric"].iloc[0]
    metrics = run.data.metrics
    print(f"chosen: {run.data.params['selected_candidate']} by mean {metric} over origins; "
          f"{metrics['selection.seconds']:.0f} s of backtests; cost budget "
          f"{metrics['selection.max_cost']:g} ({metrics['selection.planned_cost']:.1f} "
          f"planned), time cap {metrics['selection.budget_s']:.0f} s; "
          f"machine_dependent={run.data.tags.get('riskmodel.selection.machine_dependent')}\n")
    print(_markdown(table))
    return run, table


def _compare(first, second, path: Path, config: Path | None, uris: list[str]) -> bool:
    """Whether the two runs chose, backtested and registered the same model (printed)."""
    from riskmodel.model import load_model, training_data

    (run_a, table_a), (run_b, table_b) = first, second
    same = run_a.data.params.get("selected_candidate") == run_b.data.params.get(
        "selected_candidate")
    if table_a is not None and table_b is not None:
        try:
            pd.testing.assert_frame_equal(table_a.drop(columns=list(TIMING)),
                                          table_b.drop(columns=list(TIMING)))
            print("selection tables: equal but for the seconds")
        except AssertionError as exc:
            same = False
            print(f"selection tables differ: {str(exc).splitlines()[0]}")
    models = [load_model(f"runs:/{run.info.run_id}/model", uri)[0]
              for run, uri in ((run_a, uris[0]), (run_b, uris[1]))]
    data = training_data(pd.read_parquet(path), load_config(config))
    probs = [m.predict_proba(data.features[list(m.feature_names_in_)])[:, 1] for m in models]
    gap = float(np.max(np.abs(probs[0] - probs[1])))
    print(f"registered models: {models[0].n_iter_} and {models[1].n_iter_} trees; largest "
          f"difference of probability over {len(probs[0]):,} training rows {gap:.3g}")
    same &= gap == 0.0
    print(f"same model on both: {'yes' if same else 'NO'}")
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=54)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--twice", action="store_true",
                        help="train again on one thread and compare the two models")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        data = generate(households=args.households, months=args.months, seed=args.seed)
        ledger = validate_ledger(data.ledger).valid
        path = Path(tmp) / "ledger.parquet"
        ledger.to_parquet(path)
        print(f"# bench_train_selection: {args.households} households × {args.months} months, "
              f"seed {args.seed}; ledger written in {time.perf_counter() - t:.0f} s")
        del data, ledger
        runs, uris = [], []
        settings = [("default threads", os.environ.copy())]
        if args.twice:
            settings.append(("one thread", {**os.environ, "OMP_NUM_THREADS": "1"}))
        for i, (label, env) in enumerate(settings):
            seconds, code, uri = _train(path, Path(tmp) / f"store{i}", args.config, env)
            print(f"\n## riskmodel train ({label}): {seconds:.0f} s (target ≤ {TARGET_S:.0f} "
                  f"s: {'met' if seconds <= TARGET_S else 'NOT met'}), exit code {code}")
            if code not in (0, 7):
                return code
            runs.append(_report(uri, tmp))
            uris.append(uri)
        if args.twice and not _compare(*runs, path, args.config, uris):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
