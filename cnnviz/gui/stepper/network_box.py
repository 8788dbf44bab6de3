"""The Layer Stepper's Network box: the built-in networks, the lessons, the
ready architectures, the file entries, the Training tab's model and one
entry for the network loaded from a file or given in code.

Each entry's data is (kind, key): ("model", "trained"), ("lesson", "ex1"),
("arch", "arch:lenet5-1998"), ("file", ""), ("arch_file", ""),
("loaded", path), ("code", "code"), ("training", "training").
"""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QComboBox

MODEL_FILE_ITEM = "Model file..."
ARCH_FILE_ITEM = "Architecture file (.json)..."
ARCH_PREFIX = "arch:"       # keys of the ready architectures
TRAINING_ITEM = "Model from Training"
STEPPED_CHANNELS = (1, 3)   # the Stepper feeds one grey or colour picture
TRAINING_TIP = ("The Training tab's model as it is now (a copy: training goes on without "
                "changing it); choose again for newer weights")


def unsteppable(path) -> str | None:
    """Why a ready architecture cannot be stepped (its input is not a grey
    or colour picture, as the 1x1 bottleneck's 256 maps), or None."""
    from cnnviz.engine.architecture import ArchitectureError, read

    try:
        c, h, w = read(path).input_shape
    except (ArchitectureError, OSError, ValueError) as e:
        return f"{path.name} cannot be read: {e}"
    if c in STEPPED_CHANNELS:
        return None
    return (f"{path.stem} takes {c}x{h}x{w} inputs ({c} maps, not a picture): the Stepper "
            f"feeds one grey or colour picture; see its table in the Network builder")


class NetworkBox(QComboBox):
    """``about_to_pop_up`` lets the tab say which entries can be chosen right
    now (the Training tab's model needs a run)."""

    about_to_pop_up = pyqtSignal()

    def showPopup(self) -> None:
        self.about_to_pop_up.emit()
        super().showPopup()

    def fill(self, titles: dict, trained_problem: str | None, lessons: dict,
             architectures: dict) -> None:
        for key, title in titles.items():
            self.addItem(title, ("model", key))
        if trained_problem:
            self.set_item_enabled(0, False, trained_problem)
        else:
            self.setItemData(0, "LeNet-5 trained by cnnviz train (see "
                                "resources/models/PROVENANCE.md)", Qt.ItemDataRole.ToolTipRole)
        self.insertSeparator(self.count())
        for key, lesson in lessons.items():
            self.addItem(lesson.title, ("lesson", key))
        self.insertSeparator(self.count())
        for stem, path in architectures.items():    # untrained, seed 0
            self._add(f"{stem} (architecture, untrained)", ("arch", ARCH_PREFIX + stem),
                      f"The ready architecture {stem}.json, its weights drawn with seed 0")
            problem = unsteppable(path)
            if problem:
                self.set_item_enabled(self.count() - 1, False, problem)
        self.insertSeparator(self.count())
        self.addItem(MODEL_FILE_ITEM, ("file", ""))
        self._add(ARCH_FILE_ITEM, ("arch_file", ""), "A network described in JSON "
                  "(docs/architecture-format.md), untrained, seed 0")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(34)    # "LeNet-5 (trained, 99.34% on MNIST)"
        self.setToolTip("A built-in network, a lesson from the notes, a ready architecture, a "
                        "model file saved by cnnviz or an architecture file")

    def _add(self, text: str, data: tuple, tip: str) -> None:
        self.addItem(text, data)
        self.setItemData(self.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

    def select(self, key: str) -> None:
        for i in range(self.count()):
            data = self.itemData(i)
            if data and data[1] == key:
                self.setCurrentIndex(i)
                return

    def show_entry(self, text: str, data: tuple, tip: str) -> None:
        """One entry for the network loaded from a file or given in code, above
        "Model file..." (which stays the way to open another); it replaces the
        previous one."""
        file_row = self.findData(("file", ""))
        previous = self.itemData(file_row - 1)
        if previous and previous[0] in ("loaded", "code"):
            self.removeItem(file_row - 1)
            file_row -= 1
        self.insertItem(file_row, text, data)
        self.setItemData(file_row, tip, Qt.ItemDataRole.ToolTipRole)
        self.setCurrentIndex(file_row)

    def set_item_enabled(self, row: int, enabled: bool, tip: str) -> None:
        item = self.model().item(row)
        item.setEnabled(enabled)
        item.setToolTip(tip)

    def training_row(self) -> int:
        return self.findData(("training", "training"))

    def add_training_item(self, row: int) -> None:
        if self.training_row() < 0:
            self.insertItem(row, TRAINING_ITEM, ("training", "training"))
            self.setItemData(row, TRAINING_TIP, Qt.ItemDataRole.ToolTipRole)
