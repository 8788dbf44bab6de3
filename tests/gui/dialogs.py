"""Answering the program's question boxes in tests."""

import time

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QMessageBox


class Answer:
    """Clicks ``button`` in the next question box, polling until one is up
    or until ``stop()``. Stop it when no question may come: a poller left
    running would answer a later test's question (it once made a later
    test's Cancel a Discard)."""

    def __init__(self, button):
        self.button, self.asked, self.stopped = button, [], False
        self.clicked_at = None
        QTimer.singleShot(20, self._poll)

    def _poll(self):
        if self.stopped:
            return
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            self.asked.append(box.text())
            self.clicked_at = time.perf_counter()
            box.button(self.button).click()
            self.stopped = True
        else:
            QTimer.singleShot(20, self._poll)

    def stop(self):
        self.stopped = True


class AnswerEach(Answer):
    """Answers every question box until stopped (closing the window asks
    each tab with unsaved work: the Training tab, then the builder)."""

    def _poll(self):
        if self.stopped:
            return
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.isVisible():
            self.asked.append(box.text())
            box.button(self.button).click()
        QTimer.singleShot(20, self._poll)
