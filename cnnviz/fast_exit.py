"""End the GUI's process at once when its window has closed cleanly.

After the main window closed, the interpreter's own teardown (freeing the
Qt objects of every tab, hundreds of pyqtgraph items, the datasets) took
600-1,100 ms on the 2-core reference machine (bench/close_latency.py), most
of the time between the user's "Discard" and the process's end. None of it
is needed then: every file was written and closed before (atomic writes
complete or leave the old file; the settings were synced in closeEvent), and
the worker threads were joined (the window only arms this when every tab
reported its threads stopped).

``install()`` is called first thing in the entry point, so this handler is
the first registered and therefore the LAST atexit handler to run: by then
the interpreter has joined its non-daemon threads and every other atexit
handler has run (logging's flush and close, multiprocessing's, weakref
finalizers, pyqtgraph's). Only then, if armed, the standard streams are
flushed and the process ends with os._exit: what is skipped is only the
freeing of memory the operating system takes back anyway. Not armed (the
command line, a window closed with a thread still running): the normal
teardown.
"""

from __future__ import annotations

import atexit
import os
import sys

_code: int | None = None


def install() -> None:
    atexit.register(_exit_now)


def arm(code: int) -> None:
    """End with ``code`` at the interpreter's exit, without its teardown."""
    global _code
    _code = int(code)


def disarm() -> None:
    global _code
    _code = None


def _exit_now() -> None:
    if _code is None:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):   # closed, or None (pythonw)
            pass
    os._exit(_code)
