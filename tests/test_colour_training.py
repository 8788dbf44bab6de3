"""Colour all the way through the engine: the trainer, the random shifts,
the evaluation and the worker processes' shared batch take (N, 3, H, W)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnviz.data.datasets import DatasetSpec, load_dataset
from cnnviz.engine import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential
from cnnviz.engine.augment import random_shift
from cnnviz.engine.parallel import usable_cores
from cnnviz.engine.trainer import Trainer, TrainConfig, evaluate_model

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 60


def colour_net(seed=0):
    """No BatchNorm: with two processes each would normalise its own half."""
    rng = np.random.default_rng(seed)
    return Sequential(Conv2D(3, 6, 5, padding=2, seed=rng), ReLU(), MaxPool2D(2),
                      Conv2D(6, 12, 5, seed=rng), ReLU(), MaxPool2D(2), Flatten(),
                      Linear(300, 10, seed=rng, init="fan_in"))


def test_random_shift_moves_every_plane_of_an_image_together():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 256, (50, 3, 9, 9)).astype(np.uint8)
    out = random_shift(x, 2, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.uint8
    for a, b in zip(x, out):
        # find the shift from plane 0, then the other planes moved alike
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(np.roll(a[0], (dy, dx), (0, 1))[max(dy, 0):9 + min(dy, 0),
                                   max(dx, 0):9 + min(dx, 0)],
                                   b[0][max(dy, 0):9 + min(dy, 0), max(dx, 0):9 + min(dx, 0)])]
        assert found
        dy, dx = found[0]
        for c in (1, 2):
            np.testing.assert_array_equal(
                np.roll(a[c], (dy, dx), (0, 1))[max(dy, 0):9 + min(dy, 0), max(dx, 0):9 + min(dx, 0)],
                b[c][max(dy, 0):9 + min(dy, 0), max(dx, 0):9 + min(dx, 0)])


def test_one_process_trains_and_evaluates_colour_images():
    train, test = load_dataset(DatasetSpec("colored-mnist"))
    t = Trainer(colour_net(), (train.images[:640], train.labels[:640]),
                (test.images[:200], test.labels[:200]),
                TrainConfig(epochs=1, batch_size=32, lr=0.05, shift=2, workers=1))
    assert t.train_images.shape == (640, 3, 28, 28)
    list(t.run())
    assert t.step == 20 and np.isfinite(t.history.loss).all()
    loss, acc, preds, probs = evaluate_model(t.model, test.images[:200], test.labels[:200])
    assert t.test_loss == pytest.approx(loss, rel=1e-6) and probs.shape == (200, 10)
    np.testing.assert_allclose(t.predict_proba(test.images[:200]), probs, rtol=1e-5, atol=1e-6)
    # float input (N, 3, H, W) in [0, 1] is the same as its uint8
    loss_f, _, _, _ = evaluate_model(t.model, test.as_float(0, 200), test.labels[:200])
    assert loss_f == pytest.approx(loss, rel=1e-5)


_CURVES = """
import json, sys
sys.path.insert(0, {tests!r})
import numpy as np
from threadpoolctl import threadpool_limits
from test_colour_training import colour_net
from cnnviz.data.datasets import DatasetSpec, load_dataset
from cnnviz.engine.parallel import LocalStep, ParallelStep
from cnnviz.engine.trainer import Trainer, TrainConfig
if __name__ == "__main__":
    train, test = load_dataset(DatasetSpec("colored-mnist"))
    def run(workers):
        t = Trainer(colour_net(seed=4), (train.images[:1920], train.labels[:1920]),
                    (test.images[:300], test.labels[:300]),
                    TrainConfig(epochs=1, batch_size=64, lr=0.05, shift=1, warmup_steps=5,
                                workers=workers))
        if workers > 1:
            assert t.step_engine.wait_ready({ready}), t.step_engine.failure
        with threadpool_limits(limits=1, user_api="blas"):
            list(t.run())
        return t
    one, two = run(1), run(2)
    assert isinstance(one.step_engine, LocalStep) and isinstance(two.step_engine, ParallelStep)
    w = [np.concatenate([p.value.ravel() for p in t.model.parameters()]) for t in (one, two)]
    print(json.dumps({{"parallel_batches": two.step_engine.parallel_batches, "steps": two.step,
                       "parallel_predictions": two.step_engine.parallel_predictions,
                       "failure": two.step_engine.failure,
                       "loss": [one.history.loss.tolist(), two.history.loss.tolist()],
                       "test": [one.test_loss, two.test_loss],
                       "weights": [w[0].tolist(), w[1].tolist()]}}))
"""


@pytest.mark.skipif(usable_cores() < 2, reason="one core: training runs in one process")
def test_two_workers_train_colour_as_one_process():
    """30 steps on 3x28x28 coloured MNIST with shifts: the two-process run
    follows the one-process run within float32 rounding (each half-batch's
    gradient is its own GEMM, so not bit-identical), in a fresh interpreter
    as tests/test_parallel.py does."""
    out = subprocess.run([sys.executable, "-c", _CURVES.format(tests=str(ROOT / "tests"),
                                                               ready=READY_TIMEOUT)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["parallel_batches"] == 30 == r["steps"] and not r["failure"]
    assert r["parallel_predictions"] >= 1
    (l1, l2), (w1, w2) = r["loss"], r["weights"]
    np.testing.assert_allclose(l2, l1, rtol=1e-5)
    np.testing.assert_allclose(w2, w1, rtol=1e-3, atol=1e-5)
    assert r["test"][1] == pytest.approx(r["test"][0], rel=1e-5)
