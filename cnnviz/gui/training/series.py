"""A growing x/y series that stays small however long the run.

Points arrive one batch at a time. While the buffer has room they are kept
as they are; when it fills, every pair of neighbours is merged into their
mean and from then on incoming points are averaged in groups twice as large
(the stride doubles). So a run of any length costs at most ``capacity``
points of memory and of redraw work, and all shown points are averages over
equal spans, which keeps old and new parts of a curve comparable. Pure NumPy.
"""

from __future__ import annotations

import numpy as np


class DecimatedSeries:
    def __init__(self, capacity: int = 2000):
        if capacity < 4 or capacity % 2:
            raise ValueError("capacity must be an even number >= 4")
        self.capacity = capacity
        self._x = np.empty(capacity, np.float64)
        self._y = np.empty(capacity, np.float64)
        self.clear()

    def clear(self) -> None:
        self.n = 0          # points in the buffer
        self.total = 0      # raw points ever appended
        self.stride = 1     # raw points per buffered point
        self._sx = self._sy = 0.0
        self._pending = 0

    def extend(self, x, y) -> None:
        x = np.atleast_1d(np.asarray(x, np.float64))
        y = np.atleast_1d(np.asarray(y, np.float64))
        for xi, yi in zip(x.tolist(), y.tolist()):
            self._sx += xi
            self._sy += yi
            self._pending += 1
            if self._pending == self.stride:
                if self.n == self.capacity:
                    # Halve; the group just completed becomes the first half of
                    # a group at the new, doubled stride.
                    self._halve()
                    continue
                self._x[self.n] = self._sx / self.stride
                self._y[self.n] = self._sy / self.stride
                self.n += 1
                self._sx = self._sy = 0.0
                self._pending = 0
        self.total += len(x)

    def _halve(self) -> None:
        h = self.capacity // 2
        self._x[:h] = self._x.reshape(h, 2).mean(axis=1)
        self._y[:h] = self._y.reshape(h, 2).mean(axis=1)
        self.n = h
        self.stride *= 2

    @property
    def x(self) -> np.ndarray:
        return self._x[:self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[:self.n]
