"""Quality across processes: the score, the reasons and the plan on every household process.

For each process of :data:`riskmodel.synthetic.PROCESSES` (or those ``--processes`` names), a
synthetic ledger of ``--households`` × ``--months`` is generated with its truth at the last
month with a full horizon ahead (T). Both models learn on the labelled rows of months up to the
cut-off T − horizon (label embargo: every training label is realised by T, as in production)
from the ledger up to T, and score every household at T:

- **the product**: :class:`riskmodel.model.RiskModel` fitted as ``riskmodel train`` fits its
  final model (``--train``: :func:`riskmodel.model.train` itself, with its backtest and, where
  configured, its model selection), explained by :func:`riskmodel.explain.explain_month`;
- **the generic reference** (``generic_reference.py``): boosting over several hundred generic
  point-in-time features, tuned on the months the product validates and calibrates on.

Judged against the truth at T, on the households not poor at T (the truth's complete-data label
``target_complete``, the true falls): recall at the 5% caseload and average precision of both
and of the true risk (the ceiling); the product's mean predicted probability against the
realised fall rate, the mean true risk and the ledger's own label at T (the observed months'
falls, which the model is calibrated to); right causes among households not poor with a true
risk ≥ ``--min-risk`` (as ``bench_regimes.py`` and ``bench_reasons.py`` judge them:
``reason_1`` = true cause, the true cause among ``reason_1..3``, a ``structural`` household
read as 收入偏低/缺劳动力, and per true cause); and the plan (:func:`riskmodel.plan.plan_frame`,
one-off grants of ``--grant`` yuan, budgets of 1% to 20% of the households) scored by the
truth's true effects (``true_risk − true_risk_grant_<grant>``) beside, at the same budget and
among the same eligible households, the income cut-off, ranking by the same model's risk,
ranking by the true risk and the ceiling (the largest true effects; a Monte Carlo estimate, so
slightly flattered by its own noise, see ``bench_plan.py``).

Processes marked ``held_out`` in their specification are reported in a separate table: no
choice of features, hyperparameters, reason rules or plan settings may be made looking at
them. Each process's figures are compared with the targets of issue #26 (met / NOT met).

Run from the repository root (defaults: 4,000 households × 48 months, 200 replicas; about
10 minutes per process on 2 shared cores, most of it the reference's grid)::

    python benchmarks/bench_processes.py [--processes default,seasonal] [--households 4000]
        [--months 48] [--seed 11] [--replicas 200] [--plot docs/img/robustness.png]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from bench_plan import _rule_falls, true_falls
from generic_reference import fit_reference, generic_features, training_rows
from right_causes import cause_interval, right_causes, structural_interval
from threadpoolctl import threadpool_limits

from riskmodel import load_config, validate_ledger
from riskmodel.explain import explain_month
from riskmodel.model import (
    RiskModel,
    build_features,
    make_labels,
    model_features,
    model_inputs,
    recent_falls,
    scorer_metrics,
    train,
    training_data,
)
from riskmodel.months import month_index, month_label
from riskmodel.plan import make_plan, plan_frame
from riskmodel.synthetic import PROCESSES, generate, load_process

CASELOAD = 0.05
SHARES = (0.01, 0.02, 0.05, 0.10, 0.15, 0.20)
# A cause judged on fewer households than this is reported but not held to the target.
MIN_CAUSE_N = 10
TARGETS = {
    "reason_1": 0.85, "top_3": 0.95, "structural": 0.75, "per_cause": 0.75,
    "calibration": 0.10, "plan_vs_risk": 1.05, "plan_vs_true_risk": 0.90,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default=",".join(PROCESSES),
                        help="comma-separated process names (default: every packaged one)")
    parser.add_argument("--households", type=int, default=4000)
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--start", default="2022-01")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--replicas", type=int, default=200,
                        help="Monte Carlo futures per household and scenario of the truth")
    parser.add_argument("--grant", type=float, default=1500.0)
    parser.add_argument("--min-risk", type=float, default=0.25)
    parser.add_argument("--reference-rows", type=int, default=20_000,
                        help="rows each setting of the reference's grid learns on at most")
    parser.add_argument("--reference-refit-rows", type=int, default=120_000,
                        help="rows the reference's refit learns on at most (the product's "
                             "model.max_train_rows)")
    parser.add_argument("--bootstrap", type=int, default=500,
                        help="bootstrap resamples of households for the intervals of the "
                             "product's lead over the reference")
    parser.add_argument("--train", action="store_true",
                        help="fit the product with riskmodel.model.train (backtest, model "
                             "selection where configured) instead of RiskModel directly")
    parser.add_argument("--reference-cache", metavar="DIR",
                        help="keep the reference's scores here, by a digest of the ledger, the "
                             "config and the reference's code and settings, and reuse them: "
                             "reruns that change only the product skip the reference's grid")
    parser.add_argument("--level-months", type=int, metavar="N",
                        help="model.level_months for the product (default: the config's)")
    parser.add_argument("--plot", help="write the chart to this PNG")
    parser.add_argument("--json", help="write every process's figures to this JSON file")
    parser.add_argument("--from-json", nargs="+", metavar="FILE",
                        help="print the tables and draw the chart from the JSON files of "
                             "earlier runs (of the same sizes) instead of running")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    names = [n.strip() for n in args.processes.split(",") if n.strip()]
    config = load_config()
    if args.level_months is not None:
        config = config.model_copy(update={"model": config.model.model_copy(
            update={"level_months": args.level_months})})
    h = config.label.horizon_months
    last = int(month_index(pd.Series([args.start]))[0]) + args.months - 1
    truth_month = str(month_label(last - h))
    cutoff = str(month_label(last - 2 * h))
    started = time.perf_counter()
    rows = []
    if args.from_json:
        rows = [r for path in args.from_json for r in json.loads(Path(path).read_text("utf-8"))]
        names = []  # nothing to run
        print(f"# bench_processes: the figures of {', '.join(args.from_json)}")
    else:
        print(f"# bench_processes: {args.households:,} households × {args.months} months from "
              f"{args.start}, seed {args.seed}; truth at {truth_month} ({args.replicas} "
              f"replicas); trained on label months ≤ {cutoff}; processes {', '.join(names)}",
              flush=True)
    for name in names:
        clock = time.perf_counter()
        # One OpenMP thread: on a shared 2-core machine competing threads slow the fits.
        with threadpool_limits(1):
            row = run_process(name, args, config, truth_month, cutoff)
        row["seconds"] = time.perf_counter() - clock
        print(f"process {name}: {row['seconds']:.0f} s", flush=True)
        rows.append(row)
    for held, title in ((False, "Processes choices may be made on"),
                        (True, "Held-out processes")):
        chosen = [r for r in rows if r["held_out"] == held]
        if not chosen:
            continue
        print(f"\n## {title}\n")
        print(report(chosen))
    print("\n## Targets (issue #26)\n")
    for row in rows:
        for line in targets(row):
            print(line)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\ntotal {time.perf_counter() - started:.0f} s, peak memory {peak:.1f} GB")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=_plain), "utf-8")
    if args.plot:
        plot(rows, args)
        print(f"chart written to {args.plot}")
    return 0


def held_out(name: str) -> bool:
    """Whether the process's specification marks it held out."""
    return bool(load_process(name).held_out)


