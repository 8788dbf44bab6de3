"""Functional ops against the naive loop references (tests/reference.py) and
against centered finite differences in float64, on seeded configurations."""

import inspect
import warnings

import numpy as np
import pytest

import reference as ref
from gradcheck import assert_grad_close

from cnnviz.engine import functional as F

# --------------------------------------------------------------------------
# configurations
# --------------------------------------------------------------------------

# N, C_in, C_out, H, W, kernel, stride, padding, dilation, bias
FIXED = [
    dict(N=1, C=1, O=1, H=5, W=5, k=3, s=1, p=0, d=1, bias=True),             # plain
    dict(N=2, C=3, O=4, H=7, W=9, k=(3, 2), s=(2, 1), p=0, d=1, bias=True),   # rect, stride (2,1)
    dict(N=3, C=2, O=3, H=8, W=6, k=3, s=2, p=1, d=1, bias=True),             # floor drops a row
    dict(N=2, C=2, O=2, H=6, W=7, k=(2, 3), s=1, p=(1, 2), d=1, bias=False),  # per-axis padding
    dict(N=2, C=3, O=2, H=9, W=8, k=3, s=1, p=0, d=2, bias=True),             # dilation 2
    dict(N=1, C=2, O=3, H=9, W=10, k=(3, 2), s=(1, 2), p=(2, 0), d=(2, 1), bias=True),
    dict(N=2, C=1, O=2, H=5, W=11, k=(1, 4), s=(1, 3), p=(0, 1), d=(1, 2), bias=True),
    dict(N=2, C=4, O=1, H=4, W=4, k=4, s=1, p=0, d=1, bias=True),             # kernel = input
    dict(N=1, C=3, O=5, H=6, W=5, k=1, s=2, p=0, d=1, bias=True),             # 1x1 conv, stride 2
    dict(N=2, C=2, O=3, H=7, W=7, k=5, s=3, p=2, d=1, bias=True),             # odd: 7+4-5=6, /3
    dict(N=1, C=2, O=2, H=10, W=9, k=3, s=(3, 2), p=(1, 1), d=(2, 2), bias=False),
]


def _random_configs(count, seed=1234):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        p = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        cfg = dict(N=int(rng.integers(1, 4)), C=int(rng.integers(1, 4)), O=int(rng.integers(1, 4)),
                   H=int(rng.integers(3, 10)), W=int(rng.integers(3, 10)),
                   k=k, s=s, p=p, d=d, bias=bool(rng.integers(0, 2)))
        if ref.out_size(cfg["H"], k[0], s[0], p[0], d[0]) >= 1 and \
                ref.out_size(cfg["W"], k[1], s[1], p[1], d[1]) >= 1:
            out.append(cfg)
    return out


CONV_CONFIGS = FIXED + _random_configs(19)


def _cid(cfg):
    return "N{N}C{C}O{O}_{H}x{W}_k{k}_s{s}_p{p}_d{d}{b}".format(
        b="" if cfg["bias"] else "_nobias", **cfg).replace(" ", "")


