"""Whole processes timed from start to exit: `cnnviz train` against a plain
PyTorch script (bench/torch_epoch.py), imports, data loading and the test
evaluation included; and the default run's time to 99.0% test accuracy.

    python bench/epoch.py [--reps 3] [--epochs 1]     # the epoch ratio
    python bench/epoch.py --default-run [--reps 1]    # the 5-epoch default run

Each repetition runs the two processes one after the other (alternating which
goes first), so both see the same machine state; medians and the ratio are
printed with the CPU and the load average. --default-run runs `cnnviz train`
with its defaults and reports, from the time each epoch line appears, when
the test accuracy first reached 99.0% and where it ended.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import cpu_description, load_text  # noqa: E402  (bench/machine.py)

ACCURACY = re.compile(r"test (?:loss [0-9.]+, )?accuracy ([0-9.]+)%")


def run(cmd) -> tuple[float, list[tuple[float, float]]]:
    """Wall seconds from start to exit, and (seconds, test accuracy %) of
    each epoch line as it appeared."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    epochs = []
    for line in proc.stdout:
        m = ACCURACY.search(line)
        if m:
            epochs.append((time.perf_counter() - t0, float(m.group(1))))
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{err}")
    return time.perf_counter() - t0, epochs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--default-run", action="store_true",
                    help="time the default 5-epoch `cnnviz train` to 99.0%% and to its end")
    args = ap.parse_args(argv)
    print(f"machine: {cpu_description()}")
    print(f"{load_text()} at the start")
    cnnviz = [sys.executable, "-m", "cnnviz", "train", "--no-progress"]
    if args.default_run:
        for rep in range(args.reps):
            wall, epochs = run(cnnviz)
            reached = next((t for t, acc in epochs if acc >= 99.0), None)
            print(f"default run {rep + 1}: " + ", ".join(f"{acc:.2f}% at {t:.1f} s" for t, acc in epochs)
                  + f"; 99.0% after {reached:.1f} s" if reached else "; 99.0% not reached")
            print(f"  final test accuracy {epochs[-1][1]:.2f}%, process {wall:.1f} s")
        print(f"{load_text()} at the end")
        return
    torch_cmd = [sys.executable, str(ROOT / "bench" / "torch_epoch.py"), "--epochs", str(args.epochs)]
    ours = cnnviz + ["--epochs", str(args.epochs)]
    times = {"cnnviz": [], "pytorch": []}
    for rep in range(args.reps):
        order = [("cnnviz", ours), ("pytorch", torch_cmd)]
        for name, cmd in (order if rep % 2 == 0 else order[::-1]):
            time.sleep(1.0)
            wall, epochs = run(cmd)
            times[name].append(wall)
            print(f"  {name:8s} {wall:6.2f} s, test accuracy {epochs[-1][1]:.2f}%", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"whole process, {args.epochs} epoch(s) of MNIST with the test evaluation "
          f"(median of {args.reps}): cnnviz {med['cnnviz']:.2f} s, pytorch {med['pytorch']:.2f} s "
          f"= cnnviz {med['pytorch'] / med['cnnviz']:.2f}x faster")
    print(f"{load_text()} at the end")


if __name__ == "__main__":
    main()
