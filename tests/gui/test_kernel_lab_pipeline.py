"""The Kernel Lab's numbers (no display needed): its conv against cv2.filter2D on
the bundled photos, the seed example's shapes, strides/dilation/depthwise, the
arithmetic panel's sums, and where each stage sits in input coordinates."""

import cv2
import numpy as np
import pytest

from cnnviz.data.images import load_image, resize, sample_images, to_grey
from cnnviz.engine import kernels as K
from cnnviz.gui.kernel_lab.arithmetic import explain_conv, explain_pool
from cnnviz.gui.kernel_lab.pipeline import LayerConfig, PipelineError, run_pipeline

PHOTOS = sample_images()
TOL = 1e-4


def photo(name, size=None):
    img = load_image(PHOTOS[name])
    return resize(img, size) if size else img


def grey_chw(name, size=None):
    return to_grey(photo(name, size))[None]


def rgb_chw(name, size=None):
    img = photo(name, size)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def config(weights, bias=None, **kw):
    weights = np.asarray(weights, np.float32)
    bias = np.zeros(weights.shape[0], np.float32) if bias is None else np.asarray(bias, np.float32)
    return LayerConfig(weights, bias, **kw)


def filter2d(channel, kernel):
    """OpenCV's correlation with zero borders: same-size output, anchor at the kernel centre."""
    return cv2.filter2D(channel.astype(np.float32), cv2.CV_32F, kernel.astype(np.float32),
                        borderType=cv2.BORDER_CONSTANT)


def conv_map(x, cfg, index=0):
    return run_pipeline(x, cfg).stage("conv").maps[index]


def test_bundled_photos_exist():
    assert len(PHOTOS) >= 3


