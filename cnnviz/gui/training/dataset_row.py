"""The set-up panel's dataset rows: which dataset, its options, its loading.

Choices: the bundled MNIST, a directory of the four IDX files, an image
folder (one subfolder per class; the images resized to a side and made grey
or colour as chosen here), a CIFAR-10 directory (its binary batches) and the
generated coloured MNIST. ``spec()`` is the choice as a DatasetSpec
(cnnviz/data/datasets.py); a path is asked for when its kind is chosen, and
choosing nothing goes back to the previous choice. The progress bar and its
Cancel button show a load in flight (the tab runs it: dataset_loader.py).
"""

from __future__ import annotations

from pathlib import Path

from cnnviz.gui.widgets.narrow_combo import narrow
from PyQt6.QtCore import QSignalBlocker, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QProgressBar,
                             QPushButton, QSpinBox, QWidget)

from cnnviz.gui.settings import last_dir, remember_dir

# (label, kind, what the directory dialog asks for; None: no path)
KINDS = [
    ("Bundled MNIST", "mnist", None),
    ("IDX directory...", "idx", "A directory with the four MNIST IDX files"),
    ("Image folder...", "folder", "A folder with one subfolder of images per class"),
    ("CIFAR-10 directory...", "cifar10", "The CIFAR-10 binary directory (data_batch_1.bin ...)"),
    ("Coloured MNIST (generated)", "colored-mnist", None),
]
NEEDS_PATH = {kind for _, kind, ask in KINDS if ask}
DEFAULT_FOLDER_SIZE = 32


def dataset_spec(kind: str, path=None, size=None, colour=None):
    """A choice (kind, path, side, colour) as a DatasetSpec (imported here:
    the data layer is loaded on first use)."""
    from cnnviz.data.datasets import DatasetSpec
    return DatasetSpec(kind=kind, path=None if path is None else str(path),
                       size=None if size is None else (int(size), int(size)), colour=colour)


def load_choice(key, progress=None, cancel=None):
    """(train, test) of a choice (kind, path, side, colour): load_dataset,
    imported here, in the loading thread (the import is not the GUI's wait)."""
    from cnnviz.data.datasets import load_dataset
    return load_dataset(dataset_spec(*key), progress, cancel)


def describe(key) -> str:
    """A choice (kind, path, size, colour) in words for the user:
    "image folder /data/pets (32x32, colour)"."""
    kind, path, size, colour = key
    what = {"mnist": "the bundled MNIST", "idx": "IDX directory", "folder": "image folder",
            "cifar10": "CIFAR-10 directory", "colored-mnist": "coloured MNIST (generated)"}
    text = what.get(kind, kind)
    if path:
        text += f" {path}"
    if kind == "folder" and size:
        text += f" ({size}x{size}, {'colour' if colour else 'grey'})"
    return text


def choice_shape(key):
    """(C, H, W) of the images of a choice, or None if only loading tells
    (an IDX directory, a folder of its own colours)."""
    kind, _, size, colour = key
    if kind == "mnist":
        return (1, 28, 28)
    if kind == "colored-mnist":
        return (3, 28, 28)
    if kind == "cifar10":
        return (3, 32, 32)
    if kind == "folder" and size and colour is not None:
        return (3 if colour else 1, size, size)
    return None


def fitting_choice(shape, paths: dict):
    """A choice (kind, path, size, colour) whose images are ``shape``
    (C, H, W), among the kinds at hand (those needing a directory: only if
    one was chosen before); None if there is none."""
    c, h, w = shape
    for kind in ("mnist", "colored-mnist", "cifar10"):
        key = (kind, paths.get(kind) if kind in NEEDS_PATH else None, None, None)
        if choice_shape(key) == tuple(shape) and (kind not in NEEDS_PATH or key[1]):
            return key
    if paths.get("folder") and h == w and c in (1, 3) and 8 <= h <= 256:
        return ("folder", paths["folder"], h, c == 3)
    return None


def data_that_fits(shape) -> str:
    """The kinds of data whose images are ``shape`` (C, H, W), in words."""
    c, h, w = shape
    words = {(1, 28, 28): "the bundled MNIST, an IDX directory or an image folder "
                          "(28 px, grey)",
             (3, 28, 28): "Coloured MNIST or an image folder (28 px, colour)",
             (3, 32, 32): "a CIFAR-10 directory or an image folder (32 px, colour)"}
    if tuple(shape) in words:
        return words[tuple(shape)]
    if h == w and c in (1, 3):
        return f"an image folder ({h} px, {'colour' if c == 3 else 'grey'})"
    return f"{c}x{h}x{w} images, which no dataset here gives"


