"""The review notebooks run top to bottom on the committed sample, as a reviewer would run them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import SAMPLE_DIR, fast_config
from nbclient import NotebookClient

from riskmodel import load_ledger, score_month
from riskmodel.model import train

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PARAMETERS = ["RISKMODEL_LEDGER", "RISKMODEL_TRUTH", "RISKMODEL_MONTH", "RISKMODEL_MODEL_URI",
              "MLFLOW_TRACKING_URI", "RISKMODEL_SCORES_DIR"]
NAMES = ["01_review_explanations", "02_model_evaluation", "03_monthly_watchlist"]


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    root = tmp_path_factory.mktemp("notebooks")
    tracking = f"sqlite:///{root / 'mlruns.db'}"
    ledger_path = SAMPLE_DIR / "ledger.parquet"
    ledger = load_ledger(ledger_path).valid
    truth = pd.read_parquet(SAMPLE_DIR / "truth.parquet")
    train(ledger, fast_config(), tracking_uri=tracking, alias="champion", truth=truth)
    months = sorted(ledger["month"].unique())
    for month in months[-2:]:
        score_month(ledger_path, root / "out", month=month, tracking_uri=tracking)
    return {
        "RISKMODEL_LEDGER": str(ledger_path),
        "RISKMODEL_TRUTH": str(SAMPLE_DIR / "truth.parquet"),
        "RISKMODEL_MONTH": months[-1],
        "RISKMODEL_MODEL_URI": "models:/return-to-poverty@champion",
        "MLFLOW_TRACKING_URI": tracking,
        "RISKMODEL_SCORES_DIR": str(root / "out"),
    }


def test_notebooks_are_committed_without_outputs():
    for name in NAMES:
        book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        code = [c for c in book.cells if c.cell_type == "code"]
        assert code, name
        assert all(not c.outputs and c.execution_count is None for c in code), name


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(environment, name, monkeypatch):
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    # The kernel's own inline backend draws figures into the notebook; Agg would draw none.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    start = time.perf_counter()
    NotebookClient(book, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    elapsed = time.perf_counter() - start
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    images = [o for c in book.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert images, "every notebook draws at least one figure"
    print(f"{name}: {elapsed:.1f} s")


def test_the_defaults_open_what_the_demo_writes(environment, tmp_path, monkeypatch):
    """A reviewer who ran ``./dev demo`` and opens a notebook, setting nothing, gets its model."""
    dev = (ROOT / "dev").read_text(encoding="utf-8")
    # What ./dev demo writes: demo/ledger.parquet, demo/mlruns.db (the @champion) and demo/out.
    for written in ('local work=${DEMO_DIR:-demo}', '--out "$work/ledger.parquet"',
                    "sqlite:///$PWD/$work/mlruns.db", '--alias champion', '--out "$work/out"'):
        assert written in dev
    # The same layout, small: the notebooks' folder beside a demo/ folder.
    demo = tmp_path / "demo"
    demo.mkdir()
    # The module's ledger and its store (one registered model; the store keeps the artifacts'
    # absolute location, so the copied database finds them).
    shutil.copyfile(environment["RISKMODEL_LEDGER"], demo / "ledger.parquet")
    shutil.copyfile(environment["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///"),
                    demo / "mlruns.db")
    raw = pd.read_parquet(demo / "ledger.parquet", columns=["month"])
    (tmp_path / "notebooks").mkdir()
    for key in PARAMETERS:
        monkeypatch.delenv(key, raising=False)
    for name in NAMES:
        book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        # The parameters cell and the cell that loads the ledger and the model.
        book.cells = book.cells[:3]
        NotebookClient(book, timeout=240, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path / "notebooks")}}).execute()
        printed = "".join(o.get("text", "") for o in book.cells[2].outputs)
        month = raw["month"].max()
        assert f"valid rows; month {month}; model return-to-poverty version 1" in printed, (
            name, printed)
