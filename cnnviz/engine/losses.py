"""Losses: each returns the loss and keeps what its backward needs."""

from __future__ import annotations

import numpy as np

from . import functional as F


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels, computed
    stably (log-softmax with the row max subtracted).

    ``loss = fn(logits, labels)`` then ``dlogits = fn.backward()`` =
    (softmax(logits) - onehot(labels)) / N. ``probs`` holds the softmax."""

    def __init__(self):
        self._grad = None
        self.probs = None

    def forward(self, logits, labels) -> float:
        loss, self._grad = F.softmax_cross_entropy(logits, labels)
        n = logits.shape[0]
        self.probs = self._grad * n
        self.probs[np.arange(n), np.asarray(labels)] += 1
        return loss

    __call__ = forward

    def backward(self):
        if self._grad is None:
            raise RuntimeError("backward() called before forward()")
        return self._grad
