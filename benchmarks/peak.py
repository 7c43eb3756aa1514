"""Run a command in a fresh process and measure its own peak memory.

``os.wait4`` on a child of the benchmark itself does not give the child's own peak: Linux
carries the resident size of the process that forked it (the benchmark, often holding a
generated ledger) into the child's ``ru_maxrss`` across ``exec``. So the command is started by a
small launcher process that forks it: the launcher's memory is all the command inherits, and the
launcher reports the command's ``ru_maxrss`` from ``wait4``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_LAUNCHER = """\
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_maxrss} {usage.ru_utime} {usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass
class Measured:
    """A finished command: exit code, wall seconds, CPU seconds (user + system, and each; its
    worker processes included), peak resident memory (bytes)."""

    returncode: int
    seconds: float
    cpu_seconds: float
    peak_bytes: int
    user_seconds: float = float("nan")
    system_seconds: float = float("nan")


def run_measured(command: list[str], **popen) -> Measured:
    """Run ``command`` (keyword arguments go to :class:`subprocess.Popen`, e.g. ``stdout``)
    and return its exit code, wall and CPU time and its own peak memory (``ru_maxrss``)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "maxrss"
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(report), *command],
                                   **popen)
        process.wait()
        seconds = time.perf_counter() - start
        maxrss, user, system = (report.read_text().split() if report.exists()
                                else ("0", "nan", "nan"))
    return Measured(process.returncode, seconds, float(user) + float(system),
                    int(maxrss) * 1024, float(user), float(system))
