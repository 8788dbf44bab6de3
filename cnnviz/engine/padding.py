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
        n, c, h, w = x.shape
        # stored batch-innermost, (C, H, W, N), as the engine's own outputs:
        # the convolution after it unfolds that layout without a copy (3x faster)
        buf = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
        buf[:, ph:ph + h, pw:pw + w, :] = F.batch_innermost(x)
        return F.from_batch_innermost(buf)

    def backward(self, grad_out, need_input_grad=True):
        ph, pw = self.padding
        h, w = grad_out.shape[2:]
        return grad_out[:, :, ph:h - ph, pw:w - pw].copy(order="K")

    def output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"ZeroPad2D needs maps (N, C, H, W), got {tuple(input_shape)}")
        n, c, h, w = input_shape
        return (n, c, h + 2 * self.padding[0], w + 2 * self.padding[1])

    def config(self):
        return {"padding": list(self.padding)}