def make_conv(cfg, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    kh, kw = ref.as_pair(cfg["k"])
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(dtype)
    w = rng.standard_normal((cfg["O"], cfg["C"], kh, kw)).astype(dtype)
    b = rng.standard_normal(cfg["O"]).astype(dtype) if cfg["bias"] else None
    return x, w, b


def geom(cfg):
    return dict(stride=cfg["s"], padding=cfg["p"], dilation=cfg["d"])


def test_configurations_cover_what_issue_3_asks():
    pairs = [tuple(ref.as_pair(c[key])) for c in CONV_CONFIGS for key in ("k", "s", "p", "d")]
    assert any(c["H"] != c["W"] for c in CONV_CONFIGS)
    assert any(ref.as_pair(c["k"])[0] != ref.as_pair(c["k"])[1] for c in CONV_CONFIGS)
    assert any(ref.as_pair(c["s"]) == (2, 1) for c in CONV_CONFIGS)
    assert any(ref.as_pair(c["p"])[0] != ref.as_pair(c["p"])[1] for c in CONV_CONFIGS)
    assert any(ref.as_pair(c["d"]) == (2, 2) for c in CONV_CONFIGS)
    assert any(c["N"] > 1 and c["C"] > 1 and c["O"] > 1 for c in CONV_CONFIGS)
    # floor division drops input rows that no window reaches
    assert any((c["H"] + 2 * ref.as_pair(c["p"])[0] - ref.as_pair(c["d"])[0] *
                (ref.as_pair(c["k"])[0] - 1) - 1) % ref.as_pair(c["s"])[0] for c in CONV_CONFIGS)
    assert len(pairs) and len(CONV_CONFIGS) >= 25


# --------------------------------------------------------------------------
# conv2d forward / backward
# --------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=_cid)
def test_conv2d_forward_and_backward_match_naive_reference(cfg):
    x, w, b = make_conv(cfg, seed=1)
    out = F.conv2d(x, w, b, **geom(cfg))
    want = ref.conv2d(x, w, b, **geom(cfg))
    assert out.shape == want.shape
    assert out.shape == F.conv2d_output_shape(x.shape, w.shape, **geom(cfg))
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)

    g = np.random.default_rng(2).standard_normal(out.shape)
    out2, cache = F.conv2d_forward(x, w, b, **geom(cfg))
    dx, dw, db = F.conv2d_backward(g, cache)
    rdx, rdw, rdb = ref.conv2d_backward(g, x, w, **geom(cfg))
    np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, rdw, rtol=1e-12, atol=1e-12)
    if cfg["bias"]:
        np.testing.assert_allclose(db, rdb, rtol=1e-12, atol=1e-12)
    else:
        assert db is None


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=_cid)
def test_conv2d_backward_matches_finite_differences(cfg):
    x, w, b = make_conv(cfg, seed=3)
    out, cache = F.conv2d_forward(x, w, b, **geom(cfg))
    g = np.random.default_rng(4).standard_normal(out.shape)
    dx, dw, db = F.conv2d_backward(g, cache)

    def loss():
        return float(np.sum(F.conv2d(x, w, b, **geom(cfg)) * g))

    assert_grad_close(dx, loss, x, what="dx")
    assert_grad_close(dw, loss, w, what="dw")
    if b is not None:
        assert_grad_close(db, loss, b, what="db")


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=_cid)
def test_input_grad_by_rotation_equals_backward(cfg):
    x, w, b = make_conv(cfg, seed=5)
    out, cache = F.conv2d_forward(x, w, b, **geom(cfg))
    g = np.random.default_rng(6).standard_normal(out.shape)
    dx = F.conv2d_backward(g, cache)[0]
    rot = F.conv2d_input_grad_by_rotation(g, w, x.shape, **geom(cfg))
    assert rot.shape == x.shape
    np.testing.assert_allclose(rot, dx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cfg", CONV_CONFIGS[:12], ids=_cid)
def test_conv2d_float32_in_float32_out_and_close_to_reference(cfg):
    x, w, b = make_conv(cfg, seed=7, dtype=np.float32)
    out, cache = F.conv2d_forward(x, w, b, **geom(cfg))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref.conv2d(x, w, b, **geom(cfg)), rtol=1e-4, atol=1e-4)
    g = np.random.default_rng(8).standard_normal(out.shape).astype(np.float32)
    dx, dw, db = F.conv2d_backward(g, cache)
    assert dx.dtype == dw.dtype == np.float32
    if db is not None:
        assert db.dtype == np.float32
    rdx, rdw, _ = ref.conv2d_backward(g, x, w, **geom(cfg))
    np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, rdw, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", ["fortran", "batch_innermost", "strided_slice", "negative"])
def test_conv2d_does_not_depend_on_memory_layout(layout):
    """The engine keeps batch-innermost buffers; any NCHW view must give the
    same numbers as a C-contiguous array."""
    cfg = FIXED[1]
    x, w, b = make_conv(cfg, seed=9)
    if layout == "fortran":
        xv = np.asfortranarray(x)
    elif layout == "batch_innermost":
        xv = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    elif layout == "strided_slice":
        big = np.zeros((x.shape[0], x.shape[1], 2 * x.shape[2], x.shape[3] + 3))
        big[:, :, ::2, 1:-2] = x
        xv = big[:, :, ::2, 1:-2]
    else:
        xv = x[:, :, ::-1, ::-1].copy()[:, :, ::-1, ::-1]
    np.testing.assert_array_equal(xv, x)
    want = ref.conv2d(x, w, b, **geom(cfg))
    out, cache = F.conv2d_forward(xv, w, b, **geom(cfg))
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(10).standard_normal(out.shape)
    gv = np.asfortranarray(g)
    dx, dw, db = F.conv2d_backward(gv, cache)
    rdx, rdw, rdb = ref.conv2d_backward(g, x, w, **geom(cfg))
    np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, rdw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, rdb, rtol=1e-12, atol=1e-12)


