"""Centered finite-difference check of one layer on its current input, in float64.

The layer is copied and converted to float64; the scalar checked is
L = sum(layer(x) * r) with r the layer's current upstream δ when the backward
pass has reached it (else a fixed random tensor), so dL/dx is exactly what
``backward(r)`` returns. Entries where the one-sided differences disagree sit
on a kink (ReLU at 0, a tie inside a max-pool window): there no derivative
exists, so they are counted and left out instead of reported as errors.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

H = 1e-5
MAX_ENTRIES = 300          # per tensor, sampled with a fixed seed: a check stays < 1 s


@dataclass
class GradCheckResult:
    layer: str
    max_rel_error: float
    worst: str              # which tensor and index
    checked: int
    total: int
    kinks: int

    def text(self) -> str:
        verdict = "OK" if self.max_rel_error < 1e-5 else "MISMATCH"
        kinks = f"; {self.kinks} entries on a kink skipped" if self.kinks else ""
        return (f"{self.layer}: largest relative error {self.max_rel_error:.2e} ({verdict}) "
                f"at {self.worst}; {self.checked} of {self.total} entries checked{kinks}")


def check_layer(layer, x: np.ndarray, upstream: np.ndarray | None = None,
                seed: int = 0) -> GradCheckResult:
    rng = np.random.default_rng(seed)
    layer = copy.deepcopy(layer).astype(np.float64)
    x = np.array(x[0:1], dtype=np.float64)       # sample 0, own copy
    # every pass on the same buffers: Dropout the same mask, BatchNorm the same running stats
    buffers = {k: v.copy() for k, v in getattr(layer, "buffers", {}).items()}

    def forward():
        for k, v in buffers.items():
            layer.buffers[k][...] = v
        return layer.forward(x)

    out = forward()
    r = (rng.standard_normal(out.shape) if upstream is None
         else np.array(upstream[0:1], dtype=np.float64))

    def loss() -> float:
        return float(np.sum(forward() * r))

    forward()
    analytic = {"input": layer.backward(r)}
    analytic.update({k: np.array(v) for k, v in layer.grads.items()})
    tensors = {"input": x, **layer.params}
    worst, worst_where, checked, total, kinks = 0.0, "-", 0, 0, 0
    # entries far below the layer's largest gradient are mostly rounding noise
    # in a relative error: floor the denominator relative to it (a whole tensor
    # can be ~0: a conv's bias before a BatchNorm in training mode, whose mean
    # subtraction cancels it)
    largest = max(float(np.abs(np.asarray(a)).max()) for a in analytic.values()
                  if a is not None and np.size(a))
    for name, t in tensors.items():
        if analytic.get(name) is None:
            continue
        total += t.size
        flat = t.reshape(-1)             # a view: writing it perturbs the tensor
        idx = np.arange(t.size) if t.size <= MAX_ENTRIES else rng.choice(t.size, MAX_ENTRIES,
                                                                         replace=False)
        a_flat = np.asarray(analytic[name]).reshape(-1)
        floor = max(1e-8, 1e-4 * largest)
        base = loss()
        for k in idx:
            old = flat[k]
            flat[k] = old + H
            up = loss()
            flat[k] = old - H
            down = loss()
            flat[k] = old
            fwd, bwd = (up - base) / H, (base - down) / H
            if abs(fwd - bwd) > 1e-2 * max(abs(fwd) + abs(bwd), floor):
                kinks += 1
                continue
            num = (up - down) / (2 * H)
            a = a_flat[k]
            rel = abs(a - num) / max(abs(a) + abs(num), floor)
            checked += 1
            if rel > worst:
                worst = rel
                worst_where = f"{name}{tuple(int(i) for i in np.unravel_index(k, t.shape))}"
    return GradCheckResult(layer.name, worst, worst_where, checked, total, kinks)
