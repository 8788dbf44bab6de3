"""The architecture strip: one block per layer (name, output shape, parameters),
the current layer and direction highlighted, a click jumps there."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QToolButton, QWidget

from cnnviz.engine.summary import Summary

# why these colours: forward reads as "go" (green), backward as the gradient's
# warm colour, both light enough to keep black text readable
FORWARD_STYLE = "QToolButton { background: #c8ecc8; border: 2px solid #2e8b2e; }"
BACKWARD_STYLE = "QToolButton { background: #fbd9b8; border: 2px solid #d2691e; }"
DONE_STYLE = "QToolButton { background: #eef3f8; border: 1px solid #9ab; }"
IDLE_STYLE = "QToolButton { background: #ffffff; border: 1px solid #bbb; }"


def block_text(name: str, shape: tuple, params: int) -> str:
    dims = "x".join(str(d) for d in shape[1:])
    return f"{name}\n{dims}\n{params:,} params" if params else f"{name}\n{dims}\n-"


class ArchitectureStrip(QScrollArea):
    layer_clicked = pyqtSignal(int)          # -1 = the input block

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFixedHeight(78)
        self.blocks: list[QToolButton] = []

    def set_summary(self, summary: Summary) -> None:
        # a fresh host widget: QScrollArea deletes the old one with its blocks
        self.host = QWidget()
        self.row = QHBoxLayout(self.host)
        self.row.setContentsMargins(2, 2, 2, 2)
        self.row.setSpacing(3)
        self.blocks = []
        entries = [("input", summary.input_shape, 0, "")] + [
            (r.name, r.output_shape, r.params, r.kind) for r in summary.rows]
        for k, (name, shape, params, kind) in enumerate(entries):
            if k:
                arrow = QLabel("\u2192")
                self.row.addWidget(arrow)
            button = QToolButton()
            button.setText(block_text(name, shape, params))
            button.setToolTip(f"{name} ({kind or 'input'}): output {shape}, {params:,} "
                              f"parameters. Click to step to it.")
            button.setMinimumWidth(64)
            button.clicked.connect(lambda _=False, i=k - 1: self.layer_clicked.emit(i))
            self.row.addWidget(button)
            self.blocks.append(button)
        self.row.addStretch(1)
        self.setWidget(self.host)

    def set_position(self, current: int, direction: str, reached: set[int]) -> None:
        """current: the layer just stepped through (-1 = input); reached: layers
        that hold a result in this direction."""
        for k, button in enumerate(self.blocks):
            i = k - 1
            if i == current:
                button.setStyleSheet(FORWARD_STYLE if direction == "forward" else BACKWARD_STYLE)
                self.ensureWidgetVisible(button)
            elif i in reached:
                button.setStyleSheet(DONE_STYLE)
            else:
                button.setStyleSheet(IDLE_STYLE)
