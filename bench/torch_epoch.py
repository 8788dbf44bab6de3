"""A plain PyTorch script that trains LeNet-5 on MNIST: the whole-process
reference for `cnnviz train` (bench/epoch.py times both, imports included).

    python bench/torch_epoch.py [--epochs 1] [--batch-size 64] [--threads N]

What a PyTorch user would write: import torch, read the same bundled MNIST
files (gzip IDX, with NumPy; torchvision is not installed), train with SGD
(momentum 0.9, weight decay 5e-4, lr 0.05 with 100 steps of warm-up then
cosine: cnnviz's defaults), evaluate on the test set after each epoch and
print the line. PyTorch is never a dependency of cnnviz; this script only
runs where it is installed. Every core by default, as PyTorch does.
"""

import argparse
import gzip
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

MNIST = Path(__file__).resolve().parents[1] / "cnnviz" / "resources" / "mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--data-dir", type=Path, default=MNIST)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    d = args.data_dir
    x_train = torch.from_numpy(read_idx(d / "train-images-idx3-ubyte.gz").copy())
    y_train = torch.from_numpy(read_idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64))
    x_test = torch.from_numpy(read_idx(d / "t10k-images-idx3-ubyte.gz").copy())
    y_test = torch.from_numpy(read_idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64))

    def prep(images):
        return ((images.float() / 255 - 0.1307) / 0.3081).unsqueeze(1)

    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    total, warmup = args.epochs * steps_per_epoch, min(100, args.epochs * steps_per_epoch // 5)

    def lr_at(step):
        if step < warmup:
            return 0.05 * (step + 1) / warmup
        return 0.05 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    loss_fn = nn.CrossEntropyLoss()
    step, t0 = 0, time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x_train))
        for i in range(0, len(x_train), args.batch_size):
            idx = perm[i:i + args.batch_size]
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            opt.zero_grad(set_to_none=True)
            loss_fn(model(prep(x_train[idx])), y_train[idx]).backward()
            opt.step()
            step += 1
        model.eval()
        correct = 0
        with torch.inference_mode():
            for i in range(0, len(x_test), 1000):
                correct += int((model(prep(x_test[i:i + 1000])).argmax(1) == y_test[i:i + 1000]).sum())
        print(f"epoch {epoch + 1}/{args.epochs}: test accuracy {100 * correct / len(x_test):.2f}% "
              f"[{time.perf_counter() - t0:.1f} s]", flush=True)


if __name__ == "__main__":
    main()
