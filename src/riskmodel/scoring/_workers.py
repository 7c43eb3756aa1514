"""The chunks of a month scored in several processes at once (``scoring.workers``).

Household chunks are independent: :func:`riskmodel.scoring.score_frame` scores a household from
its own rows. The chunks are cut into one contiguous share per worker; this process scores the
first share while each forked worker reads and scores its own from the ledger (a ledger folder's
chunks are consecutive rows of every month file, so a worker reads its rows in one pass, passing
over those of the shares before). The results come back in chunk order, as one process gives
them, so the job adds up the same counts, quarantine and ``source_row`` numbers whatever the
number of workers.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import pickle
import queue as queues
import signal
import sys
from collections.abc import Callable, Iterator

import numpy as np

from ..errors import RiskModelError
from ..ledger import LedgerChunks, ValidChunk
from ._core import ChunkResult

logger = logging.getLogger(__name__)

# Seconds between looks at a worker that has sent nothing yet.
_POLL_S = 1.0


def shares(n_chunks: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous shares of ``n_chunks`` chunks for ``workers`` processes, as even as they can
    be, the first (this process's) never the smaller, since a later share's worker passes over
    the rows of the shares before it: ``(start, stop)`` pairs in order.

    Examples
    --------
    >>> shares(5, 2)
    [(0, 3), (3, 5)]
    >>> shares(1, 2)
    [(0, 1)]
    """
    workers = max(1, min(workers, n_chunks))
    bounds = n_chunks - np.floor(np.arange(workers, -1, -1) * n_chunks / workers).astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


class ChunkWorkers:
    """Each chunk of a ledger validated and scored, in chunk order, by ``workers`` processes.

    The worker processes are forked and start reading at once, when the object is made, so
    that this process can do other work (start the MLflow run) while they do theirs; this
    process scores the first share when iterated. :meth:`close` ends any worker still running.

    Parameters
    ----------
    chunks : LedgerChunks
    month : str
        ``YYYY-MM``, as :meth:`riskmodel.ledger.LedgerChunks.validated` takes it.
    workers : int
        Processes scoring at once, this one included; 1 scores every chunk here.
    score : callable
        A validated chunk in, its :class:`ChunkResult` out.

    Raises
    ------
    RiskModelError
        When iterated: a worker ended without sending its results (killed, out of memory);
        what a worker raised is raised as it was.
    """

    def __init__(self, chunks: LedgerChunks, month: str, workers: int,
                 score: Callable[[ValidChunk], ChunkResult]):
        self.chunks, self.month, self.score = chunks, month, score
        if "fork" not in multiprocessing.get_all_start_methods():
            workers = 1  # Windows: no fork; the chunks are scored here
        self.shares = shares(chunks.n_chunks, workers)
        self._started: list = []
        context = multiprocessing.get_context("fork")
        try:
            for start, stop in self.shares[1:]:
                channel = context.Queue()
                process = context.Process(target=_work, name=f"riskmodel-score-{start}",
                                          args=(chunks, month, start, stop, score, channel,
                                                os.getpid()),
                                          daemon=True)
                process.start()
                self._started.append((process, channel))
        except BaseException:
            self.close()
            raise
        if len(self.shares) > 1:
            logger.info("%s: %d chunk(s) in %d processes", month, chunks.n_chunks,
                        len(self.shares))

    def __iter__(self) -> Iterator[ChunkResult]:
        start, stop = self.shares[0]
        for chunk in self.chunks.validated(self.month, start=start, stop=stop):
            yield self.score(chunk)
        for (process, channel), (start, stop) in zip(self._started, self.shares[1:],
                                                     strict=True):
            for _ in range(start, stop):
                yield _receive(process, channel)
            process.join()

    def close(self) -> None:
        """End the workers still running (a failed or abandoned run) and wait for them."""
        for process, channel in self._started:
            if process.is_alive():
                process.terminate()
            process.join()
            channel.close()
        self._started = []


def _work(chunks: LedgerChunks, month: str, start: int, stop: int,
          score: Callable[[ValidChunk], ChunkResult], channel, parent: int) -> None:
    """A worker: chunks ``start`` to ``stop`` scored and sent, in order; or what it raised."""
    _die_with(parent)
    try:
        chunks.reopen()
        for chunk in chunks.validated(month, start=start, stop=stop):
            channel.put(("result", score(chunk)))
    except BaseException as exc:  # noqa: BLE001 - sent to the job, which raises it
        logger.debug("scoring worker for chunks %d-%d failed", start, stop - 1, exc_info=True)
        channel.put(("error", _sendable(exc)))
    channel.close()
    channel.join_thread()


def _die_with(parent: int) -> None:
    """End this forked process when the job that forked it ends, killed included (Linux's
    parent-death signal), so that it never outlives the job holding its output folder's lock;
    end it now if the job is already gone."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # no prctl: the process ends when its work does
            pass
    if os.getppid() != parent:
        os._exit(1)


def _sendable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any exception that does not travel is said in words
        return RiskModelError(f"A scoring worker failed: {exc.__class__.__name__}: {exc}")
    return exc


def _receive(process, channel, died: str = (
        "A scoring worker ended (exit code {code}) before sending all its chunks; nothing "
        "was written. With little memory, lower scoring.chunk_households or "
        "scoring.workers.")):
    """The next thing ``process`` sends: its value, or what it raised, raised here; ``died``
    (its exit code as ``{code}``) when it ended without sending."""
    while True:
        try:
            kind, value = channel.get(timeout=_POLL_S)
        except queues.Empty:
            if process.is_alive():
                continue
            try:
                kind, value = channel.get(timeout=_POLL_S)
            except queues.Empty:
                raise RiskModelError(died.format(code=process.exitcode)) from None
        if kind == "error":
            raise value
        return value


class ForkedTask:
    """``fn(*args)`` run in a forked process while this one goes on; :meth:`wait` waits for it
    and raises what it raised. Where processes cannot be forked it runs at once, here.

    The month's watch list (a workbook and a CSV of a sixth of a province's households) is
    written this way while the job writes its other files and the bulletin.
    """

    def __init__(self, fn: Callable, *args):
        self._process = self._channel = None
        if "fork" not in multiprocessing.get_all_start_methods():
            fn(*args)
            return
        context = multiprocessing.get_context("fork")
        self._channel = context.Queue()
        self._process = context.Process(target=_task,
                                        args=(fn, args, self._channel, os.getpid()),
                                        name="riskmodel-task", daemon=True)
        self._process.start()

    def wait(self) -> None:
        """Wait for the task; raise what it raised, or a one-line error if it died."""
        if self._process is None:
            return
        try:
            _receive(self._process, self._channel,
                     "A process writing the month's files ended (exit code {code}) before it "
                     "was done; nothing was published.")
            self._process.join()
        finally:
            self.close()

    def close(self) -> None:
        """End the task if it still runs (a failed run) and wait for it."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()
            self._channel.close()
            self._process = self._channel = None


def _task(fn: Callable, args: tuple, channel, parent: int) -> None:
    _die_with(parent)
    try:
        fn(*args)
        channel.put(("done", None))
    except BaseException as exc:  # noqa: BLE001 - sent to the job, which raises it
        channel.put(("error", _sendable(exc)))
    channel.close()
    channel.join_thread()
