"""Kernel Lab latency: kernel edit -> redrawn maps, GUI-thread stalls, start-up time.

    python bench/gui_latency.py            # uses $DISPLAY if set, else offscreen
    python bench/gui_latency.py --quick    # fewer repetitions

1. 3x3 kernel on a 512x512 RGB photo: a key typed into a kernel cell until
   every stage's maps are repainted (median, p95; target median < 16 ms).
2. A bank of 4 7x7 filters on 1024x1024 RGB, typed at 12 keys/s: the longest
   stall of the GUI thread (a 2 ms heartbeat timer measures the gaps), the
   latency of each drawn update, and how many stale edits were dropped.
3. `python -m cnnviz` until its window is exposed (target < 1.5 s).

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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if not os.environ.get("DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("CNNVIZ_SETTINGS_DIR", tempfile.mkdtemp(prefix="cnnviz-bench-"))


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def make_window():
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from cnnviz.gui.app import configure_pyqtgraph
    from cnnviz.gui.main_window import MainWindow

    configure_pyqtgraph()
    window = MainWindow(load_default_input=False)
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    return app, window


def set_photo(lab, size):
    from cnnviz.data.images import load_image, resize, sample_images
    from cnnviz.gui.kernel_lab.input_loader import InputImage

    pixels = resize(load_image(sample_images()["astronaut"]), size)
    lab.set_input(InputImage(pixels, f"astronaut {size[1]}x{size[0]}", size))


def wait_idle(app, lab, timeout=60.0):
    end = time.perf_counter() + timeout
    while lab.busy and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.0005)
    app.processEvents()


def repaint_all(lab):
    for grid in lab.grids.values():
        if grid.isVisible():
            grid.viewport().repaint()


def type_key(cell, text):
    from PyQt6.QtTest import QTest

    cell.setFocus()
    cell.selectAll()
    QTest.keyClicks(cell, text)


def bench_small(app, window, repeats):
    """3x3 on 512x512 RGB: edit -> computed -> painted, one edit at a time."""
    lab = window.kernel_lab
    set_photo(lab, (512, 512))
    lab.bank.editor.apply_preset("Sobel x")
    wait_idle(app, lab)
    drawn = []
    lab.computed.connect(lambda out: (repaint_all(lab), drawn.append(time.perf_counter())))
    cell = lab.bank.editor.cell(1, 1)
    latencies, compute, gui = [], [], []
    for i in range(repeats):
        n = len(drawn)
        t0 = time.perf_counter()
        type_key(cell, str(i % 9 + 1))
        while len(drawn) == n:
            app.processEvents()
        latencies.append(drawn[-1] - t0)
        compute.append(lab.output.compute_seconds)
    lab.computed.disconnect()
    # the GUI-thread share: drawing a finished output again, without the worker
    for _ in range(min(repeats, 20)):
        t0 = time.perf_counter()
        lab._on_output(lab.output)
        repaint_all(lab)
        gui.append(time.perf_counter() - t0)
    return latencies, compute, gui


def bench_big(app, window, keys):
    """4 filters of 7x7 on 1024x1024 RGB, typed at 12 keys/s."""
    from PyQt6.QtCore import QTimer

    lab = window.kernel_lab
    set_photo(lab, (1024, 1024))
    rng = np.random.default_rng(0)
    weights = rng.uniform(-1, 1, (4, 3, 7, 7)).astype(np.float32)
    lab.bank.set_bank(weights, np.zeros(4, np.float32), [f"random {i}" for i in range(4)])
    wait_idle(app, lab)
    lab.runner.dropped = 0

    beats = []
    heartbeat = QTimer()
    heartbeat.setInterval(2)
    heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))
    drawn = []
    lab.computed.connect(lambda out: (repaint_all(lab), drawn.append(
        (time.perf_counter(), time.perf_counter() - out.request.submitted))))
    cell = lab.bank.editor.cell(3, 3)
    key_times = []

    def press():
        if len(key_times) == keys:
            return
        key_times.append(time.perf_counter())
        type_key(cell, str(len(key_times) % 9 + 1))
        QTimer.singleShot(83, press)

    heartbeat.start()
    QTimer.singleShot(0, press)
    end = time.perf_counter() + 120
    while (len(key_times) < keys or lab.busy) and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.0002)
    heartbeat.stop()
    lab.computed.disconnect()
    gaps = np.diff(beats) if len(beats) > 1 else np.array([0.0])
    last_key = key_times[-1]
    final = drawn[-1][0] - last_key if drawn else float("nan")
    return {"gaps": gaps, "drawn": [d[1] for d in drawn], "dropped": lab.runner.dropped,
            "final": final, "compute": lab.output.compute_seconds, "keys": keys}


def bench_startup(runs):
    times = []
    env = dict(os.environ, CNNVIZ_STARTUP_PROBE="1")
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "cnnviz"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in proc.stdout:
            if line.startswith("cnnviz-window-visible"):
                times.append(time.perf_counter() - t0)
                break
        proc.wait(timeout=30)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    platform = os.environ.get("QT_QPA_PLATFORM") or f"xcb (DISPLAY={os.environ.get('DISPLAY')})"
    print(f"platform: {platform}; CPUs: {os.cpu_count()}")

    app, window = make_window()
    lat, compute, gui = bench_small(app, window, 15 if args.quick else 60)
    print("\n3x3 kernel, 512x512 RGB (conv -> ReLU -> 2x2 max pool), edit -> repainted maps:")
    print(f"  median {ms(statistics.median(lat))}, p95 {ms(percentile(lat, 95))}, "
          f"max {ms(max(lat))}  (n={len(lat)})")
    print(f"  of which worker compute (engine + colour maps): median "
          f"{ms(statistics.median(compute))}; GUI-thread draw + paint: median "
          f"{ms(statistics.median(gui))}")

    big = bench_big(app, window, 12 if args.quick else 30)
    print(f"\n4 filters 7x7, 1024x1024 RGB, {big['keys']} keys typed at 12/s:")
    print(f"  GUI thread: longest stall {ms(big['gaps'].max())}, p99 gap "
          f"{ms(percentile(big['gaps'], 99))} (2 ms heartbeat)")
    print(f"  one full computation: {ms(big['compute'])}; updates drawn: {len(big['drawn'])}, "
          f"stale edits dropped: {big['dropped']}")
    if big["drawn"]:
        print(f"  edit -> drawn: median {ms(statistics.median(big['drawn']))}, p95 "
              f"{ms(percentile(big['drawn'], 95))}; last key -> final maps {ms(big['final'])}")
    window.close()

    runs = 3 if args.quick else 7
    start = bench_startup(runs)
    if start:
        print(f"\n`python -m cnnviz` to an exposed window ({len(start)} runs): median "
              f"{ms(statistics.median(start))}, min {ms(min(start))}, max {ms(max(start))}")
    else:
        print("\nstart-up: the window never reported itself visible")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