@pytest.mark.parametrize("name", sorted(PHOTOS))
@pytest.mark.parametrize("preset", list(K.PRESETS))
def test_conv_matches_filter2d_with_zero_padding(name, preset):
    """'Same' padding (k//2 each side) is OpenCV's BORDER_CONSTANT with the centre anchor."""
    x = grey_chw(name, (120, 160))
    k = K.preset(preset, (5, 5) if preset in ("Gaussian", "motion blur") else None)
    kh, kw = k.shape
    out = conv_map(x, config(k[None, None], padding=(kh // 2, kw // 2)))
    np.testing.assert_allclose(out, filter2d(x[0], k), atol=TOL)


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_valid_conv_is_the_interior_of_filter2d_rectangular_kernel(name):
    x = grey_chw(name)
    k = K.random_kernel((3, 7), seed=11)
    out = conv_map(x, config(k[None, None]))
    ref = filter2d(x[0], k)[1:-1, 3:-3]
    assert out.shape == ref.shape == (x.shape[1] - 2, x.shape[2] - 6)
    np.testing.assert_allclose(out, ref, atol=TOL)


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_rgb_filter_sums_its_three_subkernels_into_one_map(name):
    x = rgb_chw(name, (90, 110))
    subs = np.stack([K.sobel_x(), K.sharpen(), K.gaussian((3, 3))])
    out = run_pipeline(x, config(subs[None], bias=[0.25], padding=1))
    conv = out.stage("conv")
    assert conv.tensor.shape == (1, 1, 90, 110)
    ref = sum(filter2d(x[c], subs[c]) for c in range(3)) + 0.25
    np.testing.assert_allclose(conv.maps[0], ref, atol=TOL)


def test_stride_and_dilation_per_axis_match_filter2d():
    x = grey_chw("camera", (101, 97))
    k = K.random_kernel((3, 3), seed=5)
    out = conv_map(x, config(k[None, None], stride=(2, 3), padding=(1, 1)))
    np.testing.assert_allclose(out, filter2d(x[0], k)[::2, ::3], atol=TOL)
    # dilation (2, 1): the kernel's rows spread out with a zero row between them
    dilated = np.zeros((5, 3), np.float32)
    dilated[::2] = k
    out = conv_map(x, config(k[None, None], padding=(2, 1), dilation=(2, 1)))
    np.testing.assert_allclose(out, filter2d(x[0], dilated), atol=TOL)


def test_depthwise_gives_one_map_per_channel_per_filter():
    x = rgb_chw("chelsea", (64, 72))
    bank = np.stack([np.stack([K.sobel_x()] * 3), np.stack([K.sobel_y(), K.blur(), K.emboss()])])
    result = run_pipeline(x, config(bank, bias=[0.0, 1.0], padding=1, depthwise=True))
    conv = result.stage("conv")
    assert conv.tensor.shape == (1, 6, 64, 72)
    assert conv.title == "conv (depthwise): (1, 6, 64, 72)"
    for f in range(2):
        for c in range(3):
            ref = filter2d(x[c], bank[f, c]) + f
            np.testing.assert_allclose(conv.maps[f * 3 + c], ref, atol=TOL)


def test_seed_example_shapes_and_headers():
    x = rgb_chw("chelsea", (80, 80))
    w = np.stack([K.sobel_x()] * 3)[None]
    result = run_pipeline(x, config(w, activation="relu", pool="max"))
    assert [s.title for s in result.stages] == [
        "input: (1, 3, 80, 80)", "conv: (1, 1, 78, 78)", "ReLU: (1, 1, 78, 78)",
        "max pool: (1, 1, 39, 39)"]
    conv, act, pool = (result.stage(n).maps[0] for n in ("conv", "activation", "pool"))
    np.testing.assert_array_equal(act, np.maximum(conv, 0))
    np.testing.assert_allclose(pool, act.reshape(39, 2, 39, 2).max(axis=(1, 3)))


def test_no_output_pixels_is_a_clear_error_and_a_bad_pool_keeps_the_conv():
    x = grey_chw("camera", (28, 28))
    with pytest.raises(PipelineError, match="no output pixels"):
        run_pipeline(x, config(np.ones((1, 1, 11, 11)), dilation=3))
    result = run_pipeline(x, config(np.ones((1, 1, 3, 3)), stride=9, pool="max", pool_size=5))
    assert result.stage("conv").tensor.shape == (1, 1, 3, 3)
    assert result.stage("pool") is None
    assert result.error.stage == "pool" and "no output pixels" in result.error.message


def test_a_layer_too_big_for_memory_is_refused_with_the_figure():
    x = np.zeros((3, 6000, 6000), np.float32)   # 16 maps of 144 MB per stage
    with pytest.raises(PipelineError, match="needs about 11.5 GB of memory"):
        run_pipeline(x, config(np.ones((16, 3, 11, 11))))


SETTINGS = [
    dict(),
    dict(stride=(2, 3), padding=(1, 2), dilation=(1, 2)),
    dict(padding=(4, 4), dilation=(2, 2), depthwise=True),
    dict(stride=(3, 1), padding=(0, 5)),
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_arithmetic_sum_plus_bias_is_the_map_value(settings):
    x = rgb_chw("coffee", (40, 50))
    rng = np.random.default_rng(0)
    w = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
    result = run_pipeline(x, config(w, bias=[0.5, -1.25], **settings))
    conv = result.stage("conv").maps
    for _ in range(25):
        m, r, c = (int(rng.integers(0, n)) for n in conv.shape)
        a = explain_conv(result, m, r, c)
        assert a.total == pytest.approx(a.map_value, abs=TOL)
        assert a.map_value == conv[m, r, c]
        assert a.engine_value == pytest.approx(a.map_value, abs=TOL)   # the reference agrees
        assert a.products.sum() + a.bias == pytest.approx(a.total)
        assert (a.patch[:, a.is_padding] == 0).all()


def test_arithmetic_marks_padding_at_the_corner():
    x = grey_chw("camera", (10, 10))
    result = run_pipeline(x, config(np.ones((1, 1, 3, 3)), padding=1))
    a = explain_conv(result, 0, 0, 0)
    assert a.is_padding.tolist() == [[True, True, True], [True, False, False], [True, False, False]]
    assert list(a.input_rows) == [-1, 0, 1] and list(a.input_cols) == [-1, 0, 1]


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_arithmetic_matches_the_engine(kind):
    x = grey_chw("camera", (30, 31))
    result = run_pipeline(x, config(K.sobel_x()[None, None], activation="tanh", pool=kind,
                                    pool_size=(3, 2), pool_stride=(2, 2)))
    pool = result.stage("pool").maps[0]
    for r, c in [(0, 0), (5, 7), (pool.shape[0] - 1, pool.shape[1] - 1)]:
        a = explain_pool(result, 0, r, c)
        assert a.result == pytest.approx(a.map_value, abs=1e-6)
        if kind == "max":
            assert a.window[a.winner] == a.window.max()


def test_stage_placement_puts_conv_pixels_on_their_receptive_field_centres():
    x = grey_chw("camera", (50, 60))
    k = np.ones((1, 1, 3, 5), np.float32)
    result = run_pipeline(x, config(k, stride=(2, 3), padding=(1, 2), dilation=(2, 1),
                                    pool="max", pool_size=2, pool_stride=2))
    conv = result.stage("conv")
    for r, c in [(0, 0), (4, 7)]:
        a = explain_conv(result, 0, r, c)
        # centre of the conv pixel in input coordinates = centre of its taps
        y = conv.rows.scale * (r + 0.5) + conv.rows.offset
        x_ = conv.cols.scale * (c + 0.5) + conv.cols.offset
        assert y == pytest.approx(a.input_rows.mean() + 0.5)
        assert x_ == pytest.approx(a.input_cols.mean() + 0.5)
    pool = result.stage("pool")
    # pool pixel (0, 0) sits at the centre of conv pixels (0..1, 0..1)
    y = pool.rows.scale * 0.5 + pool.rows.offset
    assert y == pytest.approx(conv.rows.scale * 1.0 + conv.rows.offset)