def test_conv2d_output_can_feed_the_next_conv():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 2, 9, 8))
    w1, w2 = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((3, 4, 2, 3))
    y1 = F.conv2d(x, w1, None, 1, 1)
    y2 = F.conv2d(y1, w2, None, (2, 1), (0, 1))
    want = ref.conv2d(ref.conv2d(x, w1, None, 1, 1), w2, None, (2, 1), (0, 1))
    np.testing.assert_allclose(y2, want, rtol=1e-11, atol=1e-11)


# --------------------------------------------------------------------------
# im2col / col2im
# --------------------------------------------------------------------------

def test_im2col_docstring_example():
    x = np.arange(9.).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(F.im2col(x, 2), np.array([[0., 1., 3., 4.],
                                                            [1., 2., 4., 5.],
                                                            [3., 4., 6., 7.],
                                                            [4., 5., 7., 8.]]))
    assert "[4., 5., 7., 8.]" in inspect.getdoc(F.im2col)


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=_cid)
def test_im2col_col2im_are_adjoint(cfg):
    rng = np.random.default_rng(12)
    x, w, _ = make_conv(cfg, seed=13)
    kh, kw = w.shape[2:]
    cols = F.im2col(x, (kh, kw), **geom(cfg))
    n, _, ho, wo = F.conv2d_output_shape(x.shape, w.shape, **geom(cfg))
    assert cols.shape == (cfg["C"] * kh * kw, ho * wo * n)
    c = rng.standard_normal(cols.shape)
    back = F.col2im(c, x.shape, (kh, kw), **geom(cfg))
    assert back.shape == x.shape
    lhs, rhs = float(np.sum(cols * c)), float(np.sum(x * back))
    assert abs(lhs - rhs) <= 1e-10 * (1 + abs(lhs))
    # and im2col's product with the flattened weights is the convolution
    out2d = w.reshape(w.shape[0], -1) @ cols           # columns (y, x, n)
    out = out2d.reshape(w.shape[0], ho, wo, n).transpose(3, 0, 1, 2)
    np.testing.assert_allclose(out, ref.conv2d(x, w, None, **geom(cfg)), rtol=1e-12, atol=1e-12)


def test_dilate_and_rot180():
    t = np.array([[[[1., 2.], [3., 4.]]]])
    np.testing.assert_array_equal(F.dilate(t, 2)[0, 0], [[1, 0, 2], [0, 0, 0], [3, 0, 4]])
    np.testing.assert_array_equal(F.dilate(t, (1, 3))[0, 0], [[1, 0, 0, 2], [3, 0, 0, 4]])
    np.testing.assert_array_equal(F.rot180(t)[0, 0], [[4, 3], [2, 1]])


# --------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------

# N, C, H, W, kernel, stride
POOL_CONFIGS = [
    (2, 3, 4, 4, 2, None),
    (1, 2, 7, 9, 2, None),          # odd: last row / column dropped
    (2, 2, 7, 7, 3, 2),             # overlapping windows
    (1, 3, 9, 8, 3, 2),
    (2, 1, 6, 9, (3, 2), (2, 1)),   # rectangular window, stride (2, 1)
    (1, 2, 8, 7, (2, 3), (1, 2)),
    (2, 2, 8, 8, 2, 3),             # gaps between windows
    (1, 1, 5, 6, (1, 3), None),
    (3, 2, 5, 5, 5, 1),             # window = input
    (1, 2, 10, 6, 4, (3, 2)),
]


def _pid(c):
    return f"N{c[0]}C{c[1]}_{c[2]}x{c[3]}_k{c[4]}_s{c[5]}".replace(" ", "")


