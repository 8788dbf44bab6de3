"""Start the desktop program: ``run_gui(argv) -> exit code``.

Only Qt and the window's own modules are imported before the window shows;
OpenCV and the sample photo load right after (see MainWindow).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path

log = logging.getLogger("cnnviz.gui")


def _log_file() -> Path:
    """The window's log, beside the command line's crash logs (state_dirs)."""
    from cnnviz.state_dirs import log_dirs

    for folder in log_dirs():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder / "cnnviz.log"
    raise OSError("no folder for the log can be written")


def setup_logging() -> Path | None:
    try:
        path = _log_file()
        logging.basicConfig(filename=path, level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return path
    except OSError:
        logging.basicConfig(level=logging.INFO)
        return None


def install_excepthook(log_path: Path | None) -> None:
    """Any exception that reaches the event loop: log it and show a dialog; keep running."""
    from PyQt6.QtWidgets import QApplication, QMessageBox

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("unexpected exception\n%s", text)
        sys.__stderr__ and sys.__stderr__.write(text)
        if QApplication.instance() is None:
            return
        box = QMessageBox(QMessageBox.Icon.Critical, "Unexpected error",
                          f"Something went wrong: {exc_type.__name__}: {exc}\n\n"
                          f"cnnviz keeps running. The details were logged"
                          + (f" to {log_path}." if log_path else "."))
        box.setDetailedText(text)
        box.exec()

    sys.excepthook = hook


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)


def _report_when_visible(app, window) -> None:
    """For bench/gui_latency.py: print one line once the window is on screen, then quit."""
    from PyQt6.QtCore import QTimer

    def check():
        handle = window.windowHandle()
        if handle is not None and handle.isExposed():
            timer.stop()
            print("cnnviz-window-visible", flush=True)
            app.quit()

    timer = QTimer(window)
    timer.timeout.connect(check)
    timer.start(2)


def run_gui(argv: list[str] | None = None) -> int:
    """Create the application and the main window; ``argv`` may name an image to open."""
    from PyQt6.QtWidgets import QApplication

    argv = list(argv or [])
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "cnnviz"])
    app.setOrganizationName("cnnviz")
    app.setApplicationName("cnnviz")
    install_excepthook(setup_logging())
    configure_pyqtgraph()

    from cnnviz.gui.main_window import MainWindow, open_file_path

    images = [a for a in argv if not a.startswith("-")]
    window = MainWindow(load_default_input=not images)
    window.add_standard_tabs()
    window.exits_on_close = True
    window.show()
    if os.environ.get("CNNVIZ_STARTUP_PROBE"):
        _report_when_visible(app, window)
    if images:
        open_file_path(window, images[0])
    code = app.exec()
    if window.closed_cleanly:
        # every thread joined, every file written: skip the teardown (fast_exit)
        from cnnviz import fast_exit
        fast_exit.arm(code)
    return code
