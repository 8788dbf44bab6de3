"""Network builder latency (issue #14 point 7). Targets: an edit updates the
table in under 16 ms; "Step through this network" switches the Layer
Stepper to the built network in under 200 ms.

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1400x900x24" python bench/builder.py
    python bench/builder.py --edits 200 --switches 20

Edit: a real key press (QTest.keyClick of a digit into the selected conv's
"out channels" field, the field's text selected first so each press replaces
the value) until the table's items hold the new numbers (the tab's slot runs
the model's evaluation and sets the items before the key press returns),
then, timed apart, the table's repaint forced at once (viewport().repaint()).
Switch: MainWindow.step_architecture (what the button calls: the network
built from its architecture, the Stepper tab shown, its session started and
its strip filled) until the events it queued are processed (the paint).

Beside the wall time, the GUI thread's CPU time (time.thread_time) over
the same interval: on a shared machine the wall time also holds other
processes' turns. The load average is printed.

A benchmark, not a test: figures are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from machine import cpu_description, percentile  # noqa: E402  (bench/machine.py)




def line(label, wall, cpu) -> str:
    return (f"  {label:<34} wall median {statistics.median(wall):6.2f} ms  "
            f"p95 {percentile(wall, 95):6.2f} ms   CPU median {statistics.median(cpu):6.2f} ms  "
            f"p95 {percentile(cpu, 95):6.2f} ms")


def settle(app, seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def bench_edits(app, tab, key: str, row_name: str, edits: int):
    from PyQt6.QtCore import Qt
    from PyQt6.QtTest import QTest

    tab.start_from(key, ask=False)
    row = [r.name for r in tab.evaluation.rows].index(row_name)
    tab.table.setCurrentCell(row, 0)
    field = tab.editor_field("out_channels")
    field.setFocus()
    app.processEvents()
    walls, cpus, paint_walls, paint_cpus = [], [], [], []
    digits = [Qt.Key.Key_4, Qt.Key.Key_8]
    for i in range(edits):
        field.selectAll()
        w0, c0 = time.perf_counter(), time.thread_time()
        QTest.keyClick(field, digits[i % 2])
        w1, c1 = time.perf_counter(), time.thread_time()
        tab.table.viewport().repaint()
        w2, c2 = time.perf_counter(), time.thread_time()
        expected = "4" if i % 2 == 0 else "8"
        assert tab.table.item(row, 2).text().startswith(expected), tab.table.item(row, 2).text()
        walls.append(1e3 * (w1 - w0))
        cpus.append(1e3 * (c1 - c0))
        paint_walls.append(1e3 * (w2 - w0))
        paint_cpus.append(1e3 * (c2 - c0))
        app.processEvents()
    return walls, cpus, paint_walls, paint_cpus


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--switches", type=int, default=10)
    args = parser.parse_args(argv)
    os.environ.setdefault("CNNVIZ_SETTINGS_DIR", tempfile.mkdtemp())

    from PyQt6.QtWidgets import QApplication

    from cnnviz.engine import architecture as A
    from cnnviz.gui.app import configure_pyqtgraph
    from cnnviz.gui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    configure_pyqtgraph()
    window = MainWindow(load_default_input=False)
    window.add_standard_tabs()
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    index = next(i for i in range(window.tabs.count())
                 if window.tabs.tabText(i) == "Network builder")
    window.tabs.setCurrentIndex(index)
    app.processEvents()
    tab = window.tabs.widget(index).inner

    print(f"cnnviz Network builder bench: {cpu_description()}; platform "
          f"{app.platformName()}; load average {open('/proc/loadavg').read().split()[:3]}")
    print(f"edit -> table updated ({args.edits} key presses each; target 16 ms):")
    for key, row_name in (("lenet5", "conv2"), ("lenet5-1998", "C5"),
                          ("bottleneck-1x1", "reduce1x1")):
        walls, cpus, pwalls, pcpus = bench_edits(app, tab, key, row_name, args.edits)
        print(f" {key} ({len(tab.model.layers)} layers), editing {row_name}:")
        print(line("key press -> table items set", walls, cpus))
        print(line("... and the table repainted", pwalls, pcpus))

    print(f"Step through this network -> Stepper showing it ({args.switches} switches; "
          f"target 200 ms):")
    # the Stepper tab is built first (its start-up: not a switch), then
    # switches alternate between two networks; the first switch to a network
    # the Stepper has not shown yet ("cold") is reported apart
    window.step_architecture(A.read(A.bundled()["lenet5"]))
    settle(app, 3.0)
    archs = [A.read(A.bundled()["lenet5-1998"]), A.read(A.bundled()["lenet5"]),
             A.read(A.bundled()["lenet5"])]
    archs[2].layers[-1] = ("Linear", "fc3", {**archs[2].layers[-1][2], "out_features": 12})
    archs[2].name = "LeNet-5 with 12 outputs"
    cold = []
    walls, cpus, pwalls, pcpus = [], [], [], []
    for i in range(args.switches + 2):
        window.tabs.setCurrentIndex(index)
        settle(app, 0.2)
        arch = archs[i % 3] if i < 3 else archs[i % 2]
        w0, c0 = time.perf_counter(), time.thread_time()
        ok = window.step_architecture(arch)
        w1, c1 = time.perf_counter(), time.thread_time()
        app.processEvents()
        w2, c2 = time.perf_counter(), time.thread_time()
        assert ok, "the Stepper refused a bundled network"
        if i in (0, 2):
            cold.append((arch.title, 1e3 * (w1 - w0), 1e3 * (c1 - c0), 1e3 * (w2 - w0),
                         1e3 * (c2 - c0)))
            continue
        walls.append(1e3 * (w1 - w0))
        cpus.append(1e3 * (c1 - c0))
        pwalls.append(1e3 * (w2 - w0))
        pcpus.append(1e3 * (c2 - c0))
    for title, w, c, pw, pc in cold:
        print(f"  cold, first switch to {title}: returns {w:.1f} ms (CPU {c:.1f}); "
              f"with its events {pw:.1f} ms (CPU {pc:.1f})")
    print(line("warm: step_architecture returns", walls, cpus))
    print(line("warm: ... and its events processed", pwalls, pcpus))
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
    for i in range(window.tabs.count()):
        inner = getattr(window.tabs.widget(i), "inner", None)
        if inner is not None and hasattr(inner, "model") and hasattr(inner.model, "mark_saved"):
            inner.model.mark_saved()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
