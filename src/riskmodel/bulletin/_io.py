"""The bulletin's files: a month's output folder in, ``bulletin.html`` out.

Township heads and county leaders read a page, not a Parquet file. :func:`write_bulletin` turns
a month's output folder of ``riskmodel score`` into ``bulletin.html``: one self-contained file
(styles and SVG charts embedded, nothing fetched from the network) with an A4 print
stylesheet, so "print to PDF" from a browser gives clean pages. It reads ``scores.parquet``,
``summary.json`` (through :class:`~riskmodel.scoring.RunSummary`) and ``quarantine.parquet``
of the month and of the month before; the counts are :mod:`._figures`', the charts
:mod:`._charts`', the page :mod:`._render`'s. The page holds counts only — no household
identifier, name or health detail, since bulletins are circulated; the watch list is the
place for names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from ..config import Config
from ..errors import LedgerError
from ..ledger import parse_months, temp_beside
from ..months import month_before
from ._figures import REQUIRED
from ._render import render_bulletin


def read_month(folder: str | Path):
    """A month's ``scores.parquet`` and ``summary.json`` (an empty summary when absent).

    Parameters
    ----------
    folder : str or Path
        ``<out>/<month>`` written by ``riskmodel score``, or the ``scores.parquet`` in it.

    Returns
    -------
    scores : DataFrame
    summary : RunSummary
        :class:`~riskmodel.scoring.RunSummary`; every field None when there is no file.

    Raises
    ------
    LedgerError
        No ``scores.parquet`` there; it cannot be read as Parquet (truncated, another kind of
        file), lacks a column the bulletin needs or holds more than one month; or
        ``summary.json`` is not the JSON object ``riskmodel score`` writes
        (:meth:`RunSummary.read <riskmodel.scoring.RunSummary.read>`).
    """
    path = Path(folder)
    if path.is_dir():
        path = path / "scores.parquet"
    if not path.is_file():
        raise LedgerError(f"{folder}: no scores.parquet; expected a month's output folder "
                          "written by `riskmodel score`.")
    try:
        scores = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
        raise LedgerError(f"{path}: cannot be read as Parquet ({exc.__class__.__name__}); "
                          "expected the scores.parquet written by `riskmodel score`.") from None
    missing = [c for c in REQUIRED if c not in scores.columns]
    if missing:
        raise LedgerError(f"{path}: missing columns {missing}; expected the scores of "
                          "`riskmodel score`.")
    if not pd.api.types.is_numeric_dtype(scores["risk_score"]):
        raise LedgerError(f"{path}: column 'risk_score' holds {scores['risk_score'].dtype} "
                          "values; expected probabilities (numbers).")
    months = scores["month"].astype("string").dropna().unique()
    if len(months) > 1:
        raise LedgerError(f"{path}: holds the months {sorted(months)[:3]}; expected the "
                          "scores of one month.")
    # Imported here: the scoring job imports the bulletin (tests/test_architecture.py lists it).
    from ..scoring import RunSummary

    summary_path = path.parent / "summary.json"
    return scores, (RunSummary.read(summary_path) if summary_path.is_file() else RunSummary())




def read_quarantined(folder: str | Path) -> pd.Series | None:
    """Household ids of the rows a month's job quarantined (``quarantine.parquet``).

    Parameters
    ----------
    folder : str or Path
        ``<out>/<month>`` written by ``riskmodel score``, or the ``scores.parquet`` in it.

    Returns
    -------
    Series or None
        The distinct household ids (a row without an id names no household); None when the
        folder has no ``quarantine.parquet``, so whether a row was quarantined is unknown.

    Raises
    ------
    LedgerError
        ``quarantine.parquet`` cannot be read as Parquet or has no ``household_id``.
    """
    folder = Path(folder)
    path = (folder.parent if folder.is_file() else folder) / "quarantine.parquet"
    if not path.is_file():
        return None
    expected = "expected the quarantine.parquet written by `riskmodel score`"
    try:
        ids = pd.read_parquet(path, columns=["household_id"])["household_id"]
    except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
        raise LedgerError(f"{path}: cannot be read as Parquet with a household_id column "
                          f"({exc.__class__.__name__}); {expected}.") from None
    return ids.astype("string").dropna().drop_duplicates().reset_index(drop=True)



def _month(scores: pd.DataFrame, summary) -> str | None:
    """The ``YYYY-MM`` month of a month's scores (of its summary when it has no row)."""
    months = scores["month"].dropna().unique()
    given = pd.Series([months[0] if len(months) else summary.month], dtype=object)
    parsed, unreadable = parse_months(given)
    return None if unreadable.iloc[0] else str(parsed.iloc[0])


def previous_month_folder(folder: str | Path) -> Path | None:
    """The output folder of the month before ``folder``'s, beside it, when it holds scores."""
    folder = Path(folder)
    if not re.fullmatch(r"\d{4}-\d{2}", folder.name):
        return None
    before = folder.parent / month_before(folder.name)
    return before if (before / "scores.parquet").is_file() else None


def write_bulletin(scores_dir: str | Path, out_path: str | Path,
                   previous: str | Path | None = None, config: Config | None = None,
                   templates: str | Path | None = None) -> Path:
    """Write the month's bulletin (``bulletin.html``) from a month's output folder.

    Parameters
    ----------
    scores_dir : str or Path
        ``<out>/<month>`` written by ``riskmodel score``.
    out_path : str or Path
        The HTML file to write; written beside and renamed into place.
    previous : str or Path, optional
        Last month's output folder: its scores must be of the calendar month before
        ``scores_dir``'s. When None, the folder of the month before beside ``scores_dir`` is
        used if it exists. Each folder's ``quarantine.parquet`` tells households whose row was
        quarantined from those that joined or left the ledger.
    config : Config, optional
    templates : str or Path, optional
        A county's copy of the bulletin's templates folder (docs/bulletin.md).

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    LedgerError
        A folder holds no readable scores (see :func:`read_month`) or an unreadable
        ``quarantine.parquet`` (see :func:`read_quarantined`), or ``previous`` holds another
        month than the one before.
    """
    scores, summary = read_month(scores_dir)
    previous = previous if previous is not None else previous_month_folder(scores_dir)
    previous_scores = previous_quarantined = None
    if previous is not None:
        previous_scores, previous_summary = read_month(previous)
        previous_quarantined = read_quarantined(previous)
        month, before = _month(scores, summary), _month(previous_scores, previous_summary)
        expected = month_before(month) if month else None
        if before and expected and before != expected:
            raise LedgerError(
                f"{previous}: holds the scores of {before}, expected {expected}, the month "
                f"before {month} of {scores_dir}; give that month's output folder as "
                "--previous.")
    page = render_bulletin(scores, summary, previous_scores, config=config,
                           quarantined=read_quarantined(scores_dir),
                           previous_quarantined=previous_quarantined, templates=templates)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(out_path)
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(page)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path
