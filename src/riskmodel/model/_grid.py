"""The household × month grid the features are read from, and sums over its 12-month windows.

A chunk of whole households' rows is laid on a flat grid, a row of months per household; the
twelve cells ending at a target row's month are its window. A window is given either as a
block (targets × 12, :meth:`Grid.block`, what :mod:`riskmodel.model._recorded` reads) or month
by month (12 × targets, :meth:`Grid.months`): then each month is one contiguous array and a
window's sum is a dozen additions of whole arrays instead of a short sum per target.

:func:`window_sum` adds in the order numpy's row sum of a block adds in (0.0, then the cells
pairwise in eights, then one by one), so a feature is the same number to the last bit whichever
layout it was computed in.
"""

from __future__ import annotations

import numpy as np

WINDOW = 12


class Grid:
    """A chunk of whole households' rows on a flat household × month grid."""

    def __init__(self, house: np.ndarray, col: np.ndarray, width: int, is_target: np.ndarray):
        self.width = width
        self.first = 0  # month number of the first column, set by the caller
        self.whole = False  # whether the rows are all of the ledger's, in order (the caller's)
        self.size = (int(house[-1]) + 1) * width
        self.cells = house * width + col
        self.targets = self.cells[is_target]
        # Grid positions of the 12 months ending at each target row's month, oldest first.
        self.window = self.targets[:, None] + np.arange(-WINDOW + 1, 1)
        # Rows old enough to fall in no target's window are only read for months-since.
        self._start = start = int(col[is_target].min()) - WINDOW + 1
        self.recent = col >= start
        # A chunk as a monthly ledger holds it (every household a row in every month, in order,
        # its one target in the last column) is the grid itself: a block is 12 of its columns.
        self.full = (len(self.cells) == self.size == len(self.targets) * width
                     and np.array_equal(self.cells, np.arange(self.size))
                     and bool(np.all(self.targets % width == start + WINDOW - 1)))

    def block(self, values: np.ndarray, recent: bool = False, fill: float = 0.0) -> np.ndarray:
        """Targets × 12 months of one variable given at the chunk's (recent) rows: float64, or
        bool for flags (absent cells False), which sum to the same counts as 0.0/1.0 do."""
        return np.ascontiguousarray(self._windows(values, recent, fill))

    def months(self, values: np.ndarray, recent: bool = False, fill: float = 0.0) -> np.ndarray:
        """:meth:`block` month by month: 12 × targets, each month contiguous."""
        return np.ascontiguousarray(self._windows(values, recent, fill).T)

    def _windows(self, values: np.ndarray, recent: bool, fill: float) -> np.ndarray:
        flags = values.dtype == bool and fill == 0
        if self.full:  # the recent rows start at the window's first column, all at the grid's
            rows = np.asarray(values, dtype=None if flags else "float64")
            rows = rows.reshape(self.size // self.width, -1)
            at = 0 if recent else self._start
            return rows[:, at:at + WINDOW]
        grid = np.zeros(self.size, dtype=bool) if flags else np.full(self.size, fill)
        grid[self.cells[self.recent] if recent else self.cells] = values
        return grid[self.window]


def window_sum(months: np.ndarray, w: int) -> np.ndarray:
    """Per target, the sum of the last ``w`` months of a month-by-month float block, added as
    ``block[:, -w:].sum(axis=1)`` adds a target's cells."""
    cells = months[-w:]
    if w < 8:
        total = cells[0].copy()
        for cell in cells[1:]:
            total += cell
    else:
        total = cells[0] + cells[1]
        total += cells[2] + cells[3]
        total += (cells[4] + cells[5]) + (cells[6] + cells[7])
        for cell in cells[8:]:
            total += cell
    return 0.0 + total


def window_count(months: np.ndarray, w: int) -> np.ndarray:
    """Per target, the sum of the last ``w`` months of a month-by-month block of flags or
    whole counts (exact in any order)."""
    total = months[-w].astype("int64")
    for cell in months[len(months) - w + 1:]:
        total += cell
    return total


class ObservedMonths:
    """Least-squares slope per month and standard deviation over the observed cells of
    month-by-month blocks of the same targets: what depends only on which cells are observed
    is computed once for every variable."""

    def __init__(self, obs: np.ndarray):
        x = np.arange(len(obs), dtype="float64")[:, None]
        self.obs = obs
        self.n = window_count(obs, len(obs)).astype("float64")
        with np.errstate(invalid="ignore", divide="ignore"):
            x_mean = window_sum(obs * x, len(obs)) / self.n
        self.dx = (x - x_mean) * obs
        self.dxx = window_sum(self.dx * self.dx, len(obs))

    def slope_and_spread(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Slope and standard deviation of one month-by-month block."""
        with np.errstate(invalid="ignore", divide="ignore"):
            y_mean = window_sum(self.obs * values, len(values)) / self.n
            dy = (values - y_mean) * self.obs
            slope = window_sum(self.dx * dy, len(values)) / self.dxx
            spread = np.sqrt(window_sum(dy * dy, len(values)) / (self.n - 1))
        return slope, spread
