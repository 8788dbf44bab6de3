"""Optimizers: they, and only they, change weights (in place).

Both follow PyTorch's definitions, so runs can be compared with it:
weight decay is L2 added to the gradient; SGD's momentum buffer is
``v = m*v + g`` and the step ``w -= lr*v``; Adam is bias-corrected."""

from __future__ import annotations

import numpy as np


class Optimizer:
    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got no parameters")
        self.lr = float(lr)
        self.steps = 0

    def step(self):
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                raise RuntimeError(f"{p.name} has no gradient: run backward() before step()")
            self._update(i, p.value, g)
        self.steps += 1

    def _update(self, i, w, g):
        raise NotImplementedError

    # --- checkpointing ----------------------------------------------------
    def state_dict(self) -> dict:
        """Hyperparameters and buffers (copies), by parameter name."""
        return {"type": type(self).__name__, "hyper": self.hyper(), "steps": self.steps,
                "buffers": {name: [b.copy() for b in bufs]
                            for name, bufs in self._buffers().items()}}

    def load_state_dict(self, state: dict):
        if state.get("type") != type(self).__name__:
            raise ValueError(f"state is for {state.get('type')}, not {type(self).__name__}")
        for k, v in state["hyper"].items():
            setattr(self, k, v)
        self.steps = int(state["steps"])
        self._set_buffers(state["buffers"])

    def hyper(self) -> dict:
        raise NotImplementedError

    def _buffers(self) -> dict:
        return {}

    def _set_buffers(self, buffers):
        pass


class SGD(Optimizer):
    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.velocity = [None] * len(self.params)

    def _update(self, i, w, g):
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            v = self.velocity[i]
            if v is None:
                v = self.velocity[i] = g.astype(w.dtype, copy=True)
            else:
                v *= self.momentum
                v += g
            g = v
        w -= np.asarray(self.lr, w.dtype) * g

    def hyper(self):
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}

    def _buffers(self):
        return {p.name: [v] for p, v in zip(self.params, self.velocity) if v is not None}

    def _set_buffers(self, buffers):
        self.velocity = [None if p.name not in buffers else np.array(buffers[p.name][0])
                         for p in self.params]


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self.m = [np.zeros_like(p.value) for p in self.params]
        self.v = [np.zeros_like(p.value) for p in self.params]

    def step(self):
        self._t = self.steps + 1          # bias correction uses the step number
        super().step()

    def _update(self, i, w, g):
        b1, b2 = self.betas
        if self.weight_decay:
            g = g + self.weight_decay * w
        m, v = self.m[i], self.v[i]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        step = self.lr / (1 - b1 ** self._t)
        denom = np.sqrt(v / (1 - b2 ** self._t))
        denom += self.eps
        w -= (np.asarray(step, w.dtype) * m / denom).astype(w.dtype, copy=False)

    def hyper(self):
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay}

    def _buffers(self):
        return {p.name: [m, v] for p, m, v in zip(self.params, self.m, self.v)}

    def _set_buffers(self, buffers):
        self.m = [np.array(buffers[p.name][0]) for p in self.params]
        self.v = [np.array(buffers[p.name][1]) for p in self.params]


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