def process_config(name: str, config):
    """The config a county living under the process would keep: its own poverty lines where
    the process changes them (``Process.apply_lines``), else ``config`` as it is."""
    return load_process(name).apply_lines(config)


def simulate(name: str, args, config, truth_month: str):
    """The process's ledger with its truth at ``truth_month``."""
    return generate(args.households, args.months, args.start, seed=args.seed,
                    truth_months=[truth_month], replicas=args.replicas,
                    grant_amounts=(args.grant,), config=config, process=name)


def run_process(name: str, args, config, truth_month: str, cutoff: str) -> dict:
    """Every figure of one process."""
    row = {"process": name, "held_out": held_out(name), "households": args.households,
           "months": args.months, "seed": args.seed, "replicas": args.replicas,
           "truth_month": truth_month}
    config = process_config(name, config)
    clock = time.perf_counter()
    data = simulate(name, args, config, truth_month)
    ledger = validate_ledger(data.ledger).valid
    t = int(month_index(pd.Series([truth_month]))[0])
    past = ledger[np.asarray(month_index(ledger["month"])) <= t]
    truth = data.truth[data.truth["month"].astype(str) == truth_month]
    truth = truth.set_index(truth["household_id"].astype(str))
    print(f"  {name}: ledger and truth {time.perf_counter() - clock:.0f} s", flush=True)

    clock = time.perf_counter()
    model = fit_product(past, config, cutoff, args.train)
    row["product_trees"] = int(model.n_iter_)
    row["product_seconds"] = time.perf_counter() - clock
    explained = explain_month(model, past, config, truth_month).drop(columns="month")
    explained.index = explained.index.astype(str)
    feats = build_features(past, config, months=[truth_month])
    ids = past.loc[feats.index, "household_id"].astype(str).to_numpy()
    explained["log_odds"] = pd.Series(
        model.decision_function(model_inputs(model, feats)), index=ids).reindex(explained.index)
    print(f"  {name}: product {row['product_trees']} trees, scored and explained "
          f"{time.perf_counter() - clock:.0f} s", flush=True)

    clock = time.perf_counter()
    reference = reference_scores(past, config, truth_month, cutoff, args)
    row.update({k: v for k, v in reference.items() if k not in ("score", "grid")})
    row["reference_seconds"] = time.perf_counter() - clock
    print(f"  {name}: reference {reference['reference']} {row['reference_seconds']:.0f} s"
          f"{' (cached)' if reference['cached'] else ''}", flush=True)

    judged = truth[truth["target_complete"].notna()].join(explained, how="inner")
    judged["reference"] = reference["score"].reindex(judged.index).to_numpy()
    judged["reference_grid"] = reference["grid"].reindex(judged.index).to_numpy()
    row.update(scores(judged, args.bootstrap, args.seed))
    row.update(on_scored_households(ledger, config, truth_month, judged, args.bootstrap,
                                    args.seed))
    row.update(causes(truth.join(explained, how="inner"), args.min_risk))

    clock = time.perf_counter()
    row.update(plans(past, model, config, truth_month, truth, args))
    print(f"  {name}: plans {time.perf_counter() - clock:.0f} s", flush=True)
    return row


