"""The Training tab driven as a user drives it (pytest-qt, offscreen), on a
2,000-image training subset written as an IDX directory (the "any directory
of the four IDX files" path) with 500 test images, so epochs are short.

Every test checks, on the way out, that no training thread is left running."""

import os
import sys
import time

import numpy as np
import pyqtgraph as pg
import pytest
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtWidgets import QGraphicsItem, QLabel, QMessageBox

from cnnviz.data.idx import write_idx
from cnnviz.data.mnist import load_mnist
from cnnviz.engine.serialization import load
from cnnviz.gui.training import TrainingTab

from dialogs import Answer

N_TRAIN, N_TEST = 2000, 500


@pytest.fixture(scope="session")
def subset_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mnist-subset")
    train, test = load_mnist(split="train"), load_mnist(split="test")
    write_idx(d / "train-images-idx3-ubyte", train.images[:N_TRAIN])
    write_idx(d / "train-labels-idx1-ubyte", train.labels[:N_TRAIN])
    write_idx(d / "t10k-images-idx3-ubyte", test.images[:N_TEST])
    write_idx(d / "t10k-labels-idx1-ubyte", test.labels[:N_TEST])
    return d


@pytest.fixture
def make_tab(subset_dir, training_tabs):
    def make(epochs=3, lr=0.05, data_dir=subset_dir, workers=None):
        tab = training_tabs(data_dir=str(data_dir) if data_dir else None, workers=workers)
        tab.setup.epochs.setValue(epochs)
        tab.setup.lr.setValue(lr)
        return tab

    return make


def steps_of(tab):
    return tab.trainer.step


def wait_state(qtbot, tab, state, timeout=20_000):
    qtbot.waitUntil(lambda: tab.state == state, timeout=timeout)


def test_start_pause_step_change_lr_resume_stop(qtbot, make_tab):
    tab = make_tab(epochs=3)
    kinds = []
    tab.snapshot_received.connect(lambda s: kinds.append(s.kind))
    tab.start()
    assert tab.state == "running" and tab.runner.is_running()
    qtbot.waitUntil(lambda: kinds.count("batch") >= 2, timeout=20_000)
    assert not tab.start_button.isEnabled() and tab.pause_button.isEnabled()

    tab.pause_button.click()
    wait_state(qtbot, tab, "paused")
    assert tab.pause_button.text() == "Resume"
    paused_at = steps_of(tab)
    qtbot.wait(300)
    assert steps_of(tab) == paused_at                   # paused means no batches

    tab.step_button.click()
    qtbot.waitUntil(lambda: steps_of(tab) == paused_at + 1, timeout=10_000)
    wait_state(qtbot, tab, "paused")
    qtbot.wait(300)
    assert steps_of(tab) == paused_at + 1               # exactly one batch

    # A new learning rate typed while paused is used by the very next batch.
    tab.setup.lr.setValue(0.0123)
    tab.step_button.click()
    qtbot.waitUntil(lambda: steps_of(tab) == paused_at + 2, timeout=10_000)
    assert tab.trainer.history.lr[-1] == pytest.approx(0.0123)
    tab.setup.momentum.setValue(0.5)

    tab.pause_button.click()                            # "Resume"
    assert tab.state == "running"
    qtbot.waitUntil(lambda: steps_of(tab) >= paused_at + 6, timeout=20_000)
    assert tab.trainer.momentum == 0.5

    tab.stop_button.click()
    wait_state(qtbot, tab, "stopped")
    qtbot.waitUntil(lambda: not tab.runner.is_running(), timeout=2_000)
    assert kinds[-1] == "stopped"
    # The curves got every batch (decimation only starts at 2000 points).
    assert tab.curves.batch["loss"].total == tab.trainer.history.n_batches > paused_at
    assert tab.start_button.text() == "Continue"
    assert tab.has_unsaved_model()


def test_a_page_switch_mid_run_paints_first_then_catches_up(qtbot, make_tab):
    tab = make_tab(epochs=50)
    tab.start()
    qtbot.waitUntil(lambda: tab.trainer.step >= 3, timeout=20_000)
    axes = [i for i in tab.weights_view.scene().items() if isinstance(i, pg.AxisItem)]
    assert len(axes) >= 7 and all(                     # drawn from cached pixmaps
        a.cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache for a in axes)
    norm_curve = tab.weights_view.curves["conv1"][0]
    before = 0 if norm_curve.xData is None else len(norm_curve.xData)
    qtbot.wait(700)                                     # hidden: the page is not redrawn
    assert (0 if norm_curve.xData is None else len(norm_curve.xData)) == before
    tab.views.setCurrentWidget(tab.weights_view)
    # Painted as it was; the data follow a moment later.
    assert (0 if norm_curve.xData is None else len(norm_curve.xData)) == before
    qtbot.waitUntil(lambda: norm_curve.xData is not None and len(norm_curve.xData) > before,
                    timeout=2_000)
    lo, hi = tab.weights_view.norm_plot.viewRange()[0]
    assert hi >= tab.trainer.config.epochs * tab.trainer.n_train   # the whole run's x range
    tab.views.setCurrentIndex(0)
    t0 = time.perf_counter()
    assert tab.shutdown(1.0) and time.perf_counter() - t0 < 1.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_training_threads_yield_the_cpu_to_the_gui_thread(qtbot, make_tab):
    tab = make_tab(epochs=50)
    niceness = {}

    def record(snap):   # runs in the GUI thread; reads the worker's own id
        if not niceness:
            for tid in map(int, os.listdir("/proc/self/task")):
                niceness[tid] = os.getpriority(os.PRIO_PROCESS, tid)

    tab.snapshot_received.connect(record)
    tab.start()
    qtbot.waitUntil(lambda: bool(niceness), timeout=20_000)
    tab.stop_button.click()
    wait_state(qtbot, tab, "stopped")
    main = os.getpid()
    assert niceness.pop(main) == 0                        # the GUI thread keeps its priority
    assert niceness[tab.runner.worker.native_thread_id] == 10


