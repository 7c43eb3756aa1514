"""MLflow: what a training run records, the registry's aliases, and loading a model back.

Where runs go is :mod:`._store`'s (a SQLite file in the working folder by default,
``MLFLOW_TRACKING_URI`` for a team's tracking server). Models are saved with skops, and
loaded back with this module's own list of trusted types — never with a list read from the
model's folder, which whoever wrote the folder controls. Nothing that identifies a household goes
into MLflow: the data is recorded as a fingerprint (a hash and counts), the input example is a
row of training medians.

Every run this project opens carries its process (:func:`._store.process_tags`) and first
closes the runs of processes that are gone (:func:`._store.close_stale_runs`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
import sys
import tempfile
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..config import DEFAULT_MODEL_URI, MODEL_NAME
from ..errors import ArgumentError, ModelNotFoundError
from ._store import (
    _sqlite_file,
    _tracking,
    check_tracking_server,
    close_stale_runs,
    experiment_id,
    process_tags,
    resolve_tracking_uri,
)

log = logging.getLogger(__name__)

# The project's own classes and the scikit-learn internals skops does not trust by default; found
# by round-tripping a fitted RiskModel through skops (tests/test_tracking.py checks the list).
TRUSTED_TYPES = [
    "riskmodel.model._estimator.Calibrator",
    "riskmodel.model._estimator.RiskModel",
    "riskmodel.model._scorecard.Scorecard",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]
# A saved model names each class by the module that defined it. Models registered before the
# package was split into subpackages name the modules on the left; while such a model loads,
# those names stand for the modules on the right, and its classes are trusted by their old names
# (LEGACY_TRUSTED_TYPES) as well: a county's registered @champion keeps loading.
LEGACY_MODULES = {
    "riskmodel.models": "riskmodel.model._estimator",
    "riskmodel.scorecard": "riskmodel.model._scorecard",
}
LEGACY_TRUSTED_TYPES = [
    "riskmodel.models.Calibrator",
    "riskmodel.models.RiskModel",
    "riskmodel.scorecard.Scorecard",
]
_LEGACY_LOCK = threading.Lock()
_MAX_BATCH = 100
# MLflow's rules for registry aliases (mlflow/utils/validation.py: _validate_model_alias_name and
# _validate_model_alias_name_reserved, which the SQL store and the server apply).
_ALIAS = re.compile(r"[\w\-]+")
_ALIAS_VERSION = re.compile(r"[vV]\d+")
_ALIAS_MAX_LENGTH = 255


@dataclass(frozen=True)
class ModelRef:
    """Which model was loaded.

    Attributes
    ----------
    uri : str
        The URI or folder it was loaded from.
    name : str or None
        Registered model name (None for a run or a plain folder).
    version : str or None
        Registered version (None for a run or a plain folder).
    run_id : str or None
        The training run, when known.
    """

    uri: str
    name: str | None
    version: str | None
    run_id: str | None




def check_alias(alias: str) -> str:
    """Refuse a registry alias that MLflow would refuse, before any work is done.

    The rules are MLflow's own: letters, digits, underscores and dashes, at most 255
    characters, and neither ``latest`` (any case) nor a version name such as ``v2``.

    Parameters
    ----------
    alias : str
        The alias, e.g. ``champion``.

    Returns
    -------
    str
        The alias, unchanged.

    Raises
    ------
    ArgumentError
        The alias breaks one of the rules.

    Examples
    --------
    >>> check_alias("champion")
    'champion'
    >>> from riskmodel.errors import ArgumentError
    >>> try:
    ...     check_alias("bad alias/x")
    ... except ArgumentError as exc:
    ...     print(exc.exit_code)
    2
    """
    text = alias if isinstance(alias, str) else None
    if text is None or not _ALIAS.fullmatch(text) or len(text) > _ALIAS_MAX_LENGTH:
        raise ArgumentError(
            f"Got alias {alias!r}, expected letters, digits, underscores (_) or dashes (-), "
            f"at most {_ALIAS_MAX_LENGTH} characters (MLflow's rule for registry aliases).")
    if text.lower() == "latest" or _ALIAS_VERSION.fullmatch(text):
        raise ArgumentError(
            f"Got alias {alias!r}, which MLflow reserves (for the latest version or for version "
            "numbers); expected another name, e.g. champion.")
    return text






















def flatten(value: object, prefix: str = "") -> dict[str, str]:
    """Nested dicts as ``a.b.c`` keys; lists and scalars as compact strings.

    Examples
    --------
    >>> flatten({"label": {"horizon_months": 6}, "tiers": [0.2, 0.08]})
    {'label.horizon_months': '6', 'tiers': '[0.2, 0.08]'}
    """
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = "null" if value is None else str(value)
    return {prefix: text[:6000]}


def data_fingerprint(ledger: pd.DataFrame) -> dict[str, object]:
    """A hash and counts of a ledger: what was trained on, without a row of it.

    Returns
    -------
    dict
        ``sha256`` (of the row hashes, in ledger order), ``rows``, ``households``, ``months``,
        ``first_month``, ``last_month``, ``columns``.
    """
    hashed = pd.util.hash_pandas_object(ledger, index=False).to_numpy()
    months = ledger["month"].astype("string")
    return {
        "sha256": hashlib.sha256(hashed.tobytes()).hexdigest(),
        "rows": int(len(ledger)),
        "households": int(ledger["household_id"].nunique()),
        "months": int(months.nunique()),
        "first_month": str(months.min()),
        "last_month": str(months.max()),
        "columns": int(ledger.shape[1]),
    }


def input_example(features: pd.DataFrame) -> pd.DataFrame:
    """One row of column medians: a valid model input that is no household's data."""
    med = features.median(numeric_only=True).reindex(features.columns)
    return pd.DataFrame([med.to_numpy(dtype="float64")], columns=features.columns)


