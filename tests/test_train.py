"""The training job: checks before training, the run it records, and the model it registers."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import riskmodel.train as train_module
from riskmodel import load_config, validate_ledger
from riskmodel.cli import main
from riskmodel.errors import ArgumentError, ConfigError, TrackingServerError, TrainingDataError
from riskmodel.features import FEATURE_NAMES, build_features
from riskmodel.models import RiskModel
from riskmodel.synthetic import generate_ledger
from riskmodel.tracking import MODEL_NAME, load_model
from riskmodel.train import train, train_from_path, training_data


def _config(**model):
    config = load_config()
    return config.model_copy(update={
        "model": config.model.model_copy(update={
            "max_iter": 40, "min_samples_leaf": 20, "validation_months": 2,
            "calibration_months": 2, "min_positive_labels": 20, "scorecard_features": 6,
            **model}),
        "backtest": config.backtest.model_copy(update={
            "origins": 2, "bootstrap": 10, "min_group_rows": 50}),
    })


@pytest.fixture(scope="module")
def ledger():
    return validate_ledger(generate_ledger(households=400, months=26, seed=7)).valid


@pytest.fixture(scope="module")
def trained(ledger, tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlruns.db'}"
    with threadpool_limits(1):
        # The small model of a 400-household ledger need not beat the rules: forced.
        result = train(ledger, _config(), tracking_uri=uri, alias="champion", force_alias=True)
    return result, uri


def test_training_data_keeps_only_labelled_rows(ledger):
    data = training_data(ledger, _config())
    assert list(data.features.columns) == FEATURE_NAMES
    assert len(data.features) == len(data.target) == len(data.months) == len(data.groups)
    assert set(np.unique(data.target)) == {0.0, 1.0}
    # Labels need the horizon ahead: the last six months never train.
    assert max(data.months) == "2023-08"
    assert set(data.groups.columns) == {"county", "household_type"}


def test_registered_champion_round_trips(trained, ledger):
    result, uri = trained
    model, ref = load_model(f"models:/{MODEL_NAME}@champion", tracking_uri=uri)
    assert (ref.name, ref.version, ref.run_id) == (MODEL_NAME, result.run.version,
                                                   result.run.run_id)
    features = build_features(ledger, load_config(), months=["2024-02"])
    assert np.array_equal(model.predict_proba(features), result.model.predict_proba(features))
    assert model.calibration_ == result.backtest.calibration
    assert model.summary_ == result.model.summary_
    assert 0 < model.summary_["model_auc"] <= 1
    assert "model_recall_at_5pct" in model.summary_ and "rules_recall_at_5pct" in model.summary_
    assert model.config_["label"]["horizon_months"] == model.horizon_months_ == 6
    assert set(model.reference_["features"]) == set(FEATURE_NAMES)


def test_run_holds_no_household_identifier(trained, ledger, tmp_path):
    import mlflow
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    result, uri = trained
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(result.run.run_id)
    assert run.data.params["data.households"] == "400"
    assert run.data.params["model.max_iter"] == "40"
    assert "model_recall_at_5pct_ci_low" in run.data.metrics
    folder = download_artifacts(run_id=run.info.run_id, tracking_uri=uri, dst_path=str(tmp_path))
    files = {p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file()}
    assert {"plots/calibration.png", "plots/recall_at_caseload.png",
            "plots/precision_recall.png", "tables/scorecard.csv", "tables/scorecard.html",
            "tables/backtest_metrics.csv"} <= files
    ids = set(ledger["household_id"].astype(str))
    texts = [str(v) for v in run.data.params.values()] + [str(v) for v in run.data.tags.values()]
    texts += [(Path(folder) / f).read_text(encoding="utf-8-sig")
              for f in files if f.endswith((".csv", ".html", ".json"))]
    before = mlflow.get_registry_uri()
    mlflow.set_registry_uri(uri)
    try:
        model_dir = download_artifacts(f"models:/{MODEL_NAME}/{result.run.version}",
                                       tracking_uri=uri, dst_path=str(tmp_path / "model"))
    finally:
        mlflow.set_registry_uri(before)
    texts += [p.read_text(encoding="utf-8", errors="ignore")
              for p in Path(model_dir).rglob("*")
              if p.is_file() and p.suffix in (".json", "") and p.name != "model.skops"]
    joined = "\n".join(texts)
    assert not [i for i in list(ids)[:50] if i in joined]


def test_train_from_path_prints_the_backtest_table(trained, ledger, tmp_path, monkeypatch,
                                                   capsys):
    result, uri = trained
    path = tmp_path / "ledger.parquet"
    ledger.to_parquet(path)
    seen = {}

    def fake_train(valid, config, tracking_uri=None, alias=None, source=None, **kwargs):
        seen.update(rows=len(valid), uri=tracking_uri, alias=alias, source=source)
        return result

    monkeypatch.setattr(train_module, "train", fake_train)
    assert train_from_path(path, tracking_uri=uri, alias="champion") is result
    out = capsys.readouterr().out
    assert seen == {"rows": len(ledger), "uri": uri, "alias": "champion", "source": str(path)}
    assert "recall_at_5pct" in out and "rules_income" in out and "champion" in out


def test_train_from_path_reads_only_a_sample_of_households_when_asked(trained, ledger, tmp_path,
                                                                       monkeypatch):
    import yaml

    result, uri = trained
    raw = load_config().model_dump(mode="json")
    raw["model"]["train_households"] = 150
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True),
                                          encoding="utf-8")
    seen = []
    monkeypatch.setattr(train_module, "train",
                        lambda valid, config, **kwargs: seen.append(valid) or result)
    ledger.to_parquet(tmp_path / "ledger.parquet")
    # The same file in another row order draws the same households.
    ledger.sample(frac=1.0, random_state=3).to_csv(tmp_path / "shuffled.csv", index=False)
    for name in ("ledger.parquet", "shuffled.csv"):
        train_from_path(tmp_path / name, config_path=tmp_path / "config.yaml", tracking_uri=uri)
    first, second = seen
    households = first["household_id"].unique()
    assert 100 <= len(households) <= 200 < ledger["household_id"].nunique()
    # Whole households: every month of each one drawn.
    assert (first.groupby("household_id")["month"].nunique() == 26).all()
    assert sorted(households) == sorted(second["household_id"].unique())


@pytest.fixture
def no_fit(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(RiskModel, "fit", refuse)


def test_too_few_positive_labels_stop_before_training(ledger, no_fit):
    with pytest.raises(TrainingDataError, match="positive labels .* expected at least 100000"):
        train(ledger, _config(min_positive_labels=100_000), track=False)


def test_a_single_month_stops_before_training(ledger, no_fit):
    one = ledger[ledger["month"] == "2023-05"]
    with pytest.raises(TrainingDataError, match="1 month"):
        train(one, _config(), track=False)


def test_a_short_history_stops_before_training(ledger, no_fit):
    short = ledger[ledger["month"] <= "2023-02"]
    with pytest.raises(TrainingDataError, match="months with labels, expected at least"):
        train(short, _config(), track=False)


def test_unknown_feature_in_config_stops_before_training(ledger, no_fit):
    config = _config()
    features = dict(config.features)
    features["income_magic_12m"] = features["income_margin_12m"]
    with pytest.raises(ConfigError, match="unknown feature"):
        train(ledger, config.model_copy(update={"features": features}), track=False)
    excluded = config.model_copy(update={"model": config.model.model_copy(
        update={"exclude_features": ["income_magic_12m"]})})
    with pytest.raises(ConfigError, match="exclude_features"):
        train(ledger, excluded, track=False)


@pytest.fixture
def no_read(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the ledger was read")

    monkeypatch.setattr(train_module, "load_ledger", refuse)


def test_cli_refuses_a_bad_alias_before_reading_or_training(ledger, tmp_path, no_fit, no_read,
                                                            capsys):
    ledger.to_parquet(tmp_path / "ledger.parquet")
    store = tmp_path / "mlruns.db"
    code = main(["train", "--ledger", str(tmp_path / "ledger.parquet"),
                 "--tracking-uri", f"sqlite:///{store}", "--alias", "bad alias/x"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("riskmodel train: Got alias 'bad alias/x', expected letters, digits")
    assert err.count("\n") == 1
    assert not store.exists() and not (tmp_path / "mlartifacts").exists()


def test_train_refuses_a_reserved_alias_before_training(ledger, tmp_path, no_fit):
    with pytest.raises(ArgumentError, match="'latest', which MLflow reserves"):
        train(ledger, _config(), tracking_uri=f"sqlite:///{tmp_path / 'm.db'}", alias="latest")


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("where", ["--tracking-uri", "MLFLOW_TRACKING_URI"])
def test_cli_names_an_unreachable_server_before_reading_or_training(ledger, tmp_path, no_fit,
                                                                    no_read, monkeypatch,
                                                                    capsys, where):
    url = _closed_port()
    ledger.to_parquet(tmp_path / "ledger.parquet")
    args = ["train", "--ledger", str(tmp_path / "ledger.parquet"), "--alias", "champion"]
    if where == "--tracking-uri":
        args += ["--tracking-uri", url]
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    started = time.monotonic()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 5, err
    assert time.monotonic() - started < 10
    assert err.startswith(f"riskmodel train: The tracking server at {url} cannot be reached "
                          "(connection refused)")
    assert err.count("\n") == 1


def test_train_names_an_unreachable_server_before_training(ledger, no_fit):
    with pytest.raises(TrackingServerError, match="cannot be reached"):
        train(ledger, _config(), tracking_uri=_closed_port())