def test_closing_mid_run_asks_and_stops_the_worker_within_a_second(qtbot, make_tab):
    tab = make_tab(epochs=50)
    tab.start()
    qtbot.waitUntil(lambda: tab.trainer.step >= 3, timeout=20_000)
    assert tab.has_unsaved_model()
    discard = Answer(QMessageBox.StandardButton.Discard)
    t0 = time.perf_counter()
    assert tab.close()
    gone = time.perf_counter() - t0
    assert discard.asked and "not been saved" in discard.asked[0]
    assert not tab.runner.is_running() and tab.runner.thread.isFinished()
    assert gone < 1.0, f"the worker took {gone:.2f} s to stop"


def test_cancel_keeps_the_window_and_the_run(qtbot, make_tab):
    tab = make_tab(epochs=50)
    tab.start()
    qtbot.waitUntil(lambda: tab.trainer.step >= 1, timeout=20_000)
    cancel = Answer(QMessageBox.StandardButton.Cancel)
    assert not tab.close()
    assert cancel.asked
    assert tab.isVisible() and tab.runner.is_running()


def test_a_huge_learning_rate_pauses_itself_with_finite_weights(qtbot, make_tab):
    tab = make_tab(epochs=3, lr=1e6)
    kinds = []
    tab.snapshot_received.connect(lambda s: kinds.append(s.kind))
    tab.start()
    wait_state(qtbot, tab, "paused")
    assert "diverged" in kinds
    text = tab.banner.text()
    assert tab.banner.isVisible()
    assert "batch" in text and "learning rate" in text and "too high" in text
    # Paused: the training thread is blocked, the weights can be read.
    for p in tab.trainer.model.parameters():
        assert np.isfinite(p.value).all(), p.name
    # The maps and the drawing canvas show the restored weights: a pass of
    # the monitored sample with the model as it is now gives the shown numbers.
    tab.views.setCurrentIndex(1)
    qtbot.wait(100)
    now = tab.trainer.probe.sample_pass(tab.trainer.model.state_dict())
    pred = int(np.argmax(now["sample_probs"]))
    assert tab.maps.caption.endswith(f"predicted {pred} ({now['sample_probs'][pred]:.0%})")
    for name, value in tab.trainer.model.state_dict().items():
        np.testing.assert_array_equal(tab._latest_weights[name], value)
    # The user lowers the rate and resumes; training goes on with finite losses.
    bad_step = tab.trainer.step
    tab.setup.lr.setValue(0.01)
    tab.resume()
    assert not tab.banner.isVisible()
    qtbot.waitUntil(lambda: tab.trainer.step >= bad_step + 3, timeout=20_000)
    assert np.isfinite(tab.trainer.history.loss[bad_step:]).all()
    tab.stop()
    wait_state(qtbot, tab, "stopped")


