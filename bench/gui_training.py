"""Live training in the GUI, measured: accuracy, throughput, responsiveness, memory.

    python bench/gui_training.py                    # LeNet-5, full MNIST, GUI defaults, 5 epochs
    python bench/gui_training.py --epochs 20        # the memory check (peak RSS)
    python bench/gui_training.py --limit 6000 --epochs 1   # a quick look
    python bench/gui_training.py --workers 1        # on one core (default: one process per core)

One run measures, in one process:
  * the test accuracy the Training tab reaches with its defaults;
  * its throughput (images trained per second of training, pauses excluded)
    against the headless trainer (what `cnnviz train` runs) on the same
    machine, same settings, each in a fresh process as `cnnviz train` is.
    The machine's speed drifts by 10-40% within a minute here, so the GUI
    run pauses after each epoch for a headless epoch, and each GUI epoch is
    compared with the headless epochs just before and after it;
  * the main thread's longest stall: a 10 ms QTimer heartbeat records the gaps
    between its ticks while the GUI trains and redraws; the stall is the gap
    minus the interval. The tab's views are cycled every few seconds so every
    drawing path (curves, maps, weights, evaluation, canvas) is exercised;
  * peak resident memory (ru_maxrss).

Not a test: figures go to the README. Prints a summary and writes JSON (--out).
Runs under any Qt platform (offscreen by default; DISPLAY=:97 QT_QPA_PLATFORM=xcb
to watch it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
import numpy as np  # noqa: E402


def headless_throughput_in_new_process(epochs: int, limit: int | None, workers=None) -> float:
    """Not in this process: the GUI run leaves threads, niceness and heap
    behind that slowed a later in-process reference by up to 20%."""
    cmd = [sys.executable, __file__, "--headless-only", "--headless-epochs", str(epochs)]
    if limit:
        cmd += ["--limit", str(limit)]
    if workers:
        cmd += ["--workers", str(workers)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def headless_throughput(epochs: int, limit: int | None, workers=None) -> float:
    from cnnviz.data.mnist import load_mnist
    from cnnviz.engine import lenet5
    from cnnviz.engine.trainer import TrainConfig, Trainer
    train, test = load_mnist(split="train"), load_mnist(split="test")
    # As `cnnviz train` runs it: defaults (one process per core), throttled
    # snapshots, no probe.
    trainer = Trainer(lenet5(seed=0), (train.images, train.labels), (test.images, test.labels),
                      TrainConfig(epochs=epochs, limit=limit, snapshot_interval=0.1,
                                  workers=workers))
    for snap in trainer.run():
        pass
    # The last snapshot's elapsed: training seconds, pauses excluded.
    return snap.samples_seen / snap.elapsed


def gui_run(epochs: int, limit: int | None, cycle_seconds: float, reference=None,
            workers=None) -> dict:
    """The Training tab's run. With ``reference`` (a function returning a
    headless throughput), the run pauses after each epoch but the last,
    calls it, and resumes: every GUI epoch is compared with headless epochs
    measured seconds before and after it, however the machine's speed drifts.
    The heartbeat is off meanwhile, and pauses are not training time."""
    from PyQt6.QtCore import QEventLoop, QTimer
    from PyQt6.QtWidgets import QApplication
    from cnnviz.gui.training import TrainingTab

    app = QApplication.instance() or QApplication(sys.argv)   # noqa: F841 (must exist)
    tab = TrainingTab(workers=workers)
    tab.setup.epochs.setValue(epochs)
    if limit:
        tab.setup.limit.setValue(limit)
    tab.resize(1400, 900)
    tab.show()

    gaps, gap_views = [], []
    last = [time.perf_counter()]

    def beat():
        now = time.perf_counter()
        gaps.append(now - last[0])
        gap_views.append(tab.views.tabText(tab.views.currentIndex()))
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(beat)

    def cycle():
        tab.views.setCurrentIndex((tab.views.currentIndex() + 1) % tab.views.count())
        if tab.views.currentWidget() is tab.digit and not tab.digit.canvas.ink().any():
            tab.digit.canvas.draw_stroke([(100, 60), (180, 60), (120, 230)])   # a 7

    cycler = QTimer()
    cycler.setInterval(int(cycle_seconds * 1000) or 10**9)   # 0: stay on the curves
    cycler.timeout.connect(cycle)
    # The count and the last one only: every snapshot carries a copy of the
    # weights, and keeping them all would be the bench's own leak.
    last_snap, snap_count = [None], [0]
    epoch_marks = [(0, 0.0)]                 # (samples seen, training seconds) at epoch ends
    references, reference_due = [], [False]

    def on_snapshot(snap):
        last_snap[0] = snap
        snap_count[0] += 1
        if snap.kind == "epoch":
            epoch_marks.append((snap.samples_seen, snap.elapsed))
            if reference is not None and snap.epoch < epochs:
                reference_due[0] = True
                tab.pause()

    def on_state(state):
        if state == "paused" and reference_due[0]:
            reference_due[0] = False
            heartbeat.stop()
            cycler.stop()
            references.append(reference())
            heartbeat.start()
            cycler.start()
            last[0] = time.perf_counter()
            tab.resume()

    tab.snapshot_received.connect(on_snapshot)
    tab.run_state_changed.connect(on_state)
    # A local loop: QApplication.quit() would close the window, which asks
    # about the unsaved model.
    loop = QEventLoop()
    tab.run_state_changed.connect(lambda s: loop.quit() if s in ("finished", "stopped") else None)

    t0, cpu0 = time.perf_counter(), time.thread_time()
    tab.start()
    heartbeat.start()
    cycler.start()
    last[0] = time.perf_counter()
    loop.exec()
    wall = time.perf_counter() - t0
    gui_cpu = time.thread_time() - cpu0     # includes the headless references' waits (idle)
    heartbeat.stop()
    cycler.stop()
    trainer = tab.trainer
    stalls = np.maximum(np.array(gaps) - 0.010, 0) * 1000
    worst_by_view = {}
    for view, stall in zip(gap_views, stalls):
        worst_by_view[view] = max(worst_by_view.get(view, 0.0), float(stall))
    ok = tab.shutdown(1.0)
    result = {
        "state": tab.state, "test_accuracy": trainer.test_accuracy,
        "samples": last_snap[0].samples_seen, "train_seconds": last_snap[0].elapsed,
        "wall_seconds": wall, "gui_thread_cpu_seconds": gui_cpu, "throughput": last_snap[0].samples_seen / last_snap[0].elapsed,
        "snapshots": snap_count[0], "heartbeats": len(gaps),
        "stall_max_ms": float(stalls.max()), "stall_p99_ms": float(np.percentile(stalls, 99)),
        "stall_p999_ms": float(np.percentile(stalls, 99.9)),
        "stalls_over_50ms": int(np.sum(stalls > 50)), "cycle_seconds": cycle_seconds,
        "stall_max_ms_by_view": worst_by_view,
        "curve_points": tab.curves.point_count(), "worker_stopped": ok,
        "error": tab.last_error, "epoch_marks": epoch_marks, "references_between": references,
    }
    tab.hide()
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None, help="training images (default: all)")
    ap.add_argument("--headless-epochs", type=int, default=1,
                    help="epochs of each headless reference run, before, between and after "
                         "the GUI's epochs (0: skip the comparison)")
    ap.add_argument("--cycle", type=float, default=4.0, help="seconds per view while training (0: keep the curves page)")
    ap.add_argument("--workers", type=int, default=None,
                    help="processes per batch, GUI and headless alike (default: one per core)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    ap.add_argument("--headless-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.headless_only:
        print(headless_throughput(args.headless_epochs, args.limit, args.workers))
        return 0

    figures = {"epochs": args.epochs, "limit": args.limit, "cpus": os.cpu_count(),
               "workers": args.workers}

    def reference():
        return headless_throughput_in_new_process(args.headless_epochs, args.limit, args.workers)

    if args.headless_epochs:
        before = reference()
        print(f"headless before: {before:,.0f} images/s", flush=True)
    gui = gui_run(args.epochs, args.limit, args.cycle, reference if args.headless_epochs else None,
                  args.workers)
    figures.update(gui)
    if args.headless_epochs:
        after = reference()
        refs = [before, *gui["references_between"], after]
        marks = gui["epoch_marks"]
        ratios, gui_seconds, ref_seconds = [], 0.0, 0.0
        for i in range(1, len(marks)):
            samples = marks[i][0] - marks[i - 1][0]
            seconds = marks[i][1] - marks[i - 1][1]
            ref = (refs[i - 1] + refs[min(i, len(refs) - 1)]) / 2   # the headless runs around it
            ratios.append(samples / seconds / ref)
            gui_seconds += seconds
            ref_seconds += samples / ref
        print("headless references: " + ", ".join(f"{r:,.0f}" for r in refs) + " images/s")
        print("GUI epoch / headless around it: "
              + ", ".join(f"{100 * r:.1f}%" for r in ratios))
        figures.update(headless_references=refs, epoch_ratios=ratios,
                       headless=float(np.mean(refs)),
                       throughput_ratio=ref_seconds / gui_seconds)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    acc = gui["test_accuracy"]
    print(f"GUI run ({gui['state']}): {gui['samples']:,} images in {gui['train_seconds']:.0f} s "
          f"of training, test accuracy {100 * acc:.2f}%" if acc is not None else "no accuracy")
    print(f"GUI throughput: {gui['throughput']:,.0f} images/s"
          + (f" = {100 * figures['throughput_ratio']:.1f}% of the headless epochs around "
             f"each of its epochs" if args.headless_epochs else ""))
    print(f"GUI thread busy: {gui['gui_thread_cpu_seconds']:.1f} s of CPU over "
          f"{gui['train_seconds']:.0f} s of training")
    print(f"main-thread stall: max {gui['stall_max_ms']:.1f} ms, p99 {gui['stall_p99_ms']:.1f} ms, "
          f"{gui['stalls_over_50ms']} over 50 ms, in {gui['heartbeats']:,} heartbeats")
    print("longest stall per view: " + ", ".join(
        f"{view.replace('&&', '&')} {ms:.0f} ms" for view, ms in gui["stall_max_ms_by_view"].items()))
    print(f"peak RSS: {figures['peak_rss_mb']:.0f} MB; curve points held: {gui['curve_points']}")
    if gui["error"]:
        print("error:", gui["error"])
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
