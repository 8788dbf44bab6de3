"""Shared test set-up.

Qt must not look for a display: the offscreen platform is chosen here, before
pytest-qt or any test module imports PyQt6. An explicit QT_QPA_PLATFORM in the
environment (e.g. xcb, to watch GUI tests) still wins.

Every window a test leaves is deleted through Qt when the test ends (see
``delete_the_tests_windows``).
"""

import os
import sys
import warnings

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _application():
    """The QApplication if a test has made one (engine tests never import Qt)."""
    if "PyQt6.QtWidgets" not in sys.modules:
        return None
    from PyQt6.QtWidgets import QApplication
    return QApplication.instance()


@pytest.fixture(autouse=True)
def delete_the_tests_windows():
    """Delete through Qt, at the end of each test, every window (top-level
    widget) the test made and Python owns, and flush every deleteLater.

    Why: a window that is only closed lives on as long as its Python wrapper,
    and pyqtgraph's widgets sit in reference cycles, so only Python's cyclic
    collector frees them, at any allocation of any later test. The collector
    first empties every wrapper of the cycle (their ``__dict__``), then the
    window's C++ destructor runs and calls back into those emptied items:
    "'LabelItem' object has no attribute '_sizeHint'" in whichever test was
    running. Deleted here by Qt, the C++ side goes first while every wrapper
    is whole, and the collector later frees plain Python objects.

    A window with a worker thread of its own still running is left alone
    (deleting a running QThread aborts the process) and named in a warning."""
    app = _application()
    # held, not only their ids: a wrapper made afresh for a C++-owned window
    # would be freed at once and its id reused
    before = app.topLevelWidgets() if app is not None else []
    yield
    app = _application()
    if app is None:
        return
    from PyQt6 import sip
    from PyQt6.QtCore import QEvent, QThread
    from PyQt6.QtWidgets import QApplication

    # what the test set going lands first, on live widgets (e.g. the
    # snapshot and finished signals a stopped training thread queued)
    app.processEvents()
    known = {id(w) for w in before}
    for w in app.topLevelWidgets():
        if (id(w) in known or w.parent() is not None or sip.isdeleted(w)
                or not sip.ispyowned(w)):
            continue
        running = [t for t in w.findChildren(QThread) if not t.wait(5000)]
        if running:
            warnings.warn(f"{type(w).__name__} left undeleted: its thread "
                          f"{type(running[0]).__name__} is still running")
            continue
        w.deleteLater()
    # deleteLater outside an event loop waits for the next one (a later
    # test's): deferred deletions run now, this test's included
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
