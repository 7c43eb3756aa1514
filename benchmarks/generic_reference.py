"""A generic reference model: the yardstick the risk model's own features are measured against.

Gradient boosting (:class:`~sklearn.ensemble.HistGradientBoostingClassifier`, early stopping)
over several hundred generic point-in-time features that any ledger of the contract yields,
with no knowledge of what makes a household fall:

- the current value and lags 1–12 of every numeric column (member counts and money);
- rolling sums, means, minima, maxima and standard deviations over 3, 6, 12 and 24 months of
  every money column and of the month's net income (incomes − rigid spending), over the months
  observed in the window, with the number of observed months;
- event counts over 3, 6, 12 and 24 months and the months since each event (and since the last
  observed month);
- per-capita versions (annualised window means ÷ members) and ratio-to-the-line versions (÷ the
  monitoring line of the month, from the config, as :func:`riskmodel.model.poverty_lines` reads
  it) of every money column;
- the guarantees and assistance flags, the household type, the line of the month and the line
  a horizon ahead.

Every feature of household-month t reads the household's months ≤ t only: the ledger is laid
on a dense household × month grid, lags shift the grid to the right, window statistics read the
cells ending at t. It is a yardstick, not part of the product: it lives in ``benchmarks/``.

The label is the product's (:func:`riskmodel.model.make_labels`), so both learn the same target.
:func:`fit_reference` tunes a small grid (learning rate, leaves, minimum leaf size) on the same
months the product model validates on: the trees learn on the label months before the last
``validation_months + calibration_months`` (the product's held-out slices), stop early and are
chosen by average precision on those last months, and the chosen setting is refitted on every
label month with the number of trees it stopped at. Nothing it chooses reads a month after the
cut-off the caller gives.

Usable as a module (``from generic_reference import generic_features, fit_reference``, with
``benchmarks/`` on the path) or run on its own to time the features::

    python benchmarks/generic_reference.py [--households 2000] [--months 36]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score

from riskmodel.config import Config
from riskmodel.ledger import AMOUNTS, ASSISTANCE_FLAGS, COUNTS, EVENTS, GUARANTEES, HOUSEHOLD_TYPES
from riskmodel.ledger import INCOME as INCOMES
from riskmodel.ledger import SPENDING as SPENDINGS
from riskmodel.model import make_labels, poverty_lines
from riskmodel.model._binning import one_pass_binning  # the same bins, found in one pass
from riskmodel.months import month_index

LAGS = tuple(range(1, 13))
WINDOWS = (3, 6, 12, 24)
STATS = ("sum", "mean", "min", "max", "std")
# Money columns of the rolling statistics: the contract's amounts and the month's net income.
MONEY = [*AMOUNTS, "net_income"]
NUMERIC = [*COUNTS, *AMOUNTS]
FLAGS = [*GUARANTEES, *ASSISTANCE_FLAGS]
# Months-since features count back at most this far (older or never: this value).
LOOKBACK = 36


def feature_names() -> list[str]:
    """Names of the generic features, in column order."""
    names = [f"{c}_lag{k}" for c in NUMERIC for k in (0, *LAGS)]
    names += [f"{c}_{s}_{w}m" for c in MONEY for w in WINDOWS for s in STATS]
    names += [f"observed_{w}m" for w in WINDOWS] + ["months_since_observed"]
    names += [f"{c}_pc_{w}m" for c in MONEY for w in WINDOWS]
    names += [f"{c}_line_ratio_{w}m" for c in MONEY for w in WINDOWS]
    names += [f"{e}_count_{w}m" for e in EVENTS for w in WINDOWS]
    names += [f"months_since_{e}" for e in EVENTS]
    names += [*FLAGS, *[f"type_{t}" for t in HOUSEHOLD_TYPES], "line", "line_ahead_ratio"]
    return names


FEATURES = feature_names()


def generic_features(ledger: pd.DataFrame, config: Config,
                     months: Sequence[str] | None = None) -> pd.DataFrame:
    """Generic point-in-time features of the household-months of a validated ledger.

    Parameters
    ----------
    ledger : DataFrame
        A validated ledger (:func:`riskmodel.validate_ledger`); households may miss months and
        money cells may be empty (unvisited months). Optional contract columns it lacks read
        as unknown.
    config : Config
        Supplies the monitoring lines and ``label.horizon_months`` (the line ahead).
    months : sequence of str, optional
        ``YYYY-MM`` months to build rows for (all when ``None``); earlier months are still read
        as history.

    Returns
    -------
    DataFrame
        One row per ledger row whose month is in ``months``, in ledger order with the ledger's
        index; columns :data:`FEATURES`, float32, NaN where unknown.
    """
    m = np.asarray(month_index(ledger["month"]), dtype="int64")
    house = pd.factorize(ledger["household_id"])[0]
    first = int(m.min())
    col = m - first
    shape = (int(house.max()) + 1, int(col.max()) + 1)
    if months is None:
        rows = np.arange(len(ledger))
    else:
        wanted = np.asarray(month_index(pd.Series(list(months), dtype=object)), dtype="int64")
        rows = np.flatnonzero(np.isin(m, wanted))
    h, c = house[rows], col[rows]
    out: dict[str, np.ndarray] = {}

    def grid(values: np.ndarray) -> np.ndarray:
        g = np.full(shape, np.nan)
        g[house, col] = values
        return g

    def column(name: str) -> np.ndarray:
        if name not in ledger.columns:
            return np.full(len(ledger), np.nan)
        return ledger[name].to_numpy(dtype="float64", na_value=np.nan)

    incomes = np.column_stack([column(x) for x in INCOMES])
    spending = np.column_stack([column(x) for x in SPENDINGS])
    observed = ~np.isnan(incomes).all(axis=1)
    net = np.where(observed, np.nansum(incomes, axis=1) - np.nansum(spending, axis=1), np.nan)
    values = {name: column(name) for name in NUMERIC}
    for name in AMOUNTS:
        # Within an observed month an empty money cell is zero, as the label reads it.
        values[name] = np.where(observed, np.nan_to_num(values[name]), values[name])
    values["net_income"] = net

    for name in NUMERIC:
        g = grid(values[name])
        for k in (0, *LAGS):
            out[f"{name}_lag{k}"] = np.where(c >= k, g[h, np.maximum(c - k, 0)], np.nan)

    obs = grid(observed.astype("float64"))
    obs_known = np.nan_to_num(obs)
    members = values["members"][rows]
    line = poverty_lines(config, m[rows] // 12, _get(ledger, "province", rows),
                         _get(ledger, "county", rows))
    ahead = poverty_lines(config, (m[rows] + config.label.horizon_months) // 12,
                          _get(ledger, "province", rows), _get(ledger, "county", rows))
    counts = {w: _window(obs_known, w, "sum")[h, c] for w in WINDOWS}
    for w in WINDOWS:
        out[f"observed_{w}m"] = counts[w]
    out["months_since_observed"] = _since(obs_known > 0)[h, c]
    for name in MONEY:
        g = grid(values[name])
        for w in WINDOWS:
            for s in STATS:
                out[f"{name}_{s}_{w}m"] = _window(g, w, s)[h, c]
            with np.errstate(invalid="ignore", divide="ignore"):
                annual_pc = out[f"{name}_mean_{w}m"] * 12 / members
            out[f"{name}_pc_{w}m"] = annual_pc
            out[f"{name}_line_ratio_{w}m"] = annual_pc / line
    for name in EVENTS:
        g = np.nan_to_num(grid(column(name))) > 0
        for w in WINDOWS:
            out[f"{name}_count_{w}m"] = _window(g.astype("float64"), w, "sum")[h, c]
        out[f"months_since_{name}"] = _since(g)[h, c]
    for name in FLAGS:
        out[name] = column(name)[rows]
    kind = ledger["household_type"].to_numpy(dtype=object)[rows]
    for t in HOUSEHOLD_TYPES:
        out[f"type_{t}"] = (kind == t).astype("float64")
    out["line"] = line
    out["line_ahead_ratio"] = ahead / line
    frame = pd.DataFrame({n: np.asarray(out[n], dtype="float32") for n in FEATURES},
                         index=ledger.index[rows])
    return frame


def _get(ledger: pd.DataFrame, name: str, rows: np.ndarray) -> pd.Series | None:
    return ledger[name].iloc[rows].reset_index(drop=True) if name in ledger.columns else None


def _window(g: np.ndarray, w: int, stat: str) -> np.ndarray:
    """A statistic of the ``w`` cells ending at each cell (NaN cells left out; NaN when all
    are). Cells before the grid's first month count as absent."""
    padded = np.concatenate([np.full((g.shape[0], w - 1), np.nan), g], axis=1)
    view = np.lib.stride_tricks.sliding_window_view(padded, w, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        known = (~np.isnan(view)).sum(axis=2)
        if stat == "sum":
            result = np.nansum(view, axis=2)
        elif stat == "mean":
            result = np.nansum(view, axis=2) / known
        elif stat == "min":
            result = np.nanmin(np.where(np.isnan(view), np.inf, view), axis=2)
        elif stat == "max":
            result = np.nanmax(np.where(np.isnan(view), -np.inf, view), axis=2)
        else:
            mean = np.nansum(view, axis=2) / known
            result = np.sqrt(np.nansum((view - mean[..., None]) ** 2, axis=2) / known)
    return np.where(known > 0, result, np.nan)


def _since(happened: np.ndarray) -> np.ndarray:
    """Months since the last True cell at or before each cell (LOOKBACK when none)."""
    index = np.arange(happened.shape[1])
    last = np.maximum.accumulate(np.where(happened, index, -10**6), axis=1)
    return np.minimum(index - last, LOOKBACK).astype("float64")


@dataclass
class Reference:
    """The fitted reference: the chosen trees and how they were chosen.

    Attributes
    ----------
    model : HistGradientBoostingClassifier
        Refitted on every label month up to the cut-off with the chosen setting.
    grid_model : HistGradientBoostingClassifier
        The chosen setting as the grid fitted it: trees of the earlier months only (as the
        product's trees), stopped early on the held-out months.
    params : dict
        The chosen learning rate, leaves and minimum leaf size, and the trees it stopped at.
    tuning : DataFrame
        One row per grid point: its setting, trees and validation AP.
    validation_months : list of str
        The months the setting was chosen on.
    seconds : float
    """

    model: HistGradientBoostingClassifier
    grid_model: HistGradientBoostingClassifier
    params: dict
    tuning: pd.DataFrame
    validation_months: list[str]
    seconds: float = 0.0
    features: list[str] = field(default_factory=lambda: list(FEATURES))

    def predict_proba(self, X: pd.DataFrame, refitted: bool = True) -> np.ndarray:
        """The probability of a fall of each row of :func:`generic_features` (by the grid's
        fit of the chosen setting when not ``refitted``)."""
        model = self.model if refitted else self.grid_model
        return model.predict_proba(X[self.features])[:, 1]


GRID = {"learning_rate": (0.05, 0.1), "max_leaf_nodes": (15, 63),
        "min_samples_leaf": (40, 200)}


def training_rows(ledger: pd.DataFrame, config: Config, cutoff: str
                  ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Generic features, the product's label and the month of every labelled row ≤ ``cutoff``.

    The ledger should end at ``cutoff`` + horizon (the month the labels are realised by).
    """
    labels = make_labels(ledger, config)
    t = int(month_index(pd.Series([cutoff]))[0])
    keep = (labels["target"].notna().to_numpy()
            & (np.asarray(month_index(labels["month"])) <= t))
    rows = np.flatnonzero(keep)
    months = labels["month"].to_numpy(dtype=object)[rows]
    features = generic_features(ledger, config, months=sorted(set(months)))
    features = features.loc[ledger.index[rows]].reset_index(drop=True)
    return features, labels["target"].to_numpy()[rows], months


def fit_reference(features: pd.DataFrame, target: np.ndarray, months: np.ndarray,
                  config: Config, grid: dict | None = None, max_iter: int = 1000,
                  max_rows: int | None = None, refit_rows: int | None = None,
                  seed: int = 0) -> Reference:
    """Tune and fit the reference on labelled rows (all of months ≤ the cut-off).

    Parameters
    ----------
    features : DataFrame
        :func:`generic_features` of the rows.
    target : ndarray
        The product's label (0/1) of each row.
    months : ndarray of str
        ``YYYY-MM`` of each row.
    config : Config
        ``model.validation_months + model.calibration_months``: the last label months, on
        which the product model stops and calibrates, are the months the setting is chosen on.
    grid : dict, optional
        Values of ``learning_rate``, ``max_leaf_nodes``, ``min_samples_leaf`` (:data:`GRID`).
    max_iter : int
        Trees at most; early stopping on the validation months decides.
    max_rows : int, optional
        Learn the grid on at most this many rows of the earlier months (every positive, a
        weighted random share of the rest) to bound the time.
    refit_rows : int, optional
        The same bound for the refit on every label month (all rows when ``None``).
    seed : int
    """
    started = time.perf_counter()
    grid = grid or GRID
    held = config.model.validation_months + config.model.calibration_months
    distinct = sorted(set(months))
    chosen_on = distinct[-held:]
    val = np.isin(months, chosen_on)
    learn, weight = sample_rows(np.flatnonzero(~val), target, max_rows, seed)
    X_val, y_val = features[val], target[val]
    rows, fitted = [], []
    for lr, leaves, leaf in itertools.product(grid["learning_rate"], grid["max_leaf_nodes"],
                                             grid["min_samples_leaf"]):
        clock = time.perf_counter()
        model = HistGradientBoostingClassifier(
            learning_rate=lr, max_leaf_nodes=leaves, min_samples_leaf=leaf, max_iter=max_iter,
            early_stopping=True, n_iter_no_change=20, scoring="loss", random_state=seed)
        with one_pass_binning():
            model.fit(features.iloc[learn], target[learn], sample_weight=weight, X_val=X_val,
                      y_val=y_val)
        ap = average_precision_score(y_val, model.predict_proba(X_val)[:, 1])
        rows.append({"learning_rate": lr, "max_leaf_nodes": leaves, "min_samples_leaf": leaf,
                     "trees": int(model.n_iter_), "validation_ap": float(ap),
                     "seconds": time.perf_counter() - clock})
        fitted.append(model)
    tuning = pd.DataFrame(rows)
    best = tuning.loc[tuning["validation_ap"].idxmax()]
    grid_model = fitted[int(tuning["validation_ap"].to_numpy().argmax())]
    params = {"learning_rate": float(best["learning_rate"]),
              "max_leaf_nodes": int(best["max_leaf_nodes"]),
              "min_samples_leaf": int(best["min_samples_leaf"]), "trees": int(best["trees"])}
    rows, weight = sample_rows(np.arange(len(target)), target, refit_rows, seed)
    final = HistGradientBoostingClassifier(
        learning_rate=params["learning_rate"], max_leaf_nodes=params["max_leaf_nodes"],
        min_samples_leaf=params["min_samples_leaf"], max_iter=params["trees"],
        early_stopping=False, random_state=seed)
    with one_pass_binning():
        final.fit(features.iloc[rows], target[rows], sample_weight=weight)
    return Reference(model=final, grid_model=grid_model, params=params, tuning=tuning,
                     validation_months=[str(x) for x in chosen_on],
                     seconds=time.perf_counter() - started)


def sample_rows(rows: np.ndarray, target: np.ndarray, max_rows: int | None, seed: int
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """At most ``max_rows`` of ``rows``: every positive, a random share of the negatives
    weighted up so that the log-odds stay on scale."""
    if max_rows is None or rows.size <= max_rows:
        return rows, None
    pos, neg = rows[target[rows] == 1], rows[target[rows] == 0]
    keep = min(neg.size, max(max_rows - pos.size, pos.size))
    chosen = np.random.default_rng(seed).choice(neg, size=keep, replace=False)
    kept = np.sort(np.concatenate([pos, chosen]))
    return kept, np.where(target[kept] == 1, 1.0, neg.size / keep)


def main() -> None:
    from riskmodel import load_config, validate_ledger
    from riskmodel.synthetic import generate_ledger

    parser = argparse.ArgumentParser(description="Time the generic reference's features.")
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = load_config()
    ledger = validate_ledger(generate_ledger(args.households, args.months, seed=args.seed)).valid
    clock = time.perf_counter()
    features = generic_features(ledger, config)
    print(f"{len(FEATURES)} generic features of {len(features):,} household-months in "
          f"{time.perf_counter() - clock:.1f} s ({features.memory_usage().sum() / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
