"""Kernel presets: the nine of CNN-NOTES.md by name and value, and the wider family."""

import cv2
import numpy as np
import pytest

from cnnviz.engine import kernels as K

NOTES = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "blur": [[1 / 9] * 3] * 3,
    "Sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "vertical edge": [[0, 0, 0], [-1, 2, -1], [0, 0, 0]],
    "horizontal edge": [[0, -1, 0], [0, 2, 0], [0, -1, 0]],
    "surround": [[1, 1, 1], [1, -9, 1], [1, 1, 1]],
    "emboss": [[2, 0, 0], [0, -1, 0], [0, 0, -1]],
}


@pytest.mark.parametrize("name", list(NOTES))
def test_notes_kernels_by_name_and_value(name):
    k = K.PRESETS[name]()
    assert k.dtype == np.float32 and k.shape == (3, 3)
    np.testing.assert_allclose(k, NOTES[name], atol=1e-7)


def test_registry_holds_the_notes_nine_and_the_wider_family():
    assert list(K.NOTES_PRESETS) == list(NOTES)
    for name in ["Gaussian", "Laplacian", "Prewitt x", "Prewitt y", "Scharr x",
                 "Scharr y", "outline", "motion blur", "random"]:
        assert name in K.PRESETS
    # "blur" is the box blur: one preset, the old name still gives it
    assert "box blur" not in K.PRESETS
    np.testing.assert_array_equal(K.preset("box blur", (3, 5)), K.preset("blur", (3, 5)))


@pytest.mark.parametrize("name", list(K.PRESETS))
def test_every_preset_is_finite_float32_at_its_default_size(name):
    k = K.preset(name)
    assert k.dtype == np.float32 and k.ndim == 2 and np.isfinite(k).all()


def test_derivative_kernels_match_opencv():
    # OpenCV's Sobel/Scharr derivative kernels, as cross-correlation kernels
    kx, ky = cv2.getDerivKernels(1, 0, 3)
    np.testing.assert_array_equal(K.sobel_x(), np.outer(ky, kx))
    kx, ky = cv2.getDerivKernels(1, 0, -1)   # -1 = Scharr
    np.testing.assert_array_equal(K.scharr_x(), np.outer(ky, kx))
    np.testing.assert_array_equal(K.scharr_y(), K.scharr_x().T)
    np.testing.assert_array_equal(K.prewitt_y(), K.prewitt_x().T)


@pytest.mark.parametrize("shape,sigma", [((5, 5), None), ((7, 3), None), ((5, 5), 1.5), ((3, 9), 0.8)])
def test_gaussian_matches_opencv(shape, sigma):
    s = 0 if sigma is None else sigma
    ref = np.outer(cv2.getGaussianKernel(shape[0], s), cv2.getGaussianKernel(shape[1], s))
    k = K.gaussian(shape, sigma)
    np.testing.assert_allclose(k, ref, rtol=1e-5, atol=1e-7)
    assert k.sum() == pytest.approx(1.0, abs=1e-6)


def test_sized_presets_follow_the_shape():
    assert K.box_blur((3, 5)).shape == (3, 5)
    assert K.box_blur((3, 5)).sum() == pytest.approx(1.0)
    m = K.motion_blur((5, 7))
    assert m.sum() == pytest.approx(1.0) and np.count_nonzero(m[2]) == 7 and m[[0, 1, 3, 4]].sum() == 0
    i = K.identity((4, 6))
    assert i[2, 3] == 1 and i.sum() == 1


def test_fixed_kernels_embed_centred_in_larger_odd_shapes():
    k = K.sobel_x((5, 7))
    assert k.shape == (5, 7)
    np.testing.assert_array_equal(k[1:4, 2:5], K.sobel_x())
    assert np.abs(k).sum() == np.abs(K.sobel_x()).sum()
    with pytest.raises(ValueError, match="larger odd shape"):
        K.sobel_x((4, 4))
    with pytest.raises(ValueError, match="larger odd shape"):
        K.sobel_x((1, 1))


def test_random_is_reproducible_by_seed_and_bounded():
    a, b, c = K.random_kernel((4, 6), seed=3), K.random_kernel((4, 6), seed=3), K.random_kernel((4, 6), seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (4, 6) and np.abs(a).max() <= 1


def test_bad_requests_say_what_is_wrong():
    with pytest.raises(KeyError, match="unknown kernel preset 'sobel'"):
        K.preset("sobel")
    with pytest.raises(ValueError, match="between 1x1 and 11x11"):
        K.gaussian((13, 3))
    with pytest.raises(ValueError, match="sigma must be positive"):
        K.gaussian((3, 3), sigma=0)
