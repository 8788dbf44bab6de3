"""The arithmetic behind one output pixel, laid out for the learner to check.

For a conv pixel: the input patch its receptive field covers (padding cells
marked), the kernel, their element-wise products, the sum and the bias. The
total is what the map holds at that pixel (``ConvArithmetic.map_value``, from
filter2D) and what the engine's ``conv2d`` gives on the pixel's receptive
field (``engine_value``, the reference), so the panel (and the tests) can show
the three agree.
For a pool pixel: the window in the pooled map, its winner or its mean.
Pure NumPy, no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnviz.engine import functional as F
from cnnviz.gui.kernel_lab.pipeline import PipelineResult, channel_names, depthwise_indices


@dataclass
class ConvArithmetic:
    map_index: int
    row: int
    col: int
    filter_index: int
    channel_names: list[str]
    input_rows: np.ndarray      # (kh,) input row of each kernel row (may be outside the image)
    input_cols: np.ndarray      # (kw,)
    is_padding: np.ndarray      # (kh, kw) bool: the tap falls on zero padding
    patch: np.ndarray           # (C', kh, kw) float64, 0 on padding
    kernel: np.ndarray          # (C', kh, kw)
    products: np.ndarray        # (C', kh, kw)
    channel_sums: np.ndarray    # (C',)
    bias: float
    total: float                # sum of products + bias
    map_value: float            # the conv map's value at (row, col) (filter2D)
    engine_value: float         # the engine's conv2d on the receptive field, the reference


@dataclass
class PoolArithmetic:
    map_index: int
    row: int
    col: int
    kind: str                   # "max" or "avg"
    window_rows: np.ndarray     # rows of the pooled (activation) map
    window_cols: np.ndarray
    window: np.ndarray          # (ph, pw) values
    winner: tuple[int, int] | None  # (i, j) inside the window for max (the engine's argmax)
    result: float               # max or mean, computed here from the window
    map_value: float            # the engine's pooled value


def explain_conv(result: PipelineResult, map_index: int, row: int, col: int) -> ConvArithmetic:
    config = result.config
    x = result.stages[0].tensor[0].astype(np.float64)         # (C, H, W)
    conv = result.stage("conv").tensor[0]
    c, h, w = x.shape
    if not (0 <= map_index < conv.shape[0] and 0 <= row < conv.shape[1] and 0 <= col < conv.shape[2]):
        raise IndexError(f"no conv pixel ({map_index}, {row}, {col}) in a map of {conv.shape}")
    f, chans = depthwise_indices(config, c, map_index)
    (kh, kw), s, p, d = config.kernel_size, config.stride, config.padding, config.dilation
    rows = row * s[0] - p[0] + np.arange(kh) * d[0]
    cols = col * s[1] - p[1] + np.arange(kw) * d[1]
    inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    patch = np.zeros((len(chans), kh, kw))
    rr, cc = np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)
    patch[:] = np.where(inside, x[chans][:, rr][:, :, cc], 0.0)
    kernel = config.weights[f, chans].astype(np.float64)
    products = patch * kernel
    sums = products.sum(axis=(1, 2))
    bias = float(config.bias[f])
    names = channel_names(c)
    # the engine on this one window (exact float32 inputs): one output pixel
    with np.errstate(over="ignore", invalid="ignore"):   # overflow: the banner says so
        engine = F.conv2d(patch.astype(np.float32)[None], config.weights[f:f + 1, chans],
                          config.bias[f:f + 1])
    return ConvArithmetic(map_index, row, col, f, [names[k] for k in chans], rows, cols,
                          ~inside, patch, kernel, products, sums, bias,
                          float(sums.sum() + bias), float(conv[map_index, row, col]),
                          float(engine[0, 0, 0, 0]))


def explain_pool(result: PipelineResult, map_index: int, row: int, col: int) -> PoolArithmetic:
    config = result.config
    pooled_in = (result.stage("activation") or result.stage("conv")).tensor[0, map_index]
    pool = result.stage("pool").tensor[0, map_index]
    (ph, pw), (sh, sw) = config.pool_size, config.pool_stride
    rows, cols = row * sh + np.arange(ph), col * sw + np.arange(pw)
    window = pooled_in[rows][:, cols].astype(np.float64)
    if config.pool == "max":
        # the engine's winner (first maximum on ties), found on this window alone
        _, cache = F.max_pool2d_forward(window.astype(np.float32)[None, None], (ph, pw))
        flat = int(F.max_pool2d_argmax(cache)[0, 0, 0, 0])
        winner = (flat // pw, flat % pw)
        value = float(window[winner])
    else:
        winner, value = None, float(window.mean())
    return PoolArithmetic(map_index, row, col, config.pool, rows, cols, window, winner,
                          value, float(pool[row, col]))
