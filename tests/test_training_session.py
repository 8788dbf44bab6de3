"""The training session without Qt: every state transition, what Start does,
when a run may be discarded, and that a checkpoint or a dataset that cannot
be used leaves the current run exactly as it was. The trainer's generator is
driven here directly (the tab's worker thread does the same)."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from cnnviz.data.idx import write_idx
from cnnviz.data.mnist import load_mnist
from cnnviz.gui.training.session import RunError, Settings, TrainingSession, settings_key

GUI = dict(snapshot_every=5)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mnist-small")
    train, test = load_mnist(split="train"), load_mnist(split="test")
    write_idx(d / "train-images-idx3-ubyte", train.images[:320])
    write_idx(d / "train-labels-idx1-ubyte", train.labels[:320])
    write_idx(d / "t10k-images-idx3-ubyte", test.images[:100])
    write_idx(d / "t10k-labels-idx1-ubyte", test.labels[:100])
    return d


def idx(path):
    """The set-up panel's choice of an IDX directory (Settings.dataset)."""
    return ("idx", str(path), None, None)


def settings(data_dir, **kw):
    s = Settings(model="lenet5", model_path=None, dataset=idx(data_dir), optimizer="sgd",
                 lr=0.05, momentum=0.9, weight_decay=5e-4, batch_size=32, epochs=2, seed=0,
                 limit=None, shift=0, lr_schedule="cosine")
    return replace(s, **kw)


def started(data_dir, **kw):
    """A session with a new run installed and launched (the generator stands in for the thread)."""
    session = TrainingSession()
    s = settings(data_dir, **kw)
    session.install(session.prepare_new(s, GUI))
    session.launched()
    return session, s, session.trainer.run()


def feed(session, run, n):
    """n snapshots from the run into the session; the last one."""
    for _ in range(n):
        snap = next(run)
        session.on_snapshot(snap)
    return snap


def test_the_session_imports_without_qt():
    code = ("import sys, cnnviz.gui.training.session; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PyQt6', 'pyqtgraph') or m == 'cnnviz.gui.training.tab'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_idle_running_paused_resumed_stopped_continued_finished(data_dir):
    session = TrainingSession()
    s = settings(data_dir)
    assert session.state == "idle" and session.start_action(s) == "new"
    assert session.start_label(s) == "Start" and not session.has_unsaved()
    session.install(session.prepare_new(s, GUI))
    assert session.state == "idle" and session.start_action(s) == "continue"
    session.launched()
    assert session.state == "running" and session.start_action(s) == "none"
    run = session.trainer.run()
    feed(session, run, 1)                       # a batch snapshot
    assert session.state == "running" and session.has_unsaved()
    session.trainer.request_pause()
    snap = feed(session, run, 1)
    assert snap.kind == "paused" and session.state == "paused"
    assert session.start_action(s) == "resume" and session.start_label(s) == "Resume"
    session.trainer.request_resume()
    session.resumed()
    assert session.state == "running"
    session.trainer.request_stop()
    assert feed(session, run, 1).kind == "stopped" and session.state == "stopped"
    session.thread_finished()
    assert session.state == "stopped"
    assert session.start_action(s) == "continue" and session.start_label(s) == "Continue"
    step = session.trainer.step
    trainer = session.trainer
    session.launched()                          # Continue: the same run goes on
    for snap in session.trainer.run():
        session.on_snapshot(snap)
    session.thread_finished()
    assert session.trainer is trainer and session.state == "finished"
    assert trainer.step == 2 * 10 > step
    assert session.start_action(s) == "new" and session.start_label(s) == "Start a new run"


def test_divergence_sets_the_flag_and_pauses_at_the_paused_snapshot(data_dir):
    session, s, run = started(data_dir, lr=1e6, lr_schedule="none")
    session.trainer.config.pause_on_divergence = True
    kinds = []
    while session.state != "paused":
        snap = feed(session, run, 1)
        kinds.append(snap.kind)
        if snap.kind == "diverged":
            # not yet paused: the trainer pauses after this snapshot
            assert session.diverged and session.state == "running"
    assert kinds[-2:] == ["diverged", "paused"]
    session.set_lr(0.01)
    session.trainer.request_resume()
    session.resumed()
    assert session.state == "running" and not session.diverged
    feed(session, run, 1)
    assert session.trainer.history.lr[-1] == pytest.approx(0.01)
    run.close()


def test_start_continues_only_with_the_runs_settings(data_dir):
    session, s, run = started(data_dir)
    feed(session, run, 1)
    session.trainer.request_stop()
    feed(session, run, 1)
    session.thread_finished()
    # lr, momentum and epochs are the run's own: edits apply to it, Start continues
    for same in (replace(s, lr=0.001), replace(s, momentum=0.5), replace(s, epochs=7)):
        assert session.start_action(same) == "continue" and session.edits_apply(same)
    # anything else makes a new run (which discards this one)
    for other in (replace(s, dataset=("mnist", None, None, None)), replace(s, model="small"), replace(s, seed=1),
                  replace(s, batch_size=64), replace(s, optimizer="adam"),
                  replace(s, model="file", model_path="m.npz")):
        assert settings_key(other) != settings_key(s)
        assert session.start_action(other) == "new" and not session.edits_apply(other)
        assert not session.shows_run_values(other)
    assert session.shows_run_values(s)


def test_discarding_asks_only_when_something_unsaved_exists(data_dir, tmp_path):
    session = TrainingSession()
    assert session.discard_question("loading a checkpoint") is None
    session, s, run = started(data_dir)
    assert session.discard_question("starting a new run") is None      # nothing trained yet
    feed(session, run, 1)
    q = session.discard_question("loading a checkpoint")
    assert "has not been saved" in q and "before loading a checkpoint" in q
    trainer = session.trainer
    old = session.prepare_new(settings(data_dir), GUI).trainer
    session.mark_saved(old, 10**6)               # a late report about another run
    assert session.has_unsaved()
    trainer.save_checkpoint(tmp_path / "c.npz")
    session.mark_saved(trainer, trainer.step)
    assert not session.has_unsaved() and session.discard_question("closing") is None
    feed(session, run, 1)                        # trains on: unsaved again
    assert session.has_unsaved()
    run.close()


def damaged_copies(path, tmp_path):
    """Checkpoints that cannot be resumed, each with what the message must name."""
    out = []
    text = tmp_path / "notes.npz"
    text.write_text("not a checkpoint at all\n")
    out.append((text, "notes.npz"))
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["trainer"]))

    def variant(name, trainer_text):
        p = tmp_path / name
        np.savez(p, **{**arrays, "trainer": np.array(trainer_text)})
        return p
    out.append((variant("garbled.npz", json.dumps(meta)[:-7] + "}}}x"), "garbled.npz"))
    no_rng = json.loads(json.dumps(meta))
    del no_rng["progress"]["rng"]
    out.append((variant("no-rng.npz", json.dumps(no_rng)), "rng"))
    bad_bs = json.loads(json.dumps(meta))
    bad_bs["config"]["batch_size"] = -4
    out.append((variant("bad-bs.npz", json.dumps(bad_bs)), "batch_size"))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:2000])
    out.append((truncated, "truncated.npz"))
    return out


