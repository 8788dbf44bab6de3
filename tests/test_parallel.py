"""Data-parallel training (cnnviz/engine/parallel.py): the same loss curve
as one process, workers that never outlive their parent, and the trainer's
divergence handling, pause/step/stop, probe and checkpoints unchanged."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from cnnviz.data import load_mnist
from cnnviz.engine import lenet5, load
from cnnviz.engine.parallel import LocalStep, ParallelStep, resolve_workers, usable_cores
from cnnviz.engine.trainer import Trainer, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 60      # s for a spawned worker to import numpy and the engine (a busy machine)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(), load_mnist(split="test")


def make(mnist, n_train=640, workers=2, **kw):
    tr, te = mnist
    cfg = dict(epochs=2, batch_size=32, lr=0.02, snapshot_every=5, warmup_steps=0,
               workers=workers)
    cfg.update(kw)
    return Trainer(lenet5(seed=0), (tr.images[:n_train], tr.labels[:n_train]),
                   (te.images[:300], te.labels[:300]), TrainConfig(**cfg))


def ready(trainer):
    """Start the workers and wait for them, so every batch of the run is split
    (a run alone starts them in the background and computes here meanwhile)."""
    assert trainer.step_engine.wait_ready(READY_TIMEOUT), trainer.step_engine.failure
    return trainer


def _wait(cond, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached")


_LOSS_CURVES = """
import json, sys
sys.path.insert(0, {tests!r})
import numpy as np
from threadpoolctl import threadpool_limits
from test_parallel import make, ready, mnist_sets
from cnnviz.engine.parallel import LocalStep, ParallelStep
if __name__ == "__main__":
    data = mnist_sets()
    def curve(workers):
        t = make(data, n_train=6400, workers=workers, epochs=1, batch_size=64, lr=0.05,
                 warmup_steps=100, snapshot_every=1000)
        t.test = None
        if workers > 1:
            ready(t)
        with threadpool_limits(limits=1, user_api="blas"):   # speed only: 2 threads crawl
            list(t.run())                                     # on a busy 2-core machine
        return t
    one, two = curve(1), curve(2)
    assert isinstance(one.step_engine, LocalStep) and isinstance(two.step_engine, ParallelStep)
    w = [np.concatenate([p.value.ravel() for p in t.model.parameters()]) for t in (one, two)]
    print(json.dumps({{"parallel_batches": two.step_engine.parallel_batches, "steps": two.step,
                       "failure": two.step_engine.failure,
                       "loss": [one.history.loss.tolist(), two.history.loss.tolist()],
                       "accuracy": [one.history.accuracy.tolist(), two.history.accuracy.tolist()],
                       "weights": [w[0].tolist(), w[1].tolist()]}}))
"""


def mnist_sets():
    return load_mnist(), load_mnist(split="test")


def test_two_workers_follow_the_single_process_loss_curve():
    """100 steps of the default recipe (SGD momentum 0.9, wd 5e-4, lr 0.05,
    warm-up), one process against two, in a fresh interpreter: not
    bit-identical, since each half-batch's gradient is summed by its own GEMM
    and the halves are added after (relative rounding ~1e-7 per gradient),
    measured at 1.6e-6 relative at most over the 100 losses. In a process
    where GUI tests had trained on two processes before, the two-process
    curve was seen to jump by 2.9e-5 at step 14 and part by up to 29% by
    step 100 (the one-process curve moved by 1e-6): a discrete event, most
    likely a near-tie of max pooling flipping, amplified by momentum; not
    explained further yet. The comparison needs both runs to start from the
    same state, which a fresh interpreter gives."""
    import json
    out = subprocess.run([sys.executable, "-c", _LOSS_CURVES.format(tests=str(ROOT / "tests"))],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["parallel_batches"] == 100 == r["steps"]            # every batch was split
    assert not r["failure"]
    (l1, l2), (a1, a2), (w1, w2) = r["loss"], r["accuracy"], r["weights"]
    np.testing.assert_allclose(l2, l1, rtol=1e-5)
    np.testing.assert_allclose(a2, a1, atol=1 / 64 + 1e-9)
    np.testing.assert_allclose(w2, w1, rtol=1e-3, atol=1e-5)


_KILLED_PARENT = """
import sys
from cnnviz.data import load_mnist
from cnnviz.engine import lenet5
from cnnviz.engine.trainer import Trainer, TrainConfig
if __name__ == "__main__":
    tr = load_mnist()
    t = Trainer(lenet5(seed=0), (tr.images[:640], tr.labels[:640]), None,
                TrainConfig(epochs=100000, batch_size=32, workers=None))
    assert t.step_engine.wait_ready(%d), t.step_engine.failure
    print(*t.step_engine.worker_pids, flush=True)
    for snap in t.run():
        if snap.step >= 20 and not getattr(sys, "said", False):
            sys.said = True
            print("training", flush=True)
""" % READY_TIMEOUT


def _gone(pid) -> bool:
    """Exited: no such process, or a zombie nobody reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.skipif(usable_cores() < 2, reason="one core: training runs in one process")
