"""Draw a digit with the mouse and see what the current model makes of it.

The canvas is 280x280 (ten screen pixels per MNIST pixel); the drawing is
converted the MNIST way (see preprocess.py), the converted 28x28 image is
shown, and a bar chart gives the model's probabilities. The model here is the
panel's own copy: it gets a fresh copy of the weights with each training
snapshot, so predicting never reads arrays the training thread is changing.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPoint, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPen
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from cnnviz.data.classes import name_of, short_name
from cnnviz.engine.serialization import architecture, build
from cnnviz.gui.training.preprocess import mnist_preprocess
from cnnviz.gui.widgets import theme

SIZE = 280


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Predictor:
    """A private copy of a model: weights arrive as copies (``set_weights``),
    predictions run on the GUI thread in about a millisecond."""

    def __init__(self):
        self.model = None
        self._arch = None

    def set_model(self, model) -> None:
        arch = architecture(model)
        if arch != self._arch:
            self.model, self._arch = build(arch), arch
        self.model.load_state_dict(model.state_dict())

    def set_weights(self, weights: dict) -> None:
        if self.model is not None:
            self.model.load_state_dict(weights)

    def probabilities(self, image: np.ndarray) -> np.ndarray | None:
        """Softmax of one image: (H, W) grey or (C, H, W), in [0, 1]."""
        if self.model is None:
            return None
        x = np.ascontiguousarray(image, np.float32)
        x = x[None, None] if x.ndim == 2 else x[None]
        return softmax(np.asarray(self.model.predict(x), np.float64))[0]


class DrawCanvas(QWidget):
    """White ink on black, a round brush about 2 MNIST pixels wide."""

    changed = pyqtSignal()

    def __init__(self, parent=None, pen_width: int = 22):
        super().__init__(parent)
        self.setFixedSize(QSize(SIZE, SIZE))
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.pen_width = pen_width
        self._image = QImage(SIZE, SIZE, QImage.Format.Format_Grayscale8)
        self._image.fill(0)
        self._last: QPoint | None = None

    def clear(self) -> None:
        self._image.fill(0)
        self.update()
        self.changed.emit()

    def ink(self) -> np.ndarray:
        """(280, 280) float32 in [0, 1]."""
        ptr = self._image.constBits()
        ptr.setsize(self._image.sizeInBytes())
        raw = np.frombuffer(ptr, np.uint8).reshape(SIZE, self._image.bytesPerLine())
        return raw[:, :SIZE].astype(np.float32) / 255.0

    def draw_stroke(self, points) -> None:
        """Draw a polyline (widget coordinates); what the mouse does, for tests."""
        pts = [QPoint(int(x), int(y)) for x, y in points]
        p = QPainter(self._image)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(255, 255, 255), self.pen_width, Qt.PenStyle.SolidLine,
                      Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        if len(pts) == 1:
            p.drawPoint(pts[0])
        for a, b in zip(pts, pts[1:]):
            p.drawLine(a, b)
        p.end()
        self.update()
        self.changed.emit()

    def mousePressEvent(self, e):
        if e.button() == Qt.MouseButton.LeftButton:
            self._last = e.position().toPoint()
            self.draw_stroke([(self._last.x(), self._last.y())])
        elif e.button() == Qt.MouseButton.RightButton:
            self.clear()

    def mouseMoveEvent(self, e):
        if self._last is not None:
            pos = e.position().toPoint()
            self.draw_stroke([(self._last.x(), self._last.y()), (pos.x(), pos.y())])
            self._last = pos

    def mouseReleaseEvent(self, e):
        self._last = None

    def paintEvent(self, e):
        p = QPainter(self)
        p.drawImage(0, 0, self._image)
        p.setPen(QPen(QColor(90, 90, 90), 1, Qt.PenStyle.DashLine))
        # The 20x20 box MNIST digits are scaled into, as a guide.
        p.drawRect(40, 40, 200, 200)
        p.end()


class DigitPanel(QWidget):
    """Canvas, converted image and prediction bars side by side."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.predictor = Predictor()
        self.canvas = DrawCanvas()
        self.converted = np.zeros((28, 28), np.float32)
        self.probs: np.ndarray | None = None

        clear = QPushButton("Clear")
        clear.clicked.connect(self.canvas.clear)
        left = QVBoxLayout()
        left.addWidget(QLabel("Draw a digit (left button; right button clears):"))
        left.addWidget(self.canvas)
        left.addWidget(clear)
        left.addStretch(1)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(theme.BACKGROUND)
        self.plots.setMinimumWidth(260)
        view = self.plots.addViewBox(row=0, col=0, lockAspect=True, invertY=True)
        view.setMouseEnabled(False, False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        view.addItem(self.image_item)
        view.setRange(xRange=(0, 28), yRange=(0, 28), padding=0)
        self.plots.addLabel("converted: 28x28, centred by centre of mass", row=1, col=0,
                            color=theme.FOREGROUND, size=theme.TITLE_SIZE)
        self.bar_plot = self.plots.addPlot(row=2, col=0, title="prediction")
        self.bar_plot.setYRange(0, 1, padding=0.02)
        self.bar_plot.setXRange(-0.6, 9.6, padding=0)
        self.bar_plot.setMouseEnabled(False, False)
        self.class_names: tuple[str, ...] = ()
        self.set_class_names(tuple(str(i) for i in range(10)))
        self.bars = pg.BarGraphItem(x=np.arange(10), height=np.zeros(10), width=0.7,
                                    brush="#4a7ab8")
        self.bar_plot.addItem(self.bars)
        self.answer = QLabel("No model yet: start or load one.")
        self.answer.setStyleSheet("font-size: 14pt;")
        right = QVBoxLayout()
        right.addWidget(self.plots, 1)
        right.addWidget(self.answer)

        layout = QHBoxLayout(self)
        layout.addLayout(left)
        layout.addLayout(right, 1)

        # Coalesce a burst of mouse moves into one prediction per frame.
        self._timer = QTimer(self, singleShot=True, interval=30)
        self._timer.timeout.connect(self.refresh)
        self.canvas.changed.connect(self._timer.start)
        self.refresh()

    def set_class_names(self, names) -> None:
        """The dataset's class names: the bars and the answer use them."""
        self.class_names = tuple(names)
        self.bar_plot.getAxis("bottom").setTicks(
            [[(i, short_name(name_of(self.class_names, i))) for i in range(10)]])
        if hasattr(self, "answer"):
            self.refresh()

    def set_model(self, model) -> None:
        self.predictor.set_model(model)
        self.refresh()

    def set_weights(self, weights: dict) -> None:
        """A copy of the latest weights from a snapshot: re-predict."""
        self.predictor.set_weights(weights)
        self.refresh()

    def refresh(self) -> None:
        self.converted = mnist_preprocess(self.canvas.ink())
        self.image_item.setImage(self.converted, autoLevels=False, levels=(0, 1))
        empty = not self.converted.any()
        self.probs = None if empty else self.predictor.probabilities(self.converted)
        heights = np.zeros(10) if self.probs is None else self.probs
        best = int(np.argmax(heights))
        brushes = ["#d9822b" if i == best and self.probs is not None else "#4a7ab8"
                   for i in range(10)]
        self.bars.setOpts(height=heights, brushes=brushes)
        if self.predictor.model is None:
            self.answer.setText("No model yet: start or load one.")
        elif self.probs is None:
            self.answer.setText("Draw a digit on the left.")
        else:
            name = name_of(self.class_names, best)
            self.answer.setText(f"It sees: <b>{html.escape(name)}</b> ({self.probs[best]:.0%})")
