"""Layer Stepper latency: one LeNet-5 step (engine compute + redraw), forward and
backward, median and 95th percentile. Target: under 50 ms.

    python bench/stepper.py                  # offscreen unless DISPLAY is set
    python bench/stepper.py --cycles 5
    python bench/stepper.py --screenshots docs/screenshots   # also save the PNGs

A step is timed from the button click to the end of the event processing that
repaints the window (QApplication.processEvents after the click). The first
pass through the network builds each panel's tiles once ("cold"); the passes
after it reuse them ("warm"), which is what a learner stepping back and forth
sees. The Weights tab (the default side tab) is redrawn on every step too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def percentile(values, q):
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(q / 100 * (len(values) - 1))))
    return values[k]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=5, help="warm forward+backward passes")
    parser.add_argument("--screenshots", type=Path, help="save stepper_forward/backward.png here")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("CNNVIZ_SETTINGS_DIR", tempfile.mkdtemp())

    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from cnnviz.gui.stepper import StepperTab

    tab = StepperTab()
    tab.resize(1400, 880)
    tab.show()
    # half a second of idle, as a learner looks at the window before the first
    # step: the tab builds its map grids in that time (StepperTab._prepare_grids)
    end = time.perf_counter() + 0.5
    while time.perf_counter() < end:
        app.processEvents()

    def step(name):
        t0 = time.perf_counter()
        tab.buttons[name].click()
        app.processEvents()
        return (time.perf_counter() - t0) * 1000

    def one_pass():
        n = tab.session.num_layers
        fwd = [step("forward") for _ in range(n)]
        back = [step("back") for _ in range(n)]
        tab.buttons["reset"].click()
        app.processEvents()
        return fwd, back

    cold_f, cold_b = one_pass()
    warm_f, warm_b = [], []
    for _ in range(args.cycles):
        f, b = one_pass()
        warm_f += f
        warm_b += b
    platform = app.platformName()
    print(f"Layer Stepper, LeNet-5, one step = engine + redraw ({platform}, 1400x880)")
    for label, values in (("cold forward (first visit)", cold_f), ("cold backward", cold_b),
                          ("warm forward", warm_f), ("warm backward", warm_b),
                          ("warm all", warm_f + warm_b)):
        print(f"  {label:28s} median {statistics.median(values):6.1f} ms   "
              f"p95 {percentile(values, 95):6.1f} ms   max {max(values):6.1f} ms   n={len(values)}")

    if args.screenshots:
        save_screenshots(tab, app, args.screenshots)


def save_screenshots(tab, app, directory: Path):
    """A forward step through conv1 and a backward step through conv2 with the
    backward computation shown step by step."""
    from PyQt6.QtWidgets import QSplitter

    directory.mkdir(parents=True, exist_ok=True)

    def settle():
        for _ in range(10):
            app.processEvents()

    tab.buttons["reset"].click()
    tab.strip.blocks[2].click()                 # forward to conv1
    tab.side.setCurrentWidget(tab.weights_tab)
    settle()
    tab.export_view(directory / "stepper_forward.png")
    tab.buttons["run_forward"].click()
    while tab.session.focus != 4 or tab.session.phase != "backward":
        tab.buttons["back"].click()             # step backward until through conv2
    body = tab.findChildren(QSplitter)[0]
    body.setSizes([250, 470, 680])
    tab.side.setCurrentWidget(tab.backward_tab)
    tab.backward_tab.filter_spin.setValue(3)
    settle()
    tab.export_view(directory / "stepper_backward.png")
    print(f"screenshots in {directory}")


if __name__ == "__main__":
    main()
