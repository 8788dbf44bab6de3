"""Small maps as tables of numbers, each cell painted in the map's colour.

The same ``Scale`` and colour lookup as the image view, so a cell and its
pixel always agree. Cells can be made editable (lessons): an edit that is a
finite number is emitted as ``cell_edited(map, row, col, value)``.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFontMetrics
from PyQt6.QtWidgets import (QAbstractItemView, QGridLayout, QHeaderView, QLabel,
                             QTableWidget, QTableWidgetItem, QWidget)

from cnnviz.gui.widgets.colormaps import colorize
from cnnviz.gui.widgets.kernel_json import parse_cell
from cnnviz.gui.widgets.rendered_maps import RenderedMaps

KEPT_SHAPES = 6              # table sets kept per MapTables (one per map shape)
MAX_TABLE_SIDE = 27          # ex4's patch matrix is 27x9, its dW·cols product 2x27
CELL_H = 22
CELL_PAD = 10                # px left and right of the widest text in a column, together


def number_text(v: float) -> str:
    """Four significant digits, scientific below 1e-4 and from 1e4 on (``.4g``):
    at most 10 characters, so a cell sized to its column's widest text shows
    every value whole. NaN (a wrapped vector's unused cells) is blank."""
    if v != v:
        return ""
    text = f"{v:.4g}"
    return "0" if text == "-0" else text


MAX_TABLE_VALUES = 1200      # conv2's 16 maps of 8x8 yes, conv1's 6 of 28x28 no


_COLOUR_ROLE = Qt.ItemDataRole.UserRole + 1     # the cell's background as 0xRRGGBB
_BRUSHES: dict[int, tuple[QBrush, QBrush]] = {}


def _brushes(colour: int) -> tuple[QBrush, QBrush]:
    """(background, readable text colour) for 0xRRGGBB, made once per colour."""
    pair = _BRUSHES.get(colour)
    if pair is None:
        red, green, blue = colour >> 16, colour >> 8 & 255, colour & 255
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 110
        pair = _BRUSHES[colour] = (QBrush(QColor(red, green, blue)),
                                   QBrush(QColor("white" if dark else "black")))
    return pair


def fits_table(shape) -> bool:
    return (shape[-1] <= MAX_TABLE_SIDE and shape[-2] <= MAX_TABLE_SIDE
            and int(np.prod(shape)) <= MAX_TABLE_VALUES)


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
        self._arranged = None
        # tables built per shape (m, h, w) and kept, hidden, for the next time that
        # shape is shown (stepping back and forth alternates between a few)
        self._sets: dict[tuple, tuple[list[QTableWidget], list[QLabel]]] = {}

    def set_rendered(self, rendered: RenderedMaps, editable: bool = False) -> None:
        data = rendered.data
        m, h, w = data.shape
        if len(self.tables) != m or (m and self.tables[0].rowCount() != h) or (
                m and self.tables[0].columnCount() != w):
            self._build(m, h, w)
        self.editable = editable
        self._filling = True
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if editable:
            flags |= Qt.ItemFlag.ItemIsEditable
        for i, table in enumerate(self.tables):
            # one repaint and no itemChanged per cell while filling
            table.setUpdatesEnabled(False)
            table.blockSignals(True)
            self._titles[i].setText(rendered.titles[i])
            rgba = colorize(data[i], rendered.scales[i])
            texts = [[number_text(v) for v in row] for row in data[i].tolist()]
            rgb = rgba[..., :3].astype(np.int64)
            colours = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
            # a wrapped vector's unused (NaN) cells: the table's own empty
            # cell, not colorize's NaN magenta
            colours = np.where(np.isnan(data[i]), -1, colours).tolist()
            # why the checks: a step refills every table, and ~5 calls per cell into
            # Qt were most of a step's side-tab time; unchanged cells are left alone
            set_flags = table.property("cell_flags") != int(flags.value)
            for r in range(h):
                for c in range(w):
                    item = table.item(r, c)
                    if item.text() != texts[r][c]:
                        item.setText(texts[r][c])
                    colour = colours[r][c]
                    if item.data(_COLOUR_ROLE) != colour:
                        if colour < 0:
                            item.setData(Qt.ItemDataRole.BackgroundRole, None)
                            item.setData(Qt.ItemDataRole.ForegroundRole, None)
                        else:
                            background, foreground = _brushes(colour)
                            item.setBackground(background)
                            item.setForeground(foreground)
                        item.setData(_COLOUR_ROLE, colour)
                    if set_flags:
                        item.setFlags(flags)
            table.setProperty("cell_flags", int(flags.value))
            table.setToolTip("Double-click a cell to edit it; the lesson re-runs"
                             if editable else "")
            self._fit(table)
            table.blockSignals(False)
            table.setUpdatesEnabled(True)
        self._filling = False

    @staticmethod
    def _fit(table: QTableWidget) -> None:
        """Each column as wide as its widest number (QFontMetrics), the table as
        large as its cells: nothing is elided and the table never scrolls itself
        (the panel's one scroll area does)."""
        metrics = QFontMetrics(table.font())
        for c in range(table.columnCount()):
            texts = [table.item(r, c).text() for r in range(table.rowCount())]
            texts.append(table.horizontalHeaderItem(c).text() if table.horizontalHeaderItem(c)
                         else str(c))
            table.setColumnWidth(c, max(metrics.horizontalAdvance(t) for t in texts) + CELL_PAD
                                 + 2 * table.style().pixelMetric(
                                     table.style().PixelMetric.PM_FocusFrameHMargin))
        width = sum(table.columnWidth(c) for c in range(table.columnCount()))
        header = table.horizontalHeader()
        table.setFixedSize(width + table.verticalHeader().sizeHint().width()
                           + 2 * table.frameWidth(),
                           table.rowCount() * CELL_H
                           + (header.sizeHint().height() if not header.isHidden() else 0)
                           + 2 * table.frameWidth())

    def _build(self, m: int, h: int, w: int) -> None:
        """Show tables for m maps of h x w: the set built for that shape before if
        there is one (building ~100 table widgets cost a step 10-20 ms), else a new one."""
        for widget in self.tables + self._titles:
            self.layout_.removeWidget(widget)
            widget.hide()               # at once: the layout below no longer holds it
        key = (m, h, w)
        cached = self._sets.pop(key, None)
        if cached is None:
            cached = self._new_set(m, h, w)
        else:
            for widget in cached[0] + cached[1]:
                widget.show()
        self._sets[key] = cached        # newest last
        while len(self._sets) > KEPT_SHAPES:       # the least recently shown shape goes
            old_tables, old_titles = self._sets.pop(next(iter(self._sets)))
            for widget in old_tables + old_titles:
                widget.setParent(None)
                widget.deleteLater()
        self.tables, self._titles = cached
        self._arranged = None
        self.arrange(self.columns)

    def _new_set(self, m: int, h: int, w: int) -> tuple[list[QTableWidget], list[QLabel]]:
        tables, titles = [], []
        for i in range(m):
            title = QLabel()
            table = QTableWidget(h, w)
            table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
            table.setTextElideMode(Qt.TextElideMode.ElideNone)
            table.setWordWrap(False)
            table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            for header in (table.horizontalHeader(), table.verticalHeader()):
                header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
                header.setMinimumSectionSize(10)
            table.verticalHeader().setDefaultSectionSize(CELL_H)
            # 0-based, like the hover read-out and NumPy
            table.setHorizontalHeaderLabels([str(c) for c in range(w)])
            table.setVerticalHeaderLabels([str(r) for r in range(h)])
            table.horizontalHeader().setVisible(w > 1)
            for r in range(h):
                for c in range(w):
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    table.setItem(r, c, item)
            table.itemChanged.connect(lambda item, i=i: self._on_changed(i, item))
            self.layout_.addWidget(title, 0, 0)
            self.layout_.addWidget(table, 1, 0)
            # shown now (a new child stays hidden until the event loop runs, and
            # the layout's size hint, which fitted panels read at once, skips it)
            title.show()
            table.show()
            tables.append(table)
            titles.append(title)
        return tables, titles

    def arrange(self, columns: int) -> None:
        """Tables in ``columns`` columns (a fitted panel: as many as its width holds)."""
        columns = max(1, min(columns, len(self.tables)))
        if self._arranged == (columns, len(self.tables)):
            return
        self._arranged = (columns, len(self.tables))
        for i, (title, table) in enumerate(zip(self._titles, self.tables)):
            row, col = divmod(i, columns)
            self.layout_.removeWidget(title)
            self.layout_.removeWidget(table)
            self.layout_.addWidget(title, 2 * row, col)
            self.layout_.addWidget(table, 2 * row + 1, col, Qt.AlignmentFlag.AlignTop
                                   | Qt.AlignmentFlag.AlignLeft)
        # spare room goes below and right of the tables, not between them
        rows = -(-len(self.tables) // columns)
        for r in range(max(self.layout_.rowCount(), 2 * rows + 1)):
            self.layout_.setRowStretch(r, 1 if r == 2 * rows else 0)
        for c in range(max(self.layout_.columnCount(), columns + 1)):
            self.layout_.setColumnStretch(c, 1 if c == columns else 0)

    def table_width(self) -> int:
        return max((t.width() for t in self.tables), default=0) + self.layout_.horizontalSpacing()

    def texts(self, i: int) -> list[list[str]]:
        t = self.tables[i]
        return [[t.item(r, c).text() for c in range(t.columnCount())]
                for r in range(t.rowCount())]

    def values(self, i: int) -> np.ndarray:
        return np.array([[float(s) if s else np.nan for s in row] for row in self.texts(i)])

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
