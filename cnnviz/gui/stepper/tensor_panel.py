"""One named tensor on screen: maps as images (hover for values) or, when the
maps are small enough, as tables of numbers in the same colours; export of the
whole tensor as .npy or NumPy text.

A panel either fills the room it is given (the main panels) or, with
``fit=True`` (the side tabs' stacks), takes the height its content needs at
its width, so the one scroll area around the stack reaches every map and
every table cell."""

from __future__ import annotations

import re

import numpy as np
from PyQt6.QtCore import QEvent, Qt, pyqtSignal
from PyQt6.QtWidgets import (QApplication, QCheckBox, QHBoxLayout, QLabel, QMenu, QMessageBox,
                             QScrollArea, QSizePolicy, QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from cnnviz.atomic import atomic_save_npy, atomic_savetxt, save_failure_message
from cnnviz.gui.stepper.number_table import (MAX_TABLE_SIDE, MAX_TABLE_VALUES, MapTables,
                                             fits_table, number_text)
from cnnviz.gui.stepper.map_grid import StepperMapGrid as FeatureMapGrid
from cnnviz.gui.widgets.rendered_maps import render_maps

GUTTER_RGBA = (150, 150, 150, 255)      # the lines between a mosaic's kernels
FIT_MIN_TILE = 100                      # px: narrowest tile a fitted panel draws
FIT_MAX_PIXEL = 10                      # px per map pixel at most for large maps (a mosaic)
FIT_MAX_TILE = 160                      # px: small maps are drawn up to this high
FIT_TILE_TITLE = 40                     # px of a tile's title row and margins
FIT_GRID_MARGIN = 12                    # px around the tiles


def file_stem(text: str) -> str:
    """A file name from what a panel holds: "δ = dL/d(conv2 output)" ->
    "delta_dL_d_conv2_output"."""
    text = text.replace("\u03b4", "delta").replace("@", "at")
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "tensor"


def mosaic_cell(row: int, col: int, kernel: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(filter, channel, row, col) of a kernel_mosaic pixel; None on a gutter line."""
    kh, kw = kernel
    o, r = divmod(row, kh + 1)
    c, k = divmod(col, kw + 1)
    return None if r == kh or k == kw else (o, c, r, k)


def save_tensor_text(tensor: np.ndarray, path) -> None:
    """NumPy text: 2-D as is, higher ranks as rows of the last axis, with the
    shape in the header so ``np.loadtxt(path).reshape(shape)`` restores it."""
    t = np.asarray(tensor)
    rows = t.reshape(1, -1) if t.ndim < 2 else t.reshape(-1, t.shape[-1])
    atomic_savetxt(path, rows, fmt="%.9g", header=f"shape {tuple(t.shape)}, C order")


class TensorPanel(QWidget):
    cell_edited = pyqtSignal(int, int, int, float)   # map, row, col, value
    hover_text = pyqtSignal(str)

    def __init__(self, title: str, parent=None, max_columns: int = 4, fit: bool = False):
        super().__init__(parent)
        self.title = title
        self.fit = fit
        self.stem = ""                 # export file name without extension ("" = from title)
        self.mosaic: tuple[int, int] | None = None   # kernel (kh, kw) of a kernel mosaic
        self.tensor: np.ndarray | None = None
        self.rendered = None
        self.prefer_numbers = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        # row 1: what it is (full width); row 2: its colour scale and the controls
        self.header = QLabel(title)
        self.header.setStyleSheet("font-weight: bold;")
        # why Ignored + word wrap: a long header must not widen the panel, and is
        # shown whole on as many lines as it needs
        self.header.setWordWrap(True)
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.header)
        second = QHBoxLayout()
        self.scale_label = QLabel()
        self.scale_label.setStyleSheet("color: #555;")
        self.scale_label.setWordWrap(True)
        self.scale_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        second.addWidget(self.scale_label, 1)
        self.numbers = QCheckBox("Numbers")
        self.numbers.setToolTip(f"Show every value as a table (maps of at most "
                                f"{MAX_TABLE_SIDE}x{MAX_TABLE_SIDE})")
        self.numbers.toggled.connect(lambda _: self._show_mode())
        second.addWidget(self.numbers)
        self.export = QToolButton(text="Export")
        self.export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export)
        menu.addAction("Tensor as .npy...", lambda: self._export_dialog("npy"))
        menu.addAction("Tensor as NumPy text...", lambda: self._export_dialog("txt"))
        self.export.setMenu(menu)
        self.export.setToolTip("Save the whole tensor shown here")
        second.addWidget(self.export)
        layout.addLayout(second)
        self.stack = QStackedWidget()
        self.max_columns = max_columns
        # why a grid per layout: building pyqtgraph tiles costs far more than
        # filling them, and stepping alternates between a few layouts (6, 16, 1
        # maps ...), so each layout is built once and reused
        self.grids: dict[tuple, FeatureMapGrid] = {}
        self.grid = self._grid_for((1, True))
        self.tables = MapTables(columns=max_columns)
        self.tables.cell_edited.connect(self.cell_edited)
        self.table_page = QScrollArea()
        self.table_page.setWidgetResizable(True)
        self.table_page.setWidget(self.tables)
        if fit:
            # the side tab's scroll area scrolls; this page only shows the tables whole
            for policy in (self.table_page.setHorizontalScrollBarPolicy,
                           self.table_page.setVerticalScrollBarPolicy):
                policy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.table_page.setFrameShape(QScrollArea.Shape.NoFrame)
        self.stack.addWidget(self.table_page)
        self.empty_page = QLabel()
        self.empty_page.setWordWrap(True)
        self.empty_page.setStyleSheet("color: #555; padding: 12px;")
        self.stack.addWidget(self.empty_page)
        layout.addWidget(self.stack, 1)
        self.editable = False
        self.edit_target: tuple | None = None     # what a cell edit changes (set by the tab)
        self.set_empty("")

    def _columns(self, count: int, map_shape) -> int:
        """Columns that give the largest tiles in the panel's current size."""
        w, h = max(self.stack.width(), 100), max(self.stack.height(), 100)
        mh, mw = map_shape
        best, best_side = 1, 0.0
        for cols in range(1, count + 1):
            rows = -(-count // cols)
            # ~22 px per tile go to its title; the map keeps its aspect ratio
            side = min((w / cols - 8) / mw, (h / rows - 30) / mh)
            if side > best_side:
                best, best_side = cols, side
        return best

    def _fit_layout(self, count: int, map_shape, titles=()) -> tuple[int, int]:
        """Fitted panels: (columns, grid height in px) for ``count`` tiles at the
        panel's width; tiles at least FIT_MIN_TILE px wide, at most
        FIT_MAX_TILE px high unless that leaves less than FIT_MAX_PIXEL px per
        map pixel (a 95x35 kernel mosaic: 10 px, about 950 px high)."""
        mh, mw = map_shape
        # a tile is at least as wide as its title ("after - before [0,0]")
        metrics = self.fontMetrics()
        tile = max([FIT_MIN_TILE] + [metrics.horizontalAdvance(t) + 24 for t in titles])
        width = max(self.width() - FIT_GRID_MARGIN, tile)
        columns = max(1, min(count, width // tile))
        pixel = min((width / columns - 12) / mw, max(FIT_MAX_PIXEL, FIT_MAX_TILE / mh))
        rows = -(-count // columns)
        return columns, int(rows * (pixel * mh + FIT_TILE_TITLE) + FIT_GRID_MARGIN)

    def _grid_for(self, key: tuple, map_shape=(1, 1)) -> FeatureMapGrid:
        grid = self.grids.get(key)
        if grid is None:
            # no colour bars: their axes cost more to paint than the maps; the
            # header states the scale instead
            if len(key) > 2:
                columns = key[2]
            else:
                columns = self._columns(key[0], map_shape) if key[0] > 1 else 1
            grid = FeatureMapGrid(max_columns=columns, show_bars=False)
            grid.file_name_for = lambda i, g=grid: self.tile_file_stem(g, i)
            grid.hovered.connect(lambda x, y, g=grid: self._on_hover(g, x, y))
            self.grids[key] = grid
            self.stack.addWidget(grid)
        return grid

    def prepare(self, count: int, map_shape) -> None:
        """Build the grid for ``count`` maps ahead of time (see StepperMapGrid.prepare),
        titled as a tensor's maps are ("0", "1", ...), and lay it out at the
        panel's size by showing it once: a grid's first show resized and laid
        out every tile and title (15-40 ms of a first visit at 16 maps)."""
        grid = self._grid_for((count, True), map_shape)
        grid.prepare(count)
        if count > 1:
            for i, tile in enumerate(grid.tiles):
                if tile.title.text != str(i):
                    tile.title.setText(str(i))
        if self.isVisible() and not grid.property("laid_out"):
            grid.setProperty("laid_out", True)
            shown = self.stack.currentWidget()
            if shown is not grid:
                self.stack.setCurrentWidget(grid)
                QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
                self.stack.setCurrentWidget(shown)

    def set_empty(self, message: str) -> None:
        self.tensor, self.rendered, self.header_text, self._signed = None, None, "", None
        self.mosaic = None
        self.header.setText(self.title)
        self.scale_label.setText("")
        self.empty_page.setText(message)
        # the grids are kept (rebuilding tiles is what costs): just show the empty page
        self.stack.setCurrentWidget(self.empty_page)
        self.numbers.setEnabled(False)
        self.export.setEnabled(False)
        if self.fit:
            self.stack.setFixedHeight(max(40, self.empty_page.heightForWidth(
                max(self.width(), 100))))

    def reset_numbers(self, on: bool) -> None:
        """A new network or input: Numbers as this kind of network starts (lessons
        on, models off), not as the previous one left it."""
        self.prefer_numbers = on
        self.numbers.blockSignals(True)
        self.numbers.setChecked(on)
        self.numbers.blockSignals(False)
        self._show_mode()

    def show_maps(self, tensor: np.ndarray, maps: np.ndarray, titles: list[str], header: str,
                  signed: bool | None = None, editable: bool = False,
                  shared_scale: bool = True, stem: str = "", mosaic=None,
                  numbers: bool = False) -> None:
        """tensor: what export saves; maps (M, H, W): what is drawn. stem: the
        export's file name; mosaic: (kh, kw) when maps are kernel mosaics
        (gutter lines drawn, hover names the kernel cell); numbers: show as a
        table whenever the maps fit one (vectors)."""
        old = self.rendered
        mosaic = tuple(mosaic) if mosaic is not None else None
        self.stem = stem
        if (old is not None and old.titles == list(titles) and self.header_text == header
                and old.shared_scale == shared_scale and editable == self.editable
                and old.data.shape == maps.shape and np.array_equal(old.data, maps)
                and self._signed == signed and self.mosaic == mosaic):
            self.tensor = tensor
            return                     # unchanged: skip the redraw
        self.tensor = tensor
        self.mosaic = mosaic
        self.editable = editable
        self._signed = signed
        self.header_text = header
        self.rendered = rendered = render_maps(maps, titles, shared_scale=shared_scale,
                                               signed=signed)
        if mosaic is not None:
            gutter = np.zeros(maps.shape[1:], bool)
            gutter[mosaic[0]::mosaic[0] + 1, :] = True
            gutter[:, mosaic[1]::mosaic[1] + 1] = True
            for image in rendered.images:
                image[gutter] = GUTTER_RGBA
        scale = rendered.scales[0]
        if not shared_scale:
            scale_text = "one colour scale per map"
        elif scale.signed:
            scale_text = f"\u00b1{scale.hi:.3g}, blue < 0 < red"
        else:
            scale_text = f"{scale.lo:.3g} .. {scale.hi:.3g}, grey"
        self.header.setText(header)
        self.header.setToolTip(header)
        self.scale_label.setText(scale_text)
        self.scale_label.setToolTip(f"colour scale: {scale_text}")
        small = fits_table(maps.shape)
        self.numbers.setEnabled(small)
        self.numbers.setToolTip("Show every value as a table" if small else
                                f"{maps.shape[0]} maps of {maps.shape[-2]}x{maps.shape[-1]} are "
                                f"too large for a table (at most {MAX_TABLE_SIDE}x"
                                f"{MAX_TABLE_SIDE}, {MAX_TABLE_VALUES} values)")
        self.export.setEnabled(True)
        if not small and self.numbers.isChecked():
            # not ticked-but-greyed: these maps are shown as images
            self.numbers.blockSignals(True)
            self.numbers.setChecked(False)
            self.numbers.blockSignals(False)
        if small and (self.prefer_numbers or editable or numbers) and not self.numbers.isChecked():
            self.numbers.blockSignals(True)
            self.numbers.setChecked(True)
            self.numbers.blockSignals(False)
        self._show_mode()

    @property
    def showing_numbers(self) -> bool:
        return self.numbers.isEnabled() and self.numbers.isChecked()

    def _show_mode(self) -> None:
        if self.rendered is None:
            return
        if self.showing_numbers:
            self.tables.set_rendered(self.rendered, self.editable)
            self.stack.setCurrentWidget(self.table_page)
        else:
            self.grid = self._grid_for(self._grid_key(), self.rendered.map_shape)
            self.grid.set_rendered(self.rendered, header="")
            self.stack.setCurrentWidget(self.grid)
        self._fit_to_width()

    def _grid_key(self) -> tuple:
        r = self.rendered
        if self.fit:
            columns, _ = self._fit_layout(r.tile_count, r.map_shape, r.titles)
            return r.tile_count, r.shared_scale, columns
        return r.tile_count, r.shared_scale

    def _fit_to_width(self) -> None:
        """Lay the shown content out for the current width: as many tables side
        by side as it holds; a fitted panel also takes the height it needs."""
        r = self.rendered
        if self.showing_numbers:
            self.tables.arrange(max(1, (self.width() - 8) // max(1, self.tables.table_width())))
            if self.fit:
                size = self.tables.sizeHint()
                self.stack.setFixedHeight(size.height())
                self.setMinimumWidth(size.width())
        elif self.fit:
            key = self._grid_key()
            if self.grids.get(key) is not self.grid:       # other columns: another grid
                self.grid = self._grid_for(key, r.map_shape)
                self.grid.set_rendered(r, header="")
                self.stack.setCurrentWidget(self.grid)
            self.stack.setFixedHeight(self._fit_layout(r.tile_count, r.map_shape, r.titles)[1])
            self.setMinimumWidth(0)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # a fitted panel's columns and height follow its width (the height
        # does not change the width: no loop); nothing is refilled
        if event.size().width() == event.oldSize().width():
            return
        if self.rendered is not None and (self.fit or self.showing_numbers):
            self._fit_to_width()
        elif self.fit:
            self.set_empty(self.empty_page.text())

    def tile_file_stem(self, grid: FeatureMapGrid, tile: int) -> str:
        """"conv2_output_map_3": the panel's name and the tile's title."""
        title = grid.rendered.titles[tile] if grid.rendered is not None else str(tile)
        base = self.stem or file_stem(self.hover_name())
        title = file_stem(title)
        return f"{base}_map_{title}" if title.isdigit() else f"{base}_{title}"

    def hover_name(self) -> str:
        """What the status line calls this tensor: the header up to its shape."""
        return (self.header_text or self.title).split(":")[0]

    def _on_hover(self, grid: FeatureMapGrid, x: float, y: float) -> None:
        if self.mosaic is None:
            text = grid.show_values_at(x, y).strip()
            self.hover_text.emit(f"{self.hover_name()}: {text}" if text else "")
            return
        pixel = grid.view_to_pixel(x, y)
        cell = None if pixel is None else mosaic_cell(*pixel, self.mosaic)
        if cell is None:
            self.hover_text.emit("" if pixel is None else
                                 f"{self.hover_name()}: between kernels")
            return
        o, c, r, k = cell
        data = self.rendered.data
        values = [number_text(float(data[i, pixel[0], pixel[1]])) for i in range(len(data))]
        where = (f"{self.hover_name()}: filter {o}, channel {c}, row {r}, col {k}  "
                 f"[{o}, {c}, {r}, {k}]")
        if len(values) == 1:
            self.hover_text.emit(f"{where} = {values[0]}")
        else:                  # before, after, after - before
            self.hover_text.emit(f"{where}:  " + ";  ".join(
                f"{t} = {v}" for t, v in zip(self.rendered.titles, values)))

    # --- export ------------------------------------------------------------------------
    def save(self, path, kind: str) -> None:
        """Atomically, to exactly ``path`` (no ".npy" added)."""
        if kind == "npy":
            atomic_save_npy(path, np.ascontiguousarray(self.tensor))
        else:
            save_tensor_text(self.tensor, path)

    def _export_dialog(self, kind: str) -> None:
        from cnnviz.gui.widgets.file_dialogs import ask_save_path

        name = self.stem or file_stem(self.hover_name())
        filt = "NumPy array (*.npy)" if kind == "npy" else "NumPy text (*.txt)"
        path = ask_save_path(self, f"Export {self.hover_name()}", filt, f"{name}.{kind}",
                             f".{kind}")
        if not path:
            return
        try:
            self.save(path, kind)
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", save_failure_message(path, exc))
