"""The lab's convolution through OpenCV's ``filter2D``: big photos without im2col.

The engine's ``conv2d`` builds an im2col matrix of C*kh*kw floats per output
pixel (4.6 GB for a bank of 4 RGB 7x7 filters on a 2048x2048 photo). For a
single image the same numbers come from ``filter2D``, which correlates one
plane with one kernel in place, as our conv does:

- zero padding: OpenCV's constant (zero) border, the anchor placed ``padding``
  cells into the kernel (or the plane padded explicitly when the padding is
  wider than that);
- dilation: the kernel with (d-1) zeros between its taps;
- stride: the stride-1 map subsampled at every s-th row and column;
- several input channels: one correlation per channel, summed; the bias comes
  in through ``delta`` of the first one.

The result equals ``cnnviz.engine.functional.conv2d`` within float32 rounding
(tests/gui/test_kernel_lab_filter_conv.py); the engine stays the reference the
arithmetic panel explains. Output maps are computed in parallel threads (cv2
releases the interpreter lock), one map per task.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import cv2
import numpy as np

from cnnviz.engine import functional as F

# filter2D switches to a DFT for kernels of this many cells and more (float32
# with SSE3, OpenCV's dftFilter2D); its rounding error is relative to the whole
# map, not to each sum, so larger kernels are split into tiles below this.
DFT_KERNEL_CELLS = 130
TILE = 11    # 11x11 = 121 cells: the largest square tile filter2D computes directly

CPUS = max(1, os.cpu_count() or 1)   # os.cpu_count() costs 0.1 ms a call
_pool: ThreadPoolExecutor | None = None


def conv_threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=CPUS,
                                   thread_name_prefix="kernel-lab-conv")
    return _pool


_cv_lock = threading.Lock()
_cv_users = 0
_cv_threads_before = 1


@contextmanager
def opencv_single_threaded():
    """OpenCV's own thread pool off while the lab's threads run one call each:
    it would split every call again and spin-wait for the other core (about 40%
    more CPU for the same maps, measured on 2048x2048). Counted, so nested or
    concurrent users restore OpenCV's setting only when the last one leaves."""
    global _cv_users, _cv_threads_before
    with _cv_lock:
        if _cv_users == 0:
            _cv_threads_before = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _cv_users += 1
    try:
        yield
    finally:
        with _cv_lock:
            _cv_users -= 1
            if _cv_users == 0:
                cv2.setNumThreads(_cv_threads_before)


