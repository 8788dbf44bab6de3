"""The end of the forward pass: the loss and the softmax as a bar chart."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from cnnviz.gui.widgets import theme

BAR = (120, 150, 190)
TARGET = (214, 96, 77)
PREDICTED = (46, 139, 46)


class ProbabilityChart(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("Loss: run the forward pass to the end")
        self.label.setWordWrap(True)
        layout.addWidget(self.label)
        self.plot = pg.PlotWidget(background=theme.BACKGROUND)
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

    def clear(self, message: str) -> None:
        self.probs = None
        self.label.setText(message)
        self.bars.setOpts(height=np.zeros(10))

    def set_result(self, probs: np.ndarray, loss: float, target: int) -> None:
        self.probs = np.asarray(probs, dtype=float)
        k = len(self.probs)
        pred = int(np.argmax(self.probs))
        brushes = [pg.mkBrush(PREDICTED if i == pred else TARGET if i == target else BAR)
                   for i in range(k)]
        self.bars.setOpts(x=np.arange(k), height=self.probs, brushes=brushes)
        self.plot.getAxis("bottom").setTicks([[(i, str(i)) for i in range(k)]])
        self.plot.setXRange(-0.6, k - 0.4, padding=0)
        self.label.setText(
            f"Loss <b>{loss:.4f}</b> (target {target}, p = {self.probs[target]:.3f}); "
            f"prediction <b>{pred}</b> (p = {self.probs[pred]:.3f})")
