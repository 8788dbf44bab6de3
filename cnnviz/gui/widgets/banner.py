"""An inline message strip (error / warning / info) with optional action buttons.

Used instead of modal dialogs for things the user can fix in place: a kernel
that leaves no output pixels, an unreadable file, a large image to downscale.
"""

from __future__ import annotations

from typing import Callable

from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy

STYLES = {
    "error": "background: #fde2e2; border: 1px solid #d46a6a; color: #6b0000;",
    "warning": "background: #fff3cd; border: 1px solid #d6b656; color: #5c4400;",
    "info": "background: #e3effc; border: 1px solid #7aa7d6; color: #0d3563;",
}


class Banner(QFrame):
    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        # Ignored: a word longer than the window (a path, a 4,000-digit
        # number) wraps where it must instead of widening the window for good
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.label, 1)
        self._layout = layout
        self.buttons: dict[str, QPushButton] = {}
        self.kind = ""
        self.hide()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisibleTo(self.parentWidget()) else ""

    def show_message(self, text: str, kind: str = "error",
                     actions: list[tuple[str, Callable[[], None]]] = ()) -> None:
        self._clear_buttons()
        self.kind = kind
        self.setStyleSheet(f"Banner {{ {STYLES[kind]} }} QLabel {{ border: none; }}")
        self.label.setText(text)
        for label, callback in actions:
            button = QPushButton(label)
            button.clicked.connect(lambda _=False, cb=callback: cb())
            self._layout.addWidget(button)
            self.buttons[label] = button
        close = QPushButton("\u2715")
        close.setFlat(True)
        close.setToolTip("Dismiss")
        close.setFixedWidth(24)
        close.clicked.connect(self.clear)
        self._layout.addWidget(close)
        self.buttons["dismiss"] = close
        self.show()

    def clear(self) -> None:
        self._clear_buttons()
        self.label.setText("")
        self.kind = ""
        self.hide()

    def _clear_buttons(self) -> None:
        for button in self.buttons.values():
            self._layout.removeWidget(button)
            button.deleteLater()
        self.buttons = {}
