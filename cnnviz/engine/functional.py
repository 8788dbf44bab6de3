"""Functional CNN ops in pure NumPy: forward and backward, NCHW.

Every op comes as a pair, CS231n style::

    out, cache = conv2d_forward(x, w, b, stride, padding, dilation)
    dx, dw, db = conv2d_backward(dout, cache)

plus a cache-free convenience form (``conv2d(x, w, ...) -> out``).

Layout note. Tensors are logically NCHW, but the ops keep their buffers
"batch-innermost" (C, H, W, N) and return NCHW *views* of them
(``buf.transpose(3, 0, 1, 2)``). With the batch innermost, every receptive
field row ``x[c, y, x0:x0+W_out, :]`` is one contiguous run, so im2col and
col2im are plain block copies; one GEMM over the whole batch
(``W (C_out, K) @ cols (K, H_out*W_out*N)``) yields the next layer's buffer
directly; and pooling windows are long contiguous runs. No layer pays a
transpose. Every op accepts any strides (a C-contiguous NCHW input just
takes a slower copy); call ``np.ascontiguousarray`` when a C-contiguous
NCHW array is needed, e.g. ``out[0, c]`` for display.

Spatial arguments (kernel_size, stride, padding, dilation) take an int or an
(h, w) pair. Output size per axis:
``H_out = (H + 2*pad - dil*(kh - 1) - 1) // stride + 1``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = [
    "pair", "conv_output_size", "conv2d_output_shape", "pool2d_output_shape",
    "im2col", "col2im", "batch_innermost", "from_batch_innermost", "Scratch",
    "conv2d", "conv2d_forward", "conv2d_backward",
    "max_pool2d", "max_pool2d_forward", "max_pool2d_backward", "max_pool2d_argmax",
    "avg_pool2d", "avg_pool2d_forward", "avg_pool2d_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward",
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "linear", "linear_backward",
    "softmax", "log_softmax", "softmax_cross_entropy",
    "dilate", "rot180", "conv2d_input_grad_by_rotation",
]


# --------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------

def pair(value, name: str = "value") -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(2, 1) -> (2, 1)``. Rejects anything else."""
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int \
            and type(value[1]) is int:
        return value            # already a pair (every layer's own): the hot path
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        a, b = value
        return _as_int(a, name), _as_int(b, name)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}") from None


def _as_int(v, name):
    if isinstance(v, (int, np.integer)):
        return int(v)
    raise ValueError(f"{name} must be an int or an (h, w) pair, got {v!r}")


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output length along one axis (may be <= 0 for impossible settings)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _check_spatial(kernel, stride, padding, dilation):
    if min(kernel) < 1:
        raise ValueError(f"kernel size must be at least 1, got {kernel}")
    if min(stride) < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    if min(padding) < 0:
        raise ValueError(f"padding cannot be negative, got {padding}")
    if min(dilation) < 1:
        raise ValueError(f"dilation must be at least 1, got {dilation}")


def conv2d_output_shape(x_shape, w_shape, stride=1, padding=0, dilation=1):
    """(N, C_out, H_out, W_out) of ``conv2d``; ValueError with a clear reason
    when the channels disagree or no output pixel remains."""
    _check_4d(x_shape, "input", "(N, C, H, W)")
    _check_4d(w_shape, "weights", "(C_out, C_in, kh, kw)")
    n, c, h, w = x_shape
    c_out, c_in, kh, kw = w_shape
    if c != c_in:
        raise ValueError(f"input has {c} channels but the kernel expects {c_in} "
                         f"(weights {tuple(w_shape)} are (C_out, C_in, kh, kw))")
    s, p, d = pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation")
    _check_spatial((kh, kw), s, p, d)
    ho = conv_output_size(h, kh, s[0], p[0], d[0])
    wo = conv_output_size(w, kw, s[1], p[1], d[1])
    if ho < 1 or wo < 1:
        eh, ew = d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1
        raise ValueError(
            f"no output pixels: a {kh}x{kw} kernel with dilation {d} spans "
            f"{eh}x{ew}, larger than the {h}x{w} input padded by {p} "
            f"({h + 2 * p[0]}x{w + 2 * p[1]})")
    return n, c_out, ho, wo


