"""The architecture strip: one block per layer (name, output shape, the kernel's
size, stride and padding, parameters and multiply-adds -- the numbers of
``cnnviz summary``), the current layer and direction highlighted, a click jumps
there; "Summary table" shows them all as one table."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QLabel,
                             QScrollArea, QTableWidget, QTableWidgetItem, QToolButton,
                             QVBoxLayout, QWidget)

from cnnviz.engine.summary import Summary

# why these colours: forward reads as "go" (green), backward as the gradient's
# warm colour, both light enough to keep black text readable
FORWARD_STYLE = "QToolButton { background: #c8ecc8; border: 2px solid #2e8b2e; }"
BACKWARD_STYLE = "QToolButton { background: #fbd9b8; border: 2px solid #d2691e; }"
DONE_STYLE = "QToolButton { background: #eef3f8; border: 1px solid #9ab; }"
IDLE_STYLE = "QToolButton { background: #ffffff; border: 1px solid #bbb; }"


def short_count(n: int) -> str:
    """1234 -> "1,234", 117600 -> "117.6k", 2_000_000 -> "2M": a block stays narrow."""
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.4g}k"
    return f"{n / 1e6:.4g}M"


def geometry_text(layer) -> str:
    """"5x5 s1 p2" for a conv or pooling layer, "" for others."""
    k = getattr(layer, "kernel_size", None)
    if k is None:
        return ""
    s = getattr(layer, "stride", (1, 1))
    p = getattr(layer, "padding", (0, 0))

    def one(pair):
        return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]},{pair[1]}"

    return f"{k[0]}x{k[1]} s{one(s)} p{one(p)}"


def block_text(name: str, shape: tuple, params: int, macs: int = 0, geometry: str = "") -> str:
    dims = "x".join(str(d) for d in shape[1:])
    lines = [name, dims, geometry or " "]
    if params or macs:
        lines.append(f"{short_count(params)} params" if params else "no params")
        lines.append(f"{short_count(macs)} MACs")
    else:
        lines += ["-", " "]
    return "\n".join(lines)


class SummaryDialog(QDialog):
    """The whole network as a table: the numbers of ``cnnviz summary``."""

    HEADERS = ("layer", "type", "kernel, stride, padding", "output shape", "params",
               "multiply-adds")

    def __init__(self, summary: Summary, layers, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Network summary")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"input {summary.input_shape}"))
        rows = [(r.name, r.kind, geometry_text(layer), str(r.output_shape), f"{r.params:,}",
                 f"{r.macs:,}") for r, layer in zip(summary.rows, layers)]
        rows.append(("total", "", "", "", f"{summary.total_params:,}", f"{summary.total_macs:,}"))
        self.table = QTableWidget(len(rows), len(self.HEADERS))
        self.table.setHorizontalHeaderLabels(self.HEADERS)
        self.table.verticalHeader().setVisible(False)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                if c >= 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        width = self.table.horizontalHeader().length() + 40
        self.resize(max(480, width), min(700, 80 + 30 * (len(rows) + 2)))

    def texts(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]


class _Block(QToolButton):
    """A strip block never narrower than its text (64 px at least): with a
    fixed minimum width a long network (the 1998 LeNet-5) squeezed every block
    to it and cut "156...ms"; the strip scrolls instead."""

    MIN_WIDTH = 64

    def sizeHint(self):
        hint = super().sizeHint()
        hint.setWidth(max(hint.width(), self.MIN_WIDTH))
        return hint

    def minimumSizeHint(self):
        return self.sizeHint()


class ArchitectureStrip(QScrollArea):
    layer_clicked = pyqtSignal(int)          # -1 = the input block

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(112)
        self.blocks: list[QToolButton] = []
        self.summary: Summary | None = None
        self.layers: list = []

    def set_summary(self, summary: Summary, layers=()) -> None:
        """layers: the model's layers, for kernel size, stride and padding."""
        self.summary, self.layers = summary, list(layers)
        # a fresh host widget: QScrollArea deletes the old one with its blocks
        self.host = QWidget()
        self.row = QHBoxLayout(self.host)
        self.row.setContentsMargins(2, 2, 2, 2)
        self.row.setSpacing(3)
        self.blocks = []
        layers = self.layers or [None] * len(summary.rows)
        entries = [("input", summary.input_shape, 0, 0, "", "")] + [
            (r.name, r.output_shape, r.params, r.macs, r.kind,
             geometry_text(layer) if layer is not None else "")
            for r, layer in zip(summary.rows, layers)]
        for k, (name, shape, params, macs, kind, geometry) in enumerate(entries):
            if k:
                arrow = QLabel("\u2192")
                self.row.addWidget(arrow)
            button = _Block()
            button.setText(block_text(name, shape, params, macs, geometry))
            where = f", kernel {geometry}" if geometry else ""
            button.setToolTip(f"{name} ({kind or 'input'}{where}): output {shape}, "
                              f"{params:,} parameters, {macs:,} multiply-adds. "
                              f"Click to step to it.")
            button.clicked.connect(lambda _=False, i=k - 1: self.layer_clicked.emit(i))
            self.row.addWidget(button)
            self.blocks.append(button)
        self.table_button = QToolButton()
        self.table_button.setText(f"Summary\ntable\n\n{short_count(summary.total_params)} "
                                  f"params\n{short_count(summary.total_macs)} MACs")
        self.table_button.setToolTip("Every layer's kernel, stride, padding, output shape, "
                                     "parameters and multiply-adds in one table")
        self.table_button.clicked.connect(self.show_table)
        self.row.addSpacing(8)
        self.row.addWidget(self.table_button)
        self.row.addStretch(1)
        self.setWidget(self.host)

    def show_table(self) -> SummaryDialog:
        dialog = SummaryDialog(self.summary, self.layers or [None] * len(self.summary.rows),
                               self)
        dialog.setModal(False)
        dialog.show()
        self.dialog = dialog
        return dialog

    def set_position(self, current: int, direction: str, reached: set[int]) -> None:
        """current: the layer just stepped through (-1 = input); reached: layers
        that hold a result in this direction."""
        for k, button in enumerate(self.blocks):
            i = k - 1
            if i == current:
                style = FORWARD_STYLE if direction == "forward" else BACKWARD_STYLE
                self.ensureWidgetVisible(button)
            elif i in reached:
                style = DONE_STYLE
            else:
                style = IDLE_STYLE
            # a style sheet set again re-polishes and repaints the block: only changes
            if button.styleSheet() != style:
                button.setStyleSheet(style)
