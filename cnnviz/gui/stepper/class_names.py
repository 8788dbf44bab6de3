"""What the stepped network's classes are called, and the Target box that
names them ("3 ship", not "3", for a network trained on CIFAR-10).

The names come with the network: a model file's or checkpoint's metadata
(``saved_class_names``), or the Training tab's dataset for its model (the
main window puts them in the copy's metadata). A network without names is
numbered 0..k-1 for its own k outputs, unless the MNIST digit fed comes from
a dataset that names exactly k classes (Fashion-MNIST): then the target is
that dataset's label, and its names are the ones it means.
"""

from __future__ import annotations

from PyQt6.QtGui import QValidator
from PyQt6.QtWidgets import QSpinBox

from cnnviz.data.classes import numbered, saved_class_names

SHOWN_NAME_LENGTH = 14          # the Target box shows "3 automobile", cut beyond this


def network_class_names(model, outputs: int, data_names=()) -> tuple[tuple[str, ...], str]:
    """(one name per output, a sentence when the file's names could not all be
    used) for ``model`` with ``outputs`` class scores; ``data_names``: the
    names of the dataset the fed digit comes from, used only when the network
    names none and the dataset has exactly ``outputs`` classes."""
    metadata = getattr(model, "metadata", None)
    if isinstance(metadata, dict) and "class_names" in metadata:
        return saved_class_names(metadata, outputs)
    data_names = tuple(data_names)
    return (data_names if len(data_names) == outputs else numbered(outputs)), ""


def class_text(names, value: int, length: int = SHOWN_NAME_LENGTH) -> str:
    """"3 ship"; "3" when the class is called by its number."""
    name = names[value] if 0 <= value < len(names) else str(value)
    if name == str(value):
        return name
    return f"{value} {name if len(name) <= length else name[:length - 1] + chr(0x2026)}"


class ClassSpin(QSpinBox):
    """A spin box over a network's classes that shows each by number and name;
    typing a number or the start of a name picks the class."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.names: tuple[str, ...] = numbered(10)
        self.setMaximum(9)

    def set_names(self, names) -> None:
        """The network's classes: the range becomes 0..len(names)-1, the text
        the current class's name, the width the widest name's."""
        self.names = tuple(names)
        blocked = self.blockSignals(True)
        self.setMaximum(max(len(self.names) - 1, 0))
        self.lineEdit().setText(self.textFromValue(self.value()))
        self.blockSignals(blocked)
        fm = self.fontMetrics()
        ends = max(fm.horizontalAdvance(self.textFromValue(v)) for v in (0, self.maximum()))
        widest = max(fm.horizontalAdvance(self.textFromValue(v))
                     for v in range(self.maximum() + 1))
        # Qt sizes a spin box for its first and last value only
        self.setMinimumWidth(super().sizeHint().width() + max(widest - ends, 0))

    def textFromValue(self, value: int) -> str:
        return class_text(self.names, value)

    def valueFromText(self, text: str) -> int:
        found = self._find(text)
        return self.value() if found is None else found

    def validate(self, text: str, pos: int):
        if self._find(text) is not None:
            return QValidator.State.Acceptable, text, pos
        typed = text.strip().lower()
        if not typed or any(self.textFromValue(v).lower().startswith(typed) or
                            self._name(v).lower().startswith(typed)
                            for v in range(self.maximum() + 1)):
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Invalid, text, pos

    def _name(self, value: int) -> str:
        return self.names[value] if value < len(self.names) else str(value)

    def _find(self, text: str) -> int | None:
        """The class ``text`` names: its number (alone or before its name) or its whole name."""
        typed = text.strip()
        head = typed.split(" ", 1)[0]
        if head.isdigit() and int(head) <= self.maximum():
            return int(head)
        for v in range(self.maximum() + 1):
            if typed.lower() in (self._name(v).lower(), self.textFromValue(v).lower()):
                return v
        return None
