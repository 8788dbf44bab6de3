"""Try the model on a picture of your own, where the data is not digits to draw.

"Load an image..." reads any file ``load_image`` reads, makes it what the
network takes (grey or colour, resized to the dataset's height and width:
``network_input``) and shows that converted image beside the model's
probabilities for every class. It predicts with the same private copy of the
model as the drawing canvas (draw_canvas.Predictor), refreshed at each
training snapshot.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from cnnviz.data.classes import name_of, short_name
from cnnviz.data.images import ImageLoadError, load_image, resize, to_grey
from cnnviz.gui.settings import last_dir, remember_dir
from cnnviz.gui.training.draw_canvas import Predictor
from cnnviz.gui.widgets import theme

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp *.gif);;All files (*)"


def network_input(picture: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    """A picture from load_image ((H, W) grey or (H, W, 3) RGB, float in
    [0, 1]) as the network's input (channels, height, width): resized whole
    (the aspect ratio is not kept, as the dataset's images were made),
    converted to grey or repeated into three channels as needed."""
    picture = np.asarray(picture, np.float32)
    if channels == 1:
        img = resize(to_grey(picture), (height, width))[None]
    else:
        rgb = picture if picture.ndim == 3 else np.repeat(picture[..., None], 3, axis=2)
        img = resize(rgb, (height, width)).transpose(2, 0, 1)
    return np.ascontiguousarray(np.clip(img, 0, 1), np.float32)


class PicturePanel(QWidget):
    """The button, the converted picture and the model's probabilities."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.predictor = Predictor()
        self.input_shape = (1, 28, 28)
        self.class_names: tuple[str, ...] = tuple(str(i) for i in range(10))
        self.picture: np.ndarray | None = None       # as loaded
        self.converted: np.ndarray | None = None     # (C, H, W): what the network sees
        self.probs: np.ndarray | None = None
        self.path: str | None = None

        self.load_button = QPushButton("Load an image...")
        self.load_button.clicked.connect(self._ask_image)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.load_button)
        top.addWidget(self.note, 1)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground(theme.BACKGROUND)
        self.view = self.plots.addViewBox(row=0, col=0, lockAspect=True, invertY=True)
        self.view.setMouseEnabled(False, False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)
        self.bar_plot = self.plots.addPlot(row=0, col=1, title="prediction")
        self.bar_plot.setYRange(0, 1, padding=0.02)
        self.bar_plot.setMouseEnabled(False, False)
        self.bars = pg.BarGraphItem(x=np.arange(10), height=np.zeros(10), width=0.7,
                                    brush="#4a7ab8")
        self.bar_plot.addItem(self.bars)
        self.answer = QLabel("")
        self.answer.setStyleSheet("font-size: 14pt;")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.plots, 1)
        layout.addWidget(self.answer)
        self._set_classes()
        self.refresh()

    # --- what the panel predicts with ------------------------------------------------------
    def set_input_shape(self, channels: int, height: int, width: int) -> None:
        """The dataset's image shape: a loaded picture is converted to it again."""
        shape = (int(channels), int(height), int(width))
        if shape != self.input_shape:
            self.input_shape = shape
            self._convert()
            self.refresh()

    def set_class_names(self, names) -> None:
        names = tuple(names)
        if names != self.class_names:
            self.class_names = names
            self._set_classes()
            self.refresh()

    def set_model(self, model) -> None:
        self.predictor.set_model(model)
        self.refresh()

    def set_weights(self, weights: dict) -> None:
        self.predictor.set_weights(weights)
        self.refresh()

    # --- the picture ----------------------------------------------------------------------
    def _ask_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load an image", last_dir(), IMAGE_FILTER)
        if path:
            remember_dir(path)
            self.load(path)

    def load(self, path) -> bool:
        """Load ``path`` and predict; False (and the one-line reason shown) if unreadable."""
        try:
            picture = load_image(path, downscale=True)
        except ImageLoadError as e:
            self.note.setText(f"<span style='color:#b00020'>{html.escape(str(e))}</span>")
            return False
        self.picture, self.path = picture, str(path)
        self._convert()
        self.refresh()
        return True

    def _convert(self) -> None:
        if self.picture is not None:
            self.converted = network_input(self.picture, *self.input_shape)

    def _set_classes(self) -> None:
        n = len(self.class_names)
        self.bar_plot.setXRange(-0.6, n - 0.4, padding=0)
        self.bar_plot.getAxis("bottom").setTicks(
            [[(i, short_name(name_of(self.class_names, i))) for i in range(n)]])

    def refresh(self) -> None:
        c, h, w = self.input_shape
        if self.picture is not None:
            ph, pw = self.picture.shape[:2]
            kind = "colour" if self.picture.ndim == 3 else "grey"
            self.note.setText(html.escape(f"{Path(self.path).name}: {pw}x{ph} {kind}; the "
                                          f"network sees it as {c}x{h}x{w} (left)"))
        if self.converted is None:
            self.image_item.clear()
        else:
            shown = self.converted[0] if c == 1 else self.converted.transpose(1, 2, 0)
            self.image_item.setImage(shown, autoLevels=False, levels=(0, 1))
            self.view.setRange(xRange=(0, w), yRange=(0, h), padding=0)
        self.probs = None
        if self.converted is not None and self.predictor.model is not None:
            try:
                self.probs = self.predictor.probabilities(self.converted)
            except ValueError as e:     # a model that does not take this shape
                self.answer.setText(html.escape(f"The model cannot take this input: {e}"))
                return
        n = len(self.class_names) if self.probs is None else len(self.probs)
        heights = np.zeros(n) if self.probs is None else self.probs
        best = int(np.argmax(heights))
        brushes = ["#d9822b" if i == best and self.probs is not None else "#4a7ab8"
                   for i in range(n)]
        self.bars.setOpts(x=np.arange(n), height=heights, brushes=brushes)
        if self.predictor.model is None:
            self.answer.setText("No model yet: start or load one.")
        elif self.probs is None:
            self.answer.setText("Load an image to see what the model makes of it.")
        else:
            name = name_of(self.class_names, best)
            self.answer.setText(f"It sees: <b>{html.escape(name)}</b> ({self.probs[best]:.0%})")
