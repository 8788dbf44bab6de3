"""A running average of the weights over the last few hundred steps.

SGD's weights jitter around the valley floor by an amount set by the
learning rate; their average sits nearer the floor. Evaluating the average
(Polyak averaging, as exponential moving average) reaches a given test
accuracy epochs earlier: LeNet-5 on MNIST with cnnviz's defaults, after
the second epoch, 99.02-99.21% against 98.36-98.86% for the weights
themselves (3 seeds; docs/benchmarks.md), the same at the end.

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
        self._spare = np.empty_like(self.flat)      # update()'s scratch
        live = np.empty_like(self.flat)             # the model's own weights while swapped out
        self._live = [v.reshape(p.value.shape) for v, p in zip(np.split(live, cuts), params)]
        self.count = 0          # updates so far

    def decay(self) -> float:
        """The decay of the next update."""
        return min(DECAY, (1 + self.count) / (10 + self.count))

    def update(self, flat_weights: np.ndarray) -> None:
        """Fold in the weights, given as one flat array in ``params`` order."""
        np.subtract(flat_weights, self.flat, out=self._spare)
        self._spare *= self.flat.dtype.type(1 - self.decay())
        self.flat += self._spare
        self.count += 1

    def reset(self) -> None:
        """Start again from the current weights (n = 0)."""
        for view, p in zip(self._views, self.params):
            view[...] = p.value
        self.count = 0

    def values(self) -> dict[str, np.ndarray]:
        """{parameter name: copy of its average}."""
        return {p.name: v.copy() for p, v in zip(self.params, self._views)}

    def load(self, values: dict[str, np.ndarray], count: int) -> None:
        """Set the average (every parameter's, by name) and its update count."""
        for p, view in zip(self.params, self._views):
            view[...] = values[p.name]
        self.count = int(count)

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