def on_scored_households(ledger: pd.DataFrame, config, truth_month: str,
                         judged: pd.DataFrame, draws: int, seed: int) -> dict:
    """The figures of :func:`scores` again (keys ``labelled_…``) on the judged households with
    a label of the ledger's own at T — those the monthly job scores, not poor by the observed
    months — with that label's rate (what a county records: falls read from the observed
    months, H months on). The model is calibrated to this label, not to the truth's."""
    at = ledger["month"].astype(str).to_numpy() == truth_month
    label = pd.Series(make_labels(ledger, config)["target"].to_numpy()[at],
                      index=ledger["household_id"].astype(str).to_numpy()[at])
    known = label.reindex(judged.index).dropna()
    on = scores(judged.loc[known.index], draws, seed)
    return {**{f"labelled_{k}": v for k, v in on.items()},
            "ledger_label_rate": float(known.mean())}


def reference_scores(past: pd.DataFrame, config, truth_month: str, cutoff: str, args) -> dict:
    """The generic reference's scores at ``truth_month`` (refitted and grid-only), its setting
    and tuning; from ``args.reference_cache`` where an earlier run left them for the same
    ledger, config, reference code and settings."""
    path = None
    if args.reference_cache:
        digest = hashlib.sha256()
        digest.update(pd.util.hash_pandas_object(past, index=True).to_numpy().tobytes())
        # What the reference reads of the config: the label, the lines, the held-out months.
        digest.update(json.dumps([config.label.model_dump(mode="json"),
                                  [pl.model_dump(mode="json") for pl in config.poverty_lines],
                                  config.model.validation_months,
                                  config.model.calibration_months]).encode())
        digest.update(Path(__file__).with_name("generic_reference.py").read_bytes())
        digest.update(json.dumps([truth_month, cutoff, args.reference_rows,
                                  args.reference_refit_rows, args.seed]).encode())
        path = Path(args.reference_cache) / f"reference-{digest.hexdigest()[:24]}"
        if path.with_suffix(".parquet").exists() and path.with_suffix(".json").exists():
            scores = pd.read_parquet(path.with_suffix(".parquet"))
            meta = json.loads(path.with_suffix(".json").read_text("utf-8"))
            return {**meta, "score": scores["score"], "grid": scores["grid"], "cached": True}
    features, target, months = training_rows(past, config, cutoff)
    reference = fit_reference(features, target, months, config, max_rows=args.reference_rows,
                              refit_rows=args.reference_refit_rows, seed=args.seed)
    del features
    at = generic_features(past, config, months=[truth_month])
    ids = past.loc[at.index, "household_id"].astype(str).to_numpy()
    scores = pd.DataFrame({"score": reference.predict_proba(at),
                           "grid": reference.predict_proba(at, refitted=False)}, index=ids)
    meta = {"reference": reference.params,
            "reference_validation_months": (f"{reference.validation_months[0]}–"
                                            f"{reference.validation_months[-1]}"),
            "reference_tuning": reference.tuning.to_dict("records")}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        scores.to_parquet(path.with_suffix(".parquet"))
        path.with_suffix(".json").write_text(json.dumps(meta, default=_plain), "utf-8")
    return {**meta, "score": scores["score"], "grid": scores["grid"], "cached": False}


