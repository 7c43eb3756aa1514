"""``riskmodel validate``'s check of a whole ledger file, chunk by chunk, and how it reports the
columns a file leaves empty."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._chunks import LedgerChunks
from ._read import LedgerSource
from ._validate import LEDGER_COLUMNS, OPTIONAL_COUNTS, VALUE_NEEDED, empty_quarantine

logger = logging.getLogger(__name__)


def split_empty_columns(columns: list[str]) -> tuple[list[str], list[str]]:
    """Columns present but empty in every row of a file: those read as unknown, and those
    every row needs a value in (:data:`riskmodel.ledger.VALUE_NEEDED`: each row is
    quarantined). An optional count left empty throughout reads as absent, so as unknown.

    Examples
    --------
    >>> split_empty_columns(["inc_wage", "elderly", "members", "dibao"])
    (['inc_wage', 'elderly', 'dibao'], ['members'])
    """
    needed = set(VALUE_NEEDED) - set(OPTIONAL_COUNTS)
    return [c for c in columns if c not in needed], [c for c in columns if c in needed]


@dataclass
class FileValidation:
    """What :func:`validate_file` made of a ledger file (the valid rows themselves are written,
    not kept).

    ``n_in`` counts the rows holding a record, ``n_blank`` the blank rows skipped (every field
    empty; ``blank_rows`` numbers them as ``source_row`` does): the file has
    ``n_in + n_blank`` rows.
    ``missing_optional`` lists the optional columns absent from the file, ``empty_columns`` the
    contract columns present but without a single value; ``source`` how the file was read
    (:class:`riskmodel.ledger.LedgerSource`: encoding, sheet).
    """

    n_in: int
    n_valid: int
    quarantine: pd.DataFrame
    missing_optional: list[str] = field(default_factory=list)
    counts_by_rule: dict[str, int] = field(default_factory=dict)
    blank_rows: np.ndarray = field(default_factory=lambda: np.array([], dtype="int64"))
    empty_columns: list[str] = field(default_factory=list)
    source: LedgerSource | None = None

    @property
    def n_blank(self) -> int:
        return len(self.blank_rows)

    @property
    def reconciles(self) -> bool:
        return self.n_in == self.n_valid + len(self.quarantine)


def validate_file(path: str | Path, chunk_households: int,
                  out: str | Path | None = None, sheet: str | None = None) -> FileValidation:
    """Validate a ledger file chunk by chunk of households, so memory is bounded by a chunk.

    With ``out``, writes ``valid.parquet`` (the valid rows household by household, in the
    order households first appear in the file, each household's months in order),
    ``quarantine.parquet`` (the rejected rows with their rules, ``source_row`` numbering the
    file's rows from 0) and ``quarantine.xlsx`` (the same rows for the offices that fix them:
    :func:`riskmodel.ledger.write_quarantine_xlsx`), each renamed into place only when whole.
    Blank rows are in neither: they are counted in ``n_blank`` and logged, as are columns
    present but empty. ``sheet`` names a workbook's ledger sheet.
    """
    from ._outputs import AtomicParquetWriter, write_parquet_atomic, write_quarantine_xlsx

    chunks = LedgerChunks(path, chunk_households, sheet=sheet)
    counts = chunks.counts()
    quarantined, missing = [], []
    empty = set(LEDGER_COLUMNS)
    writer = contextlib.nullcontext()
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        writer = AtomicParquetWriter(Path(out) / "valid.parquet")
    with writer:
        for chunk in chunks.validated(counts=counts):
            quarantined.append(chunk.quarantine)
            missing = chunk.missing_optional
            # A column is empty in the file when it is empty in every chunk.
            empty &= set(chunk.empty_columns)
            if out is not None:
                writer.write(chunk.valid)
    counts.reconcile()
    quarantine = (pd.concat(quarantined, ignore_index=True).sort_values(
        "source_row", ignore_index=True) if quarantined else empty_quarantine())
    if out is not None:
        write_parquet_atomic(quarantine, Path(out) / "quarantine.parquet")
        write_quarantine_xlsx(quarantine, Path(out) / "quarantine.xlsx",
                              chunks.locate(quarantine["source_row"]), chunks.source.headers)
    missing = [c for c in missing if c not in chunks.unfilled]
    empty_columns = [c for c in LEDGER_COLUMNS if c in empty or c in chunks.unfilled]
    unknown, needed = split_empty_columns(empty_columns)
    if unknown:
        logger.warning("%s: column(s) present but empty in every row (read as unknown): %s",
                       chunks.path, ", ".join(unknown))
    if needed:
        logger.warning("%s: column(s) present but empty in every row, which every row needs a "
                       "value in (each row quarantined): %s", chunks.path, ", ".join(needed))
    return FileValidation(counts.n_in, counts.n_valid, quarantine, missing,
                          dict(counts.by_rule.most_common()), chunks.blank_rows, empty_columns,
                          chunks.source)


