"""A convolution whose output maps each see only some input maps: LeNet-5's
C3 (LeCun et al., 1998, table I), where 16 maps see 3, 4 or all 6 of S2's.

``connections[o]`` lists the input channels output map o sees. The weight
array keeps the full (C_out, C_in, kh, kw) shape (so every view of a Conv2D
works on it); the weights outside the table are held at zero: the forward
pass uses weight * mask, and their gradients are zero, so no optimizer moves
them. Only the table's weights count as parameters (``num_params``), and
only their products as multiply-adds.
"""

from __future__ import annotations


import numpy as np

from . import functional as F
from .layers import DEFAULT_DTYPE, Conv2D

# C3 of LeNet-5: for each of its 16 maps, the S2 maps it sees (table I)
LENET5_C3_CONNECTIONS = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),       # 3 contiguous
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1),   # 4 contiguous
    (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),                               # 4 non-contiguous
    (0, 1, 2, 3, 4, 5),                                                     # all 6
)


def connection_mask(connections, in_channels: int) -> np.ndarray:
    """(C_out, C_in) bool: True where output map o sees input map c.
    ValueError naming the map for an index out of range or repeated."""
    mask = np.zeros((len(connections), in_channels), bool)
    for o, seen in enumerate(connections):
        if len(seen) == 0:
            raise ValueError(f"connections[{o}]: output map {o} sees no input map")
        for c in seen:
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) \
                    or not 0 <= c < in_channels:
                raise ValueError(f"connections[{o}]: {c!r} is not an input map "
                                 f"(0 to {in_channels - 1})")
            if mask[o, c]:
                raise ValueError(f"connections[{o}]: input map {c} appears twice")
            mask[o, c] = True
    return mask


class SparseConv2D(Conv2D):
    kind = "conv"

    def __init__(self, in_channels, out_channels, kernel_size, connections, stride=1, padding=0,
                 dilation=1, bias=True, seed=None, dtype=DEFAULT_DTYPE):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias,
                         seed, dtype)
        if len(connections) != self.out_channels:
            raise ValueError(f"connections: {len(connections)} lists for "
                             f"{self.out_channels} output maps")
        self.connections = tuple(tuple(int(c) for c in seen) for seen in connections)
        self.mask = connection_mask(self.connections, self.in_channels)
        # He's bound for the inputs each map really has, zero elsewhere
        seen = self.mask.sum(axis=1)
        w = self.params["weight"]
        w *= np.sqrt(self.in_channels / seen).astype(w.dtype)[:, None, None, None]
        w *= self._mask4(w.dtype)

    def _mask4(self, dtype):
        return self.mask[:, :, None, None].astype(dtype)

    def _weight(self):
        w = self.params["weight"]
        return w * self._mask4(w.dtype)

    def forward(self, x):
        self.last_input = x
        out, self._cache = F.conv2d_forward(x, self._weight(), self.params.get("bias"),
                                            self.stride, self.padding, self.dilation)
        self.last_output = out
        return out

    def infer(self, x, overwrite=False):
        return F.conv2d(x, self._weight(), self.params.get("bias"),
                        self.stride, self.padding, self.dilation)

    def backward(self, grad_out, need_input_grad=True):
        dx, dw, db = F.conv2d_backward(grad_out, self._cache, need_input_grad)
        self.grads["weight"] = dw * self._mask4(dw.dtype)
        if self.bias:
            self.grads["bias"] = db
        return dx

    @property
    def num_params(self) -> int:
        kh, kw = self.kernel_size
        return int(self.mask.sum()) * kh * kw + (self.out_channels if self.bias else 0)

    def macs(self, input_shape):
        n, c, h, w = self.output_shape(input_shape)
        return n * h * w * int(self.mask.sum()) * self.kernel_size[0] * self.kernel_size[1]

    def config(self):
        return {**super().config(), "connections": [list(c) for c in self.connections]}
