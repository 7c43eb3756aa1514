"""Benchmark the point-in-time features against the textbook pandas way.

1. Builds the features of the last month of a large ledger (default 1,000,000 households ×
   24 months) with :func:`riskmodel.model.build_features` and reports time and memory.
2. On a sample (default 20,000 households) builds the same features the textbook way — a full
   household × month reindex and ``groupby().rolling().apply`` with Python lambdas — checks the
   values agree, and reports the speed-up.

Run: ``python benchmarks/bench_features.py [--households N] [--months M] [--sample S]``.

``--stages LEDGER --model MODEL`` instead times the scoring job's stages on the first chunks of
a real ledger (a ledger folder of month files, say): each chunk validated and scored as the job
does (:func:`riskmodel.ledger.validate_chunk`, :func:`riskmodel.scoring.score_frame`), one
thread, and each stage's CPU seconds as ``summary.json`` records them (``cpu_s``), the least
of ``--repeat`` runs, per 100,000 households.
The ledger is made by a small vectorised generator of its own, with the validated ledger's
types, a few percent of months without a row and of months not visited (empty money cells).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import threading
import time
import warnings

import numpy as np
import pandas as pd

from riskmodel import load_config
from riskmodel.ledger import EVENTS, HOUSEHOLD_TYPES, INCOME, MEMBER_COUNTS, SPENDING
from riskmodel.model import (
    EVENT_NAMES,
    EXTREME_SOURCES,
    FEATURE_NAMES,
    LOOKBACK,
    RECORDED_FEATURES,
    SOURCES,
    build_features,
    poverty_lines,
)
from riskmodel.months import month_index


def make_ledger(
    households: int, months: int, start: str = "2024-01", seed: int = 0, first_id: int = 0
) -> pd.DataFrame:
    """A validated-ledger-shaped frame, vectorised over households and months."""
    rng = np.random.default_rng(seed)
    per_house = np.arange(first_id, first_id + households)
    labels = pd.period_range(start, periods=months, freq="M").strftime("%Y-%m")
    keep = rng.random(households * months) > 0.03
    house = np.repeat(np.arange(households), months)[keep]
    step = np.tile(np.arange(months), households)[keep]
    n = len(house)

    def text(values: list[str] | np.ndarray, codes: np.ndarray) -> pd.Series:
        return pd.Series(pd.array(np.asarray(values, dtype=object), dtype="string")).take(codes)\
            .reset_index(drop=True)

    members = rng.integers(1, 7, households)
    labor_full = np.minimum(rng.integers(0, 3, households), members)
    labor_partial = np.minimum(rng.integers(0, 2, households), members - labor_full)
    frame = {
        "household_id": text([f"H{i:07d}" for i in per_house], house),
        "month": text(list(labels), step),
        "province": text(["云南省"], np.zeros(n, dtype="int64")),
        "county": text([f"县{i}" for i in range(4)], house % 4),
        "township": text([f"乡{i}" for i in range(20)], house % 20),
        "village": text([f"村{i}" for i in range(160)], house % 160),
        "household_type": text(list(HOUSEHOLD_TYPES), house % 3),
        "members": members[house],
        "labor_full": labor_full[house],
        "labor_partial": labor_partial[house],
    }
    for col in MEMBER_COUNTS[2:]:
        frame[col] = np.minimum(rng.poisson(0.3, households), members)[house]
    frame["disabled_severe"] = np.minimum(frame["disabled_severe"], frame["disabled"])
    scale = rng.lognormal(7.3, 0.5, households)[house]
    frame["inc_wage"] = np.round(scale * rng.lognormal(0, 0.3, n) * (rng.random(n) > 0.1), 0)
    frame["inc_business"] = np.round(rng.normal(300, 400, n), 0)
    frame["inc_property"] = np.round(rng.exponential(40, n), 0)
    frame["inc_transfer"] = np.round(rng.exponential(150, n), 0)
    frame["exp_medical_oop"] = np.round(rng.exponential(200, n) * (rng.random(n) < 0.2), 0)
    frame["exp_education"] = np.round(rng.exponential(150, n) * (rng.random(n) < 0.3), 0)
    unvisited = rng.random(n) < 0.05
    for col in [*INCOME, *SPENDING]:
        frame[col] = np.where(unvisited | (rng.random(n) < 0.01), np.nan, frame[col])
    for col in ["insured_all", "housing_safe", "water_safe", "dibao", "welfare_job"]:
        frame[col] = pd.arrays.BooleanArray(rng.random(n) < 0.8, rng.random(n) < 0.02)
    frame["dropouts"] = (rng.random(households) < 0.01).astype("int64")[house]
    frame["temp_assistance"] = np.where(rng.random(n) < 0.02, 1000.0, 0.0)
    for ev in EVENTS:
        frame[ev] = pd.arrays.BooleanArray(rng.random(n) < 0.01, np.zeros(n, dtype=bool))
    return pd.DataFrame(frame)


# The features the textbook way builds: those of incomes as recorded read columns this ledger
# does not have.
TEXTBOOK = [n for n in FEATURE_NAMES if n not in RECORDED_FEATURES]


def textbook_features(ledger: pd.DataFrame, config, month: str) -> pd.DataFrame:
    """The same features, the way a first notebook would write them (for comparison only)."""
    min_obs = {w: max(1, -(-config.label.min_observed_months * w // 12)) for w in (3, 6, 12)}
    periods = pd.period_range(ledger["month"].min(), month, freq="M").strftime("%Y-%m")
    full = pd.MultiIndex.from_product([ledger["household_id"].unique(), periods],
                                      names=["household_id", "month"])
    df = ledger.set_index(["household_id", "month"]).reindex(full).reset_index()
    observed = df[INCOME].notna().any(axis=1)
    df["observed"] = observed.astype(float)
    for src, col in SOURCES.items():
        df[src] = df[col].fillna(0).where(observed)
    df["net"] = (df[INCOME].fillna(0).sum(axis=1) - df[SPENDING].fillna(0).sum(axis=1))\
        .where(observed)
    g = df.groupby("household_id", sort=False)

    def roll(column: str, w: int, fn) -> pd.Series:
        return g[column].rolling(w, min_periods=1).apply(fn, raw=True).reset_index(level=0,
                                                                                     drop=True)

    def slope(x: np.ndarray) -> float:
        ok = ~np.isnan(x)
        return np.polyfit(np.arange(len(x))[ok], x[ok], 1)[0] if ok.sum() >= 2 else np.nan

    def since(x: np.ndarray) -> float:
        hits = np.flatnonzero(x > 0)
        return float(min(len(x) - 1 - hits[-1], LOOKBACK)) if len(hits) else float(LOOKBACK)

    n_obs = {w: roll("observed", w, lambda x: np.nansum(x)) for w in (3, 6, 12)}
    sums = {(s, w): roll(s, w, lambda x: np.nansum(x)) for s in [*SOURCES, "net"]
            for w in (3, 6, 12)}

    def extreme(fn):
        return lambda x: fn(x) if (~np.isnan(x)).any() else np.nan

    lows = {(s, w): roll(s, w, extreme(np.nanmin)) for s in ("net", *EXTREME_SOURCES)
            for w in (3, 6, 12)}
    highs = {(s, w): roll(s, w, extreme(np.nanmax)) for s in ("net", *EXTREME_SOURCES)
             for w in (3, 6, 12)}
    spread = {s: roll(s, 12, lambda x: np.nanstd(x, ddof=1)) for s in ("net", "wage", "business")}
    slopes = {s: roll(s, 12, slope) for s in ("net", "wage", "business")}
    events = {}
    for name, ev in zip(EVENT_NAMES, EVENTS, strict=True):
        flag = df[ev].astype(float).fillna(0)
        df[ev + "_f"] = flag
        events[name, "3m"] = roll(ev + "_f", 3, lambda x: x.sum())
        events[name, "12m"] = roll(ev + "_f", 12, lambda x: x.sum())
        events[name, "since"] = roll(ev + "_f", LOOKBACK + 1, since)
    df["dibao_f"] = df["dibao"].astype(float)
    dibao = roll("dibao_f", 12, lambda x: np.nansum(x) if (~np.isnan(x)).any() else np.nan)
    temp = roll("temp_assistance", 12, lambda x: np.nansum(x) if (~np.isnan(x)).any() else np.nan)
    last_obs = roll("observed", LOOKBACK + 1, since)

    at = (df["month"] == month) & df["household_type"].notna()
    row = df[at]
    members = row["members"].astype(float)
    line = pd.Series(poverty_lines(config, month_index(row["month"]) // 12,
                                   row["province"], row["county"]), index=row.index)
    f = {}

    def pc(src: str, w: int) -> pd.Series:
        value = sums[src, w][at] * 12 / n_obs[w][at] / members
        return value.where(n_obs[w][at] >= min_obs[w])

    for w in (3, 6, 12):
        f[f"income_ratio_{w}m"] = pc("net", w) / line
        f[f"income_margin_{w}m"] = pc("net", w) - line
    for src in SOURCES:
        for w in (3, 6, 12):
            f[f"{src}_pc_{w}m"] = pc(src, w)
    f["income_change_3v12"] = pc("net", 3) - pc("net", 12)
    for src in ("wage", "business", "transfer", "medical", "education"):
        f[f"{src}_change_3v12"] = pc(src, 3) - pc(src, 12)
    for src in ("wage", "business"):
        f[f"{src}_change_rel_3v12"] = (pc(src, 3) / pc(src, 12) - 1).where(pc(src, 12) > 0)
    enough = n_obs[12][at] >= min_obs[12]
    for name, src in (("income", "net"), ("wage", "wage"), ("business", "business")):
        f[f"{name}_slope_12m"] = (slopes[src][at] * 12 / members).where(enough)
        f[f"{name}_volatility_12m"] = (spread[src][at] * 12 / members).where(enough)
    gross = sum(sums[s, 12][at] for s in ("wage", "business", "property", "transfer"))
    for src in ("transfer", "medical", "education"):
        f[f"{src}_share_12m"] = (sums[src, 12][at] / gross).where(enough & (gross > 0))
    for col in ["members", "chronic_ill", "serious_ill", "disabled", "disabled_severe",
                "students_compulsory", "students_noncompulsory", "migrant_workers", "dropouts"]:
        f[col] = row[col].astype(float)
    f["labor_ratio"] = (row["labor_full"] + 0.5 * row["labor_partial"]) / members
    f["no_labor"] = ((row["labor_full"] + row["labor_partial"]) == 0).astype(float)
    f["dependant_ratio"] = (row["elderly"] + row["children"]) / members
    f["elderly_ratio"] = row["elderly"] / members
    f["migrant_ratio"] = row["migrant_workers"] / members
    for name in EVENT_NAMES:
        f[f"ev_{name}_3m"] = events[name, "3m"][at]
        f[f"ev_{name}_12m"] = events[name, "12m"][at]
    for name in EVENT_NAMES:
        f[f"months_since_ev_{name}"] = events[name, "since"][at]
    for col in ["insured_all", "housing_safe", "water_safe", "dibao", "welfare_job"]:
        f[col] = row[col].astype(float)
    f["dibao_months_12m"] = dibao[at]
    f["temp_assistance_pc_12m"] = temp[at] / members
    for t in HOUSEHOLD_TYPES:
        f[f"type_{t}"] = (row["household_type"] == t).astype(float)
    f["observed_months_12m"] = n_obs[12][at]
    f["months_since_observed"] = last_obs[at]
    years = [pl.year for pl in config.poverty_lines]

    def line_ahead(r: pd.Series) -> float:
        t = pd.Period(r["month"], "M")
        return max(config.line_for(min(max((t + k).year, min(years)), max(years)),
                                   province=r["province"], county=r["county"])
                   for k in range(1, config.label.horizon_months + 1))

    ahead = row.apply(line_ahead, axis=1)
    f["line_ahead_ratio"] = ahead / line
    f["income_ratio_ahead_12m"] = pc("net", 12) / ahead
    for w in (3, 6, 12):
        known = n_obs[w][at] >= min_obs[w]
        for s, table in (("min", lows), ("max", highs)):
            f[f"income_ratio_{s}_{w}m"] = (table["net", w][at] * 12 / members / line).where(known)
            for src in EXTREME_SOURCES:
                f[f"{src}_pc_{s}_{w}m"] = (table[src, w][at] * 12 / members).where(known)
    out = pd.DataFrame({k: np.asarray(v, dtype="float64") for k, v in f.items()})
    out.index = row["household_id"].to_numpy()
    return out[TEXTBOOK]


class PeakRSS:
    """Peak resident memory of this process while the block runs, sampled every 20 ms."""

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def time_stages(ledger: str, model_uri: str, config_path: str | None, month: str | None,
                chunks: int, repeat: int) -> None:
    """Print each scoring stage's CPU seconds per 100,000 households on the first ``chunks``
    chunks of ``ledger`` (least of ``repeat`` runs), one thread."""
    import pyarrow as pa
    from threadpoolctl import threadpool_limits

    from riskmodel.ledger import LedgerChunks, validate_chunk
    from riskmodel.model import load_model
    from riskmodel.scoring import score_frame

    config = load_config(config_path)
    config = config.model_copy(update={
        "scoring": config.scoring.model_copy(update={"threads": 1})})
    model, _ = load_model(model_uri)
    source = LedgerChunks(ledger, config.scoring.chunk_households)
    month = month or source.months[-1]
    read = list(source.read_chunks(0, chunks))
    households = 0
    best: dict[str, float] = {}
    pa.set_cpu_count(1)
    with threadpool_limits(1):
        for k in range(repeat):
            laps: dict[str, float] = {}
            for rows, raw in read:
                chunk = validate_chunk(raw, rows, month, source.month_of_row[rows])
                frames = score_frame(chunk.valid, model, config, month)
                for name, seconds in {**chunk.timings, **frames.timings}.items():
                    if name.startswith("cpu:"):
                        laps[name[4:]] = laps.get(name[4:], 0.0) + seconds
                if not k:
                    households += len(frames.scores)
            best = {name: min(best.get(name, np.inf), seconds) for name, seconds in laps.items()}
    per = 100_000 / households
    four = sum(best.get(s, 0.0) for s in ("validate", "status", "features", "flags"))
    print(f"{households:,} households of {month} in {len(read)} chunk(s); CPU seconds per "
          f"100,000 households, least of {repeat}:")
    for name, seconds in best.items():
        print(f"  {name:10s} {seconds * per:6.2f}")
    print(f"  validate + status + features + flags: {four * per:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", metavar="LEDGER",
                        help="time the scoring stages on this ledger's first chunks instead")
    parser.add_argument("--model", help="with --stages: the model (folder or URI)")
    parser.add_argument("--config", help="with --stages: the config (default: packaged)")
    parser.add_argument("--month", help="with --stages: the month (default: the last)")
    parser.add_argument("--chunks", type=int, default=1, help="with --stages")
    parser.add_argument("--repeat", type=int, default=3, help="with --stages")
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--chunk-households", type=int, default=0,
                        help="make and featurise the large ledger this many households at a "
                             "time, as a scoring job does, instead of all in memory")
    parser.add_argument("--skip-textbook", action="store_true")
    args = parser.parse_args()
    if args.stages:
        if not args.model:
            parser.error("--stages needs --model")
        time_stages(args.stages, args.model, args.config, args.month, args.chunks, args.repeat)
        return
    config = load_config()
    gib = 2**30

    if args.chunk_households and not args.skip_large:
        took = cpu = 0.0
        rows = 0
        for k, first in enumerate(range(0, args.households, args.chunk_households)):
            size = min(args.chunk_households, args.households - first)
            ledger = make_ledger(size, args.months, seed=k, first_id=first)
            t0, c0 = time.perf_counter(), time.process_time()
            features = build_features(ledger, config, months=[ledger["month"].max()])
            took, cpu = took + time.perf_counter() - t0, cpu + time.process_time() - c0
            rows += len(features)
            del ledger, features
            gc.collect()
        print(f"large ledger in chunks of {args.chunk_households:,} households: "
              f"{args.households:,} households x {args.months} months; build_features, last "
              f"month: {rows:,} rows in {took:.1f} s ({cpu:.1f} s CPU) over all chunks")
    elif not args.skip_large:
        t0 = time.perf_counter()
        ledger = make_ledger(args.households, args.months)
        made = time.perf_counter() - t0
        gc.collect()
        size = ledger.memory_usage(deep=True).sum()
        last = ledger["month"].max()
        with PeakRSS() as mem:
            t0, c0 = time.perf_counter(), time.process_time()
            features = build_features(ledger, config, months=[last])
            took, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"large ledger: {args.households:,} households x {args.months} months, "
              f"{len(ledger):,} rows, {size / gib:.2f} GiB in memory (made in {made:.0f} s)")
        print(f"build_features, last month: {len(features):,} rows x {features.shape[1]} "
              f"features in {took:.1f} s ({cpu:.1f} s CPU); memory peak "
              f"{mem.peak / gib:.2f} GiB for the process, "
              f"{(mem.peak - mem.start) / gib:.2f} GiB above the ledger")
        del ledger, features
        gc.collect()

    if not args.skip_textbook:
        ledger = make_ledger(args.sample, args.months, seed=1)
        last = ledger["month"].max()
        t0, c0 = time.perf_counter(), time.process_time()
        fast = build_features(ledger, config, months=[last])
        fast_s, fast_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            slow = textbook_features(ledger, config, last)
        slow_s, slow_cpu = time.perf_counter() - t0, time.process_time() - c0
        fast.index = ledger.loc[fast.index, "household_id"].to_numpy()
        assert fast[RECORDED_FEATURES].isna().all().all()
        fast = fast[TEXTBOOK]
        slow = slow.loc[fast.index]
        np.testing.assert_allclose(fast.to_numpy(), slow.to_numpy(), rtol=1e-9, atol=1e-6,
                                   equal_nan=True)
        print(f"sample: {args.sample:,} households x {args.months} months; vectorised "
              f"{fast_s:.2f} s ({fast_cpu:.2f} s CPU), textbook {slow_s:.1f} s "
              f"({slow_cpu:.1f} s CPU): {slow_s / fast_s:.0f}x faster "
              f"({slow_cpu / fast_cpu:.0f}x in CPU time); {fast.size:,} values agree "
              f"(rtol 1e-9, atol 1e-6)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"process peak resident memory: {peak / gib:.2f} GiB")


if __name__ == "__main__":
    main()
