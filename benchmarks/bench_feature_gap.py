"""What the generic reference's features hold that the product's do not, and the product's ties.

On one synthetic ledger (a process of the family, its truth at T, the last month with a full
horizon ahead), the same gradient-boosted trees are fitted on the product's features
(:func:`riskmodel.model.build_features`), on the generic reference's
(``generic_reference.generic_features``), on the product's plus each group of the generic
ones, and on the product's less a few groups of its own, all on the labelled rows of months
up to the cut-off T − horizon. Each is judged on

- the ledger's own label in the months (cut-off, T]: average precision and recall at the 5%
  caseload within each month — thousands of falls, the steadier figure;
- the true falls at T (the truth's complete-data label): average precision and recall at 5%,
  on every household the truth judges and on those the monthly job scores (a label of the
  ledger's own at T: not poor by the observed months).

The product model itself (``RiskModel`` as ``bench_processes.py`` fits it) is judged the same
way three times: by its isotonic step function alone (what ``risk_score`` was before its ties
were broken), by ``predict_proba`` (the blended probability) and by its log-odds, with the
number of distinct scores at T and the recall in the published order (score, then
``household_id``), as docs/training.md, "Ties inside the isotonic steps", reports them;
``product_model-GROUP`` fits it without a group of its features, ``product_model+GROUP``
with a group of the generic ones added (unconstrained, their cause unknown), and ``--model-params``
replaces its configured parameters (``'{"monotonic": {}}'``: no monotonic constraints; a
selection candidate's keys: that candidate).

Run from the repository root (about 25 minutes on 2 cores at 20,000 households; ``--sets``
picks a few)::

    python benchmarks/bench_feature_gap.py [--process default] [--households 20000]
        [--seed 11] [--sets product,generic,product+windows,...] [--model-params JSON]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from bench_processes import process_config
from generic_reference import FEATURES as GENERIC
from generic_reference import fit_reference, generic_features, sample_rows
from sklearn.ensemble import HistGradientBoostingClassifier

from riskmodel import load_config, validate_ledger
from riskmodel.ledger import AMOUNTS, COUNTS
from riskmodel.model import (
    RiskModel,
    build_features,
    make_labels,
    model_features,
    scorer_metrics,
)
from riskmodel.model._binning import one_pass_binning
from riskmodel.months import month_index, month_label
from riskmodel.synthetic import generate

CASELOAD = 0.05
RECALL = "recall_at_5pct"
STATS = ("sum", "mean", "min", "max", "std")
# The trees every feature set is fitted with: the reference's usual choice at this size.
TREES = {"learning_rate": 0.05, "max_leaf_nodes": 63, "min_samples_leaf": 200}
TRAIN_ROWS = 120_000
# The generic reference's grid learns on this many rows of the earlier months, as
# bench_processes.py's --reference-rows.
REFERENCE_ROWS = 20_000


def lag(column: str) -> tuple[str, int] | None:
    """The ledger column and the lag of a generic lag feature (``g_inc_wage_lag3``), else None."""
    name, sep, k = column.removeprefix("g_").rpartition("_lag")
    return (name, int(k)) if sep and k.isdigit() else None


def groups(columns: list[str]) -> dict[str, list[str]]:
    """Groups of the generic features, by what they read."""
    def ends(stats, windows):
        return [c for c in columns if any(c.endswith(f"_{s}_{w}m") for s in stats
                                          for w in windows)]
    lags = {c: parsed for c in columns if (parsed := lag(c))}
    return {
        "all": list(columns),
        "windows": ends(STATS, (3, 6, 12, 24)),
        "lags": list(lags),
        "money_lags": [c for c, (source, _) in lags.items() if source in AMOUNTS],
        "count_lags": [c for c, (source, _) in lags.items() if source in COUNTS],
        "recent_lags": [c for c, (_, k) in lags.items() if k <= 3],
        "older_lags": [c for c, (_, k) in lags.items() if k >= 4],
        "per_capita": [c for c in columns if "_pc_" in c or "_line_ratio_" in c],
        "events": [c for c in columns if "_count_" in c or c.startswith("g_months_since_ev")],
        "windows_24": ends(STATS, (24,)),
        "spread_3_12": ends(("min", "max", "std"), (3, 6, 12)),
        "wage_business_range": [f"g_{c}_{s}_{w}m" for c in ("inc_wage", "inc_business")
                                for s in ("min", "max") for w in (3, 6, 12)],
        "net_range": [f"g_net_income_{s}_{w}m" for s in ("min", "max", "std")
                      for w in (3, 6, 12)],
        "minima": ends(("min",), (3, 6, 12)),
        "maxima": ends(("max",), (3, 6, 12)),
        "spreads": ends(("std",), (3, 6, 12)),
    }


def without(inputs: list[str]) -> dict[str, list[str]]:
    """Groups of the product's features a row may leave out (``product-GROUP``)."""
    return {
        "observed": ["observed_months_12m", "months_since_observed"],
        "income_ratio": [c for c in inputs if c.startswith(("income_ratio", "income_margin"))],
        "slopes": [c for c in inputs if "_slope_" in c or "_volatility_" in c],
        "extremes": [c for c in inputs if "_min_" in c or "_max_" in c],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--process", default="default")
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--start", default="2022-01")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--replicas", type=int, default=200)
    parser.add_argument("--sets", help="comma-separated: product_model, product, generic, "
                        "product+GROUP or product_model+GROUP for a group of "
                        + ", ".join(groups([])) + ", and "
                        "product-GROUP or product_model-GROUP for a group of "
                        + ", ".join(without([])))
    parser.add_argument("--model-params", type=json.loads, default={}, metavar="JSON",
                        help="parameters of RiskModel that replace the configured ones in "
                        "the product_model rows, e.g. '{\"monotonic\": {}}' or a selection "
                        "candidate's keys")
    args = parser.parse_args()

    started = time.perf_counter()
    config = process_config(args.process, load_config())
    h = config.label.horizon_months
    last = int(month_index(pd.Series([args.start]))[0]) + args.months - 1
    truth_at, cutoff = last - h, last - 2 * h
    data = generate(args.households, args.months, args.start, seed=args.seed,
                    truth_months=[str(month_label(truth_at))], replicas=args.replicas,
                    config=config, process=args.process)
    ledger = validate_ledger(data.ledger).valid
    month = np.asarray(month_index(ledger["month"]))
    labels = make_labels(ledger, config)
    y = labels["target"].to_numpy()
    product = build_features(ledger, config)
    inputs = model_features(product.columns, config)
    by_group = groups([f"g_{c}" for c in GENERIC])
    wanted = (args.sets.split(",") if args.sets else
              ["product_model", "product", "generic", *[f"product+{g}" for g in by_group],
               *[f"product-{g}" for g in without([])]])
    generic = None
    if any(name in ("generic", "recipe:generic") or name.startswith(("product+", "product_model+"))
           for name in wanted):
        generic = generic_features(ledger, config)
        generic.columns = [f"g_{c}" for c in generic.columns]
    print(f"# bench_feature_gap: {args.process}, {args.households:,} households × "
          f"{args.months} months, seed {args.seed}; trained on label months ≤ "
          f"{month_label(cutoff)}; ledger and features {time.perf_counter() - started:.0f} s",
          flush=True)

    train = (month <= cutoff) & ~np.isnan(y)
    after = (month > cutoff) & (month <= truth_at) & ~np.isnan(y)
    at_t = month == truth_at
    truth = data.truth[data.truth["month"].astype(str) == str(month_label(truth_at))]
    ids = ledger["household_id"].astype(str).to_numpy()
    true_fall = pd.Series(ids[at_t]).map(
        truth.set_index(truth["household_id"].astype(str))["target_complete"]).to_numpy(float)
    judged = ~np.isnan(true_fall)
    scored = ~np.isnan(y[at_t][judged])
    judge = Judge(y[after], month[after], ids[after], true_fall[judged], ids[at_t][judged],
                  scored)

    rows, weight = sample_rows(np.flatnonzero(train), y, TRAIN_ROWS, seed=0)
    if weight is None:
        # Weights of one where no row was left out: the weighted binning takes a column with
        # no value in the rows learnt on (4,000 households); sklearn's unweighted one does not.
        weight = np.ones(len(rows))

    print(f"\n{int(scored.sum()):,} of the {int(judged.sum()):,} households judged at T "
          f"have a label of the ledger's own (the monthly job scores them), with "
          f"{int(true_fall[judged][scored].sum())} of the {int(true_fall[judged].sum())} true "
          "falls.\n\n| features | n | AP, ledger's label | recall@5%, label | AP, true falls | "
          "recall@5%, true falls | AP, true falls, scored | recall@5%, true falls, scored | "
          "trees | seconds |\n|---|---|---|---|---|---|---|---|---|---|")
    for name in wanted:
        clock = time.perf_counter()
        kept = _kept(name, inputs)
        if name.startswith("product_model+"):
            added = by_group[name.split("+", 1)[1]]
            product_model(config, [*inputs, *added], pd.concat([product, generic[added]], axis=1),
                          y, labels, train, after, at_t, judged, judge, clock, args.model_params)
            continue
        if name.startswith("product_model"):
            product_model(config, kept, product, y, labels, train, after, at_t, judged, judge,
                          clock, args.model_params)
            continue
        if name.startswith("recipe:"):
            X = product[inputs] if name == "recipe:product" else generic
            ref = fit_reference(X[train].reset_index(drop=True), y[train],
                                labels.loc[train, "month"].to_numpy(dtype=object), config,
                                max_rows=REFERENCE_ROWS, refit_rows=TRAIN_ROWS, seed=args.seed)
            print(judge.row(f"{name} ({ref.params})", X.shape[1],
                            ref.model.predict_proba(X[after])[:, 1],
                            ref.model.predict_proba(X[at_t])[:, 1][judged],
                            ref.params["trees"], time.perf_counter() - clock), flush=True)
            continue
        if name == "product" or name.startswith("product-"):
            X = product[kept]
        elif name == "generic":
            X = generic
        else:
            X = pd.concat([product[inputs], generic[by_group[name.split("+", 1)[1]]]], axis=1)
        trees = HistGradientBoostingClassifier(max_iter=1000, early_stopping=True,
                                               n_iter_no_change=20, validation_fraction=0.15,
                                               random_state=0, **TREES)
        with one_pass_binning():
            trees.fit(X.iloc[rows].to_numpy(np.float32), y[rows], sample_weight=weight)
        score_after = trees.predict_proba(X[after].to_numpy(np.float32))[:, 1]
        score_t = trees.predict_proba(X[at_t].to_numpy(np.float32))[:, 1][judged]
        print(judge.row(name, X.shape[1], score_after, score_t, trees.n_iter_,
                        time.perf_counter() - clock), flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


class Judge:
    """The figures of one score on the months after the cut-off and at T, in the published
    order: by the score, then by ``household_id``; at T on every household the truth judges
    and on those the monthly job scores (``scored``: a label of the ledger's own at T)."""

    def __init__(self, y, month, ids, true_fall, true_ids, scored):
        self.y, self.month, self.true_fall, self.scored = y, month, true_fall, scored
        self.after_order = -_id_order(ids)
        self.true_order = -_id_order(true_ids)

    def figures(self, after, at_t) -> tuple[float, ...]:
        later = scorer_metrics(self.y, None, after, self.month, (CASELOAD,),
                               tiebreak=self.after_order)
        now = scorer_metrics(self.true_fall, None, at_t, np.zeros(len(at_t)), (CASELOAD,),
                             tiebreak=self.true_order)
        s = self.scored
        scored = scorer_metrics(self.true_fall[s], None, at_t[s], np.zeros(int(s.sum())),
                                (CASELOAD,), tiebreak=self.true_order[s])
        return (later["ap"], later[RECALL], now["ap"], now[RECALL], scored["ap"],
                scored[RECALL])

    def row(self, name, n, after, at_t, trees, seconds) -> str:
        figures = " | ".join(f"{x:.3f}" for x in self.figures(after, at_t))
        return f"| {name} | {n} | {figures} | {trees} | {seconds:.0f} |"


def _kept(name: str, inputs: list[str]) -> list[str]:
    """The product's features a row named ``…-GROUP`` keeps: all but the group's."""
    left_out = set(without(inputs)[name.split("-", 1)[1]]) if "-" in name else set()
    return [c for c in inputs if c not in left_out]


def _id_order(ids: np.ndarray) -> np.ndarray:
    """Each id's place in code-point order (the published rank's tie-break)."""
    return np.unique(ids, return_inverse=True)[1].astype("float64")


def product_model(config, inputs, product, y, labels, train, after, at_t, judged, judge, clock,
                  params):
    """The product model by its step function, its probability and its log-odds."""
    model = RiskModel.from_config(config, inputs, **params).fit(
        product.loc[train, inputs], y[train], months=labels.loc[train, "month"].to_numpy())
    raw_after = model.decision_function(product.loc[after, inputs])
    raw_t = model.decision_function(product.loc[at_t, inputs])[judged]
    seconds = time.perf_counter() - clock
    iso = model.calibrators_["isotonic"]
    scores = {"log-odds": (raw_after, raw_t),
              "probability": (model.calibrated(raw_after), model.calibrated(raw_t)),
              "isotonic steps": (np.interp(raw_after, iso.x_, iso.y_),
                                 np.interp(raw_t, iso.x_, iso.y_))}
    for kind, (after_score, t_score) in scores.items():
        print(judge.row(f"product model ({model.calibration_}), {kind}", len(inputs),
                        after_score, t_score, model.n_iter_, seconds), flush=True)
        print(f"|   distinct scores at T: {len(np.unique(t_score)):,} of {len(t_score):,} | "
              "| | | | | | | | |", flush=True)


if __name__ == "__main__":
    main()
