"""Stage timings of a job: the seconds each stage took, as ``summary.json`` and
``plan_summary.json`` report them (``timings_s``, ``cpu_s``)."""

from __future__ import annotations

import time


class Clock:
    """Wall seconds per stage, and with ``cpu`` CPU seconds under ``cpu:<stage>`` (wall ≫ CPU:
    a busy host).

    Parameters
    ----------
    cpu : bool, default=False
        Also count the process's CPU seconds per stage.

    Examples
    --------
    >>> clock = Clock()
    >>> clock.lap("read")
    >>> list(clock.laps)
    ['read']
    """

    def __init__(self, cpu: bool = False):
        self.cpu = cpu
        self.laps: dict[str, float] = {}
        self.restart()

    def lap(self, name: str) -> None:
        """Add the seconds since the last lap (or start) to stage ``name``."""
        wall = time.perf_counter()
        self.add(name, wall - self._wall)
        self._wall = wall
        if self.cpu:
            cpu = time.process_time()
            self.add(f"cpu:{name}", cpu - self._cpu)
            self._cpu = cpu

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to stage ``name``."""
        self.laps[name] = self.laps.get(name, 0.0) + seconds

    def restart(self) -> None:
        """Start the next lap now."""
        self._wall = time.perf_counter()
        self._cpu = time.process_time() if self.cpu else 0.0
