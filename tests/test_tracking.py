"""MLflow tracking: store resolution, fingerprints, logging, registry, aliases and loading."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from threadpoolctl import threadpool_limits

import riskmodel.model._store as mlflow_store
import riskmodel.model._tracking as tracking
from riskmodel.cli import main
from riskmodel.errors import ArgumentError, ModelNotFoundError, TrackingServerError
from riskmodel.model import (
    MODEL_NAME,
    TRUSTED_TYPES,
    ModelRef,
    RiskModel,
    check_alias,
    check_tracking_server,
    data_fingerprint,
    flatten,
    input_example,
    load_model,
    log_training_run,
    resolve_tracking_uri,
    save_model,
    set_alias,
)


@pytest.fixture(scope="module")
def model_and_data():
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame({"income_margin_12m": rng.normal(size=n), "ev_illness_3m": rng.integers(
        0, 2, n).astype(float)})
    y = (rng.random(n) < 1 / (1 + np.exp(2 + X["income_margin_12m"] - X["ev_illness_3m"])))
    with threadpool_limits(1):
        model = RiskModel(max_iter=20, min_samples_leaf=20, validation_months=2,
                          calibration_months=2, scorecard_features=2,
                          config={"label": {"horizon_months": 6}}).fit(
            X, y.astype(int), months=np.repeat(np.arange(6), n // 6))
    return model, X


@pytest.fixture(scope="module")
def store(model_and_data, tmp_path_factory):
    model, X = model_and_data
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlruns.db'}"
    first = log_training_run(
        model, tracking_uri=uri, config={"label": {"horizon_months": 6}, "tiers": [0.2, 0.08]},
        metrics={"model_auc": 0.8, "undefined": float("nan")},
        fingerprint={"sha256": "ab" * 32, "rows": len(X)}, example=input_example(X),
        tables={"scorecard.csv": model.scorecard_.table()},
        texts={"scorecard.html": model.scorecard_.to_html()}, alias="champion")
    second = log_training_run(
        model, tracking_uri=uri, config={}, metrics={}, fingerprint={"sha256": "cd" * 32},
        example=input_example(X))
    return uri, first, second


def test_resolve_tracking_uri(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri() == "http://127.0.0.1:5000"
    assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_flatten():
    assert flatten({"a": {"b": 1, "c": None}, "d": [1, "二"], "e": True}) == {
        "a.b": "1", "a.c": "null", "d": '[1, "二"]', "e": "True"}


def test_fingerprint_is_counts_and_a_hash(ledger):
    fp = data_fingerprint(ledger)
    assert fp["rows"] == 12 and fp["households"] == 4 and fp["months"] == 3
    assert (fp["first_month"], fp["last_month"]) == ("2024-01", "2024-03")
    assert data_fingerprint(ledger.copy()) == fp
    changed = ledger.copy()
    changed.loc[5, "inc_wage"] += 1
    assert data_fingerprint(changed)["sha256"] != fp["sha256"]
    assert not any("H000" in str(v) for v in fp.values())


def test_input_example_is_no_households_data(model_and_data):
    _, X = model_and_data
    example = input_example(X)
    assert example.shape == (1, 2)
    assert example.iloc[0].tolist() == X.median().tolist()


def test_skops_needs_exactly_the_trusted_types(model_and_data):
    model, _ = model_and_data
    assert set(skops.io.get_untrusted_types(data=skops.io.dumps(model))) == set(TRUSTED_TYPES)


def test_round_trip_by_alias_version_run_and_folder(store, model_and_data, tmp_path):
    uri, first, second = store
    model, X = model_and_data
    assert (first.version, first.alias, second.version, second.alias) == ("1", "champion", "2",
                                                                          None)
    expected = model.predict_proba(X)
    loaded, ref = load_model(f"models:/{MODEL_NAME}@champion", tracking_uri=uri)
    assert ref == ModelRef(uri=f"models:/{MODEL_NAME}@champion", name=MODEL_NAME, version="1",
                           run_id=first.run_id)
    assert np.array_equal(loaded.predict_proba(X), expected)
    assert np.array_equal(loaded.decision_function(X), model.decision_function(X))
    assert loaded.scorecard_.table().equals(model.scorecard_.table())
    assert loaded.reference_ == model.reference_ and loaded.horizon_months_ == 6

    _, ref = load_model(f"models:/{MODEL_NAME}/2", tracking_uri=uri)
    assert (ref.version, ref.run_id) == ("2", second.run_id)
    loaded, ref = load_model(f"runs:/{first.run_id}/model", tracking_uri=uri)
    assert (ref.name, ref.version, ref.run_id) == (None, None, first.run_id)
    assert np.array_equal(loaded.predict_proba(X), expected)

    folder = save_model(model, tmp_path / "model", input_example(X))
    loaded, ref = load_model(str(folder))
    assert ref == ModelRef(uri=str(folder), name=None, version=None, run_id=None)
    assert np.array_equal(loaded.predict_proba(X), expected)


def test_promotion_moves_the_alias(store):
    uri, _, second = store
    set_alias("challenger", second.version, tracking_uri=uri)
    _, ref = load_model(f"models:/{MODEL_NAME}@challenger", tracking_uri=uri)
    assert ref.version == "2"
    with pytest.raises(ModelNotFoundError, match="Cannot set alias"):
        set_alias("champion", "99", tracking_uri=uri)


def test_run_records_params_metrics_dataset_and_artifacts(store):
    from mlflow import MlflowClient

    uri, first, _ = store
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(first.run_id)
    assert run.data.params["label.horizon_months"] == "6"
    assert run.data.params["tiers"] == "[0.2, 0.08]"
    assert run.data.params["data.rows"] == "3000"
    assert run.data.metrics == {"model_auc": 0.8}
    assert run.data.tags["horizon_months"] == "6"
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.digest == "ab" * 16 and dataset.dataset.name == "ledger"
    listed = {a.path for a in client.list_artifacts(first.run_id, "tables")}
    assert listed == {"tables/scorecard.csv", "tables/scorecard.html"}
    version = client.get_model_version(MODEL_NAME, "1")
    assert version.tags["horizon_months"] == "6"
    # Artifacts sit beside the SQLite store, not in the folder the job ran from.
    db = Path(uri.removeprefix("sqlite:///"))
    assert (db.parent / "mlartifacts").is_dir()


def test_missing_models_raise_one_clear_error(store, tmp_path):
    uri, _, _ = store
    with pytest.raises(ModelNotFoundError, match="alias nope not found"):
        load_model(f"models:/{MODEL_NAME}@nope", tracking_uri=uri)
    with pytest.raises(ModelNotFoundError, match="No model at models:/other/1"):
        load_model("models:/other/1", tracking_uri=uri)
    absent = tmp_path / "absent.db"
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_model(tracking_uri=f"sqlite:///{absent}")
    assert not absent.exists()
    with pytest.raises(ModelNotFoundError, match="no MLmodel"):
        load_model(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="expected models:/NAME@ALIAS"):
        load_model("s3:/bucket/model", tracking_uri=uri)


def test_pickled_models_are_refused(model_and_data, tmp_path):
    import mlflow.sklearn

    model, _ = model_and_data
    mlflow.sklearn.save_model(model, str(tmp_path / "pickled"), serialization_format="pickle")
    with pytest.raises(ModelNotFoundError, match="only skops models"):
        load_model(str(tmp_path / "pickled"))


@pytest.mark.parametrize("alias", [
    "champion", "challenger-2", "prod_2025", "冠军", "V", "v2a", "x" * 255,
    "bad alias/x", "", "a.b", "latest", "LATEST", "v3", "V12", "x" * 256,
])
def test_aliases_follow_mlflows_own_rules(alias):
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import (
        _validate_model_alias_name,
        _validate_model_alias_name_reserved,
    )

    try:
        _validate_model_alias_name(alias)
        _validate_model_alias_name_reserved(alias)
        mlflow_accepts = True
    except MlflowException:
        mlflow_accepts = False
    if mlflow_accepts:
        assert check_alias(alias) == alias
    else:
        with pytest.raises(ArgumentError, match="Got alias"):
            check_alias(alias)


def test_a_bad_alias_is_refused_before_anything_is_logged(store, model_and_data):
    from mlflow import MlflowClient

    uri, _, second = store
    model, X = model_and_data
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    before = len(client.search_model_versions(f"name='{MODEL_NAME}'"))
    with pytest.raises(ArgumentError, match="'bad alias/x'"):
        log_training_run(model, tracking_uri=uri, config={}, metrics={},
                         fingerprint={"sha256": "ef" * 32}, example=input_example(X),
                         alias="bad alias/x")
    assert len(client.search_model_versions(f"name='{MODEL_NAME}'")) == before
    with pytest.raises(ArgumentError, match="reserves"):
        set_alias("latest", second.version, tracking_uri=uri)


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def answering():
    """A local HTTP server answering every request with the status it is told."""
    status = {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status["code"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", status
    server.shutdown()
    server.server_close()


def test_an_unreachable_server_is_said_at_once(tmp_path):
    url = _closed_port()
    started = time.monotonic()
    with pytest.raises(TrackingServerError,
                       match=rf"tracking server at {url} cannot be reached \(connection refused\)"):
        check_tracking_server(url)
    for model_uri in (f"models:/{MODEL_NAME}@champion", "runs:/abc/model"):
        with pytest.raises(TrackingServerError, match=url):
            load_model(model_uri, tracking_uri=url)
    with pytest.raises(TrackingServerError, match=url):
        set_alias("champion", "1", tracking_uri=url)
    assert time.monotonic() - started < 10
    assert TrackingServerError.exit_code == 5
    check_tracking_server(f"sqlite:///{tmp_path / 'absent.db'}")
    assert not (tmp_path / "absent.db").exists()


def test_any_answer_counts_but_a_proxys_gateway_error(answering):
    url, status = answering
    for code in (200, 401, 403, 404, 500):
        status["code"] = code
        check_tracking_server(url)
    for code in (502, 503, 504):
        status["code"] = code
        with pytest.raises(TrackingServerError, match=f"answered HTTP {code}"):
            check_tracking_server(url + "/")


def test_a_server_that_never_answers_is_given_up_on(monkeypatch):
    monkeypatch.setattr(mlflow_store, "_REACH_TIMEOUT_S", 0.3)
    with socket.socket() as silent:
        # Listening, never accepting: the connection opens, no answer comes.
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(TrackingServerError, match=r"no answer within 0.3 s"):
            check_tracking_server(url)


def test_score_names_an_unreachable_server_set_in_the_environment(ledger, tmp_path,
                                                                  monkeypatch, capsys):
    url = _closed_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    ledger.to_parquet(tmp_path / "ledger.parquet")
    started = time.monotonic()
    code = main(["score", "--ledger", str(tmp_path / "ledger.parquet"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 5, err
    assert time.monotonic() - started < 10
    assert err == (f"riskmodel score: The tracking server at {url} cannot be reached "
                   "(connection refused); expected a running MLflow server there: start it, or "
                   "give another --tracking-uri or MLFLOW_TRACKING_URI.\n")


# A run whose process was killed with kill -9 never ends in MLflow; the next run closes it.
_HOLD_A_RUN = """
import sys, time
from riskmodel.model import ScoringRun
run = ScoringRun(sys.argv[1], "riskmodel-scoring", "2024-12", {"engine": "pandas"})
print(run.run_id, flush=True)
time.sleep(600)
"""


def _process_holding_a_run(uri: str, log: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(Path(tracking.__file__).resolve().parents[2])}
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", _HOLD_A_RUN, uri], env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    run_id = proc.stdout.readline().strip()
    assert run_id, log.read_text()[-2000:]
    return proc, run_id


def test_runs_of_a_process_killed_with_sigkill_are_marked_failed_by_the_next_run(
        model_and_data, tmp_path):
    from mlflow import MlflowClient

    model, X = model_and_data
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    killed, killed_run = _process_holding_a_run(uri, tmp_path / "killed.log")
    alive, alive_run = _process_holding_a_run(uri, tmp_path / "alive.log")
    client = MlflowClient(tracking_uri=uri)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert client.get_run(killed_run).info.status == "RUNNING"
        tags = client.get_run(killed_run).data.tags
        assert tags["riskmodel.host"] == socket.gethostname()
        assert tags["riskmodel.pid"] == str(killed.pid)
        # Runs of another host, and runs this project did not open, are none of its business.
        exp = client.get_experiment_by_name("riskmodel-scoring").experiment_id
        elsewhere = client.create_run(exp, tags={"riskmodel.host": "another-host",
                                                 "riskmodel.pid": str(killed.pid)}).info.run_id
        foreign = client.create_run(exp).info.run_id

        # The next training run closes the killed scoring run, and only that one.
        logged = log_training_run(model, tracking_uri=uri, config={}, metrics={},
                                  fingerprint={"sha256": "ef" * 32}, example=input_example(X))
        run = client.get_run(killed_run)
        assert run.info.status == "FAILED" and run.info.end_time is not None
        note = run.data.tags["riskmodel.stale"]
        assert note.startswith(f"Process {killed.pid} on {socket.gethostname()} ended without "
                               "closing this run")
        assert run.data.tags["mlflow.note.content"] == note
        for other in (alive_run, elsewhere, foreign):
            assert client.get_run(other).info.status == "RUNNING"
        training = client.get_run(logged.run_id)
        assert training.info.status == "FINISHED"
        assert training.data.tags["riskmodel.pid"] == str(os.getpid())

        # The next scoring run closes the second one once its process is gone too.
        alive.send_signal(signal.SIGKILL)
        alive.wait(timeout=30)
        scoring = tracking.ScoringRun(uri, "riskmodel-scoring", "2025-01", {})
        scoring.end("FINISHED")
        assert client.get_run(alive_run).info.status == "FAILED"
        assert client.get_run(scoring.run_id).info.status == "FINISHED"
        assert client.get_run(elsewhere).info.status == "RUNNING"
    finally:
        for proc in (killed, alive):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


def test_a_reused_pid_is_not_taken_for_the_process_that_opened_the_run():
    tags = mlflow_store.process_tags()
    assert tags["riskmodel.pid"] == str(os.getpid())
    assert mlflow_store._process_gone(os.getpid(), tags["riskmodel.process"]) is False
    boot, namespace, start = tags["riskmodel.process"].split(":")
    # This pid, started at another time: another process.
    assert mlflow_store._process_gone(os.getpid(), f"{boot}:{namespace}:{int(start) + 1}") is True
    # Recorded before the machine last booted: gone.
    assert mlflow_store._process_gone(os.getpid(), f"other-boot:{namespace}:{start}") is True
    # Another pid namespace (another container with this host name): cannot be told.
    assert mlflow_store._process_gone(os.getpid(), f"{boot}:1:{start}") is None


def test_a_tracking_run_leaves_mlflow_and_the_environment_as_it_found_them(
        model_and_data, tmp_path, monkeypatch):
    # Setting an MLflow URI writes it into the environment too; a run that "restored" the
    # previous URI by setting it pinned the process to that store, and a store the user chose
    # afterwards through MLFLOW_TRACKING_URI was ignored.
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    model, X = model_and_data
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    log_training_run(model, tracking_uri=f"sqlite:///{tmp_path / 'a.db'}", config={},
                     metrics={}, fingerprint={"sha256": "ef" * 32}, example=input_example(X))
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert tracking_utils._tracking_uri is None
    chosen = f"sqlite:///{tmp_path / 'chosen.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", chosen)
    assert resolve_tracking_uri() == chosen and mlflow.get_tracking_uri() == chosen