def fit_product(past: pd.DataFrame, config, cutoff: str, with_train: bool) -> RiskModel:
    """The product model on the labelled rows of months ≤ ``cutoff`` of ``past``."""
    if with_train:
        return train(past, config, track=False).model
    data = training_data(past, config)
    keep = np.asarray(month_index(pd.Series(data.months))) <= month_index(
        pd.Series([cutoff]))[0]
    inputs = model_features(data.features.columns, config)
    model = RiskModel.from_config(config, inputs).fit(
        data.features.loc[keep, inputs], data.target[keep], months=data.months[keep])
    recent = recent_falls(past, config) if config.model.level_months else None
    if recent is not None and recent.usable:
        # As train does: the level of the falls seen after the labelled months, up to T.
        model.follow_level(recent)
    return model


def scores(judged: pd.DataFrame, draws: int, seed: int) -> dict:
    """Recall at the 5% caseload, AP and calibration of the product, the reference and the
    true risk, against the true falls; 95% intervals of the product's lead over the reference
    from a paired Poisson bootstrap over households (``draws`` resamples)."""
    y = judged["target_complete"].to_numpy(dtype="float64")
    month = judged["month"].astype(str).to_numpy()
    tag = "recall_at_5pct"

    def metrics(column: str, weight=None, tiebreak=None) -> dict:
        return scorer_metrics(y, judged[column], judged[column], month, (CASELOAD,),
                              weight=weight, tiebreak=tiebreak)

    product = metrics("risk_score", tiebreak=judged["log_odds"])
    reference = metrics("reference")
    grid = metrics("reference_grid")
    ceiling = metrics("true_risk")
    rng = np.random.default_rng(seed)
    lead = np.empty((draws, 2))
    for d in range(draws):
        w = rng.poisson(1.0, len(y)).astype("float64")
        a = metrics("risk_score", w, judged["log_odds"])
        b = metrics("reference", w)
        lead[d] = a[tag] - b[tag], a["ap"] - b["ap"]
    if draws:
        low, high = np.percentile(lead, [2.5, 97.5], axis=0)
    else:
        low = high = np.full(2, np.nan)
    return {
        "recall5_lead_95": [float(low[0]), float(high[0])],
        "ap_lead_95": [float(low[1]), float(high[1])],
        "recall5_reference_grid": grid[tag], "ap_reference_grid": grid["ap"],
        "judged": len(judged), "falls": int(y.sum()),
        "recall5_product": product[tag], "recall5_reference": reference[tag],
        "recall5_ceiling": ceiling[tag],
        "ap_product": product["ap"], "ap_reference": reference["ap"], "ap_ceiling": ceiling["ap"],
        "mean_pred": product["mean_predicted"], "mean_pred_reference":
            reference["mean_predicted"], "fall_rate": product["observed_rate"],
        "mean_true_risk": float(judged["true_risk"].mean()),
    }


