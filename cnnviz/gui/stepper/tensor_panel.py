"""One named tensor on screen: maps as images (hover for values) or, when every
map is at most 12x12, as tables of numbers in the same colours; export of the
whole tensor as .npy or NumPy text."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QMenu, QMessageBox,
                             QScrollArea, QSizePolicy, QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from cnnviz.atomic import atomic_save_npy, atomic_savetxt, save_failure_message
from cnnviz.gui.stepper.number_table import MapTables, fits_table
from cnnviz.gui.stepper.map_grid import StepperMapGrid as FeatureMapGrid
from cnnviz.gui.widgets.rendered_maps import render_maps


def save_tensor_text(tensor: np.ndarray, path) -> None:
    """NumPy text: 2-D as is, higher ranks as rows of the last axis, with the
    shape in the header so ``np.loadtxt(path).reshape(shape)`` restores it."""
    t = np.asarray(tensor)
    rows = t.reshape(1, -1) if t.ndim < 2 else t.reshape(-1, t.shape[-1])
    atomic_savetxt(path, rows, fmt="%.9g", header=f"shape {tuple(t.shape)}, C order")


class TensorPanel(QWidget):
    cell_edited = pyqtSignal(int, int, int, float)   # map, row, col, value
    hover_text = pyqtSignal(str)

    def __init__(self, title: str, parent=None, max_columns: int = 4):
        super().__init__(parent)
        self.title = title
        self.tensor: np.ndarray | None = None
        self.rendered = None
        self.prefer_numbers = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        # row 1: what it is (full width); row 2: its colour scale and the controls
        self.header = QLabel(title)
        self.header.setStyleSheet("font-weight: bold;")
        # why Ignored: a long header must not widen the panel; it is clipped and
        # its tooltip holds the full text
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.header)
        second = QHBoxLayout()
        self.scale_label = QLabel()
        self.scale_label.setStyleSheet("color: #555;")
        self.scale_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        second.addWidget(self.scale_label, 1)
        self.numbers = QCheckBox("Numbers")
        self.numbers.setToolTip("Show every value as a table (maps of at most 12x12)")
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

    def _grid_for(self, key: tuple, map_shape=(1, 1)) -> FeatureMapGrid:
        grid = self.grids.get(key)
        if grid is None:
            # no colour bars: their axes cost more to paint than the maps; the
            # header states the scale instead
            columns = self._columns(key[0], map_shape) if key[0] > 1 else 1
            grid = FeatureMapGrid(max_columns=columns, show_bars=False)
            grid.hovered.connect(lambda x, y, g=grid: self._on_hover(g, x, y))
            self.grids[key] = grid
            self.stack.addWidget(grid)
        return grid

    def prepare(self, count: int, map_shape) -> None:
        """Build the grid for ``count`` maps ahead of time (see StepperMapGrid.prepare)."""
        self._grid_for((count, True), map_shape).prepare(count)

    def set_empty(self, message: str) -> None:
        self.tensor, self.rendered, self.header_text, self._signed = None, None, "", None
        self.header.setText(self.title)
        self.scale_label.setText("")
        self.empty_page.setText(message)
        # the grids are kept (rebuilding tiles is what costs): just show the empty page
        self.stack.setCurrentWidget(self.empty_page)
        self.numbers.setEnabled(False)
        self.export.setEnabled(False)

    def show_maps(self, tensor: np.ndarray, maps: np.ndarray, titles: list[str], header: str,
                  signed: bool | None = None, editable: bool = False,
                  shared_scale: bool = True) -> None:
        """tensor: what export saves; maps (M, H, W): what is drawn."""
        old = self.rendered
        if (old is not None and old.titles == list(titles) and self.header_text == header
                and old.shared_scale == shared_scale and editable == self.editable
                and old.data.shape == maps.shape and np.array_equal(old.data, maps)
                and self._signed == signed):
            self.tensor = tensor
            return                     # unchanged: skip the redraw
        self.tensor = tensor
        self.editable = editable
        self._signed = signed
        self.header_text = header
        self.rendered = rendered = render_maps(maps, titles, shared_scale=shared_scale,
                                               signed=signed)
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
                                f"Maps of {maps.shape[-2]}x{maps.shape[-1]} are too large "
                                f"for a table (at most 12x12)")
        self.export.setEnabled(True)
        if small and (self.prefer_numbers or editable) and not self.numbers.isChecked():
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
            r = self.rendered
            self.grid = self._grid_for((r.tile_count, r.shared_scale), r.map_shape)
            self.grid.set_rendered(r, header="")
            self.stack.setCurrentWidget(self.grid)

    def _on_hover(self, grid: FeatureMapGrid, x: float, y: float) -> None:
        self.hover_text.emit(f"{self.title}: " + grid.show_values_at(x, y))

    # --- export ------------------------------------------------------------------------
    def save(self, path, kind: str) -> None:
        """Atomically, to exactly ``path`` (no ".npy" added)."""
        if kind == "npy":
            atomic_save_npy(path, np.ascontiguousarray(self.tensor))
        else:
            save_tensor_text(self.tensor, path)

    def _export_dialog(self, kind: str) -> None:
        from cnnviz.gui.widgets.file_dialogs import ask_save_path

        name = self.title.split(" ")[0].replace(".", "_") or "tensor"
        filt = "NumPy array (*.npy)" if kind == "npy" else "NumPy text (*.txt)"
        path = ask_save_path(self, f"Export {self.title}", filt, f"{name}.{kind}", f".{kind}")
        if not path:
            return
        try:
            self.save(path, kind)
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", save_failure_message(path, exc))