def dilated(kernel: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    """(kh, kw) -> the kernel with (d-1) zeros between neighbouring taps."""
    dh, dw = dilation
    if dh == 1 and dw == 1:
        return kernel
    kh, kw = kernel.shape
    out = np.zeros(((kh - 1) * dh + 1, (kw - 1) * dw + 1), np.float32)
    out[::dh, ::dw] = kernel
    return out


def _tiles(kernel: np.ndarray):
    """(row offset, col offset, tile) pieces of at most TILE x TILE whose shifted
    correlations sum to the kernel's; all-zero pieces (dilation gaps) left out."""
    eh, ew = kernel.shape
    if eh * ew < DFT_KERNEL_CELLS:
        return [(0, 0, kernel)]
    pieces = [(i, j, np.ascontiguousarray(kernel[i:i + TILE, j:j + TILE]))
              for i in range(0, eh, TILE) for j in range(0, ew, TILE)]
    nonzero = [piece for piece in pieces if np.any(piece[2])]
    return nonzero or pieces[:1]      # an all-zero kernel still gives its (bias) map


class _Geometry:
    """Where the stride-1 map's needed rows/cols come from, for one layer."""

    def __init__(self, plane_shape, kernel_shape, stride, padding, out_shape):
        (h, w), (eh, ew), (sh, sw), (ph, pw), (ho, wo) = (plane_shape, kernel_shape, stride,
                                                          padding, out_shape)
        self.stride = (sh, sw)
        self.rows, self.cols = (ho - 1) * sh + 1, (wo - 1) * sw + 1   # stride-1 extent
        # anchored in place: the padding lies inside the kernel and the stride-1
        # rows needed fit in the plane's size (filter2D's output size)
        self.in_place = (eh * ew < DFT_KERNEL_CELLS and ph <= eh - 1 and pw <= ew - 1
                         and self.rows <= h and self.cols <= w)
        self.padding = (ph, pw)

    def plane(self, x: np.ndarray) -> np.ndarray:
        if self.in_place or self.padding == (0, 0):
            return x
        ph, pw = self.padding
        return cv2.copyMakeBorder(x, ph, ph, pw, pw, cv2.BORDER_CONSTANT, value=0)

    def anchor(self) -> tuple[int, int]:
        return (self.padding[1], self.padding[0]) if self.in_place else (0, 0)


def _correlate_sum(planes, kernels, bias: float, geo: _Geometry) -> np.ndarray:
    """sum_k correlate(planes[k], kernels[k]) + bias at the layer's stride:
    (H_out, W_out), possibly a strided view."""
    acc = None
    for plane, kernel in zip(planes, kernels):
        src = geo.plane(plane)
        for i, j, tile in _tiles(kernel):
            delta = bias if acc is None else 0.0
            full = cv2.filter2D(src, cv2.CV_32F, tile, anchor=geo.anchor(), delta=delta,
                                borderType=cv2.BORDER_CONSTANT)
            part = full[i:i + geo.rows, j:j + geo.cols]
            if acc is None:
                acc = part
            else:   # OpenCV's add: 3x NumPy's on these strided views (0.05 against 0.15 ms)
                cv2.add(acc, part, dst=acc)
    sh, sw = geo.stride
    return acc[::sh, ::sw]


def conv2d_maps(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, stride=1, padding=0,
                dilation=1, depthwise: bool = False, after=None) -> np.ndarray:
    """x (1, C, H, W) -> (1, M, H_out, W_out) float32, C-contiguous.

    M = F filters, each summing its C sub-kernels; or, ``depthwise``, F*C maps
    (filter i on channel k is map i*C + k). ValueError as ``conv2d`` for a
    layer with no output pixels or mismatched channels. ``after(m, map)``, if
    given, runs in the thread that computed map m, right after it (the lab's
    activation and pooling of that map, while it is in cache)."""
    s, p, d = F.pair(stride, "stride"), F.pair(padding, "padding"), F.pair(dilation, "dilation")
    n, c, h, w = x.shape
    if n != 1:
        raise ValueError(f"conv2d_maps takes one image (N = 1), got N = {n}")
    f = weights.shape[0]
    _, _, ho, wo = F.conv2d_output_shape(x.shape, weights.shape, s, p, d)
    planes = [np.ascontiguousarray(x[0, k], dtype=np.float32) for k in range(c)]
    kernels = [[dilated(np.asarray(weights[i, k], np.float32), d) for k in range(c)]
               for i in range(f)]
    geo = _Geometry((h, w), kernels[0][0].shape, s, p, (ho, wo))
    bias = np.asarray(bias, np.float32)
    if depthwise:
        jobs = [([planes[k]], [kernels[i][k]], float(bias[i])) for i in range(f) for k in range(c)]
    else:
        jobs = [(planes, kernels[i], float(bias[i])) for i in range(f)]
    out = np.empty((1, len(jobs), ho, wo), np.float32)

    def run(m: int) -> None:
        out[0, m] = _correlate_sum(*jobs[m], geo)
        if after is not None:
            after(m, out[0, m])

    if len(jobs) == 1 or h * w < 256 * 256:   # small: a thread hop costs more than it saves
        for m in range(len(jobs)):
            run(m)
    else:
        with opencv_single_threaded():
            for future in [conv_threads().submit(run, m) for m in range(len(jobs))]:
                future.result()
    return out


def all_finite(maps: np.ndarray) -> bool:
    """No inf or NaN in a float32 array: one summing pass per plane (a sum in
    double precision is finite exactly when every value is; cv2.checkRange took
    8x as long, 10 ms on a 2042x2042 map)."""
    planes = maps.reshape(-1, *maps.shape[-2:]) if maps.ndim >= 2 else maps.reshape(1, -1)
    return all(np.isfinite(cv2.sumElems(np.ascontiguousarray(p))[0]) for p in planes)


def working_bytes(x_shape, weights_shape, stride, padding, dilation, depthwise: bool) -> int:
    """Peak memory of ``conv2d_maps`` beyond its input: the output maps plus, per
    thread, a padded plane, a stride-1 map and its running sum."""
    n, c, h, w = x_shape
    f = weights_shape[0]
    _, _, ho, wo = F.conv2d_output_shape((n, c, h, w), weights_shape, stride, padding, dilation)
    maps = f * c if depthwise else f
    ph, pw = F.pair(padding, "padding")
    plane = 4 * (h + 2 * ph) * (w + 2 * pw)
    threads = min(maps, CPUS)
    return 4 * maps * ho * wo + threads * 3 * plane
