"""The monthly jobs as the command line runs them: each job with the pages published beside it.

:func:`score_month` is :func:`riskmodel.scoring.score_month` with the month's bulletin
(``bulletin.html``, :mod:`riskmodel.bulletin`) written into the staged month folder before it
is published, so the job's page is the page ``riskmodel report`` writes from the same folder.
It sits above the jobs and the bulletin (which reads a job's outputs) and below the command
line; it may import every package, and only :mod:`riskmodel.cli` and the facade import it.
"""

from __future__ import annotations

from pathlib import Path

from .bulletin import read_quarantined, render_bulletin
from .scoring import ScoreResult, StagedMonth
from .scoring import score_month as score_month_only

__all__ = ["score_month", "write_month_bulletin"]


def write_month_bulletin(staged: StagedMonth) -> Path:
    """Write ``bulletin.html`` into a staged month folder (a writer for
    :func:`riskmodel.scoring.score_month`).

    Parameters
    ----------
    staged : StagedMonth
        The month's staged outputs; last month's ``quarantine.parquet`` is read from
        ``staged.previous_folder`` when there is one.

    Returns
    -------
    Path
        The page written.
    """
    previous_quarantined = (read_quarantined(staged.previous_folder)
                            if staged.previous_folder is not None else None)
    path = staged.folder / "bulletin.html"
    path.write_text(
        render_bulletin(staged.scores, staged.summary, staged.previous_scores,
                        config=staged.config, quarantined=staged.quarantine["household_id"],
                        previous_quarantined=previous_quarantined), encoding="utf-8")
    return path


def score_month(ledger_path: str | Path, out_dir: str | Path, month: str | None = None,
                model_uri: str | None = None, config_path: str | Path | None = None,
                force: bool = False, engine: str = "pandas", tracking_uri: str | None = None,
                allow_unscored: bool = False) -> ScoreResult:
    """Score one month and publish ``<out_dir>/<month>/`` with its bulletin, atomically.

    The parameters, returns and errors are those of :func:`riskmodel.scoring.score_month`;
    the month's folder also holds ``bulletin.html`` (:func:`write_month_bulletin`).
    """
    return score_month_only(ledger_path, out_dir, month=month, model_uri=model_uri,
                            config_path=config_path, force=force, engine=engine,
                            tracking_uri=tracking_uri, allow_unscored=allow_unscored,
                            writers=[write_month_bulletin])
