"""Closing the real program (`cnnviz`, in a child process, offscreen) while
it trains: after Discard the window arms the exit without the interpreter's
teardown (cnnviz/fast_exit.py) once every thread is stopped, with its output
flushed and its settings written; not when a tab reports a thread still
running. (tests/test_fast_exit.py: what the armed exit does.)"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DRIVER = r'''
import atexit
import os
import sys
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QMessageBox
import cnnviz.gui.main_window as main_window
from cnnviz.gui.training import tab as training_tab

if "--thread-left" in sys.argv:          # a tab whose thread did not stop in time
    shutdown = training_tab.TrainingTab.shutdown
    training_tab.TrainingTab.shutdown = lambda self, *a, **k: shutdown(self, *a, **k) and False


shown = main_window.MainWindow.show
def show(window):
    shown(window)
    # registered after cnnviz.fast_exit's handler, so it runs before it
    from cnnviz import fast_exit
    atexit.register(lambda: os.write(1, f"armed {fast_exit._code}\n".encode()))
    index = next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == "Training")
    window.tabs.setCurrentIndex(index)
    def poll():
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QMessageBox):
            dialog.button(QMessageBox.StandardButton.Discard).click()
            return
        tab = window.tabs.widget(index).inner
        if tab is None:
            return
        if tab.trainer is None:
            tab.start()
        elif tab.trainer.step >= 3 and not poll.closing:
            poll.closing = True
            print("closing")                  # buffered: the exit must flush it
            QTimer.singleShot(0, window.close)    # not inside this timer's slot: its
                                                  # dialog needs the timer to answer it
    poll.closing = False
    timer = QTimer(window)
    timer.timeout.connect(poll)
    timer.start(20)
main_window.MainWindow.show = show
sys.argv = ["cnnviz"]
from cnnviz.__main__ import run
raise SystemExit(run())
'''


def close_while_training(tmp_path, *flags):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT),
               CNNVIZ_SETTINGS_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", DRIVER, *flags], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=90)
    settings = "".join(p.read_text() for p in tmp_path.glob("*.ini"))
    return r, settings


def test_after_discard_the_window_arms_the_fast_exit(tmp_path):
    r, settings = close_while_training(tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["closing", "armed 0"]    # "closing" flushed at the exit
    assert "Traceback" not in r.stderr
    assert "geometry" in settings


def test_with_a_thread_left_the_normal_teardown_runs(tmp_path):
    r, settings = close_while_training(tmp_path, "--thread-left")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["closing", "armed None"]
    assert "geometry" in settings
