"""A grid of feature maps under one header, each with a title, a colour bar and
the value under the cursor.

Reusable by every tab::

    grid = FeatureMapGrid(max_columns=2)
    grid.set_maps(maps, titles, header="conv1: (1, 6, 24, 24)")   # maps (M, H, W)
    grid.tile_clicked.connect(lambda tile, row, col: ...)

Maps are placed in "view coordinates": by default pixel (r, c) covers
[c, c+1) x [r, r+1); ``origin`` and ``pixel_size`` put a layer's output on its
input's coordinates so several grids can zoom and pan together (ViewLink).
Colour: diverging centred at 0 for signed data, grey for non-negative, one
scale shared by all tiles or one per tile (see ``render_maps``).
"""

from __future__ import annotations

import re

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QImage

from cnnviz.atomic import atomic_save_npy, save_failure_message
from cnnviz.gui.widgets.colormaps import Scale, colorize
from cnnviz.gui.widgets.png_export import save_png
from cnnviz.gui.widgets.rendered_maps import RenderedMaps, render_maps
from cnnviz.gui.widgets import theme


_COLORMAPS: dict[str, pg.ColorMap] = {}
HEADER_HEIGHT = 40      # the grid's header line and margins, px


def _colormap(scale: Scale) -> pg.ColorMap:
    # building a 256-stop ColorMap costs milliseconds: once per kind is enough
    if scale.name not in _COLORMAPS:
        lut = scale.lut
        _COLORMAPS[scale.name] = pg.ColorMap(np.linspace(0, 1, len(lut)), lut)
    return _COLORMAPS[scale.name]


def _set_label(label: pg.LabelItem, text: str) -> None:
    if label.text != text:   # setText re-lays out HTML: skip it when nothing changed
        label.setText(text)


