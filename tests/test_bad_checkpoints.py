"""Damaged training checkpoints, generated here from a real one: every one is
refused whole by load_checkpoint, with the file and the field named, before
anything is returned; nothing is clamped, zero-filled or left to fail later;
a trainer that meets a bad state is left as it was."""


import numpy as np
import pytest

from cnnviz.engine import lenet5_small
from cnnviz.engine.trainer import CheckpointError, Trainer, TrainConfig, load_checkpoint

from trainer_runs import rewrite


def tiny_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), np.uint8), rng.integers(0, 10, n)


def trained(optimizer="sgd", epochs=2, stop_at=None):
    t = Trainer(lenet5_small(seed=0), tiny_data(), tiny_data(32, 1),
                TrainConfig(epochs=epochs, batch_size=16, lr=0.01, optimizer=optimizer,
                            warmup_steps=0, snapshot_every=1))
    for snap in t.run():
        if stop_at is not None and snap.step == stop_at:
            break
    return t


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    paths = {}
    for opt in ("sgd", "adam"):
        t = trained(opt, stop_at=9)                 # mid-epoch 2: both kinds of history rows
        paths[opt] = d / f"{opt}.npz"
        t.save_checkpoint(paths[opt])
    return paths


def progress(**changes):
    return lambda m: m["progress"].update(changes)


def config(**changes):
    return lambda m: m["config"].update(changes)


def drop(*keys):
    def edit(m):
        d = m
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return edit


def set_array(name, value):
    def edit(a):
        a[name] = value(a[name]) if callable(value) else value
    return edit


def del_array(name):
    return lambda a: a.pop(name)


