"""Small maps as tables of numbers, each cell painted in the map's colour.

The same ``Scale`` and colour lookup as the image view, so a cell and its
pixel always agree. Cells can be made editable (lessons): an edit that is a
finite number is emitted as ``cell_edited(map, row, col, value)``.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import (QAbstractItemView, QGridLayout, QHeaderView, QLabel,
                             QTableWidget, QTableWidgetItem, QWidget)

from cnnviz.gui.widgets.colormaps import colorize
from cnnviz.gui.widgets.kernel_json import parse_cell
from cnnviz.gui.widgets.rendered_maps import RenderedMaps

MAX_TABLE_SIDE = 12
CELL_W, CELL_H = 46, 22


def number_text(v: float) -> str:
    text = f"{v:.4g}"
    return "0" if text == "-0" else text


def fits_table(shape) -> bool:
    return shape[-1] <= MAX_TABLE_SIDE and shape[-2] <= MAX_TABLE_SIDE


class MapTables(QWidget):
    cell_edited = pyqtSignal(int, int, int, float)

    def __init__(self, parent=None, columns: int = 3):
        super().__init__(parent)
        self.columns = columns
        self.layout_ = QGridLayout(self)
        self.layout_.setContentsMargins(2, 2, 2, 2)
        self.tables: list[QTableWidget] = []
        self._titles: list[QLabel] = []
        self.editable = False
        self._filling = False

    def set_rendered(self, rendered: RenderedMaps, editable: bool = False) -> None:
        data = rendered.data
        m, h, w = data.shape
        if len(self.tables) != m or (m and self.tables[0].rowCount() != h) or (
                m and self.tables[0].columnCount() != w):
            self._build(m, h, w)
        self.editable = editable
        self._filling = True
        for i, table in enumerate(self.tables):
            self._titles[i].setText(rendered.titles[i])
            rgba = colorize(data[i], rendered.scales[i])
            for r in range(h):
                for c in range(w):
                    item = table.item(r, c)
                    item.setText(number_text(float(data[i, r, c])))
                    red, green, blue = (int(v) for v in rgba[r, c, :3])
                    item.setBackground(QBrush(QColor(red, green, blue)))
                    dark = 0.299 * red + 0.587 * green + 0.114 * blue < 110
                    item.setForeground(QBrush(QColor("white" if dark else "black")))
                    flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                    if editable:
                        flags |= Qt.ItemFlag.ItemIsEditable
                    item.setFlags(flags)
            table.setToolTip("Double-click a cell to edit it; the lesson re-runs"
                             if editable else "")
        self._filling = False

    def _build(self, m: int, h: int, w: int) -> None:
        for widget in self.tables + self._titles:
            self.layout_.removeWidget(widget)
            widget.hide()               # at once: deleteLater alone left old tables on screen
            widget.setParent(None)
            widget.deleteLater()
        self.tables, self._titles = [], []
        columns = max(1, min(self.columns, m))
        for i in range(m):
            title = QLabel()
            table = QTableWidget(h, w)
            table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
            for header, size in ((table.horizontalHeader(), CELL_W),
                                 (table.verticalHeader(), CELL_H)):
                header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
                header.setDefaultSectionSize(size)
                header.setMinimumSectionSize(10)
            # 0-based, like the hover read-out and NumPy
            table.setHorizontalHeaderLabels([str(c) for c in range(w)])
            table.setVerticalHeaderLabels([str(r) for r in range(h)])
            table.horizontalHeader().setVisible(w > 1)
            table.setFixedSize(w * CELL_W + table.verticalHeader().sizeHint().width() + 4,
                               h * CELL_H + (table.horizontalHeader().sizeHint().height()
                                             if w > 1 else 0) + 4)
            for r in range(h):
                for c in range(w):
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    table.setItem(r, c, item)
            table.itemChanged.connect(lambda item, i=i: self._on_changed(i, item))
            row, col = divmod(i, columns)
            self.layout_.addWidget(title, 2 * row, col)
            self.layout_.addWidget(table, 2 * row + 1, col, Qt.AlignmentFlag.AlignTop
                                   | Qt.AlignmentFlag.AlignLeft)
            self.tables.append(table)
            self._titles.append(title)
        # spare room goes below and right of the tables, not between them
        rows = -(-m // columns)
        for r in range(2 * rows + 1):
            self.layout_.setRowStretch(r, 1 if r == 2 * rows else 0)
        for c in range(columns + 1):
            self.layout_.setColumnStretch(c, 1 if c == columns else 0)

    def texts(self, i: int) -> list[list[str]]:
        t = self.tables[i]
        return [[t.item(r, c).text() for c in range(t.columnCount())]
                for r in range(t.rowCount())]

    def values(self, i: int) -> np.ndarray:
        return np.array([[float(s) for s in row] for row in self.texts(i)])

    def _on_changed(self, i: int, item: QTableWidgetItem) -> None:
        if self._filling or not self.editable:
            return
        try:
            value = parse_cell(item.text())
        except ValueError as exc:
            item.setToolTip(str(exc))
            item.setBackground(QBrush(QColor("#ffb3b3")))
            return
        self.cell_edited.emit(i, item.row(), item.column(), float(value))
