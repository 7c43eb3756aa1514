"""Training and scoring against a real MLflow tracking server over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import fast_config
from mlflow import MlflowClient

from riskmodel import validate_ledger
from riskmodel.cli import main
from riskmodel.model import RiskModel, check_tracking_server, train
from riskmodel.scoring import score_month
from riskmodel.synthetic import generate_ledger

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [str(mlflow_cli), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'backend.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("mlflow server did not start: "
                               + (root / "server.log").read_text()[-2000:])
        time.sleep(0.5)
    yield url, root
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_train_register_alias_and_score_through_the_server(server, tmp_path):
    url, root = server
    config = fast_config()
    raw = generate_ledger(households=300, months=36, seed=31)
    ledger = validate_ledger(raw).valid
    # The alias gate is not under test here: a 300-household model need not beat the rules.
    result = train(ledger, config, tracking_uri=url, alias="champion", force_alias=True)

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    version = client.get_model_version_by_alias("return-to-poverty", "champion")
    assert version.version == str(result.run.version)
    assert client.get_run(version.run_id).info.status == "FINISHED"
    # Artifacts went through the server's proxy into its own artifact root.
    assert any((root / "artifacts").rglob("MLmodel"))

    path = tmp_path / "ledger.parquet"
    raw.to_parquet(path)
    scored = score_month(path, tmp_path / "out", tracking_uri=url)
    scores = pd.read_parquet(scored.folder / "scores.parquet")
    assert scores["model_version"].eq(f"return-to-poverty/{version.version}").all()
    assert scores["risk_score"].notna().sum() > 200
    scoring = client.get_experiment_by_name(config.scoring.experiment)
    runs = client.search_runs([scoring.experiment_id])
    assert len(runs) == 1
    assert runs[0].data.params["model_version"] == version.version
    assert runs[0].info.status == "FINISHED"


def test_a_live_server_passes_the_reachability_check(server, tmp_path, monkeypatch, capsys):
    url, _ = server
    check_tracking_server(url)
    check_tracking_server(url + "/")
    ledger = tmp_path / "ledger.parquet"
    generate_ledger(households=20, months=8, seed=2).to_parquet(ledger)
    # Reached, and no such model: the model is what is missing (3), not the server (5).
    assert main(["score", "--ledger", str(ledger), "--out", str(tmp_path / "out"),
                 "--model", "models:/no-such-model@champion", "--tracking-uri", url]) == 3
    assert "No model at models:/no-such-model@champion" in capsys.readouterr().err
    monkeypatch.setattr(RiskModel, "fit", lambda *a, **k: pytest.fail("training started"))
    assert main(["train", "--ledger", str(ledger), "--tracking-uri", url,
                 "--alias", "bad alias/x"]) == 2
    assert "Got alias 'bad alias/x'" in capsys.readouterr().err