def test_save_load_resume_continues_the_history(qtbot, make_tab, tmp_path):
    tab = make_tab(epochs=2)
    tab.start()
    qtbot.waitUntil(lambda: tab.trainer.step >= 5, timeout=20_000)
    tab.pause()
    wait_state(qtbot, tab, "paused")
    saved_step = tab.trainer.step
    path = tmp_path / "run.npz"
    tab.save_checkpoint(path)
    assert path.is_file() and not tab.has_unsaved_model()
    assert load(path).num_params == tab.trainer.model.num_params    # also a model file
    tab.export_csv(tmp_path / "history.csv")
    rows = (tmp_path / "history.csv").read_text().splitlines()
    assert len(rows) == saved_step + 1 and rows[0].startswith("step,samples_seen,loss")
    tab.export_curves_png(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    weights = tab.trainer.model.state_dict()
    tab.stop()
    wait_state(qtbot, tab, "stopped")

    other = make_tab()
    other.load_checkpoint(path)
    assert other.trainer.step == saved_step and not other.has_unsaved_model()
    for k, v in weights.items():
        assert np.array_equal(other.trainer.model.state_dict()[k], v)
    assert other.curves.batch["loss"].total == saved_step    # the curves show the history
    assert other.start_button.text() == "Continue"
    other.start_button.click()
    qtbot.waitUntil(lambda: other.trainer.step >= saved_step + 3, timeout=20_000)
    other.stop()
    wait_state(qtbot, other, "stopped")
    h = other.trainer.history
    assert np.array_equal(h.step, np.arange(1, h.n_batches + 1))     # one continuous history
    assert other.curves.batch["loss"].total == h.n_batches


def test_epoch_end_fills_the_views_and_restart_overlays(qtbot, make_tab):
    tab = make_tab(epochs=3)
    tab.start()
    wait_state(qtbot, tab, "finished", timeout=60_000)
    snap_acc = tab.trainer.test_accuracy
    assert snap_acc is not None and snap_acc > 0.7     # 3 epochs of 2,000 images: ~89%
    for i in range(tab.views.count()):
        tab.views.setCurrentIndex(i)
        qtbot.wait(150)
    # Evaluation: the confusion matrix counts the 500 test images; a click on
    # a cell fills the gallery with that cell's images.
    cm = tab.evaluation.matrix.counts
    assert cm.sum() == N_TEST and np.trace(cm) / N_TEST == pytest.approx(snap_acc)
    tab.views.setCurrentWidget(tab.evaluation)
    matrix = tab.evaluation.matrix
    qtbot.waitExposed(matrix)
    centre = matrix.mapFromScene(matrix.getPlotItem().vb.mapViewToScene(QPointF(7.5, 7.5)))
    qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton, pos=centre)   # a real click
    assert len(tab.evaluation.gallery.indices) == min(48, cm[7, 7])
    # the clicked cell is outlined; the most-wrong gallery takes the outline away
    assert matrix.selected == (7, 7)
    xs, ys = matrix.outline.getData()
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (7, 8, 7, 8)
    tab.evaluation.wrong_button.click()
    assert matrix.selected is None and len(matrix.outline.getData()[0]) == 0
    tab.evaluation.show_cell(7, 7)
    gallery = tab.evaluation.gallery

    def shown():
        return [label for label in gallery._inner.findChildren(QLabel)
                if not label.pixmap().isNull() and label.isVisibleTo(gallery._inner)]

    tab.evaluation.show_cell(7, 2)          # fewer images: none of the old ones may show,
    assert len(shown()) <= len(gallery.indices) == min(48, cm[7, 2])    # not even now
    qtbot.waitUntil(lambda: len(shown()) == len(gallery.indices), timeout=2_000)
    # Live maps of the monitored sample and conv1's kernels were drawn.
    assert tab.maps.columns and tab.maps.columns[0][0].data.shape == (6, 28, 28)
    assert tab.weights_view.kernels.data.shape == (6, 5, 5)
    # Draw a "1": the canvas predicts with a copy of the trained weights.
    tab.views.setCurrentWidget(tab.digit)
    tab.digit.canvas.draw_stroke([(140, 50), (140, 230)])
    tab.digit.refresh()
    probs = tab.digit.probs
    assert probs is not None and probs.sum() == pytest.approx(1, abs=1e-5)
    assert tab.digit.converted.any(axis=1).sum() == 20

    # Restart from the same initial weights: the old curves stay as an overlay
    # and the new run starts from exactly the same weights.
    first_losses = tab.trainer.history.loss[:3].copy()
    discard = Answer(QMessageBox.StandardButton.Discard)   # the trained run is unsaved
    tab.restart()
    discard.stop()
    assert discard.asked and "not been saved" in discard.asked[0]
    qtbot.waitUntil(lambda: tab.trainer.history.n_batches >= 3, timeout=20_000)
    tab.stop()
    wait_state(qtbot, tab, "stopped")
    assert len(tab.curves.ghosts) == 1
    assert np.allclose(tab.trainer.history.loss[:3], first_losses)


def test_a_model_that_does_not_fit_the_data_gives_a_message(qtbot, make_tab, tmp_path):
    from cnnviz.engine import Flatten, Linear, Sequential, save
    path = tmp_path / "tiny.npz"
    save(Sequential(Flatten(), Linear(5, 10)), path)     # expects 5 inputs, MNIST has 784
    tab = make_tab()
    tab.setup.set_model_file(str(path))
    tab.start()
    assert tab.banner.isVisible() and tab.banner.text().startswith(
        "Cannot train this model on this data: the dataset gives 1x28x28 images and the "
        "network cannot take them (fc1: Linear(5, 10) cannot take input of shape (1, 784))")
    assert tab.runner is None and tab.state == "idle"
    assert tab.start_button.isEnabled()


def choose_file(tab, monkeypatch, path):
    """The Model box's "From file..." as a user picks it: the one file dialog
    answers ``path`` ("" for Cancel)."""
    from PyQt6.QtWidgets import QFileDialog
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args, **kwargs: (str(path), "")))
    index = tab.setup.model.findData("file")
    tab.setup.model.setCurrentIndex(index)
    tab.setup.model.activated.emit(index)