# name -> (optimizer, trainer edit, arrays edit, what the message must say)
CASES = {
    "no-rng": ("sgd", drop("progress", "rng"), None, "trainer.progress.rng: missing"),
    "base-lr-null": ("sgd", progress(base_lr=None), None,
                     "trainer.progress.base_lr: expected a number > 0, got null"),
    "base-lr-zero": ("sgd", progress(base_lr=0), None,
                     "trainer.progress.base_lr: expected a number > 0, got 0.0"),
    "version-abc": ("sgd", lambda m: m.update(version="abc"), None,
                    'trainer.version: expected a whole number >= 1, got the string "abc"'),
    "newer-version": ("sgd", lambda m: m.update(version=7), None,
                      "trainer.version: made by a newer cnnviz"),
    "negative-epoch": ("sgd", progress(epoch=-1), None,
                       "trainer.progress.epoch: expected a whole number >= 0, got -1"),
    "negative-step": ("sgd", progress(step=-3), None, "trainer.progress.step: expected"),
    "negative-samples": ("sgd", progress(samples_seen=-16), None,
                         "trainer.progress.samples_seen: expected"),
    "step-4000-digits": ("sgd", progress(step=10 ** 4000), None, "100000...(4,001 digits)"),
    "newer-version-4000-digits": ("sgd", lambda m: m.update(version=10 ** 4000), None,
                                  "trainer.version: made by a newer cnnviz (version "
                                  "100000...(4,001 digits)"),
    "batch-above-step": ("sgd", progress(batch=50), None,
                         "trainer.progress.batch: 50 is more than progress.step (9)"),
    "accuracy-above-one": ("sgd", progress(last_accuracy=1.5), None,
                           "trainer.progress.last_accuracy: expected a number in [0, 1] or NaN"),
    "elapsed-string": ("sgd", progress(elapsed="10 s"), None,
                       'trainer.progress.elapsed: expected a number >= 0, got the string'),
    "unknown-progress-field": ("sgd", progress(mood="good"), None,
                               'trainer.progress: unknown field "mood"'),
    "negative-batch-size": ("sgd", config(batch_size=-5), None,
                            "trainer.config.batch_size: must be a whole number >= 1, got -5"),
    "batch-size-string": ("sgd", config(batch_size="64"), None,
                          'trainer.config.batch_size: expected a whole number, got the string "64"'),
    "momentum-out-of-range": ("sgd", config(momentum=1.5), None,
                              "trainer.config.momentum: must be in [0, 1), got 1.5"),
    "negative-seed": ("sgd", config(seed=-1), None, "trainer.config.seed: expected a whole"),
    "delay-infinite": ("sgd", config(delay=float("inf")), None,
                       "trainer.config.delay: expected a finite number, got inf"),
    "unknown-config-key": ("sgd", config(turbo=True), None,
                           'trainer.config: unknown field "turbo"'),
    "config-not-an-object": ("sgd", lambda m: m.update(config=[1]), None,
                             "trainer.config: expected an object, got a list of 1 item"),
    "optimizer-type-mismatch": ("sgd", lambda m: m["optimizer"].update(type="Adam"), None,
                                'trainer.optimizer.type: expected one of "SGD", got the string'),
    "optimizer-steps-too-many": ("sgd", lambda m: m["optimizer"].update(steps=100), None,
                                 "trainer.optimizer.steps: expected a whole number in [0, 9]"),
    "adam-betas-wrong": ("adam", lambda m: m["optimizer"]["hyper"].update(betas=[0.9]), None,
                         "trainer.optimizer.hyper.betas: expected 2 numbers, got 1"),
    "rng-wrong-generator": ("sgd", lambda m: m["progress"]["rng"].update(
        bit_generator="MT19937"), None, 'trainer.progress.rng.bit_generator: expected one of '
                                        '"PCG64"'),
    "rng-state-string": ("sgd", lambda m: m["progress"]["rng"]["state"].update(inc="x"), None,
                         'trainer.progress.rng.state.inc: expected a whole number'),
    "rng-state-huge": ("sgd", lambda m: m["progress"]["rng"]["state"].update(state=2 ** 130),
                       None, "trainer.progress.rng.state.state: expected a whole number in "
                             "[0, 2**128 - 1], got 1361129467683753853853498429727072845824"),
    "history-wrong-length": ("sgd", None, set_array("history/batch/loss", lambda v: v[:-1]),
                             "history/batch/loss: shape (8,), but the checkpoint has 9 "
                             "batches (progress.step)"),
    "history-epoch-rows": ("sgd", progress(epoch=0, batch=0), None,
                           "history/epoch/epoch: shape (1,), but the checkpoint has 0 epochs"),
    "history-missing": ("sgd", None, del_array("history/epoch/test_loss"),
                        "history/epoch/test_loss: missing"),
    "history-unknown": ("sgd", None, set_array("history/batch/grad_norm", np.zeros(9)),
                        "history/batch/grad_norm: not a history column"),
    "history-strings": ("sgd", None, set_array("history/batch/lr", lambda v: v.astype(str)),
                        "history/batch/lr: dtype <U32, expected floats"),
    "history-steps-shuffled": ("sgd", None, set_array("history/batch/step", lambda v: v[::-1]),
                               "history/batch/step: expected 1, 2, 3, ..."),
    "buffer-wrong-shape": ("sgd", None, set_array("opt/0/conv1.weight", np.zeros((2, 2),
                                                                                np.float32)),
                           "opt/0/conv1.weight: float32 of shape (2, 2); the parameter "
                           "conv1.weight is float32 of shape"),
    "buffer-wrong-dtype": ("sgd", None, set_array("opt/0/conv1.weight",
                                                  lambda v: v.astype(np.int32)),
                           "opt/0/conv1.weight: int32 of shape"),
    "buffer-nan": ("sgd", None, set_array("opt/0/fc1.bias", lambda v: v * np.nan),
                   "opt/0/fc1.bias: NaN or infinite values"),
    "buffer-missing": ("adam", None, del_array("opt/1/fc1.weight"),
                       "opt/1/fc1.weight: missing (Adam keeps one for every parameter)"),
    "buffer-some-missing-sgd": ("sgd", None, del_array("opt/0/fc1.weight"),
                                "opt/0/fc1.weight: missing"),
    "buffer-unknown": ("sgd", None, set_array("opt/1/fc1.weight", np.zeros(1, np.float32)),
                       "opt/1/fc1.weight: not an optimizer buffer of this model"),
    "nan-weights": ("sgd", None, set_array("param/fc1.bias", lambda v: v * np.nan),
                    "param/fc1.bias: 10 NaN or infinite weights; training cannot resume"),
    "no-trainer-format": ("sgd", lambda m: m.pop("format"), None,
                          "trainer: not a cnnviz training checkpoint"),
    "huge-int": ("sgd", None, None, "trainer.progress.step: expected a whole number >= 0, "
                                    "got a 5,000-digit integer"),
}