def causes(both: pd.DataFrame, min_risk: float) -> dict:
    """Right causes among households not poor at the month with a true risk ≥ ``min_risk``
    (``right_causes.right_causes``, as ``bench_regimes.py`` judges them), with 95% intervals
    of ``reason_1`` = true cause and of structural households read as 收入偏低/缺劳动力 from a
    bootstrap over households."""
    rates = right_causes(both, min_risk)
    del rates["confusion"]  # a table the JSON of the figures does not hold
    # Its distinct households among "caused" (one month here: "caused" itself) would replace
    # the row's "households", the ledger's size, which the plot's title reads.
    del rates["households"]
    judged = both.assign(household_id=both.index.astype(str))
    rates["reason_1_95"] = list(cause_interval(judged, min_risk, draws=1000))
    rates["structural_95"] = list(structural_interval(judged, min_risk, draws=1000))
    return rates


def plans(past: pd.DataFrame, model, config, month: str, truth: pd.DataFrame, args) -> dict:
    """Falls the plan truly prevents at each budget, beside the rules and the ceilings."""
    top = max(SHARES) * args.households * args.grant
    frames = plan_frame(past, model, config, month, budget=top, grant=args.grant)
    households = frames.households
    eligible = households[households["eligible"]]
    ids = eligible["household_id"].astype(str)
    effect = (truth["true_risk"] - truth[f"true_risk_grant_{args.grant:g}"]).reindex(ids)
    true_risk = truth["true_risk"].reindex(ids)
    ceiling_effects = pd.DataFrame({"household_id": effect.index, "measure": "grant",
                                    "cost": args.grant, "falls_prevented": effect.to_numpy()})
    by_true_risk = pd.Series(ids.to_numpy())[
        np.lexsort((ids.to_numpy(), -true_risk.fillna(-1).to_numpy()))]
    table = []
    for share in SHARES:
        budget = share * args.households * args.grant
        n = int(np.floor(budget / args.grant + 1e-9))
        entry = {"share": share,
                 "plan": true_falls(make_plan(frames.effects, budget)["household_id"], effect)}
        for rule in ("income_cutoff", "risk_ranking"):
            entry[rule], _ = _rule_falls(rule, eligible, budget, args.grant, effect)
        entry["true_risk_ranking"] = true_falls(by_true_risk.iloc[:n], effect)
        entry["ceiling"] = true_falls(make_plan(ceiling_effects, budget)["household_id"],
                                      effect)
        table.append(entry)
    return {"plans": table, "eligible": len(eligible),
            "estimate": frames.summary.get("effect_estimate")}


def at_share(row: dict, share: float = CASELOAD) -> dict:
    return next(p for p in row["plans"] if abs(p["share"] - share) < 1e-9)


def judged_causes(row: dict) -> dict:
    return {c: v for c, v in row["by_cause"].items() if v[1] >= MIN_CAUSE_N}


