"""The running average of the weights: its arithmetic against a naive
reference, that it never changes the training itself, that the epoch-end test
runs on it and the finished model holds it, divergence, and checkpoints."""

import numpy as np
import pytest

from cnnviz.engine import lenet5
from cnnviz.engine.averaging import DECAY, WeightAverage
from cnnviz.engine.trainer import CheckpointError, Trainer, evaluate_model, load_checkpoint

from trainer_runs import make_trainer, rewrite, small_mnist, weights


@pytest.fixture(scope="module")
def data():
    return small_mnist()


def make(data, model=None, probe=None, **kw):
    """make_trainer at a higher rate, a snapshot after every batch."""
    return make_trainer(data, model, probe, **{"lr": 0.05, "snapshot_every": 1, **kw})


def naive_average(start, updates):
    """The average of flat weight vectors, starting at ``start`` (the
    weights a run starts from), in float64: update n (0-based) decays by
    min(0.998, (1 + n) / (10 + n)), as TensorFlow's ExponentialMovingAverage
    with num_updates."""
    avg = np.array(start, np.float64)
    for n, w in enumerate(updates):
        d = min(DECAY, (1 + n) / (10 + n))
        avg = d * avg + (1 - d) * np.asarray(w, np.float64)
    return avg


def test_the_update_matches_the_naive_formula_over_a_thousand_steps():
    model = lenet5(seed=1)
    params = model.parameters()
    avg = WeightAverage(params)
    np.testing.assert_array_equal(avg.flat, weights(model))   # starts at them
    rng = np.random.default_rng(0)
    start, seq = weights(model).copy(), []
    for _ in range(1000):                  # the decay reaches 0.998 at n = 4,490
        for p in params:
            p.value[...] += rng.normal(0, 0.01, p.value.shape).astype(np.float32)
        seq.append(weights(model).copy())
        avg.update()
    assert avg.count == len(seq)
    np.testing.assert_allclose(avg.flat, naive_average(start, seq), rtol=1e-5, atol=1e-6)
    assert avg.decay() == pytest.approx((1 + 1000) / (10 + 1000))
    before = avg.flat.copy()
    for p in params:
        p.value[...] = 1e30                # weights that blew up ...
    avg.update()
    avg.undo()                             # ... are taken back out, once
    np.testing.assert_array_equal(avg.flat, before)
    avg.undo()
    assert avg.count == 1000 and np.array_equal(avg.flat, before)
    avg.count = 10_000
    assert avg.decay() == DECAY


def test_swapped_in_gives_the_model_the_average_and_its_own_back_after_an_error():
    model = lenet5(seed=1)
    params = model.parameters()
    avg = WeightAverage(params)
    own = weights(model).copy()
    kept = [p.value.copy() for p in params]
    for p in params:
        p.value[...] += 1
    avg.update()                           # decay 0.1: the average is own + 0.9
    for p, v in zip(params, kept):
        p.value[...] = v
    with pytest.raises(RuntimeError):
        with avg.swapped_in():
            np.testing.assert_allclose(weights(model), own + 0.9, rtol=1e-6)
            raise RuntimeError("mid-evaluation")
    np.testing.assert_array_equal(weights(model), own)


def test_averaging_does_not_change_the_training_and_averages_every_step(data):
    # The weights after each step, recorded by the probe (it runs between
    # batches, after every one with snapshot_every=1).
    seen = []

    def probe(trainer):
        seen.append(weights(trainer.model).copy())

    plain = make(data, average=False, probe=probe, epochs=1)
    start = weights(plain.model).copy()
    list(plain.run())
    averaged = make(data, average=True, epochs=1)
    snaps = list(averaged.run())
    np.testing.assert_array_equal(averaged.history.loss, plain.history.loss)
    # the weights after each of the 20 steps are averaged in (the probe saw
    # them at each snapshot, the 20th at the epoch's)
    assert averaged.average.count == averaged.step == 20
    np.testing.assert_allclose(averaged.average.flat, naive_average(start, seen[:20]),
                               rtol=1e-5, atol=1e-6)
    # finished: the model took the average
    assert snaps[-1].kind == "finished"
    np.testing.assert_array_equal(weights(averaged.model), averaged.average.flat)


def test_the_epoch_end_test_is_of_the_average_and_the_weights_are_the_runs_own_again(data):
    t = make(data, epochs=3)
    run = t.run()
    for snap in run:
        if snap.kind == "epoch" and snap.epoch == 1:
            break
    own = weights(t.model).copy()
    assert not np.allclose(own, t.average.flat)             # the two differ mid-run
    model = lenet5(seed=0)
    for p, v in zip(model.parameters(), t.average.values().values()):
        p.value[...] = v
    loss, acc, _, _ = evaluate_model(model, *data[1])
    # other chunk sizes, other float sums: the loss to 1e-5 (the run's own
    # weights give another), the accuracy to one image in case of a near tie
    assert snap.test_loss == pytest.approx(loss, rel=1e-5)
    assert abs(snap.test_accuracy - acc) <= 1 / 300
    assert "(averaged weights)" in snap.message
    run.close()
    np.testing.assert_array_equal(weights(t.model), own)   # not left swapped


