"""The trainer: snapshots, requests from another thread, divergence,
reproducibility, checkpoints and history; the random-shift augmentation."""

import csv
import threading
import time

import numpy as np
import pytest

from cnnviz.data import load_mnist
from cnnviz.engine import lenet5, load
from cnnviz.engine.augment import random_shift
from cnnviz.engine.trainer import (CheckpointError, History, Trainer, TrainConfig,
                                   load_checkpoint)

from trainer_runs import make_trainer as make, small_mnist, weights


@pytest.fixture(scope="module")
def data():
    return small_mnist()


def test_run_yields_batches_epochs_and_finished(data):
    t = make(data, warmup_steps=8, lr=0.01)
    snaps = list(t.run())
    kinds = [s.kind for s in snaps]
    assert kinds.count("epoch") == 2 and kinds[-1] == "finished"
    assert kinds.count("batch") == 2 * (20 // 5 - 1)       # the epoch's last one is the epoch snapshot
    first, end = snaps[0], snaps[-1]
    assert (first.epoch, first.batch, first.step, first.samples_seen) == (1, 5, 5, 160)
    assert (end.epoch, end.batch, end.step, end.samples_seen) == (2, 20, 40, 1280)
    assert len(first.batches["loss"]) == 5 and np.isfinite(first.loss)
    ep = [s for s in snaps if s.kind == "epoch"]
    assert ep[1].test_accuracy > 0.3 and ep[1].test_probs.shape == (300, 10)
    assert (ep[1].test_predictions == ep[1].test_probs.argmax(1)).all()
    assert t.history.n_batches == 40 and t.history.n_epochs == 2
    np.testing.assert_array_equal(t.history.epochs()["test_accuracy"],
                                  [s.test_accuracy for s in ep])
    # the lr warms up, then follows the cosine schedule to ~0
    assert t.history.lr[7] == pytest.approx(0.01 * 0.5 * (1 + np.cos(np.pi * 7 / 40)))
    assert t.history.lr[-1] < 1e-4
    assert t.history.loss[-5:].mean() < t.history.loss[:5].mean()


def test_warmup_then_cosine(data):
    t = make(data, epochs=2, warmup_steps=4, lr_schedule="cosine")
    cos = [0.5 * (1 + np.cos(np.pi * s / 40)) for s in range(5)]
    np.testing.assert_allclose([t._lr_factor(s) for s in range(5)],
                               [0.25 * cos[0], 0.5 * cos[1], 0.75 * cos[2], cos[3], cos[4]])
    list(t.run())
    lr = t.history.lr
    assert lr[0] == pytest.approx(0.005) and lr[2] < lr[3] and lr[4] > lr[5] > lr[-1]
    big = make(data, epochs=1, warmup_steps=1000)        # capped at a fifth of the run
    list(big.run())
    assert big.history.lr[4] == pytest.approx(0.02 * 0.5 * (1 + np.cos(np.pi * 4 / 20)))


def test_probe_result_is_in_every_snapshot(data):
    calls = []

    def probe(trainer):
        calls.append(trainer.step)
        return {"conv1": trainer.model["conv1"].params["weight"].copy()}

    snaps = list(make(data, probe=probe, epochs=1).run())
    assert len(calls) == len(snaps) and all("conv1" in s.extra for s in snaps)
    assert not np.array_equal(snaps[0].extra["conv1"], snaps[-1].extra["conv1"])


def test_seeded_runs_are_bit_reproducible(data):
    a = make(data, shift=2, seed=3)
    b = make(data, shift=2, seed=3)
    la = [s.loss for s in a.run()]
    lb = [s.loss for s in b.run()]
    assert la == lb
    np.testing.assert_array_equal(a.history.loss, b.history.loss)
    np.testing.assert_array_equal(weights(a.model), weights(b.model))
    c = make(data, shift=2, seed=4)
    list(c.run())
    assert not np.array_equal(a.history.loss, c.history.loss)


def test_limit_uses_the_first_samples(data):
    t = make(data, limit=100, epochs=1)
    list(t.run())
    assert t.n_train == 100 and t.samples_seen == 100 and t.batches_per_epoch == 4


def _drive(trainer, actions):
    """Run trainer.run() in a thread; `actions(trainer, snaps)` from this one."""
    snaps, errors = [], []

    def worker():
        try:
            for s in trainer.run():
                snaps.append(s)
        except BaseException as e:       # pragma: no cover - reported below
            errors.append(e)

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    try:
        actions(trainer, snaps)
    finally:
        trainer.request_stop()
        th.join(10)
    assert not th.is_alive() and not errors, errors
    return snaps


def _wait(cond, timeout=10):
    ev = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if cond():
            return
        ev.wait(0.01)
    raise AssertionError("condition not reached")


def test_pause_step_resume_stop_from_another_thread(data):
    def actions(t, snaps):
        t.request_pause()
        _wait(lambda: t.paused and snaps and snaps[-1].kind == "paused")
        step0, n = t.step, len(snaps)
        ev = threading.Event()
        ev.wait(0.2)
        assert t.step == step0 and len(snaps) == n          # paused: nothing moves
        t.request_step()
        _wait(lambda: len(snaps) == n + 1)
        assert snaps[-1].kind == "batch" and snaps[-1].paused
        assert t.step == step0 + 1 and t.paused
        t.request_step()
        t.request_step()
        _wait(lambda: t.step == step0 + 3)
        ev.wait(0.1)
        assert t.step == step0 + 3 and t.paused
        t.request_resume()
        _wait(lambda: t.step > step0 + 6)
        assert not t.paused
        t.request_stop()
        _wait(lambda: snaps[-1].kind == "stopped")

    t = make(data, epochs=50, delay=0.01)
    snaps = _drive(t, actions)
    assert snaps[-1].kind == "stopped" and not t.running
    assert t.step < 50 * 20


def test_stop_wakes_a_paused_run(data):
    def actions(t, snaps):
        t.request_pause()
        _wait(lambda: t.paused)
        t.request_stop()
        _wait(lambda: not t.running)

    t = make(data, epochs=50)
    t.request_pause()          # asked before run: it starts paused
    snaps = _drive(t, actions)
    assert [s.kind for s in snaps] == ["paused", "stopped"] and t.step == 0


def test_set_lr_and_momentum_take_effect_at_the_next_batch(data):
    t = make(data, epochs=1, lr_schedule="none", snapshot_every=1)
    run = t.run()
    next(run)
    next(run)
    t.set_lr(0.001)
    t.set_momentum(0.5)
    s = next(run)
    assert t.history.lr[-1] == pytest.approx(0.001) and s.lr == pytest.approx(0.001)
    assert t.optimizer.momentum == 0.5 and s.momentum == 0.5
    np.testing.assert_allclose(t.history.lr[:2], 0.02)
    run.close()
    with pytest.raises(ValueError):
        t.set_lr(-1)


def test_set_lr_under_a_schedule_is_exact_then_decays(data):
    t = make(data, epochs=1, snapshot_every=1)
    run = t.run()
    next(run)
    t.set_lr(0.01)
    next(run)
    next(run)
    assert t.history.lr[1] == pytest.approx(0.01)
    assert t.history.lr[2] < 0.01
    run.close()


def test_huge_lr_diverges_restores_finite_weights_and_stops(data):
    t = make(data, lr=1e6, lr_schedule="none")
    snaps = list(t.run())
    kinds = [s.kind for s in snaps]
    assert kinds[-2:] == ["diverged", "stopped"], kinds
    d = snaps[-2]
    assert "learning rate" in d.message and "too high" in d.message
    assert f"batch {d.batch + 1}" in d.message and d.message in snaps[-1].message
    w = weights(t.model)
    assert np.isfinite(w).all()
    # the restored weights are the last ones that gave a finite loss
    x = data[0][0][:32][:, None] / np.float32(255)
    assert np.isfinite(t.loss_fn(t.model.forward(x), data[0][1][:32]))
    assert np.isfinite(t.history.loss).all()


def test_divergence_pauses_when_asked_and_a_lower_lr_recovers(data):
    def actions(t, snaps):
        _wait(lambda: t.paused)
        assert [s.kind for s in snaps][-2:] == ["diverged", "paused"]
        assert snaps[-2].paused
        t.set_lr(0.01)
        step0 = t.step
        t.request_resume()
        _wait(lambda: t.step > step0 + 10, timeout=30)

    t = make(data, epochs=50, lr=1e6, lr_schedule="none", pause_on_divergence=True)
    _drive(t, actions)
    assert np.isfinite(t.history.loss[-10:]).all() and t.history.loss[-1] < 10


def test_checkpoint_resume_continues_exactly(data, tmp_path):
    full = make(data, epochs=3, shift=1, optimizer="adam", lr=2e-3)
    full_snaps = [s for s in full.run() if s.kind in ("batch", "epoch")]

    part = make(data, epochs=3, shift=1, optimizer="adam", lr=2e-3)
    run = part.run()
    for s in run:
        if s.kind == "batch" and s.epoch == 2 and s.batch == 10:   # mid-epoch
            break
    run.close()
    path = tmp_path / "ck.npz"
    part.save_checkpoint(path)
    assert not list(tmp_path.glob(".*tmp"))                     # atomic: no leftovers

    resumed = Trainer.from_checkpoint(path, data[0], data[1], snapshot_every=5)
    assert resumed.step == 30 and resumed.epoch == 1 and resumed.batch == 10
    rest = [s for s in resumed.run() if s.kind in ("batch", "epoch")]
    np.testing.assert_array_equal(resumed.history.loss, full.history.loss)
    np.testing.assert_array_equal(resumed.history.lr, full.history.lr)
    np.testing.assert_array_equal(weights(resumed.model), weights(full.model))
    for k, v in full.history.epochs().items():
        if k != "elapsed":
            np.testing.assert_array_equal(resumed.history.epochs()[k], v)
    assert [s.loss for s in rest] == [s.loss for s in full_snaps if s.step > 30]
    # a checkpoint is also a model file
    np.testing.assert_array_equal(weights(load(path)), weights(part.model))


def test_load_checkpoint_errors_name_the_file(tmp_path, data):
    from cnnviz.engine import save
    model_only = tmp_path / "m.npz"
    save(lenet5(), model_only)
    with pytest.raises(CheckpointError, match="m.npz.*not a training checkpoint"):
        load_checkpoint(model_only)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        load_checkpoint(junk)


def test_history_csv_and_dict_round_trip(data, tmp_path):
    t = make(data, epochs=2)
    list(t.run())
    path = tmp_path / "h.csv"
    t.history.to_csv(path)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 40 and rows[0]["step"] == "1"
    assert float(rows[7]["loss"]) == t.history.loss[7]
    ends = [r for r in rows if r["epoch"]]
    assert [r["step"] for r in ends] == ["20", "40"]
    assert float(ends[1]["epoch_test_accuracy"]) == t.test_accuracy
    h = History.from_dict(t.history.to_dict())
    np.testing.assert_array_equal(h.loss, t.history.loss)
    assert h.epochs()["test_loss"].tolist() == t.history.epochs()["test_loss"].tolist()
    h.append_batch(41, 1312, 0.1, 1.0, 0.0)
    assert h.n_batches == 41 and t.history.n_batches == 40


def test_history_grows(data):
    h = History(capacity=2)
    for i in range(100):
        h.append_batch(i + 1, 10 * (i + 1), 1.0 / (i + 1), 0.5, 0.1)
    assert h.n_batches == 100 and h.step[-1] == 100 and h.loss[9] == 0.1
    assert len(h.batches(95)["step"]) == 5


def test_evaluate_and_predict_proba(data):
    t = make(data, model=lenet5(seed=0))
    images, labels = data[1]
    loss, acc, preds = t.evaluate(images, labels, batch=128)
    probs = t.predict_proba(images, batch=77)
    assert probs.shape == (300, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(preds, probs.argmax(1))
    assert acc == np.mean(preds == labels)
    expect = -np.mean(np.log(probs[np.arange(300), labels].astype(np.float64)))
    assert loss == pytest.approx(expect, rel=1e-4)


def test_bad_config_and_data_are_clear():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop").validate()
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=0).validate()
    with pytest.raises(ValueError, match="labels"):
        Trainer(lenet5(), (np.zeros((4, 28, 28), np.uint8), np.zeros(3, np.uint8)))


def test_random_shift_moves_each_image_within_bounds():
    rng = np.random.default_rng(0)
    img = np.zeros((200, 9, 9), np.uint8)
    img[:, 4, 4] = 255
    out = random_shift(img, 2, rng)
    assert out.shape == img.shape and out.dtype == np.uint8
    r, c = np.nonzero(out.reshape(200, -1) == 255)
    ys, xs = np.divmod(c, 9)
    assert (np.bincount(r) == 1).all()                  # each image keeps its pixel
    assert set(ys - 4) == set(range(-2, 3)) and set(xs - 4) == set(range(-2, 3))
    # content moves as a whole, zeros come in at the border
    base = np.arange(1, 26, dtype=np.float32).reshape(1, 1, 5, 5).repeat(30, 0)
    sh = random_shift(base, 1, np.random.default_rng(1))
    for i in range(30):
        nz = sh[i, 0][sh[i, 0] > 0]
        assert len(nz) in (16, 20, 25) and np.isin(nz, base[0, 0]).all()
    assert random_shift(img, 0, rng) is img


# --- the learning rate the user types (issue 11, point 1) -----------------------------
@pytest.mark.parametrize("schedule", ["cosine", "step", "none"])
def test_set_lr_during_warmup_is_the_next_batch_rate_then_only_decays(data, schedule):
    # 2 epochs of 20 batches, warm-up capped at 40 // 5 = 8 batches; the rate
    # is typed at step 3, in the middle of the warm-up (factor 4/8 * decay).
    t = make(data, epochs=2, lr=0.5, warmup_steps=8, lr_schedule=schedule, snapshot_every=1)
    run = t.run()
    for _ in range(3):
        next(run)
    assert t.step == 3 and t.lr < 0.5 * 0.6               # still warming up
    t.set_lr(0.05)
    assert t.lr == pytest.approx(0.05)                    # the snapshot's "next batch" rate
    for _ in run:
        pass
    lrs = t.history.lr
    assert lrs[3] == pytest.approx(0.05, rel=1e-12)       # exactly the typed rate
    assert (lrs[3:] <= 0.05 * (1 + 1e-12)).all()           # never above it afterwards
    assert (np.diff(lrs[3:]) <= 1e-15).all()               # only decays
    end = {"cosine": 0.05 * 1e-2, "step": 0.05 * 0.01 * 1.0001, "none": 0.05 * (1 + 1e-12)}
    assert lrs[-1] <= end[schedule]                       # down to the schedule's end
    if schedule == "none":
        np.testing.assert_allclose(lrs[3:], 0.05)


def test_set_lr_while_not_running_is_applied_at_once_and_checkpointed(data, tmp_path):
    t = make(data, epochs=2, lr=0.5, warmup_steps=8, snapshot_every=1)
    run = t.run()
    for _ in range(2):
        next(run)
    run.close()                                           # stopped at step 2, in warm-up
    t.set_lr(0.03)
    assert t.lr == pytest.approx(0.03)
    t.save_checkpoint(tmp_path / "c.npz")
    again = Trainer.from_checkpoint(tmp_path / "c.npz", data[0], data[1])
    assert again.lr == pytest.approx(0.03)                # the warm-up ended where it was typed
    list(again.run())
    assert again.history.lr[2] == pytest.approx(0.03) and again.history.lr.max() <= 0.5


def test_set_epochs_replans_keeping_the_next_rate_and_ending_at_the_new_length(data):
    t = make(data, epochs=2, lr=0.1, warmup_steps=4, snapshot_every=1)
    run = t.run()
    for _ in range(10):
        next(run)
    before = t.lr
    t.set_epochs(4)                                       # running: applied before the next batch
    for s in run:
        if t.step == 11:
            break
    assert t.history.lr[10] == pytest.approx(before)      # no jump
    for _ in run:
        pass
    assert t.epoch == 4 and t.step == 80 and t.config.epochs == 4
    assert t.history.lr[-1] < 1e-3 * before                # decayed to the new end
    assert (np.diff(t.history.lr[10:]) <= 1e-15).all()
    with pytest.raises(ValueError, match="at least 4"):
        t.set_epochs(3)


def test_set_epochs_extends_a_finished_run_and_shortens_a_stopped_one(data):
    t = make(data, epochs=1, lr=0.1, snapshot_every=1)
    list(t.run())
    assert t.lr == pytest.approx(0)                       # cosine ended
    t.set_epochs(2)                                       # re-planned as if started with 2
    assert t.lr == pytest.approx(0.1 * 0.5 * (1 + np.cos(np.pi * 20 / 40)))
    kinds = [s.kind for s in t.run()]
    assert kinds[-1] == "finished" and t.epoch == 2 and t.step == 40

    u = make(data, epochs=5, lr=0.1, snapshot_every=1)
    run = u.run()
    for s in run:
        if s.kind == "epoch":
            break
    run.close()
    u.set_epochs(1)                                       # the epoch done is the last one
    assert [s.kind for s in u.run()] == ["finished"] and u.step == 20


def test_momentum_is_recorded_per_batch_in_checkpoints_and_the_csv(data, tmp_path):
    """A momentum change mid-run shows in the history: the batches before it
    trained with the old value, those after with the new one."""
    t = make(data, epochs=1, momentum=0.9)
    for snap in t.run():
        if snap.step >= 6:
            t.set_momentum(0.5)
        if snap.step >= 12:
            t.request_stop()
    m = t.history.momentum
    changed = int(np.argmax(m == 0.5))
    assert changed >= 6 and set(m[:changed]) == {0.9} and set(m[changed:]) == {0.5}
    path = tmp_path / "h.csv"
    t.history.to_csv(path)
    rows = list(csv.DictReader(path.open()))
    assert [float(r["momentum"]) for r in rows] == m.tolist()
    ck = tmp_path / "ck.npz"
    t.save_checkpoint(ck)
    back = Trainer.from_checkpoint(ck, *data)
    np.testing.assert_array_equal(back.history.momentum, m)


def test_a_checkpoint_without_momentum_rows_loads_with_the_runs_momentum(data, tmp_path):
    """Checkpoints written before momentum was recorded: every row gets the
    momentum the run had."""
    t = make(data, epochs=1, momentum=0.8)
    for snap in t.run():
        if snap.step >= 5:
            t.request_stop()
    ck, old = tmp_path / "ck.npz", tmp_path / "old.npz"
    t.save_checkpoint(ck)
    with np.load(ck) as z:
        members = {k: z[k] for k in z.files if k != "history/batch/momentum"}
    np.savez(old, **members)
    back = Trainer.from_checkpoint(old, *data)
    assert back.history.n_batches == t.history.n_batches
    assert back.history.momentum.tolist() == [0.8] * t.history.n_batches


def _run_in_thread(t):
    snaps = []
    th = threading.Thread(target=lambda: snaps.extend(t.run()), daemon=True)
    th.start()
    return snaps, th


def _until(cond, timeout=30.0):
    end = time.perf_counter() + timeout
    while not cond():
        assert time.perf_counter() < end, "timed out"
        time.sleep(0.002)
    return time.perf_counter()


def test_a_pause_or_stop_ends_the_epoch_end_evaluation_within_a_chunk(data):
    """10,000 test images take seconds: a request waits for one chunk, no
    half-evaluated result is kept, and the epoch ends when it is evaluated
    again (on resume, or on the next run)."""
    from cnnviz.engine.trainer import EVAL_CHUNK
    test = load_mnist(split="test")
    t = Trainer(lenet5(seed=0), data[0], (test.images, test.labels),
                TrainConfig(epochs=2, batch_size=64, limit=128, warmup_steps=0))
    seen = []
    snaps, th = _run_in_thread(t)

    def evaluating(at_least=EVAL_CHUNK):
        p = t.evaluation_progress
        seen.append(p)
        return p is not None and p[0] >= at_least
    _until(evaluating)
    t0 = time.perf_counter()
    t.request_pause()
    t1 = _until(lambda: snaps and snaps[-1].kind == "paused")
    assert t1 - t0 < 0.5, f"the pause came {t1 - t0:.2f} s after the request"
    assert t.evaluation_progress is None and t.epoch == 0 and t.history.n_epochs == 0
    assert snaps[-1].test_accuracy is None and not [s for s in snaps if s.kind == "epoch"]
    progress = [p for p in seen if p is not None]
    assert progress[0][1] == 10_000 and all(p[0] % EVAL_CHUNK == 0 for p in progress)
    t.request_resume()
    _until(lambda: any(s.kind == "epoch" for s in snaps))
    epoch = next(s for s in snaps if s.kind == "epoch")
    assert epoch.epoch == 1 and len(epoch.test_probs) == 10_000
    assert epoch.test_accuracy == t.history.epochs()["test_accuracy"][0]

    _until(lambda: t.epoch == 1 and evaluating())         # epoch 2's evaluation
    t0 = time.perf_counter()
    t.request_stop()
    th.join(5)
    t1 = time.perf_counter()
    assert t1 - t0 < 0.5 and snaps[-1].kind == "stopped"
    assert "before the test set was evaluated at the end of epoch 2" in snaps[-1].message
    assert t.epoch == 1 and t.history.n_epochs == 1 and t.test_accuracy == epoch.test_accuracy
    again = list(t.run())                                 # Continue: evaluated, then finished
    assert [s.kind for s in again] == ["epoch", "finished"] and t.history.n_epochs == 2
    assert again[0].epoch == 2 and len(again[0].test_probs) == 10_000


@pytest.mark.parametrize("shape, s", [((40, 7, 9), 1), ((30, 3, 6, 5), 2), ((12, 4, 4), 3)])
def test_random_shift_equals_a_per_sample_reference(shape, s):
    """Each image moved by the (dy, dx) its draws give, 0 shifted in, on
    grey and colour, non-square images, shifts up to the image's side."""
    rng = np.random.default_rng(3)
    img = rng.integers(1, 255, size=shape).astype(np.uint8)
    out = random_shift(img, s, np.random.default_rng(7))
    draws = np.random.default_rng(7)
    dy = draws.integers(-s, s + 1, size=shape[0])
    dx = draws.integers(-s, s + 1, size=shape[0])
    h, w = shape[-2:]
    ref = np.zeros_like(img)
    for i in range(shape[0]):
        for r in range(h):
            for c in range(w):
                if 0 <= r - dy[i] < h and 0 <= c - dx[i] < w:
                    ref[i, ..., r, c] = img[i, ..., r - dy[i], c - dx[i]]
    np.testing.assert_array_equal(out, ref)
