"""The end of the forward pass: the loss and the softmax as a bar chart."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

import html

from cnnviz.gui.stepper.settle import register_view
from cnnviz.data.classes import name_of, short_name
from cnnviz.gui.widgets import theme

BAR = (120, 150, 190)
TARGET = (214, 96, 77)
PREDICTED = (46, 139, 46)


def loss_text(loss: float) -> str:
    """Four decimals, or two significant digits below 1e-4 ("3.2e-07", not "0.0000");
    a rounding error below zero (the loss cannot be negative) reads 0."""
    loss = max(float(loss), 0.0)
    return f"{loss:.4f}" if loss == 0 or loss >= 1e-4 else f"{loss:.2g}"


class ProbabilityChart(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("Loss: run the forward pass to the end")
        self.label.setWordWrap(True)
        layout.addWidget(self.label)
        self.plot = pg.PlotWidget(background=theme.BACKGROUND)
        register_view(self.plot)
        self.plot.setMouseEnabled(False, False)
        self.plot.setMenuEnabled(False)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.getAxis("bottom").setTicks([[(i, str(i)) for i in range(10)]])
        self.plot.getAxis("left").setLabel("softmax")
        self.plot.setMinimumHeight(140)
        self.bars = pg.BarGraphItem(x=np.arange(10), height=np.zeros(10), width=0.7)
        self.plot.addItem(self.bars)
        layout.addWidget(self.plot)
        self.probs = None
        self.class_names: tuple[str, ...] = ()   # label i is called class_names[i]
        self._shown: tuple = ()                  # what the chart shows now (see clear)

    def set_class_names(self, names) -> None:
        """The names of the classes (the dataset's); the numbers if none."""
        self.class_names = tuple(names)

    def _name(self, label: int) -> str:
        name = name_of(self.class_names, label)
        return name if name == str(label) else f"{label} {html.escape(name)}"

    def clear(self, message: str) -> None:
        # why the check: every forward step before the end clears it again, and
        # re-setting the bars repaints the plot and its axes (~2 ms a step)
        if self.probs is None and self._shown == ("clear", message):
            return
        self._shown = ("clear", message)
        self.probs = None
        self.label.setText(message)
        # as many bars as the last result had (a 3-class network's 3)
        self.bars.setOpts(height=np.zeros(len(self.bars.opts["x"])))

    def set_result(self, probs: np.ndarray, loss: float, target: int,
                   loss_before: float | None = None) -> None:
        """loss_before: the loss before the SGD step just applied (both are shown)."""
        shown = ("result", np.asarray(probs, dtype=float).tobytes(), float(loss), int(target),
                 loss_before, self.class_names)
        if shown == self._shown:          # backward steps show the same result again
            return
        self._shown = shown
        self.probs = np.asarray(probs, dtype=float)
        k = len(self.probs)
        pred = int(np.argmax(self.probs))
        brushes = [pg.mkBrush(PREDICTED if i == pred else TARGET if i == target else BAR)
                   for i in range(k)]
        self.bars.setOpts(x=np.arange(k), height=self.probs, brushes=brushes)
        self.plot.getAxis("bottom").setTicks(
            [[(i, short_name(name_of(self.class_names, i), 7)) for i in range(k)]])
        self.plot.setXRange(-0.6, k - 0.4, padding=0)
        loss_part = (f"Loss <b>{loss_text(loss)}</b>" if loss_before is None else
                     f"Loss before the update {loss_text(loss_before)}, after it "
                     f"<b>{loss_text(loss)}</b>")
        self.label.setText(
            f"{loss_part} (target {self._name(target)}, p = {self.probs[target]:.3f}); "
            f"prediction <b>{self._name(pred)}</b> (p = {self.probs[pred]:.3f})")