@dataclass(frozen=True)
class LoggedRun:
    """What a training run left in MLflow."""

    run_id: str
    model_uri: str
    version: str | None
    alias: str | None
    tracking_uri: str


def log_training_run(
    model,
    *,
    tracking_uri: str | None,
    config: Mapping,
    metrics: Mapping[str, float],
    fingerprint: Mapping[str, object],
    example: pd.DataFrame,
    figures: Mapping[str, object] = (),
    tables: Mapping[str, pd.DataFrame] = (),
    texts: Mapping[str, str] = (),
    alias: str | None = None,
    source: str | None = None,
    register: bool = True,
    tags: Mapping[str, str] = (),
) -> LoggedRun:
    """Record one training run: params, metrics, data fingerprint, plots, tables, the model.

    Parameters
    ----------
    model : RiskModel
        The fitted model, saved with skops.
    tracking_uri : str or None
        See :func:`resolve_tracking_uri`.
    config : mapping
        The configuration as a plain dict, logged flattened as params.
    metrics : mapping
        Metric name → value (NaN values are skipped).
    fingerprint : mapping
        From :func:`data_fingerprint`; logged as the run's input dataset and as params.
    example : DataFrame
        Input example and signature source (see :func:`input_example`).
    figures, tables, texts : mapping
        Artifact file name → matplotlib figure, DataFrame (written as CSV) or text (e.g. HTML).
    alias : str, optional
        Alias to point at the new registered version (e.g. ``champion``); checked with
        :func:`check_alias` before anything is logged.
    source : str, optional
        Where the ledger came from (a path), recorded with the fingerprint.
    register : bool, default=True
        Register the model as ``return-to-poverty``.
    tags : mapping, optional
        More tags, set on the run and on the registered version (e.g. the alias gate's
        decision).

    Raises
    ------
    ArgumentError
        The alias is not one MLflow accepts.
    TrackingServerError
        The store is a tracking server that cannot be reached (nothing is logged).
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import Metric, Param
    from mlflow.models import infer_signature

    if alias is not None:
        check_alias(alias)
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_server(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with _tracking(uri):
        exp = experiment_id(uri)
        close_stale_runs(uri)
        with mlflow.start_run(experiment_id=exp,
                              tags={"riskmodel.job": "train", **process_tags()}) as run:
            rid = run.info.run_id
            params = flatten(dict(config))
            params.update({f"data.{k}": str(v) for k, v in fingerprint.items()})
            items = [Param(k, v) for k, v in params.items()]
            for i in range(0, len(items), _MAX_BATCH):
                client.log_batch(rid, params=items[i:i + _MAX_BATCH])
            values = [Metric(k, float(v), 0, 0) for k, v in metrics.items()
                      if v is not None and np.isfinite(v)]
            for i in range(0, len(values), _MAX_BATCH):
                client.log_batch(rid, metrics=values[i:i + _MAX_BATCH])
            tags = {"code_version": getattr(model, "code_version_", ""),
                    "horizon_months": str(getattr(model, "horizon_months_", "")),
                    **dict(tags)}
            mlflow.set_tags(tags)
            dataset = MetaDataset(
                CodeDatasetSource({"ledger": source or "in-memory ledger",
                                   **{k: str(v) for k, v in fingerprint.items()}}),
                name="ledger",
                digest=str(fingerprint["sha256"])[:32],
            )
            mlflow.log_input(dataset, context="training")
            for name, fig in dict(figures).items():
                mlflow.log_figure(fig, f"plots/{name}")
            with tempfile.TemporaryDirectory() as tmp:
                for name, table in dict(tables).items():
                    path = Path(tmp) / name
                    table.to_csv(path, index=False, encoding="utf-8-sig")
                    mlflow.log_artifact(str(path), "tables")
                for name, text in dict(texts).items():
                    path = Path(tmp) / name
                    path.write_text(text, encoding="utf-8")
                    mlflow.log_artifact(str(path), "tables")
            proba = model.predict_proba(example)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                serialization_format="skops",
                skops_trusted_types=TRUSTED_TYPES,
                signature=infer_signature(example, proba),
                input_example=example,
                pyfunc_predict_fn="predict_proba",
                pip_requirements=requirements(),
                registered_model_name=MODEL_NAME if register else None,
                metadata={"code_version": tags["code_version"]},
            )
        version = None
        if register:
            version = str(info.registered_model_version)
            for key, value in tags.items():
                client.set_model_version_tag(MODEL_NAME, version, key, value)
            if alias:
                client.set_registered_model_alias(MODEL_NAME, alias, version)
    model_uri = f"models:/{MODEL_NAME}/{version}" if version else f"runs:/{rid}/model"
    return LoggedRun(run_id=rid, model_uri=model_uri, version=version,
                     alias=alias if version else None, tracking_uri=uri)


def set_alias(alias: str, version: str, tracking_uri: str | None = None,
              name: str = MODEL_NAME) -> None:
    """Point ``models:/name@alias`` at a registered version (promotion after review)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    check_alias(alias)
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_server(uri)
    try:
        MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
            name, alias, str(version))
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"Cannot set alias {alias!r} on {name} version {version} in {uri}: "
            f"{_first_line(exc)}") from None