def make_case(name, checkpoints, d):
    opt, edit_meta, edit_arrays, expect = CASES[name]
    path = rewrite(checkpoints[opt], d / f"{name}.npz", edit_meta, edit_arrays)
    if name == "huge-int":
        with np.load(path) as z:
            members = {k: z[k] for k in z.files}
        text = str(members.pop("trainer"))
        text = text.replace('"step": 9,', '"step": ' + "1" * 5000 + ",", 1)
        np.savez(path, trainer=np.array(text), **members)
    return path, expect


@pytest.mark.parametrize("name", list(CASES))
def test_a_damaged_checkpoint_is_refused_with_the_field_named(checkpoints, tmp_path, name):
    path, expect = make_case(name, checkpoints, tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and expect in msg, msg
    assert "\n" not in msg and len(msg) < 400, msg       # one readable line


def test_undamaged_checkpoints_load(checkpoints, tmp_path):
    for opt, path in checkpoints.items():
        model, state = load_checkpoint(path)
        assert state["progress"]["step"] == 9 and len(state["history"]["batch/loss"]) == 9
        # the copy the corpus starts from is itself fine
        load_checkpoint(rewrite(path, tmp_path / f"{opt}-copy.npz"))


def test_a_checkpoint_from_before_a_setting_existed_takes_its_default(checkpoints, tmp_path):
    path = rewrite(checkpoints["sgd"], tmp_path / "old.npz", drop("config", "warmup_steps"))
    _, state = load_checkpoint(path)
    assert state["config"]["warmup_steps"] == TrainConfig().warmup_steps


def test_a_model_file_is_not_a_checkpoint(tmp_path):
    from cnnviz.engine import save
    save(lenet5_small(), tmp_path / "m.npz")
    with pytest.raises(CheckpointError, match=r"m.npz: a model file, but not a training "
                                              r"checkpoint"):
        load_checkpoint(tmp_path / "m.npz")


def test_from_checkpoint_raises_and_a_failed_load_changes_nothing(checkpoints, tmp_path):
    bad, _ = make_case("history-wrong-length", checkpoints, tmp_path)
    with pytest.raises(CheckpointError):
        Trainer.from_checkpoint(bad, tiny_data())
    # a state that does not fit this trainer leaves it exactly as it was
    t = trained("sgd", epochs=1)
    before = (t.step, t.epoch, t.base_lr, t.history.n_batches, t.rng.bit_generator.state,
              [p.value.copy() for p in t.model.parameters()], t.optimizer)
    _, state = load_checkpoint(checkpoints["adam"])           # Adam state, SGD trainer
    with pytest.raises(ValueError):
        t.load_state_dict(state)
    _, state = load_checkpoint(checkpoints["sgd"])
    state["model"] = {k: v[..., :1] for k, v in state["model"].items()}   # wrong shapes
    with pytest.raises(ValueError):
        t.load_state_dict(state)
    after = (t.step, t.epoch, t.base_lr, t.history.n_batches, t.rng.bit_generator.state,
             [p.value for p in t.model.parameters()], t.optimizer)
    assert after[:5] == before[:5] and after[6] is before[6]
    for a, b in zip(after[5], before[5]):
        np.testing.assert_array_equal(a, b)


def test_resume_from_a_checked_checkpoint_is_exact(checkpoints):
    """Checking changes no value: the resumed run equals an uninterrupted one."""
    full = trained("adam")
    resumed = Trainer.from_checkpoint(checkpoints["adam"], tiny_data(), tiny_data(32, 1))
    list(resumed.run())
    np.testing.assert_array_equal(resumed.history.loss, full.history.loss)
    for a, b in zip(resumed.model.parameters(), full.model.parameters()):
        np.testing.assert_array_equal(a.value, b.value)