def distinct_values(shape, seed):
    """Values at least 0.01 apart (no near-ties), so finite differences with
    eps=1e-6 never move a maximum."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.01 - size * 0.005 +
            rng.uniform(0, 1e-3, size)).reshape(shape)


@pytest.mark.parametrize("cfg", POOL_CONFIGS, ids=_pid)
def test_max_pool_matches_reference_and_finite_differences(cfg):
    n, c, h, w, k, s = cfg
    x = distinct_values((n, c, h, w), seed=20)
    out, cache = F.max_pool2d_forward(x, k, s)
    want, _ = ref.max_pool2d(x, k, s)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(F.max_pool2d(x, k, s), want)
    assert out.shape == F.pool2d_output_shape(x.shape, k, s)
    g = np.random.default_rng(21).standard_normal(out.shape)
    dx = F.max_pool2d_backward(g, cache)
    np.testing.assert_allclose(dx, ref.max_pool2d_backward(g, x, k, s), rtol=0, atol=1e-15)
    assert_grad_close(dx, lambda: float(np.sum(F.max_pool2d(x, k, s) * g)), x, what="max pool dx")


@pytest.mark.parametrize("cfg", POOL_CONFIGS, ids=_pid)
def test_avg_pool_matches_reference_and_finite_differences(cfg):
    n, c, h, w, k, s = cfg
    x = np.random.default_rng(22).standard_normal((n, c, h, w))
    out, cache = F.avg_pool2d_forward(x, k, s)
    np.testing.assert_allclose(out, ref.avg_pool2d(x, k, s), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(F.avg_pool2d(x, k, s), out, rtol=0, atol=0)
    g = np.random.default_rng(23).standard_normal(out.shape)
    dx = F.avg_pool2d_backward(g, cache)
    np.testing.assert_allclose(dx, ref.avg_pool2d_backward(g, x.shape, k, s), rtol=1e-12, atol=1e-14)
    assert_grad_close(dx, lambda: float(np.sum(F.avg_pool2d(x, k, s) * g)), x, what="avg pool dx")


@pytest.mark.parametrize("k,s", [(2, None), (3, 2), ((2, 3), (1, 2)), (3, 1)])
def test_max_pool_ties_first_max_wins_and_one_position_per_window(k, s):
    rng = np.random.default_rng(24)
    x = rng.integers(0, 3, size=(2, 3, 9, 8)).astype(np.float64)   # many ties
    x[0, 0] = 1.0                                                  # all tied
    out, cache = F.max_pool2d_forward(x, k, s)
    want, winners = ref.max_pool2d(x, k, s)
    np.testing.assert_array_equal(out, want)
    g = rng.standard_normal(out.shape)
    dx = F.max_pool2d_backward(g, cache)
    np.testing.assert_allclose(dx, ref.max_pool2d_backward(g, x, k, s), rtol=0, atol=1e-15)
    # window by window: a unit δ lands on exactly one position, the first max
    kh, kw = ref.as_pair(k)
    for idx, (r, q) in list(winners.items())[::7]:
        unit = np.zeros(out.shape)
        unit[idx] = 1.0
        d = F.max_pool2d_backward(unit, cache)
        assert np.count_nonzero(d) == 1 and d[idx[0], idx[1], r, q] == 1.0
    # on the all-tied channel every window's first cell wins
    sh, sw = (kh, kw) if s is None else ref.as_pair(s)
    unit = np.zeros(out.shape)
    unit[0, 0] = 1.0
    d = F.max_pool2d_backward(unit, cache)[0, 0]
    expect = np.zeros_like(d)
    for y in range(out.shape[2]):
        for xx in range(out.shape[3]):
            expect[y * sh, xx * sw] += 1.0
    np.testing.assert_array_equal(d, expect)


# windows that tile the input (stride = kernel): inference (max_pool2d) takes
# a two-pass path, each window's columns then its rows; it must agree with
# the reference and with the training pass's winners
TILED_POOLS = [
    ((3, 2, 8, 6), 2),          # LeNet's 2x2
    ((2, 3, 9, 11), 3),         # 3x3; the last rows and columns dropped
    ((2, 2, 7, 9), (2, 3)),     # rectangular
    ((1, 3, 9, 5), (3, 1)),     # a column of 3
    ((2, 2, 5, 7), (1, 2)),     # a row of 2
    ((2, 1, 3, 4), 1),          # 1x1: a copy
]


def _winner_indices(x, k):
    """The reference's first-max positions as flat i*kw + j indices."""
    kh, kw = ref.as_pair(k)
    out, winners = ref.max_pool2d(x, k)
    index = np.zeros(out.shape, np.int64)
    for (n, c, y, xx), (r, q) in winners.items():
        index[n, c, y, xx] = (r - y * kh) * kw + (q - xx * kw)
    return out, index