def test_one_file_choice_takes_a_model_a_checkpoint_or_an_architecture(
        qtbot, make_tab, tmp_path, monkeypatch):
    import json

    from cnnviz.engine import Flatten, Linear, Sequential, save
    from cnnviz.gui.training.session import TrainingSession
    tab = make_tab()
    combo = tab.setup.model
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert not any("Architecture file" in t for t in labels)      # one choice, not two
    # a bad file of either kind: one line naming it, no run, the tab keeps working
    bad_arch = tmp_path / "broken.json"
    bad_arch.write_text("{")
    bad_model = tmp_path / "broken.npz"
    bad_model.write_bytes(b"not a zip file")
    # a broken architecture is refused when chosen, the model kept (the
    # file is read whole then); a model file when Start loads it
    choose_file(tab, monkeypatch, bad_arch)
    text = tab.banner.text()
    assert tab.banner.isVisible() and str(bad_arch) in text and "\n" not in text, text
    assert text.endswith("; the model stays LeNet-5.") and tab.setup.model.currentData() == "lenet5"
    for bad in (bad_model,):
        choose_file(tab, monkeypatch, bad)
        tab.start()
        text = tab.banner.text()
        assert tab.banner.isVisible() and str(bad) in text and "\n" not in text, text
        assert "Traceback" not in text
        assert tab.runner is None and tab.state == "idle" and tab.start_button.isEnabled()
    # a trained model (.npz): its own weights
    model = Sequential(Flatten(), Linear(784, 10))
    model.layers[1].params["weight"][...] = 0.25
    save(model, tmp_path / "linear.npz")
    choose_file(tab, monkeypatch, tmp_path / "linear.npz")
    s = tab.setup.settings()
    assert (s.model, s.model_path) == ("file", str(tmp_path / "linear.npz"))
    loaded = TrainingSession.new_model(s)
    assert np.all(loaded.layers[1].params["weight"] == 0.25)
    # Cancel in the dialog keeps the file chosen before
    choose_file(tab, monkeypatch, "")
    assert tab.setup.settings().model_path == str(tmp_path / "linear.npz")
    # an architecture (.json) through the same choice: fresh weights, and it trains
    arch = tmp_path / "net.json"
    arch.write_text(json.dumps({"input_shape": [1, 28, 28], "layers": [
        {"type": "Flatten"}, {"type": "Linear", "out_features": 10}]}))
    choose_file(tab, monkeypatch, arch)
    s = tab.setup.settings()
    assert (s.model, s.model_path) == ("arch", str(arch))
    assert "architecture" in tab.setup.source.text() and str(arch) in tab.setup.source.text()
    tab.start()
    assert not tab.banner.isVisible() or "Training failed" not in tab.banner.text()
    qtbot.waitUntil(lambda: tab.trainer is not None and tab.trainer.step >= 2, timeout=30_000)
    assert [layer.name for layer in tab.trainer.model.layers] == ["flatten1", "fc1"]
    assert not np.all(tab.trainer.model.layers[1].params["weight"] == 0.25)
    tab.stop()
    qtbot.waitUntil(lambda: tab.state in ("stopped", "finished"), timeout=10_000)


def test_an_exception_in_the_training_thread_reaches_the_window(qtbot, make_tab):
    tab = make_tab(epochs=50)
    tab.start()
    qtbot.waitUntil(lambda: tab.trainer.step >= 2, timeout=20_000)
    # Images of the wrong size from here on: the next batch fails inside the
    # engine (fc1 gets 144 features, not 400), in the training thread.
    tab.trainer.train_images = np.ascontiguousarray(tab.trainer.train_images[:, :20, :20])
    wait_state(qtbot, tab, "stopped", timeout=10_000)
    qtbot.waitUntil(lambda: not tab.runner.is_running(), timeout=2_000)
    assert "Training failed" in tab.banner.text() and "expects (N, 400)" in tab.banner.text()
    assert "Traceback" in tab.last_error                  # the details are kept for the log


def test_epoch_points_are_set_again_only_when_they_change(qtbot):
    from cnnviz.gui.training.curves import CurvesPanel
    panel = CurvesPanel()
    qtbot.addWidget(panel)
    values = {"train_loss": 0.5, "test_loss": 0.4, "train_accuracy": 0.9, "test_accuracy": 0.91}
    panel.add_batches(np.array([64, 128]), {"loss": np.array([2.0, 1.5])})
    panel.add_epoch(128, values)
    panel.redraw()
    first = panel.c_test_loss.yData
    panel.add_batches(np.array([192]), {"loss": np.array([1.2])})
    panel.redraw()
    assert panel.c_test_loss.yData is first                # untouched by a batch frame
    # A loaded history with as many epochs but other values must show.
    panel.reset()
    panel.add_epoch(128, {**values, "test_loss": 0.25})
    panel.redraw()
    assert panel.c_test_loss.yData.tolist() == [0.25]


def test_autosave_writes_a_checkpoint_at_each_epoch_end(qtbot, make_tab, tmp_path):
    from cnnviz.engine.trainer import load_checkpoint
    tab = make_tab(epochs=2)
    path = tmp_path / "auto.npz"
    tab.autosave_path.setText(str(path))
    tab.autosave.setChecked(True)
    saved = []
    tab.snapshot_received.connect(lambda s: saved.append(s.epoch) if "autosaved" in s.extra else None)
    tab.start()
    wait_state(qtbot, tab, "finished", timeout=60_000)
    assert saved == [1, 2]
    model, state = load_checkpoint(path)
    assert state["progress"]["epoch"] == 2 and state["progress"]["step"] == tab.trainer.step
    assert not tab.has_unsaved_model()                  # the autosave counts as saved
    assert not list(tmp_path.glob("*.tmp*"))            # atomic: no temporary file left