def targets(row: dict) -> list[str]:
    """The issue's targets for one process: met or NOT met, with the figures."""
    name = row["process"] + (" (held out)" if row["held_out"] else "")

    def verdict(ok) -> str:
        return "met" if ok else "NOT met"

    p = at_share(row)
    gap = _ratio(row["mean_pred"], row["fall_rate"]) - 1
    worst = min(judged_causes(row).items(), key=lambda kv: kv[1][0], default=None)
    below = [s["share"] for s in row["plans"] if s["plan"] < s["risk_ranking"]]
    lowest = min(row["plans"], key=lambda s: np.nan_to_num(_ratio(s["plan"], s["risk_ranking"]),
                                                           nan=np.inf))
    lines = [
        f"- {name}: recall@5% {row['recall5_product']:.3f} vs reference "
        f"{row['recall5_reference']:.3f} (lead 95% {_interval(row['recall5_lead_95'])}; "
        f"ceiling {row['recall5_ceiling']:.3f}): "
        f"{verdict(row['recall5_product'] >= row['recall5_reference'])}",
        f"- {name}: AP {row['ap_product']:.3f} vs reference {row['ap_reference']:.3f} "
        f"(lead 95% {_interval(row['ap_lead_95'])}; ceiling {row['ap_ceiling']:.3f}): "
        f"{verdict(row['ap_product'] >= row['ap_reference'])}",
        *_labelled_ranking(name, row),
        f"- {name}: mean predicted {row['mean_pred']:.4f} vs realised {row['fall_rate']:.4f} "
        f"({gap:+.1%}; ±10%): {verdict(abs(gap) <= TARGETS['calibration'])} (the realised "
        f"rate alone varies by ±{1.96 / np.sqrt(max(row['falls'], 1)):.0%} at "
        f"{row['falls']} falls; predicted / mean true risk "
        f"{_ratio(row['mean_pred'], row['mean_true_risk']):.2f}{_against_label(row)})",
        f"- {name}: reason_1 = true cause {row['reason_1']:.1%} of {row['caused']} (≥ 85%): "
        f"{verdict(row['reason_1'] >= TARGETS['reason_1'])}",
        f"- {name}: true cause in top 3 {row['top_3']:.1%} (≥ 95%): "
        f"{verdict(row['top_3'] >= TARGETS['top_3'])}",
        f"- {name}: structural → 收入偏低/缺劳动力 {row['structural']:.1%} of "
        f"{row['structural_n']} (≥ 75%): {verdict(row['structural'] >= TARGETS['structural'])}",
    ]
    if worst is not None:
        lines.append(
            f"- {name}: lowest cause {worst[0]} {worst[1][0]:.1%} of {worst[1][1]} (every cause "
            f"with ≥ {MIN_CAUSE_N} households ≥ 75%): "
            f"{verdict(worst[1][0] >= TARGETS['per_cause'])}")
    lines += [
        f"- {name}: plan at 5% prevents {p['plan']:.1f} = "
        f"{_ratio(p['plan'], p['risk_ranking']):.2f}× "
        f"risk ranking's {p['risk_ranking']:.1f} (≥ 1.05×): "
        f"{verdict(p['plan'] >= TARGETS['plan_vs_risk'] * p['risk_ranking'])} (choosing by "
        f"the true effect prevents {_ratio(p['ceiling'], p['true_risk_ranking']):.3f}× "
        f"ranking by the true risk)",
        f"- {name}: plan below risk ranking at budgets "
        f"{', '.join(f'{s:.0%}' for s in below) or 'none'} of 1%–20% (lowest "
        f"{_ratio(lowest['plan'], lowest['risk_ranking']):.3f}× at {lowest['share']:.0%}; none): "
        f"{verdict(not below)}",
        f"- {name}: plan at 5% = {_ratio(p['plan'], p['true_risk_ranking']):.2f} of ranking by the "
        f"true risk ({p['true_risk_ranking']:.1f}; ≥ 0.90): "
        f"{verdict(p['plan'] >= TARGETS['plan_vs_true_risk'] * p['true_risk_ranking'])}",
    ]
    return lines