def _check_4d(shape, what, layout):
    if len(shape) != 4:
        raise ValueError(f"{what} must be 4-D {layout}, got shape {tuple(shape)}"
                         + (" (add the batch axis: x[None])" if len(shape) == 3 and what == "input" else ""))


def pool2d_output_shape(x_shape, kernel_size, stride=None):
    _check_4d(x_shape, "input", "(N, C, H, W)")
    n, c, h, w = x_shape
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    _check_spatial(k, s, (0, 0), (1, 1))
    ho, wo = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"no output pixels: a {k[0]}x{k[1]} pooling window "
                         f"does not fit in the {h}x{w} input")
    return n, c, ho, wo


# --------------------------------------------------------------------------
# im2col / col2im
# --------------------------------------------------------------------------

def batch_innermost(t):
    """The (C, H, W, N) view of an NCHW tensor (free for the engine's own
    outputs, which are stored that way)."""
    return t.transpose(1, 2, 3, 0)


def from_batch_innermost(buf):
    """The NCHW view of a (C, H, W, N) buffer."""
    return buf.transpose(3, 0, 1, 2)


def _pad(x, ph, pw):
    """Zero-pad H and W into a fresh batch-innermost buffer; NCHW view."""
    n, c, h, w = x.shape
    xp = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
    xp[:, ph:ph + h, pw:pw + w, :] = batch_innermost(x)
    return from_batch_innermost(xp)


def _windows(xp, kh, kw, ho, wo, s, d):
    """Strided, copy-free view (C, kh, kw, H_out, W_out, N) of the padded
    NCHW input ``xp``: element [c, i, j, y, x, n] is the input that kernel
    cell (i, j) meets at output pixel (y, x) of sample n."""
    sn, sc, sh, sw = xp.strides
    n, c = xp.shape[:2]
    return as_strided(xp, shape=(c, kh, kw, ho, wo, n),
                      strides=(sc, d[0] * sh, d[1] * sw, s[0] * sh, s[1] * sw, sn),
                      writeable=False)


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Unfold every receptive field of ``x`` into a column.

    x: (N, C, H, W). Returns cols of shape (C*kh*kw, H_out*W_out*N): row
    ``(c, i, j)`` matches ``w.reshape(C_out, -1)``'s columns; column
    ``(y, x, n)`` is output pixel (y, x) of sample n (batch innermost), so
    ``w2d @ cols`` is the convolution of the whole batch.

    >>> x = np.arange(9.).reshape(1, 1, 3, 3)
    >>> im2col(x, 2)          # four 2x2 windows, one per column
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    k, s = pair(kernel_size, "kernel_size"), pair(stride, "stride")
    p, d = pair(padding, "padding"), pair(dilation, "dilation")
    n, c = x.shape[:2]
    _, _, ho, wo = conv2d_output_shape(x.shape, (1, c) + k, s, p, d)
    xp = _pad(x, *p) if (p[0] or p[1]) else x
    view = _windows(xp, k[0], k[1], ho, wo, s, d)
    return view.reshape(c * k[0] * k[1], ho * wo * n)  # the one copy


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Adjoint of ``im2col``: scatter-add every column back to the input
    positions it came from. cols: (C*kh*kw, H_out*W_out*N) -> (N, C, H, W).

    Loops over the kh*kw kernel offsets only; each step adds one whole
    (C, H_out, W_out, N) block, so overlapping windows accumulate."""
    k, s = pair(kernel_size, "kernel_size"), pair(stride, "stride")
    p, d = pair(padding, "padding"), pair(dilation, "dilation")
    n, c, h, w = x_shape
    _, _, ho, wo = conv2d_output_shape(x_shape, (1, c) + k, s, p, d)
    blocks = cols.reshape(c, k[0], k[1], ho, wo, n)
    dxp = np.zeros((c, h + 2 * p[0], w + 2 * p[1], n), dtype=cols.dtype)
    ys, xs = s[0] * (ho - 1) + 1, s[1] * (wo - 1) + 1
    for i in range(k[0]):
        for j in range(k[1]):
            y0, x0 = i * d[0], j * d[1]
            dxp[:, y0:y0 + ys:s[0], x0:x0 + xs:s[1], :] += blocks[:, i, j]
    return from_batch_innermost(dxp[:, p[0]:p[0] + h, p[1]:p[1] + w, :])


# --------------------------------------------------------------------------
# convolution (cross-correlation, as in every CNN library)
# --------------------------------------------------------------------------

class Scratch:
    """Work buffers that one layer reuses from call to call: the padded
    input and the im2col matrix of its forward pass, the partial products of
    its input gradient. A training step then allocates (and page-faults in)
    only what it returns. Only internal buffers live here, never an array an
    op returns; one Scratch per layer, used by one thread at a time. It
    pickles (and deep-copies) empty."""

    def __init__(self):
        self._buffers = {}

    def get(self, name, shape, dtype, zero=False):
        """A buffer of this shape and dtype: the same one as the last call
        with the same name and shape, else a new one (zero-filled if asked;
        callers that keep a zero border rely on it staying so)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = (np.zeros if zero else np.empty)(shape, dtype)
            self._buffers[name] = buf
        return buf

    def __getstate__(self):
        return {}

    def __setstate__(self, state):
        self._buffers = {}


