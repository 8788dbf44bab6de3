"""LeNet-5 throughput: cnnviz's NumPy engine against PyTorch's CPU build.

    python bench/engine.py [--reps 7] [--batches 150] [--batch-size 64]

Training (forward + loss + backward + SGD-momentum step) and inference
(forward only) on real MNIST batches of 64, float32. When PyTorch is
installed (never a dependency of cnnviz) the same network runs in the same
process, interleaved repetition by repetition so both see the same machine
state; the medians and the ratio cnnviz / PyTorch are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from cnnviz.data.mnist import load_mnist
from cnnviz.engine import SGD, SoftmaxCrossEntropy, lenet5


def batches(images, labels, batch_size, count, seed=0):
    """`count` shuffled batches as float32 (N, 1, 28, 28) in [0, 1]."""
    order = np.random.default_rng(seed).permutation(len(images))[: batch_size * count]
    x = (images[order].astype(np.float32) / 255).reshape(count, batch_size, 1, 28, 28)
    return x, labels[order].astype(np.int64).reshape(count, batch_size)


class NumpyRunner:
    name = "cnnviz"

    def __init__(self):
        self.model = lenet5(seed=0)
        self.opt = SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss = SoftmaxCrossEntropy()

    def train(self, xs, ys):
        for x, y in zip(xs, ys):
            # the trainer's step (Trainer._train_batch)
            self.loss(self.model.train_forward(x), y)
            self.model.train_backward(self.loss.backward())
            self.opt.step()

    def infer(self, xs):
        for x in xs:
            self.model.predict(x)


class TorchRunner:
    name = "pytorch"

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--batches", type=int, default=150, help="batches per repetition")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--settle", type=float, default=0.5,
                    help="seconds of idle before each timed run (see timed())")
    args = ap.parse_args(argv)

    train = load_mnist(split="train")
    images, labels = train.images, train.labels
    xs, ys = batches(images, labels, args.batch_size, args.batches)
    runners = [NumpyRunner()]
    try:
        import torch
        runners.append(TorchRunner(torch))
        torch_info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch_info = "PyTorch not installed: cnnviz figures only"

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"numpy {np.__version__}; {torch_info}")
    print(f"LeNet-5, batch {args.batch_size}, float32, {args.batches} MNIST batches x "
          f"{args.reps} repetitions (interleaved, {args.settle:g} s idle before each)")
    for r in runners:                       # warm-up: caches, BLAS threads, allocator
        r.train(xs[:10], ys[:10]); r.infer(xs[:10])

    samples = args.batches * args.batch_size
    rates = {(r.name, job): [] for r in runners for job in ("train", "infer")}
    for _ in range(args.reps):
        for r in runners:
            rates[(r.name, "train")].append(samples / timed(r.train, xs, ys, settle=args.settle))
            rates[(r.name, "infer")].append(samples / timed(r.infer, xs, settle=args.settle))

    for job in ("train", "infer"):
        line = f"{job:6s}"
        for r in runners:
            vals = rates[(r.name, job)]
            line += (f"  {r.name}: {statistics.median(vals):8,.0f} samples/s "
                     f"(min {min(vals):,.0f}, max {max(vals):,.0f})")
        if len(runners) == 2:
            ratio = statistics.median(rates[("cnnviz", job)]) / statistics.median(rates[("pytorch", job)])
            line += f"  ratio cnnviz/pytorch: {ratio:.2f}x"
        print(line)


if __name__ == "__main__":
    main()
