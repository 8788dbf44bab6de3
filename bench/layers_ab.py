"""Per-layer times of the training step, this engine against another
checkout's, interleaved batch by batch in one process (both see the same
machine state: on a shared machine separate runs differ by more than the
changes measured).

    git worktree add /tmp/before <commit>        # or: git archive <commit> | tar -x -C /tmp/before
    python bench/layers_ab.py --before /tmp/before [--sizes 64,32] [--passes 4]

The other checkout's ``cnnviz`` package is copied to a temporary directory as
``cnnviz_before`` (the engine imports only relatively) and imported beside
this one. Prints, per layer and pass, the 10th percentile and the median of
the ms per batch over ``passes`` x 60 MNIST batches, one BLAS thread: the
percentile shows a layer's own cost, the median also the machine's load.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import batches  # noqa: E402  (bench/engine.py)
from machine import cpu_description, load_text  # noqa: E402  (bench/machine.py)

from cnnviz.data.mnist import load_mnist  # noqa: E402


def step_timer(engine):
    model = engine.lenet5(seed=0)
    loss = engine.SoftmaxCrossEntropy()
    opt = engine.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    order, first = model._training_order(), model.first_param_index()
    times: dict = {}

    def run(x, y, keep):
        clock = time.perf_counter
        start = clock()
        for i in order:
            t0 = clock(); x = model.layers[i].forward(x); t1 = clock()
            if keep: times.setdefault(("forward", model.layers[i].name), []).append(t1 - t0)
        t0 = clock(); loss(x, y); g = loss.backward(); t_loss = clock() - t0
        for i in reversed(order):
            t0 = clock()
            g = model.layers[i].backward(g, need_input_grad=i != first)
            if keep: times.setdefault(("backward", model.layers[i].name), []).append(clock() - t0)
            if i == first:
                break
        t0 = clock(); opt.step(); t1 = clock()
        if keep:
            times.setdefault(("loss+sgd", ""), []).append(t_loss + t1 - t0)
            times.setdefault(("step", ""), []).append(t1 - start)

    return run, times, [model.layers[i].name for i in order]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True,
                    help="root of the other checkout (holding cnnviz/)")
    ap.add_argument("--sizes", default="64,32", help="batch sizes (default 64,32)")
    ap.add_argument("--passes", type=int, default=4)
    args = ap.parse_args(argv)
    if not (args.before / "cnnviz" / "engine" / "__init__.py").is_file():
        ap.error(f"--before {args.before}: no cnnviz/engine/__init__.py under it")
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="cnnviz_before_"))
    try:
        shutil.copytree(args.before / "cnnviz", tmp / "cnnviz_before")
        sys.path.insert(0, str(tmp))
        engines = {"before": importlib.import_module("cnnviz_before.engine"),
                   "after": importlib.import_module("cnnviz.engine")}
        train = load_mnist(split="train")
        print(f"machine: {cpu_description()}; {load_text()}")
        for size in sizes:
            xs, ys = batches(train.images, train.labels, size, 60)
            runs = {k: step_timer(e) for k, e in engines.items()}
            with threadpool_limits(limits=1, user_api="blas"):
                for p in range(args.passes + 1):          # the first pass warms up
                    for x, y in zip(xs, ys):
                        for run, _, _ in runs.values():
                            run(x, y, keep=p > 0)
            names = runs["after"][2]
            q = {k: {key: (1e3 * np.percentile(v, 10), 1e3 * np.median(v))
                     for key, v in r[1].items()} for k, r in runs.items()}

            def cell(k, key):
                p10, med = q[k].get(key, (0.0, 0.0))
                return f"{p10:7.3f} ({med:7.3f})"
            print(f"\nbatch {size}: ms per batch, 10th percentile (median), {args.passes} x 60 "
                  f"batches, before = {args.before}")
            print(f"  {'layer':9s} {'pass':9s} {'before':>18s} {'after':>18s}")
            for name in names:
                for kind in ("forward", "backward"):
                    if (kind, name) in q["after"]:
                        print(f"  {name:9s} {kind:9s} {cell('before', (kind, name)):>18s} "
                              f"{cell('after', (kind, name)):>18s}")
            for key in (("loss+sgd", ""), ("step", "")):
                print(f"  {key[0]:19s} {cell('before', key):>18s} {cell('after', key):>18s}")
        print(f"({load_text()} at the end)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