def test_slow_motion_delays_every_batch_and_changes_mid_run(qtbot, make_tab):
    tab = make_tab(epochs=50)
    tab.slow.setValue(500)                              # half a second per batch
    assert "500 ms" in tab.slow_label.text()
    tab.start()
    qtbot.waitUntil(lambda: tab.trainer.step >= 1, timeout=20_000)
    step = tab.trainer.step
    qtbot.wait(1000)
    assert tab.trainer.step - step <= 3                 # 1 s / 0.5 s, plus the one under way
    tab.slow.setValue(0)                                # full speed from the next batch on
    step = tab.trainer.step
    # 10 batches at 0.5 s would take 5 s; at full speed well under a second, so
    # 4.5 s leaves a loaded machine room and still tells the two apart
    qtbot.waitUntil(lambda: tab.trainer.step >= step + 10, timeout=4_500)
    tab.stop()
    wait_state(qtbot, tab, "stopped")


# --- a failed or discarding action never loses the run (issue 10.7, issue 11.2-3) ----
def stopped_unsaved_run(qtbot, tab, steps=5):
    tab.start()
    qtbot.waitUntil(lambda: tab.trainer.step >= steps, timeout=60_000)
    tab.stop()
    wait_state(qtbot, tab, "stopped")
    qtbot.waitUntil(lambda: not tab.runner.is_running(), timeout=5_000)
    assert tab.has_unsaved_model()
    return tab.trainer, tab.trainer.step


def a_checkpoint(qtbot, make_tab, tmp_path, steps=4):
    other = make_tab(epochs=2)
    other.step()
    qtbot.waitUntil(lambda: other.trainer is not None and other.trainer.step >= 1, timeout=20_000)
    wait_state(qtbot, other, "paused")
    path = tmp_path / "good.npz"
    other.save_checkpoint(path)
    qtbot.waitUntil(path.is_file, timeout=10_000)     # at once, or between two batches
    other.stop()
    wait_state(qtbot, other, "stopped")
    return path, other.trainer.step


def test_a_damaged_checkpoint_leaves_the_run_its_views_and_unsaved_flag(qtbot, make_tab,
                                                                       tmp_path):
    import json
    good, _ = a_checkpoint(qtbot, make_tab, tmp_path)
    text = tmp_path / "notes.npz"
    text.write_text("a text file, not a checkpoint\n")
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    garbled = tmp_path / "garbled.npz"
    np.savez(garbled, **{**arrays, "trainer": np.array(str(arrays["trainer"])[:-9] + "]]")})
    meta = json.loads(str(arrays["trainer"]))
    del meta["progress"]["rng"]
    no_rng = tmp_path / "no-rng.npz"
    np.savez(no_rng, **{**arrays, "trainer": np.array(json.dumps(meta))})

    tab = make_tab(epochs=3)
    trainer, step = stopped_unsaved_run(qtbot, tab)
    points = tab.curves.batch["loss"].total
    for path in (text, garbled, no_rng):
        assert not tab.load_checkpoint(path)      # no question: the file is refused first
        assert tab.trainer is trainer and trainer.step == step and tab.has_unsaved_model()
        assert tab.state == "stopped" and tab.start_button.text() == "Continue"
        assert tab.curves.batch["loss"].total == points
        msg = tab.banner.text()
        assert tab.banner.isVisible() and path.name in msg
        assert "\n" not in msg and "Traceback" not in msg
    assert "rng" in tab.banner.text()


def test_cancel_keeps_the_run_for_every_discarding_action_discard_proceeds(qtbot, make_tab,
                                                                         tmp_path, subset_dir):
    good, saved_step = a_checkpoint(qtbot, make_tab, tmp_path)
    tab = make_tab(epochs=3)
    trainer, step = stopped_unsaved_run(qtbot, tab)

    def cancelled(action):
        cancel = Answer(QMessageBox.StandardButton.Cancel)
        action()
        cancel.stop()
        assert cancel.asked and "has not been saved" in cancel.asked[0], action
        assert tab.trainer is trainer and trainer.step == step and tab.has_unsaved_model()
        assert tab.runner is None or not tab.runner.is_running()
        return cancel.asked[0]

    assert "loading a checkpoint" in cancelled(lambda: tab.load_checkpoint(good))
    assert "new run" in cancelled(tab.restart)
    tab.setup.model.setCurrentIndex(tab.setup.model.findData("small"))      # a model change
    assert tab.start_button.text() == "Start a new run"
    assert "new run" in cancelled(tab.start)
    tab.setup.model.setCurrentIndex(tab.setup.model.findData("lenet5"))
    assert tab.start_button.text() == "Continue"
    tab.setup.set_data_dir(None)                                            # a dataset change
    assert "new run" in cancelled(tab.start)
    tab.setup.set_data_dir(str(subset_dir))

    discard = Answer(QMessageBox.StandardButton.Discard)
    assert tab.load_checkpoint(good)
    discard.stop()
    assert discard.asked and tab.trainer is not trainer
    assert tab.trainer.step == saved_step and not tab.has_unsaved_model()


def test_loading_during_a_run_stops_it_asks_and_loads_in_one_action(qtbot, make_tab, tmp_path):
    good, saved_step = a_checkpoint(qtbot, make_tab, tmp_path)
    tab = make_tab(epochs=50)
    tab.start()
    qtbot.waitUntil(lambda: tab.trainer.step >= 3, timeout=20_000)
    running = tab.runner
    discard = Answer(QMessageBox.StandardButton.Discard)
    assert tab.load_checkpoint(good)
    discard.stop()
    assert discard.asked
    qtbot.waitUntil(lambda: tab.trainer.step == saved_step and tab.state == "stopped",
                    timeout=10_000)
    assert not running.is_running() and not tab.has_unsaved_model()
    assert tab.start_button.text() == "Continue"


