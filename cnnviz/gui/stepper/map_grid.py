"""The Kernel Lab's FeatureMapGrid with its colour-bar maps built once.

``FeatureMapGrid._update_bar`` builds a fresh pyqtgraph ColorMap (256 mkColor
calls, ~17 ms) on every redraw; the stepper redraws several grids per step,
which alone would blow its 50 ms budget. There are only two colour maps
(grey, diverging), so they are cached here. A subclass in this package rather
than an edit of cnnviz/gui/widgets, which belongs to the Kernel Lab.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from cnnviz.gui.widgets.colormaps import Scale
from cnnviz.gui.widgets.feature_map_grid import FeatureMapGrid

_COLORMAPS: dict[bool, pg.ColorMap] = {}


def cached_colormap(scale: Scale) -> pg.ColorMap:
    cmap = _COLORMAPS.get(scale.signed)
    if cmap is None:
        lut = scale.lut
        cmap = _COLORMAPS[scale.signed] = pg.ColorMap(np.linspace(0, 1, len(lut)), lut)
    return cmap


class StepperMapGrid(FeatureMapGrid):
    @staticmethod
    def _update_bar(bar: pg.ColorBarItem, scale: Scale) -> None:
        if getattr(bar, "_signed", None) != scale.signed:
            bar.setColorMap(cached_colormap(scale))
            bar._signed = scale.signed
        bar.setLevels((scale.lo, scale.hi))
