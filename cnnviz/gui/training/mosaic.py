"""Many small maps as one image: the cheap way to redraw a layer 15 times a second.

The shared FeatureMapGrid gives every channel its own view box, title and
colour bar, which is right for the Kernel Lab's few large maps but costs a
scene rebuild per layer here; live training redraws a dozen layers per frame,
so each layer becomes one RGBA mosaic in one ImageItem. Colours come from the
shared colour maps: grey for non-negative activations, diverging (white at 0)
for signed values and gradients, one scale per layer so channels compare.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from cnnviz.gui.widgets.colormaps import Scale, colorize, scale_for
from cnnviz.gui.widgets import theme

GAP_RGBA = np.array([200, 200, 200, 255], np.uint8)


def as_maps(a: np.ndarray) -> np.ndarray:
    """One sample's layer output -> (M, H, W): channels of a conv map, or a
    vector laid out as a near-square single map (padded with NaN)."""
    a = np.asarray(a, np.float32)
    if a.ndim == 3:
        return a
    if a.ndim == 2:
        return a[None]
    v = a.reshape(-1)
    cols = int(np.ceil(np.sqrt(v.size)))
    rows = int(np.ceil(v.size / cols))
    out = np.full(rows * cols, np.nan, np.float32)
    out[:v.size] = v
    return out.reshape(1, rows, cols)


def mosaic(maps: np.ndarray, columns: int, scale: Scale, gap: int = 1) -> np.ndarray:
    """(M, H, W) -> (rows*(H+gap)-gap, columns*(W+gap)-gap, 4) uint8 RGBA."""
    m, h, w = maps.shape
    rows = (m + columns - 1) // columns
    out = np.empty((rows * (h + gap) - gap, columns * (w + gap) - gap, 4), np.uint8)
    out[:] = GAP_RGBA
    rgba = colorize(maps.reshape(m * h, w).astype(np.float32, copy=True), scale)
    rgba = rgba.reshape(m, h, w, 4)
    nan = np.isnan(maps)
    if nan.any():
        rgba[nan] = GAP_RGBA   # the padding of a vector laid out as a square
    for i in range(m):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = rgba[i]
    return out


def colour_tiles(image: np.ndarray, gap: int = 1) -> np.ndarray:
    """(3, H, W) in [0, 1] -> a 2x2 RGBA mosaic: the image in colour, then its
    red, green and blue channels, each drawn from black to its own colour
    (what the first layer's kernels see, one input channel each)."""
    image = np.asarray(image, np.float32)
    tiles = [image] + [image * np.eye(3, dtype=np.float32)[k][:, None, None] for k in range(3)]
    return rgb_mosaic(np.stack(tiles), 2, gap)


def rgb_mosaic(images: np.ndarray, columns: int, gap: int = 1) -> np.ndarray:
    """(M, 3, H, W) in [0, 1] -> one RGBA mosaic of the M colour images."""
    m, _, h, w = images.shape
    rows = (m + columns - 1) // columns
    out = np.empty((rows * (h + gap) - gap, columns * (w + gap) - gap, 4), np.uint8)
    out[:] = GAP_RGBA
    rgb = np.round(np.clip(images, 0, 1).transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    for i in range(m):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w, :3] = rgb[i]
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w, 3] = 255
    return out


def kernels_as_colour(weights: np.ndarray) -> np.ndarray:
    """Colour kernels (out, 3, kh, kw) as pictures in [0, 1], one scale for
    all, mid-grey at 0 (as AlexNet's first layer is usually shown): a pixel
    is red where the kernel weighs the red channel up and the others down."""
    m = float(np.abs(weights).max()) or 1.0
    return 0.5 + np.asarray(weights, np.float32) / np.float32(2 * m)


def columns_for(m: int) -> int:
    return max(1, int(np.ceil(np.sqrt(m))))


class MosaicView:
    """A title, a view box and one image: a layer's channels as a mosaic."""

    def __init__(self, layout: pg.GraphicsLayout, row: int, col: int):
        self.title = layout.addLabel("", row=row, col=col, size=theme.TITLE_SIZE,
                                     color=theme.FOREGROUND)
        self.view = layout.addViewBox(row=row + 1, col=col, lockAspect=True, invertY=True,
                                      enableMouse=False)
        self.view.setBorder(pg.mkPen(theme.FRAME))
        self.view.setMinimumSize(40, 40)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self._shape = None
        self.data = None       # the maps last shown, (M, H, W)
        self.scale = None

    def show(self, maps: np.ndarray, title: str, signed: bool | None = None,
             columns: int | None = None) -> None:
        maps = as_maps(maps)
        self.scale = scale_for(maps, signed)
        self.data = maps
        cols = columns or columns_for(len(maps))
        self._set_rgba(mosaic(maps, cols, self.scale), title)

    def show_colour(self, image: np.ndarray, title: str) -> None:
        """A colour image (3, H, W) in [0, 1] as itself beside its red, green
        and blue channels (colour_tiles), not as three grey maps."""
        self.data = np.asarray(image, np.float32)
        self.scale = None
        self._set_rgba(colour_tiles(self.data), title)

    def show_colour_kernels(self, weights: np.ndarray, title: str) -> None:
        """A first layer's colour kernels (out, 3, kh, kw), each as one colour picture."""
        self.data = np.asarray(weights, np.float32)
        self.scale = None
        self._set_rgba(rgb_mosaic(kernels_as_colour(self.data), columns_for(len(self.data))),
                       title)

    def _set_rgba(self, rgba: np.ndarray, title: str) -> None:
        self.image.setImage(rgba, autoLevels=False, levels=(0, 255))
        if title != self.title.text:      # a label's re-layout costs more than the image
            self.title.setText(title)
        if rgba.shape != self._shape:
            self._shape = rgba.shape
            self.view.setRange(xRange=(0, rgba.shape[1]), yRange=(0, rgba.shape[0]),
                               padding=0.02)