def test_a_label_the_model_cannot_have_is_one_line_in_the_banner(qtbot, make_tab, tmp_path):
    train, test = load_mnist(split="train"), load_mnist(split="test")
    labels = train.labels[:N_TRAIN].copy()
    labels[5] = 12
    bad = tmp_path / "labels-to-12"
    bad.mkdir()
    write_idx(bad / "train-images-idx3-ubyte", train.images[:N_TRAIN])
    write_idx(bad / "train-labels-idx1-ubyte", labels)
    write_idx(bad / "t10k-images-idx3-ubyte", test.images[:N_TEST])
    write_idx(bad / "t10k-labels-idx1-ubyte", test.labels[:N_TEST])
    tab = make_tab()
    tab.setup.set_data_dir(str(bad))
    tab.start()
    assert tab.banner.isVisible() and tab.banner.text() == (
        "Cannot train on this dataset: its training set has label 12, but the model has "
        "10 outputs (labels 0-9).")
    assert tab.runner is None and tab.state == "idle" and tab.trainer is None


def test_continue_keeps_the_runs_rate_and_epochs_replan_the_run(qtbot, make_tab):
    tab = make_tab(epochs=3, lr=0.05)
    trainer, step = stopped_unsaved_run(qtbot, tab, steps=22)   # past the warm-up (96 // 5)
    lr = trainer.lr
    assert lr < 0.05 and tab.setup.lr.value() == pytest.approx(lr, rel=1e-5)   # the run's
    tab.setup.epochs.setValue(6)                 # applies to the run, no restart
    assert trainer.config.epochs == 6 and "6 epochs" in tab.status.text()
    assert tab.start_button.text() == "Continue" and trainer.lr == pytest.approx(lr)
    tab.start()                                  # Continue: the same run, at its own rate
    qtbot.waitUntil(lambda: trainer.step >= step + 2, timeout=20_000)
    assert tab.trainer is trainer and trainer.history.lr[step] == pytest.approx(lr)
    tab.stop()
    wait_state(qtbot, tab, "stopped")


FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def test_every_view_names_the_classes_of_the_dataset(qtbot, make_tab, subset_dir, tmp_path):
    named = tmp_path / "named"
    named.mkdir()
    for f in subset_dir.iterdir():
        (named / f.name).write_bytes(f.read_bytes())
    (named / "classes.txt").write_text("\n".join(FASHION) + "\n")
    tab = make_tab(epochs=1)
    tab.setup.set_data_dir(str(named))
    label = int(load_mnist(named, "test").labels[0])
    tab.sample_index.setValue(0)
    tab._choose_sample(0)
    assert tab.sample_caption.text() == f"label {label} ({FASHION[label]})"
    tab.start()
    wait_state(qtbot, tab, "finished", timeout=60_000)
    for page in (tab.evaluation, tab.views.widget(1), tab.digit):
        tab.views.setCurrentWidget(page)
        qtbot.wait(150)
    matrix = tab.evaluation.matrix
    ticks = matrix.getPlotItem().getAxis("left")._tickLevels[0]
    assert [t[1] for t in ticks] == FASHION                       # rows: full names
    bottom = [t[1] for t in matrix.getPlotItem().getAxis("bottom")._tickLevels[0]]
    assert bottom[3] == "Dress" and bottom[0] == "T-shi\u2026"     # columns: short
    tab.evaluation.show_cell(7, 7)
    assert tab.evaluation.gallery.title.text().startswith("True Sneaker, predicted Sneaker: ")
    captions = [w.text() for w in tab.evaluation.gallery._inner.findChildren(QLabel)
                if w.text().startswith("#") and w.isVisibleTo(tab.evaluation.gallery._inner)]
    assert captions and all("Sneaker\n→ Sneaker " in c for c in captions)
    assert f"label {label} ({FASHION[label]})" in tab.maps.caption
    tab.views.setCurrentWidget(tab.digit)
    tab.digit.canvas.draw_stroke([(140, 50), (140, 230)])
    tab.digit.refresh()
    best = int(np.argmax(tab.digit.probs))
    assert tab.digit.answer.text().startswith(f"It sees: <b>{FASHION[best]}</b>")


def test_saves_exports_and_rate_changes_are_acknowledged_on_the_status_line(qtbot, make_tab,
                                                                           tmp_path):
    tab = make_tab(epochs=3)
    stopped_unsaved_run(qtbot, tab, steps=3)
    heard = []
    tab.message.connect(heard.append)
    checks = [
        (lambda: tab.save_checkpoint(tmp_path / "c.npz"),
         f"checkpoint saved to {tmp_path / 'c.npz'} (step {tab.trainer.step})"),
        (lambda: tab.export_csv(tmp_path / "h.csv"), f"history written to {tmp_path / 'h.csv'}"),
        (lambda: tab.export_curves_png(tmp_path / "c.png"),
         f"curves written to {tmp_path / 'c.png'}"),
        (lambda: tab.setup.lr.setValue(0.0125), "learning rate 0.0125 from the next batch"),
        (lambda: tab.setup.momentum.setValue(0.5), "momentum 0.5 from the next batch"),
    ]
    for act, said in checks:
        act()
        assert tab.status.text().split("\n")[-1].endswith(said)    # in the tab itself
        assert heard[-1] == said                                    # and the status bar
    assert (tmp_path / "c.npz").is_file() and (tmp_path / "h.csv").is_file()