def _buffer(scratch, name, shape, dtype, zero=False):
    if scratch is None:
        return (np.zeros if zero else np.empty)(shape, dtype)
    return scratch.get(name, shape, dtype, zero)


# im2col bytes made and multiplied at a time: about half a core's L2 cache
# here, so each band is still in cache when its GEMM reads it
_BAND_BYTES = 1 << 19


def _padded_input(x, p, scratch):
    """x zero-padded in H and W (NCHW view of a batch-innermost buffer; the
    scratch's, whose border is zeroed once when made), or x itself."""
    if not (p[0] or p[1]):
        return x
    n, c, h, w = x.shape
    xp = _buffer(scratch, "padded", (c, h + 2 * p[0], w + 2 * p[1], n), x.dtype, zero=True)
    xp[:, p[0]:p[0] + h, p[1]:p[1] + w, :] = batch_innermost(x)
    return from_batch_innermost(xp)


def _bands(windows):
    """Output-row bands [y0, y1) of a conv whose im2col rows fit _BAND_BYTES."""
    c, kh, kw, ho, wo, n = windows.shape
    per_row = c * kh * kw * wo * n * windows.itemsize
    rows = max(1, _BAND_BYTES // per_row)
    return [(y0, min(ho, y0 + rows)) for y0 in range(0, ho, rows)]


def _band_cols(windows, y0, y1, scratch):
    """im2col of output rows y0..y1: (C*kh*kw, (y1-y0)*W_out*N), in a
    scratch buffer (one per band height)."""
    c, kh, kw, _, wo, n = windows.shape
    cols = scratch.get(f"cols{y1 - y0}", (c * kh * kw, (y1 - y0) * wo * n), windows.dtype)
    cols.reshape(c, kh, kw, y1 - y0, wo, n)[...] = windows[:, :, :, y0:y1]
    return cols


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, scratch=None):
    """x (N, C_in, H, W), w (C_out, C_in, kh, kw), b (C_out,) or None.

    out[n, o, y, x] = sum_{c,i,j} x_pad[n, c, y*s + i*d, x*s + j*d] * w[o, c, i, j] + b[o]

    im2col and GEMM run band by band of output rows (_BAND_BYTES of im2col
    at a time, in cache), never the whole (C*kh*kw, H_out*W_out*N) matrix
    (5 MB for LeNet's conv1 at batch 64, 78 MB at 1,000); the backward pass
    makes the bands again from the (padded) input the cache keeps.

    Returns (out (N, C_out, H_out, W_out), cache). ``scratch`` (a Scratch)
    lends the work buffers; the cache then refers to them, so it is good
    until the next call with the same scratch (a layer keeps one cache)."""
    s, p, d = pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation")
    n, c_out, ho, wo = conv2d_output_shape(x.shape, w.shape, s, p, d)
    kh, kw = w.shape[2:]
    windows = _windows(_padded_input(x, p, scratch), kh, kw, ho, wo, s, d)
    band_scratch = Scratch() if scratch is None else scratch
    w2d = w.reshape(c_out, -1)
    out2d = np.empty((c_out, ho * wo * n), np.result_type(w.dtype, x.dtype))
    for y0, y1 in _bands(windows):
        np.matmul(w2d, _band_cols(windows, y0, y1, band_scratch),
                  out=out2d[:, y0 * wo * n:y1 * wo * n])
    if b is not None:
        out2d += b.reshape(c_out, 1)
    out = from_batch_innermost(out2d.reshape(c_out, ho, wo, n))
    cache = {"x_shape": x.shape, "w": w, "windows": windows, "stride": s,
             "padding": p, "dilation": d, "has_bias": b is not None, "scratch": scratch}
    return out, cache


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, scratch=None):
    """Convolution output only; see ``conv2d_forward``."""
    return conv2d_forward(x, w, b, stride, padding, dilation, scratch)[0]


