"""Load a dataset off the GUI thread: a worker object moved to a QThread.

``DatasetLoader.load(spec)`` runs ``load_fn(spec, progress, cancel)`` (by
default dataset_row.load_choice: cnnviz/data/datasets.py's load_dataset of a
set-up choice) in its own thread; the GUI hears ``progress``
(done, total, what: at most every PROGRESS_INTERVAL s, so a 50,000-image
folder does not flood the event loop), then exactly one of ``loaded``
(spec, train, test), ``failed`` (spec, one-line message) or ``cancelled``
(spec). ``cancel()`` asks the load to stop at its next image; a newer
``load`` cancels the one in flight (its late result is dropped).
"""

from __future__ import annotations

import threading
import time

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

PROGRESS_INTERVAL = 0.1


class _LoadJob(QObject):
    """One load, run in its own QThread (``run`` is connected to ``started``)."""

    progress = pyqtSignal(int, int, str)
    done = pyqtSignal(object, object, object)      # spec, (train, test) | None, error | None

    def __init__(self, spec, load_fn):
        super().__init__()
        self.spec = spec
        self.load_fn = load_fn
        self.cancel_event = threading.Event()
        self._last = 0.0

    def _progress(self, done, total, what: str = "") -> None:
        now = time.perf_counter()
        if now - self._last >= PROGRESS_INTERVAL or done >= total:
            self._last = now
            self.progress.emit(int(done), int(total), str(what))

    @pyqtSlot()
    def run(self) -> None:
        try:
            result = self.load_fn(self.spec, progress=self._progress,
                                  cancel=self.cancel_event.is_set)
        except Exception as e:  # any failure is the dataset's: reported, never raised here
            self.done.emit(self.spec, None, e)
        else:
            self.done.emit(self.spec, result, None)
        finally:
            self.thread().quit()


class DatasetLoader(QObject):
    progress = pyqtSignal(int, int, str)       # images done, total, what is read
    loaded = pyqtSignal(object, object, object)   # spec, train, test
    failed = pyqtSignal(object, str)           # spec, one-line message
    cancelled = pyqtSignal(object)             # spec

    def __init__(self, load_fn=None, parent=None):
        super().__init__(parent)
        self.load_fn = load_fn            # None: dataset_row.load_choice
        self._job: _LoadJob | None = None
        self._thread: QThread | None = None
        self._old: list[tuple[QThread, _LoadJob]] = []   # cancelled, not yet ended

    @property
    def spec(self):
        """The dataset being loaded, or None."""
        return self._job.spec if self._job is not None else None

    def busy(self) -> bool:
        return self._job is not None

    def load(self, spec) -> None:
        """Load ``spec`` in a new thread (a load in flight is cancelled)."""
        self.cancel()
        if self.load_fn is None:
            from cnnviz.gui.training.dataset_row import load_choice
            self.load_fn = load_choice
        job, thread = _LoadJob(spec, self.load_fn), QThread()
        job.moveToThread(thread)
        thread.started.connect(job.run)
        # bound slots of this object (it lives in the GUI thread): queued
        # calls, run in the GUI thread; sender() says which job spoke
        job.progress.connect(self._on_progress)
        job.done.connect(self._on_done)
        thread.finished.connect(self._on_thread_finished)
        self._job, self._thread = job, thread
        thread.start()

    @pyqtSlot(int, int, str)
    def _on_progress(self, done: int, total: int, what: str) -> None:
        if self.sender() is self._job:
            self.progress.emit(done, total, what)

    @pyqtSlot(object, object, object)
    def _on_done(self, spec, result, error) -> None:
        job = self.sender()
        if job is not self._job:         # cancelled or replaced: its late result is void
            return
        self._job = None
        self._old.append((self._thread, job))
        self._thread = None
        if error is not None:
            self.failed.emit(spec, " ".join(str(error).split()) or type(error).__name__)
        else:
            self.loaded.emit(spec, *result)

    @pyqtSlot()
    def _on_thread_finished(self) -> None:
        thread = self.sender()
        self._old = [(t, j) for t, j in self._old if t is not thread]

    def cancel(self) -> None:
        """Ask the load in flight to stop; ``cancelled`` follows at once."""
        job = self._job
        if job is None:
            return
        job.cancel_event.set()
        self._old.append((self._thread, job))
        self._job, self._thread = None, None
        self.cancelled.emit(job.spec)

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Cancel and wait for every loading thread; True if none is left."""
        self.cancel()
        deadline = time.perf_counter() + timeout
        for thread, job in self._old:
            job.cancel_event.set()
            thread.wait(max(0, int((deadline - time.perf_counter()) * 1000)))
        self._old = [(t, j) for t, j in self._old if t.isRunning()]
        return not self._old
