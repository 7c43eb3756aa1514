"""County sources in: the platform's person tables, the migrant-work table and the department
warnings become the household-month ledger.

:func:`read_sources` reads every ``.csv`` / ``.xlsx`` of a county's folder into
:class:`SourceTable` objects (kind from the headers, download month, canonical fields);
:func:`ingest` aggregates persons to households, joins the migrant table and the warnings, and
writes the ledger with its report and quarantine. Personal fields (证件号码, 姓名, phones, bank
accounts) are read only to derive ages and join feeds; they are never written. It may import
only the ground modules and :mod:`riskmodel.ledger`.
"""

from ..errors import SourceError
from ._households import (
    HOUSEHOLD_FIELDS,
    QUARANTINE_COLUMNS,
    RECORDED_COLUMNS,
    WARNING_COUNTS,
    Households,
    households_from_tables,
)
from ._ingest import IngestResult, ingest
from ._read import SourceTable, read_sources

__all__ = [
    "HOUSEHOLD_FIELDS",
    "QUARANTINE_COLUMNS",
    "RECORDED_COLUMNS",
    "SourceError",
    "WARNING_COUNTS",
    "Households",
    "IngestResult",
    "SourceTable",
    "households_from_tables",
    "ingest",
    "read_sources",
]