def test_workers_exit_when_the_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(_KILLED_PARENT)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env=env, cwd=tmp_path)
    pids = []
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == usable_cores() - 1          # one process per core
        assert parent.stdout.readline().strip() == "training"     # the workers are busy
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        end = time.monotonic() + 5
        while time.monotonic() < end and not all(_gone(p) for p in pids):
            time.sleep(0.05)
        assert [p for p in pids if not _gone(p)] == [], "workers outlived their parent"
    finally:
        parent.kill()
        for p in pids:
            if not _gone(p):
                os.kill(p, signal.SIGKILL)


def test_divergence_with_workers_restores_finite_weights_and_stops(mnist):
    t = ready(make(mnist, lr=1e6, lr_schedule="none"))
    snaps = list(t.run())
    assert [s.kind for s in snaps][-2:] == ["diverged", "stopped"]
    assert t.step_engine.parallel_batches >= 1
    assert all(np.isfinite(p.value).all() for p in t.model.parameters())
    assert np.isfinite(t.history.loss).all()
    assert not t.step_engine.running          # the run's end stopped the workers


def test_pause_step_stop_probe_and_checkpoint_with_workers(mnist, tmp_path):
    seen = []

    def probe(trainer):      # runs here, on this process's (the updated) weights
        seen.append(float(trainer.model.parameters()[0].value.sum()))
        return {"w": seen[-1]}

    t = ready(make(mnist, epochs=50, delay=0.005, snapshot_every=1))
    t.probe = probe
    snaps = []

    def drive():
        for s in t.run():
            snaps.append(s)

    th = threading.Thread(target=drive)
    th.start()
    try:
        _wait(lambda: t.step >= 3)
        t.request_pause()
        _wait(lambda: t.paused and snaps[-1].kind == "paused")
        step0 = t.step
        time.sleep(0.2)
        assert t.step == step0
        t.request_step()
        _wait(lambda: t.step == step0 + 1)
        _wait(lambda: snaps[-1].kind == "batch")
        t.save_checkpoint(tmp_path / "ck.npz")
        t.request_stop()
    finally:
        th.join(30)
    assert snaps[-1].kind == "stopped" and t.step == step0 + 1
    assert t.step_engine.parallel_batches == t.step
    assert len(set(seen)) > 2 and snaps[-2].extra["w"] == seen[-2]   # the weights moved
    restored = load(tmp_path / "ck.npz")
    for a, b in zip(restored.parameters(), t.model.parameters()):
        np.testing.assert_array_equal(a.value, b.value)
    resumed = Trainer.from_checkpoint(tmp_path / "ck.npz", (t.train_images, t.train_labels),
                                      None, epochs=50)
    assert resumed.config.workers == 2 and resumed.step == t.step


def test_a_dead_worker_leaves_training_to_this_process(mnist):
    t = ready(make(mnist, epochs=3, snapshot_every=1))
    run = t.run()
    next(run)
    os.kill(t.step_engine.worker_pids[0], signal.SIGKILL)
    snaps = list(run)
    assert snaps[-1].kind == "finished" and t.step == 3 * 20
    assert "training worker 1 exited with code -9" in t.step_engine.failure
    assert "goes on in one process" in t.step_engine.failure
    assert 1 <= t.step_engine.parallel_batches < t.step


def test_starting_workers_does_not_hold_up_the_first_batch(mnist):
    t = make(mnist, epochs=1, snapshot_every=1)
    t0 = time.perf_counter()
    run = t.run()
    first = next(run)                  # starts the workers, runs the batch here
    took = time.perf_counter() - t0
    run.close()
    assert first.step == 1 and took < 1.0, f"first batch after {took:.2f} s"


def test_worker_count():
    assert resolve_workers(None) == usable_cores() >= 1
    assert resolve_workers(3) == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            resolve_workers(bad)
    with pytest.raises(ValueError, match="^workers must be None"):
        TrainConfig(workers=0).validate()
    tr = load_mnist()
    one = Trainer(lenet5(seed=0), (tr.images[:64], tr.labels[:64]), None, TrainConfig(workers=1))
    assert isinstance(one.step_engine, LocalStep)      # one process: no workers at all


def test_never_more_processes_than_cores_or_rows(mnist):
    from cnnviz.engine.parallel import make_step_engine
    from cnnviz.engine import SoftmaxCrossEntropy

    engine = make_step_engine(lenet5(), SoftmaxCrossEntropy(), 1000, sample_shape=(1, 28, 28),
                              max_batch=64)
    try:
        assert engine.workers == usable_cores()
    finally:
        engine.stop_workers()
    one_row = make_step_engine(lenet5(), SoftmaxCrossEntropy(), 1000, sample_shape=(1, 28, 28),
                               max_batch=1)
    assert isinstance(one_row, LocalStep)