def test_a_damaged_checkpoint_leaves_the_run_exactly_as_it_was(data_dir, tmp_path):
    session, s, run = started(data_dir)
    feed(session, run, 2)
    good = tmp_path / "good.npz"
    session.trainer.save_checkpoint(good)
    feed(session, run, 1)
    session.trainer.request_stop()
    feed(session, run, 1)
    session.thread_finished()
    before = (session.trainer, session.trainer.step, session.state, session.has_unsaved(),
              session.run_count, session.settings)
    weights = session.trainer.model.state_dict()
    for path, named in damaged_copies(good, tmp_path):
        with pytest.raises(RunError) as e:
            session.prepare_checkpoint(path, s, GUI)
        msg = str(e.value)
        assert "\n" not in msg and named in msg and "Traceback" not in msg, msg
        assert (session.trainer, session.trainer.step, session.state, session.has_unsaved(),
                session.run_count, session.settings) == before
        for k, v in session.trainer.model.state_dict().items():
            assert np.array_equal(v, weights[k])


def test_a_loaded_checkpoint_keeps_its_rate_schedule_and_counts_as_saved(data_dir, tmp_path):
    session, s, run = started(data_dir, epochs=3, lr=0.08)
    feed(session, run, 3)
    session.set_lr(0.02)                         # typed mid-run
    feed(session, run, 1)
    path = tmp_path / "mid.npz"
    t = session.trainer
    t.save_checkpoint(path)
    lr_next, epochs = t.lr, t.config.epochs
    run.close()
    other = TrainingSession()
    # The spin boxes of the window doing the load hold other values: they do not count.
    loaded = other.prepare_checkpoint(path, settings(data_dir, lr=0.3, epochs=9, momentum=0.5),
                                      GUI)
    other.install(loaded)
    assert other.trainer.lr == pytest.approx(lr_next)
    assert other.run_values() == {"lr": pytest.approx(lr_next), "momentum": 0.9, "epochs": epochs}
    assert other.state == "stopped" and not other.has_unsaved()
    assert other.start_action(other.settings) == "continue"
    other.launched()
    first = next(other.trainer.run())
    assert other.trainer.history.lr[t.step] == pytest.approx(lr_next)   # Continue keeps it
    assert first.step > t.step


