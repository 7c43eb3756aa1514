"""Benchmark of the monthly scoring job, end to end, on a synthetic ledger.

Writes a ``households × months`` synthetic ledger as Parquet, trains a model on a smaller
synthetic ledger (not timed), then times ``score_month`` — read, validate, features, score,
reasons for every household, write, MLflow — in a fresh process, and reports its wall time
and peak resident memory. Target: 1,000,000 households × 24 months under 5 minutes and 8 GB.

    python benchmarks/bench_score.py --households 1000000 --months 24
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from peak import run_measured

SCORE = """
import json, sys, time
start = time.perf_counter()
from riskmodel import score_month
result = score_month(sys.argv[1], sys.argv[2], model_uri=sys.argv[3], config_path=sys.argv[4],
                     tracking_uri=sys.argv[5])
print(json.dumps({"seconds": time.perf_counter() - start, "summary": result.summary}))
"""


def fit_model(valid, config):
    """A ``RiskModel`` of the config on every labelled row of a validated ledger, on one thread
    (training is not timed; one thread keeps it from fighting other jobs on a shared machine)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from riskmodel.model import RiskModel, build_features, make_labels

    features = build_features(valid, config)
    target = make_labels(valid, config)["target"].to_numpy()
    keep = ~np.isnan(target)
    with threadpool_limits(limits=1):
        return RiskModel.from_config(config, features=list(features.columns)).fit(
            features[keep], target[keep], months=valid["month"].to_numpy()[keep])


def _train(folder: Path, households: int, months: int) -> Path:
    from riskmodel import load_config, validate_ledger
    from riskmodel.model import save_model
    from riskmodel.synthetic import generate_ledger

    config = load_config()
    valid = validate_ledger(generate_ledger(households=households, months=months, seed=1)).valid
    model = fit_model(valid, config)
    print(f"model: {model.gbm_.n_iter_} trees")
    return save_model(model, folder / "model")


def prepare(folder: Path, households: int, months: int,
            train_households: int) -> tuple[Path, Path]:
    """The synthetic ledger (Parquet) and the saved model in ``folder``, made when absent and
    reused otherwise: ``(ledger path, model folder)``."""
    from riskmodel.synthetic import generate_ledger

    folder.mkdir(parents=True, exist_ok=True)
    ledger = folder / f"ledger-{households}x{months}.parquet"
    if not ledger.exists():
        tick = time.perf_counter()
        generate_ledger(households=households, months=months, seed=7).to_parquet(ledger)
        print(f"ledger: {households:,} households × {months} months written in "
              f"{time.perf_counter() - tick:.0f} s ({ledger.stat().st_size / 2**20:.0f} MiB)")
    model = folder / "model"
    if not model.exists():
        tick = time.perf_counter()
        _train(folder, train_households, 36)
        print(f"model: trained on {train_households:,} households × 36 months in "
              f"{time.perf_counter() - tick:.0f} s")
    return ledger, model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--chunk", type=int, help="scoring.chunk_households (default: config)")
    parser.add_argument("--train-households", type=int, default=10_000)
    parser.add_argument("--workdir", help="keep files here instead of a temporary folder")
    args = parser.parse_args(argv)

    import yaml

    from riskmodel.config import DEFAULT_CONFIG

    folder = Path(args.workdir or tempfile.mkdtemp(prefix="bench-score-"))
    ledger, model = prepare(folder, args.households, args.months, args.train_households)
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    if args.chunk:
        raw["scoring"]["chunk_households"] = args.chunk
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    out = Path(tempfile.mkdtemp(prefix="out-", dir=folder))

    # A fresh process with its own peak memory (the launcher keeps this process's, which may
    # hold the ledger it generated, out of the figure).
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stdout, \
            tempfile.TemporaryFile("w+", encoding="utf-8") as stderr:
        done = run_measured(
            [sys.executable, "-c", SCORE, str(ledger), str(out), str(model), str(config),
             f"sqlite:///{folder / 'mlruns.db'}"], stdout=stdout, stderr=stderr)
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read(), stderr.read()
    if done.returncode != 0:
        sys.exit(f"score_month failed ({done.returncode}):\n{errors[-4000:]}")
    report = json.loads(output.strip().splitlines()[-1])
    r = report["summary"]["reconciliation"]
    print(f"scored {r['rows_in']:,} households of {report['summary']['month']}: "
          f"{r['scored']:,} scored, {r['not_eligible']:,} not eligible, "
          f"{r['quarantined']:,} quarantined; {report['summary']['watchlist']['households']:,} "
          "on the watch list")
    print(f"end to end: {report['seconds']:.1f} s wall, "
          f"{done.cpu_seconds:.1f} s CPU, peak memory {done.peak_bytes / 2**30:.2f} GiB")
    for name, key in (("wall", "timings_s"), ("CPU", "cpu_s")):
        print(f"stages, {name} (s): " + ", ".join(
            f"{k} {v:.1f}" for k, v in report["summary"][key].items()))


if __name__ == "__main__":
    main()
