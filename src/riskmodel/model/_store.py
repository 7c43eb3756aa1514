"""The MLflow store: where runs go, whether a tracking server answers, and runs left running.

The store defaults to a SQLite file in the working folder (``sqlite:///mlruns.db``);
``MLFLOW_TRACKING_URI`` points it at a team's tracking server, which is checked before any work
(:func:`check_tracking_server`). Every run this project opens carries its process (host name,
pid and, on Linux, the process's start, :func:`process_tags`): a run left ``RUNNING`` by a
process that is gone (``kill -9``, a power cut) is marked ``FAILED`` by the next run this
project opens on the same store (:func:`close_stale_runs`). :func:`_tracking` points MLflow at
a store for the length of a block and leaves it as it found it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from ..config import EXPERIMENT
from ..errors import TrackingServerError

log = logging.getLogger(__name__)
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"

DEFAULT_STORE = "mlruns.db"
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