def test_epochs_replan_the_run_a_finished_run_given_more_can_continue(data_dir):
    session, s, run = started(data_dir, epochs=1)
    for snap in run:
        session.on_snapshot(snap)
    session.thread_finished()
    assert session.state == "finished" and session.start_action(s) == "new"
    with pytest.raises(RunError, match="Epochs: epochs must be a whole number >= 1, got 0"):
        session.set_epochs(0)
    msg = session.set_epochs(3)
    assert "3 epochs" in msg and "re-planned" in msg
    assert session.state == "stopped" and session.start_action(s) == "continue"
    assert session.trainer.config.epochs == 3 and session.run_values()["epochs"] == 3
    session.launched()
    kinds = []
    for snap in session.trainer.run():
        session.on_snapshot(snap)
        kinds.append(snap.kind)
    assert kinds.count("epoch") == 2 and session.trainer.step == 30
    assert session.state == "finished"
    # While running: applied before the next batch, not fewer than the epoch in progress.
    session, s, run = started(data_dir, epochs=2)
    feed(session, run, 3)                        # 15 batches: in epoch 2
    with pytest.raises(RunError, match="at least 2"):
        session.set_epochs(1)
    assert "next batch" in session.set_epochs(4)
    for snap in run:
        session.on_snapshot(snap)
    assert session.trainer.step == 40 and session.state == "finished"


def test_a_label_the_model_cannot_have_is_one_line_before_anything_changes(data_dir, tmp_path):
    bad = tmp_path / "labels-to-12"
    bad.mkdir()
    train, test = load_mnist(split="train"), load_mnist(split="test")
    labels = train.labels[:320].copy()
    labels[17] = 12
    write_idx(bad / "train-images-idx3-ubyte", train.images[:320])
    write_idx(bad / "train-labels-idx1-ubyte", labels)
    write_idx(bad / "t10k-images-idx3-ubyte", test.images[:100])
    write_idx(bad / "t10k-labels-idx1-ubyte", test.labels[:100])
    session, s, run = started(data_dir)
    feed(session, run, 1)
    trainer = session.trainer
    with pytest.raises(RunError) as e:
        session.prepare_new(replace(s, dataset=idx(bad)), GUI)
    assert str(e.value) == ("Cannot train on this dataset: its training set has label 12, "
                            "but the model has 10 outputs (labels 0-9).")
    assert session.trainer is trainer and session.has_unsaved()
    run.close()


def test_restart_uses_the_same_initial_weights(data_dir):
    session, s, run = started(data_dir)
    initial = session.initial_weights
    feed(session, run, 2)
    session.trainer.request_stop()
    feed(session, run, 1)
    session.thread_finished()
    again = session.prepare_restart(replace(s, lr=0.01), GUI)
    for k, v in again.trainer.model.state_dict().items():
        assert np.array_equal(v, initial[k])
    session.install(again)
    assert session.state == "idle" and session.trainer.step == 0 and session.run_count == 2


def test_the_curves_smoothed_loss_is_the_status_lines_number():
    """Each snapshot's smoothed loss (the status line's) equals the curve's
    last point computed from the history rows, from the very first batches."""
    from cnnviz.engine import lenet5
    from cnnviz.engine.trainer import TrainConfig, Trainer
    from cnnviz.gui.training.smoothing import smoothed_losses

    train = load_mnist(split="train")
    trainer = Trainer(lenet5(seed=0), (train.images[:640], train.labels[:640]), None,
                      TrainConfig(epochs=2, batch_size=32, limit=640, snapshot_every=3))
    ema, checked = 0.0, 0
    for snap in trainer.run():
        b = snap.batches
        if not len(b.get("loss", ())):
            continue
        smooth, ema = smoothed_losses(b["loss"], b["step"], ema)
        assert smooth[-1] == pytest.approx(snap.smoothed_loss, rel=1e-9)
        checked += 1
    assert checked >= 10


def test_an_overlays_label_records_mid_run_changes(data_dir):
    session, s, run = started(data_dir, lr=0.05, momentum=0.9)
    assert session.overlay_label == session.run_label
    feed(session, run, 3)
    seen, lr = session.trainer.samples_seen, session.trainer.lr    # warm-up: below 0.05
    session.set_lr(0.01)               # typed 0.01, then 0.001, before the next batch: one change
    session.set_momentum(0.5)
    session.set_lr(0.001)
    session.set_momentum(0.5)          # no change: not recorded again
    assert session.overlay_label == (f"{session.run_label}; lr {lr:.3g} -> 0.001 at {seen}; "
                                     f"m 0.9 -> 0.5 at {seen}")
    from cnnviz.gui.training.session import _samples_text
    assert (_samples_text(12_000), _samples_text(1_536), _samples_text(640)) == ("12k", "1.54k", "640")
