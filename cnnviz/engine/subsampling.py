"""Trainable subsampling, LeNet-5's S2 and S4 (LeCun et al., 1998): each
window's values are summed, multiplied by a trainable coefficient of the
map and shifted by a trainable bias of the map:

    out[n, c, i, j] = weight[c] * sum(window (i, j) of x[n, c]) + bias[c]

so 2 parameters per map (S2: 6 maps, 12 parameters; S4: 16 maps, 32). The
squashing function the paper applies after it is a layer of its own (Tanh).
Initialised as an average pooling (weight 1 / (kh*kw), bias 0).
"""

from __future__ import annotations

import numpy as np

from . import functional as F
from .layers import DEFAULT_DTYPE, Layer


def _per_channel(v, dtype):
    return v.astype(dtype, copy=False).reshape(1, -1, 1, 1)


class Subsampling2D(Layer):
    kind = "subsamp"

    def __init__(self, channels, kernel_size=2, stride=None, dtype=DEFAULT_DTYPE):
        super().__init__()
        self.channels = int(channels)
        if self.channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else F.pair(stride, "stride")
        area = self.kernel_size[0] * self.kernel_size[1]
        self.params["weight"] = np.full(self.channels, 1.0 / area, dtype)
        self.params["bias"] = np.zeros(self.channels, dtype)
        self._cache = None

    @property
    def _area(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1]

    def _check(self, x_shape):
        if len(x_shape) != 4 or x_shape[1] != self.channels:
            raise ValueError(f"Subsampling2D({self.channels}) cannot take input of shape "
                             f"{tuple(x_shape)}: it needs (N, {self.channels}, H, W)")

    def forward(self, x):
        self._check(x.shape)
        self.last_input = x
        mean, pool_cache = F.avg_pool2d_forward(x, self.kernel_size, self.stride)
        self._cache = (mean, pool_cache)
        self.last_output = self._affine(mean)
        return self.last_output

    def infer(self, x, overwrite=False):
        self._check(x.shape)
        return self._affine(F.avg_pool2d(x, self.kernel_size, self.stride))

    def _affine(self, mean):
        # sum = mean * area: fold the area into the coefficient
        scale = _per_channel(self.params["weight"] * self._area, mean.dtype)
        return mean * scale + _per_channel(self.params["bias"], mean.dtype)

    def backward(self, grad_out, need_input_grad=True):
        mean, pool_cache = self._cache
        g = grad_out
        dtype = self.params["weight"].dtype
        self.grads["weight"] = ((g * mean).sum(axis=(0, 2, 3)) * self._area).astype(dtype)
        self.grads["bias"] = g.sum(axis=(0, 2, 3)).astype(dtype)
        if not need_input_grad:
            return None
        return F.avg_pool2d_backward(g * _per_channel(self.params["weight"] * self._area, g.dtype),
                                     pool_cache)

    def output_shape(self, input_shape):
        self._check(input_shape)
        return F.pool2d_output_shape(input_shape, self.kernel_size, self.stride)

    def macs(self, input_shape) -> int:
        """One multiply-add per output value (the window's sum times the map's
        coefficient, plus its bias); the sums themselves are additions."""
        n, c, h, w = self.output_shape(input_shape)
        return n * c * h * w

    def config(self):
        return {"channels": self.channels, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride)}
