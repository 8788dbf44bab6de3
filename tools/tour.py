"""The real main window on the current X display, for the screenshot tools:
``Tour(argv)`` opens it at the size asked, ``settle``, ``shoot`` and
``open_tab`` drive it, ``end`` leaves the process once every file is written
(before the window's teardown, which ended in a segmentation fault now and
then, and before the question about an unsaved trained model)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class NoDisplay(RuntimeError):
    pass


class Tour:
    def __init__(self, argv: list[str]):
        """argv: [output folder [WIDTHxHEIGHT]] (docs/screenshots, 1400x900)."""
        self.out = Path(argv[0] if argv else "docs/screenshots")
        width, height = (int(v) for v in (argv[1] if len(argv) > 1 else "1400x900").split("x"))
        if not os.environ.get("DISPLAY"):
            raise NoDisplay("no DISPLAY: run under xvfb-run (see the docstring)")
        self.out.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("CNNVIZ_SETTINGS_DIR", tempfile.mkdtemp())

        from PyQt6.QtWidgets import QApplication

        from cnnviz.gui.app import configure_pyqtgraph
        from cnnviz.gui.main_window import MainWindow

        self.app = QApplication(sys.argv[:1])
        configure_pyqtgraph()
        self.window = MainWindow(load_default_input=True)
        self.window.add_standard_tabs()
        self.window.resize(width, height)
        self.window.move(0, 0)
        self.window.show()

    def settle(self, seconds: float = 0.3) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.app.processEvents()
            time.sleep(0.01)

    def shoot(self, name: str) -> None:
        """What the X server shows of the window (not an off-screen render)."""
        self.settle(0.4)
        pixmap = self.app.primaryScreen().grabWindow(self.window.winId())
        pixmap.save(str(self.out / name))
        print(self.out / name)

    def open_tab(self, title: str):
        tabs = self.window.tabs
        index = next(i for i in range(tabs.count()) if tabs.tabText(i) == title)
        tabs.setCurrentIndex(index)
        self.settle(0.5)
        return tabs.widget(index).inner

    @staticmethod
    def end(code: int):
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)


def run(tour_main, argv=None) -> int:
    """``tour_main(tour, argv)`` on a Tour of the window; 2 without a display."""
    argv = sys.argv[1:] if argv is None else argv
    options = [a for a in argv if a.startswith("--")]
    try:
        tour = Tour([a for a in argv if not a.startswith("--")])
    except NoDisplay as e:
        print(e, file=sys.stderr)
        return 2
    return tour_main(tour, options)