@pytest.mark.parametrize("shape,k", TILED_POOLS, ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiled_max_pool_matches_reference_with_ties(shape, k, dtype):
    rng = np.random.default_rng(26)
    x = rng.integers(0, 3, size=shape).astype(dtype)        # many ties
    x[0, 0] = 2.0                                           # a channel all tied
    kh, kw = ref.as_pair(k)
    if kh > 1 and kw > 1:
        # the tie that row-then-column order gets wrong: the max both at
        # (0, 1) and (1, 0) of the first window; row-major order picks (0, 1)
        x[0, -1, :kh, :kw] = 0.0
        x[0, -1, 0, 1] = x[0, -1, 1, 0] = 5.0
    for data in (x, -x, rng.standard_normal(shape).astype(dtype)):
        out, cache = F.max_pool2d_forward(data, k)
        want, index = _winner_indices(data, k)
        np.testing.assert_array_equal(out, want.astype(dtype))
        np.testing.assert_array_equal(F.max_pool2d(data, k), want.astype(dtype))
        np.testing.assert_array_equal(F.max_pool2d_argmax(cache), index)
        assert out.dtype == dtype and F.max_pool2d(data, k).dtype == dtype
        g = rng.standard_normal(out.shape).astype(dtype)
        dx = F.max_pool2d_backward(g, cache)
        assert dx.dtype == dtype
        np.testing.assert_array_equal(dx, ref.max_pool2d_backward(g, data, k).astype(dtype))


def test_tiled_max_pool_takes_any_memory_layout():
    """NCHW-contiguous and batch-innermost inputs give the same maps."""
    x = np.random.default_rng(27).standard_normal((3, 2, 8, 10)).astype(np.float32)
    inner = F.from_batch_innermost(np.ascontiguousarray(F.batch_innermost(x)))
    for data in (x, inner, x[:, :, ::-1]):
        out, cache = F.max_pool2d_forward(data, 2)
        want, index = _winner_indices(np.asarray(data, np.float64), 2)
        np.testing.assert_array_equal(out, want.astype(np.float32))
        np.testing.assert_array_equal(F.max_pool2d_argmax(cache), index)


def test_max_pool_float32_and_negative_inputs():
    x = -np.abs(np.random.default_rng(25).standard_normal((2, 2, 6, 6))).astype(np.float32) - 1
    out, cache = F.max_pool2d_forward(x, 3, 2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, ref.max_pool2d(x, 3, 2)[0].astype(np.float32))
    dx = F.max_pool2d_backward(np.ones(out.shape, np.float32), cache)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, ref.max_pool2d_backward(np.ones(out.shape), x, 3, 2))


# --------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------

