"""The monthly bulletin (一月一通报): one printable page of a month, in Chinese.

It owns the counts of a month's output folder (tiers, townships, causes, measures, changes:
``_figures``), the charts (``_charts``), the HTML page from Jinja2 templates a county can
restyle (``_render``, ``templates/``) and the files read and written (``_io``). It reads the
files the scoring job writes, not the job; it may import every package below it (the ground modules,
:mod:`riskmodel.ledger`, :mod:`riskmodel.model`, :mod:`riskmodel.explain`,
:mod:`riskmodel.scoring`, :mod:`riskmodel.plan`) and is imported only by the command line.
"""

from ._figures import (
    change_counts,
    high_tier_causes,
    measure_needs,
    tier_transitions,
    township_table,
    trigger_counts,
)
from ._io import previous_month_folder, read_month, read_quarantined, write_bulletin
from ._render import render_bulletin

__all__ = [
    "change_counts",
    "high_tier_causes",
    "measure_needs",
    "previous_month_folder",
    "read_month",
    "read_quarantined",
    "render_bulletin",
    "tier_transitions",
    "township_table",
    "trigger_counts",
    "write_bulletin",
]