class DatasetRow(QWidget):
    """The combo box, the path, the folder's options; the load's progress."""

    changed = pyqtSignal()            # another dataset (or other options) chosen
    cancel_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.combo = narrow(QComboBox())       # the column's width, not its longest entry
        for label, kind, _ in KINDS:
            self.combo.addItem(label, kind)
        self.combo.activated.connect(self._chosen)
        self.paths: dict[str, str] = {}        # kind -> the directory chosen for it
        self._kind = "mnist"                   # the current choice (for going back)

        self.path_label = QLabel("")
        self.path_label.setWordWrap(True)
        self.options = QWidget()
        row = QHBoxLayout(self.options)
        row.setContentsMargins(0, 0, 0, 0)
        self.size = QSpinBox(minimum=8, maximum=256, value=DEFAULT_FOLDER_SIZE, suffix=" px")
        self.size.setToolTip("Every image is resized to this height and width.")
        self.colour = QComboBox()
        self.colour.addItem("colour", True)
        self.colour.addItem("grey", False)
        row.addWidget(QLabel("size"))
        row.addWidget(self.size)
        row.addWidget(self.colour)
        row.addStretch(1)
        self.size.valueChanged.connect(self.changed)
        self.colour.currentIndexChanged.connect(self.changed)
        # Size and colour follow the network's input until the user sets them
        # (as the CLI's folder defaults do): changes made here are signal-blocked.
        self.options_set = False
        self.size.valueChanged.connect(self._options_edited)
        self.colour.currentIndexChanged.connect(self._options_edited)

        self.progress_row = QWidget()
        prow = QHBoxLayout(self.progress_row)
        prow.setContentsMargins(0, 0, 0, 0)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.cancel_button)
        self.progress_row.hide()
        self._update()

    # --- the choice --------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.combo.currentData()

    def _chosen(self, index: int) -> None:
        kind = self.combo.itemData(index)
        if kind in NEEDS_PATH:
            ask = next(a for _, k, a in KINDS if k == kind)
            start = self.paths.get(kind) or last_dir()
            path = QFileDialog.getExistingDirectory(self, ask, start)
            if not path:                     # nothing chosen: the previous choice stays
                with QSignalBlocker(self.combo):
                    self.combo.setCurrentIndex(self.combo.findData(self._kind))
                return
            remember_dir(path)
            self.paths[kind] = path
        self._kind = kind
        self._update()
        self.changed.emit()

    def set_choice(self, kind: str, path=None, size=None, colour=None) -> None:
        """Show a choice without asking for anything (a restored or loaded
        run's); emits ``changed`` only when the choice differs."""
        before = self.spec_key()
        with QSignalBlocker(self.combo), QSignalBlocker(self.size), QSignalBlocker(self.colour):
            i = self.combo.findData(kind)
            self.combo.setCurrentIndex(max(i, 0))
            self._kind = self.combo.currentData()
            if path is not None:
                self.paths[self._kind] = str(path)
            if size:
                self.size.setValue(int(size))
            if colour is not None:
                self.colour.setCurrentIndex(self.colour.findData(bool(colour)))
            if size or colour is not None:
                self.options_set = True       # a run's or a session's own: kept
        self._update()
        if self.spec_key() != before:
            self.changed.emit()

    def _options_edited(self, *_) -> None:
        self.options_set = True

    def follow_network(self, shape) -> None:
        """An image folder's size and colour become the network's input
        (C, H, W), unless the user set them; None (the network does not say),
        a non-square or other-channel input: left as they are."""
        if shape is None or self.options_set:
            return
        c, h, w = shape
        if h != w or c not in (1, 3) or not (self.size.minimum() <= h <= self.size.maximum()):
            return
        before = self.spec_key()
        with QSignalBlocker(self.size), QSignalBlocker(self.colour):
            self.size.setValue(int(h))
            self.colour.setCurrentIndex(self.colour.findData(c == 3))
        if self.spec_key() != before:
            self.changed.emit()

    def spec_key(self) -> tuple:
        """The choice as plain values: (kind, path, size, colour)."""
        kind = self.kind
        folder = kind == "folder"
        return (kind, self.paths.get(kind) if kind in NEEDS_PATH else None,
                self.size.value() if folder else None,
                self.colour.currentData() if folder else None)

    def spec(self):
        return dataset_spec(*self.spec_key())

    def _update(self) -> None:
        kind = self.kind
        path = self.paths.get(kind) if kind in NEEDS_PATH else None
        self.path_label.setText(f"<small>{Path(path).name or path}</small>" if path else "")
        self.path_label.setToolTip(path or "")
        self.path_label.setVisible(bool(path))
        self.options.setVisible(kind == "folder")

    # --- loading ---------------------------------------------------------------------------
    def show_progress(self, done: int, total: int, what: str = "") -> None:
        self.progress_row.show()
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, max(total, 1)))
        self.progress.setFormat(f"{what or 'loading'}: {done:,} / {total:,}")

    def loading(self, text: str = "loading") -> None:
        """A load has begun (its first progress report may be a while away)."""
        self.progress_row.show()
        self.progress.setRange(0, 0)         # busy until the first report
        self.progress.setFormat(text)

    def done_loading(self) -> None:
        self.progress_row.hide()

    def set_editable(self, enabled: bool) -> None:
        for w in (self.combo, self.size, self.colour):
            w.setEnabled(enabled)