def _channel_rows(t):
    """(N, C, H, W) -> (C, H*W*N); free for a batch-innermost buffer."""
    n, c, h, w = t.shape
    return batch_innermost(t).reshape(c, h * w * n)


def conv2d_backward(grad_out, cache, need_input_grad=True):
    """grad_out: dL/d(out), (N, C_out, H_out, W_out).

    Returns (dx, dw, db): dx (N, C_in, H, W) or None when not needed (the
    first layer of a network needs no input gradient), dw like w, db
    (C_out,) or None when the conv has no bias."""
    w, windows, scratch = cache["w"], cache["windows"], cache.get("scratch")
    g2d = _channel_rows(grad_out)                   # (C_out, H_out*W_out*N)
    band_scratch = Scratch() if scratch is None else scratch
    ho, wo, n = windows.shape[3:]
    dw = np.zeros((w.shape[0], windows.shape[0] * w.shape[2] * w.shape[3]),
                  np.result_type(g2d.dtype, windows.dtype))
    for y0, y1 in _bands(windows):                  # im2col band by band again
        dw += g2d[:, y0 * wo * n:y1 * wo * n] @ _band_cols(windows, y0, y1, band_scratch).T
    dw = dw.reshape(w.shape)
    db = g2d.sum(axis=1) if cache["has_bias"] else None
    dx = None
    if need_input_grad:
        dx = _conv_input_grad(g2d, w, cache["x_shape"], grad_out.shape[2:], cache["stride"],
                              cache["padding"], cache["dilation"], scratch)
    return dx, dw, db


