"""Layer Stepper: switching network, from the call until the tab is drawn.
Target: under 200 ms (issue #14, point 7).

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1400x900x24" python bench/stepper_switch.py
    python bench/stepper_switch.py --cycles 5           # offscreen

Each switch is timed twice: until the call returns (the network built or
read, the session made, the tab refreshed and painted once: what the
learner sees) and until the event loop is idle again (the map grids the
network will need prepared behind it). Beside the wall time, the GUI
thread's CPU time (time.thread_time), which other processes' load distorts
less. A benchmark, not a test: figures are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def colour_net():
    from cnnviz.engine import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential
    from cnnviz.engine.normalization import BatchNorm2d
    from cnnviz.engine.regularization import Dropout

    return Sequential(Conv2D(3, 8, 3, padding=1, seed=0), BatchNorm2d(8), ReLU(),
                      Dropout(0.25, seed=1), MaxPool2D(2), Conv2D(8, 16, 3, padding=1, seed=0),
                      ReLU(), MaxPool2D(2), Flatten(), Linear(16 * 8 * 8, 10, seed=0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtWidgets import QApplication

    from cnnviz.engine import lenet5
    from cnnviz.gui.app import configure_pyqtgraph
    from cnnviz.gui.stepper import StepperTab

    app = QApplication.instance() or QApplication([])
    configure_pyqtgraph()
    tab = StepperTab()
    tab.resize(1400, 880)
    tab.show()
    for _ in range(20):
        app.processEvents()
    switches = {
        "LeNet-5 1998 (architecture)": lambda: tab.choose_network("arch:lenet5-1998"),
        "colour conv+BN+dropout 32x32 (use_model)": lambda: tab.use_model(colour_net(),
                                                                          "colour", (3, 32, 32)),
        "LeNet-5 built in code (use_model, shape found)": lambda: tab.use_model(lenet5(seed=1),
                                                                                "built"),
        "LeNet-5 (architecture)": lambda: tab.choose_network("arch:lenet5"),
        "LeNet-5 trained (model file)": lambda: tab.choose_network("trained"),
    }
    shown, idle = {k: [] for k in switches}, {k: [] for k in switches}
    for cycle in range(args.cycles + 1):             # the first cycle warms caches: not counted
        for name, switch in switches.items():
            w0, c0 = time.perf_counter(), time.thread_time()
            assert switch() is not False, tab.banner.label.text()
            w1, c1 = time.perf_counter(), time.thread_time()
            for _ in range(5):
                app.processEvents()
            w2, c2 = time.perf_counter(), time.thread_time()
            if cycle:
                shown[name].append((1000 * (w1 - w0), 1000 * (c1 - c0)))
                idle[name].append((1000 * (w2 - w0), 1000 * (c2 - c0)))
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"switching network, {args.cycles} cycles, load average {' '.join(load)}, "
          f"platform {app.platformName()}")
    print(f"{'switch to':48s} {'shown: wall / CPU ms (median, max)':>36s}   "
          f"{'idle: wall / CPU ms (median, max)':>34s}")
    for name in switches:
        def fmt(rows):
            wall = [r[0] for r in rows]
            cpu = [r[1] for r in rows]
            return (f"{statistics.median(wall):6.0f} {max(wall):5.0f} / "
                    f"{statistics.median(cpu):4.0f} {max(cpu):5.0f}")
        print(f"{name:48s} {fmt(shown[name]):>36s}   {fmt(idle[name]):>34s}")
    tab.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
