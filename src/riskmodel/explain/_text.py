"""The terminal report of one household's explanation (``riskmodel explain``)."""

from __future__ import annotations

import unicodedata

import pandas as pd

from ..config import Config
from ._causes import N_REASONS


def render_household(household_id: str, row: pd.Series, options: pd.DataFrame,
                     config: Config, without: pd.Series | None = None) -> str:
    """The terminal report of :func:`explain_household`; ``without`` is the household's row
    of :func:`risk_without`."""
    from ..ledger import TIER_ZH
    from ._whatif import measure_names

    names = {c.code: f"{c.name_zh} {c.code}" for c in config.causes}
    tier = config.tiers.assign([row["risk_score"]])[0]
    tier_zh = f"{TIER_ZH[tier]}风险" if tier in TIER_ZH else tier
    listed = "" if pd.isna(row["risk_causes"]) else str(row["risk_causes"])
    causes = "、".join(config.cause_by_code[c].name_zh if c in config.cause_by_code else c
                      for c in listed.split(",") if c)
    lines = [
        f"户 {household_id}  {row['month']}",
        f"风险 risk: {row['risk_score']:.1%}  ({tier_zh} {tier}), within "
        f"{config.label.horizon_months} months",
        "主要原因 reasons:",
    ]
    for j in range(1, N_REASONS + 1):
        code = row[f"reason_{j}"]
        if pd.notna(code):
            lines.append(f"  {j}. {names[code]}  (log-odds +{row[f'reason_{j}_weight']:.2f})")
    lines += [
        f"风险类型 risk causes: {causes or '—'}",
        f"说明: {row['reason_text_zh']}",
        f"reason: {row['reason_text_en']}",
        f"建议措施 measures: {row['measures_zh'] or '—'}",
    ]
    if without is not None:
        lines.append("去除此因 risk with each cause taken away (the model's response):")
        moved = without[(without - row["risk_score"]).abs() > 5e-4].sort_values()
        if moved.empty:
            lines.append("  —")
        for code, risk in moved.items():
            lines.append(f"  {names.get(code, code):<22} {row['risk_score']:6.1%} → {risk:6.1%}  "
                         f"({risk - row['risk_score']:+.1%})")
    lines.append("帮扶测算 what-if (the model's response, not a causal effect):")
    if options.empty:
        lines.append("  —")
    measures = measure_names(options["measure"], config) if len(options) else {}
    for option in options.itertuples(index=False):
        name = measures[option.measure]
        # A Chinese character fills two columns of a terminal.
        lines.append(f"  {name}{' ' * max(20 - _width(name), 1)}{option.cost:>8,.0f} 元  "
                     f"{option.risk_before:6.1%} → {option.risk_after:6.1%}  "
                     f"({option.risk_change:+.1%})")
    return "\n".join(lines)


def _width(text: str) -> int:
    """Columns ``text`` fills in a terminal: two for each wide (CJK) character."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
