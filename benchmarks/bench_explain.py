"""Reasons for every household of a month: exact TreeSHAP, causes, text and measures at scale.

Reads a ``households × months`` synthetic ledger (written as Parquet on the first run) chunk by
chunk as the scoring job does, validates it and builds the month's features (not timed), then
times :func:`riskmodel.explain.explain_households` — exact TreeSHAP of the gbm log-odds, the
sharing out per cause, the consistency rules, the ranking, the Chinese and English reason text
and the measures — for **every** household of the last month, poor or not. Beside it, plain
prediction of the same rows (the floor) and ``shap.TreeExplainer`` on a sample of the same
model's rows: its rows/s and the largest difference from ours. The risk the explanations are
given (it decides which households also get counterfactual cause weights) is the prediction's,
as in the scoring job.
Target: 1,000,000 households in under 60 seconds on 2 cores.

    python benchmarks/bench_explain.py --households 1000000 --months 24 --workdir bench-data

The model and the ledger are those of ``bench_score.py`` (same file names), so one work folder
serves both.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--chunk", type=int, default=100_000, help="households per chunk")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compare-rows", type=int, default=2_000,
                        help="rows explained by shap.TreeExplainer too")
    parser.add_argument("--train-households", type=int, default=10_000)
    parser.add_argument("--workdir", help="keep files here instead of a temporary folder")
    args = parser.parse_args(argv)

    import shap
    from bench_score import prepare

    from riskmodel import load_config, validate_ledger
    from riskmodel.explain import explain_households, feature_contributions
    from riskmodel.ledger import LedgerChunks
    from riskmodel.model import build_features, load_model

    folder = Path(args.workdir or tempfile.mkdtemp(prefix="bench-explain-"))
    ledger, saved = prepare(folder, args.households, args.months, args.train_households)
    model, _ = load_model(str(saved))
    config = load_config()
    names = list(model.feature_names_in_)

    chunks = LedgerChunks(ledger, args.chunk)
    month = chunks.months[-1]
    explained = predict_s = explain_s = 0.0
    first_call = None
    sample = None
    for _, raw in chunks:
        valid = validate_ledger(raw).valid
        del raw
        features = build_features(valid, config, months=[month])
        X = features[names]
        rows = valid.loc[features.index]
        tick = time.perf_counter()
        risk = model.predict_proba(X)[:, 1]
        predict_s += time.perf_counter() - tick
        tick = time.perf_counter()
        reasons = explain_households(model, X, rows, config, n_jobs=args.threads, history=valid,
                                     risk=risk)
        seconds = time.perf_counter() - tick
        first_call = seconds if first_call is None else first_call
        explain_s += seconds
        explained += len(reasons)
        if sample is None:
            sample = X.iloc[:args.compare_rows]
        print(f"  {explained:>9,.0f} households explained, {explain_s:6.1f} s", flush=True)

    print(f"\nmonth {month}: {explained:,.0f} households (every household of the month)")
    print(f"reasons for all (explain_households, {args.threads} threads): {explain_s:.1f} s, "
          f"{explained / explain_s:,.0f} households/s; the first chunk, which builds the "
          f"TreeSHAP tables, {first_call:.1f} s")
    print(f"plain prediction of the same rows (the floor): {predict_s:.1f} s")

    tick = time.perf_counter()
    theirs = shap.TreeExplainer(model.gbm_).shap_values(sample)
    shap_s = time.perf_counter() - tick
    ours, _ = feature_contributions(model, sample)
    print(f"shap.TreeExplainer on {len(sample):,} rows of the same model: {shap_s:.1f} s, "
          f"{len(sample) / shap_s:,.0f} rows/s, so {explained / (len(sample) / shap_s) / 60:.0f} "
          f"minutes for the month")
    print(f"largest absolute difference from shap.TreeExplainer: "
          f"{np.abs(ours.to_numpy() - theirs).max():.1e}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak memory of the process: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
