"""County sources: the national platform's person tables, the migrant-work table and the
departments' warning lists, read and recognised by their headers.

It owns reading a county's source files (:func:`read_sources`: each file's kind, header,
download month and mapped columns as :class:`SourceTable`) and the per-file cache of parsed
files. It may import only the ground modules and :mod:`riskmodel.ledger`.
"""

from ..errors import SourceError
from ._read import SourceTable, read_sources

__all__ = [
    "SourceError",
    "SourceTable",
    "read_sources",
]
