"""The training thread: a QObject moved to a QThread that drives trainer.run().

Why this shape (STYLE.md): slots of a QThread subclass run in the thread that
created it, not in the new one; a worker object moved to the thread runs its
slots there. The trainer's generator checks its pause/stop flags between
batches and yields throttled snapshots whose arrays are copies, so the GUI
never touches an array the training thread is changing.

``TrainingRunner`` owns the thread and the worker and keeps references to
both until the thread has finished: "QThread: Destroyed while thread is still
running" must never happen. ``stop(timeout)`` asks the trainer to stop and
joins the thread.
"""

from __future__ import annotations

import os
import threading
import time
import traceback

from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal, pyqtSlot


TRAINING_NICENESS = 10


def lower_compute_priority() -> None:
    """Give the GUI thread the CPU first: raise the niceness of this thread
    (the trainer's) and of the BLAS library's helper threads.

    On a 2-core machine the trainer's thread and OpenBLAS's second thread
    fill both cores; at equal priority the GUI thread waits its turn and
    stalls (p99 19-26 ms, max 47 ms measured with bench/gui_training.py),
    at niceness 10 it preempts them (p99 7-15 ms) while training loses
    nothing when the GUI is idle. QThread.setPriority does nothing for
    Linux's default scheduler, hence os.setpriority per thread. BLAS helper
    threads carry the process's name; Qt's own threads are named by Qt and
    keep their priority. Linux only; elsewhere a no-op."""
    tasks = "/proc/self/task"
    if not hasattr(os, "setpriority") or not os.path.isdir(tasks):
        return
    main = os.getpid()
    try:
        process_name = _thread_name(main)
        for tid in map(int, os.listdir(tasks)):
            if tid == threading.get_native_id() or (tid != main and _thread_name(tid) == process_name):
                os.setpriority(os.PRIO_PROCESS, tid, TRAINING_NICENESS)
    except OSError:   # a thread ended meanwhile, or not permitted: only slower redraws
        pass


def _thread_name(tid: int) -> str:
    with open(f"/proc/self/task/{tid}/comm") as f:
        return f.read().strip()


class TrainingWorker(QObject):
    snapshot = pyqtSignal(object)      # a trainer Snapshot (arrays are copies)
    failed = pyqtSignal(str)           # a worker exception, as text for the window
    done = pyqtSignal()

    def __init__(self, trainer, after_snapshot=None, writes=None):
        super().__init__()
        self.trainer = trainer
        # Optional extra work on each snapshot, run here in the training thread
        # (e.g. an autosave at an epoch end) before it is emitted; it may
        # write files, so it runs holding ``writes`` (see TrainingRunner).
        self.after_snapshot = after_snapshot
        self.writes = writes or threading.Lock()
        self.native_thread_id = None      # the OS's id of the training thread, once running

    @pyqtSlot()
    def run(self) -> None:
        self.native_thread_id = threading.get_native_id()
        lower_compute_priority()
        try:
            for snap in self.trainer.run():
                if self.after_snapshot is not None:
                    with self.writes:
                        self.after_snapshot(snap)
                self.snapshot.emit(snap)
        except Exception as e:   # reaches the window as a message, not a silent stop
            self.failed.emit(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
        finally:
            self.done.emit()


class TrainingRunner(QObject):
    """One run of a trainer in its own thread."""

    snapshot = pyqtSignal(object)
    failed = pyqtSignal(str)
    finished = pyqtSignal()

    def __init__(self, trainer, after_snapshot=None, parent=None):
        super().__init__(parent)
        self.trainer = trainer
        self.thread = QThread()
        self.thread.setObjectName("cnnviz-training")
        # held by the training thread while it may write files; held for good
        # by a process about to end (stop_for_exit)
        self.writes = threading.Lock()
        self._writes_held = False
        self.worker = TrainingWorker(trainer, after_snapshot, self.writes)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.snapshot.connect(self.snapshot)
        self.worker.failed.connect(self.failed)
        # Direct: quit() is thread-safe, and a queued call would wait for the
        # GUI thread, which may be blocked right now in stop()'s wait().
        self.worker.done.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.finished.connect(self.finished)

    def start(self) -> None:
        self.thread.start()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def stop(self, timeout: float = 1.0) -> bool:
        """Ask the trainer to stop (also from a pause) and join the thread.
        Returns True when the thread is gone within ``timeout`` seconds."""
        if self._writes_held:             # an exit that was called off: let it finish
            self._writes_held = False
            self.writes.release()
        if not self.thread.isRunning():
            return True
        self.trainer.request_stop()
        # Poll with time.sleep, which certainly releases the GIL: called from a
        # virtual override such as closeEvent, QThread.wait() was seen to keep
        # the training thread (which needs the GIL to finish its batch) waiting.
        deadline = time.perf_counter() + timeout
        while not self.thread.isFinished():
            if time.perf_counter() >= deadline:
                return False
            time.sleep(0.005)
        return self.thread.wait(100)

    def stop_for_exit(self, wait: float) -> bool:
        """The process is about to end: ask the trainer to stop and give the
        thread ``wait`` seconds to end. A batch still in flight then (slow
        at niceness 10 on a loaded machine: 0.4-0.6 s were measured) is left
        to the process's end, which os._exit brings (cnnviz.fast_exit), once
        the thread can no longer write a file: ``writes`` is taken for good
        (waiting for a write under way, e.g. an autosave, to complete). Worker
        processes are told to exit and not waited for. True: nothing of the
        thread needs to finish; ``stop`` calls the exit off."""
        self.trainer.step_engine.leave_workers_at_exit()
        if self.stop(wait):
            return True
        self.writes.acquire()
        self._writes_held = True
        return True
