"""Feature maps turned into display images, ready for a FeatureMapGrid.

Rendering (scale choice + colour lookup) is plain NumPy, so a worker thread can
do it for big maps and hand the GUI thread only finished RGBA images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnviz.gui.widgets.colormaps import Scale, colorize, rgb_to_rgba, scale_for


@dataclass
class RenderedMaps:
    """data: (M, H, W) float32 values; one display tile per map, or a single RGB
    tile for all three channels when ``rgb``. scales: one per tile (all equal
    when the scale is shared). step: the images show every step-th row and
    column of the maps (a big map in a small tile, see kernel_lab.fast_render);
    ``data`` always holds every value (hover, export)."""

    data: np.ndarray
    images: list[np.ndarray]
    scales: list[Scale]
    titles: list[str]
    rgb: bool = False
    shared_scale: bool = True
    step: int = 1

    @property
    def tile_count(self) -> int:
        return len(self.images)

    @property
    def map_shape(self) -> tuple[int, int]:
        return tuple(self.data.shape[1:])


def render_maps(maps: np.ndarray, titles: list[str] | None = None, *, shared_scale: bool = True,
                signed: bool | None = None, rgb: bool = False) -> RenderedMaps:
    """maps: (M, H, W). ``signed=None`` picks the colour map from the data
    (diverging if anything is negative); ``rgb`` shows 3 maps as one colour image."""
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (M, H, W), got shape {maps.shape}")
    m = maps.shape[0]
    titles = list(titles) if titles is not None else [f"map {i}" for i in range(m)]
    if rgb:
        if m != 3:
            raise ValueError(f"an RGB tile needs 3 maps, got {m}")
        scale = Scale(0.0, 1.0, False)
        return RenderedMaps(maps, [rgb_to_rgba(maps)], [scale], ["RGB"], True, True)
    if shared_scale:
        scales = [scale_for(maps, signed)] * m
    else:
        scales = [scale_for(maps[i], signed) for i in range(m)]
    images = [colorize(maps[i], scales[i]) for i in range(m)]
    return RenderedMaps(maps, images, scales, _say_constant(maps, titles), False, shared_scale)


def _say_constant(maps: np.ndarray, titles: list[str]) -> list[str]:
    """A map of one value (a ReLU that let nothing through) says so in its
    title: its colour bar alone (0..1 for an all-zero map) would suggest a range."""
    flat = maps.reshape(len(maps), -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)        # NaN: never equal, never "constant"
    return [f"{t} (all {lo[i]:.4g})" if lo[i] == hi[i] else t for i, t in enumerate(titles)]
