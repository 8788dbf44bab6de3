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
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtWidgets import QGraphicsItem, QMenu

from cnnviz.gui.stepper.settle import register_view
from cnnviz.gui.widgets.colormaps import Scale
from cnnviz.gui.widgets.feature_map_grid import FeatureMapGrid

_COLORMAPS: dict[bool, pg.ColorMap] = {}


def cached_colormap(scale: Scale) -> pg.ColorMap:
    cmap = _COLORMAPS.get(scale.signed)
    if cmap is None:
        lut = scale.lut
        cmap = _COLORMAPS[scale.signed] = pg.ColorMap(np.linspace(0, 1, len(lut)), lut)
    return cmap


def _pin_size(label: pg.LabelItem) -> None:
    """A tile title whose text does not size its column: one line high, no width
    of its own, text beyond the tile clipped. Why: pyqtgraph sizes a title to its
    text, so a ReLU map's "5 (all 0)" or a hovered value re-laid out the whole
    grid, every tile's view resized by a fraction of a pixel (32 views at
    relu2, ~10 ms a step); the status line shows a hovered value in full."""
    height = label.itemRect().height()
    hint = {Qt.SizeHint.MinimumSize: (0, height), Qt.SizeHint.PreferredSize: (0, height),
            Qt.SizeHint.MaximumSize: (-1, -1), Qt.SizeHint.MinimumDescent: (0, 0)}

    def update_min():
        label.setMinimumWidth(0)
        label.setMinimumHeight(height)
        label._sizeHint = hint

    label.updateMin = update_min      # what pyqtgraph calls after each text or resize
    label.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)
    update_min()
    label.updateGeometry()


class StepperMapGrid(FeatureMapGrid):
    def __init__(self, parent=None, max_columns: int = 2, show_bars: bool = True):
        super().__init__(parent, max_columns, show_bars)
        # the panel above already says what this is: the grid's own (empty)
        # header row would only take height from the maps
        self.ci.removeItem(self.header)
        self.header.hide()
        # a tile's export file name (the panel sets it from what it holds)
        self.file_name_for = lambda tile: f"map_{tile}"
        self._fitted = None          # the maps' rectangle the views were last fitted to
        register_view(self)

    def _own_menu(self, index: int) -> QMenu:
        """The tile's right-click menu: this program's actions only (pyqtgraph's
        own menu offers "View All", "Mouse Mode", "Export..." on plot internals)."""
        menu = QMenu(self)
        menu.addAction("Reset zoom", self.reset_view)
        menu.addSeparator()
        menu.addAction("Export map as PNG...", lambda: self.export_tile_dialog(index, "png"))
        menu.addAction("Export map as .npy...", lambda: self.export_tile_dialog(index, "npy"))
        return menu

    def export_tile_dialog(self, tile: int, kind: str) -> None:
        from PyQt6.QtWidgets import QMessageBox

        from cnnviz.gui.widgets.file_dialogs import ask_save_path

        name = f"{self.file_name_for(tile)}.{kind}"
        filt = "PNG image (*.png)" if kind == "png" else "NumPy array (*.npy)"
        title = "Export map as PNG" if kind == "png" else "Export map as .npy"
        path = ask_save_path(self, title, filt, name, f".{kind}")
        if not path:
            return
        try:
            (self.save_tile_png if kind == "png" else self.save_tile_npy)(tile, path)
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", f"Could not export the map:\n{exc}")
    @staticmethod
    def _update_bar(bar: pg.ColorBarItem, scale: Scale) -> None:
        if getattr(bar, "_signed", None) != scale.signed:
            bar.setColorMap(cached_colormap(scale))
            bar._signed = scale.signed
        bar.setLevels((scale.lo, scale.hi))

    def reset_view(self) -> None:
        # why a fixed range, not pyqtgraph's auto-range: auto-range re-fits in
        # every paint (prepareForPaint), and each fit that moves the view by a
        # hair marks the scene dirty again, so a step painted its grids 2-3
        # times. The stepper knows the maps' rectangle: the range is set to it
        # (with the margin auto-range kept) and the aspect-locked view keeps it
        # fitted through any later resize. It is set again only when the maps'
        # shape changes or "Reset zoom" is chosen, so a user's zoom stays.
        self._fitted = None
        self._fit_views()

    def _fit_views(self) -> None:
        rendered = getattr(self, "rendered", None)
        if rendered is None:
            return
        h, w = rendered.map_shape
        rect = QRectF(self.origin[0], self.origin[1], w * self.pixel_size[0],
                      h * self.pixel_size[1])
        if rect == self._fitted:
            return
        self._fitted = rect
        for view in self.views:
            view.enableAutoRange(enable=False)
            view.setRange(rect=rect, padding=0.02)

    def set_rendered(self, rendered, **kwargs) -> bool:
        rebuilt = super().set_rendered(rendered, **kwargs)
        self._fit_views()
        return rebuilt

    def _build(self, count: int, per_tile_bars: bool) -> None:
        # why unlinked: linked, aspect-locked views fight each other's auto-range
        # while the layout settles and end up showing a corner of each map. The
        # stepper's tiles all have the same shape, so each fitting itself gives
        # the same picture.
        super()._build(count, per_tile_bars)
        for tile in self.tiles[1:]:
            tile.view.setXLink(None)
            tile.view.setYLink(None)
        for i, tile in enumerate(self.tiles):
            # a title's text drawn once into a pixmap, then copied: laying out
            # and drawing 16 titles' text was most of a 16-map grid's paint
            tile.title.item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            _pin_size(tile.title)
            tile.menu = self._own_menu(i)
            tile.view.raiseContextMenu = (
                lambda ev, m=tile.menu: m.popup(ev.screenPos().toPoint()))

    def prepare(self, count: int) -> None:
        """Build ``count`` tiles now (shared scale), so the first real draw
        only fills them: the stepper does this while idle, before the learner
        steps there."""
        if self._structure != (count, False, True):
            self._build(count, per_tile_bars=False)
            self._structure = (count, False, True)
            self.reset_view()
