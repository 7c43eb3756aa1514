"""Households explained: their reasons, risk causes, reason text, measures and what-if.

In memory, :func:`explain_households` gives the reason columns of household-months (the monthly
job's), :func:`explain_month` scores and explains a month of a validated ledger, and
:func:`explain_one` one household as a :class:`HouseholdExplanation`; :func:`explain_household`
reads one household's rows of a ledger file and loads the model. The attribution itself is
:mod:`riskmodel.explain._causes`; the terminal text :mod:`riskmodel.explain._text`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from ..config import DEFAULT_MODEL_URI, Config, load_config
from ..errors import LedgerError
from ..ledger import ValidationResult
from ..model import (
    HARD_TRIGGERS,
    build_features,
    model_inputs,
    poverty_status,
    rule_triggers,
)
from ._causes import N_REASONS, _counterfactual, _shared_out, feature_contributions
from ._counterfactual import cause_drops, first_by_counterfactual, risk_shares
from ._facts import cause_givebacks, household_facts, months_of, trailing_window
from ._reasons import (
    format_yuan,
    pass_to_evidence,
    rank_causes,
    reason_texts,
    suggested_measures,
    valid_causes,
)
from ._text import render_household


def explain_households(
    model,
    features: pd.DataFrame,
    ledger_rows: pd.DataFrame,
    config: Config,
    n_jobs: int = 1,
    history: pd.DataFrame | None = None,
    risk: np.ndarray | None = None,
) -> pd.DataFrame:
    """Reasons, the national risk-cause list, reason text and measures for each household.

    Parameters
    ----------
    model : RiskModel or HistGradientBoostingClassifier
    features : DataFrame
        Model features of the household-months to explain.
    ledger_rows : DataFrame
        The validated ledger rows of the same household-months (same index as ``features``).
    config : Config
    n_jobs : int, default=1
    history : DataFrame, optional
        The validated ledger the rows come from, so that the reason text quotes trailing
        12- and 3-month figures and the households at risk get counterfactual cause weights
        (see :func:`cause_contributions`); without it only the months in ``ledger_rows`` are
        summed.
    risk : ndarray, optional
        The model's risk of each row, when already computed (else predicted here).

    Returns
    -------
    DataFrame
        Indexed like ``features``. The causes are ranked by :func:`cause_contributions` with
        the household's ledger, so a medical bill or a lost job that pulled the net income down
        counts under its own cause rather than under 收入偏低:

        - ``reason_1``, ``reason_2``, ``reason_3``: cause codes that raise the risk, strongest
          first, among the causes the consistency rules allow (with evidence in the
          household's own months); NA where fewer causes raise it by at least
          ``reasons.min_weight``. A cause without evidence passes its risk-raising weight to
          the strongest cause with evidence (:func:`riskmodel.explain.pass_to_evidence`), so
          the weights still add up to the log-odds. For households with counterfactual
          weights, a first shock cause whose give-back takes away less than
          ``reasons.first_min_share`` of the risk passes its weight to the cause taking away at
          least ``reasons.structural_share``, or else to 收入偏低/缺劳动力; a first 收入偏低 or
          缺劳动力 passes its weight to a cause taking away at least
          ``reasons.structural_share``
          (:func:`riskmodel.explain.first_by_counterfactual`).
        - ``reason_1_weight`` … ``reason_3_weight``: each reason's contribution to the log-odds
          (additive; ``exp(weight)`` is the factor by which the cause multiplies the odds).
        - ``risk_causes``: up to ``reasons.max_causes`` codes joined by ``","``.
        - ``reason_text_zh``, ``reason_text_en``: the first ``reasons.text_causes`` reasons in
          words, with the household's own figures.
        - ``measures_zh``: the configured measures of those causes; 兜底 measures for
          households without a laborer.
    """
    if not features.index.equals(ledger_rows.index):
        raise ValueError("Got ledger_rows indexed unlike features; expected the same index "
                         "(the ledger rows the features were built from).")
    values, base = feature_contributions(model, features, n_jobs=n_jobs)
    window = trailing_window(ledger_rows, ledger_rows if history is None else history)
    facts = household_facts(ledger_rows, config, window=window)
    givebacks = cause_givebacks(ledger_rows, window)
    drops = _counterfactual(model, features, values, base, ledger_rows, history, window,
                            givebacks, config, risk)
    allowed = valid_causes(facts, config)
    contributions = _shared_out(values, features, ledger_rows, window,
                                facts["line"].to_numpy(), config, drops, givebacks, allowed,
                                facts["line_ahead"].to_numpy())
    contributions = pass_to_evidence(contributions, allowed)
    if drops is not None and config.reasons.first_min_share is not None:
        shares = risk_shares(model, values.to_numpy().sum(axis=1) + base, drops)
        # Where the ledger holds no monthly incomes (incomes as recorded, docs/ledger.md),
        # giving a cause back returns no yuan: its share says nothing, the record decides.
        monthly = facts["observed_months"].to_numpy() >= config.label.min_observed_months
        shares.loc[~monthly] = np.nan
        contributions = first_by_counterfactual(contributions, shares, allowed, config)
    codes, weights = rank_causes(contributions, allowed, config)
    return reasons_frame(codes, weights, facts, config)


def reasons_frame(
    codes: np.ndarray, weights: np.ndarray, facts: pd.DataFrame, config: Config
) -> pd.DataFrame:
    """The output columns of :func:`explain_households` from ranked causes and facts."""
    out = pd.DataFrame(index=facts.index)
    k = codes.shape[1]
    # Each slot's codes as integers into the list of distinct codes (-1 where none): the text
    # columns are taken from a few distinct strings, not converted household by household.
    position, distinct = pd.factorize(codes.ravel(), use_na_sentinel=True)
    position = position.reshape(codes.shape)
    names = pa.array([str(code) for code in distinct], pa.large_string())
    for j in range(N_REASONS):
        if j < k:
            column = names.take(pa.array(position[:, j], mask=position[:, j] < 0))
        else:
            column = pa.nulls(len(facts), pa.large_string())
        out[f"reason_{j + 1}"] = _strings(column)
    for j in range(N_REASONS):
        out[f"reason_{j + 1}_weight"] = weights[:, j] if j < k else np.nan
    out["risk_causes"] = _strings(_listed(position, distinct, len(facts)))
    texts = reason_texts(codes, facts, config)
    # The text columns are pandas' default string type (NaN for missing), as an array of
    # Python strings would be read.
    out["reason_text_zh"] = texts["zh"].array.astype(_TEXT)
    out["reason_text_en"] = texts["en"].array.astype(_TEXT)
    out["measures_zh"] = suggested_measures(codes, facts["laborers"].to_numpy() > 0,
                                            config).array.astype(_TEXT)
    return out


_TEXT = pd.StringDtype(na_value=np.nan)


def _strings(values: pa.Array) -> pd.arrays.ArrowStringArray:
    """An Arrow array of text as pandas' ``string`` (NA for missing)."""
    return pd.arrays.ArrowStringArray(pa.chunked_array([values]))


def _listed(position: np.ndarray, distinct: np.ndarray, n: int) -> pa.Array:
    """``risk_causes``: each household's codes joined by ``","`` ("" where the first slot is
    empty), built once per distinct combination of codes."""
    if position.shape[1] == 0:
        return pa.array([""] * n, pa.large_string())
    base = len(distinct) + 1
    key = np.zeros(n, dtype=np.int64)
    for j in range(position.shape[1]):
        key = key * base + (position[:, j] + 1)
    which, keys = pd.factorize(key)
    table = []
    for value in keys.tolist():
        combo = [(value // base ** j) % base - 1 for j in range(position.shape[1] - 1, -1, -1)]
        table.append(",".join(str(distinct[c]) for c in combo if c >= 0)
                     if combo[0] >= 0 else "")
    return pa.array(table, pa.large_string()).take(which)


def explain_month(
    model, ledger: pd.DataFrame, config: Config, month: str, n_jobs: int = 1
) -> pd.DataFrame:
    """Score and explain every household of one month of a validated ledger.

    Parameters
    ----------
    model : RiskModel
    ledger : DataFrame
        A validated ledger holding the month and the 12 months before it.
    config : Config
    month : str
        ``YYYY-MM``.
    n_jobs : int, default=1

    Returns
    -------
    DataFrame
        Indexed by ``household_id``: ``month``, ``risk_score`` (calibrated probability) and
        the columns of :func:`explain_households`. Every household of the month is there,
        including those already under the line, which the monthly job does not score.
    """
    features = build_features(ledger, config, months=[month])
    if features.empty:
        raise LedgerError(f"The ledger has no rows for month {month!r}.")
    rows = ledger.loc[features.index]
    risk = model.predict_proba(model_inputs(model, features))[:, 1]
    out = explain_households(model, features, rows, config, n_jobs=n_jobs, history=ledger,
                             risk=risk)
    out.insert(0, "risk_score", risk)
    out.insert(0, "month", rows["month"].to_numpy())
    out.index = pd.Index(rows["household_id"].to_numpy(), name="household_id")
    return out


@dataclass(frozen=True, eq=False)
class HouseholdExplanation:
    """One household's score and explanation at one month (:func:`explain_one`).

    ``str(explanation)`` (or :meth:`to_text`) is the report ``riskmodel explain`` prints.

    Attributes
    ----------
    household_id : str
    month : str
        ``YYYY-MM``.
    risk_score : float
        Calibrated probability of falling under the line within ``label.horizon_months``;
        NaN when the model does not score the household (see ``not_scored_reason``).
    risk_tier : str or None
        ``high``, ``medium`` or ``low`` by the config's ``tiers``; None when not scored.
    not_scored_reason : str or None
        As ``scores.parquet`` says it: ``poor_now`` (already under the line) or
        ``insufficient_history`` (fewer than ``label.min_observed_months`` months of income
        observed in the last 12); None when scored.
    observed_months : int
        Months of the last 12 with income observed.
    income_pc : float
        Annual per-capita disposable income over the last 12 months; NaN when unknown.
    poverty_line : float
        The household's monitoring line for the month.
    rule_triggers : tuple of str
        The hard triggers that fired (应纳尽纳), as ``scores.parquet``'s ``rule_triggers``.
    reasons : DataFrame
        The reasons, strongest first, indexed by ``rank`` (1, 2, …): ``cause`` (code),
        ``name_zh`` and ``weight`` (the cause's contribution to the log-odds). Empty when not
        scored.
    risk_causes : tuple of str
        The national risk-cause list (codes).
    reason_text_zh, reason_text_en : str
        The reasons in words, with the household's own figures ("" when not scored).
    measures_zh : tuple of str
        Suggested measures of the first reasons.
    risk_without : Series
        The risk with each cause given back (:func:`risk_without`), indexed by cause code.
    what_if : DataFrame
        The model's response to each applicable measure (:func:`riskmodel.explain.what_if`):
        ``measure``, ``cost``, ``risk_before``, ``risk_after``, ``risk_change``.
    config : Config
        The configuration it was made with (names, tiers, horizon).
    """

    household_id: str
    month: str
    risk_score: float
    risk_tier: str | None
    not_scored_reason: str | None
    observed_months: int
    income_pc: float
    poverty_line: float
    rule_triggers: tuple[str, ...]
    reasons: pd.DataFrame = field(repr=False)
    risk_causes: tuple[str, ...]
    reason_text_zh: str
    reason_text_en: str
    measures_zh: tuple[str, ...]
    risk_without: pd.Series = field(repr=False)
    what_if: pd.DataFrame = field(repr=False)
    config: Config = field(repr=False)

    @property
    def scored(self) -> bool:
        """Whether the model scored the household."""
        return self.not_scored_reason is None

    @property
    def on_watchlist(self) -> bool:
        """In the high tier or with a hard trigger fired, as the monthly watch list."""
        return self.risk_tier == "high" or bool(self.rule_triggers)

    def to_text(self) -> str:
        """The plain-text report of ``riskmodel explain``."""
        if self.scored:
            return render_household(self.household_id, self._row(), self.what_if, self.config,
                                    self.risk_without)
        return self._not_scored_text()

    def __str__(self) -> str:
        return self.to_text()

    def _row(self) -> pd.Series:
        """The household's row as :func:`explain_month` gives it."""
        row = {"month": self.month, "risk_score": self.risk_score}
        for j in range(1, N_REASONS + 1):
            have = j in self.reasons.index
            row[f"reason_{j}"] = self.reasons.at[j, "cause"] if have else pd.NA
            row[f"reason_{j}_weight"] = self.reasons.at[j, "weight"] if have else np.nan
        return pd.Series({**row, "risk_causes": ",".join(self.risk_causes),
                          "reason_text_zh": self.reason_text_zh,
                          "reason_text_en": self.reason_text_en,
                          "measures_zh": "、".join(self.measures_zh)})

    def _not_scored_text(self) -> str:
        if self.not_scored_reason == "poor_now":
            state = "已在监测线以下 already below the line; the model does not score it"
        else:
            needed = self.config.label.min_observed_months
            state = (f"观测月份不足，无法评分 too little history to score: "
                     f"{self.observed_months} month(s) of income observed in the last 12, "
                     f"the model needs {needed}")
        listed = ("列入监测预警名单 on the watch list" if self.on_watchlist
                  else "未列入监测预警名单 not on the watch list")
        return "\n".join([
            f"户 {self.household_id}  {self.month}",
            f"状态 status: {state}",
            f"触发规则 rules fired: {', '.join(self.rule_triggers) or '无 none'}; {listed}",
            f"近12个月人均可支配收入 income per person: {format_yuan([self.income_pc])[0]} 元,"
            f" 监测线 line: {format_yuan([self.poverty_line])[0]} 元",
        ])


def explain_one(
    ledger: pd.DataFrame | ValidationResult,
    model,
    household_id: str,
    month: str | None = None,
    config: Config | None = None,
) -> HouseholdExplanation:
    """One household's score, causes, reasons, measures and what-if, in memory.

    The household is scored and explained as the monthly job scores it (same tiers, reasons
    and hard triggers as ``scores.parquet``), from its own rows up to ``month``.

    Parameters
    ----------
    ledger : DataFrame or ValidationResult
        A validated ledger (``load_ledger(path).valid``), or the result of
        :func:`riskmodel.load_ledger` / :func:`riskmodel.validate_ledger` itself, which also
        lets a quarantined row be named as such.
    model : RiskModel
        A fitted model (e.g. :func:`riskmodel.load_model`'s first element).
    household_id : str
    month : str, optional
        ``YYYY-MM``; the ledger's last month when ``None``.
    config : Config, optional
        The packaged default when ``None``.

    Returns
    -------
    HouseholdExplanation
        ``str()`` of it is the report ``riskmodel explain`` prints. A household already
        under the line, or with too few observed months, has no model score: its
        ``not_scored_reason`` says which and ``rule_triggers`` which hard triggers fired.

    Raises
    ------
    LedgerError
        The household is not in the ledger, has no row for the month, or its row for the
        month is quarantined (the message names the rule it broke).

    Examples
    --------
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from riskmodel import build_features, load_config, make_labels, validate_ledger
    >>> from riskmodel.model import ledger_features
    >>> from riskmodel.synthetic import generate_ledger
    >>> config = load_config()
    >>> ledger = validate_ledger(generate_ledger(households=60, months=14, seed=0))
    >>> features = build_features(ledger.valid, config)[ledger_features(ledger.valid)]
    >>> target = make_labels(ledger.valid, config)["target"]
    >>> known = target.notna().to_numpy()
    >>> model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(
    ...     features[known], target[known].astype(int))
    >>> month = ledger.valid["month"].max()
    >>> scored = features.index[ledger.valid["month"].eq(month).to_numpy()]
    >>> household = ledger.valid.loc[scored[0], "household_id"]
    >>> e = explain_one(ledger, model, household, config=config)
    >>> (e.household_id == household, e.month == month, e.scored or e.not_scored_reason)
    (True, True, True)
    >>> list(e.what_if.columns)
    ['measure', 'cost', 'risk_before', 'risk_after', 'risk_change']
    >>> str(e).splitlines()[0] == f"户 {household}  {month}"
    True
    """
    from ._whatif import what_if

    config = load_config() if config is None else config
    quarantine = None
    if isinstance(ledger, ValidationResult):
        ledger, quarantine = ledger.valid, ledger.quarantine
    household_id = str(household_id).strip()
    month = month or (str(ledger["month"].max()) if len(ledger) else "")
    history = _history(ledger, quarantine, household_id, month, "the ledger")
    at = (history["month"] == month).to_numpy()
    status = poverty_status(history, config)[at].iloc[0]
    features = build_features(history, config, months=[month])
    fired = rule_triggers(features, config)
    hard = fired[[c for c in HARD_TRIGGERS if c in fired.columns]].iloc[0].to_dict()
    poor_now = pd.notna(status["poor"]) and bool(status["poor"])
    if config.triggers.income_below_line and poor_now:
        # As the monthly job: the label's own "poor now" fires the trigger.
        hard["income_below_line"] = True
    facts = {
        "household_id": household_id, "month": month,
        "observed_months": int(status["observed_months"]),
        "income_pc": float(status["income_pc"]), "poverty_line": float(status["line"]),
        "rule_triggers": tuple(name for name, on in hard.items() if on), "config": config,
    }
    if pd.isna(status["poor"]) or poor_now:
        return HouseholdExplanation(
            risk_score=np.nan, risk_tier=None,
            not_scored_reason="insufficient_history" if pd.isna(status["poor"]) else "poor_now",
            reasons=pd.DataFrame({"cause": [], "name_zh": [], "weight": []},
                                 index=pd.Index([], dtype="int64", name="rank")),
            risk_causes=(), reason_text_zh="", reason_text_en="", measures_zh=(),
            risk_without=pd.Series(dtype="float64", name="risk"),
            what_if=pd.DataFrame({"measure": [], "cost": [], "risk_before": [],
                                  "risk_after": [], "risk_change": []}),
            **facts)
    row = explain_month(model, history, config, month).iloc[0]
    names = {c.code: c.name_zh for c in config.causes}
    ranks = [j for j in range(1, N_REASONS + 1) if pd.notna(row[f"reason_{j}"])]
    reasons = pd.DataFrame({
        "cause": [str(row[f"reason_{j}"]) for j in ranks],
        "name_zh": [names[str(row[f"reason_{j}"])] for j in ranks],
        "weight": [float(row[f"reason_{j}_weight"]) for j in ranks],
    }, index=pd.Index(ranks, dtype="int64", name="rank"))
    options = what_if(model, history, config, month)
    without = risk_without(model, history, config, month).iloc[0].rename("risk")
    return HouseholdExplanation(
        risk_score=float(row["risk_score"]),
        risk_tier=config.tiers.assign([row["risk_score"]])[0], not_scored_reason=None,
        reasons=reasons, risk_causes=tuple(c for c in str(row["risk_causes"]).split(",") if c),
        reason_text_zh=str(row["reason_text_zh"]), reason_text_en=str(row["reason_text_en"]),
        measures_zh=tuple(m for m in str(row["measures_zh"]).split("、") if m),
        risk_without=without,
        what_if=options.drop(columns="household_id").reset_index(drop=True),
        **facts)


def _history(ledger: pd.DataFrame, quarantine: pd.DataFrame | None, household_id: str,
             month: str, source) -> pd.DataFrame:
    """The household's valid rows up to ``month``, or the error saying why it has none then."""
    mine = ledger[(ledger["household_id"] == household_id).to_numpy(dtype=bool)]
    if quarantine is None:
        quarantine = pd.DataFrame({"household_id": [], "month": [], "rule": []})
    broken = quarantine[(quarantine["household_id"].astype("string").str.strip()
                         == household_id).fillna(False).to_numpy(dtype=bool)]
    if mine.empty and broken.empty:
        n = ledger["household_id"].nunique()
        raise LedgerError(f"Household {household_id!r} is not in {source} ({n:,} households); "
                          "check the id.")
    if not (mine["month"] == month).any():
        raise _no_row(household_id, month, source, mine, broken)
    return mine[months_of(mine["month"]) <= months_of(pd.Series([month]))[0]]


def explain_household(
    ledger_path: str,
    household_id: str,
    month: str | None = None,
    model_uri: str | None = None,
    config_path: str | None = None,
    tracking_uri: str | None = None,
) -> str:
    """One household's score, causes, reason text, measures and what-if table, as text.

    Reads only the household's rows of the file, loads the model and prints
    :func:`explain_one`; use that function for the same explanation as data.

    Parameters
    ----------
    ledger_path : str
        Ledger file (``.parquet``, ``.csv`` or ``.xlsx``).
    household_id : str
    month : str, optional
        ``YYYY-MM``; the ledger's last month when ``None``.
    model_uri : str, optional
        MLflow model URI; ``models:/return-to-poverty@champion`` when ``None``.
    config_path : str, optional
        YAML config laid over the packaged default; the default alone when ``None``.
    tracking_uri : str, optional
        MLflow tracking store.

    Returns
    -------
    str
        A plain-text report for the terminal. A household already under the line, or with
        too few observed months, has no model score (the monthly job does not score it): the
        report says which, which hard triggers fired (none, if none did) and shows its figures
        but no score, reasons or what-if.

    Raises
    ------
    LedgerError
        The household is not in the ledger, has no row for the month, or its row for the
        month is quarantined (the message names the rule it broke).
    """
    from ..ledger import LedgerChunks
    from ..model import load_model

    config = load_config(config_path)
    # Only this household's rows are read and validated, not the whole ledger.
    chunks = LedgerChunks(ledger_path, config.scoring.chunk_households)
    household_id = str(household_id).strip()
    if household_id not in chunks.households:
        raise LedgerError(f"Household {household_id!r} is not in {ledger_path} "
                          f"({len(chunks.households):,} households); check the id.")
    result = chunks.validated_rows_of([household_id])
    month = month or (chunks.months[-1] if chunks.months else "")
    # The ledger's errors come before the model is loaded.
    _history(result.valid, result.quarantine, household_id, month, ledger_path)
    model, _ = load_model(model_uri or DEFAULT_MODEL_URI, tracking_uri=tracking_uri)
    return explain_one(result, model, household_id, month=month, config=config).to_text()


def _no_row(household_id: str, month: str, ledger_path, valid: pd.DataFrame,
            quarantine: pd.DataFrame) -> LedgerError:
    """Why a household in the ledger has no valid row for ``month``: quarantined, or absent."""
    from ..ledger import parse_months

    quarantined_month, _ = parse_months(quarantine["month"])
    broken = quarantine[(quarantined_month == month).fillna(False).to_numpy(dtype=bool)]
    if len(broken):
        row = broken.iloc[0]
        others = len(str(row["reasons"]).split("; ")) - 1
        return LedgerError(
            f"The row of household {household_id!r} for {month} in {ledger_path} is "
            f"quarantined: it breaks {row['rule']} ({row['column']}={row['value']!r})"
            + (f" and {others} other rule(s)" if others else "") + "; fix the row "
            "(`riskmodel validate --ledger PATH --out DIR` lists every rule it breaks).")
    months = sorted({*valid["month"], *quarantined_month.dropna()})
    held = (", ".join(months) if len(months) <= 6
            else f"{len(months)} months from {months[0]} to {months[-1]}")
    return LedgerError(f"Household {household_id!r} has no row for {month} in {ledger_path}; "
                       f"its rows are for {held}.")


def risk_without(model, ledger: pd.DataFrame, config: Config, month: str) -> pd.DataFrame:
    """Each household's risk at ``month`` with each cause it has given back in its ledger.

    The model's counterfactual (:func:`riskmodel.explain.cause_drops`) as calibrated
    risks: one row per household of the month (indexed by ``household_id``), one column per
    cause; equal to the risk now where the cause took nothing from the household.
    """
    features = build_features(ledger, config, months=[month])
    rows = ledger.loc[features.index]
    raw = model.decision_function(features[[str(c) for c in model.feature_names_in_]])
    drops = cause_drops(model, rows, ledger, config, raw=raw)
    out = pd.DataFrame({cause: _risk(model, raw - drops[cause].to_numpy())
                        for cause in drops.columns})
    out.index = pd.Index(rows["household_id"].to_numpy(), name="household_id")
    return out


def _risk(model, log_odds: np.ndarray) -> np.ndarray:
    """Calibrated risk of raw log-odds (the sigmoid for a bare classifier)."""
    if hasattr(model, "calibrated"):
        return model.calibrated(log_odds)
    return 1.0 / (1.0 + np.exp(-log_odds))
