"""Counting paint events: an event filter to install on the viewports a test watches."""

from PyQt6.QtCore import QEvent, QObject


class PaintCounter(QObject):
    def __init__(self):
        super().__init__()
        self.count = 0

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False
