"""LeNet-5 throughput: cnnviz's NumPy engine against PyTorch's CPU build.

    python bench/engine.py [--reps 5] [--batches 150] [--batch-size 64] [--workers N]
                           [--sizes 16,32,64,128,256,512] [--quick | --layers]

Training (forward + loss + backward + SGD-momentum step) and inference
(forward only) on real MNIST batches, float32. cnnviz runs in one process
(one BLAS thread) and with ``--workers`` processes (default: one per usable
core; engine/parallel.py, the path ``TrainConfig(workers=...)`` takes for
training and for the trainer's test evaluation);
PyTorch (never a dependency of cnnviz) uses every core. Runs are interleaved
repetition by repetition so all see the same machine state; medians and the
ratios to PyTorch are printed, then:
  - a per-layer table of cnnviz's single-process step (forward and backward
    ms per batch, share of the step),
  - throughput against the batch size, and against the number of workers.
The machine (CPU model, AVX2 / AVX-512, BLAS) and its load average are
printed beside the figures: other work on the machine lowers them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from cnnviz.data.mnist import load_mnist
from cnnviz.engine import SGD, SoftmaxCrossEntropy, lenet5
from cnnviz.engine.parallel import ParallelStep, usable_cores

from machine import cpu_description, load_text  # bench/machine.py


def batches(images, labels, batch_size, count, seed=0):
    """`count` shuffled batches as float32 (N, 1, 28, 28) in [0, 1]."""
    order = np.random.default_rng(seed).permutation(len(images))[: batch_size * count]
    x = (images[order].astype(np.float32) / 255).reshape(count, batch_size, 1, 28, 28)
    return x, labels[order].astype(np.int64).reshape(count, batch_size)


class NumpyRunner:
    """cnnviz's training step as the trainer runs it: in this process
    (workers=1, one BLAS thread) or split over worker processes."""

    def __init__(self, workers=1, max_batch=512):
        self.workers = workers
        self.name = "cnnviz" if workers == 1 else f"cnnviz x{workers}"
        self.model = lenet5(seed=0)
        self.opt = SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss = SoftmaxCrossEntropy()
        self.engine = None
        if workers > 1:
            self.engine = ParallelStep(self.model, self.loss, workers, sample_shape=(1, 28, 28),
                                       max_batch=max_batch)
            if not self.engine.wait_ready(120):
                raise SystemExit(f"workers did not start: {self.engine.failure or 'timeout'}")

    def train(self, xs, ys):
        if self.engine is not None:
            for x, y in zip(xs, ys):
                self.engine.gradients(x, y)
                self.opt.step()
            return
        with threadpool_limits(limits=1, user_api="blas"):
            for x, y in zip(xs, ys):
                self.loss(self.model.train_forward(x), y)
                self.model.train_backward(self.loss.backward())
                self.opt.step()

    def infer(self, xs):
        if self.engine is not None:         # rows split over the workers, as the trainer's evaluation
            for x in xs:
                self.engine.predict(x)
            return
        with threadpool_limits(limits=1, user_api="blas"):
            for x in xs:
                self.model.predict(x)

    def close(self):
        if self.engine is not None:
            self.engine.close()


class TorchRunner:
    name = "pytorch"
    workers = None

    def __init__(self, torch):
        import torch.nn as nn
        self.torch = torch
        torch.manual_seed(0)
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss = nn.CrossEntropyLoss()

    def _prep(self, x):  # the same normalisation our model does inside
        return (x - 0.1307) / 0.3081

    def train(self, xs, ys):
        for x, y in zip(self.torch.from_numpy(xs), self.torch.from_numpy(ys)):
            self.opt.zero_grad(set_to_none=True)
            self.loss(self.model(self._prep(x)), y).backward()
            self.opt.step()

    def infer(self, xs):
        with self.torch.inference_mode():
            for x in self.torch.from_numpy(xs):
                self.model(self._prep(x))

    def close(self):
        pass


def timed(fn, *args, settle=0.0):
    # A pause first: after a parallel region PyTorch's OpenMP workers spin
    # for a while (GNU OpenMP's default wait policy), and OpenBLAS's threads
    # briefly too; without it, the next runner starts with both cores shared
    # (measured here: cnnviz inference at 20-23k samples/s right after a
    # PyTorch run, 32-38k alone).
    time.sleep(settle)
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def layer_table(xs, ys, reps=3):
    """Per-layer ms per batch of the single-process training step (the
    trainer's order: a monotonic activation runs after its max pooling):
    the median over every batch of ``reps`` passes over ``xs`` (a median,
    not a mean: on a shared machine a few batches take several times as
    long)."""
    model, loss = lenet5(seed=0), SoftmaxCrossEntropy()
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    order = model._training_order()
    first = model.first_param_index()
    fwd = {i: [] for i in order}
    bwd = {i: [] for i in order}
    other, steps = [], []
    clock = time.perf_counter
    with threadpool_limits(limits=1, user_api="blas"):
        for rep in range(reps + 1):              # the first pass warms up
            for x, y in zip(xs, ys):
                start = clock()
                for i in order:
                    t0 = clock(); x = model.layers[i].forward(x); t1 = clock()
                    if rep: fwd[i].append(t1 - t0)
                t0 = clock(); loss(x, y); g = loss.backward(); t_loss = clock() - t0
                for i in reversed(order):
                    t0 = clock()
                    g = model.layers[i].backward(g, need_input_grad=i != first)
                    if rep: bwd[i].append(clock() - t0)
                    if i == first:
                        break
                t0 = clock(); opt.step(); t1 = clock()
                if rep:
                    other.append(t_loss + t1 - t0)
                    steps.append(t1 - start)
    med = statistics.median
    f_ms = {i: 1e3 * med(fwd[i]) for i in order}
    b_ms = {i: 1e3 * med(bwd[i]) if bwd[i] else 0.0 for i in order}
    o_ms = 1e3 * med(other)
    total = sum(f_ms.values()) + sum(b_ms.values()) + o_ms
    print(f"\nper layer, cnnviz single process, batch {xs.shape[1]} "
          f"(median ms per batch over {reps} x {len(xs)} batches; training order, a ReLU runs "
          f"after its max pool):")
    print(f"  {'layer':8s} {'forward':>8s} {'backward':>9s} {'share':>7s}")
    for i in order:
        print(f"  {model.layers[i].name:8s} {f_ms[i]:8.3f} {b_ms[i]:9.3f} "
              f"{100 * (f_ms[i] + b_ms[i]) / total:6.1f}%")
    print(f"  {'loss+sgd':8s} {o_ms:8.3f} {'':9s} {100 * o_ms / total:6.1f}%")
    step = 1e3 * med(steps)
    print(f"  {'step':8s} {step:8.3f} ms median = {xs.shape[1] / step * 1e3:,.0f} samples/s "
          f"(sum of the medians {total:.3f} ms; timers included)")


def scan(runners, make_data, points, reps, settle, label):
    """Median training samples/s of each runner at each point."""
    print(f"\ntraining samples/s against {label} (median of {reps}):")
    print("  " + f"{label:>10s}" + "".join(f"{r.name:>14s}" for r in runners))
    for point in points:
        xs, ys = make_data(point)
        samples = xs.shape[0] * xs.shape[1]
        for r in runners:
            r.train(xs[:2], ys[:2])
        rates = {r.name: [] for r in runners}
        for _ in range(reps):
            for r in runners:
                rates[r.name].append(samples / timed(r.train, xs, ys, settle=settle))
        print("  " + f"{point:>10}" + "".join(f"{statistics.median(rates[r.name]):14,.0f}"
                                            for r in runners))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batches", type=int, default=150, help="batches per repetition")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=usable_cores(),
                    help="cnnviz training processes (default: one per usable core)")
    ap.add_argument("--sizes", default="16,32,64,128,256,512",
                    help="batch sizes of the batch-size scan")
    ap.add_argument("--settle", type=float, default=0.5,
                    help="seconds of idle before each timed run (see timed())")
    ap.add_argument("--quick", action="store_true", help="the comparison only: no table, no scans")
    ap.add_argument("--layers", action="store_true",
                    help="the per-layer tables only (batch size and its share per worker)")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error(f"--workers must be 1 or more, got {args.workers}")
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        ap.error(f"--sizes must be whole numbers separated by commas, got {args.sizes!r}")

    train = load_mnist(split="train")
    images, labels = train.images, train.labels
    if args.layers:
        print(f"machine: {cpu_description()}; {load_text()}")
        for size in sorted({args.batch_size, args.batch_size // args.workers} - {0}):
            layer_table(*batches(images, labels, size, 60))
        return
    xs, ys = batches(images, labels, args.batch_size, args.batches)
    runners = [NumpyRunner(1)]
    if args.workers > 1:
        runners.append(NumpyRunner(args.workers))
    torch_runner = None
    try:
        import torch
        torch.set_num_threads(os.cpu_count())
        torch_runner = TorchRunner(torch)
        runners.append(torch_runner)
        torch_info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch_info = "PyTorch not installed: cnnviz figures only"

    print(f"machine: {cpu_description()}")
    print(f"{torch_info}; {load_text()} at the start")
    print(f"LeNet-5, batch {args.batch_size}, float32, {args.batches} MNIST batches x "
          f"{args.reps} repetitions (interleaved, {args.settle:g} s idle before each); "
          f"cnnviz: 1 process with 1 BLAS thread, and {args.workers} worker processes")
    for r in runners:                       # warm-up: caches, BLAS threads, allocator
        r.train(xs[:10], ys[:10]); r.infer(xs[:10])

    samples = args.batches * args.batch_size
    jobs = {"train": runners, "infer": runners}
    rates = {(r.name, job): [] for job, rs in jobs.items() for r in rs}
    for _ in range(args.reps):
        for r in runners:
            rates[(r.name, "train")].append(samples / timed(r.train, xs, ys, settle=args.settle))
            if (r.name, "infer") in rates:
                rates[(r.name, "infer")].append(samples / timed(r.infer, xs, settle=args.settle))

    for job, rs in jobs.items():
        print(f"{job}:")
        for r in rs:
            vals = rates[(r.name, job)]
            med = statistics.median(vals)
            line = (f"  {r.name:12s} {med:8,.0f} samples/s (min {min(vals):,.0f}, "
                    f"max {max(vals):,.0f})")
            if torch_runner is not None and r is not torch_runner:
                line += (f"  = {med / statistics.median(rates[('pytorch', job)]):.2f}x pytorch")
            print(line)
    print(f"({load_text()} at the end)")

    if not args.quick:
        layer_table(xs[:60], ys[:60])
        if args.workers > 1:          # what each worker runs
            layer_table(*batches(images, labels, args.batch_size // args.workers, 60))
        n_samples = 64 * 60
        scan(runners, lambda bs: batches(images, labels, bs, max(n_samples // bs, 2)), sizes,
             3, args.settle, "batch size")
        # more workers than cores only where asked: they share the cores
        counts = sorted({1, 2, args.workers, usable_cores()})
        extra = [NumpyRunner(w) for w in counts if w not in (1, args.workers)]
        wrunners = sorted([r for r in runners if r.workers] + extra, key=lambda r: r.workers)
        if torch_runner is not None:
            wrunners.append(torch_runner)
        print(f"\n(workers scan: {', '.join(r.name for r in wrunners)}; {load_text()})")
        scan(wrunners, lambda bs: batches(images, labels, bs, 60), [args.batch_size], 3,
             args.settle, "batch size")
        for r in extra:
            r.close()
    for r in runners:
        r.close()


if __name__ == "__main__":
    main()
