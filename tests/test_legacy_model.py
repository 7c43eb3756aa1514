"""Models saved before the modules moved into subpackages still load and score the same.

``tests/data/legacy_model`` was saved by that version (``make_model.py`` there): its skops file
names ``riskmodel.models.RiskModel``, ``riskmodel.models.Calibrator`` and
``riskmodel.scorecard.Scorecard``, and ``predictions.csv`` holds what that version predicted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io

import riskmodel.model._store as store
import riskmodel.model._tracking as tracking
from riskmodel.errors import ModelNotFoundError
from riskmodel.model import RiskModel, load_model

LEGACY = Path(__file__).parent / "data" / "legacy_model"


def test_the_fixture_names_the_old_modules():
    names = set(skops.io.get_untrusted_types(file=LEGACY / "model" / "model.skops"))
    assert {"riskmodel.models.RiskModel", "riskmodel.models.Calibrator",
            "riskmodel.scorecard.Scorecard"} <= names


def test_a_model_saved_before_the_subpackages_loads_and_scores_the_same():
    model, _ = load_model(str(LEGACY / "model"))
    assert type(model) is RiskModel
    X = pd.read_csv(LEGACY / "features.csv")
    before = pd.read_csv(LEGACY / "predictions.csv")
    np.testing.assert_array_equal(model.predict_proba(X)[:, 1], before["risk"].to_numpy())
    np.testing.assert_array_equal(model.decision_function(X), before["raw"].to_numpy())
    # The old names stood for the new modules only while the model loaded.
    assert not set(tracking.LEGACY_MODULES) & set(sys.modules)


def test_legacy_names_are_trusted_only_for_the_classes_that_moved():
    for old, new in tracking.LEGACY_MODULES.items():
        assert new.startswith("riskmodel.model._")
        moved = [t for t in tracking.LEGACY_TRUSTED_TYPES if t.startswith(old + ".")]
        assert moved and all(f"{new}.{t.rpartition('.')[2]}" in tracking.TRUSTED_TYPES
                             for t in moved)


def test_a_model_of_an_unknown_old_module_is_refused(monkeypatch):
    monkeypatch.setattr(tracking, "LEGACY_TRUSTED_TYPES", ["riskmodel.models.Calibrator"])
    with pytest.raises(ModelNotFoundError, match="does not trust: riskmodel.models.RiskModel"):
        load_model(str(LEGACY / "model"))


def test_a_registered_champion_saved_before_the_subpackages_loads(tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from riskmodel.config import DEFAULT_MODEL_URI, MODEL_NAME

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    # The folder as a training run of that version left it in the registry, as @champion.
    with store._tracking(uri):
        experiment = mlflow.create_experiment("legacy", artifact_location=str(tmp_path / "art"))
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_artifacts(str(LEGACY / "model"), "model")
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", MODEL_NAME).version
        MlflowClient(uri, uri).set_registered_model_alias(MODEL_NAME, "champion", version)
    model, ref = load_model(DEFAULT_MODEL_URI, tracking_uri=uri)
    assert ref.version == str(version)
    X = pd.read_csv(LEGACY / "features.csv")
    np.testing.assert_array_equal(model.predict_proba(X)[:, 1],
                                  pd.read_csv(LEGACY / "predictions.csv")["risk"].to_numpy())
