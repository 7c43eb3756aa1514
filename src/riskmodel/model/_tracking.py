"""MLflow: where runs go, what a training run records, and loading a model back.

The store defaults to a SQLite file in the working folder (``sqlite:///mlruns.db``);
``MLFLOW_TRACKING_URI`` points it at a team's tracking server. Models are saved with skops, and
loaded back with this module's own list of trusted types — never with a list read from the
model's folder, which whoever wrote the folder controls. Nothing that identifies a household goes
into MLflow: the data is recorded as a fingerprint (a hash and counts), the input example is a
row of training medians.

Every run this project opens carries its process (host name, pid and, on Linux, the process's
start): a run left ``RUNNING`` by a process that is gone (``kill -9``, a power cut) is marked
``FAILED`` by the next run this project opens on the same store (:func:`close_stale_runs`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import yaml

from ..config import DEFAULT_MODEL_URI, EXPERIMENT, MODEL_NAME
from ..errors import ArgumentError, ModelNotFoundError, TrackingServerError

log = logging.getLogger(__name__)
DEFAULT_STORE = "mlruns.db"
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
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
# MLflow's rules for registry aliases (mlflow/utils/validation.py: _validate_model_alias_name and
# _validate_model_alias_name_reserved, which the SQL store and the server apply).
_ALIAS = re.compile(r"[\w\-]+")
_ALIAS_VERSION = re.compile(r"[vV]\d+")
_ALIAS_MAX_LENGTH = 255
# One try with a short timeout: MLflow's own client retries a refused connection for minutes.
_REACH_TIMEOUT_S = 10.0
# What a proxy answers when the server behind it is down; MLflow would retry these too.
_GATEWAY_DOWN = (502, 503, 504)
# Tags naming the process that holds a run open (see close_stale_runs).
HOST_TAG = "riskmodel.host"
PID_TAG = "riskmodel.pid"
PROCESS_TAG = "riskmodel.process"
STALE_TAG = "riskmodel.stale"
_NOTE_TAG = "mlflow.note.content"


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


def resolve_tracking_uri(uri: str | None = None) -> str:
    """The tracking store: the argument, else ``MLFLOW_TRACKING_URI``, else ``mlruns.db`` here.

    Examples
    --------
    >>> resolve_tracking_uri("sqlite:////tmp/x.db")
    'sqlite:////tmp/x.db'
    >>> resolve_tracking_uri().startswith("sqlite:///") or "MLFLOW_TRACKING_URI" in os.environ
    True
    """
    if uri:
        return str(uri)
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path.cwd() / DEFAULT_STORE).resolve()}"


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


def check_tracking_server(uri: str) -> None:
    """Say at once, in one line, when the tracking server at ``uri`` cannot be reached.

    Only ``http://`` and ``https://`` stores are checked (one request, a few seconds at most);
    a SQLite store is a file and needs no check. Any answer of the server counts, an error
    status or a refused login included; no connection, no answer in time, or a proxy's
    502/503/504 (the server behind it is down) does not.

    Parameters
    ----------
    uri : str
        A resolved tracking URI (see :func:`resolve_tracking_uri`).

    Raises
    ------
    TrackingServerError
        Nothing answers at ``uri``.

    Examples
    --------
    >>> check_tracking_server("sqlite:///mlruns.db")   # a file: nothing to reach
    """
    # MLflow's own HTTP client: proxies and certificates are found the way MLflow finds them.
    import requests

    if urlparse(uri).scheme not in ("http", "https"):
        return
    health = f"{uri.rstrip('/')}/health"
    try:
        with requests.get(health, timeout=_REACH_TIMEOUT_S, stream=True) as reply:
            status = reply.status_code
    except requests.exceptions.SSLError:
        # A server is there; whether its certificate is trusted is MLflow's settings' business.
        return
    except requests.exceptions.Timeout:
        reason = f"no answer within {_REACH_TIMEOUT_S:g} s"
    except requests.exceptions.RequestException as exc:
        reason = _socket_reason(exc)
    else:
        if status not in _GATEWAY_DOWN:
            return
        reason = f"it answered HTTP {status}: the server behind it is down"
    raise TrackingServerError(
        f"The tracking server at {uri} cannot be reached ({reason}); expected a running MLflow "
        "server there: start it, or give another --tracking-uri or MLFLOW_TRACKING_URI.")


def _socket_reason(exc: BaseException) -> str:
    """The operating system's words at the bottom of a requests error (connection refused …)."""
    seen, todo = set(), [exc]
    while todo:
        err = todo.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, OSError) and err.strerror:
            return err.strerror.lower()
        todo += [getattr(err, "reason", None), err.__cause__, err.__context__]
    return type(exc).__name__


def process_tags() -> dict[str, str]:
    """Tags naming this process, set on every run it opens (see :func:`close_stale_runs`).

    ``riskmodel.host`` (host name), ``riskmodel.pid`` and ``riskmodel.process``: on Linux the
    boot, the pid namespace and the start time of the process (``boot:pidns:start``), so that a
    later pid reused by another process is not taken for this one; empty elsewhere.
    """
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid),
            PROCESS_TAG: _process_identity(pid) or ""}


