"""The Kernel Lab's filter2D convolution (filter_conv.conv2d_maps) against the
engine's conv2d, the reference: odd shapes, strides, padding, dilation,
channels, filters, bias, depthwise, kernels large enough to be tiled.

Equal within 1e-5 of the sum of magnitudes sum_i |w_i x_i| + |b| of each
output: the two sum the same products in different orders (float32), so a
bound on each value's own size would fail where positive and negative terms
cancel to near zero. No display needed."""

import numpy as np
import pytest

from cnnviz.engine import functional as F
from cnnviz.gui.kernel_lab.filter_conv import DFT_KERNEL_CELLS, _tiles, conv2d_maps, dilated
from cnnviz.gui.kernel_lab.pipeline import LayerConfig, PipelineError, memory_needed, run_pipeline

REL = 1e-5


def engine(x, w, b, stride, padding, dilation, depthwise):
    if not depthwise:
        return F.conv2d(x, w, b, stride, padding, dilation)
    f, c = w.shape[:2]
    maps = [F.conv2d(x[:, k:k + 1], w[i:i + 1, k:k + 1], b[i:i + 1], stride, padding, dilation)
            for i in range(f) for k in range(c)]
    return np.concatenate(maps, axis=1)


def assert_matches_engine(x, w, b, stride=1, padding=0, dilation=1, depthwise=False):
    got = conv2d_maps(x, w, b, stride, padding, dilation, depthwise)
    want = engine(x, w, b, stride, padding, dilation, depthwise)
    assert got.shape == want.shape and got.dtype == np.float32
    assert got.flags.c_contiguous
    scale = engine(np.abs(x), np.abs(w), np.abs(b), stride, padding, dilation, depthwise)
    err = np.abs(got.astype(np.float64) - want)
    worst = np.unravel_index(np.argmax(err - REL * scale), err.shape)
    assert np.all(err <= REL * scale), (
        f"|difference| {err[worst]:.3g} at {worst} exceeds {REL} x {scale[worst]:.3g}")


def layer(rng, c, h, w, f, kh, kw, bias=True):
    x = rng.random((1, c, h, w), dtype=np.float32)
    wt = rng.uniform(-1, 1, (f, c, kh, kw)).astype(np.float32)
    b = (rng.uniform(-1, 1, f) if bias else np.zeros(f)).astype(np.float32)
    return x, wt, b


CASES = [   # (C, H, W, F, kh, kw, stride, padding, dilation)
    (1, 37, 53, 1, 3, 3, 1, 0, 1),                   # valid, rectangular image
    (3, 41, 29, 4, 3, 5, (2, 3), 0, 1),              # rectangular kernel, stride per axis
    (3, 40, 50, 2, 5, 5, 3, (2, 1), 1),              # stride 3, padding inside the kernel
    (4, 33, 47, 3, 3, 3, 2, 1, 2),                   # dilation 2, 4 channels
    (2, 30, 31, 5, 3, 4, (1, 2), (3, 4), (2, 1)),    # padding wider than the kernel
    (3, 23, 27, 2, 7, 7, 1, 3, 2),                   # dilated to 13x13: tiled past the DFT size
    (3, 45, 38, 2, 12, 13, (2, 3), (5, 6), 1),       # a 12x13 kernel: tiled, padded
    (3, 300, 280, 4, 7, 7, 1, 0, 1),                 # big enough for the threads
    (1, 20, 20, 1, 20, 20, 1, 0, 1),                 # kernel as large as the image: one pixel
]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_filter2d_maps_equal_the_engine_conv(case):
    c, h, w, f, kh, kw, stride, padding, dilation = case
    x, wt, b = layer(np.random.default_rng(sum(case[:6])), c, h, w, f, kh, kw)
    assert_matches_engine(x, wt, b, stride, padding, dilation)


@pytest.mark.parametrize("stride, padding, dilation", [(1, 1, 1), ((2, 3), (2, 0), (1, 2)),
                                                       (1, 6, 2)])
def test_depthwise_maps_equal_the_engine_per_channel(stride, padding, dilation):
    x, wt, b = layer(np.random.default_rng(4), 3, 35, 44, 2, 3, 5)
    assert_matches_engine(x, wt, b, stride, padding, dilation, depthwise=True)


def test_the_pipeline_conv_stage_is_the_filter2d_path_and_equals_the_engine():
    x, wt, b = layer(np.random.default_rng(9), 3, 64, 48, 3, 3, 3)
    cfg = LayerConfig(wt, b, stride=(2, 1), padding=1, dilation=2, activation="relu",
                      pool="max")
    result = run_pipeline(x[0], cfg)
    want = F.conv2d(x, wt, b, (2, 1), 1, 2)
    np.testing.assert_allclose(result.stage("conv").tensor, want, rtol=0,
                               atol=REL * float(np.abs(want).max()))
    np.testing.assert_array_equal(result.stage("activation").tensor,
                                  np.maximum(result.stage("conv").tensor, 0))


def test_a_large_kernel_keeps_black_regions_exact():
    """filter2D's DFT (kernels of 130+ cells) spreads rounding over the whole map:
    on a photo with a black region its maps there would be noise of ~1e-7 instead
    of exactly the bias. The lab tiles such kernels, so they stay exact."""
    x, wt, b = layer(np.random.default_rng(3), 3, 120, 130, 2, 13, 12)
    x[:, :, :, :60] = 0.0
    b[:] = 0.0
    assert_matches_engine(x, wt, b, padding=(6, 5))
    out = conv2d_maps(x, wt, b)
    assert not out[:, :, :, :48].any()       # windows wholly on black: exactly 0


def test_large_kernels_are_tiled_below_the_dft_size_and_zero_gaps_skipped():
    k = dilated(np.ones((7, 7), np.float32), (2, 2))       # 13x13, every other row zero
    tiles = _tiles(k)
    assert all(t.shape[0] * t.shape[1] < DFT_KERNEL_CELLS for _, _, t in tiles)
    total = np.zeros_like(k)
    for i, j, t in tiles:
        total[i:i + t.shape[0], j:j + t.shape[1]] += t
    np.testing.assert_array_equal(total, k)
    assert len(_tiles(np.zeros((13, 13), np.float32))) == 1   # the bias still needs a map


def test_an_all_zero_large_kernel_gives_its_bias():
    x = np.ones((1, 1, 20, 20), np.float32)
    out = conv2d_maps(x, np.zeros((1, 1, 12, 12), np.float32), np.array([0.5], np.float32))
    np.testing.assert_array_equal(out, np.full((1, 1, 9, 9), 0.5, np.float32))


def test_the_2048_bank_fits_and_what_cannot_is_refused_with_the_figure():
    bank = LayerConfig(np.zeros((4, 3, 7, 7), np.float32), np.zeros(4, np.float32),
                       activation="relu", pool="max")
    assert memory_needed((1, 3, 2048, 2048), bank) < 600 * 1024 ** 2
    # 16 depthwise filters on a 6000x6000 RGB photo: 48 maps of 144 MB, 5 times over
    huge = LayerConfig(np.zeros((16, 3, 3, 3), np.float32), np.zeros(16, np.float32),
                       depthwise=True)
    with pytest.raises(PipelineError) as caught:
        run_pipeline(np.zeros((3, 6000, 6000), np.float32), huge)
    assert str(caught.value) == (
        "conv: this layer needs about 33.0 GB of memory for a 6000x6000 input, more than the "
        "3.0 GB the lab allows; downscale the image, use a larger stride or fewer filters")
