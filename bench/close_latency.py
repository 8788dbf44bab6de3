"""Closing the window while training: from "Discard" to the process's exit.

    xvfb-run -a -s "-screen 0 1400x900x24" python bench/close_latency.py [--per-state 5]

For each state (training batches, the epoch-end evaluation of the test set,
paused, slow motion) it starts the real program (``cnnviz.__main__.run``,
the `cnnviz` command, in a child process), starts a run on the Training
tab, brings it into the state, then closes the window as a user does, with
real X input (xdotool): Ctrl+Q on the window, then a mouse click on
"Discard" in the "Unsaved model" dialog. Measured from the parent, outside
the program: from the click (and from the Ctrl+Q) to the child's exit.

The child is the real program with a driver added: MainWindow.show is
wrapped to start a QTimer that sets up the state and prints, on stdout, the
window's id when it is ready and the Discard button's screen centre when the
dialog is up. Nothing else of the program is changed.

A benchmark, not a test: figures are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATES = ("batches", "evaluation", "paused", "slow motion")


# --- the child: the real program with a driver -----------------------------------------
def child(state: str) -> None:
    sys.path.insert(0, str(ROOT))
    import cnnviz.gui.main_window as main_window

    shown = main_window.MainWindow.show

    def show(window):
        shown(window)
        from PyQt6.QtCore import QTimer
        QTimer.singleShot(0, lambda: drive(window, state))
    main_window.MainWindow.show = show
    sys.argv = ["cnnviz"]
    from cnnviz.__main__ import run
    raise SystemExit(run())


def say(*words) -> None:
    print(*words, flush=True)


def drive(window, state: str) -> None:
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance()
    index = next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == "Training")
    window.tabs.setCurrentIndex(index)
    app.processEvents()
    tab = window.tabs.widget(index).inner
    if state == "evaluation":
        # 512 training images (8 batches) then the 10,000 test images: most
        # of each epoch is its evaluation
        tab.setup.limit.setValue(512)
        tab.setup.epochs.setValue(50)
    tab.start()
    t_start = time.perf_counter()
    done = []

    def ready() -> bool:
        t = tab.trainer
        if state == "batches":
            return t.step >= 30 and t.evaluation_progress is None
        if state == "evaluation":
            p = t.evaluation_progress
            return p is not None and p[0] >= 400
        if state == "paused":
            if t.step >= 30 and not done:
                done.append(1)
                tab.pause()
            return tab.state == "paused"
        if state == "slow motion":
            if t.step >= 30 and not done:
                done.append(time.perf_counter())
                tab.slow.setValue(1000)        # the slider's most: 1 s per batch
            return bool(done) and time.perf_counter() - done[0] > 1.5
        raise ValueError(state)

    def poll():
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QMessageBox):
            timer.stop()
            button = dialog.button(QMessageBox.StandardButton.Discard)
            centre = button.mapToGlobal(button.rect().center())
            app.processEvents()
            say("DIALOG", centre.x(), centre.y())
            return
        if not poll.ready and ready():
            poll.ready = True
            say("READY", int(window.winId()), f"{time.perf_counter() - t_start:.1f}")
    poll.ready = False
    timer = QTimer(window)
    timer.timeout.connect(poll)
    timer.start(10)


# --- the parent: closes each child and times its exit ----------------------------------
def read_line(proc, word: str, timeout: float) -> list[str]:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the program ended before {word} (exit {proc.wait()})")
        parts = line.split()
        if parts and parts[0] == word:
            return parts[1:]
    raise RuntimeError(f"no {word} within {timeout:.0f} s")


def xdotool(*args) -> None:
    subprocess.run(["xdotool", *map(str, args)], check=True)


def one_close(state: str, settings: str) -> tuple[float, float]:
    env = dict(os.environ, CNNVIZ_SETTINGS_DIR=settings, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, __file__, "--child", state], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        window = read_line(proc, "READY", 180)[0]
        xdotool("windowfocus", "--sync", window)
        t_close = time.perf_counter()
        xdotool("key", "--window", window, "ctrl+q")
        x, y = read_line(proc, "DIALOG", 10)
        t_discard = time.perf_counter()
        xdotool("mousemove", "--sync", x, y, "click", "1")
        code = proc.wait(30)
        t_exit = time.perf_counter()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0:
        raise RuntimeError(f"the program exited with {code}")
    return t_exit - t_discard, t_exit - t_close


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-state", type=int, default=5)
    parser.add_argument("--child", choices=STATES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
    if not os.environ.get("DISPLAY"):
        print("no DISPLAY: run under xvfb-run (see the docstring)", file=sys.stderr)
        return 2
    settings = tempfile.mkdtemp(prefix="cnnviz-close-")
    results = {s: [] for s in STATES}
    # interleaved, so that a busy spell of the machine does not fall on one state
    for i in range(args.per_state):
        for state in STATES:
            after_discard, after_close = one_close(state, settings)
            results[state].append((after_discard, after_close))
            print(f"{state:12s} #{i + 1}: Discard -> exit {after_discard * 1000:6.0f} ms "
                  f"(Ctrl+Q -> exit {after_close * 1000:6.0f} ms)", flush=True)
    print("\nDiscard -> process exit (ms): min / median / max; all")
    for state, values in results.items():
        ms = [round(d * 1000) for d, _ in values]
        print(f"{state:12s} {min(ms):5d} / {statistics.median(ms):6.0f} / {max(ms):5d};  {ms}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
