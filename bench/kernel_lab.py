"""Kernel Lab on big photos: compute time, peak extra memory, key-to-repaint latency.

    python bench/kernel_lab.py                      # compute + memory (no display needed)
    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1400x900x24" python bench/kernel_lab.py --latency
    python bench/kernel_lab.py --reps 15 --sizes 2048 1024

Layers (conv -> ReLU -> 2x2 max pool, as the lab starts; a random photo-sized
input in [0, 1]):
  - a bank of 4 RGB 7x7 filters on 2048x2048 and on 1024x1024 (targets: under
    300 ms and 80 ms, under 600 MB of extra memory for 2048x2048);
  - one 3x3 RGB filter on 512x512 (target: under 5 ms).

Per layer: the conv alone (filter_conv.conv2d_maps, or the engine's conv2d on a
checkout without it), the lab's pipeline (conv, ReLU, pool: run_pipeline) and
the worker's whole job (pipeline + colour maps: worker.compute; and with the
maps coloured for --tile px wide tiles, as the lab does for big maps), median and
min over --reps runs, and the process's CPU time (all threads): on a shared
machine the wall time also holds other processes' turns. Peak extra memory: a fresh subprocess per layer resets
its peak RSS (/proc/self/clear_refs 5), runs worker.compute once, and reports
VmHWM minus the RSS before (OpenCV's and NumPy's allocations alike).

--latency (needs a display; run it under Xvfb with xcb): the 3x3 on a 512x512
photo in the main window (--latency-side 1024 or 2048: a bigger photo, whose
edits run on the worker thread; --latency-bank: the bank of 4 RGB 7x7 filters,
"computed and shown"); a real key press (QTest.keyClick into a kernel cell)
until the last Paint event on the viewport of every stage grid that changes
(conv, ReLU, pool), waiting until no paint arrives for --quiet ms.

A benchmark, not a test: it prints figures and asserts nothing. Run it from the
repository root with PYTHONPATH set to it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from machine import cpu_description  # noqa: E402  (bench/machine.py)
os.environ.setdefault("CNNVIZ_SETTINGS_DIR", tempfile.mkdtemp(prefix="cnnviz-bench-"))

LAYERS = {   # name: (image side, filters, kernel side)
    "2048": (2048, 4, 7),
    "1024": (1024, 4, 7),
    "512": (512, 1, 3),
}
TITLES = {"2048": "4 RGB 7x7 filters, 2048x2048", "1024": "4 RGB 7x7 filters, 1024x1024",
          "512": "one RGB 3x3 filter, 512x512"}



def request_for(name: str, seed: int = 0):
    from cnnviz.gui.kernel_lab.pipeline import LayerConfig
    from cnnviz.gui.kernel_lab.worker import Request

    side, filters, k = LAYERS[name]
    rng = np.random.default_rng(seed)
    image = rng.random((3, side, side), dtype=np.float32)
    weights = rng.uniform(-1, 1, (filters, 3, k, k)).astype(np.float32)
    config = LayerConfig(weights, rng.uniform(-0.1, 0.1, filters).astype(np.float32),
                         activation="relu", pool="max")
    return Request(image, config, shared_scale=True, rgb_input=True, submitted=0.0)


def conv_only(request):
    """The conv as the lab computes it on this checkout."""
    config, x = request.config, request.image[None]
    try:
        from cnnviz.gui.kernel_lab.filter_conv import conv2d_maps
    except ImportError:      # an older checkout: the engine's im2col conv
        from cnnviz.engine import functional as F
        return "engine conv2d", lambda: F.conv2d(x, config.weights, config.bias, config.stride,
                                                  config.padding, config.dilation)
    return "filter2D conv", lambda: conv2d_maps(x, config.weights, config.bias, config.stride,
                                                config.padding, config.dilation)


def timed(fn, reps):
    """(wall times, CPU times of the whole process: every thread's)."""
    fn()   # warm-up: thread pool, caches
    times, cpu = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return times, cpu


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def bench_compute(name: str, reps: int, tile: int = 0) -> None:
    from cnnviz.gui.kernel_lab import pipeline
    from cnnviz.gui.kernel_lab.worker import compute

    request = request_for(name)
    print(f"\n{TITLES[name]} (conv -> ReLU -> 2x2 max pool), {reps} runs:")
    label, conv = conv_only(request)
    parts = [(label, conv),
             ("pipeline (conv, ReLU, pool)", lambda: pipeline.run_pipeline(request.image,
                                                                           request.config)),
             ("pipeline + colour maps", lambda: compute(request))]
    if tile:     # the maps as the lab colours them for tiles of that many screen pixels
        import dataclasses
        side = LAYERS[name][0]
        seen = dataclasses.replace(request, density={s: side / tile for s in
                                                     ("conv", "activation", "pool")})
        parts.append((f"... drawn in {tile} px tiles", lambda: compute(seen)))
    for what, fn in parts:
        try:
            times, cpu = timed(fn, reps)
        except (pipeline.PipelineError, MemoryError) as exc:
            print(f"  {what:30s} refused: {exc}")
            return
        print(f"  {what:30s} median {ms(statistics.median(times))}   min {ms(min(times))}"
              f"   CPU (all threads) median {ms(statistics.median(cpu))}")


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def memory_child(name: str) -> None:
    """In a fresh process: peak RSS growth of one worker.compute (prints JSON)."""
    try:
        from cnnviz.gui.kernel_lab import filter_conv  # noqa: F401  (imports outside the peak)
    except ImportError:      # an older checkout
        pass
    from cnnviz.gui.kernel_lab.pipeline import PipelineError
    from cnnviz.gui.kernel_lab.worker import compute

    request = request_for(name)
    Path("/proc/self/clear_refs").write_text("5")      # VmHWM := VmRSS
    before = status_kb("VmRSS")
    try:
        compute(request)
        error = ""
    except PipelineError as exc:
        error = str(exc)
    print(json.dumps({"extra_mb": (status_kb("VmHWM") - before) / 1024, "error": error}))


def bench_memory(name: str) -> None:
    proc = subprocess.run([sys.executable, __file__, "--memory-child", name], cwd=ROOT,
                          capture_output=True, text=True, env=dict(os.environ), timeout=300)
    if proc.returncode != 0:
        print(f"  peak extra memory: the subprocess failed: {proc.stderr.strip()[-300:]}")
        return
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["error"]:
        print(f"  peak extra memory: refused: {out['error']}")
    else:
        print(f"  peak extra memory (VmHWM - RSS before, fresh process): "
              f"{out['extra_mb']:.0f} MB")


# --- key to repaint ------------------------------------------------------------------------

def bench_latency(reps: int, quiet_ms: float, side: int = 512, bank: bool = False) -> None:
    from PyQt6.QtCore import QEvent, QObject, Qt
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from cnnviz.data.images import load_image, resize, sample_images
    from cnnviz.gui.app import configure_pyqtgraph
    from cnnviz.gui.kernel_lab.input_loader import InputImage
    from cnnviz.gui.main_window import MainWindow

    configure_pyqtgraph()
    window = MainWindow(load_default_input=False)
    window.resize(1400, 900)
    window.show()
    window.activateWindow()
    lab = window.kernel_lab
    pixels = resize(load_image(sample_images()["astronaut"]), (side, side))
    lab.set_input(InputImage(pixels, f"astronaut {side}x{side}", (side, side)))
    if bank:    # the compute figures' bank: 4 RGB 7x7 filters
        rng = np.random.default_rng(0)
        lab.bank.set_bank(rng.uniform(-1, 1, (4, 3, 7, 7)).astype(np.float32),
                          np.zeros(4, np.float32), [f"random {i + 1}" for i in range(4)])
    else:
        lab.bank.editor.apply_preset("Sobel x")

    paints: dict[str, list[float]] = {}
    cpu_at: dict[str, float] = {}

    class PaintClock(QObject):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                paints[self.name].append(time.perf_counter())
                cpu_at[self.name] = time.thread_time()
            return False

    def settle(quiet: float, limit: float = 10.0) -> None:
        """Process events until none of the grids painted for ``quiet`` seconds
        since the lab was last busy (a result from the worker thread arrives long
        after the key's first paints, and its own paint comes after it)."""
        end = time.perf_counter() + limit
        idle_since = start
        while time.perf_counter() < end:
            app.processEvents()
            now = time.perf_counter()
            if lab.busy:         # the worker computes: poll gently, its threads need the CPU
                idle_since = now
                time.sleep(0.002)
            else:
                last = max((t[-1] for t in paints.values() if t), default=0.0)
                if now - max(last, idle_since) >= quiet:
                    return
            time.sleep(0.0005)

    start = time.perf_counter()
    clocks = []
    for name in ("input", "conv", "activation", "pool"):
        paints[name] = []
        clock = PaintClock(name)
        lab.grids[name].viewport().installEventFilter(clock)
        clocks.append(clock)
    settle(0.5)
    changing = [n for n in ("conv", "activation", "pool") if lab.grids[n].isVisible()]
    tiles = {n: round(lab.grids[n].tiles[0].view.width()) for n in changing if lab.grids[n].tiles}
    cell = lab.bank.editor.cell(1, 1)
    cell.setFocus()
    lat, compute_s, cpu, counts, missed = [], [], [], [], 0
    for i in range(reps):
        cell.selectAll()
        for t in paints.values():
            t.clear()
        cpu0 = time.thread_time()
        start = time.perf_counter()
        QTest.keyClick(cell, Qt.Key(Qt.Key.Key_1 + i % 9))
        settle(quiet_ms / 1000)
        if not all(paints[n] for n in changing):
            missed += 1
            continue
        lat.append(max(paints[n][-1] for n in changing) - start)
        compute_s.append(lab.output.compute_seconds)
        cpu.append(max(cpu_at[n] for n in changing) - cpu0)
        counts.append(max(len(paints[n]) for n in changing))
    what = "4 RGB 7x7 filters" if bank else "one RGB 3x3 filter"
    print(f"\n{what}, {side}x{side}, key press -> last repaint of {', '.join(changing)} "
          f"({app.platformName()}, {reps} keys, quiet period {quiet_ms:.0f} ms):")
    if lat:
        print(f"  median {ms(statistics.median(lat))}   p95 "
              f"{ms(float(np.percentile(lat, 95)))}   max {ms(max(lat))}")
        print(f"  tiles drawn (px wide): {tiles}")
        print(f"  GUI-thread CPU time over the same interval: median "
              f"{ms(statistics.median(cpu))}; paints per grid per key: at most "
              f"{max(counts)}")
        where = "inline" if side == 512 and not bank else "on the worker thread"
        print(f"  of which the compute (pipeline + colour maps, {where}): median "
              f"{ms(statistics.median(compute_s))}")
    if missed:
        print(f"  {missed} key presses left a grid unpainted (not counted)")
    window.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--sizes", nargs="+", default=list(LAYERS), choices=list(LAYERS))
    parser.add_argument("--latency", action="store_true", help="also key -> repaint (display)")
    parser.add_argument("--latency-only", action="store_true")
    parser.add_argument("--keys", type=int, default=40, help="key presses for --latency")
    parser.add_argument("--latency-side", type=int, default=512, choices=[512, 1024, 2048],
                        help="photo size for --latency")
    parser.add_argument("--tile", type=int, default=300,
                        help="also time the colour maps for tiles this many px wide "
                             "(the lab colours big maps at the size they are seen; 0: skip)")
    parser.add_argument("--latency-bank", action="store_true",
                        help="--latency with the bank of 4 RGB 7x7 filters, not one 3x3")
    parser.add_argument("--quiet", type=float, default=150.0,
                        help="ms without a paint that ends a key's measurement")
    parser.add_argument("--memory-child", choices=list(LAYERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    import cv2

    print(f"CPU: {cpu_description()}; OpenCV {cv2.__version__} with {cv2.getNumThreads()} threads; "
          f"NumPy {np.__version__}; load average {os.getloadavg()[0]:.2f}")
    if not args.latency_only:
        for name in args.sizes:
            bench_compute(name, args.reps, args.tile)
            bench_memory(name)
    if args.latency or args.latency_only:
        bench_latency(args.keys, args.quiet, args.latency_side, args.latency_bank)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
