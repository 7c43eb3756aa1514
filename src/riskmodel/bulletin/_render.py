"""The bulletin's page: Jinja2 templates filled with the month's figures and charts.

The page is ``templates/bulletin.html`` (styles, print stylesheet, the order of the sections)
with one include per section under ``templates/sections/`` and the shared pieces (a figure
card, a table) in ``templates/_macros.html``. Every value is escaped by the template engine
(autoescape); numbers are formatted by the filters registered here: ``num`` (``1,234``, ``—``
when unknown), ``pct`` (``12.5%``), ``fmt`` (any format spec) and ``month_zh``
(``2024年6月``). A county restyles the page by copying the templates folder, editing it and
passing the folder as ``templates`` (:func:`render_bulletin`, :func:`write_bulletin`); a file
it does not copy is taken from the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from .._version import __version__
from ..config import Config, load_config
from ..fonts import cjk_font
from ..ledger import TRIGGER_ZH
from ._charts import cause_chart, township_chart
from ._figures import (
    BEFORE_ZH,
    CHART_TOWNSHIPS,
    MOVES,
    NOW_ZH,
    QUARANTINED,
    TIERS,
    agreement_facts,
    backtest_recall,
    drift_facts,
    high_tier_causes,
    measure_needs,
    model_name,
    month_figures,
    month_of,
    place_name,
    tier_transitions,
    township_table,
    trigger_counts,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE = "bulletin.html"
# The page's own font first, then the CJK fonts of common desktops; the font found on this
# machine is appended, so the text and the charts share one typeface where it is installed.
FONT_STACK = ("Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC",
              "Hiragino Sans GB", "WenQuanYi Micro Hei")


def num(value) -> str:
    """A count as ``1,234``; ``—`` when unknown (None or NaN)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    return f"{int(value):,}"


def pct(value) -> str:
    """A share as ``12.5%``; ``—`` when unknown."""
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.1%}"


def fmt(value, spec: str) -> str:
    """``format(value, spec)``: ``{{ 0.2|fmt(".0%") }}`` is ``20%``."""
    return format(value, spec)


def month_zh(month: str) -> str:
    """``2024-06`` as ``2024年6月``; empty when the month is."""
    if not month:
        return ""
    year, mon = month.split("-")
    return f"{year}年{int(mon)}月"


def css_fonts(fonts) -> Markup:
    """A CSS ``font-family`` list: each family quoted, ``sans-serif`` last, unquoted.

    A family name holding a quote, backslash or angle bracket is left out, so the list cannot
    end the style sheet.
    """
    names = [f'"{f}"' for f in fonts if not set(f) & set('"\\<>')]
    return Markup(", ".join([*names, "sans-serif"]))


