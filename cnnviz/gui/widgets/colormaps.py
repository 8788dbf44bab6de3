"""Colour maps and scales for feature maps (pure NumPy, safe in any thread).

Signed data (conv outputs, gradients) get a diverging map centred at zero:
blue below, white at 0, red above, with symmetric levels so 0 is always white.
Non-negative data (images, ReLU outputs) get grey from 0 (black) up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ColorBrewer RdBu, reversed: negative blue, zero near-white, positive red.
_DIVERGING_ANCHORS = [
    (0.0, (5, 48, 97)), (0.15, (33, 102, 172)), (0.3, (67, 147, 195)),
    (0.42, (146, 197, 222)), (0.5, (247, 247, 247)), (0.58, (244, 165, 130)),
    (0.7, (214, 96, 77)), (0.85, (178, 24, 43)), (1.0, (103, 0, 31)),
]


def _lut(anchors) -> np.ndarray:
    t = np.linspace(0, 1, 256)
    pos = np.array([a[0] for a in anchors])
    rgb = np.array([a[1] for a in anchors], dtype=np.float64)
    out = np.empty((256, 4), np.uint8)
    for ch in range(3):
        out[:, ch] = np.round(np.interp(t, pos, rgb[:, ch]))
    out[:, 3] = 255
    return out


DIVERGING_LUT = _lut(_DIVERGING_ANCHORS)
GREY_LUT = _lut([(0.0, (0, 0, 0)), (1.0, (255, 255, 255))])


@dataclass(frozen=True)
class Scale:
    """How values become colours: levels (lo, hi) and which map."""

    lo: float
    hi: float
    signed: bool

    @property
    def lut(self) -> np.ndarray:
        return DIVERGING_LUT if self.signed else GREY_LUT

    @property
    def name(self) -> str:
        return "diverging" if self.signed else "grey"


def scale_for(data: np.ndarray, signed: bool | None = None) -> Scale:
    """Levels that show all of ``data``: symmetric about 0 when signed (or when any
    value is negative), 0..max otherwise. Ignores NaN; never returns lo == hi."""
    finite = data[np.isfinite(data)] if not np.isfinite(data).all() else data
    if finite.size == 0:
        return Scale(0.0, 1.0, bool(signed))
    lo, hi = float(finite.min()), float(finite.max())
    if signed is None:
        signed = lo < 0
    if signed:
        m = max(abs(lo), abs(hi)) or 1.0
        return Scale(-m, m, True)
    top = hi if hi > 0 else 1.0
    return Scale(min(0.0, lo), top, False)


def colorize(data: np.ndarray, scale: Scale) -> np.ndarray:
    """(H, W) float -> (H, W, 4) uint8 RGBA, C-contiguous. NaN shows as magenta."""
    idx = np.subtract(data, scale.lo, dtype=np.float32)
    idx *= np.float32(255.0 / (scale.hi - scale.lo))
    np.clip(idx, 0, 255, out=idx)
    nan = np.isnan(idx) if np.isnan(idx.max()) else None   # one reduction, not a mask, when clean
    if nan is not None:
        idx[nan] = 0
    # look colours up as one uint32 per pixel: 4x fewer elements than per channel
    rgba = _lut_u32(scale.lut)[idx.astype(np.uint8)].view(np.uint8).reshape(data.shape + (4,))
    if nan is not None:
        rgba[nan] = (255, 0, 255, 255)
    return rgba


_U32_CACHE: dict[int, np.ndarray] = {}


def _lut_u32(lut: np.ndarray) -> np.ndarray:
    key = id(lut)   # the two module LUTs live for the whole program
    if key not in _U32_CACHE:
        _U32_CACHE[key] = np.ascontiguousarray(lut).view(np.uint32).reshape(256)
    return _U32_CACHE[key]


def rgb_to_rgba(chw: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """(3, H, W) float in [lo, hi] -> (H, W, 4) uint8 RGBA for display."""
    out = np.empty(chw.shape[1:] + (4,), np.uint8)
    out[..., :3] = np.clip((chw.transpose(1, 2, 0) - lo) * (255.0 / (hi - lo)), 0, 255)
    out[..., 3] = 255
    return out