def alias_version(alias: str, tracking_uri: str | None = None,
                  name: str = MODEL_NAME) -> str | None:
    """The registered version ``models:/name@alias`` points at now; None when it points nowhere.

    A store that does not exist yet, a model never registered and an alias never set are all
    None; a tracking server that cannot be reached raises :class:`TrackingServerError`.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = resolve_tracking_uri(tracking_uri)
    store = _sqlite_file(uri)
    if store is not None and not store.is_file():
        return None
    check_tracking_server(uri)
    try:
        mv = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(
            name, alias)
    except MlflowException:
        return None
    return str(mv.version)


def requirements() -> list[str]:
    """What loading the model needs, pinned where the skops file depends on the version.

    Stated rather than inferred: MLflow's inference imports the model in a subprocess, which
    costs tens of seconds and can only find what this package already knows it needs.
    """
    from importlib import metadata

    from ._estimator import DISTRIBUTION

    pinned = ("scikit-learn", "skops")
    loose = (DISTRIBUTION, "numpy", "pandas", "scipy")
    out = [f"{name}=={metadata.version(name)}" for name in pinned]
    for name in loose:
        try:
            out.append(f"{name}>={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


def save_model(model, path: str | Path, example: pd.DataFrame | None = None) -> Path:
    """Save a fitted model to a plain MLflow model folder (skops), loadable by path."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = None if example is None else infer_signature(example, model.predict_proba(example))
    mlflow.sklearn.save_model(model, str(path), serialization_format="skops",
                              skops_trusted_types=TRUSTED_TYPES, signature=signature,
                              input_example=example, pyfunc_predict_fn="predict_proba",
                              pip_requirements=requirements())
    return Path(path)


def load_model(model_uri: str = DEFAULT_MODEL_URI, tracking_uri: str | None = None):
    """Load a trained model and say which one it is.

    Parameters
    ----------
    model_uri : str, default="models:/return-to-poverty@champion"
        ``models:/name@alias``, ``models:/name/version``, ``runs:/<run id>/model`` or a local
        model folder.
    tracking_uri : str, optional
        See :func:`resolve_tracking_uri`.

    Returns
    -------
    model : RiskModel
    ref : ModelRef

    Raises
    ------
    ModelNotFoundError
        Nothing is found at the URI, or the model holds types this version does not trust.
    TrackingServerError
        A ``models:/`` or ``runs:/`` URI, and the tracking server cannot be reached.
    """
    from mlflow.exceptions import MlflowException

    uri = resolve_tracking_uri(tracking_uri)
    local = Path(model_uri).expanduser()
    store = _sqlite_file(uri)
    from_store = model_uri.startswith(("models:/", "runs:/"))
    if store is not None and not store.is_file() and from_store:
        raise ModelNotFoundError(f"No model at {model_uri}: the tracking store {uri} does not "
                                 "exist. Train one first (riskmodel train --alias champion).")
    if from_store:
        check_tracking_server(uri)
    try:
        if "://" not in model_uri and ":/" not in model_uri:
            if not (local / "MLmodel").is_file():
                raise ModelNotFoundError(f"No model folder at {model_uri} (no MLmodel file).")
            folder, ref = local, None
        elif model_uri.startswith("models:/"):
            folder, ref = _download_registered(model_uri, uri)
        elif model_uri.startswith("runs:/"):
            folder, ref = _download_run(model_uri, uri)
        else:
            raise ModelNotFoundError(
                f"Got model URI {model_uri!r}, expected models:/NAME@ALIAS, models:/NAME/VERSION, "
                "runs:/RUN_ID/PATH or a model folder.")
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"No model at {model_uri} in {uri}: {_first_line(exc)}") from None
    model, run_id = _load_folder(folder, model_uri)
    if ref is None:
        ref = ModelRef(uri=str(model_uri), name=None, version=None, run_id=run_id)
    return model, ref