def environment(templates: str | Path | None = None) -> Environment:
    """The Jinja2 environment of the page: autoescape, the filters, the templates folder.

    Parameters
    ----------
    templates : str or Path, optional
        A county's templates folder: its files take the place of the package's files of the
        same name (``bulletin.html``, ``_macros.html``, ``sections/*.html``).
    """
    folders = [FileSystemLoader(str(templates))] if templates is not None else []
    env = Environment(loader=ChoiceLoader([*folders, FileSystemLoader(str(TEMPLATES))]),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(num=num, pct=pct, fmt=fmt, month_zh=month_zh, css_fonts=css_fonts)
    return env


def as_summary(summary):
    """``summary`` (a mapping as read from ``summary.json``, or None) as a RunSummary."""
    # Imported here: the scoring job imports the bulletin (tests/test_architecture.py lists it).
    from ..scoring import RunSummary

    if isinstance(summary, RunSummary):
        return summary
    return RunSummary.parse(dict(summary or {}))


def render_bulletin(scores: pd.DataFrame, summary: Mapping | None = None,
                    previous_scores: pd.DataFrame | None = None,
                    config: Config | None = None, quarantined=None,
                    previous_quarantined=None, templates: str | Path | None = None) -> str:
    """The month's bulletin as one self-contained HTML page.

    Parameters
    ----------
    scores : DataFrame
        The month's ``scores.parquet``.
    summary : RunSummary or mapping, optional
        The month's ``summary.json`` (:class:`~riskmodel.scoring.RunSummary`, or a mapping of
        its fields): read for rows quarantined (``reconciliation``), drift and the model's
        facts (``model``); changes since last month come from it only when
        ``previous_scores`` is not given.
    previous_scores : DataFrame, optional
        Last month's ``scores.parquet``: the changes since last month are counted from it.
    config : Config, optional
        Cause and measure names, tier thresholds and the horizon; the packaged default when
        None.
    quarantined, previous_quarantined : sequence of str, optional
        Household ids of this month's and last month's quarantined rows
        (:func:`read_quarantined`): a household missing from one month's scores is then
        counted as quarantined, not as having joined or left the ledger. Without them the
        page says it cannot tell the two apart.
    templates : str or Path, optional
        A county's copy of the templates folder (see :func:`environment`).

    Returns
    -------
    str
        The HTML page.

    Examples
    --------
    >>> scores = pd.DataFrame({
    ...     "household_id": ["A", "B", "C"], "month": ["2024-06"] * 3,
    ...     "township": ["甲镇", "甲镇", "乙乡"], "risk_score": [0.4, 0.1, None],
    ...     "risk_tier": ["high", "medium", None], "reason_1": ["illness", "education", None],
    ...     "measures_zh": ["医疗救助、临时救助", "教育资助", None]})
    >>> page = render_bulletin(scores, {"reconciliation": {"quarantined": 2}})
    >>> 'id="fig-high" data-value="1"' in page and "因病" in page
    True
    """
    config = config or load_config()
    summary = as_summary(summary)
    transitions = (tier_transitions(previous_scores, scores, quarantined, previous_quarantined)
                   if previous_scores is not None else None)
    fig = month_figures(scores, summary, transitions)
    font = cjk_font()
    rules = config.names_zh.rules
    top_rules = sorted(fig["quarantined_by_rule"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    page = environment(templates).get_template(PAGE).render(
        version=__version__,
        font_stack=css_fonts([*FONT_STACK, *([font] if font and font not in FONT_STACK
                                             else [])]),
        place=place_name(scores), month=month_of(scores, summary),
        model_name=model_name(scores, summary),
        trained_at=summary.model.trained_at if summary.model else None,
        f=fig, tiers=config.tiers, names=config.names_zh, horizon=config.label.horizon_months,
        income_ratio=config.baseline.income_ratio,
        triggers=_trigger_rows(trigger_counts(scores)),
        towns=_townships(township_table(scores, config, previous=previous_scores),
                         previous_scores is not None),
        causes=_causes(scores, config) if fig["high"] else None,
        changes=(_changes(transitions, quarantined is not None,
                          previous_quarantined is not None)
                 if transitions is not None else None),
        backtest=backtest_recall(summary.model.backtest if summary.model else None),
        drift=drift_facts(summary.drift, config),
        agreement=agreement_facts(summary.reason_agreement),
        quarantine_rules=[(rules.get(r, r), n) for r, n in top_rules],
    )
    return page


def _trigger_rows(triggers: pd.DataFrame) -> list[tuple[str, dict]]:
    return [(t["trigger"], {**t, "trigger": TRIGGER_ZH.get(t["trigger"], t["trigger"])})
            for t in triggers.to_dict("records")]


def _townships(towns: pd.DataFrame, with_changes: bool) -> dict:
    several = towns.index.get_level_values("county").nunique() > 1
    counted = [c for c in ("households", *TIERS, "not_scored", "newly_high", "triggered",
                           "elimination") if c in towns]
    rows = [(f"{county}/{township}", {**row, "county": county, "township": township})
            for (county, township), row in zip(towns.index, towns.to_dict("records"),
                                               strict=True)]
    sums = towns[counted].sum()
    scored = float(sums[list(TIERS)].sum())
    total = {**sums.to_dict(), "county": "合计", "township": "" if several else "合计",
             "high_share": sums["high"] / scored if scored else np.nan, "main_causes": ""}
    shown = towns[towns.index.isin(towns.nlargest(CHART_TOWNSHIPS, "high", keep="first").index)]
    return {"several": several, "with_changes": with_changes, "elimination": "elimination" in towns,
            "rows": rows, "total": total, "limit": CHART_TOWNSHIPS, "charted": len(shown),
            "chart": township_chart(shown) if len(towns) else None}


def _causes(scores: pd.DataFrame, config: Config) -> dict:
    causes = high_tier_causes(scores, config)
    measures = measure_needs(scores, config)
    rows = [(c["cause"], {**c, "measures_zh": c["measures_zh"] + (
        f"；无劳动力户：{c['measures_no_labor_zh']}"
        if c["measures_no_labor_zh"] != c["measures_zh"] else "")})
        for c in causes.to_dict("records")]
    return {"rows": rows, "chart": cause_chart(causes),
            "text_causes": config.reasons.text_causes, "max_causes": config.reasons.max_causes,
            "measures": [(m["measure"], m) for m in measures.to_dict("records")]}


def _changes(transitions: pd.DataFrame, known_now: bool, known_before: bool) -> dict:
    """The transition table; ``known_now``/``known_before``: whether this month's and last
    month's quarantines were given, so that a household missing from the scores can be told
    apart."""
    states = [s for s in MOVES if s != QUARANTINED or known_before or known_now]
    before_states = [s for s in states if s != QUARANTINED or known_before]
    now_states = [s for s in states if s != QUARANTINED or known_now]
    columns = [("state", "上月＼本月", "text"), *[(s, NOW_ZH[s], "num") for s in now_states]]
    rows = [(before, {"state": BEFORE_ZH[before],
                      **{s: transitions.loc[before, s] for s in now_states}})
            for before in before_states]
    return {"known_now": known_now, "known_before": known_before, "columns": columns,
            "rows": rows}
