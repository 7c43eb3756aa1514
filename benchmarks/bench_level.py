"""The calibration level after the cut-off: chain ladder (shipped) against a credibility weight.

For each process and seed, the product model is fitted as ``bench_processes.py`` fits it
(``RiskModel`` on the labelled rows up to the cut-off) with the level off; its calibrated
log-odds are then shifted by each way of reading the falls seen after the labelled months
(:func:`riskmodel.model.recent_falls`), and the mean predicted risk at the scoring month T is
compared with the realised fall rate there (the truth's ``target_complete``):

- ``none``: no shift;
- ``chain``: the shipped level, ratio = falls seen / falls expected by each row's lead
  (:func:`riskmodel.model.level_ratio`, ``model.level_months``);
- ``weighted``: a Bornhuetter–Ferguson credibility weight, ratio = 1 + (seen − expected by
  now) / expected over the whole horizon: the seen falls count only in the share of the horizon
  they cover.

Prints one line a ledger and, per seed, the mean |log(predicted / realised)| and the count
within ±10% of each. The realised falls do not depend on the truth's replicas, so few are used.

Run from the repository root (about 10 s a ledger on 2 cores)::

    python benchmarks/bench_level.py [--processes default,seasonal,...] [--seeds 11,12]
        [--households 2000] [--months 48]

The figures are recorded in ``docs/training.md`` ("A credibility-weighted level").
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from bench_processes import fit_product, process_config, simulate

from riskmodel import load_config, validate_ledger
from riskmodel.model import (
    build_features,
    level_ratio,
    log_odds_shift,
    model_inputs,
    recent_falls,
)
from riskmodel.model._level import shifted
from riskmodel.months import month_index, month_label

# The processes choices may look at (docs/processes.md); the held-out ones are not read here.
CHOOSABLE = "default,seasonal,long-bills,volatile-wages,return-migration"
WAYS = ("none", "chain", "weighted")


def ledger_ratios(name: str, seed: int, args, base) -> dict[str, float]:
    """Mean predicted / realised at T of one process and seed, for each way of reading."""
    config = process_config(name, base)
    h = config.label.horizon_months
    last = int(month_index(pd.Series([args.start]))[0]) + args.months - 1
    truth_month, cutoff = str(month_label(last - h)), str(month_label(last - 2 * h))
    sim = argparse.Namespace(households=args.households, months=args.months, start=args.start,
                             seed=seed, replicas=args.replicas, grant=1500.0)
    data = simulate(name, sim, config, truth_month)
    ledger = validate_ledger(data.ledger).valid
    past = ledger[np.asarray(month_index(ledger["month"])) <= month_index(
        pd.Series([truth_month]))[0]]
    truth = data.truth[data.truth["month"].astype(str) == truth_month]
    truth = truth.set_index(truth["household_id"].astype(str))
    off = config.model_copy(update={"model": config.model.model_copy(
        update={"level_months": 0})})
    model = fit_product(past, off, cutoff, with_train=False)

    feats = build_features(past, config, months=[truth_month])
    ids = past.loc[feats.index, "household_id"].astype(str).to_numpy()
    risk_at_t = pd.Series(model.predict_proba(model_inputs(model, feats))[:, 1], index=ids)
    judged = truth[truth["target_complete"].notna()]
    risk_at_t = risk_at_t.reindex(judged.index)
    known = risk_at_t.notna().to_numpy()
    realised = judged["target_complete"].to_numpy(dtype="float64")[known].mean()
    risk_at_t = risk_at_t.to_numpy()[known]

    recent = recent_falls(past, config)
    risk = model.predict_proba(recent.features)[:, 1]
    chain, seen, expected_now = level_ratio(risk, recent.fell, recent.lead, recent.development)
    ratios = {"none": 1.0, "chain": chain,
              "weighted": 1.0 + (seen - expected_now) / float(risk.sum())}
    return {way: float(shifted(risk_at_t, log_odds_shift(risk, r)).mean() / realised)
            for way, r in ratios.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", default=CHOOSABLE)
    parser.add_argument("--seeds", default="11,12")
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--start", default="2022-01")
    parser.add_argument("--replicas", type=int, default=20)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    base = load_config()
    for seed in (int(s) for s in args.seeds.split(",")):
        by_way = {way: [] for way in WAYS}
        for name in args.processes.split(","):
            clock = time.perf_counter()
            ratios = ledger_ratios(name, seed, args, base)
            for way in WAYS:
                by_way[way].append(ratios[way])
            print(f"seed {seed} {name:18s} predicted / realised: "
                  + ", ".join(f"{way} {ratios[way]:.3f}" for way in WAYS)
                  + f" ({time.perf_counter() - clock:.0f} s)", flush=True)
        print(f"seed {seed}: mean |log(predicted / realised)| "
              + ", ".join(f"{way} {np.mean(np.abs(np.log(r))):.3f}" for way, r in by_way.items())
              + "; within ±10%: "
              + ", ".join(f"{way} {int(np.sum(np.abs(np.asarray(r) - 1) <= 0.10))}"
                          for way, r in by_way.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
