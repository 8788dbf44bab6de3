"""Short trainer runs on a slice of the bundled MNIST, and damaged copies of
their checkpoints: shared by the trainer, averaging and checkpoint tests."""

import json

import numpy as np

from cnnviz.data import load_mnist
from cnnviz.engine import lenet5
from cnnviz.engine.trainer import Trainer, TrainConfig


def small_mnist(n_train=640, n_test=300):
    """((train images, labels), (test images, labels)) from the bundled MNIST."""
    tr, te = load_mnist(), load_mnist(split="test")
    return (tr.images[:n_train], tr.labels[:n_train]), (te.images[:n_test], te.labels[:n_test])


def make_trainer(data, model=None, probe=None, **kw):
    """A LeNet-5 (seed 0) trainer on ``data``: 2 epochs of batches of 32 at
    lr 0.02, no warm-up, a snapshot every 5 batches, unless ``kw`` says."""
    cfg = dict(epochs=2, batch_size=32, lr=0.02, snapshot_every=5, warmup_steps=0)
    cfg.update(kw)
    return Trainer(model or lenet5(seed=0), data[0], data[1], TrainConfig(**cfg), probe)


def weights(model):
    """Every parameter of ``model``, flat, in order."""
    return np.concatenate([p.value.ravel() for p in model.parameters()])


def rewrite(src, dst, trainer=None, arrays=None):
    """A copy of checkpoint ``src`` with its trainer JSON and arrays changed
    by the given functions (each edits in place)."""
    with np.load(src) as z:
        members = {k: z[k] for k in z.files}
    meta = json.loads(str(members.pop("trainer")))
    if trainer:
        trainer(meta)
    if arrays:
        arrays(members)
    np.savez(dst, trainer=np.array(json.dumps(meta)), **members)
    return dst