def _conv_input_grad(g2d, w, x_shape, out_hw, s, p, d, scratch):
    """col2im(W^T @ g2d) without the whole (C_in*kh*kw, H_out*W_out*N)
    matrix: one GEMM per kernel column j gives the (C_in*kh, ...) block of
    that column's offsets; its kh rows are summed into a column-shifted
    image first (adds of whole rows of W_out*N: fast), which is then added
    to the input once (an add over windows of W_out*N values, several times
    slower per value in NumPy): kw such adds instead of kh*kw."""
    n, c, h, wd = x_shape
    c_out, _, kh, kw = w.shape
    ho, wo = out_hw
    hp, wp = h + 2 * p[0], wd + 2 * p[1]
    dtype = np.result_type(w.dtype, g2d.dtype)
    w_cols = w.transpose(3, 1, 2, 0).reshape(kw, c * kh, c_out)   # [j] rows (c, i)
    dxp = np.zeros((c, hp, wp, n), dtype=dtype)
    part = _buffer(scratch, "dcols", (c * kh, g2d.shape[1]), dtype)
    blocks = part.reshape(c, kh, ho, wo * n)
    shifted = _buffer(scratch, "dcols_rows", (c, hp, wo * n), dtype)
    ys, xs = s[0] * (ho - 1) + 1, s[1] * (wo - 1) + 1
    for j in range(kw):
        np.matmul(w_cols[j], g2d, out=part)
        shifted.fill(0)
        for i in range(kh):
            y0 = i * d[0]
            shifted[:, y0:y0 + ys:s[0]] += blocks[:, i]
        x0 = j * d[1]
        dxp[:, :, x0:x0 + xs:s[1], :] += shifted.reshape(c, hp, wo, n)
    return from_batch_innermost(dxp[:, p[0]:p[0] + h, p[1]:p[1] + wd, :])


# --- the classroom form of the input gradient (used by the Layer Stepper and
# --- as an independent check of conv2d_backward in the tests)

def dilate(t, stride):
    """Insert (s-1) zeros between neighbouring entries of the last two axes:
    the stride-s output's gradient placed on the stride-1 grid."""
    s = pair(stride, "stride")
    *lead, h, w = t.shape
    out = np.zeros((*lead, (h - 1) * s[0] + 1, (w - 1) * s[1] + 1), dtype=t.dtype)
    out[..., ::s[0], ::s[1]] = t
    return out


def rot180(w):
    """Rotate kernels by 180 degrees in their last two axes."""
    return w[..., ::-1, ::-1]


def conv2d_input_grad_by_rotation(grad_out, w, x_shape, stride=1, padding=0, dilation=1):
    """dL/dx the way the notes derive it: dilate δ by the stride, pad it by
    the kernel's extent minus one, correlate with the 180°-rotated kernel
    (channels swapped: weights (C_in, C_out, kh, kw)), crop the forward
    padding. Equal to ``conv2d_backward``'s dx."""
    s, p, d = pair(stride, "stride"), pair(padding, "padding"), pair(dilation, "dilation")
    n, c, h, wd = x_shape
    kh, kw = w.shape[2:]
    eh, ew = d[0] * (kh - 1), d[1] * (kw - 1)                     # extent - 1
    g = dilate(np.asarray(grad_out), s)
    # rows/cols the forward pass never reached (floor division) get zero grad
    hp, wp = h + 2 * p[0], wd + 2 * p[1]
    g = np.pad(g, ((0, 0), (0, 0), (eh, eh + hp - eh - g.shape[2]),
                   (ew, ew + wp - ew - g.shape[3])))
    full = conv2d(g, rot180(w).transpose(1, 0, 2, 3), None, 1, 0, d)
    return np.ascontiguousarray(full[:, :, p[0]:p[0] + h, p[1]:p[1] + wd])


# --------------------------------------------------------------------------
# pooling: loops over the window offsets only, vectorized over everything else
# --------------------------------------------------------------------------

def _pool_geometry(x, kernel_size, stride):
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    _, _, ho, wo = pool2d_output_shape(x.shape, k, s)
    return k, s, ho, wo


def _cell_rows_cols(i, j, s, ho, wo):
    """(rows, cols) slices of the input entries that window cell (i, j)
    covers, one per output pixel."""
    return (slice(i, i + s[0] * (ho - 1) + 1, s[0]),
            slice(j, j + s[1] * (wo - 1) + 1, s[1]))


def _pool_slices(i, j, s, ho, wo):
    """Index of window cell (i, j)'s entries in an (N, C, H, W) array."""
    return (slice(None), slice(None), *_cell_rows_cols(i, j, s, ho, wo))


