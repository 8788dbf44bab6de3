"""Evaluation at each epoch end: a confusion matrix (click a cell to see its
images) and a gallery of test images with their predicted probabilities.

Fed with the probabilities the trainer computed on the test set at the end
of an epoch (``Snapshot.test_probs``: a fresh array, safe to keep).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPixmap
from PyQt6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                             QSplitter, QVBoxLayout, QWidget)

from cnnviz.data.classes import name_of, short_name
from cnnviz.gui.widgets import theme

# White -> deep blue, for row-normalised counts.
_BLUES = np.stack([np.interp(np.linspace(0, 1, 256), [0, 1], [a, b])
                   for a, b in ((255, 8), (255, 48), (255, 107))] + [np.full(256, 255)],
                  axis=1).astype(np.uint8)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: row = true class, column = predicted."""
    return np.bincount(labels.astype(np.int64) * classes + preds.astype(np.int64),
                       minlength=classes * classes).reshape(classes, classes)


def most_confidently_wrong(labels, probs, count: int = 32) -> np.ndarray:
    """Indices of wrong predictions, the most confident first."""
    preds = probs.argmax(axis=1)
    wrong = np.flatnonzero(preds != labels)
    conf = probs[wrong, preds[wrong]]
    return wrong[np.argsort(-conf, kind="stable")][:count]


def cell_indices(labels, probs, true: int, pred: int, count: int = 48) -> np.ndarray:
    """Test images of true class ``true`` predicted as ``pred``, most confident first."""
    preds = probs.argmax(axis=1)
    idx = np.flatnonzero((labels == true) & (preds == pred))
    return idx[np.argsort(-probs[idx, pred], kind="stable")][:count]


