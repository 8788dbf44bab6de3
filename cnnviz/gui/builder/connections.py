"""The builder's editor of a SparseConv2D's connection table (LeNet-5's C3):
a grid of check boxes, one row per output map, one column per input map,
ticked where the output map sees the input map; the table of the paper
(LeCun et al., 1998, table I) turned on its side. A table too large for
boxes is a text field, one output map's list a line.

The widget does not check the table: each change is handed to the builder's
model, whose check (the architecture reader's) names what is wrong, e.g.
"C3.connections[3]: output map 3 sees no input map".
"""

from __future__ import annotations

import json

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QGridLayout, QLabel, QPlainTextEdit, QScrollArea,
                             QVBoxLayout, QWidget)

# above this many boxes the table is edited as text (a box grid that large is no help)
MAX_ROWS, MAX_COLUMNS = 64, 32


def table_size(connections, out_channels, in_channels) -> tuple[int, int]:
    """(rows, columns) to show: the layer's output and input maps, grown to
    hold every entry the table already has (so nothing typed is hidden)."""
    lists = connections if isinstance(connections, list) else []
    rows = out_channels if isinstance(out_channels, int) and out_channels > 0 else len(lists)
    seen = [c for seen in lists if isinstance(seen, list) for c in seen
            if isinstance(c, int) and not isinstance(c, bool) and c >= 0]
    columns = max([in_channels or 0] + [c + 1 for c in seen])
    return max(rows, len(lists)), columns


class ConnectionTable(QWidget):
    """Emits ``edited`` with the table as JSON text (one list per row)."""

    edited = pyqtSignal(str)

    def __init__(self, connections, out_channels, in_channels, parent=None):
        super().__init__(parent)
        self.rows, self.columns = table_size(connections, out_channels, in_channels)
        self.boxes: list[list[QCheckBox]] = []
        self.text: QPlainTextEdit | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lists = connections if isinstance(connections, list) else []
        if self.rows <= MAX_ROWS and self.columns <= MAX_COLUMNS and self.columns > 0:
            lay.addWidget(self._caption("rows: output maps; columns: the input maps each "
                                        "one sees"))
            lay.addWidget(self._grid(lists))
        else:
            lay.addWidget(self._caption("one line per output map: the input maps it sees"))
            self.text = QPlainTextEdit("\n".join(json.dumps(s) for s in lists)
                                       if lists else json.dumps(connections))
            self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            lines = max(3, min(len(lists), 16))
            self.text.setFixedHeight(self.text.fontMetrics().lineSpacing() * (lines + 1) + 12)
            self.text.textChanged.connect(lambda: self.edited.emit(self.value_text()))
            lay.addWidget(self.text)

    @staticmethod
    def _caption(text: str) -> QLabel:
        label = QLabel(text)
        label.setWordWrap(True)         # the editor's column stays narrow
        return label

    def _grid(self, lists) -> QWidget:
        inner = QWidget()
        grid = QGridLayout(inner)
        grid.setSpacing(1)
        grid.setContentsMargins(2, 2, 2, 2)
        for c in range(self.columns):
            head = QLabel(str(c))
            head.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(head, 0, c + 1)
        for o in range(self.rows):
            grid.addWidget(QLabel(str(o)), o + 1, 0)
            seen = lists[o] if o < len(lists) and isinstance(lists[o], list) else []
            row = []
            for c in range(self.columns):
                box = QCheckBox()
                box.setChecked(c in seen)
                box.setToolTip(f"output map {o} sees input map {c}")
                box.toggled.connect(lambda _on: self.edited.emit(self.value_text()))
                grid.addWidget(box, o + 1, c + 1, Qt.AlignmentFlag.AlignCenter)
                row.append(box)
            self.boxes.append(row)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setMinimumHeight(min(inner.sizeHint().height() + 4, 420))
        return scroll

    def value(self):
        """The table: a list per output map (from the boxes), or the text's JSON."""
        if self.text is None:
            return [[c for c, box in enumerate(row) if box.isChecked()] for row in self.boxes]
        text = self.text.toPlainText()
        try:            # the file's form, all on one line, is taken too
            whole = json.loads(text)
            if isinstance(whole, list) and all(isinstance(s, list) for s in whole):
                return whole
        except ValueError:
            pass
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            return [json.loads(line) for line in lines]
        except ValueError:
            return text

    def value_text(self) -> str:
        v = self.value()
        return json.dumps(v) if isinstance(v, list) else v
