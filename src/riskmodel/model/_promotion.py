"""The promotion gate: whether a new model takes the registry's alias.

A model is promoted only when its backtest beats the rules by the configured margin and, where
the alias already names a champion, beats the champion on the backtest months the champion did
not learn from (:func:`promotion_gate`). :class:`Promotion` holds the decision, the one line the
job prints, and the tags and metrics it logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import Config
from ..errors import ConfigError, ModelNotFoundError
from ..months import month_index, month_label
from ._backtest import BacktestResult, comparable_origins, compare_fitted
from ._estimator import RiskModel
from ._rows import TrainingData
from ._tracking import MODEL_NAME, alias_version, load_model


@dataclass(frozen=True)
class Promotion:
    """The alias gate: whether a new version earned the alias, and the figures that decided.

    The new model's backtest figure of ``metric`` is compared with the best of the rule
    baselines' (``training.promotion.baselines``) and, when the alias already points at a
    version whose model can be judged on this ledger, with that version's on the backtest
    months it did not learn from (the new model's figure on the same rows beside it).

    Attributes
    ----------
    alias : str
    metric : str
    promoted : bool
        The alias points at the new version (earned, or forced).
    forced : bool
        Set by ``force_alias`` (``--force-alias``) although the gate was not passed.
    passed : bool
        The gate's own verdict, forced or not.
    model, baseline_value : float
        The new model's pooled backtest figure and the best baseline's.
    baseline : str
        Which baseline scorer that is.
    min_gain_over_rules, min_gain_over_champion : float
    champion_version : str or None
        The version the alias pointed at before this run.
    champion, model_on_champion_months : float or None
        That version's figure and the new model's on the same rows (None when not compared).
    champion_months : tuple of str
        The backtest origins compared with it.
    note : str
        Why the champion was not compared, when it was not.
    """

    alias: str
    metric: str
    promoted: bool
    forced: bool
    passed: bool
    model: float
    baseline: str
    baseline_value: float
    min_gain_over_rules: float
    min_gain_over_champion: float
    champion_version: str | None = None
    champion: float | None = None
    model_on_champion_months: float | None = None
    champion_months: tuple[str, ...] = ()
    note: str = ""

    @property
    def decision(self) -> str:
        """``promoted``, ``not_promoted`` or ``forced``."""
        if self.forced:
            return "forced"
        return "promoted" if self.promoted else "not_promoted"

    def line(self, version: str | None = None) -> str:
        """The decision and the figures of both sides, in one line."""
        new = f"version {version}" if version else "the new version"
        was = (f"left on version {self.champion_version}" if self.champion_version
               else "left unset")
        if self.forced:
            head = f"alias {self.alias} set on {new} by --force-alias, although the gate failed"
        elif self.promoted:
            head = f"alias {self.alias} moved to {new}"
        else:
            head = (f"alias {self.alias} {was} ({new} registered, not promoted; "
                    "--force-alias to set it anyway)")
        parts = [f"{self.metric} in the backtest: new {_fmt(self.model)} vs {self.baseline} "
                 f"{_fmt(self.baseline_value)} (gain {_gain(self.model, self.baseline_value)}, "
                 f"needs {self.min_gain_over_rules:+.3f})"]
        if self.champion is not None:
            months = (self.champion_months[0] if len(self.champion_months) == 1 else
                      f"{self.champion_months[0]}…{self.champion_months[-1]}")
            parts.append(f"vs version {self.champion_version} on {months}: new "
                         f"{_fmt(self.model_on_champion_months)} vs {_fmt(self.champion)} (gain "
                         f"{_gain(self.model_on_champion_months, self.champion)}, needs "
                         f"{self.min_gain_over_champion:+.3f})")
        elif self.champion_version:
            parts.append(f"version {self.champion_version} not compared: {self.note}")
        return f"{head}: " + "; ".join(parts)

    def tags(self) -> dict[str, str]:
        """Run and version tags recording the decision."""
        out = {"riskmodel.promotion": self.decision, "riskmodel.promotion.alias": self.alias,
               "riskmodel.promotion.metric": self.metric,
               "riskmodel.promotion.reason": self.line()}
        if self.champion_version:
            out["riskmodel.promotion.champion_version"] = self.champion_version
        return out

    def metrics(self) -> dict[str, float]:
        """Run metrics of the decision (the figures compared, their gains, 1/0 promoted)."""
        out = {"promotion_promoted": float(self.promoted), "promotion_forced": float(self.forced),
               "promotion_model": self.model, "promotion_baseline": self.baseline_value,
               "promotion_gain_over_rules": self.model - self.baseline_value}
        if self.champion is not None:
            out.update(promotion_champion=self.champion,
                       promotion_model_on_champion_months=self.model_on_champion_months,
                       promotion_gain_over_champion=self.model_on_champion_months - self.champion)
        return out


def _fmt(value: float | None) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.3f}"


def _gain(new: float | None, old: float | None) -> str:
    if new is None or old is None or not (np.isfinite(new) and np.isfinite(old)):
        return "not measurable"
    return f"{new - old:+.3f}"


def check_promotion_config(config: Config) -> None:
    """Refuse a ``training.promotion`` block the backtest cannot answer, before training.

    Raises
    ------
    ConfigError
        ``metric`` is a caseload figure for a caseload not in ``backtest.caseloads``.
    """
    metric = config.training.promotion.metric
    measured = {f"{kind}_at_{round(c * 100):g}pct" for c in config.backtest.caseloads
                for kind in ("recall", "precision")}
    if metric not in {"auc", "ap"} | measured:
        raise ConfigError(
            f"training.promotion.metric is {metric!r}, which the backtest does not measure; "
            f"expected auc, ap or one of {', '.join(sorted(measured))} (backtest.caseloads).")


# Differences within floating-point noise of the margin count as meeting it.
_TOLERANCE = 1e-12


def promotion_gate(
    result: BacktestResult,
    data: TrainingData,
    config: Config,
    alias: str,
    *,
    champion: RiskModel | None = None,
    champion_version: str | None = None,
    note: str = "",
    force: bool = False,
) -> Promotion:
    """Decide whether a new model earns ``alias`` (``training.promotion`` of the config).

    Parameters
    ----------
    result : BacktestResult
        The new model's backtest.
    data : TrainingData
        The rows the backtest ran on (the champion is scored on their features).
    config : Config
    alias : str
    champion : RiskModel, optional
        The model the alias points at now; judged at the backtest origins it did not learn
        from (:func:`riskmodel.model.comparable_origins`), when its horizon and features
        fit this config.
    champion_version : str, optional
        Its registered version.
    note : str, optional
        Why there is a version but no model to compare (e.g. it could not be loaded).
    force : bool, default=False
        Promote whatever the verdict; the decision records that it was forced.

    Returns
    -------
    Promotion
    """
    rule = config.training.promotion
    pooled = {s: result.pooled(s).get(rule.metric, np.nan) for s in rule.baselines}
    baseline = max(pooled, key=lambda s: -np.inf if not np.isfinite(pooled[s]) else pooled[s])
    model_value = result.pooled("model").get(rule.metric, np.nan)
    passed = bool(model_value - pooled[baseline] >= rule.min_gain_over_rules - _TOLERANCE)
    compared: dict = {}
    if champion is not None:
        compared, note = _judge_champion(result, data, config, champion)
    if compared:
        passed &= bool(compared["model_on_champion_months"] - compared["champion"]
                       >= rule.min_gain_over_champion - _TOLERANCE)
    return Promotion(
        alias=alias, metric=rule.metric, promoted=passed or force, forced=force and not passed,
        passed=passed, model=float(model_value), baseline=baseline,
        baseline_value=float(pooled[baseline]), min_gain_over_rules=rule.min_gain_over_rules,
        min_gain_over_champion=rule.min_gain_over_champion, champion_version=champion_version,
        note=note, **compared)


def _judge_champion(result: BacktestResult, data: TrainingData, config: Config,
                    champion: RiskModel) -> tuple[dict, str]:
    """The champion's and the new model's figures on the rows both can be judged on, or why
    there are none."""
    metric = config.training.promotion.metric
    horizon = config.label.horizon_months
    theirs = getattr(champion, "horizon_months_", None)
    if theirs is not None and int(theirs) != horizon:
        return {}, (f"it predicts falls within {theirs} months, this config within {horizon}")
    names = [str(c) for c in getattr(champion, "feature_names_in_", [])]
    missing = [c for c in names if c not in data.features.columns]
    if missing:
        return {}, (f"it needs features this config does not build "
                    f"({', '.join(missing[:3])}{' …' if len(missing) > 3 else ''})")
    lasts = [v["last"] for v in getattr(champion, "slices_", {}).values()
             if isinstance(v, dict) and isinstance(v.get("last"), str)]
    if not lasts:
        return {}, "the months it learnt from are not recorded"
    trained_to = max(lasts)
    bt = config.backtest
    origins = comparable_origins(result.splits, trained_to, horizon=horizon,
                                 label_embargo=bt.label_embargo)
    if not origins:
        gap = horizon if bt.label_embargo else 1
        latest = result.splits[-1].origin
        limit = str(month_label(int(month_index(pd.Series([latest]))[0]) - gap))
        return {}, (f"it learnt from months up to {trained_to}, and no backtest origin comes "
                    f"late enough to judge it without outcomes it learnt from (the last, "
                    f"{latest}, needs a model that learnt up to {limit} at most)")
    both = compare_fitted(result, data.features, champion, origins, n_bins=bt.calibration_bins)
    new, old = both["model"].get(metric, np.nan), both["other"].get(metric, np.nan)
    if not (np.isfinite(new) and np.isfinite(old)):
        return {}, f"{metric} cannot be measured on {', '.join(origins)} (no fall there)"
    return {"champion": float(old), "model_on_champion_months": float(new),
            "champion_months": tuple(origins)}, ""


def _champion(alias: str, tracking_uri: str | None) -> dict:
    """The version ``alias`` points at now and its model, or why it cannot be judged."""
    version = alias_version(alias, tracking_uri)
    if version is None:
        return {}
    try:
        model, _ = load_model(f"models:/{MODEL_NAME}/{version}", tracking_uri=tracking_uri)
    except ModelNotFoundError as exc:
        return {"champion_version": version, "note": f"it cannot be loaded ({exc})"}
    return {"champion": model, "champion_version": version}
