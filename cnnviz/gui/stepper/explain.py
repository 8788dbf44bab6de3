"""The backward pass of one layer, taken apart into the steps the notes teach.

Pure NumPy over ``cnnviz.engine.functional``: each step is an engine call
(dilate, rot180, conv2d, im2col, the pooling backward ops) and the last step
of each chain is the engine's own gradient, so the picture and the trace can
be compared cell by cell (the tests do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnviz.engine import AvgPool2D, Conv2D, MaxPool2D
from cnnviz.engine import functional as F


@dataclass
class Step:
    title: str
    data: np.ndarray          # (M, H, W) maps, C-contiguous
    titles: list[str]
    note: str = ""
    signed: bool | None = True     # gradients: diverging, centred at 0; None: by the data


def used_weight(layer) -> np.ndarray:
    """The kernels the layer convolves with: SparseConv2D's masked by its
    connection table (an edited unconnected kernel is not used)."""
    masked = getattr(layer, "_weight", None)
    return masked() if callable(masked) else layer.params["weight"]


def _unconnected(layer) -> np.ndarray | None:
    """SparseConv2D's (out, in) False where a map does not see a channel (its
    kernel gets no gradient); None for a dense conv."""
    mask = getattr(layer, "mask", None)
    return None if mask is None or not callable(getattr(layer, "_weight", None)) else ~mask


def _maps(a) -> np.ndarray:
    a = np.ascontiguousarray(a)
    return a[None] if a.ndim == 2 else a


def conv_backward_steps(layer: Conv2D, grad_out: np.ndarray, out_channel: int,
                        in_channel: int) -> list[Step]:
    """dx[in_channel] and dW[out_channel, in_channel] of sample 0, the classroom way.

    dx: δ of ``out_channel`` dilated by the stride, zero-padded by the kernel's
    extent minus one, correlated with the 180°-rotated kernel, forward padding
    cropped -- this filter's share; the sum over all filters is dx.
    dW: the zero-padded input correlated with the dilated δ."""
    if layer.dilation != (1, 1):
        raise ValueError("the step-by-step view covers dilation 1 only")
    x = layer.last_input
    w = used_weight(layer)
    s, p = layer.stride, layer.padding
    kh, kw = layer.kernel_size
    o, c = out_channel, in_channel
    delta = np.ascontiguousarray(grad_out[0:1, o:o + 1])                  # (1, 1, Ho, Wo)
    dilated = F.dilate(delta, s)
    h, wd = x.shape[2:]
    # pad by (k-1) on each side, plus the rows/cols the forward's floor division skipped
    extra_h = h + 2 * p[0] - kh + 1 - dilated.shape[2]
    extra_w = wd + 2 * p[1] - kw + 1 - dilated.shape[3]
    padded = np.pad(dilated, ((0, 0), (0, 0), (kh - 1, kh - 1 + extra_h),
                              (kw - 1, kw - 1 + extra_w)))
    rotated = np.ascontiguousarray(F.rot180(w[o:o + 1, c:c + 1]))
    full = F.conv2d(padded, rotated)
    share = full[:, :, p[0]:p[0] + h, p[1]:p[1] + wd]
    dx = F.conv2d_input_grad_by_rotation(grad_out[0:1], w, (1,) + x.shape[1:], s, p)
    xin = np.ascontiguousarray(x[0:1, c:c + 1])
    xpad = np.pad(xin, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    dw_oc = F.conv2d(xpad, dilated)[:, :, :kh, :kw]
    cut = _unconnected(layer)
    if cut is not None and cut[o, c]:
        dw_oc = np.zeros_like(dw_oc)
    return [
        Step(f"1. δ of filter {o}", _maps(delta[0, 0]), [f"δ[{o}]"],
             "dL/d(output) of this filter"),
        Step(f"2. dilated by stride {s}", _maps(dilated[0, 0]), ["dilated δ"],
             f"{s[0] - 1} zero(s) inserted between entries" if s != (1, 1)
             else "stride 1: nothing to insert"),
        Step(f"3. zero-padded by {kh - 1}x{kw - 1}", _maps(padded[0, 0]), ["padded δ"],
             "kernel size minus one on each side"),
        Step("4. kernel rotated 180°", _maps(np.stack([w[o, c], rotated[0, 0]])),
             [f"w[{o},{c}]", "rot180"], "the forward kernel, then turned", None),
        Step("5. padded δ correlated with rot180", _maps(share[0, 0]),
             [f"filter {o}'s share of dx[{c}]"],
             f"forward padding {p} cropped" if p != (0, 0) else "one filter's share of dx"),
        Step(f"6. dx[{c}]: the shares of all {w.shape[0]} filters summed" if w.shape[0] > 1
             else f"6. dx[{c}]: the one filter's share", _maps(dx[0, c]),
             [f"dx[{c}]"], "equals the engine's input gradient"),
        Step(f"7. input[{c}] padded by {p}", _maps(xpad[0, 0]), [f"x[{c}]"],
             "what the filter saw", None),
        Step(f"8. dW[{o},{c}]: input correlated with δ", _maps(dw_oc[0, 0]),
             [f"dW[{o},{c}]"], f"map {o} does not see channel {c} (the connection table): "
                               f"no gradient" if cut is not None and cut[o, c] else
             "padded input correlated with the dilated δ; equals the engine's weight gradient"),
    ]


def conv_im2col_steps(layer: Conv2D) -> list[Step]:
    """Forward as one matrix product (sample 0): patch matrix, kernel matrix,
    their product reshaped to the output maps (bias added)."""
    x = np.ascontiguousarray(layer.last_input[0:1])
    w = used_weight(layer)
    cols = F.im2col(x, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    w2d = w.reshape(w.shape[0], -1)
    product = w2d @ cols
    if layer.bias:
        product = product + layer.params["bias"][:, None]
    ho, wo = F.conv2d_output_shape(x.shape, w.shape, layer.stride, layer.padding,
                                   layer.dilation)[2:]
    maps = product.reshape(w.shape[0], ho, wo)
    kh, kw = layer.kernel_size
    return [
        Step(f"patch matrix {cols.shape[0]}x{cols.shape[1]}", _maps(cols),
             ["im2col(x)"], f"one column per output pixel: its {x.shape[1]}x{kh}x{kw} patch",
             None),
        Step(f"kernel matrix {w2d.shape[0]}x{w2d.shape[1]}", _maps(w2d), ["W"],
             "one row per filter", None),
        Step(f"W @ patches + b, reshaped to {w.shape[0]}x{ho}x{wo}", _maps(maps),
             [f"map {i}" for i in range(w.shape[0])], "equals the layer's output", None),
    ]


def conv_backward_im2col_steps(layer: Conv2D, grad_out: np.ndarray) -> list[Step]:
    """The backward pass as matrix products (sample 0), on the forward's patch
    matrix: dW = δ · patchesᵀ, and dx = col2im(Wᵀ · δ)."""
    x = np.ascontiguousarray(layer.last_input[0:1])
    w = used_weight(layer)
    cols = F.im2col(x, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    w2d = w.reshape(w.shape[0], -1)
    delta = np.ascontiguousarray(grad_out[0].reshape(w.shape[0], -1))      # (C_out, L)
    dw2d = delta @ cols.T                                                     # (C_out, K)
    cut = _unconnected(layer)
    if cut is not None:        # the connection table: unconnected kernels get no gradient
        dw2d = (dw2d.reshape(w.shape) * ~cut[:, :, None, None]).reshape(dw2d.shape)
    dcols = w2d.T @ delta                                                     # (K, L)
    dx = F.col2im(dcols, x.shape, layer.kernel_size, layer.stride, layer.padding,
                  layer.dilation)
    co, k = w2d.shape
    return [
        Step(f"δ as a matrix {co}x{delta.shape[1]}", _maps(delta), ["δ"],
             "one row per filter, one column per output pixel (its δ map read row by row)"),
        Step(f"dW = δ · patchesᵀ: {co}x{k}", _maps(dw2d), ["dW"],
             f"reshaped to {'x'.join(map(str, w.shape))}: equals the engine's weight gradient"),
        Step(f"Wᵀ · δ: {k}x{delta.shape[1]}", _maps(dcols), ["Wᵀ·δ"],
             "column j: the gradient of output pixel j's patch"),
        Step(f"dx = col2im(Wᵀ · δ): {'x'.join(map(str, dx.shape[1:]))}", _maps(dx[0]),
             [f"dx[{c}]" for c in range(dx.shape[1])],
             "each patch's gradient added back where the patch came from (overlaps sum); "
             "equals the engine's input gradient"),
    ]


def pool_backward_steps(layer, grad_out: np.ndarray, channel: int) -> list[Step]:
    x = np.ascontiguousarray(layer.last_input[0:1, channel:channel + 1])
    delta = np.ascontiguousarray(grad_out[0:1, channel:channel + 1])
    if isinstance(layer, MaxPool2D):
        out, cache = F.max_pool2d_forward(x, layer.kernel_size, layer.stride)
        mask = F.max_pool2d_backward(np.ones_like(out), cache)
        routed = F.max_pool2d_backward(delta, cache)
        return [
            Step(f"input[{channel}]", _maps(x[0, 0]), ["input"], "what the windows saw", None),
            Step("argmax mask", _maps(mask[0, 0]), ["winners"],
                 "1 where a window's maximum was, from the forward pass", None),
            Step(f"δ[{channel}]", _maps(delta[0, 0]), ["δ"], "gradient at the pooled output"),
            Step("δ routed through the mask = dx", _maps(routed[0, 0]), ["dx"],
                 "each δ goes to its window's winner, zero elsewhere"),
        ]
    if isinstance(layer, AvgPool2D):
        _, cache = F.avg_pool2d_forward(x, layer.kernel_size, layer.stride)
        spread = F.avg_pool2d_backward(delta, cache)
        kh, kw = layer.kernel_size
        return [
            Step(f"δ[{channel}]", _maps(delta[0, 0]), ["δ"], "gradient at the pooled output"),
            Step(f"δ / {kh * kw} spread over each window = dx", _maps(spread[0, 0]), ["dx"],
                 f"every input position receives δ/{kh * kw}"),
        ]
    raise TypeError(f"{type(layer).__name__} is not a pooling layer")


def as_maps(t: np.ndarray, wrap_points: bool = True) -> tuple[np.ndarray, str]:
    """Sample 0 of a tensor as (M, H, W) maps for display, plus how it was laid out.

    (N, C, H, W) -> C maps; (N, F) vectors are wrapped into the most square
    h x w (h <= w, h*w = F) in reading order (a 1xF strip would be a hairline),
    and so are more than 12 maps of 1x1 (unless ``wrap_points`` is False: an
    editable tensor keeps one tile per channel)."""
    a = np.asarray(t)[0]
    if a.ndim == 3 and a.shape[1:] == (1, 1) and a.shape[0] > 12 and wrap_points:
        # many 1x1 maps (the 1998 LeNet-5's C5: 120) read as the vector
        # they are; 120 tiles of one pixel each cost a second to build
        n = a.shape[0]
        h = max(d for d in range(1, int(np.sqrt(n)) + 1) if n % d == 0)
        return (np.ascontiguousarray(a.reshape(1, h, n // h)),
                f"{n} maps of 1x1 wrapped {h}x{n // h}")
    if a.ndim == 3:
        return np.ascontiguousarray(a), ""
    n = a.shape[0]
    if n <= 12:
        return np.ascontiguousarray(a.reshape(1, 1, n)), ""
    h = max(d for d in range(1, int(np.sqrt(n)) + 1) if n % d == 0)
    return np.ascontiguousarray(a.reshape(1, h, n // h)), f"{n} values wrapped {h}x{n // h}"


def kernel_mosaic(w: np.ndarray) -> np.ndarray:
    """(C_out, C_in, kh, kw) -> one (C_out*(kh+1)-1, C_in*(kw+1)-1) image, one
    row of kernels per filter, separated by NaN-free zero gutters."""
    co, ci, kh, kw = w.shape
    out = np.zeros((co * (kh + 1) - 1, ci * (kw + 1) - 1), np.float32)
    for o in range(co):
        for c in range(ci):
            out[o * (kh + 1):o * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = w[o, c]
    return out