def _process_identity(pid: int) -> str | None:
    """``boot:pidns:start`` of a live process on Linux; None when it is gone, or not Linux."""
    proc = Path("/proc")
    try:
        stat = (proc / str(pid) / "stat").read_text()
        boot = (proc / "sys/kernel/random/boot_id").read_text().strip()
        # "pid:[4026531836]": the inode names the namespace.
        namespace = re.sub(r"\D", "", os.readlink(proc / "self/ns/pid"))
    except OSError:
        return None
    # Fields after the command name, which may hold spaces: state is the first, start the 20th.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        # Exited, not yet reaped by its parent: gone.
        return None
    return f"{boot}:{namespace}:{fields[19]}"


def _process_gone(pid: int, identity: str) -> bool | None:
    """Whether the process that recorded ``identity`` has ended; None when it cannot be told.

    On Linux, with the identity recorded: gone when the machine rebooted since, or no process
    of that pid with that start time lives now; a process of another pid namespace (another
    container with the same host name) cannot be told. Elsewhere: gone when no process has the
    pid (a reused pid counts as alive).
    """
    if identity:
        mine = _process_identity(os.getpid())
        if mine is None:
            return None
        boot, namespace, _ = identity.split(":", 2)
        my_boot, my_namespace, _ = mine.split(":", 2)
        if boot != my_boot:
            return True
        if namespace != my_namespace:
            return None
        return _process_identity(pid) != identity
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    except OSError:
        return None
    return False


def close_stale_runs(uri: str) -> list[str]:
    """Mark ``FAILED`` the runs of this project left ``RUNNING`` by a process that is gone.

    A run this project opens records its process (:func:`process_tags`). A process killed with
    ``kill -9`` (or a machine that lost power) never closes its run, which MLflow would show as
    running forever. Every train and score run calls this before it opens its own: among the
    store's ``RUNNING`` runs recorded on this host (by host name), those whose process has ended
    are set ``FAILED``, with the tag ``riskmodel.stale`` and a note saying why. Runs of other
    hosts, of other projects and of live processes are left alone.

    Parameters
    ----------
    uri : str
        A resolved tracking URI.

    Returns
    -------
    list of str
        The run ids marked ``FAILED``.
    """
    from datetime import UTC, datetime

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    host = socket.gethostname()
    experiments, token = [], None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        experiments += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    closed: list[str] = []
    for i in range(0, len(experiments), 100):
        token = None
        while True:
            runs = client.search_runs(
                experiments[i:i + 100], max_results=1000, page_token=token,
                filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'")
            for run in runs:
                tags = run.data.tags
                try:
                    pid = int(tags.get(PID_TAG, ""))
                except ValueError:
                    continue
                if not _process_gone(pid, tags.get(PROCESS_TAG, "")):
                    continue
                when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
                note = (f"Process {pid} on {host} ended without closing this run (killed, or the "
                        f"machine stopped); marked FAILED on {when} by the next riskmodel run on "
                        "this store.")
                client.set_tag(run.info.run_id, STALE_TAG, note)
                client.set_tag(run.info.run_id, _NOTE_TAG, note)
                client.set_terminated(run.info.run_id, status="FAILED")
                closed.append(run.info.run_id)
            token = runs.token
            if not token:
                break
    if closed:
        log.warning("%d run(s) left RUNNING by a process that is gone marked FAILED: %s",
                    len(closed), ", ".join(closed))
    return closed


@contextmanager
def _tracking(uri: str) -> Iterator[None]:
    """MLflow pointed at ``uri`` inside the block, and left afterwards exactly as it was.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` (and the registry's
    ``MLFLOW_REGISTRY_URI``) into the environment, and MLflow has no public way to unset a
    URI: restoring with ``set_tracking_uri(get_tracking_uri())`` would leave the process pinned
    to whatever store was current (its default included), so that a later
    ``MLFLOW_TRACKING_URI`` set by the user was ignored. Both the module state and the
    environment are put back as found.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = {name: os.environ.get(name)
             for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", _PROGRESS_BAR)}
    before_tracking = tracking_utils._tracking_uri
    before_registry = registry_utils._registry_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # A batch job's log is no place for download progress bars.
    os.environ[_PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        tracking_utils._tracking_uri = before_tracking
        registry_utils._registry_uri = before_registry
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _sqlite_file(uri: str) -> Path | None:
    if urlparse(uri).scheme != "sqlite":
        return None
    return Path(uri.removeprefix("sqlite:///"))


def _artifact_root(uri: str) -> str | None:
    # A SQLite store keeps artifacts beside the database, not in whatever folder the job ran in.
    db = _sqlite_file(uri)
    return None if db is None else (db.parent / "mlartifacts").resolve().as_uri()


def experiment_id(uri: str, name: str = EXPERIMENT) -> str:
    """The id of the experiment ``name`` in the store ``uri``, created when missing."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    root = _artifact_root(uri)
    location = f"{root}/{name}" if root else None
    return client.create_experiment(name, artifact_location=location)


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