def _pool_slices_batch_innermost(i, j, s, ho, wo):
    """The same in a batch-innermost (C, H, W, N) array."""
    return (slice(None), *_cell_rows_cols(i, j, s, ho, wo), slice(None))


def _max_over_windows(x, k, s, ho, wo, with_argmax):
    """Max over each window and, if asked, the winner's flat index i*kw + j
    inside it (the first maximum on ties, as PyTorch): uint8, int32 for
    windows over 256 cells. Runs on the batch-innermost buffer, where every
    window cell's slice is long contiguous runs."""
    x = batch_innermost(x)
    cells = [(i, j) for i in range(k[0]) for j in range(k[1])]

    def cell(i, j):
        return x[_pool_slices_batch_innermost(i, j, s, ho, wo)]

    best = cell(0, 0).copy()
    if not with_argmax:
        for i, j in cells[1:]:
            np.maximum(best, cell(i, j), out=best)
        return from_batch_innermost(best), None
    index_type = np.uint8 if len(cells) <= 256 else np.int32
    argmax = np.zeros(best.shape, dtype=index_type)
    better = np.empty(best.shape, dtype=bool)
    candidate_index = np.empty_like(argmax)
    for n, (i, j) in enumerate(cells[1:], start=1):
        cand = cell(i, j)
        np.greater(cand, best, out=better)
        # indices only grow during the scan, so "the newest strictly
        # better one wins" is a maximum: branch-free, ~10x faster than a
        # masked copy
        np.multiply(better.view(np.uint8), index_type(n), out=candidate_index)
        np.maximum(argmax, candidate_index, out=argmax)
        np.maximum(best, cand, out=best)
    return from_batch_innermost(best), from_batch_innermost(argmax)


def _max_of(cells):
    """Elementwise max of two or more same-shaped arrays, in a new array."""
    best = np.maximum(cells[0], cells[1])
    for cand in cells[2:]:
        np.maximum(best, cand, out=best)
    return best


def max_pool2d_forward(x, kernel_size, stride=None):
    """Max over each window (stride defaults to the window size).

    Returns (out, cache); the cache holds the winners' positions for the
    backward pass (``max_pool2d_argmax(cache)``)."""
    k, s, ho, wo = _pool_geometry(x, kernel_size, stride)
    out, argmax = _max_over_windows(x, k, s, ho, wo, with_argmax=True)
    return out, {"x_shape": x.shape, "kernel_size": k, "stride": s, "argmax": argmax}


def max_pool2d_argmax(cache):
    """(N, C, H_out, W_out) uint8 (int32 for windows over 256 cells): the
    winner's flat index i*kw + j inside its window, the first maximum on
    ties (as PyTorch), which the backward pass routes δ to."""
    return cache["argmax"]


def max_pool2d_backward(grad_out, cache):
    """Route each δ to the position that held its window's maximum."""
    k, s, argmax = cache["kernel_size"], cache["stride"], cache["argmax"]
    n, c, h, w = cache["x_shape"]
    ho, wo = argmax.shape[2:]
    overlapping = s[0] < k[0] or s[1] < k[1]
    # windows that tile the input exactly write every cell: no zero fill
    tiled = s == k and h == ho * k[0] and w == wo * k[1]
    dx = (np.empty if tiled else np.zeros)((c, h, w, n), dtype=grad_out.dtype)
    g, won_index = batch_innermost(grad_out), batch_innermost(argmax)
    for i in range(k[0]):
        for j in range(k[1]):
            target = dx[_pool_slices_batch_innermost(i, j, s, ho, wo)]
            won = won_index == i * k[1] + j
            if overlapping:
                target += g * won
            else:
                np.multiply(g, won, out=target)
    return from_batch_innermost(dx)