def test_inference_split_over_the_workers_equals_one_process(mnist):
    from cnnviz.engine import SoftmaxCrossEntropy
    from cnnviz.engine.parallel import PREDICT_ROWS

    _, te = mnist
    model = lenet5(seed=3)
    engine = ParallelStep(model, SoftmaxCrossEntropy(), 2, sample_shape=(1, 28, 28), max_batch=64)
    x = (te.images[:2 * PREDICT_ROWS + 345] / np.float32(255))[:, None]
    try:
        assert engine.predict(x[:5]).shape == (5, 10)      # not started: this process alone
        assert engine.parallel_predictions == 0 and not engine.running
        assert engine.wait_ready(READY_TIMEOUT), engine.failure
        for n, split in ((1, 0), (7, 1), (PREDICT_ROWS, 1), (len(x), 3)):
            before = engine.parallel_predictions
            got = engine.predict(x[:n])
            # not bit-identical: the halves are other GEMM sizes than the whole
            np.testing.assert_allclose(got, model.predict(x[:n]), rtol=1e-5, atol=1e-5)
            assert engine.parallel_predictions - before == split, n
        # the workers read the current weights
        for p in model.parameters():
            p.value[...] *= 0.5
        np.testing.assert_allclose(engine.predict(x[:50]), model.predict(x[:50]),
                                   rtol=1e-5, atol=1e-5)
        # a dead worker: the rows are computed here, and right
        os.kill(engine.worker_pids[0], signal.SIGKILL)
        np.testing.assert_allclose(engine.predict(x[:300]), model.predict(x[:300]),
                                   rtol=1e-5, atol=1e-5)
        assert "exited with code -9" in engine.failure and not engine.running
    finally:
        engine.close()


def test_the_trainers_evaluation_uses_the_workers(mnist):
    from cnnviz.engine.trainer import evaluate_model

    _, te = mnist
    t = ready(make(mnist, epochs=2))
    list(t.run())
    assert t.step_engine.parallel_predictions >= 2        # one test set of 300 per epoch
    # the workers ran the averaged weights, swapped in for the evaluation; a
    # finished run's model holds them (the two would differ: the runs' own
    # weights give another loss)
    assert t.average is not None
    loss, acc, preds, _ = evaluate_model(t.model, te.images[:300], te.labels[:300])
    assert t.test_loss == pytest.approx(loss, rel=1e-5)
    assert abs(t.test_accuracy - acc) <= 1 / 300


def test_split_inference_of_a_batchnorm_network_uses_this_processs_statistics(mnist):
    # The workers' own running statistics come from their shares of the
    # training batches and are never read: a split evaluation (the epoch
    # end's) must equal the saved model's evaluation, which uses these.
    from cnnviz.engine import SoftmaxCrossEntropy
    from cnnviz.engine.architecture import bundled, read

    _, te = mnist
    model = read(bundled()["colour-cnn"]).build(seed=0)
    engine = ParallelStep(model, SoftmaxCrossEntropy(), 2, sample_shape=(3, 28, 28),
                          max_batch=64)
    rng = np.random.default_rng(0)
    x = rng.random((400, 3, 28, 28), np.float32)
    labels = rng.integers(0, 10, 64)
    try:
        assert engine.wait_ready(READY_TIMEOUT), engine.failure
        model.train()
        for i in range(5):              # each participant's statistics move its own way
            engine.gradients(x[i * 64:(i + 1) * 64], labels)
        model.eval()
        stats = [b.value for b in model.buffers()]
        assert stats and not np.allclose(stats[0], 0)
        before = engine.parallel_predictions
        got = engine.predict(x)
        assert engine.parallel_predictions > before
        np.testing.assert_allclose(got, model.predict(x), rtol=1e-5, atol=1e-5)
    finally:
        engine.close()


def _signal_bits(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize("where", ["main thread", "another thread"])
def test_workers_ignore_ctrl_c_and_the_starting_thread_loses_none(mnist, where):
    """SIGINT is blocked (not ignored) while the workers are spawned: they
    inherit the block, ignore SIGINT and unblock it; the starting thread's
    mask is restored, and a SIGINT that came meanwhile is delivered then."""
    trainer = make(mnist)
    engine = trainer.step_engine
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(time.monotonic()))
    try:
        if where == "main thread":
            # a Ctrl-C pending when the spawn starts, as one that comes in its
            # ms: ignoring SIGINT there (as before) discarded it
            # (sent to this thread: one sent to the process may be taken by
            # any thread that does not block it, and is then not lost either)
            # (multiprocessing's resource tracker, launched on first use,
            # unblocks SIGINT: launched before this test's own block)
            from multiprocessing import resource_tracker
            resource_tracker.ensure_running()
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            engine.start_workers()
            assert not caught
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
            _wait(lambda: caught)
        else:
            t = threading.Thread(target=engine.start_workers)
            t.start()
            t.join()
        assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
        assert engine.wait_ready(READY_TIMEOUT), engine.failure
        sigint = 1 << (signal.SIGINT - 1)
        for pid in engine.worker_pids:
            assert _signal_bits(pid, "SigIgn") & sigint
            assert not _signal_bits(pid, "SigBlk") & sigint
    finally:
        signal.signal(signal.SIGINT, previous)
        engine.stop_workers()
