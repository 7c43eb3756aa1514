"""Benchmark the synthetic ledger and its Monte Carlo truth.

1. Generates a ledger of 1,000,000 households × 24 months (ledger only) with
   :func:`riskmodel.synthetic.generate_ledger` and reports the time and the peak memory of the
   process (targets: under 2 minutes and 8 GB on a 2-core machine).
2. Computes the truth of 20,000 households at one month, after a year of ledger, with
   :func:`riskmodel.synthetic.generate` (200 replicas, every cause and measure) and reports the
   time of the Monte Carlo alone (target: under 2 minutes).

Both report wall-clock and CPU seconds: on a shared machine the CPU time of this process is what
an idle machine's wall clock would show (the work is single-threaded numpy).

Run: ``python benchmarks/bench_synthetic.py [--households N] [--months M] [--truth-households T]
[--replicas R]``. Run it alone: it is meant to measure the machine, not to share it.
"""

from __future__ import annotations

import argparse
import resource
import time

from riskmodel import load_config
from riskmodel.synthetic import base_rates, generate, generate_ledger


def peak_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--truth-households", type=int, default=20_000)
    parser.add_argument("--replicas", type=int, default=200)
    args = parser.parse_args()
    config = load_config()
    horizon = config.label.horizon_months

    tic, cpu = time.perf_counter(), time.process_time()
    data = generate(args.truth_households, 12 + horizon, replicas=args.replicas)
    wall, spent = time.perf_counter() - tic, time.process_time() - cpu
    tic, cpu = time.perf_counter(), time.process_time()
    generate_ledger(args.truth_households, 12 + horizon)
    wall, spent = wall - (time.perf_counter() - tic), spent - (time.process_time() - cpu)
    rates = base_rates(data.ledger, config, data.truth)
    print(f"truth: {args.truth_households:,} households at one month, {args.replicas} replicas, "
          f"{sum(c.startswith('true_risk') for c in data.truth)} risk columns: Monte Carlo "
          f"{wall:.1f} s wall, {spent:.1f} s CPU; mean true risk of the non-poor "
          f"{rates['true_risk_not_poor']:.3f}")
    del data

    tic, cpu = time.perf_counter(), time.process_time()
    ledger = generate_ledger(args.households, args.months)
    wall, spent = time.perf_counter() - tic, time.process_time() - cpu
    print(f"ledger: {args.households:,} households × {args.months} months = {len(ledger):,} rows: "
          f"{wall:.1f} s wall, {spent:.1f} s CPU; frame "
          f"{ledger.memory_usage(deep=True).sum() / 2**30:.2f} GiB; process peak "
          f"{peak_gib():.2f} GiB")


if __name__ == "__main__":
    main()
