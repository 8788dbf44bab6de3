"""Training tab: does the GUI thread keep answering while a 50,000-file image
folder is listed and loaded? (issue #14 point 4: "must not hold the GUI").

    python bench/dataset_folder.py                 # offscreen, 50,000 files
    python bench/dataset_folder.py --files 20000 --runs 2

The folder is written by the Training-dataset tests' own helper
(tests/gui/test_training_datasets.py: tiny PNGs in 10 class subfolders) to a
temporary directory, with the image cache in another. It is chosen in the
Training tab's dataset row as a user does, twice: the first load (listing,
decoding, caching) and, in a new tab, the load from the cache. A 5 ms QTimer
on the GUI thread records each tick; the longest gaps between ticks are what
the user feels as a freeze. They are printed per phase (listing: before the
first progress; decoding; after the last progress until the data is in the
tab) with the GUI thread's own CPU time (time.thread_time) over each gap: a
long gap with little GUI-thread CPU is the thread waiting (for the
interpreter lock a loading thread holds in one long C call), a long gap with
as much CPU is work done on the GUI thread itself. The garbage collector's
passes are timed too (gc.callbacks): a pass holds the interpreter lock from
start to end, in whichever thread allocated last. For comparison, the same
timer in an idle tab first ("idle"): on a loaded machine the operating system
alone leaves gaps of tens of milliseconds. A benchmark, not a test: figures
are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "bench", ROOT / "tests" / "gui"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

TICK_MS = 5


def measure(app, folder: Path | None, side: int, idle: float = 0.0) -> dict:
    """One load of ``folder`` in a new Training tab: the ticks' gaps by phase
    (``folder`` None: the tab left idle for ``idle`` seconds)."""
    from PyQt6.QtCore import QTimer

    from cnnviz.gui.training import TrainingTab

    tab = TrainingTab()
    tab.resize(1400, 900)
    tab.show()
    for _ in range(20):
        app.processEvents()
    bar = tab.setup.dataset.progress
    ticks = []                # (wall, GUI-thread CPU, phase)
    state = {"phase": "listing"}

    def tick():
        if state["phase"] == "listing" and bar.maximum() > 0:
            state["phase"] = "decoding"
        if state["phase"] == "decoding" and bar.maximum() > 0 and bar.value() >= bar.maximum():
            state["phase"] = "handing over"
        ticks.append((time.perf_counter(), time.thread_time(), state["phase"]))

    passes, started = [], {}

    def on_gc(phase, info):
        if phase == "start":
            started["t"] = time.perf_counter()
        elif "t" in started:
            passes.append((time.perf_counter() - started["t"], info["generation"]))

    gc.callbacks.append(on_gc)
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    timer.start()
    for _ in range(5):
        app.processEvents()
    cpu0, t0 = time.process_time(), time.perf_counter()
    if folder is None:
        state["phase"] = "idle"
        while time.perf_counter() < t0 + idle:
            app.processEvents()
            time.sleep(0.001)
        loaded = True
    else:
        tab.setup.dataset.set_choice("folder", folder, side, True)
        key = tab.setup.settings().dataset
        deadline = t0 + 600
        while not (tab.session.has_data(key) or tab.banner.isVisible()):
            app.processEvents()
            time.sleep(0.001)
            if time.perf_counter() > deadline:
                break
        loaded = tab.session.has_data(key)
    tick()
    total = time.perf_counter() - t0
    timer.stop()
    gc.callbacks.remove(on_gc)
    message = "" if loaded else tab.banner.text() or "timed out"
    process_cpu = time.process_time() - cpu0
    tab.shutdown(5.0)
    tab.close()
    tab.deleteLater()
    for _ in range(20):
        app.processEvents()
    gaps = {}
    for (w0, c0, _), (w1, c1, phase) in zip(ticks, ticks[1:]):
        gaps.setdefault(phase, []).append((w1 - w0, c1 - c0))
    return {"total": total, "process_cpu": process_cpu, "gaps": gaps, "loaded": loaded,
            "message": message, "gc": sorted(passes, reverse=True)}


def report(name: str, r: dict) -> None:
    from machine import load_text
    status = "loaded" if r["loaded"] else f"NOT loaded ({r['message']})"
    print(f"{name}: {status} in {r['total']:.2f} s, process CPU {r['process_cpu']:.2f} s; "
          f"{load_text()}")
    for phase in ("idle", "listing", "decoding", "handing over"):
        g = sorted(r["gaps"].get(phase, []), reverse=True)
        if not g:
            continue
        top = ", ".join(f"{w * 1000:.0f} ms (GUI CPU {c * 1000:.0f})" for w, c in g[:3])
        print(f"  {phase:13s} {len(g):5d} ticks; longest gaps: {top}")
    every = [w for g in r["gaps"].values() for w, _ in g]
    if every:
        print(f"  longest gap of all: {max(every) * 1000:.0f} ms (ticks every {TICK_MS} ms)")
    top = ", ".join(f"{d * 1000:.0f} ms (generation {g})" for d, g in r["gc"][:3])
    print(f"  garbage collector: {len(r['gc'])} passes; longest {top or '-'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--side", type=int, default=8, help="image side, and the size loaded")
    parser.add_argument("--runs", type=int, default=1, help="first + cached loads, each")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix="cnnviz-bench-folder-"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    os.environ["CNNVIZ_SETTINGS_DIR"] = str(work / "settings")
    from PyQt6.QtWidgets import QApplication

    from cnnviz.gui.app import configure_pyqtgraph
    from machine import cpu_description
    from test_training_datasets import write_big_folder

    app = QApplication.instance() or QApplication([])
    configure_pyqtgraph()
    print(cpu_description())
    t = time.perf_counter()
    folder = write_big_folder(work / "big", args.files, side=args.side)
    print(f"wrote {args.files:,} PNG files of {args.side}x{args.side} in "
          f"{time.perf_counter() - t:.1f} s to {folder}")
    try:
        for run in range(args.runs):
            import shutil
            shutil.rmtree(work / "cache", ignore_errors=True)
            report(f"run {run + 1}, idle tab", measure(app, None, args.side, idle=5.0))
            report(f"run {run + 1}, first load", measure(app, folder, args.side))
            report(f"run {run + 1}, from the cache", measure(app, folder, args.side))
    finally:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
