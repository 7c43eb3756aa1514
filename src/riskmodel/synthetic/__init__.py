"""Synthetic ledgers with known truth, for tests, benchmarks and demos.

It owns the household process (incomes, shocks, risk causes, measures month by month) and its
family of variants (process specifications, :func:`load_process`), the
ledger it writes in the ledger contract's columns, and the truth beside it (true risk, true
cause, the label on the complete record); and the same households as a county's exports
(person, migrant-work and warning tables) with the ledger an ingest of them must give. It
stands beside the pipeline: it may import the ground modules, :mod:`riskmodel.ledger` (the
contract) and the label definition of :mod:`riskmodel.model`; nothing but the command line
imports it.
"""

from ._generate import (
    BURN_IN,
    SyntheticData,
    base_rates,
    check_paths,
    generate,
    generate_ledger,
    write,
)
from ._knobs import Knobs
from ._observe import Observation
from ._population import populate
from ._process import PROCESSES, Process, load_process
from ._simulate import (
    CADRE_LINES,
    CAUSE_EVENTS,
    CAUSES,
    PROVINCE,
    REFERENCE_MONTH,
    Draws,
    Params,
    composition,
    draw,
    paths,
    places,
    policy_line,
    step,
)
from ._sources import (
    CountySources,
    check_sources_paths,
    county_sources,
    sources_expected,
    write_sources,
)

__all__ = [
    "BURN_IN",
    "CADRE_LINES",
    "CAUSES",
    "CAUSE_EVENTS",
    "PROVINCE",
    "REFERENCE_MONTH",
    "Draws",
    "Knobs",
    "Observation",
    "PROCESSES",
    "Params",
    "Process",
    "CountySources",
    "SyntheticData",
    "base_rates",
    "check_paths",
    "check_sources_paths",
    "composition",
    "county_sources",
    "draw",
    "generate",
    "generate_ledger",
    "load_process",
    "paths",
    "places",
    "policy_line",
    "populate",
    "sources_expected",
    "step",
    "write",
    "write_sources",
]
