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
    def __init__(self, parent=None, max_columns: int = 2, show_bars: bool = True):
        super().__init__(parent, max_columns, show_bars)
        # the panel above already says what this is: the grid's own (empty)
        # header row would only take height from the maps
        self.ci.removeItem(self.header)
        self.header.hide()
    @staticmethod
    def _update_bar(bar: pg.ColorBarItem, scale: Scale) -> None:
        if getattr(bar, "_signed", None) != scale.signed:
            bar.setColorMap(cached_colormap(scale))
            bar._signed = scale.signed
        bar.setLevels((scale.lo, scale.hi))

    def reset_view(self) -> None:
        # why auto-range instead of one autoRange() call: tiles are built before
        # the layout gives them their final size; a one-off fit made then leaves
        # the maps tiny. Auto-range keeps fitting until the user zooms or pans.
        for view in self.views:
            view.setDefaultPadding(0.02)
            view.enableAutoRange(enable=True)

    def _build(self, count: int, per_tile_bars: bool) -> None:
        # why unlinked: linked, aspect-locked views fight each other's auto-range
        # while the layout settles and end up showing a corner of each map. The
        # stepper's tiles all have the same shape, so each fitting itself gives
        # the same picture.
        super()._build(count, per_tile_bars)
        for tile in self.tiles[1:]:
            tile.view.setXLink(None)
            tile.view.setYLink(None)

    def prepare(self, count: int) -> None:
        """Build ``count`` tiles now (shared scale), so the first real draw
        only fills them: the stepper does this while idle, before the learner
        steps there."""
        if self._structure != (count, False, True):
            self._build(count, per_tile_bars=False)
            self._structure = (count, False, True)
            self.reset_view()
