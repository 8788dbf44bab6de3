"""Batch normalisation of conv maps: BatchNorm2d.

Per channel c, over the batch and every position (N, H, W):

    training:    mean, var = the batch's (var biased, divided by n = N*H*W)
    evaluation:  mean, var = running_mean, running_var
    x_hat = (x - mean) / sqrt(var + eps);   y = gamma * x_hat + beta

Each training pass also moves the running statistics towards the batch's:
running = (1 - momentum) * running + momentum * batch, with the variance
unbiased (n / (n - 1)) as PyTorch does, so a model compares with its
BatchNorm2d. gamma and beta are the trainable parameters (``params``); the
running statistics are buffers (``buffers``): saved with the model, never
touched by an optimizer.

For the views the layer keeps, after each pass, the statistics it used
(``used_mean``, ``used_var``, shape (C,)) and the normalised map
(``normalized``, x_hat, the input's shape).
"""

from __future__ import annotations

import numpy as np

from .layers import DEFAULT_DTYPE, Layer

_AXES = (0, 2, 3)


def _per_channel(v):
    return v.reshape(1, -1, 1, 1)


class BatchNorm2d(Layer):
    kind = "bn"
    training = True

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=DEFAULT_DTYPE):
        super().__init__()
        self.num_features = int(num_features)
        if self.num_features < 1:
            raise ValueError(f"num_features must be at least 1, got {num_features}")
        self.eps, self.momentum = float(eps), float(momentum)
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        c = self.num_features
        self.params["gamma"] = np.ones(c, dtype)
        self.params["beta"] = np.zeros(c, dtype)
        self.buffers = {"running_mean": np.zeros(c, dtype), "running_var": np.ones(c, dtype)}
        self.used_mean = self.used_var = self.normalized = None
        self._cache = None

    # --- passes --------------------------------------------------------------
    def _check(self, x):
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"{self.name or 'BatchNorm2d'} expects (N, {self.num_features}, H, W) "
                             f"input, got {tuple(x.shape)}")

    def forward(self, x):
        self._check(x)
        self.last_input = x
        if self.training:
            n = x.shape[0] * x.shape[2] * x.shape[3]
            if n < 2:
                raise ValueError(f"{self.name or 'BatchNorm2d'}: batch statistics need more than "
                                 f"one value per channel, got input {tuple(x.shape)}")
            mean = x.mean(axis=_AXES)
            var = x.var(axis=_AXES)
            self._update_running(mean, var * (n / (n - 1)))
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        mean, var = mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)
        inv_std = 1.0 / np.sqrt(var + np.asarray(self.eps, x.dtype))
        x_hat = (x - _per_channel(mean)) * _per_channel(inv_std)
        out = x_hat * _per_channel(self.params["gamma"].astype(x.dtype, copy=False)) \
            + _per_channel(self.params["beta"].astype(x.dtype, copy=False))
        self.used_mean, self.used_var, self.normalized = mean, var, x_hat
        self._cache = (x_hat, inv_std, self.training)
        self.last_output = out
        return out

    def _update_running(self, mean, var_unbiased):
        # a batch that overflowed (a diverging run) must not poison the
        # statistics the trainer's restored weights will be evaluated with
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var_unbiased))):
            return
        m = self.momentum
        for key, batch in (("running_mean", mean), ("running_var", var_unbiased)):
            r = self.buffers[key]
            r *= np.asarray(1 - m, r.dtype)
            r += np.asarray(m, r.dtype) * batch.astype(r.dtype, copy=False)

    def infer(self, x, overwrite=False):
        """Evaluation, whatever the mode: the running statistics."""
        self._check(x)
        scale = self.params["gamma"] / np.sqrt(self.buffers["running_var"] + self.eps)
        shift = self.params["beta"] - self.buffers["running_mean"] * scale
        return x * _per_channel(scale.astype(x.dtype)) + _per_channel(shift.astype(x.dtype))

    def backward(self, grad_out, need_input_grad=True):
        x_hat, inv_std, batch_stats = self._cache
        g = grad_out
        self.grads["gamma"] = (g * x_hat).sum(axis=_AXES).astype(self.params["gamma"].dtype)
        self.grads["beta"] = g.sum(axis=_AXES).astype(self.params["beta"].dtype)
        if not need_input_grad:
            return None
        gamma = _per_channel(self.params["gamma"].astype(g.dtype, copy=False))
        if not batch_stats:        # fixed statistics: an affine map per channel
            return g * (gamma * _per_channel(inv_std))
        # the mean and the variance depend on every value of the channel:
        # dx = gamma / std * (g - mean(g) - x_hat * mean(g * x_hat))
        n = g.shape[0] * g.shape[2] * g.shape[3]
        mean_g = _per_channel(self.grads["beta"].astype(g.dtype) / n)
        mean_gx = _per_channel(self.grads["gamma"].astype(g.dtype) / n)
        return (g - mean_g - x_hat * mean_gx) * (gamma * _per_channel(inv_std))

    # --- description -----------------------------------------------------------
    def output_shape(self, input_shape):
        if len(input_shape) != 4 or input_shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d({self.num_features}) cannot take input of shape "
                             f"{tuple(input_shape)}: it needs (N, {self.num_features}, H, W)")
        return tuple(input_shape)

    def macs(self, input_shape) -> int:
        """One multiply-add per value: in evaluation the layer is y = a*x + b per channel."""
        n, c, h, w = input_shape
        return n * c * h * w

    def astype(self, dtype):
        super().astype(dtype)
        self.buffers = {k: v.astype(dtype) for k, v in self.buffers.items()}
        return self

    def config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum}