def test_a_new_sample_shows_its_maps_at_once_when_not_running(qtbot, make_tab):
    tab = make_tab(epochs=3)
    stopped_unsaved_run(qtbot, tab, steps=3)
    tab.views.setCurrentIndex(1)
    qtbot.wait(100)
    test = load_mnist(tab.setup.settings().data_dir, "test")
    for index in (11, 4):              # a 6, then a 4: no snapshot comes while stopped
        tab.sample_index.setValue(index)
        label = int(test.labels[index])
        assert tab.maps.caption.startswith(f"input: label {label}<br>")
        assert tab.sample_caption.text() == f"label {label}"
        np.testing.assert_allclose(tab.maps.input_view.data[0], test.images[index] / np.float32(255))


def test_the_evaluation_shows_its_progress_and_stop_ends_it_at_once(qtbot, tmp_path):
    """10,000 test images after 256 training images: the epoch end's
    evaluation lasts seconds. The status counts the images; Stop ends it
    within a chunk (before: the whole evaluation, 1.3-2.7 s), and no
    half-evaluated result reaches the views; Continue evaluates it again."""
    train, test = load_mnist(split="train"), load_mnist(split="test")
    d = tmp_path / "big-test"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", train.images[:256])
    write_idx(d / "train-labels-idx1-ubyte", train.labels[:256])
    write_idx(d / "t10k-images-idx3-ubyte", test.images)
    write_idx(d / "t10k-labels-idx1-ubyte", test.labels)
    tab = TrainingTab(data_dir=str(d))
    qtbot.addWidget(tab)
    tab.setup.epochs.setValue(2)
    tab.show()
    tab.start()
    try:
        qtbot.waitUntil(lambda: "Evaluating the test set at the end of epoch 1: "
                        in tab.status.text(), timeout=30_000)
        shown = tab.status.text().split("\n")[1]
        done = int(shown.split(": ")[1].split(" / ")[0].replace(",", ""))
        assert shown.endswith(" / 10,000") and 0 <= done < 10_000
        t0 = time.perf_counter()
        tab.stop()
        qtbot.waitUntil(lambda: tab.state == "stopped", timeout=5_000)
        took = time.perf_counter() - t0
        assert took < 1.0, f"Stop took {took:.2f} s during the evaluation"
        assert tab.trainer.epoch == 0 and tab.evaluation.probs is None
        assert tab.curves.epoch["test_accuracy"] == ([], [])
        tab._on_frame(force=True)
        assert "Evaluating" not in tab.status.text()
        tab.start()                                     # Continue: evaluated, then epoch 2
        qtbot.waitUntil(lambda: tab.trainer.epoch >= 1, timeout=30_000)
        qtbot.waitUntil(lambda: len(tab.curves.epoch["test_accuracy"][0]) == 1, timeout=5_000)
    finally:
        tab.shutdown(5.0)           # first: a batch after the mark would ask at the close
        tab.session.mark_saved(tab.trainer, tab.trainer.step)


def test_after_a_dataset_change_the_monitored_image_comes_from_the_new_dataset(
        qtbot, make_tab, subset_dir, tmp_path):
    other = tmp_path / "reversed"
    other.mkdir()
    test = load_mnist(subset_dir, "test")
    for f in subset_dir.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    write_idx(other / "t10k-images-idx3-ubyte", test.images[::-1].copy())
    write_idx(other / "t10k-labels-idx1-ubyte", test.labels[::-1].copy())
    tab = make_tab(epochs=3)
    stopped_unsaved_run(qtbot, tab, steps=2)
    tab.views.setCurrentIndex(1)
    tab.setup.set_data_dir(str(other))
    discard = Answer(QMessageBox.StandardButton.Discard)
    tab.start()                                   # a new run on the other dataset
    discard.stop()
    index = tab.sample_index.value()
    new = test.images[::-1][index] / np.float32(255)
    np.testing.assert_array_equal(tab._sample[0], new)
    assert tab.sample_caption.text() == f"label {int(test.labels[::-1][index])}"
    qtbot.waitUntil(lambda: tab.maps.input_view is not None and
                    np.array_equal(tab.maps.input_view.data[0], new), timeout=20_000)
    tab.stop()
    wait_state(qtbot, tab, "stopped")


def test_the_banner_does_not_push_the_page_down_nor_the_state_the_status_sideways(qtbot,
                                                                                  make_tab):
    tab = make_tab()
    qtbot.waitExposed(tab)
    page_y, status_x = tab.views.mapTo(tab, tab.views.rect().topLeft()).y(), tab.status.x()
    tab._show_error("Cannot train on this dataset: a message of some length, "
                    "long enough to wrap onto a second line in a narrower window. " * 2)
    qtbot.wait(50)
    assert tab.banner.isVisible()
    assert tab.views.mapTo(tab, tab.views.rect().topLeft()).y() == page_y
    for label in ("running", "paused (diverged)", "finished", "idle"):
        tab.state_label.setText(label)
        qtbot.wait(20)
        assert tab.status.x() == status_x


