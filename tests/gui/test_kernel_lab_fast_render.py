"""The Kernel Lab's OpenCV colour mapping (fast_render) against render_maps:
the same scales, titles and colour tables; a pixel's colour index equal to
colorize's truncation except within 0.002 of a step, and then one step off;
maps with inf or NaN drawn by render_maps itself. No display needed."""

import cv2
import numpy as np
import pytest

from cnnviz.gui.kernel_lab.fast_render import colour_index, render_fast
from cnnviz.gui.kernel_lab.filter_conv import opencv_single_threaded
from cnnviz.gui.widgets.colormaps import colorize
from cnnviz.gui.widgets.rendered_maps import render_maps

RNG = np.random.default_rng(7)
CASES = {
    "signed": RNG.uniform(-2, 3, (3, 61, 47)).astype(np.float32),
    "non-negative": RNG.uniform(0, 5, (2, 40, 90)).astype(np.float32),
    "all negative": RNG.uniform(-3, -1, (2, 30, 30)).astype(np.float32),
    "one map constant": np.stack([np.zeros((20, 25)), RNG.normal(size=(20, 25))]).astype(np.float32),
    "relu of nothing": np.zeros((2, 16, 16), np.float32),
}


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("name", list(CASES))
def test_scales_titles_and_colours_are_render_maps(name, shared):
    maps = CASES[name]
    titles = [f"map {i}" for i in range(len(maps))]
    fast = render_fast(maps, titles, shared_scale=shared)
    ref = render_maps(maps, titles, shared_scale=shared)
    assert fast.scales == ref.scales
    assert fast.titles == ref.titles
    assert (fast.rgb, fast.shared_scale, fast.tile_count) == (ref.rgb, ref.shared_scale,
                                                             ref.tile_count)
    for plane, scale, image, expected in zip(maps, fast.scales, fast.images, ref.images):
        assert image.shape == expected.shape and image.dtype == np.uint8
        assert image.flags.c_contiguous
        exact = (plane.astype(np.float64) - scale.lo) * 255 / (scale.hi - scale.lo)
        truncated = np.floor(np.clip(exact, 0, 255))
        index = colour_index(plane, scale).astype(np.float64)
        near_step = exact - truncated >= 0.998
        assert np.all(index[~near_step] == truncated[~near_step])
        assert np.all(np.abs(index - truncated) <= 1)
        # colorize rounds in float32 itself: near a step either may be one off
        same = (image == expected).all(axis=-1)
        assert np.all(same | (np.abs(exact - np.round(exact)) < 0.002))
        assert same.mean() > 0.99


def test_extremes_get_the_ends_of_the_colour_table():
    maps = np.array([[[-4.0, 0.0, 4.0, 1.0]]], np.float32)
    fast = render_fast(maps, ["m"])
    np.testing.assert_array_equal(fast.images[0], colorize(maps[0], fast.scales[0]))


def test_maps_with_inf_or_nan_are_drawn_by_render_maps():
    maps = RNG.normal(size=(2, 10, 12)).astype(np.float32)
    maps[0, 3, 4] = np.nan
    maps[1, 0, 0] = np.inf
    fast, ref = render_fast(maps, ["a", "b"]), render_maps(maps, ["a", "b"])
    assert fast.scales == ref.scales
    for a, b in zip(fast.images, ref.images):
        np.testing.assert_array_equal(a, b)
    assert tuple(fast.images[0][3, 4]) == (255, 0, 255, 255)      # NaN in magenta


def test_opencv_threads_are_restored_after_nested_use():
    before = cv2.getNumThreads()
    with opencv_single_threaded():
        with opencv_single_threaded():
            assert cv2.getNumThreads() == 1
        assert cv2.getNumThreads() == 1          # the outer user still runs
    assert cv2.getNumThreads() == before