def away_from_zero(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    return np.where(np.abs(x) < 1e-3, 0.5, x)


ACTIVATIONS = {
    "relu": (F.relu, lambda g, x, y: F.relu_backward(g, x), ref.relu, ref.relu_grad),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda g, x, y: F.leaky_relu_backward(g, x, 0.2),
                   lambda x: ref.leaky_relu(x, 0.2), lambda x: ref.leaky_relu_grad(x, 0.2)),
    "leaky_relu_default": (F.leaky_relu, lambda g, x, y: F.leaky_relu_backward(g, x),
                           lambda x: ref.leaky_relu(x, 0.01), lambda x: ref.leaky_relu_grad(x, 0.01)),
    "sigmoid": (F.sigmoid, lambda g, x, y: F.sigmoid_backward(g, y), ref.sigmoid, ref.sigmoid_grad),
    "tanh": (F.tanh, lambda g, x, y: F.tanh_backward(g, y), ref.tanh, ref.tanh_grad),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_forward_backward_reference_and_finite_differences(name):
    fwd, bwd, rfwd, rgrad = ACTIVATIONS[name]
    x = away_from_zero((2, 3, 4, 5), seed=30)
    y = fwd(x)
    assert y.shape == x.shape and y.dtype == np.float64
    np.testing.assert_allclose(y, rfwd(x), rtol=1e-13, atol=1e-15)
    g = np.random.default_rng(31).standard_normal(x.shape)
    dx = bwd(g, x, y)
    np.testing.assert_allclose(dx, g * rgrad(x), rtol=1e-12, atol=1e-15)
    assert_grad_close(dx, lambda: float(np.sum(fwd(x) * g)), x, what=name)
    x32 = x.astype(np.float32)
    y32 = fwd(x32)
    assert y32.dtype == np.float32
    assert bwd(g.astype(np.float32), x32, y32).dtype == np.float32


def test_relu_at_zero_passes_no_gradient():
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(F.relu(x), [0, 0, 2])
    np.testing.assert_array_equal(F.relu_backward(np.ones(3), x), [0, 0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_are_stable_at_extremes(dtype):
    x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype)
    # overflow, 0/0 or inf-inf raise; underflow to 0 (exp(-1000)) is the point
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        s = F.sigmoid(x)
        ds = F.sigmoid_backward(np.ones_like(x), s)
        t = F.tanh(x)
        dt = F.tanh_backward(np.ones_like(x), t)
    assert s.dtype == ds.dtype == t.dtype == dtype
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert t[0] == -1.0 and t[-1] == 1.0 and t[2] == 0.0
    assert np.all(np.isfinite(ds)) and ds[0] == 0.0 and ds[-1] == 0.0 and ds[2] == 0.25
    assert np.all(np.isfinite(dt)) and dt[0] == 0.0 and dt[-1] == 0.0 and dt[2] == 1.0


# --------------------------------------------------------------------------
# linear, softmax cross-entropy
# --------------------------------------------------------------------------

@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (3, 7, 4), (5, 12, 10)])
def test_linear_reference_and_finite_differences(n, i, o):
    rng = np.random.default_rng(40 + n)
    x, w, b = rng.standard_normal((n, i)), rng.standard_normal((o, i)), rng.standard_normal(o)
    y = F.linear(x, w, b)
    np.testing.assert_allclose(y, ref.linear(x, w, b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.linear(x, w), ref.linear(x, w), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    dx, dw, db = F.linear_backward(g, x, w)
    rdx, rdw, rdb = ref.linear_backward(g, x, w)
    np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, rdw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, rdb, rtol=1e-12, atol=1e-12)

    def loss():
        return float(np.sum(F.linear(x, w, b) * g))
    assert_grad_close(dx, loss, x, what="dx")
    assert_grad_close(dw, loss, w, what="dw")
    assert_grad_close(db, loss, b, what="db")
    assert F.linear_backward(g, x, w, need_input_grad=False)[0] is None


@pytest.mark.parametrize("n,k", [(1, 2), (4, 10), (7, 3)])
def test_softmax_cross_entropy_reference_and_finite_differences(n, k):
    rng = np.random.default_rng(50 + n)
    z = rng.standard_normal((n, k)) * 2
    y = rng.integers(0, k, n)
    loss, dz = F.softmax_cross_entropy(z, y)
    rloss, rdz = ref.softmax_cross_entropy(z, y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(rloss, rel=1e-12)
    np.testing.assert_allclose(dz, rdz, rtol=1e-12, atol=1e-15)
    assert_grad_close(dz, lambda: F.softmax_cross_entropy(z, y)[0], z, what="dlogits")
    np.testing.assert_allclose(F.softmax(z).sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(np.exp(F.log_softmax(z)), F.softmax(z), rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_is_stable_at_huge_logits(dtype):
    z = np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    y = np.array([0, 1, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dz = F.softmax_cross_entropy(z, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dz))
    assert dz.dtype == dtype
    # row losses: 0, 1e4, log 3
    assert loss == pytest.approx((0 + 1e4 + np.log(3)) / 3, rel=1e-6)
    np.testing.assert_allclose(dz, np.array([[0, 0, 0], [1, -1, 0],
                                             [1 / 3, 1 / 3, -2 / 3]]) / 3, atol=1e-7)
    p = F.softmax(z)
    assert np.all(np.isfinite(p))


def test_softmax_cross_entropy_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels"):
        F.softmax_cross_entropy(np.zeros((3, 4)), np.array([0, 1]))


# --------------------------------------------------------------------------
# the contract: names, int-or-pair arguments, clear errors
# --------------------------------------------------------------------------

CONTRACT_FUNCTIONAL = ["conv2d", "max_pool2d", "avg_pool2d", "relu", "im2col", "col2im",
                       "conv2d_backward", "max_pool2d_backward", "avg_pool2d_backward",
                       "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid",
                       "sigmoid_backward", "tanh", "tanh_backward", "linear", "linear_backward",
                       "softmax_cross_entropy", "conv2d_input_grad_by_rotation"]


@pytest.mark.parametrize("name", CONTRACT_FUNCTIONAL)
def test_functional_contract_names_exist(name):
    assert callable(getattr(F, name))


def test_conv2d_signature_is_the_contract():
    params = inspect.signature(F.conv2d).parameters
    assert list(params)[:6] == ["x", "w", "b", "stride", "padding", "dilation"]
    assert params["b"].default is None and params["stride"].default == 1
    assert params["padding"].default == 0 and params["dilation"].default == 1
    for fn in (F.max_pool2d, F.avg_pool2d):
        p = inspect.signature(fn).parameters
        assert list(p)[:3] == ["x", "kernel_size", "stride"] and p["stride"].default is None


def test_int_and_pair_arguments_are_the_same():
    x, w, b = make_conv(FIXED[4], seed=60)
    a = F.conv2d(x, w, b, stride=2, padding=1, dilation=2)
    c = F.conv2d(x, w, b, stride=(2, 2), padding=(1, 1), dilation=(2, 2))
    d = F.conv2d(x, w, b, stride=[2, 2], padding=np.array([1, 1]), dilation=(np.int64(2), 2))
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(a, d)
    np.testing.assert_array_equal(F.max_pool2d(x, 3, 2), F.max_pool2d(x, (3, 3), (2, 2)))
    np.testing.assert_array_equal(F.avg_pool2d(x, 2), F.avg_pool2d(x, (2, 2), (2, 2)))
    np.testing.assert_array_equal(F.im2col(x, 3, 2, 1), F.im2col(x, (3, 3), (2, 2), (1, 1)))
    assert F.pair(3) == (3, 3) and F.pair((2, 1)) == (2, 1)


@pytest.mark.parametrize("bad", [2.5, "3", (1, 2, 3), (1.5, 2), None])
def test_pair_rejects_non_integers(bad):
    with pytest.raises(ValueError, match="int or an"):
        F.pair(bad, "stride")


@pytest.mark.parametrize("call,match", [
    (lambda: F.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 5, 5))), "no output pixels"),
    (lambda: F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), dilation=3), "no output pixels"),
    (lambda: F.conv2d(np.zeros((1, 1, 4, 9)), np.zeros((1, 1, 5, 3)), padding=(0, 1)), "no output pixels"),
    (lambda: F.conv2d(np.zeros((1, 2, 5, 5)), np.zeros((1, 3, 3, 3))), "channels"),
    (lambda: F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), stride=0), "stride"),
    (lambda: F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding=-1), "padding"),
    (lambda: F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), dilation=0), "dilation"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 3, 5)), 4), "does not fit"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 5, 3)), (2, 4)), "does not fit"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4)), 2, 0), "stride"),
    (lambda: F.im2col(np.zeros((1, 1, 2, 2)), 3), "no output pixels"),
])
def test_impossible_shapes_give_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_conv2d_without_batch_axis_says_what_shape_it_needs():
    """A (C, H, W) image without the batch axis is the classic mistake."""
    with pytest.raises(ValueError, match=r"N, C, H, W|4-D|4 dim"):
        F.conv2d(np.zeros((1, 5, 5)), np.zeros((1, 1, 3, 3)))
