"""Global average pooling: each map becomes its mean, (N, C, H, W) -> (N, C).

The output is a vector per image (as Keras' GlobalAveragePooling2D), so a
Linear layer can follow directly: it replaces Flatten + a large fully
connected layer, and the network then takes maps of any size.
"""

from __future__ import annotations

import numpy as np

from .layers import Layer


class GlobalAvgPool2D(Layer):
    kind = "gap"

    def forward(self, x):
        self.last_input = x
        self.last_output = self.infer(x)
        return self.last_output

    def infer(self, x, overwrite=False):
        if x.ndim != 4:
            raise ValueError(f"{self.name or 'GlobalAvgPool2D'} expects (N, C, H, W) input, "
                             f"got {tuple(x.shape)}")
        return x.mean(axis=(2, 3))

    def backward(self, grad_out, need_input_grad=True):
        """Each of a map's H*W positions receives δ / (H*W)."""
        n, c, h, w = self.last_input.shape
        share = grad_out * np.asarray(1 / (h * w), grad_out.dtype)
        return np.broadcast_to(share[:, :, None, None], (n, c, h, w)).copy()

    def output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"GlobalAvgPool2D needs maps (N, C, H, W), got {tuple(input_shape)}")
        return (input_shape[0], input_shape[1])
