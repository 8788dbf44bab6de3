"""Kernel presets: the classic image kernels learners try first, in pure NumPy.

Every preset is a callable ``PRESETS[name](shape=None) -> float32 (kh, kw)``.
Fixed kernels (Sobel, sharpen, ...) are 3x3; asked for a larger odd shape they
sit centred in zeros, which filters exactly the same. Sized kernels (Gaussian,
box blur, motion blur, random, identity) are built at any shape.

All kernels are written for cross-correlation (no flip), as a CNN applies them:
``out[i, j] = sum_m sum_n x[i + m, j + n] * k[m, n]``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    "PRESETS", "SIZED_PRESETS", "PRESET_ALIASES", "NOTES_PRESETS", "preset",
    "identity", "sharpen", "blur", "sobel_x", "sobel_y", "vertical_edge",
    "horizontal_edge", "surround", "emboss", "gaussian", "box_blur", "laplacian",
    "prewitt_x", "prewitt_y", "scharr_x", "scharr_y", "outline", "motion_blur",
    "random_kernel", "opencv_sigma",
]

MAX_SIDE = 11


def _shape(shape, default=(3, 3)) -> tuple[int, int]:
    if shape is None:
        return default
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape), int(shape))
    kh, kw = (int(v) for v in shape)
    if not (1 <= kh <= MAX_SIDE and 1 <= kw <= MAX_SIDE):
        raise ValueError(f"kernel shape must be between 1x1 and {MAX_SIDE}x{MAX_SIDE}, got {kh}x{kw}")
    return kh, kw


def _fixed(rows) -> Callable[..., np.ndarray]:
    base = np.array(rows, dtype=np.float32)

    def make(shape=None) -> np.ndarray:
        kh, kw = _shape(shape, base.shape)
        bh, bw = base.shape
        if (kh, kw) == (bh, bw):
            return base.copy()
        if kh < bh or kw < bw or (kh - bh) % 2 or (kw - bw) % 2:
            raise ValueError(f"this {bh}x{bw} kernel fits only a larger odd shape, not {kh}x{kw}")
        out = np.zeros((kh, kw), np.float32)
        top, left = (kh - bh) // 2, (kw - bw) // 2
        out[top:top + bh, left:left + bw] = base   # centred: same filter, wider window
        return out

    return make


# --- the nine kernels of CNN-NOTES.md -------------------------------------------------

def identity(shape=None) -> np.ndarray:
    """1 in the centre: the output equals the input."""
    kh, kw = _shape(shape)
    out = np.zeros((kh, kw), np.float32)
    out[kh // 2, kw // 2] = 1
    return out


sharpen = _fixed([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])


def blur(shape=None) -> np.ndarray:
    """Box blur: every weight 1/(kh*kw), so flat areas keep their value."""
    kh, kw = _shape(shape)
    return np.full((kh, kw), 1.0 / (kh * kw), np.float32)


sobel_x = _fixed([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
sobel_y = _fixed([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
vertical_edge = _fixed([[0, 0, 0], [-1, 2, -1], [0, 0, 0]])
horizontal_edge = _fixed([[0, -1, 0], [0, 2, 0], [0, -1, 0]])
surround = _fixed([[1, 1, 1], [1, -9, 1], [1, 1, 1]])
emboss = _fixed([[2, 0, 0], [0, -1, 0], [0, 0, -1]])

# --- the wider family ---------------------------------------------------------------

laplacian = _fixed([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
prewitt_x = _fixed([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])
prewitt_y = _fixed([[-1, -1, -1], [0, 0, 0], [1, 1, 1]])
scharr_x = _fixed([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]])
scharr_y = _fixed([[-3, -10, -3], [0, 0, 0], [3, 10, 3]])
outline = _fixed([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])


def box_blur(shape=None) -> np.ndarray:
    return blur(shape)


def opencv_sigma(size: int) -> float:
    """The sigma OpenCV's getGaussianKernel picks for a size when none is given."""
    return 0.3 * ((size - 1) * 0.5 - 1) + 0.8


# cv2.getGaussianKernel's fixed tables for small odd sizes when no sigma is given
_OPENCV_SMALL_GAUSSIANS = {
    1: [1.0],
    3: [0.25, 0.5, 0.25],
    5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
    7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
}


def gaussian(shape=None, sigma: float | None = None) -> np.ndarray:
    """Sampled 2-D Gaussian, normalized to sum 1. ``sigma=None`` does what
    ``cv2.getGaussianKernel`` does (its tables up to 7, its sigma rule above)."""
    kh, kw = _shape(shape, (5, 5))
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")

    def axis(n):
        if sigma is None and n in _OPENCV_SMALL_GAUSSIANS:
            return np.array(_OPENCV_SMALL_GAUSSIANS[n])
        s = opencv_sigma(n) if sigma is None else float(sigma)
        t = np.arange(n, dtype=np.float64) - (n - 1) / 2
        g = np.exp(-(t * t) / (2 * s * s))
        return g / g.sum()

    return np.outer(axis(kh), axis(kw)).astype(np.float32)


def motion_blur(shape=None) -> np.ndarray:
    """A horizontal streak through the centre row: the blur of a camera moving sideways."""
    kh, kw = _shape(shape, (5, 5))
    out = np.zeros((kh, kw), np.float32)
    out[kh // 2, :] = 1.0 / kw
    return out


def random_kernel(shape=None, seed: int | None = 0) -> np.ndarray:
    """Uniform in [-1, 1], rounded to 2 decimals so the cells stay readable."""
    kh, kw = _shape(shape)
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(-1, 1, (kh, kw)), 2).astype(np.float32)


NOTES_PRESETS: dict[str, Callable[..., np.ndarray]] = {
    "identity": identity,
    "sharpen": sharpen,
    "blur": blur,
    "Sobel x": sobel_x,
    "Sobel y": sobel_y,
    "vertical edge": vertical_edge,
    "horizontal edge": horizontal_edge,
    "surround": surround,
    "emboss": emboss,
}

PRESETS: dict[str, Callable[..., np.ndarray]] = {
    **NOTES_PRESETS,
    "Gaussian": gaussian,
    "Laplacian": laplacian,
    "Prewitt x": prewitt_x,
    "Prewitt y": prewitt_y,
    "Scharr x": scharr_x,
    "Scharr y": scharr_y,
    "outline": outline,
    "motion blur": motion_blur,
    "random": random_kernel,
}

# Presets that are meaningful at any size: an editor keeps its current size for these
# and switches to 3x3 for the others.
SIZED_PRESETS = frozenset({"identity", "blur", "Gaussian", "motion blur", "random"})

# Older names that are one preset now ("blur" is the box blur): files and menus that
# still say them get the same kernel.
PRESET_ALIASES = {"box blur": "blur"}


def preset(name: str, shape=None, **params) -> np.ndarray:
    """``preset("Gaussian", (5, 5), sigma=1.0)``; KeyError lists the known names."""
    try:
        make = PRESETS[PRESET_ALIASES.get(name, name)]
    except KeyError:
        raise KeyError(f"unknown kernel preset {name!r}; known: {', '.join(PRESETS)}") from None
    return make(shape, **params)