def max_pool2d(x, kernel_size, stride=None):
    """Max pooling output only (no winners' positions: inference)."""
    k, s, ho, wo = _pool_geometry(x, kernel_size, stride)
    if s == k:
        # windows that tile the input: the max over each window's columns
        # (runs of N values), then over its rows (whole rows of W_out*N, on
        # a kw-th of the values). The training pass keeps the cell-by-cell
        # scan of _max_over_windows: deriving its winners from two passes
        # cost more in the backward pass than they saved (measured in a step)
        b = batch_innermost(x)[:, :ho * k[0], :wo * k[1], :]
        m = _max_of([b[:, :, j::k[1], :] for j in range(k[1])]) if k[1] > 1 else b
        out = _max_of([m[:, i::k[0]] for i in range(k[0])]) if k[0] > 1 else m
        return from_batch_innermost(out if k[0] > 1 or k[1] > 1 else out.copy())
    return _max_over_windows(x, k, s, ho, wo, with_argmax=False)[0]


def avg_pool2d_forward(x, kernel_size, stride=None):
    """Mean over each window. Returns (out, cache)."""
    k, s, ho, wo = _pool_geometry(x, kernel_size, stride)
    out = x[_pool_slices(0, 0, s, ho, wo)].copy(order="K")
    for i in range(k[0]):
        for j in range(k[1]):
            if i or j:
                out += x[_pool_slices(i, j, s, ho, wo)]
    out *= 1.0 / (k[0] * k[1])
    cache = {"x": x, "kernel_size": k, "stride": s}
    return out, cache


def avg_pool2d_backward(grad_out, cache):
    """Each input position receives δ / (kh*kw) from every window holding it."""
    k, s = cache["kernel_size"], cache["stride"]
    dx = np.zeros_like(cache["x"], dtype=grad_out.dtype)
    share = grad_out * (1.0 / (k[0] * k[1]))
    ho, wo = grad_out.shape[2:]
    for i in range(k[0]):
        for j in range(k[1]):
            dx[_pool_slices(i, j, s, ho, wo)] += share
    return dx


def avg_pool2d(x, kernel_size, stride=None):
    return avg_pool2d_forward(x, kernel_size, stride)[0]


# --------------------------------------------------------------------------
# activations (backward takes what forward saw: the input or the output)
# --------------------------------------------------------------------------

def relu(x):
    return np.maximum(x, 0)


def relu_backward(grad_out, x):
    return grad_out * (x > 0)


def leaky_relu(x, negative_slope=0.01):
    return np.where(x > 0, x, x * negative_slope)


def leaky_relu_backward(grad_out, x, negative_slope=0.01):
    return np.where(x > 0, grad_out, grad_out * negative_slope)


def sigmoid(x):
    """1 / (1 + e^-x) without overflow: exp is only taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(grad_out, out):
    return grad_out * out * (1 - out)


def tanh(x):
    return np.tanh(x)


def tanh_backward(grad_out, out):
    return grad_out * (1 - out * out)


# --------------------------------------------------------------------------
# fully connected, softmax, loss
# --------------------------------------------------------------------------

def linear(x, w, b=None):
    """x (N, in), w (out, in) as in PyTorch, b (out,). Returns (N, out)."""
    y = x @ w.T
    if b is not None:
        y += b
    return y


def linear_backward(grad_out, x, w, need_input_grad=True):
    """Returns (dx or None, dw, db)."""
    dx = grad_out @ w if need_input_grad else None
    return dx, grad_out.T @ x, grad_out.sum(axis=0)


def log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels.

    logits (N, K), labels (N,) ints. Returns (loss, dlogits) with
    dlogits = (softmax(logits) - onehot(labels)) / N."""
    n = logits.shape[0]
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    logp = log_softmax(logits)
    rows = np.arange(n)
    loss = -logp[rows, labels].mean()
    grad = np.exp(logp)
    grad[rows, labels] -= 1
    grad *= 1.0 / n
    return float(loss), grad
