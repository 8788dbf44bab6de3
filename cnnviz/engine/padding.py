"""ZeroPad2D: a border of zeros around each map, as a layer of its own (the
original LeNet-5 takes 32x32 images: MNIST's 28x28 digits padded by 2)."""

from __future__ import annotations

import numpy as np

from . import functional as F
from .layers import Layer


class ZeroPad2D(Layer):
    kind = "pad"

    def __init__(self, padding):
        super().__init__()
        self.padding = F.pair(padding, "padding")
        if min(self.padding) < 0:
            raise ValueError(f"padding cannot be negative, got {self.padding}")

    def forward(self, x):
        self.last_input = x
        self.last_output = self.infer(x)
        return self.last_output

    def infer(self, x, overwrite=False):
        if x.ndim != 4:
            raise ValueError(f"{self.name or 'ZeroPad2D'} expects (N, C, H, W) input, "
                             f"got {tuple(x.shape)}")
        ph, pw = self.padding
        return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))

    def backward(self, grad_out, need_input_grad=True):
        ph, pw = self.padding
        h, w = grad_out.shape[2:]
        return np.ascontiguousarray(grad_out[:, :, ph:h - ph, pw:w - pw])

    def output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"ZeroPad2D needs maps (N, C, H, W), got {tuple(input_shape)}")
        n, c, h, w = input_shape
        return (n, c, h + 2 * self.padding[0], w + 2 * self.padding[1])

    def config(self):
        return {"padding": list(self.padding)}
