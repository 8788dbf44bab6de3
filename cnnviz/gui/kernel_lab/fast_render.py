"""The lab's maps colour-mapped through OpenCV: big photos in tens of milliseconds.

``render_maps`` (cnnviz.gui.widgets.rendered_maps) takes six NumPy passes per
map (finite check, min, max, scale, clip, lookup): about 300 ms for the 12
maps of a 4-filter bank on a 2048x2048 photo, more than the convolution. Here
the levels come from one ``cv2.minMaxLoc`` per map, the colour index from one
``cv2.addWeighted`` into uint8 (scale, offset and saturation in one pass) and
the colours from one lookup. Same ``Scale`` choice and colour tables as
``render_maps``; the index is rounded where ``colorize`` truncates, so a pixel
may sit one of 256 colour steps away from it, and only within 0.001 of a step
boundary. Maps holding inf or NaN take ``render_maps`` (its magenta NaN).

A map far bigger than its tile on screen is coloured at every ``step``-th
row and column only (``display_step``): a 2042x2042 map shown 300 px wide
needs no 2042x2042 image (that costs 13 ms a map, 9 maps a 4-filter bank),
and Qt, drawing it unsmoothed, would show one pixel in seven anyway. The
levels still come from every value; hover and export read the full maps; the
lab colours a finer step when the user zooms in (``recolour``).
"""

from __future__ import annotations

import cv2
import numpy as np

from cnnviz.gui.kernel_lab.filter_conv import all_finite
from cnnviz.gui.widgets.colormaps import Scale, _lut_u32
from cnnviz.gui.widgets.rendered_maps import RenderedMaps, render_maps

# addWeighted rounds to nearest; colorize truncates. Offsetting by just under
# half a step makes the rounding land where truncation does (but within 0.001
# of the next step) without pushing the top value (255.0) down to 254.
_TRUNCATE = -0.499


def _scale(lo: float, hi: float) -> Scale:
    """colormaps.scale_for's choice, from a known min and max (finite)."""
    if lo < 0:
        m = max(abs(lo), abs(hi)) or 1.0
        return Scale(-m, m, True)
    return Scale(min(0.0, lo), hi if hi > 0 else 1.0, False)


def colour_index(plane: np.ndarray, scale: Scale) -> np.ndarray:
    """(H, W) float32 -> (H, W) uint8 index into the scale's 256 colours."""
    alpha = 255.0 / (scale.hi - scale.lo)
    return cv2.addWeighted(plane, alpha, plane, 0.0, -scale.lo * alpha + _TRUNCATE,
                           dtype=cv2.CV_8U)


def colour_image(plane: np.ndarray, scale: Scale) -> np.ndarray:
    """(H, W) finite float32 -> (H, W, 4) uint8 RGBA, C-contiguous."""
    # one uint32 per pixel looked up: 4x fewer elements than per channel; take's
    # "wrap" skips the bounds check that fancy indexing does (half the time; a
    # uint8 index never leaves the 256 colours)
    return np.take(_lut_u32(scale.lut), colour_index(plane, scale), mode="wrap").view(
        np.uint8).reshape(plane.shape + (4,))


# a map is coloured at every n-th pixel when its tile shows at least 2n map
# pixels per screen pixel (so a 2x zoom still shows every coloured pixel)
ZOOM_HEADROOM = 2


def display_step(map_pixels_per_screen_pixel: float) -> int:
    """The step a map shown at this density is coloured at (1: every pixel)."""
    if not np.isfinite(map_pixels_per_screen_pixel):
        return 1
    return max(1, int(map_pixels_per_screen_pixel // ZOOM_HEADROOM))


def _sampled(plane: np.ndarray, step: int) -> np.ndarray:
    return plane if step == 1 else np.ascontiguousarray(plane[::step, ::step])


def _colour_sampled(plane: np.ndarray, scale: Scale, step: int) -> np.ndarray:
    return colour_image(_sampled(plane, step), scale)


def recolour(rendered: RenderedMaps, step: int, colour=None) -> RenderedMaps:
    """The same maps and scales (from ``render_fast``) coloured at another step."""
    planes = list(rendered.data)
    images = list((colour or map)(_colour_sampled, planes, rendered.scales,
                                  [step] * len(planes)))
    return RenderedMaps(rendered.data, images, rendered.scales, rendered.titles,
                        rendered.rgb, rendered.shared_scale, step)


def render_fast(maps: np.ndarray, titles: list[str], *, shared_scale: bool = True,
                colour=None, finite: bool | None = None, step: int = 1) -> RenderedMaps:
    """Like ``render_maps(maps, titles, shared_scale=...)`` for finite float32 maps.
    ``colour``: a map over (plane, scale, step) triples, e.g. a thread pool's, for
    the images; ``finite``: whether the maps hold no inf or NaN, if already known;
    ``step``: colour every step-th row and column only (see ``display_step``)."""
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    if maps.ndim != 3 or maps.size == 0 or not (all_finite(maps) if finite is None
                                                 else finite):
        return render_maps(maps, titles, shared_scale=shared_scale)
    extremes = [cv2.minMaxLoc(plane)[:2] for plane in maps]
    if shared_scale:
        scales = [_scale(min(e[0] for e in extremes), max(e[1] for e in extremes))] * len(maps)
    else:
        scales = [_scale(lo, hi) for lo, hi in extremes]
    step = max(1, min(int(step), *maps.shape[1:]))
    images = list((colour or map)(_colour_sampled, maps, scales, [step] * len(maps)))
    # a map of one value says so in its title (as render_maps does)
    named = [f"{t} (all {lo:.4g})" if lo == hi else t
             for t, (lo, hi) in zip(titles, extremes)]
    return RenderedMaps(maps, images, scales, named, False, shared_scale, step)
