"""The monthly bulletin (一月一通报): one printable page of a month, in Chinese.

It owns the counts of a month's output folder (tiers, townships, causes, measures, changes),
the charts, and the HTML page with its template (``templates/``). It reads the files the
scoring job writes, not the job; it may import every package below it (the ground modules,
:mod:`riskmodel.ledger`, :mod:`riskmodel.model`, :mod:`riskmodel.explain`,
:mod:`riskmodel.scoring`, :mod:`riskmodel.plan`) and is imported only by the command line.
"""

from ._io import (
    change_counts,
    high_tier_causes,
    measure_needs,
    previous_month_folder,
    read_month,
    read_quarantined,
    render_bulletin,
    tier_transitions,
    township_table,
    trigger_counts,
    write_bulletin,
)

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