class ConfusionMatrixView(pg.PlotWidget):
    cell_clicked = pyqtSignal(int, int)    # true class, predicted class

    def __init__(self, parent=None, classes: int = 10):
        super().__init__(parent)
        self.setBackground(theme.BACKGROUND)
        self.classes = classes
        self.counts = np.zeros((classes, classes), np.int64)
        p = self.getPlotItem()
        p.setTitle("confusion matrix: click a cell to see its images",
                   color=theme.FOREGROUND)
        p.invertY(True)
        p.setAspectLocked(True)
        p.setMouseEnabled(False, False)
        p.hideButtons()
        for side, label in (("left", "true"), ("bottom", "predicted")):
            ax = p.getAxis(side)
            ax.setTextPen(theme.FOREGROUND)
            p.setLabel(side, label, color=theme.FOREGROUND)
        self.class_names: tuple[str, ...] = ()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(_BLUES)
        p.addItem(self.image)
        # the clicked cell's outline: which cell the gallery shows
        self.selected: tuple[int, int] | None = None
        self.outline = pg.PlotCurveItem(pen=pg.mkPen("#d9822b", width=3))
        self.outline.setZValue(10)
        p.addItem(self.outline)
        self.texts: list[list[pg.TextItem]] = []
        self.set_class_count(classes)
        self.scene().sigMouseClicked.connect(self._clicked)

    def set_class_count(self, classes: int) -> None:
        """classes x classes cells (a dataset of another size): the counts'
        texts rebuilt, the names back to the numbers until set."""
        p = self.getPlotItem()
        for row in self.texts:
            for t in row:
                p.removeItem(t)
        self.classes = classes
        self.counts = np.zeros((classes, classes), np.int64)
        self.texts = []
        for r in range(classes):
            row = []
            for c in range(classes):
                t = pg.TextItem("", anchor=(0.5, 0.5), color=theme.FOREGROUND)
                t.setPos(c + 0.5, r + 0.5)
                p.addItem(t)
                row.append(t)
            self.texts.append(row)
        self.image.clear()
        self.select(None)
        self.set_class_names(tuple(str(i) for i in range(classes)))
        p.setRange(xRange=(0, classes), yRange=(0, classes), padding=0.02)

    def select(self, cell: tuple[int, int] | None) -> None:
        """Outline the cell (true, predicted); None: no outline."""
        self.selected = cell
        if cell is None:
            self.outline.setData([], [])
            return
        r, c = cell
        self.outline.setData([c, c + 1, c + 1, c, c], [r, r, r + 1, r + 1, r])

    def set_class_names(self, names) -> None:
        """Rows are labelled with the full names, columns (narrow) with short ones."""
        self.class_names = tuple(names)
        p = self.getPlotItem()
        n = range(self.classes)
        p.getAxis("left").setTicks([[(i + 0.5, name_of(names, i)) for i in n]])
        # ten columns are about 40 px wide: six characters fit side by side;
        # fewer, wider columns take longer names
        length = max(6, 60 // max(self.classes, 1))
        p.getAxis("bottom").setTicks([[(i + 0.5, short_name(name_of(names, i), length))
                                       for i in n]])

    def set_counts(self, counts: np.ndarray) -> None:
        self.counts = counts
        rows = counts.sum(axis=1, keepdims=True).clip(min=1)
        # sqrt: the diagonal holds ~99% of a row; the root keeps errors visible.
        frac = np.sqrt(counts / rows).astype(np.float32)
        self.image.setImage(frac, autoLevels=False, levels=(0, 1))
        for r in range(self.classes):
            for c in range(self.classes):
                n = int(counts[r, c])
                t = self.texts[r][c]
                t.setText(str(n) if n else "")
                t.setColor("white" if frac[r, c] > 0.6 else theme.FOREGROUND)

    def _clicked(self, event) -> None:
        pos = self.getPlotItem().vb.mapSceneToView(event.scenePos())
        r, c = int(np.floor(pos.y())), int(np.floor(pos.x()))
        if 0 <= r < self.classes and 0 <= c < self.classes:
            self.cell_clicked.emit(r, c)


def thumbnail(image: np.ndarray, probs: np.ndarray, label: int, scale: int | None = None) -> QPixmap:
    """An image (uint8 (H, W) grey or (3, H, W) colour) with a tiny bar
    chart of its probabilities below: green bar = the true class, orange = a
    wrong prediction. ``scale``: screen pixels per image pixel (None: about
    60 pixels wide, at least 1)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    h, w = image.shape[-2:]
    scale = scale or max(1, round(60 / max(h, w)))
    bars_h = 18
    # pixels must outlive qimg (it borrows the buffer)
    if image.ndim == 3:
        pixels = np.ascontiguousarray(image.transpose(1, 2, 0), np.uint8)
        qimg = QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    else:
        pixels = np.ascontiguousarray(image, np.uint8)
        qimg = QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8)
    pix = QPixmap(w * scale, h * scale + bars_h)
    pix.fill(QColor(theme.BACKGROUND))
    p = QPainter(pix)
    p.drawImage(pix.rect().adjusted(0, 0, 0, -bars_h), qimg)
    k = len(probs)
    bw = (w * scale) / k
    pred = int(np.argmax(probs))
    for i, v in enumerate(probs):
        colour = "#2ca02c" if i == label else ("#d9822b" if i == pred else "#7f7f7f")
        bh = max(1, int(round(float(v) * (bars_h - 2))))
        p.fillRect(int(i * bw) + 1, h * scale + bars_h - bh, max(1, int(bw) - 1), bh,
                   QColor(colour))
    p.end()
    return pix


class Gallery(QScrollArea):
    """A grid of test images with captions and probability bars."""

    def __init__(self, parent=None, columns: int = 4):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.columns = columns
        self.title = QLabel("")
        self.title.setWordWrap(True)
        self._inner = QWidget()
        self._grid = QGridLayout()
        self._grid.setSpacing(6)
        box = QVBoxLayout(self._inner)
        box.addWidget(self.title)
        box.addLayout(self._grid)
        box.addStretch(1)
        self.setWidget(self._inner)
        self.indices: np.ndarray = np.empty(0, np.int64)

    def show_images(self, title: str, images, labels, probs, indices, names=()) -> None:
        """names: the class names (label i is names[i]); the number if none."""
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget() is not None:
                # hidden now: deleteLater only acts once control is back in
                # the event loop, and until then the old cells would show
                # through the new ones
                item.widget().hide()
                item.widget().deleteLater()
        self.title.setText(title)
        self.indices = np.asarray(indices)
        for n, i in enumerate(self.indices):
            pred = int(np.argmax(probs[i]))
            cell = QLabel()
            cell.setPixmap(thumbnail(images[i], probs[i], int(labels[i])))
            true = name_of(names, int(labels[i]))
            caption = QLabel(f"#{i}: {true}\n→ {name_of(names, pred)} {probs[i, pred]:.0%}")
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            cell.setToolTip(" · ".join(f"{name_of(names, k)}: {p:.2f}"
                                       for k, p in enumerate(probs[i])))
            box = QVBoxLayout()
            box.setSpacing(0)
            box.addWidget(cell, alignment=Qt.AlignmentFlag.AlignHCenter)
            box.addWidget(caption)
            holder = QWidget()
            holder.setLayout(box)
            self._grid.addWidget(holder, n // self.columns, n % self.columns)


class EvaluationPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.matrix = ConfusionMatrixView()
        self.gallery = Gallery()
        self.wrong_button = QPushButton("Most confidently wrong")
        self.wrong_button.clicked.connect(self.show_most_wrong)
        self.summary = QLabel("The test set is evaluated at the end of each epoch.")
        self.summary.setWordWrap(True)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.summary)
        lv.addWidget(self.matrix, 1)
        lv.addWidget(self.wrong_button)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.gallery)
        split.setSizes([600, 560])
        layout = QHBoxLayout(self)
        layout.addWidget(split)
        self.images = self.labels = self.probs = None
        self.names: tuple[str, ...] = ()
        self.matrix.cell_clicked.connect(self.show_cell)

    def set_results(self, images: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                    caption: str = "", names=()) -> None:
        """names: the dataset's class names (label i is names[i])."""
        self.images, self.labels, self.probs = images, np.asarray(labels), probs
        classes = probs.shape[1]
        if classes != self.matrix.classes:
            self.matrix.set_class_count(classes)
        self.names = tuple(names) or tuple(str(i) for i in range(classes))
        self.matrix.set_class_names(self.names)
        preds = probs.argmax(axis=1)
        self.matrix.set_counts(confusion_matrix(self.labels, preds, classes))
        acc = float(np.mean(preds == self.labels))
        self.summary.setText(f"{caption}test accuracy {acc:.2%}: "
                             f"{int(np.sum(preds != self.labels))} of {len(labels)} wrong")
        self.show_most_wrong()

    def show_most_wrong(self) -> None:
        if self.probs is None:
            return
        self.matrix.select(None)
        idx = most_confidently_wrong(self.labels, self.probs)
        if not len(idx):
            title = (f"No test image is wrong: all {len(self.labels):,} are classified "
                     f"right (click a cell of the matrix to see them)")
        else:
            which = ("The only wrong test image" if len(idx) == 1 else
                     f"The {len(idx)} most confidently wrong test images")
            title = (f"{which} (caption: true → predicted, confidence; bars: "
                     f"probabilities of {self._range_text()}, green = true class)")
        self.gallery.show_images(title, self.images, self.labels, self.probs, idx, self.names)

    def _range_text(self) -> str:
        first, last = self.names[0], name_of(self.names, self.probs.shape[1] - 1)
        return f"{first} … {last}"

    def show_cell(self, true: int, pred: int) -> None:
        if self.probs is None:
            return
        self.matrix.select((true, pred))
        idx = cell_indices(self.labels, self.probs, true, pred)
        n = int(self.matrix.counts[true, pred])
        self.gallery.show_images(f"True {name_of(self.names, true)}, predicted "
                                 f"{name_of(self.names, pred)}: {n} test images"
                                 f"{' (the 48 most confident shown)' if n > len(idx) else ''}",
                                 self.images, self.labels, self.probs, idx, self.names)
