"""Decode image files off the GUI thread, newest request wins.

Decoding a 20000 x 20000 PNG to downscale it takes seconds (2.5 s grey, 6 s
RGB on the 2-core machine of the README); on the GUI thread the window froze.
``ImageLoader`` owns a QThread with a worker moved into it, as
``worker.PipelineRunner`` does. ``submit()`` never blocks and returns a
ticket: while one decode runs, a new request replaces any waiting one (only
one big decode in memory at a time), and results of requests the user has
since replaced are dropped here, so the lab only ever sees the latest.
"""

from __future__ import annotations

import logging
from typing import Callable

from PyQt6.QtCore import QCoreApplication, QObject, QThread, pyqtSignal, pyqtSlot

log = logging.getLogger(__name__)

Job = Callable[[], object]   # runs on the loader thread, returns an InputImage


def run_job(job: Job) -> tuple[object | None, str]:
    """(result, "") or (None, a message for the user); never raises."""
    from cnnviz.data.images import ImageLoadError

    try:
        return job(), ""
    except ImageLoadError as exc:
        return None, str(exc)
    except MemoryError:
        return None, "out of memory while decoding it"
    except Exception as exc:   # OpenCV or numpy surprises: still a message, not a crash
        log.exception("loading an image failed")
        return None, f"{type(exc).__name__}: {exc}"


class _Worker(QObject):
    done = pyqtSignal(int, object, str)   # ticket, result or None, message

    @pyqtSlot(int, object)
    def run(self, ticket: int, job: Job) -> None:
        result, message = run_job(job)
        self.done.emit(ticket, result, message)


class ImageLoader(QObject):
    loaded = pyqtSignal(int, object)   # ticket, InputImage (only the latest ticket)
    failed = pyqtSignal(int, str)      # ticket, message for the user
    _start = pyqtSignal(int, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("kernel-lab-image-loader")
        self._worker = _Worker()
        self._worker.moveToThread(self._thread)
        self._start.connect(self._worker.run)
        self._worker.done.connect(self._on_done)
        self._running: int | None = None
        self._pending: tuple[int, Job] | None = None
        self.latest = 0
        self._thread.start()
        app = QCoreApplication.instance()
        if app is not None:   # safety net when no window calls stop() on close
            app.aboutToQuit.connect(self.stop)

    @property
    def busy(self) -> bool:
        return self._running is not None or self._pending is not None

    def submit(self, job: Job) -> int:
        self.latest += 1
        if self._running is not None:
            self._pending = (self.latest, job)
        else:
            self._run(self.latest, job)
        return self.latest

    def cancel(self) -> None:
        """Forget the waiting request and drop the running one's result when it comes."""
        self._pending = None
        self.latest += 1

    def _run(self, ticket: int, job: Job) -> None:
        self._running = ticket
        self._start.emit(ticket, job)

    def _on_done(self, ticket: int, result, message: str) -> None:
        self._running = None
        if self._pending is not None:
            self._run(*self._pending)
            self._pending = None
        if ticket != self.latest:
            return   # replaced by a newer request while it ran
        if result is None:
            self.failed.emit(ticket, message)
        else:
            self.loaded.emit(ticket, result)

    def stop(self) -> None:
        """Let the running decode finish, drop the waiting one, join the thread."""
        self._pending = None
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait()
