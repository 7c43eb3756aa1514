"""Scores and reasons under what a county observes: three observation regimes of one county.

The same simulated households are observed three ways:

- **a, monthly ledger**: the latent ledger of :func:`riskmodel.synthetic.generate`, incomes
  seen in the ~87% of months visited, every event in its month (today's synthetic ledger);
- **b, county sources**: :func:`riskmodel.synthetic.county_sources` written to a folder and read
  by :func:`riskmodel.sources.ingest`: person tables with the yearly income verification (and at
  identification and elimination), the monthly migrant-work table, department warnings;
- **c, verification only**: the same folder without the migrant-work tables and the warning
  lists (the person tables alone).

For each regime and label kind a model is trained on the regime's own ledger, on rows of months
up to the cut-off (the first truth month minus the horizon: every training label is realised by
the first truth month, as in production), and scores every household at the truth months. It is
judged against the TRUE falls (the truth's complete-data label ``target_complete``, on
households not poor at the month), beside the true-risk ceiling (ranking by ``true_risk``) and
the rule baseline fitted and applied on the same regime's ledger (its shock rule sees what that
ledger shows: every event in a, the warnings in b, none in c). Also: for ``identified``, the mean
predicted probability against the realised identification rate (the regime's own label at the
truth months); the share of households with a true risk of at least ``--min-risk`` whose
``reason_1`` is the true cause; and, for households the cadres identified within the horizon,
the share whose ``reason_1`` (or one of ``reason_1..3``) is among the risk types the cadres
recorded (the person tables' records, so the same for every regime).

Run from the repository root (about 8 minutes on 2 shared cores at the defaults)::

    python benchmarks/bench_regimes.py [--households 4000] [--months 48] [--seed 0]
        [--plot docs/img/observation_regimes.png]

The right-cause rates of the default run rest on about a hundred households. For several
hundred, judge more households at more truth months and fewer models (about 7 minutes on 2
cores alone)::

    python benchmarks/bench_regimes.py --households 8000 --regimes a,b --labels identified \
        --truth-months 2024-12,2025-03,2025-06

Their intervals resample households (a household judged at several truth months is one draw).

``--labels`` may also name ``monthly`` for b and c: a yardstick no county has, the label regime a
trains on (falls below the line read from the monthly ledger's incomes) given to the county's
ledger row by row. The model then learns from the county's features alone what the monthly
ledger says happened, so its recall tells what the county's features could reach with a label
as good as the monthly ledger's: what b loses against a through the label (``identified`` against
``monthly``) and through the features (``monthly`` against a).

It may also name the county's own identifications over another window, for b and c:
``identified>K`` the window moved K months later, identified in (t+K, t+H+K] (to undo the
cadres' lag), and ``identified+K`` the window widened by K months, identified in (t, t+H+K].
Their rows are trained only up to the cut-off minus K, so that no label reaches past the first
truth month.
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from riskmodel import load_config, validate_ledger
from riskmodel.explain import explain_month
from riskmodel.model import (
    RiskModel,
    RuleBaseline,
    add_agreement,
    agreement_rates,
    build_features,
    compare_reasons,
    make_labels,
    model_features,
    recorded_at_identification,
    scorer_metrics,
    training_data,
)
from riskmodel.months import month_index, month_label
from riskmodel.sources import ingest
from riskmodel.synthetic import county_sources, generate, write_sources

sys.path.insert(0, str(Path(__file__).parent))
from bench_reasons import markdown as markdown_frame  # noqa: E402
from right_causes import cause_interval, right_causes  # noqa: E402

# File-name stems of the generator's migrant-work tables and warning lists (regime c drops them).
DROPPED_IN_C = ("务工监测", "部门预警")
CASELOAD = 0.05
MONTHLY = "monthly"
# identified>K: the identification window moved K months later; identified+K: widened by K.
WINDOW_LABEL = re.compile(r"identified([>+])(\d+)")
REGIMES = {
    "a": "monthly ledger",
    "b": "county sources",
    "c": "verification only",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=4000)
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--start", default="2022-01")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truth-months", default=None,
                        help="comma-separated YYYY-MM (default: the last month with a full "
                             "horizon ahead and the month three before it)")
    parser.add_argument("--replicas", type=int, default=1000,
                        help="Monte Carlo futures per household and scenario of the truth")
    parser.add_argument("--labels", default="identified,income,either",
                        help="label kinds trained on the county's ledgers (b, c); regime a "
                             "trains on income")
    parser.add_argument("--regimes", default="a,b,c",
                        help="the regimes judged (a is always judged: the targets compare "
                             "with it)")
    parser.add_argument("--min-risk", type=float, default=0.25)
    parser.add_argument("--bootstrap", type=int, default=200,
                        help="bootstrap draws of households for the recall intervals")
    parser.add_argument("--plot", help="write the recall / AP chart to this PNG")
    parser.add_argument("--workdir", help="folder for the sources and ledgers (a temporary "
                                          "one by default)")
    args = parser.parse_args(argv)
    regimes = {"a", *args.regimes.split(",")}
    unknown = regimes - set(REGIMES)
    if unknown:
        parser.error(f"unknown regime {sorted(unknown)[0]!r}; expected a, b or c")
    config = load_config()
    h = config.label.horizon_months
    last = month_index(pd.Series([args.start]))[0] + args.months - 1
    if args.truth_months:
        truth_months = args.truth_months.split(",")
    else:
        truth_months = [str(month_label(last - h - 3)), str(month_label(last - h))]
    cutoff = str(month_label(month_index(pd.Series([min(truth_months)]))[0] - h))
    started = time.perf_counter()
    print(f"# bench_regimes: {args.households} households × {args.months} months from "
          f"{args.start}, seed {args.seed}; truth at {', '.join(truth_months)} "
          f"({args.replicas} replicas); trained on months ≤ {cutoff}")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir) if args.workdir else Path(tmp)
        ledgers, ids, truth = observe(args, truth_months, work, with_c="c" in regimes)
    print(f"(ledgers and truth in {time.perf_counter() - started:.0f} s)")

    records = recorded_types(ledgers["b"], truth_months, h, ids)
    monthly = monthly_label(ledgers["a"], config, ids)
    rows, judged = [], []
    for regime, kinds in (("a", ["income"]), ("b", args.labels.split(",")),
                          ("c", args.labels.split(","))):
        if regime not in regimes:
            continue
        for kind in kinds:
            clock = time.perf_counter()
            window = WINDOW_LABEL.fullmatch(kind)
            cfg = with_kind(config, "identified" if kind == MONTHLY or window else kind)
            label = (monthly if kind == MONTHLY else None if window is None else
                     window_label(ledgers[regime], cfg, cutoff, window[1], int(window[2])))
            scored = score_regime(ledgers[regime], cfg, cutoff, truth_months, label=label)
            if regime != "a":
                scored = to_latent(scored, ids)
            row, kept = judge(regime, kind, scored, truth, records, cfg, args.min_risk,
                              args.seed)
            rows.append(row)
            judged.append(kept)
            print(f"regime {regime}, label {kind}: {time.perf_counter() - clock:.0f} s",
                  flush=True)
    table = pd.DataFrame(rows)
    clock = time.perf_counter()
    draws = bootstrap(judged, args.bootstrap, args.seed)
    low, high = np.percentile(draws[:, :, 0], [2.5, 97.5], axis=0)
    table["recall5_interval"] = [f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(low, high,
                                                                           strict=True)]
    print(f"bootstrap ({args.bootstrap} draws of households): "
          f"{time.perf_counter() - clock:.0f} s")
    print()
    print(markdown(table))
    print()
    print(markdown(table, REASONS))
    print()
    print(by_cause(table))
    print()
    shown = table["label"].eq("identified") | table["regime"].str.startswith("a")
    for _, row in table[shown].iterrows():
        confusion = row["confusion"]
        confusion["n"] = confusion.sum(axis=1)
        confusion = confusion.sort_values("n", ascending=False)
        print(f"regime {row['regime']}, label {row['label']}: true cause (rows) × reason_1")
        print(markdown_frame(confusion))
        print()
    for line in targets(table, draws):
        print(line)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\ntotal {time.perf_counter() - started:.0f} s, peak memory {peak:.1f} GB")
    if args.plot:
        plot(table, args.plot, args)
        print(f"chart written to {args.plot}")
    return 0


def with_kind(config, kind: str):
    """The config with ``label.kind`` set."""
    return config.model_copy(update={"label": config.label.model_copy(update={"kind": kind})})


def observe(args, truth_months: list[str], work: Path, with_c: bool = True):
    """The regimes' validated ledgers (c only ``with_c``), the id map (户编号 → latent id) and
    the truth."""
    clock = time.perf_counter()
    data = generate(args.households, args.months, args.start, seed=args.seed,
                    truth_months=truth_months, replicas=args.replicas)
    print(f"latent ledger and truth: {time.perf_counter() - clock:.0f} s", flush=True)
    clock = time.perf_counter()
    src = county_sources(args.households, args.months, args.start, seed=args.seed)
    write_sources(src, work / "sources_b", work / "expected.parquet")
    kept = {p: b for p, b in src.files.items()
            if not Path(p).name.startswith(DROPPED_IN_C)}
    for path, content in kept.items() if with_c else ():
        target = work / "sources_c" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    print(f"county sources: {len(src.files)} files ({len(src.files) - len(kept)} migrant and "
          f"warning files dropped in c), {time.perf_counter() - clock:.0f} s", flush=True)
    ids = pd.Series(src.household_ids["household_id"].to_numpy(dtype=object),
                    index=src.household_ids["source_household_id"].astype(str).to_numpy())
    del src
    ledgers = {"a": validate_ledger(data.ledger).valid}
    for regime in ("b", "c") if with_c else ("b",):
        clock = time.perf_counter()
        out = work / f"ledger_{regime}"
        out.mkdir()
        if regime == "c":
            # Person tables already read for b come from b's cache (keyed by content).
            (out / ".riskmodel-cache").symlink_to(work / "ledger_b" / ".riskmodel-cache")
        result = ingest(work / f"sources_{regime}", out / "ledger.parquet")
        ledgers[regime] = validate_ledger(result.ledger).valid
        print(f"ingest {regime}: {len(result.ledger):,} household-months, "
              f"{time.perf_counter() - clock:.0f} s", flush=True)
    return ledgers, ids, data.truth


def monthly_label(latent: pd.DataFrame, config, ids: pd.Series) -> pd.Series:
    """Regime a's label (``income`` on the monthly ledger) by (户编号, month): the yardstick
    label ``monthly``; NaN where the monthly ledger has no label."""
    labels = make_labels(latent, with_kind(config, "income"))
    source = pd.Series(ids.index.to_numpy(), index=ids.to_numpy().astype(str))
    return pd.Series(labels["target"].to_numpy(dtype="float64"), index=pd.MultiIndex.from_arrays(
        [source.reindex(latent["household_id"].astype(str).to_numpy()).to_numpy(),
         latent["month"].astype(str).to_numpy()]))


def window_label(ledger: pd.DataFrame, config, cutoff: str, how: str, k: int) -> pd.Series:
    """The county's identifications over another window, by (户编号, month): ``how`` ``>``
    identified in (t+k, t+H+k], ``+`` identified in (t, t+H+k]; NaN after the cut-off minus k
    (those rows' windows reach past the first truth month) and where the label is undefined."""
    target = make_labels(ledger, config)["target"].to_numpy(dtype="float64")
    ids = ledger["household_id"].astype(str).to_numpy()
    month = np.asarray(month_index(ledger["month"]))
    by_row = pd.Series(target, index=pd.MultiIndex.from_arrays([ids, month]))
    later = np.array(by_row.reindex(pd.MultiIndex.from_arrays([ids, month + k])),
                     dtype="float64")
    if how == ">":
        label = later
    else:
        # Identified within (t, t+H] already, or else within (t+k, t+H+k]: a household
        # identified by t+k has no label there, but has one at t.
        label = np.where(target == 1, 1.0, later)
        label[np.isnan(target)] = np.nan
    label[month > month_index(pd.Series([cutoff]))[0] - k] = np.nan
    return pd.Series(label, index=pd.MultiIndex.from_arrays(
        [ids, ledger["month"].astype(str).to_numpy()]))


def score_regime(ledger: pd.DataFrame, config, cutoff: str, truth_months: list[str],
                 label: pd.Series | None = None):
    """Train on rows of months ≤ cutoff; score and explain every household at the truth
    months, with the rules of the same ledger and the regime's own label there. ``label``
    (by household id and month) replaces the config's label for training: rows it does not
    label are left out."""
    data = training_data(ledger, config)
    keep = np.asarray(month_index(pd.Series(data.months))) <= month_index(pd.Series([cutoff]))[0]
    target = data.target
    if label is not None:
        target = label.reindex(pd.MultiIndex.from_arrays(
            [np.asarray(data.households).astype(str),
             pd.Series(data.months).astype(str).to_numpy()])).to_numpy()
        keep &= ~np.isnan(target)
    keep = np.flatnonzero(keep)
    features = data.features.iloc[keep]
    target, months = target[keep].astype("int64"), data.months[keep]
    inputs = model_features(features.columns, config)
    # One OpenMP thread: on a shared 2-core machine competing threads slow the fit tenfold.
    with threadpool_limits(1):
        model = RiskModel.from_config(config, inputs).fit(features[inputs], target,
                                                          months=months)
    rules = RuleBaseline.from_config(config).fit(features, target)
    ranked = RuleBaseline.from_config(config, rank_by_income=True)
    labels = make_labels(ledger, config)
    own = pd.Series(labels["target"].to_numpy(), index=pd.MultiIndex.from_arrays(
        [ledger["household_id"].astype(str).to_numpy(), ledger["month"].astype(str).to_numpy()]))
    frames = []
    for month in truth_months:
        with threadpool_limits(1):
            explained = explain_month(model, ledger, config, month).reset_index()
        feats = build_features(ledger, config, months=[month])
        hid = ledger.loc[feats.index, "household_id"].astype(str).to_numpy()
        rule = pd.DataFrame({"household_id": hid,
                             "rules_score": rules.decision_function(feats),
                             "rules_proba": rules.predict_proba(feats)[:, 1],
                             "rules_income_score": ranked.decision_function(feats)})
        explained["household_id"] = explained["household_id"].astype(str)
        explained = explained.merge(rule, on="household_id", how="left")
        explained["own_label"] = own.reindex(pd.MultiIndex.from_arrays(
            [explained["household_id"], explained["month"].astype(str)])).to_numpy()
        frames.append(explained)
    out = pd.concat(frames, ignore_index=True)
    out.attrs["train_rows"] = int(len(target))
    out.attrs["train_positives"] = int(np.sum(target))
    return out


def to_latent(scored: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """Replace 户编号 by the latent ledger's household id."""
    attrs = dict(scored.attrs)
    scored = scored.copy()
    scored["household_id"] = ids.reindex(scored["household_id"].to_numpy()).to_numpy()
    scored.attrs = attrs
    return scored


def recorded_types(ledger: pd.DataFrame, truth_months: list[str], horizon: int,
                   ids: pd.Series) -> dict[str, pd.DataFrame]:
    """Per truth month t, the households of the county's ledger identified in (t, t + H] with
    the risk types recorded at identification (:func:`riskmodel.model.recorded_at_identification`),
    indexed by the latent ledger's household id."""
    out = {}
    for month in truth_months:
        t = month_index(pd.Series([month]))[0]
        recorded = recorded_at_identification(ledger, t, t + horizon)
        out[month] = recorded.set_axis(ids.reindex(recorded.index.astype(str)).to_numpy())
    return out


def judge(regime: str, kind: str, scored: pd.DataFrame, truth: pd.DataFrame,
          records: dict[str, pd.DataFrame], config, min_risk: float, seed: int = 0) -> dict:
    """One row of the table: the regime's model and rules against the truth."""
    t = truth[truth["true_risk"].notna()][["household_id", "month", "true_risk", "true_cause",
                                           "target_complete", "poor_complete"]]
    t = t.assign(household_id=t["household_id"].astype(str), month=t["month"].astype(str))
    both = t.merge(scored.assign(month=scored["month"].astype(str)),
                   on=["household_id", "month"], how="inner")
    judged = both[both["target_complete"].notna()]
    y = judged["target_complete"].to_numpy(dtype="float64")
    month = judged["month"].to_numpy()
    caseloads = (CASELOAD,)
    model = scorer_metrics(y, judged["risk_score"], judged["risk_score"], month, caseloads)
    rules = scorer_metrics(y, judged["rules_proba"], judged["rules_score"], month, caseloads)
    ranked = scorer_metrics(y, None, judged["rules_income_score"], month, caseloads)
    ceiling = scorer_metrics(y, judged["true_risk"], judged["true_risk"], month, caseloads)
    tag = "recall_at_5pct"
    row = {
        "regime": f"{regime}: {REGIMES[regime]}", "label": kind,
        "train_rows": scored.attrs.get("train_rows"),
        "train_pos": scored.attrs.get("train_positives"),
        "judged": len(judged), "falls": int(y.sum()),
        "recall5_model": model[tag], "recall5_rules": rules[tag],
        "recall5_rules_income": ranked[tag], "recall5_ceiling": ceiling[tag],
        "ap_model": model["ap"], "ap_rules": rules["ap"], "ap_ceiling": ceiling["ap"],
        "auc_model": model["auc"],
        "mean_pred": model["mean_predicted"], "fall_rate": model["observed_rate"],
    }
    own = both[both["own_label"].notna()]
    row["own_rows"] = len(own)
    row["own_mean_pred"] = float(own["risk_score"].mean()) if len(own) else np.nan
    row["own_rate"] = float(own["own_label"].mean()) if len(own) else np.nan
    # Right cause: not poor at the month, true risk ≥ min_risk.
    rates = right_causes(both, min_risk)
    low, high = cause_interval(both, min_risk, seed=seed)
    row.update({"risky": rates["risky"], "caused": rates["caused"],
                "caused_households": rates["households"],
                "cause_1": rates["reason_1"], "cause_3": rates["top_3"],
                "cause_1_interval": f"[{low:.1%}, {high:.1%}]",
                "confusion": rates["confusion"],
                "by_cause": {c: tuple(v) for c, v in rates["by_cause"].items()},
                "structural_ok": rates["structural"]})
    # Agreement with the cadres' records, on the households they identified in the horizon.
    counts = None
    for month, recorded in records.items():
        at = scored[scored["month"].astype(str) == month]
        counts = add_agreement(counts, compare_reasons(at, recorded))
    rates = agreement_rates(counts)
    row["identified"] = int(rates["households"])
    row["agree_1"] = rates["reason_1_recorded"]
    row["agree_3"] = rates["reasons_1_3_recorded"]
    kept = judged[["household_id", "month", "target_complete", "risk_score", "rules_score"]]
    return row, kept.set_index(["household_id", "month"])


def bootstrap(judged: list[pd.DataFrame], draws: int, seed: int) -> np.ndarray:
    """Recall at the 5% caseload of each judged model and its rules, over ``draws`` bootstrap
    samples of households (the same sample for every regime, so ratios are paired).

    Returns an array of shape (draws, len(judged), 2): model, rules.
    """
    common = judged[0].index
    for frame in judged[1:]:
        common = common.intersection(frame.index)
    households, code = np.unique(common.get_level_values(0).to_numpy(dtype=object),
                                 return_inverse=True)
    month = common.get_level_values(1).to_numpy(dtype=object)
    frames = [frame.loc[common] for frame in judged]
    rng = np.random.default_rng(seed)
    out = np.empty((draws, len(judged), 2))
    for d in range(draws):
        weight = np.bincount(rng.integers(0, len(households), len(households)),
                             minlength=len(households))[code].astype("float64")
        for j, frame in enumerate(frames):
            y = frame["target_complete"].to_numpy(dtype="float64")
            for k, score in enumerate(("risk_score", "rules_score")):
                out[d, j, k] = scorer_metrics(y, None, frame[score], month, (CASELOAD,),
                                              weight=weight)["recall_at_5pct"]
    return out


def targets(table: pd.DataFrame, draws: np.ndarray) -> list[str]:
    """The issue's targets, met or not, with the figures (and paired bootstrap intervals of
    the recall ratios)."""
    out = []
    ia = int(np.flatnonzero(table["regime"].str.startswith("a"))[0])
    a = table.iloc[ia]
    ib = np.flatnonzero(table["regime"].str.startswith("b") & (table["label"] == "identified"))
    if ib.size:
        b = table.iloc[ib[0]]
        lift = b["recall5_model"] / b["recall5_rules"] if b["recall5_rules"] else np.inf
        share = b["recall5_model"] / a["recall5_model"]
        gap = b["own_mean_pred"] / b["own_rate"] - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            lifts = np.percentile(draws[:, ib[0], 0] / draws[:, ib[0], 1], [2.5, 97.5])
            shares = np.percentile(draws[:, ib[0], 0] / draws[:, ia, 0], [2.5, 97.5])
        out += [
            f"- b (identified): recall@5% {b['recall5_model']:.3f} = {lift:.2f}× the rules' "
            f"{b['recall5_rules']:.3f} (95% interval {lifts[0]:.2f}–{lifts[1]:.2f}×; target "
            f"≥ 1.5×): {'met' if lift >= 1.5 else 'NOT met'}",
            f"- b (identified): recall@5% = {share:.0%} of a's {a['recall5_model']:.3f} "
            f"(95% interval {shares[0]:.0%}–{shares[1]:.0%}; target ≥ 80%): "
            f"{'met' if share >= 0.8 else 'NOT met'}",
            f"- b (identified): mean predicted {b['own_mean_pred']:.4f} against realised "
            f"identification {b['own_rate']:.4f} ({gap:+.1%}; target ±10%): "
            f"{'met' if abs(gap) <= 0.10 else 'NOT met'}",
            f"- b (identified): reason_1 = true cause {b['cause_1']:.1%} of {b['caused']} "
            f"(95% interval {b['cause_1_interval'][1:-1]}; target ≥ 80%): "
            f"{'met' if b['cause_1'] >= 0.8 else 'NOT met'}",
        ]
    out.append(f"- a: reason_1 = true cause {a['cause_1']:.1%} of {a['caused']} (95% interval "
               f"{a['cause_1_interval'][1:-1]}; target ≥ 85%): "
               f"{'met' if a['cause_1'] >= 0.85 else 'NOT met'}")
    return out


SHOWN = [
    ("regime", "regime", "{}"), ("label", "label", "{}"), ("judged", "judged", "{:,}"),
    ("falls", "true falls", "{:,}"), ("recall5_model", "recall@5% model", "{:.3f}"),
    ("recall5_interval", "95% interval", "{}"),
    ("recall5_rules", "rules", "{:.3f}"), ("recall5_rules_income", "rules by income", "{:.3f}"),
    ("recall5_ceiling", "ceiling", "{:.3f}"), ("ap_model", "AP model", "{:.3f}"),
    ("ap_rules", "rules", "{:.3f}"), ("ap_ceiling", "ceiling", "{:.3f}"),
    ("mean_pred", "mean predicted", "{:.4f}"), ("fall_rate", "true fall rate", "{:.4f}"),
    ("own_mean_pred", "mean predicted (own label rows)", "{:.4f}"),
    ("own_rate", "own label realised", "{:.4f}"),
]
REASONS = [
    ("regime", "regime", "{}"), ("label", "label", "{}"),
    ("cause_1", "reason_1 = true cause", "{:.1%}"), ("cause_1_interval", "95% interval", "{}"),
    ("cause_3", "in reason_1..3", "{:.1%}"),
    ("caused", "n", "{}"), ("caused_households", "households", "{}"),
    ("structural_ok", "structural → 缺劳动力/收入偏低", "{:.1%}"),
    ("agree_1", "reason_1 in recorded types", "{:.1%}"), ("agree_3", "reason_1..3", "{:.1%}"),
    ("identified", "identified", "{}"),
]


def by_cause(table: pd.DataFrame) -> str:
    """reason_1 = true cause by true cause (households at true risk ≥ min risk), each regime."""
    causes = sorted({c for d in table["by_cause"] for c in d},
                    key=lambda c: -max(d.get(c, (0, 0))[1] for d in table["by_cause"]))
    heads = [f"{r[0]} ({k})" for r, k in zip(table["regime"], table["label"], strict=True)]
    lines = ["| true cause | n | " + " | ".join(heads) + " |", "|" + "---|" * (len(heads) + 2)]
    for cause in causes:
        n = max(d.get(cause, (0, 0))[1] for d in table["by_cause"])
        cells = [f"{d[cause][0]:.0%}" if cause in d else "—" for d in table["by_cause"]]
        lines.append(f"| {cause} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(table: pd.DataFrame, shown: list = SHOWN) -> str:
    """The table as Markdown, one regime and label a row."""
    lines = ["| " + " | ".join(h for _, h, _ in shown) + " |", "|" + "---|" * len(shown)]
    for _, row in table.iterrows():
        cells = ["—" if isinstance(row[k], float) and np.isnan(row[k]) else f.format(row[k])
                 for k, _, f in shown]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(table: pd.DataFrame, path: str, args) -> None:
    """Recall at the 5% caseload and AP by regime and label: model, rules, ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from riskmodel.fonts import use_cjk_font

    use_cjk_font()
    names = ["{}\n{}\n({})".format(r[0], REGIMES[r[0]].replace(" ", "\n", 1), k)
             for r, k in zip(table["regime"], table["label"], strict=True)]
    x = np.arange(len(table))
    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    for ax, (metric, title) in zip(axes, (("recall5", "recall at the 5% caseload"),
                                          ("ap", "average precision")), strict=True):
        width = 0.27
        for j, (who, colour, label) in enumerate((
                ("model", "#1f77b4", "model"), ("rules", "#ff7f0e", "rules (same regime)"),
                ("ceiling", "#7f7f7f", "true-risk ceiling"))):
            values = table[f"{metric}_{who}"].to_numpy(dtype="float64")
            bars = ax.bar(x + (j - 1) * width, values, width, color=colour, label=label)
            ax.bar_label(bars, fmt="%.2f", fontsize=7)
        ax.set_xticks(x, names, fontsize=8)
        ax.set_title(f"{title}, against the true falls")
        ax.set_ylim(0, 1)
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle(f"{args.households:,} households × {args.months} months, seed {args.seed}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
