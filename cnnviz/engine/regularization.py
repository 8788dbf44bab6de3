"""Dropout: in training, each value is kept with probability 1 - p and
scaled by 1 / (1 - p) ("inverted" dropout, as PyTorch), so evaluation needs
no rescaling and is the identity.

The mask of the last training pass is kept (``mask``, bool, the input's
shape): the backward pass routes the gradient through the same values, and
the views can show which were dropped.

Masks are a function of the layer's seed and of how many it has drawn: the
k-th mask comes from ``default_rng([seed, stream, k])``, and k is a buffer
(``buffers["draws"]``), saved with the model and in checkpoints like
BatchNorm2d's running statistics. So a seeded model drops the same values
run after run, and a run resumed from a checkpoint draws the masks the
uninterrupted run would have drawn. ``stream`` is 0, or a training worker's
own (``fork_rng``).
"""

from __future__ import annotations

import numpy as np

from .layers import Layer


class Dropout(Layer):
    """Zero each value with probability ``p`` in training (``training``
    True, see Sequential.train / eval); the identity in evaluation and in
    ``infer`` (inference never drops)."""

    kind = "dropout"
    training = True

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        p = float(p)
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
        self.p = p
        if isinstance(seed, np.random.Generator):       # a model builder's shared generator
            seed = int(seed.integers(2**63))
        elif seed is None:                              # fresh entropy, kept: config() has it
            seed = int(np.random.SeedSequence().entropy % 2**63)
        self.seed = int(seed)
        self.stream = 0
        self.buffers = {"draws": np.zeros(1, np.float64)}   # float64: exact to 2**53 masks
        self.mask = None

    @property
    def scale(self) -> float:
        return 1.0 / (1.0 - self.p)

    def forward(self, x):
        self.last_input = x
        if self.training and self.p > 0:
            draws = self.buffers["draws"]
            rng = np.random.default_rng([self.seed, self.stream, int(draws[0])])
            draws += 1
            self.mask = rng.random(x.shape) >= self.p
            out = x * self.mask
            out *= np.asarray(self.scale, out.dtype)
        else:
            self.mask = None
            out = x
        self.last_output = out
        return out

    def infer(self, x, overwrite=False):
        return x

    def backward(self, grad_out, need_input_grad=True):
        if self.mask is None:
            return grad_out
        g = grad_out * self.mask
        g *= np.asarray(self.scale, g.dtype)
        return g

    def fork_rng(self, stream: int) -> None:
        """Draw masks from an independent stream (a training worker process
        gets its own, else it would drop the same positions as this one)."""
        self.stream = int(stream)

    def config(self):
        return {"p": self.p, "seed": self.seed}
