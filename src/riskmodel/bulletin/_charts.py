"""The bulletin's charts: matplotlib figures embedded in the page as inline SVG.

Charts are drawn in a CJK font found on the machine (:func:`~riskmodel.fonts.cjk_font`) and
embedded as SVG with the glyphs as paths, so they look the same wherever the file is opened.
Each chart is returned as :class:`markupsafe.Markup`: markup the templates insert as it is.
"""

from __future__ import annotations

import io
import re

import matplotlib
import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

from ..fonts import cjk_font
from ._figures import STATE_COLORS, STATE_ZH, STATES


def _svg(fig: Figure) -> Markup:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "riskmodel-bulletin", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None},
                    bbox_inches="tight")
    text = buffer.getvalue()
    # The SVG matplotlib wrote, trusted markup.
    return Markup(re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg"):],
                         flags=re.S))


def _chart_rc() -> dict:
    font = cjk_font()
    return {"font.family": "sans-serif",
            "font.sans-serif": [font, "DejaVu Sans"] if font else ["DejaVu Sans"],
            "axes.unicode_minus": False, "font.size": 9}


def _labels(index: pd.MultiIndex) -> list[str]:
    """Township names, prefixed by the county when there are several counties."""
    counties = index.get_level_values("county")
    towns = index.get_level_values("township")
    if counties.nunique() <= 1:
        return list(towns)
    return [f"{c} {t}" for c, t in zip(counties, towns, strict=True)]


def township_chart(table: pd.DataFrame) -> Markup:
    """Households of each township by state, stacked bars (the table of :func:`township_table`)."""
    with matplotlib.rc_context(_chart_rc()):
        fig = Figure(figsize=(7.2, 0.9 + 0.3 * len(table)))
        ax = fig.subplots()
        names = _labels(table.index)[::-1]
        left = np.zeros(len(names))
        for state in STATES:
            values = table[state].to_numpy(dtype="float64")[::-1]
            ax.barh(names, values, left=left, color=STATE_COLORS[state], label=STATE_ZH[state],
                    height=0.65)
            left += values
        for y, (total, high) in enumerate(zip(left, table["high"].to_numpy()[::-1],
                                              strict=True)):
            ax.text(total, y, f" {int(total):,}（高 {int(high):,}）", va="center", fontsize=8)
        ax.set_xlim(0, max(left.max(), 1) * 1.22)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_xlabel("户数")
        ax.legend(ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _svg(fig)


def cause_chart(causes: pd.DataFrame) -> Markup:
    """Share of the high tier by first cause (the table of :func:`high_tier_causes`)."""
    with matplotlib.rc_context(_chart_rc()):
        shown = causes[causes["primary"] > 0].iloc[::-1]
        fig = Figure(figsize=(7.2, 0.8 + 0.3 * len(shown)))
        ax = fig.subplots()
        ax.barh(shown["name_zh"], shown["share"] * 100, color=STATE_COLORS["high"], height=0.6)
        for y, (share, n) in enumerate(zip(shown["share"], shown["primary"], strict=True)):
            ax.text(share * 100, y, f" {int(n):,} 户（{share:.1%}）", va="center", fontsize=8)
        ax.set_xlim(0, max(float(shown["share"].max()) * 100, 1) * 1.3)
        ax.set_xlabel("占高风险户比例（%，按首要风险类型）")
        ax.spines[["top", "right"]].set_visible(False)
        return _svg(fig)
