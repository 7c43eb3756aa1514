"""Speed and exactness of ``riskmodel.explain._treeshap`` against ``shap.TreeExplainer``.

Fits a 200-tree, 31-leaf HistGradientBoostingClassifier on synthetic numeric data (fixed seed),
then reports rows/s of shap.TreeExplainer on a sample, the time to build the look-up tables,
rows/s, time and peak memory of explaining all rows with one and two jobs, and the largest
absolute difference from shap on the rows both explained.

    .venv/bin/python benchmarks/bench_treeshap.py             # 1,000,000 rows
    .venv/bin/python benchmarks/bench_treeshap.py --rows 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import threading
import time

import numpy as np
import shap
from sklearn.ensemble import HistGradientBoostingClassifier

from riskmodel.explain import TreeShapExplainer


def make_data(n: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Household-like numeric columns: smooth, coarse and count-valued, with some missing."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    X[:, 5:10] = np.round(X[:, 5:10] * 2)
    X[:, 10:15] = rng.poisson(2.0, size=(n, 5))
    logit = (
        X[:, 0]
        - 0.8 * X[:, 1] ** 2
        + np.sin(2 * X[:, 2])
        + 0.5 * X[:, 3] * X[:, 4]
        + 0.3 * X[:, 5:15].sum(axis=1)
        - 0.1 * X[:, 15:25].sum(axis=1)
        - 3.0
    )
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    X[rng.random((n, n_features)) < 0.02] = np.nan
    return X, y


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed(func, *args, **kwargs):
    """Result, wall seconds, CPU seconds (all threads) and peak resident memory above the
    level before the call (MiB).

    Memory is sampled every 5 ms from /proc (tracemalloc would slow the Python-heavy parts
    several-fold and distort the timing).
    """
    before = _rss_mib()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, _rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = func(*args, **kwargs)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    done.set()
    sampler.join()
    return result, seconds, cpu, max(peak, _rss_mib()) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to explain")
    parser.add_argument("--shap-rows", type=int, default=5_000, help="rows for shap")
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--leaves", type=int, default=31)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} before the run")
    X_train, y_train = make_data(args.train_rows, args.features, args.seed)
    model = HistGradientBoostingClassifier(
        max_iter=args.trees, max_leaf_nodes=args.leaves, early_stopping=False,
        random_state=args.seed,
    ).fit(X_train, y_train)
    X, _ = make_data(args.rows, args.features, args.seed + 1)
    n_shap = min(args.shap_rows, args.rows)
    print(f"model: {len(model._predictors)} trees, <= {args.leaves} leaves, "
          f"{args.features} features; explaining {args.rows:,} rows\n")
    print(f"{'step':34s} {'wall s':>8s} {'CPU s':>8s} {'rows/s':>10s} {'+MiB':>6s}")

    def report(step: str, rows: int, seconds: float, cpu: float, peak: float) -> None:
        rate = f"{rows / seconds:10,.0f}" if rows else " " * 10
        print(f"{step:34s} {seconds:8.2f} {cpu:8.2f} {rate} {peak:6.0f}")

    _, seconds, cpu, peak = timed(model.predict_proba, X)
    report("predict_proba (all rows)", args.rows, seconds, cpu, peak)

    reference = shap.TreeExplainer(model)
    expected, seconds, cpu, peak = timed(reference.shap_values, X[:n_shap])
    report(f"shap.TreeExplainer ({n_shap:,} rows)", n_shap, seconds, cpu, peak)

    explainer, build_seconds, cpu, peak = timed(TreeShapExplainer, model)
    report("TreeShapExplainer(model)", 0, build_seconds, cpu, peak)

    results = {}
    for n_jobs in (1, 2):
        results[n_jobs], seconds, cpu, peak = timed(explainer.shap_values, X, n_jobs=n_jobs)
        report(f"shap_values, n_jobs={n_jobs}", args.rows, seconds, cpu, peak)
        total = build_seconds + seconds
        print(f"{'  with the build':34s} {total:8.2f} {'':8s} {args.rows / total:10,.0f}")

    base = explainer.expected_value
    diff = float(np.abs(results[1][:n_shap] - expected).max())
    same = bool(np.array_equal(results[1], results[2]))
    additivity = float(np.abs(results[1].sum(axis=1) + base - model.decision_function(X)).max())
    shap_base = float(np.ravel(reference.expected_value)[0])
    print(f"\nmax |tree_shap - shap| on {n_shap:,} rows: {diff:.3e}")
    print(f"expected value: tree_shap {base:.15f}, shap {shap_base:.15f}")
    print(f"max additivity error on all rows: {additivity:.3e}; n_jobs=2 identical: {same}")
    print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
          f"; load average {os.getloadavg()[0]:.1f} after the run")


if __name__ == "__main__":
    main()
