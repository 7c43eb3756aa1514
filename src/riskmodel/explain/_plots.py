"""Plots of explanations: beeswarms and bars of SHAP values per feature or cause, cause shares
by group, and the figures a training run logs (:func:`global_explanations`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import Config
from ..fonts import cjk_font
from ._causes import cause_matrix, cause_shares_by, feature_contributions, sum_by_cause


def _axes(ax, height: float):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=(8, height), layout="constrained")
    return fig, ax


def _labels(columns, config: Config | None) -> list[str]:
    if config is None:
        return [str(c) for c in columns]
    names = {c.code: c.name_zh for c in config.causes}
    return [names.get(c, str(c)) for c in columns]


def plot_beeswarm(
    values: pd.DataFrame,
    features: pd.DataFrame | None = None,
    config: Config | None = None,
    max_display: int = 15,
    ax=None,
    seed: int = 0,
):
    """Beeswarm of SHAP values: one row of points per feature (or cause), widest spread first.

    Parameters
    ----------
    values : DataFrame
        :func:`feature_contributions` or :func:`cause_contributions` output.
    features : DataFrame, optional
        Feature values with the same columns, to colour points from low (blue) to high (red);
        grey without it.
    config : Config, optional
        Labels cause codes with their Chinese names (因病 …).
    max_display : int, default=15
    ax : matplotlib Axes, optional
    seed : int, default=0
        Seed of the vertical jitter.

    Returns
    -------
    matplotlib Figure
    """
    font = cjk_font()
    order = values.abs().mean().sort_values(ascending=False).index[:max_display][::-1]
    fig, ax = _axes(ax, 0.4 * len(order) + 1.5)
    rng = np.random.default_rng(seed)
    for y, name in enumerate(order):
        x = values[name].to_numpy(dtype="float64")
        offset = _swarm_offsets(x, rng)
        if features is not None and name in features:
            colour = features[name].rank(pct=True).to_numpy(dtype="float64", na_value=np.nan)
        else:
            colour = np.full(len(x), 0.5)
        ax.scatter(x, y + offset, c=colour, cmap="coolwarm", vmin=0, vmax=1, s=6,
                   linewidths=0, rasterized=True, plotnonfinite=True)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(range(len(order)), _labels(order, config), fontfamily=font)
    ax.set_xlabel("SHAP 值（对数几率） SHAP value (log-odds)", fontfamily=font)
    return fig


def _swarm_offsets(x: np.ndarray, rng: np.random.Generator, bins: int = 60) -> np.ndarray:
    """Vertical offsets that spread points where they are dense, within ±0.4 of the row."""
    finite = np.isfinite(x)
    lo, hi = (np.nanmin(x), np.nanmax(x)) if finite.any() else (0.0, 1.0)
    codes = np.clip(((x - lo) / max(hi - lo, 1e-12) * bins).astype(int, copy=False), 0, bins - 1)
    codes = np.where(finite, codes, 0)
    counts = np.bincount(codes, minlength=bins)
    density = counts[codes] / counts.max()
    return rng.uniform(-0.4, 0.4, len(x)) * density


def plot_cause_bar(
    contributions: pd.DataFrame, config: Config | None = None, ax=None, risk_raising: bool = False
):
    """Bars of the mean absolute contribution per column (feature or cause), largest on top.

    With ``risk_raising=True`` the bars are the mean risk-raising part (negative values
    counted as zero): how much each cause pushes households towards falling back.

    Returns
    -------
    matplotlib Figure
    """
    font = cjk_font()
    parts = contributions.clip(lower=0) if risk_raising else contributions.abs()
    mean = parts.mean().sort_values()
    fig, ax = _axes(ax, 0.35 * len(mean) + 1.5)
    ax.barh(range(len(mean)), mean.to_numpy(), color="#c0392b" if risk_raising else "#2c7fb8")
    ax.set_yticks(range(len(mean)), _labels(mean.index, config), fontfamily=font)
    what = "平均风险推高量 mean risk-raising" if risk_raising else "平均|SHAP| mean |SHAP|"
    ax.set_xlabel(f"{what} (log-odds)", fontfamily=font)
    return fig


def plot_cause_shares(shares: pd.DataFrame, config: Config | None = None, ax=None):
    """Stacked bars of :func:`cause_shares_by`, one bar per group."""
    import matplotlib.pyplot as plt

    font = cjk_font()
    fig, ax = _axes(ax, max(0.35 * len(shares) + 2, 4))
    left = np.zeros(len(shares))
    colours = plt.get_cmap("tab20").colors
    for k, (code, label) in enumerate(zip(shares.columns, _labels(shares.columns, config),
                                          strict=True)):
        ax.barh(range(len(shares)), shares[code].to_numpy(), left=left, label=label,
                color=colours[k % len(colours)])
        left += shares[code].to_numpy()
    ax.set_yticks(range(len(shares)), [str(g) for g in shares.index], fontfamily=font)
    ax.set_xlim(0, 1)
    ax.set_xlabel("风险原因占比 share of risk-raising contributions", fontfamily=font)
    ax.legend(prop={"family": font, "size": "small"} if font else {"size": "small"},
              loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def global_explanations(
    model, features: pd.DataFrame, config: Config, groups: pd.Series | None = None,
    n_jobs: int = 1,
) -> dict:
    """The figures a training run logs and a reviewer looks at: name → matplotlib Figure.

    ``beeswarm_features``, ``bar_features``, ``beeswarm_causes``, ``bar_causes`` and, with
    ``groups`` (e.g. the township of each row), ``cause_shares``.
    """
    values, _ = feature_contributions(model, features, n_jobs=n_jobs)
    causes = pd.DataFrame(
        sum_by_cause(values.to_numpy(), cause_matrix(list(values.columns), config).to_numpy()),
        index=values.index, columns=[c.code for c in config.causes])
    figures = {
        "beeswarm_features": plot_beeswarm(values, features),
        "bar_features": plot_cause_bar(values),
        "beeswarm_causes": plot_beeswarm(causes, config=config),
        "bar_causes": plot_cause_bar(causes, config, risk_raising=True),
    }
    if groups is not None:
        figures["cause_shares"] = plot_cause_shares(cause_shares_by(causes, groups), config)
    return figures