def test_a_closing_program_leaves_a_batch_in_flight_but_no_file_write(qtbot, make_tab,
                                                                        tmp_path):
    """shutdown(for_exit=True), the real program's close (the process ends
    next): a batch in flight is not waited for (a big one takes seconds),
    but the training thread can write no file any more; a plain shutdown
    afterwards calls the exit off and the thread ends normally."""
    # The full MNIST in batches of 4,096 on one process (0.3 s or more a
    # batch on any CPU we know). The close comes 20-80 ms after the training
    # thread emitted a batch's snapshot, timed in that thread: it is then past
    # its between-batches work (where a stop ends it at once) and inside the
    # next batch. Waiting for the snapshot to reach the window instead failed
    # on a CI machine, where it arrived when that next batch had ended too.
    tab = make_tab(epochs=5, data_dir=None, workers=1)
    tab.setup.batch_size.setValue(4096)
    tab.start()
    emitted = []                                # (step, time) as the thread emits them
    tab.runner.worker.snapshot.connect(
        lambda snap: emitted.append((snap.step, time.perf_counter())),
        Qt.ConnectionType.DirectConnection)

    def just_inside_a_batch():
        return (bool(emitted) and emitted[-1][0] >= 1
                and 0.02 <= time.perf_counter() - emitted[-1][1] <= 0.08)
    qtbot.waitUntil(just_inside_a_batch, timeout=120_000)
    tab.export_csv(tmp_path / "late.csv")                            # for the next snapshot
    t0 = time.perf_counter()
    assert tab.shutdown(for_exit=True)
    assert time.perf_counter() - t0 < 0.5
    assert tab.runner.is_running()
    step = tab.trainer.step
    qtbot.waitUntil(lambda: tab.trainer.step > step, timeout=120_000)  # the batch ended ...
    qtbot.wait(300)
    assert not (tmp_path / "late.csv").exists()                       # ... but wrote nothing
    assert tab.shutdown(10.0) and not tab.runner.is_running()
    assert (tmp_path / "late.csv").exists()


def test_the_set_up_column_fits_its_width_at_1400x900(qtbot, make_tab):
    """The left column scrolls only up and down: every field and button of
    it lies inside its viewport's width (a long Model entry once widened it
    past the viewport and cut the buttons' right halves off)."""
    from PyQt6.QtWidgets import QAbstractButton, QComboBox, QScrollArea, QWidget
    tab = make_tab()
    qtbot.waitExposed(tab)
    qtbot.wait(100)                     # the layout settled
    column = next(s for s in tab.findChildren(QScrollArea) if tab.setup.isAncestorOf(s.widget())
                  or s.widget().isAncestorOf(tab.setup))
    viewport = column.viewport()
    widest = max((w for w in column.widget().findChildren(QWidget) if w.isVisible()),
                 key=lambda w: w.minimumSizeHint().width())
    assert column.widget().width() <= viewport.width(), (
        column.widget().width(), viewport.width(), type(widest).__name__,
        widest.minimumSizeHint().width(), getattr(widest, "text", lambda: "")())
    for w in column.widget().findChildren((QComboBox, QAbstractButton)):
        if w.isVisible():
            right = w.mapTo(viewport, w.rect().topRight()).x()
            assert right < viewport.width(), (type(w).__name__, w.objectName() or
                                              getattr(w, "text", lambda: "")(), right,
                                              viewport.width())


def test_the_weights_box_chooses_what_the_test_runs_on_and_a_checkpoint_brings_it_back(
        qtbot, make_tab, tmp_path):
    tab = make_tab(epochs=1)
    box = tab.setup.average
    assert box.isChecked() and box.isEnabled()               # the trainer's default
    tab.start()
    assert not box.isEnabled()                               # part of the run's structure
    qtbot.waitUntil(lambda: tab.state == "finished", timeout=60_000)
    trainer = tab.trainer
    assert trainer.config.average
    qtbot.waitUntil(lambda: "test accuracy" in tab.status.text(), timeout=5_000)   # throttled
    assert "(averaged weights)" in tab.status.text()
    tab.views.setCurrentWidget(tab.evaluation)               # of the same weights
    qtbot.waitUntil(lambda: "After epoch 1 (averaged weights): test accuracy"
                    in tab.evaluation.summary.text(), timeout=5_000)
    # the finished model holds the weights the test measured
    np.testing.assert_array_equal(
        np.concatenate([p.value.ravel() for p in trainer.params]), trainer.average.flat)
    path = tmp_path / "averaged.npz"
    tab.save_checkpoint(path)

    other = make_tab(epochs=1)
    other.setup.average.setChecked(False)                    # a new run without it
    other.start()
    qtbot.waitUntil(lambda: other.state == "finished", timeout=60_000)
    assert other.trainer.average is None and not other.trainer.config.average
    qtbot.waitUntil(lambda: "test accuracy" in other.status.text(), timeout=5_000)
    assert "averaged" not in other.status.text()
    discard = Answer(QMessageBox.StandardButton.Discard)     # its trained run is unsaved
    assert other.load_checkpoint(path)                       # the box follows the file
    discard.stop()
    assert discard.asked
    # installed once the finished run's thread has ended (it may still be on its way out)
    qtbot.waitUntil(lambda: other.trainer.config.average, timeout=10_000)
    assert other.setup.average.isChecked()