def _slug(text: str) -> str:
    """Lower-case letters, digits and single underscores: safe in any file name."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def format_value(v: float) -> str:
    return f"{v:.4g}"


class _Tile:
    """One map: title, view box with the image, optional colour bar."""

    def __init__(self, grid: "FeatureMapGrid", index: int, with_bar: bool):
        self.layout = pg.GraphicsLayout()
        self.layout.setContentsMargins(2, 2, 2, 2)
        self.layout.setSpacing(1)
        self.title = self.layout.addLabel("", row=0, col=0, colspan=2, size=theme.TITLE_SIZE,
                                          color=theme.FOREGROUND)
        self.view = self.layout.addViewBox(row=1, col=0, lockAspect=True, invertY=True,
                                           enableMenu=True)
        self.view.setMinimumSize(60, 60)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.bar = None
        if with_bar:
            self.bar = grid.make_bar()
            self.layout.addItem(self.bar, row=1, col=1)
        self.overlays: list = []
        for label, kind in (("Export map as PNG...", "png"), ("Export map as .npy...", "npy")):
            action = self.view.menu.addAction(label)
            action.triggered.connect(lambda _=False, k=kind: grid.export_tile_dialog(index, k))


class FeatureMapGrid(pg.GraphicsLayoutWidget):
    tile_clicked = pyqtSignal(int, int, int)        # tile, row, col of the map pixel
    hovered = pyqtSignal(float, float)              # cursor in view coordinates (x, y)
    hover_left = pyqtSignal()

    def __init__(self, parent=None, max_columns: int = 2, show_bars: bool = True,
                 min_tile_height: int = 0):
        """min_tile_height: the grid asks for that much height per row of tiles
        (for a parent that scrolls); 0 lets tiles shrink with the widget."""
        super().__init__(parent)
        self.min_tile_height = min_tile_height
        self.setBackground(theme.BACKGROUND)
        self.max_columns = max_columns
        self.show_bars = show_bars
        self.ci.setContentsMargins(4, 4, 4, 4)
        self.header = self.ci.addLabel("", row=0, col=0, size=theme.HEADER_SIZE,
                                       color=theme.FOREGROUND, bold=True)
        self.body = self.ci.addLayout(row=1, col=0)
        self.rendered: RenderedMaps | None = None
        self.tiles: list[_Tile] = []
        self.shared_bar = None
        self.origin = (0.0, 0.0)
        self.pixel_size = (1.0, 1.0)
        self._titles: list[str] = []
        self._structure = None
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.scene().sigMouseClicked.connect(self._on_mouse_clicked)

    # --- content --------------------------------------------------------------------
    def set_maps(self, maps: np.ndarray, titles: list[str] | None = None, *, header: str = "",
                 shared_scale: bool = True, signed: bool | None = None, rgb: bool = False,
                 origin=(0.0, 0.0), pixel_size=(1.0, 1.0)) -> None:
        self.set_rendered(render_maps(maps, titles, shared_scale=shared_scale, signed=signed,
                                      rgb=rgb), header=header, origin=origin,
                          pixel_size=pixel_size)

    def set_rendered(self, rendered: RenderedMaps, *, header: str = "", origin=(0.0, 0.0),
                     pixel_size=(1.0, 1.0)) -> bool:
        """Show rendered maps; True when the tiles were rebuilt (views reset)."""
        structure = (rendered.tile_count, rendered.rgb, rendered.shared_scale)
        rebuilt = structure != self._structure
        if rebuilt:
            self._build(rendered.tile_count, per_tile_bars=not rendered.shared_scale
                        and not rendered.rgb)
            self._structure = structure
        self.rendered = rendered
        self.origin, self.pixel_size = tuple(origin), tuple(pixel_size)
        _set_label(self.header, header)
        self._titles = list(rendered.titles)
        for i, tile in enumerate(self.tiles):
            image = rendered.images[i]
            tile.image.setImage(image, autoLevels=False)
            if tile.image.levels is not None:
                tile.image.setLevels(None)   # finished RGBA: pyqtgraph shows it without a copy
            rect = self._image_rect(image, rendered.step)
            if tile.image.mapRectToParent(tile.image.boundingRect()) != rect:
                tile.image.setRect(rect)
            _set_label(tile.title, self._titles[i])
            if tile.bar is not None:
                self._update_bar(tile.bar, rendered.scales[i])
        if self.shared_bar is not None:
            self._update_bar(self.shared_bar, rendered.scales[0])
        if rebuilt:
            self.reset_view()
        return rebuilt

    def _image_rect(self, image: np.ndarray, step: int) -> QRectF:
        """Where an image goes in view coordinates: its pixel (r, c) covers the
        map pixels from (r*step, c*step) on (an image of every step-th map
        pixel overhangs the map's far edges by less than ``step`` pixels)."""
        h, w = image.shape[:2]
        return QRectF(self.origin[0], self.origin[1], w * step * self.pixel_size[0],
                      h * step * self.pixel_size[1])

    def clear_maps(self, header: str = "") -> None:
        self.body.clear()
        self.tiles, self.shared_bar, self.rendered, self._structure = [], None, None, None
        self.header.setText(header)

    def _build(self, count: int, per_tile_bars: bool) -> None:
        self.clear_overlays()
        # a fresh body: clear() leaves the old rows' heights in the grid layout, so
        # after 12 maps one map sat pushed down and clipped
        self.ci.removeItem(self.body)
        self.body = self.ci.addLayout(row=1, col=0)
        columns = max(1, min(self.max_columns, count))
        rows = max(1, (count + columns - 1) // columns)
        if self.min_tile_height:   # every row readable; the parent scrolls when needed
            self.setMinimumHeight(HEADER_HEIGHT + rows * self.min_tile_height)
        self.tiles = []
        for i in range(count):
            tile = _Tile(self, i, with_bar=self.show_bars and per_tile_bars)
            self.body.addItem(tile.layout, row=i // columns, col=i % columns)
            self.tiles.append(tile)
        self.shared_bar = None
        if self.show_bars and not per_tile_bars and count:
            self.shared_bar = self.make_bar()
            self.body.addItem(self.shared_bar, row=0, col=columns, rowspan=rows)
        if count > 1:
            first = self.tiles[0].view
            for tile in self.tiles[1:]:
                tile.view.setXLink(first)
                tile.view.setYLink(first)

    def make_bar(self) -> pg.ColorBarItem:
        bar = pg.ColorBarItem(values=(0, 1), width=12, interactive=False, colorMapMenu=False,
                              pen=theme.FRAME)
        axis = bar.getAxis("right")
        axis.setTextPen(theme.FOREGROUND)
        axis.setPen(theme.FRAME)
        # Major ticks only: a new value range (every kernel edit) re-lays out
        # the axis, and each tick label costs text layout (~1.5 ms an axis
        # with the minor ticks' labels, a third of an edit's drawing time).
        axis.setStyle(maxTickLevel=0, maxTextLevel=0)
        return bar

    @staticmethod
    def _update_bar(bar: pg.ColorBarItem, scale: Scale) -> None:
        cmap = _colormap(scale)
        if bar.colorMap() is not cmap:
            bar.setColorMap(cmap)
        if tuple(bar.levels()) != (scale.lo, scale.hi):
            bar.setLevels((scale.lo, scale.hi))

    # --- views ----------------------------------------------------------------------
    @property
    def views(self) -> list[pg.ViewBox]:
        return [t.view for t in self.tiles]

    def reset_view(self) -> None:
        if self.tiles:
            self.tiles[0].view.autoRange(padding=0.02)

    def view_to_pixel(self, x: float, y: float) -> tuple[int, int] | None:
        """Map pixel (row, col) under view point (x, y), or None outside the map."""
        if self.rendered is None:
            return None
        col = int(np.floor((x - self.origin[0]) / self.pixel_size[0]))
        row = int(np.floor((y - self.origin[1]) / self.pixel_size[1]))
        h, w = self.rendered.map_shape
        return (row, col) if 0 <= row < h and 0 <= col < w else None

    def pixel_centre(self, row: float, col: float) -> tuple[float, float]:
        """View coordinates (x, y) of a map pixel's centre (any row/col, even outside)."""
        return (self.origin[0] + (col + 0.5) * self.pixel_size[0],
                self.origin[1] + (row + 0.5) * self.pixel_size[1])

    def _tile_at(self, scene_pos) -> tuple[int, QPointF] | None:
        for i, tile in enumerate(self.tiles):
            if tile.view.sceneBoundingRect().contains(scene_pos):
                return i, tile.view.mapSceneToView(scene_pos)
        return None

    # --- values under the cursor -----------------------------------------------------
    def value_text(self, tile: int, row: int, col: int) -> str:
        r = self.rendered
        if r.rgb:
            return " ".join(f"{n} {format_value(r.data[k, row, col])}" for k, n in
                            enumerate("RGB"))
        return format_value(float(r.data[tile, row, col]))

    def show_values_at(self, x: float, y: float) -> str:
        """Put the value at view point (x, y) into every tile's title; returns a
        one-line description (for a status bar), empty outside the maps."""
        pixel = self.view_to_pixel(x, y)
        parts = []
        for i, tile in enumerate(self.tiles):
            if pixel is None:
                _set_label(tile.title, self._titles[i])
                continue
            text = self.value_text(i, *pixel)
            _set_label(tile.title, f"{self._titles[i]}  [{pixel[0]}, {pixel[1]}] = {text}")
            parts.append(f"{self._titles[i]} = {text}")
        if pixel is None:
            return ""
        return f"{self.header.text}  [{pixel[0]}, {pixel[1]}]  " + ";  ".join(parts)

    def _on_mouse_moved(self, scene_pos) -> None:
        hit = self._tile_at(scene_pos)
        if hit is None:
            self.hover_left.emit()
            return
        point = hit[1]
        self.hovered.emit(point.x(), point.y())

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        hit = self._tile_at(event.scenePos())
        if hit is None:
            return
        pixel = self.view_to_pixel(hit[1].x(), hit[1].y())
        if pixel is not None:
            self.tile_clicked.emit(hit[0], *pixel)

    # --- overlays (highlights) --------------------------------------------------------
    def clear_overlays(self) -> None:
        for tile in self.tiles:
            for item in tile.overlays:
                tile.view.removeItem(item)
            tile.overlays = []

    def add_overlay(self, tile: int, item) -> None:
        self.tiles[tile].view.addItem(item, ignoreBounds=True)
        self.tiles[tile].overlays.append(item)

    def mark_cells(self, tile: int, cells, pen, brush=None) -> pg.ScatterPlotItem:
        """Outline map pixels (row, col), which may lie outside the map (padding)."""
        cells = list(cells)
        centres = [self.pixel_centre(r, c) for r, c in cells]
        size = min(self.pixel_size) * 0.92
        item = pg.ScatterPlotItem(
            pos=np.array(centres, dtype=float).reshape(-1, 2), symbol="s", size=size,
            pxMode=False, pen=pen, brush=brush if brush is not None else pg.mkBrush(None))
        self.add_overlay(tile, item)
        return item

    # --- export -------------------------------------------------------------------------
    def tile_data(self, tile: int) -> np.ndarray:
        r = self.rendered
        return r.data.copy() if r.rgb else r.data[tile].copy()

    def tile_image(self, tile: int) -> np.ndarray:
        """The tile's RGBA image at the map's full size (a tile drawn from every
        step-th pixel is coloured again from all of them)."""
        r = self.rendered
        if r.step == 1:
            return np.ascontiguousarray(r.images[tile])
        return colorize(r.data[tile], r.scales[tile])

    def save_tile_png(self, tile: int, path: str) -> None:
        rgba = self.tile_image(tile)
        h, w = rgba.shape[:2]
        save_png(QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888), path)

    def save_tile_npy(self, tile: int, path: str) -> None:
        atomic_save_npy(path, self.tile_data(tile))      # exactly ``path``, atomically

    def tile_export_name(self, tile: int, kind: str) -> str:
        """A default file name saying what the file holds: the stage (from the header),
        the map's title and its number, e.g. ``conv_sobel_x_map1.npy``, ``relu_blur_r_map6.png``."""
        stage = self.header.text.split(":")[0].split(" (")[0]
        title = _slug(self._titles[tile]) if tile < len(self._titles) else ""
        parts = [_slug(stage) or "map"] + ([title] if title else []) + [f"map{tile + 1}"]
        return "_".join(parts) + f".{kind}"

    def export_tile_dialog(self, tile: int, kind: str) -> None:
        from PyQt6.QtWidgets import QMessageBox

        from cnnviz.gui.widgets.file_dialogs import ask_save_path

        name = self.tile_export_name(tile, kind)
        if kind == "png":
            path = ask_save_path(self, "Export map as PNG", "PNG image (*.png)", name, ".png")
        else:
            path = ask_save_path(self, "Export map as .npy", "NumPy array (*.npy)", name, ".npy")
        if not path:
            return
        try:
            (self.save_tile_png if kind == "png" else self.save_tile_npy)(tile, path)
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", save_failure_message(path, exc))