def test_a_finished_run_ends_with_the_weights_its_last_test_measured(data):
    t = make(data, epochs=2)
    snaps = list(t.run())
    loss, acc, _ = t.evaluate(*data[1])
    assert loss == pytest.approx(snaps[-1].test_loss, rel=1e-5)
    assert abs(acc - snaps[-1].test_accuracy) <= 1 / 300
    # and continuing it trains on from the averaged weights
    t.set_epochs(3)
    assert [s.kind for s in t.run()][-1] == "finished" and t.epoch == 3


def test_weights_that_diverged_are_taken_out_of_the_average(data):
    t = make(data, lr=1e6, lr_schedule="none")
    snaps = list(t.run())
    assert [s.kind for s in snaps][-2:] == ["diverged", "stopped"]
    # the last step's weights gave the non-finite loss: restored, and out of the average
    assert t.average.count == t.step - 1
    assert np.isfinite(t.average.flat).all() and np.abs(t.average.flat).max() < 10


def test_even_one_step_moves_the_model_it_ends_with(data):
    t = make(data, epochs=1, limit=32)
    start = weights(t.model).copy()
    list(t.run())
    assert t.step == 1
    moved = weights(t.model)
    assert not np.allclose(moved, start)
    np.testing.assert_array_equal(moved, t.average.flat)


def test_a_checkpoint_resumes_the_average_exactly(data, tmp_path):
    full = make(data, epochs=2, snapshot_every=5)
    list(full.run())
    part = make(data, epochs=2, snapshot_every=5)
    run = part.run()
    for s in run:
        if s.kind == "batch" and s.epoch == 2 and s.batch == 10:
            break
    run.close()
    path = tmp_path / "ck.npz"
    part.save_checkpoint(path)
    resumed = Trainer.from_checkpoint(path, data[0], data[1])
    assert resumed.average.count == part.average.count == 30
    np.testing.assert_array_equal(resumed.average.flat, part.average.flat)
    list(resumed.run())
    np.testing.assert_array_equal(resumed.average.flat, full.average.flat)
    np.testing.assert_array_equal(resumed.history.epochs()["test_accuracy"],
                                  full.history.epochs()["test_accuracy"])


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory):
    t = make(data, epochs=1, snapshot_every=5)
    run = t.run()
    next(run)
    run.close()
    path = tmp_path_factory.mktemp("ck") / "ck.npz"
    t.save_checkpoint(path)
    return path


@pytest.mark.parametrize("trainer, arrays, message", [
    (None, lambda m: m.__setitem__("average/conv1.weight", np.zeros((6, 1, 3, 3), np.float32)),
     "average/conv1.weight: float32 of shape (6, 1, 3, 3); the parameter conv1.weight is "
     "float32 of shape (6, 1, 5, 5)"),
    (None, lambda m: m.__setitem__("average/fc3.bias", np.full(10, np.nan, np.float32)),
     "average/fc3.bias: NaN or infinite values"),
    (None, lambda m: m.pop("average/fc3.bias"), "average/fc3.bias: missing"),
    (None, lambda m: m.__setitem__("average/fc9.bias", np.zeros(10, np.float32)),
     "average/fc9.bias: not a parameter of this model"),
    (lambda m: m["config"].update(average=False), None,
     "averaged weights in a run that does not average"),
    (lambda m: m["progress"].update(average_count=-1), None, "trainer.progress.average_count"),
    (lambda m: m["progress"].update(average_count=10**6), None,
     "trainer.progress.average_count: 1,000,000 updates of the average, more than the run's 5 "
     "steps"),
    (lambda m: m["progress"].pop("average_count"), None,
     "trainer.progress.average_count: missing"),
    (None, lambda m: [m.pop(k) for k in list(m) if k.startswith("average/")],
     "average/conv1.weight: missing"),
])
def test_a_bad_average_in_a_checkpoint_is_refused_naming_it(checkpoint, tmp_path, trainer,
                                                            arrays, message):
    bad = rewrite(checkpoint, tmp_path / "bad.npz", trainer, arrays)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(bad)
    assert str(e.value).startswith(f"{bad}: ") and message in str(e.value)


def test_a_checkpoint_from_before_averaging_resumes_without_it(checkpoint, data, tmp_path):
    def older(meta):
        del meta["config"]["average"], meta["progress"]["average_count"]

    def no_average(members):
        for name in [n for n in members if n.startswith("average/")]:
            del members[name]

    old = rewrite(checkpoint, tmp_path / "old.npz", older, no_average)
    t = Trainer.from_checkpoint(old, data[0], data[1])
    assert t.config.average is False and t.average is None
    assert [s.kind for s in t.run()][-1] == "finished"
    assert "(averaged weights)" not in t._summary_message()
