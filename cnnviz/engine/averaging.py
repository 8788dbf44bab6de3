"""A running average of the weights over the last few hundred steps.

SGD's weights jitter around the valley floor by an amount set by the
learning rate; their average sits nearer the floor. Evaluating the average
(Polyak averaging, as exponential moving average) reaches a given test
accuracy an epoch earlier: LeNet-5 on MNIST with cnnviz's defaults, after
the second epoch, 99.02-99.21% against 98.13-98.86% for the weights
themselves (4 seeds; docs/benchmarks.md), about the same at the end. In
short runs (a few hundred steps) the average lags behind the weights.
Only the trained parameters are averaged: BatchNorm's running statistics
stay the run's own (as PyTorch's AveragedModel by default).

The decay is TensorFlow's ``ExponentialMovingAverage(0.998, num_updates)``:
``min(0.998, (1 + n) / (10 + n))`` at the n-th update, so the first
updates follow the fast-moving early weights closely and later ones average
over about 500 steps (1 / (1 - 0.998)). Pure NumPy."""

from __future__ import annotations

import contextlib

import numpy as np

DECAY = 0.998


class WeightAverage:
    """The average of ``params`` (a model's Param handles), kept in one flat
    array; it starts at their current values."""

    def __init__(self, params):
        self.params = params
        sizes = [p.value.size for p in params]
        self.flat = np.concatenate([p.value.ravel() for p in params]) if params else np.empty(0)
        cuts = np.cumsum(sizes)[:-1]
        self._views = [v.reshape(p.value.shape) for v, p in zip(np.split(self.flat, cuts), params)]
        spare = np.empty_like(self.flat)            # update()'s scratch
        self._spare = [v.reshape(p.value.shape) for v, p in zip(np.split(spare, cuts), params)]
        self._before = np.empty_like(self.flat)     # the average before the last update ...
        self._can_undo = False                      # ... if that update may be taken back
        live = np.empty_like(self.flat)             # the model's own weights while swapped out
        self._live = [v.reshape(p.value.shape) for v, p in zip(np.split(live, cuts), params)]
        self.count = 0          # updates so far

    def decay(self) -> float:
        """The decay of the next update."""
        return min(DECAY, (1 + self.count) / (10 + self.count))

    def update(self) -> None:
        """Fold in the model's current weights (after an optimizer step)."""
        np.copyto(self._before, self.flat)
        k = self.flat.dtype.type(1 - self.decay())
        for view, spare, p in zip(self._views, self._spare, self.params):
            np.subtract(p.value, view, out=spare)
            spare *= k
            view += spare
        self._can_undo = True
        self.count += 1

    def undo(self) -> None:
        """Take the last update back (its weights then gave a non-finite
        loss: the trainer restores the ones before them). Once only."""
        if self._can_undo:
            np.copyto(self.flat, self._before)
            self.count -= 1
            self._can_undo = False

    def reset(self) -> None:
        """Start again from the current weights (n = 0)."""
        for view, p in zip(self._views, self.params):
            view[...] = p.value
        self.count = 0
        self._can_undo = False

    def values(self) -> dict[str, np.ndarray]:
        """{parameter name: copy of its average}."""
        return {p.name: v.copy() for p, v in zip(self.params, self._views)}

    def load(self, values: dict[str, np.ndarray], count: int) -> None:
        """Set the average (every parameter's, by name) and its update count."""
        for p, view in zip(self.params, self._views):
            view[...] = values[p.name]
        self.count = int(count)
        self._can_undo = False

    def copy_to_model(self) -> None:
        """The model takes the averaged weights."""
        for view, p in zip(self._views, self.params):
            p.value[...] = view

    @contextlib.contextmanager
    def swapped_in(self):
        """The model holds the averaged weights inside the block, its own
        again after it (also on an exception)."""
        for view, live, p in zip(self._views, self._live, self.params):
            live[...] = p.value
            p.value[...] = view
        try:
            yield
        finally:
            for live, p in zip(self._live, self.params):
                p.value[...] = live