def _download_registered(model_uri: str, uri: str) -> tuple[Path, ModelRef]:
    import mlflow.artifacts
    from mlflow import MlflowClient

    spec = model_uri.removeprefix("models:/")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    if "@" in spec:
        name, alias = spec.split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
    elif "/" in spec:
        name, version = spec.split("/", 1)
        mv = client.get_model_version(name, version)
    else:
        raise ModelNotFoundError(
            f"Got model URI {model_uri!r}, expected models:/NAME@ALIAS or models:/NAME/VERSION.")
    with _tracking(uri):
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{mv.name}/{mv.version}", tracking_uri=uri, registry_uri=uri)
    ref = ModelRef(uri=model_uri, name=mv.name, version=str(mv.version), run_id=mv.run_id)
    return Path(path), ref


def _download_run(model_uri: str, uri: str) -> tuple[Path, ModelRef]:
    import mlflow.artifacts

    with _tracking(uri):
        path = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, tracking_uri=uri)
    run_id = model_uri.removeprefix("runs:/").split("/", 1)[0]
    return Path(path), ModelRef(uri=model_uri, name=None, version=None, run_id=run_id)


def _load_folder(folder: Path, model_uri: str):
    import skops.io

    try:
        meta = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
        flavor = meta["flavors"]["sklearn"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        raise ModelNotFoundError(
            f"{model_uri} is not a scikit-learn MLflow model (no sklearn flavor in MLmodel)."
        ) from None
    if flavor.get("serialization_format") != "skops":
        raise ModelNotFoundError(
            f"{model_uri} is saved as {flavor.get('serialization_format')!r}; only skops models "
            "are loaded (pickle can run arbitrary code).")
    file = folder / flavor["pickled_model"]
    found = set(skops.io.get_untrusted_types(file=file))
    untrusted = found - set(TRUSTED_TYPES) - set(LEGACY_TRUSTED_TYPES)
    if untrusted:
        raise ModelNotFoundError(
            f"{model_uri} holds types this version of riskmodel does not trust: "
            f"{', '.join(sorted(untrusted))}.")
    if not found & set(LEGACY_TRUSTED_TYPES):
        return skops.io.load(file, trusted=TRUSTED_TYPES), meta.get("run_id")
    with _legacy_modules():
        model = skops.io.load(file, trusted=TRUSTED_TYPES + LEGACY_TRUSTED_TYPES)
    return model, meta.get("run_id")


@contextmanager
def _legacy_modules():
    """The module names of :data:`LEGACY_MODULES` importable, for as long as a model loads."""
    with _LEGACY_LOCK:
        saved = {old: sys.modules.get(old) for old in LEGACY_MODULES}
        try:
            for old, new in LEGACY_MODULES.items():
                sys.modules[old] = importlib.import_module(new)
            yield
        finally:
            for old, module in saved.items():
                if module is None:
                    sys.modules.pop(old, None)
                else:
                    sys.modules[old] = module


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ScoringRun:
    """The monthly scoring job's MLflow run: params, metrics, the summary as an artifact —
    never a household identifier."""

    def __init__(self, tracking_uri: str | None, experiment: str, month: str, params: dict):
        from mlflow import MlflowClient

        self.uri = resolve_tracking_uri(tracking_uri)
        check_tracking_server(self.uri)
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        exp = experiment_id(self.uri, experiment)
        close_stale_runs(self.uri)
        run = self.client.create_run(exp, run_name=f"score-{month}",
                                     tags={"riskmodel.job": "score", "riskmodel.month": month,
                                           **process_tags()})
        self.run_id = run.info.run_id
        self._log(params=params)

    def _log(self, params: dict | None = None, metrics: dict | None = None) -> None:
        from mlflow.entities import Metric, Param

        items = [Param(k, str(v)) for k, v in (params or {}).items()]
        values = [Metric(k, float(v), 0, 0) for k, v in (metrics or {}).items()
                  if v is not None and np.isfinite(v)]
        for i in range(0, max(len(items), len(values)), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100],
                                  metrics=values[i:i + 100])

    def finish(self, metrics: dict, summary: Path) -> None:
        self._log(metrics=metrics)
        self.client.log_artifact(self.run_id, str(summary))

    def end(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=status)
