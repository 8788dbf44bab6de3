"""Browse MNIST digits: split, index, random, a strip of thumbnails, the label.

    browser = MnistBrowser()
    browser.digit_chosen.connect(lambda image, label, split, index: ...)

``MnistDialog`` wraps it with "Use this digit" / "Cancel". The dataset loads
on first use (cnnviz.data.mnist caches it).
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QIcon, QImage, QPixmap
from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QHBoxLayout, QLabel,
                             QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget)

STRIP = 10
THUMB = 40
PREVIEW = 168


def digit_pixmap(image: np.ndarray, side: int) -> QPixmap:
    img = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = img.shape
    qimage = QImage(img.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QPixmap.fromImage(qimage).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.FastTransformation)


class MnistBrowser(QWidget):
    digit_chosen = pyqtSignal(object, int, str, int)    # image uint8 (28, 28), label, split, index
    current_changed = pyqtSignal(int)

    def __init__(self, parent=None, data_dir=None):
        super().__init__(parent)
        self.data_dir = data_dir
        self._splits: dict = {}
        self._rng = np.random.default_rng()
        layout = QVBoxLayout(self)

        row = QHBoxLayout()
        row.addWidget(QLabel("Split"))
        self.split_box = QComboBox()
        self.split_box.addItems(["train", "test"])
        row.addWidget(self.split_box)
        row.addWidget(QLabel("Index"))
        self.index_spin = QSpinBox(minimum=0, maximum=0)
        self.index_spin.setMinimumWidth(80)
        row.addWidget(self.index_spin)
        self.random_button = QPushButton("Random")
        row.addWidget(self.random_button)
        row.addStretch(1)
        layout.addLayout(row)

        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW, PREVIEW)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label_text = QLabel()
        self.label_text.setStyleSheet("font-size: 16pt;")
        preview_row = QHBoxLayout()
        preview_row.addWidget(self.preview)
        preview_row.addWidget(self.label_text, 1)
        layout.addLayout(preview_row)

        strip = QHBoxLayout()
        strip.setSpacing(2)
        self.thumbs: list[QToolButton] = []
        for k in range(STRIP):
            button = QToolButton()
            button.setFixedSize(THUMB + 6, THUMB + 18)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.clicked.connect(lambda _=False, k=k: self._on_thumb(k))
            strip.addWidget(button)
            self.thumbs.append(button)
        strip.addStretch(1)
        layout.addLayout(strip)

        self.split_box.currentTextChanged.connect(lambda _: self._on_split())
        self.index_spin.valueChanged.connect(lambda _: self._show())
        self.random_button.clicked.connect(self.pick_random)
        self._on_split()

    # --- data --------------------------------------------------------------------------
    @property
    def split(self) -> str:
        return self.split_box.currentText()

    def _data(self):
        if self.split not in self._splits:
            from cnnviz.data.mnist import load_mnist

            self._splits[self.split] = load_mnist(self.data_dir, split=self.split)
        return self._splits[self.split]

    def current(self) -> tuple[np.ndarray, int, str, int]:
        data = self._data()
        i = self.index_spin.value()
        return np.array(data.images[i]), int(data.labels[i]), self.split, i

    # --- reactions -----------------------------------------------------------------------
    def _on_split(self) -> None:
        n = len(self._data().labels)
        self.index_spin.setMaximum(n - 1)
        self._show()

    def pick_random(self) -> None:
        self.index_spin.setValue(int(self._rng.integers(0, self.index_spin.maximum() + 1)))

    def _strip_start(self) -> int:
        i, n = self.index_spin.value(), self.index_spin.maximum() + 1
        return max(0, min(i - STRIP // 2, n - STRIP))

    def _show(self) -> None:
        data = self._data()
        image, label, _, index = self.current()
        self.preview.setPixmap(digit_pixmap(image, PREVIEW))
        self.label_text.setText(f"label: <b>{label}</b><br><small>{self.split} #{index}</small>")
        start = self._strip_start()
        for k, button in enumerate(self.thumbs):
            j = start + k
            pixmap = digit_pixmap(data.images[j], THUMB)
            button.setIcon(QIcon(pixmap))
            button.setIconSize(pixmap.size())
            button.setText(str(int(data.labels[j])))
            button.setToolTip(f"{self.split} #{j}, label {int(data.labels[j])}")
            button.setDown(j == index)
        self.current_changed.emit(index)

    def _on_thumb(self, k: int) -> None:
        self.index_spin.setValue(self._strip_start() + k)

    def choose(self) -> None:
        self.digit_chosen.emit(*self.current())


class MnistDialog(QDialog):
    def __init__(self, parent=None, data_dir=None):
        super().__init__(parent)
        self.setWindowTitle("Open MNIST digit")
        layout = QVBoxLayout(self)
        self.browser = MnistBrowser(self, data_dir)
        layout.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.use_button = buttons.addButton("Use this digit",
                                            QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self._use)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _use(self) -> None:
        self.browser.choose()
        self.accept()
