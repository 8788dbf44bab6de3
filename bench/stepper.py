"""Layer Stepper latency: a key press until the last repaint it causes, per layer,
forward and backward (LeNet-5). Target: p95 under 50 ms at every layer.

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1400x900x24" python bench/stepper.py
    python bench/stepper.py --cycles 10 --quiet 150
    python bench/stepper.py --screenshots docs/screenshots   # also save the PNGs
    python bench/stepper.py --profile /tmp/stepper.prof      # cProfile of the warm passes

A step is a real key press (QTest.keyClick of Right / Left on the focused
widget, through the tab's shortcuts) and is timed until the last Paint event
of any widget of the window, deferred and queued paints included: every
widget carries an event filter that notes the time of each Paint it
receives, and the step ends when no paint has arrived for --quiet ms (that
wait is not counted). The first pass through the network ("cold": each layer's
first visit) comes after the tab's warm-up has built what steps show (or
after 0.5 s of idle with --no-warmup-wait) and builds what it has not; the --cycles passes after it ("warm") are what a
learner stepping back and forth sees; median and p95 per layer are over the
warm passes. The Weights tab (the default side tab) is redrawn on every step.
Beside the wall time, the GUI thread's CPU time over the same interval
(time.thread_time) is printed: on a shared machine it shows the program's own
cost where the wall time also holds other processes' turns.

A benchmark, not a test: figures are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from machine import cpu_description, percentile  # noqa: E402  (bench/machine.py)




class PaintClock:
    """Times of Paint events on every widget under a root (new ones picked up
    by ``watch``), and which widget got the last one."""

    def __init__(self, root):
        from PyQt6.QtCore import QEvent, QObject

        clock = self

        class Filter(QObject):
            def eventFilter(self, obj, event):
                if event.type() == QEvent.Type.Paint:
                    clock.last = time.perf_counter()
                    clock.last_cpu = time.thread_time()
                    clock.last_widget = obj
                    clock.count += 1
                return False

        self.root = root
        self.filter = Filter()
        self.watched: set[int] = set()
        self.last, self.last_widget, self.count = 0.0, None, 0
        self.last_cpu = 0.0
        self.watch()

    def watch(self) -> None:
        from PyQt6.QtWidgets import QWidget

        for widget in [self.root, *self.root.findChildren(QWidget)]:
            if id(widget) not in self.watched:
                widget.installEventFilter(self.filter)
                self.watched.add(id(widget))

    def reset(self) -> None:
        self.last, self.last_widget, self.count = 0.0, None, 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=8, help="warm forward+backward passes")
    parser.add_argument("--quiet", type=float, default=150.0,
                        help="ms without a paint that end a step's measurement")
    parser.add_argument("--verbose", action="store_true", help="the last painted widget per step")
    parser.add_argument("--screenshots", type=Path, help="save stepper_forward/backward.png here")
    parser.add_argument("--profile", type=Path,
                        help="profile the warm passes (cProfile) and save the stats here")
    parser.add_argument("--no-warmup-wait", action="store_true",
                        help="step after 0.5 s of idle even if the tab's warm-up is not done")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("CNNVIZ_SETTINGS_DIR", tempfile.mkdtemp())

    from PyQt6.QtCore import Qt
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from cnnviz.gui.stepper import StepperTab
    from cnnviz.gui.stepper.session import FORWARD

    tab = StepperTab()
    tab.resize(1400, 880)
    tab.show()
    tab.activateWindow()
    clock = PaintClock(tab)

    def settle(quiet: float, limit: float = 10.0, since: float = 0.0) -> None:
        end = time.perf_counter() + limit
        while time.perf_counter() < end:
            app.processEvents()
            if time.perf_counter() - max(clock.last, since) >= quiet:
                return
            time.sleep(0.0005)

    # half a second of idle, as a learner looks at the window before the first
    # step; then, unless --no-warmup-wait, until the tab has built what the
    # steps will show (cnnviz/gui/stepper/warmup.py): its time is printed
    w0, c0 = time.perf_counter(), time.thread_time()
    settle(0.5)
    while not args.no_warmup_wait and tab.warmup.pending:
        app.processEvents()
        time.sleep(0.0005)
    warmup = (1000 * (time.perf_counter() - w0), 1000 * (time.thread_time() - c0))
    settle(0.2)
    clock.watch()
    keys = {"forward": Qt.Key.Key_Right, "back": Qt.Key.Key_Left}
    s = tab.session

    def step(direction: str) -> tuple[str, float, float]:
        target = app.focusWidget() or tab
        clock.reset()
        cpu0 = time.thread_time()
        t0 = time.perf_counter()
        QTest.keyClick(target, keys[direction])
        settle(args.quiet / 1000, since=t0)
        layer = "input" if s.focus < 0 else s.model.layers[s.focus].name
        label = f"{'forward' if s.phase == FORWARD else 'backward'} {layer}"
        elapsed = (clock.last - t0) * 1000 if clock.count else float("nan")
        cpu = (clock.last_cpu - cpu0) * 1000 if clock.count else float("nan")
        if args.verbose:
            w = clock.last_widget
            print(f"    {label:22s} {elapsed:6.1f} ms ({cpu:5.1f} ms CPU)  {clock.count:3d} paints, last "
                  f"{type(w).__name__ if w is not None else '-'}")
        clock.watch()    # widgets built by this step are watched from the next one
        return label, elapsed, cpu

    def one_pass():
        out = []
        n = s.num_layers
        out += [step("forward") for _ in range(n)]
        out += [step("back") for _ in range(n)]
        tab.buttons["reset"].click()
        settle(args.quiet / 1000)
        return out

    tab.buttons["forward"].setFocus()
    cold = one_pass()
    warm, cpu = defaultdict(list), defaultdict(list)
    order = []
    profiler = None
    if args.profile:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    for _ in range(args.cycles):
        for label, ms, cpu_ms in one_pass():
            if label not in warm:
                order.append(label)
            warm[label].append(ms)
            cpu[label].append(cpu_ms)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(f"Layer Stepper, LeNet-5: key press -> last repaint ({app.platformName()}, "
          f"1400x880, quiet period {args.quiet:.0f} ms), {cpu_description()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"  start-up: 0.5 s idle{'' if args.no_warmup_wait else ' and the warm-up'}: "
          f"{warmup[0]:.0f} ms, GUI-thread CPU {warmup[1]:.0f} ms; cold = a layer's first visit")
    print(f"  {'step':24s} {'cold':>8s} {'(CPU)':>8s} {'median':>8s} {'p95':>8s} {'max':>8s}"
          f"   GUI-thread CPU median, p95   n")
    cold_by = {label: (ms, cpu_ms) for label, ms, cpu_ms in cold}
    for label in order:
        v, c = warm[label], cpu[label]
        cold_ms, cold_cpu = cold_by.get(label, (float('nan'), float('nan')))
        print(f"  {label:24s} {cold_ms:6.1f}ms {cold_cpu:6.1f}ms "
              f"{statistics.median(v):6.1f}ms {percentile(v, 95):6.1f}ms {max(v):6.1f}ms"
              f"   {statistics.median(c):6.1f}ms {percentile(c, 95):6.1f}ms   {len(v)}")
    every = [x for v in warm.values() for x in v]
    every_cpu = [x for v in cpu.values() for x in v]
    print(f"  {'all warm steps':24s} {'':8s} {'':8s} {statistics.median(every):6.1f}ms "
          f"{percentile(every, 95):6.1f}ms {max(every):6.1f}ms   "
          f"{statistics.median(every_cpu):6.1f}ms {percentile(every_cpu, 95):6.1f}ms   "
          f"{len(every)}")
    worst = max(order, key=lambda k: percentile(warm[k], 95))
    print(f"  highest p95: {worst} ({percentile(warm[worst], 95):.1f} ms)")

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
    # as the program does (cnnviz/fast_exit.py): the figures are out, and the
    # interpreter's teardown of a live window can crash in pyqtgraph's items
    sys.stdout.flush()
    os._exit(0)