def report(rows: list[dict]) -> str:
    """The Markdown tables of a group of processes: scores, reasons, plans."""
    out = ["| process | judged | true falls | recall@5% product | reference | product − "
           "reference (95%) | ceiling | AP product | reference | product − reference (95%) | "
           "ceiling | mean predicted / realised | reference without refit: recall@5%, AP | "
           "reference's setting (lr, leaves, leaf, trees) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["reference"]
        out.append(
            f"| {r['process']} | {r['judged']:,} | {r['falls']:,} | {r['recall5_product']:.3f} | "
            f"{r['recall5_reference']:.3f} | {_interval(r['recall5_lead_95'])} | "
            f"{r['recall5_ceiling']:.3f} | {r['ap_product']:.3f} | {r['ap_reference']:.3f} | "
            f"{_interval(r['ap_lead_95'])} | {r['ap_ceiling']:.3f} | "
            f"{_ratio(r['mean_pred'], r['fall_rate']):.2f} ({r['mean_pred']:.4f} / "
            f"{r['fall_rate']:.4f}) | {r['recall5_reference_grid']:.3f}, "
            f"{r['ap_reference_grid']:.3f} | {s['learning_rate']:g}, {s['max_leaf_nodes']}, "
            f"{s['min_samples_leaf']}, {s['trees']} |")
    out += ["", "| process | households (true risk ≥ 0.25) | reason_1 = true cause | "
            "top 3 | structural → 收入偏低/缺劳动力 | per true cause: rate (n) |",
            "|---|---|---|---|---|---|"]
    for r in rows:
        per = ", ".join(f"{c} {v[0]:.0%} ({v[1]})" for c, v in
                        sorted(r["by_cause"].items(), key=lambda kv: -kv[1][1]))
        out.append(f"| {r['process']} | {r['risky']:,} | {r['reason_1']:.1%} (of {r['caused']}"
                   f"{_share_interval(r, 'reason_1_95')}) | {r['top_3']:.1%} | "
                   f"{r['structural']:.1%} (of {r['structural_n']}"
                   f"{_share_interval(r, 'structural_95')}) | {per} |")
    read_as = [r for r in rows if r.get("structural_read_as")]
    if read_as:
        out += ["", "Structural households by `reason_1` (the households of the structural "
                "column):", ""]
        out += [f"- {r['process']}: " + ", ".join(
            f"{k} {v}" for k, v in sorted(r["structural_read_as"].items(),
                                          key=lambda kv: -kv[1])) for r in read_as]
    out += ["", "| process | budget (share of households) | plan | risk ranking | income "
            "cut-off | true-risk ranking | ceiling (true effect) | plan / risk ranking | "
            "plan / income cut-off | plan / true-risk ranking | plan / ceiling |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for p in r["plans"]:
            out.append(
                f"| {r['process']} | {p['share']:.0%} | {p['plan']:.1f} | "
                f"{p['risk_ranking']:.1f} | {p['income_cutoff']:.1f} | "
                f"{p['true_risk_ranking']:.1f} | {p['ceiling']:.1f} | "
                + " | ".join(f"{_ratio(p['plan'], p[k]):.2f}" for k in
                             ("risk_ranking", "income_cutoff", "true_risk_ranking", "ceiling"))
                + " |")
    return "\n".join(out)


def _labelled_ranking(name: str, row: dict) -> list[str]:
    """The ranking on the households with a label of the ledger's own at T (those the monthly
    job scores: not poor by the observed months), where the row has it."""
    if "labelled_judged" not in row:
        return []
    return [f"  - {name}, on the {row['labelled_judged']:,} households with a ledger label at T "
            f"({row['labelled_falls']} true falls): recall@5% "
            f"{row['labelled_recall5_product']:.3f} vs reference "
            f"{row['labelled_recall5_reference']:.3f} (lead 95% "
            f"{_interval(row['labelled_recall5_lead_95'])}), AP "
            f"{row['labelled_ap_product']:.3f} vs {row['labelled_ap_reference']:.3f} (lead 95% "
            f"{_interval(row['labelled_ap_lead_95'])})"]


def _against_label(row: dict) -> str:
    """``; on the households with a ledger label …`` where the row has it (older JSON files
    do not)."""
    if "labelled_judged" not in row:
        return ""
    ratio = _ratio(row["labelled_mean_pred"], row["ledger_label_rate"])
    return (f"; on the {row['labelled_judged']:,} households with a label of the ledger's own "
            f"at T, predicted {row['labelled_mean_pred']:.4f} against that label's "
            f"{row['ledger_label_rate']:.4f} ({ratio:.2f}×), the true falls' "
            f"{row['labelled_fall_rate']:.4f} and the mean true risk "
            f"{row['labelled_mean_true_risk']:.4f}")


def _share_interval(row: dict, key: str) -> str:
    """``; 95% a–b%`` from a row's bootstrap interval, "" where an older JSON has none."""
    low, high = row.get(key, (np.nan, np.nan))
    return "" if not np.isfinite([low, high]).all() else f"; 95% {low:.0%}–{high:.0%}"


def _ratio(a: float, b: float) -> float:
    """a / b, NaN where b is 0 (a toy ledger whose rule prevents nothing)."""
    return a / b if b else float("nan")


def _interval(bounds) -> str:
    return f"{bounds[0]:+.3f} to {bounds[1]:+.3f}"


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Cannot write {type(value).__name__} as JSON.")


def plot(rows: list[dict], args) -> None:
    """Recall at the 5% caseload, AP and the plan at 5% of households, per process."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["process"] + ("\n(held out)" if r["held_out"] else "") for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(1, 3, figsize=(max(13.0, 3.0 * len(rows) + 3.0), 4.8))
    width = 0.27
    for ax, (metric, title) in zip(axes[:2], (("recall5", "recall at the 5% caseload"),
                                              ("ap", "average precision")), strict=True):
        for j, (who, colour, label) in enumerate((
                ("product", "#1f77b4", "riskmodel"), ("reference", "#ff7f0e",
                                                      "generic reference"),
                ("ceiling", "#7f7f7f", "true-risk ceiling"))):
            values = [r[f"{metric}_{who}"] for r in rows]
            bars = ax.bar(x + (j - 1) * width, values, width, color=colour, label=label)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, names, fontsize=8)
        ax.set_title(f"{title}, against the true falls", fontsize=9)
        ax.set_ylim(0, 1.12)
    axes[0].legend(loc="upper right", fontsize=7, ncol=3)
    ax = axes[2]
    width = 0.2
    for j, (who, colour, label) in enumerate((
            ("plan", "#c0392b", "plan"), ("risk_ranking", "#2c3e50", "risk ranking"),
            ("true_risk_ranking", "#8e44ad", "true-risk ranking"),
            ("ceiling", "#27ae60", "ceiling (true effect)"))):
        values = [at_share(r)[who] / at_share(r)["income_cutoff"] for r in rows]
        bars = ax.bar(x + (j - 1.5) * width, values, width, color=colour, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=6)
    ax.axhline(1.0, color="#7f8c8d", linestyle=":", linewidth=1)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_title(f"falls prevented at 5% of households ({args.grant:,.0f}-yuan grants),\n"
                 "× the income cut-off's", fontsize=9)
    top = max(at_share(r)[w] / at_share(r)["income_cutoff"] for r in rows
              for w in ("plan", "risk_ranking", "true_risk_ranking", "ceiling"))
    ax.set_ylim(0, 1.3 * top)
    ax.legend(loc="upper right", fontsize=7, ncol=2)
    sizes = sorted({(r["households"], r["months"], r["seed"], r["replicas"]) for r in rows})
    fig.suptitle("; ".join(f"{n:,} households × {m} months, seed {s}, {k} replicas"
                           for n, m, s, k in sizes), fontsize=9)
    fig.tight_layout()
    out = Path(args.plot)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
