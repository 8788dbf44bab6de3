"""The Training tab: LeNet-5 on MNIST in a worker thread, everything on screen.

Data flow: the trainer runs in a TrainingRunner's thread and yields
snapshots (copies) about 15 times a second; ``_on_snapshot`` (GUI thread)
only files them (appends curve points, keeps the newest maps and weights);
``_on_frame``, driven by a QTimer at 15 Hz, redraws what is visible. So the
GUI's per-snapshot work is tiny and its per-frame work is bounded.

Anything that reads the trainer's state (checkpoints, CSV export) runs
between batches: in the training thread through ``_between_batches`` while
it runs, or directly while the thread is blocked in a pause or gone.
"""

from __future__ import annotations

import queue
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout,
                             QLabel, QLineEdit, QMessageBox, QPushButton, QScrollArea,
                             QSizePolicy, QSlider, QSpinBox, QSplitter, QTabWidget, QVBoxLayout,
                             QWidget)

from cnnviz.data.mnist import load_mnist
from cnnviz.engine.models import MODELS
from cnnviz.engine.serialization import ModelFileError, load
from cnnviz.engine.trainer import TrainConfig, Trainer, load_checkpoint
from cnnviz.gui.training.curves import CurvesPanel
from cnnviz.gui.training.draw_canvas import DigitPanel
from cnnviz.gui.training.evaluation import EvaluationPanel
from cnnviz.gui.training.inside import MapsView, WeightsView
from cnnviz.gui.training.probe import Probe
from cnnviz.gui.training.setup_panel import SetupPanel
from cnnviz.gui.training.worker import TrainingRunner
from cnnviz.gui.widgets.plot_cache import cache_static_items, ignore_activation
from cnnviz.gui.widgets.png_export import save_widget_png

FRAME_MS = 100           # how often the GUI looks for new data
# Every moment the GUI thread draws is CPU (and GIL) taken from training
# (bench/gui_training.py, interleaved references: 15 Hz snapshots and status
# with 2.5 Hz plots trained at ~85% of the headless speed, 10 Hz and 2 Hz at
# ~90%). The status line is text that changes at every update: 5 times a
# second reads as live. Plots repaint twice a second (a frame of a page of
# plots costs 5-10 ms of the GUI thread, twice that while training runs).
STATUS_INTERVAL = 0.2
PLOT_INTERVAL = 0.5
SNAPSHOT_INTERVAL = 1 / 10
# While training runs, the GUI thread competes with the training thread for
# the GIL. Each time the GUI thread releases it (Qt calls do, many times a
# frame) it may wait a whole switch interval (5 ms by default) to get it back,
# so one frame could stall for 100+ ms. A short interval bounds that wait; it
# is set for the duration of a run and restored afterwards. Measured with
# bench/gui_training.py (longest stall when a page is switched to mid-run):
# 5 ms -> 98 ms, 2 ms -> 67 ms, 0.1 ms -> 47 ms, at the same throughput.
RUN_SWITCH_INTERVAL = 0.0001
# A page switched to mid-run is painted whole at once; bringing its data up
# to date in the same moment made one 50-80 ms stall. Its data follow this
# much later instead: two stalls of at most ~40 ms.
PAGE_REFRESH_DELAY_MS = 80


def _fmt_time(seconds) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class TrainingTab(QWidget):
    run_state_changed = pyqtSignal(str)      # "idle" | "running" | "paused" | "stopped" | "finished"
    snapshot_received = pyqtSignal(object)   # every snapshot, after it was filed (tests, bench)
    message = pyqtSignal(str)                # for a status bar

    def __init__(self, parent=None, data_dir: str | None = None):
        super().__init__(parent)
        self.trainer: Trainer | None = None
        self.runner: TrainingRunner | None = None
        self.state = "idle"
        self.run_count = 0
        self._run_label = ""
        self._settings_key = None
        self._initial_weights = None      # for "restart from the same initial weights"
        self._initial_arch_model = None
        self._saved_step = 0
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._latest = None               # newest snapshot not yet drawn
        self._latest_maps = None          # newest probe payload with maps
        self._latest_weights = None
        self._latest_eval = None
        self._weights_dirty = self._eval_dirty = False
        self._last_plot = 0.0
        self._last_status = 0.0
        self._ema = None                  # smoothed loss per batch (for the curve)
        self._data_cache: dict = {}
        self._step_in_flight = False
        self._step_when_paused = False
        self._old_runners: list[TrainingRunner] = []   # stopped late: keep until finished
        self._sample = None
        self._switch_interval = None      # the interpreter's, while a run changes it
        self._autosave_to: str | None = None    # read by the training thread: a plain str
        self.last_error = ""

        self.setup = SetupPanel()
        if data_dir is not None:
            self.setup.set_data_dir(str(data_dir))
        self.setup.lr_changed.connect(self._lr_edited)
        self.setup.momentum_changed.connect(self._momentum_edited)
        left = QVBoxLayout()
        left.addWidget(self.setup)
        left.addWidget(self._build_controls())
        left.addWidget(self._build_files())
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_scroll = QScrollArea()
        left_scroll.setWidget(left_widget)
        left_scroll.setWidgetResizable(True)
        left_scroll.setMinimumWidth(330)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.curves = CurvesPanel()
        self.maps = MapsView()
        self.weights_view = WeightsView()
        self.evaluation = EvaluationPanel()
        self.digit = DigitPanel()
        self.views = QTabWidget()
        self.views.addTab(self._curves_page(), "Curves")
        self.views.addTab(self._maps_page(), "Feature && gradient maps")
        self.views.addTab(self.weights_view, "Weights && gradients")
        self.views.addTab(self.evaluation, "Evaluation")
        self.views.addTab(self.digit, "Draw a digit")
        self.views.currentChanged.connect(self._page_changed)
        ignore_activation(self.views)

        self.state_label = QLabel("")          # bold; changes with the run's state only
        bold = self.state_label.font()
        bold.setBold(True)
        self.state_label.setFont(bold)
        self.state_label.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.status = QLabel("Set up a run and press Start.")
        # Plain text on two fixed lines: as rich, word-wrapped text at 10 Hz
        # it took 1.3% of the GUI thread's time while training (~1.5 ms an
        # update); plain text costs a third of that, and it updates at 5 Hz.
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setAlignment(Qt.AlignmentFlag.AlignTop)
        # Fixed height: a label that changes its height with its text makes the
        # whole tab re-lay out (and every plot repaint) at each frame. Ignored
        # width: a long line is cut at the edge instead of widening the window.
        self.status.setFixedHeight(2 * self.status.fontMetrics().lineSpacing() + 6)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        status_row = QHBoxLayout()
        status_row.addWidget(self.state_label)
        status_row.addWidget(self.status, 1)
        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("color: #b00020; font-weight: bold;")
        self.banner.hide()
        right = QVBoxLayout()
        right.addWidget(self.banner)
        right.addLayout(status_row)
        right.addWidget(self.views, 1)
        right_widget = QWidget()
        right_widget.setLayout(right)
        split = QSplitter()
        split.addWidget(left_scroll)
        split.addWidget(right_widget)
        split.setStretchFactor(1, 1)
        split.setSizes([330, 1070])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)

        self.frame_timer = QTimer(self)
        self.frame_timer.setInterval(FRAME_MS)
        self.frame_timer.timeout.connect(self._on_frame)
        self._set_state("idle")

    # --- building ------------------------------------------------------------------
    def _build_controls(self) -> QGroupBox:
        box = QGroupBox("Run")
        grid = QGridLayout(box)
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.step_button = QPushButton("Step one batch")
        self.stop_button = QPushButton("Stop")
        self.restart_button = QPushButton("Restart from the same initial weights")
        self.restart_button.setToolTip("A new run from the same seed and initial weights, "
                                       "with the current settings; the previous run's curves "
                                       "stay as dashed overlays for comparison.")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.step_button.clicked.connect(self.step)
        self.stop_button.clicked.connect(self.stop)
        self.restart_button.clicked.connect(self.restart)
        grid.addWidget(self.start_button, 0, 0)
        grid.addWidget(self.pause_button, 0, 1)
        grid.addWidget(self.step_button, 1, 0)
        grid.addWidget(self.stop_button, 1, 1)
        grid.addWidget(self.restart_button, 2, 0, 1, 2)
        self.slow = QSlider(Qt.Orientation.Horizontal)
        self.slow.setRange(0, 1000)
        self.slow.setSingleStep(50)
        self.slow.setPageStep(100)
        self.slow.valueChanged.connect(self._slow_changed)
        self.slow_label = QLabel("Slow motion: off")
        grid.addWidget(self.slow_label, 3, 0, 1, 2)
        grid.addWidget(self.slow, 4, 0, 1, 2)
        return box

    def _build_files(self) -> QGroupBox:
        box = QGroupBox("Keep the work")
        grid = QGridLayout(box)
        buttons = [("Save checkpoint...", self._ask_save_checkpoint),
                   ("Load checkpoint...", self._ask_load_checkpoint),
                   ("Export history CSV...", self._ask_export_csv),
                   ("Export curves PNG...", self._ask_export_png)]
        for i, (label, slot) in enumerate(buttons):
            b = QPushButton(label)
            b.clicked.connect(slot)
            grid.addWidget(b, i // 2, i % 2)
        self.autosave = QCheckBox("Autosave a checkpoint at each epoch end")
        self.autosave_path = QLineEdit(str(Path.home() / "cnnviz-autosave.npz"))
        self.autosave_path.setToolTip("Overwritten at each epoch end (atomically).")
        self.autosave.toggled.connect(self._autosave_changed)
        self.autosave_path.textChanged.connect(self._autosave_changed)
        grid.addWidget(self.autosave, 2, 0, 1, 2)
        grid.addWidget(self.autosave_path, 3, 0, 1, 2)
        return box

    def _autosave_changed(self, *_):
        path = self.autosave_path.text().strip()
        self._autosave_to = path if self.autosave.isChecked() and path else None

    def _curves_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.x_epochs = QCheckBox("x axis in epochs (else samples seen)")
        self.x_epochs.toggled.connect(self.curves.set_x_in_epochs)
        clear = QPushButton("Clear overlays")
        clear.clicked.connect(self.curves.clear_overlays)
        bar.addWidget(self.x_epochs)
        bar.addStretch(1)
        bar.addWidget(clear)
        v.addLayout(bar)
        v.addWidget(self.curves, 1)
        return page

    def _maps_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Monitored test image #"))
        self.sample_index = QSpinBox(minimum=0, maximum=9999, value=0)
        self.sample_index.setKeyboardTracking(False)
        self.sample_index.valueChanged.connect(self._choose_sample)
        random_button = QPushButton("Random")
        random_button.clicked.connect(lambda: self.sample_index.setValue(
            int(np.random.default_rng().integers(0, self.sample_index.maximum() + 1))))
        self.sample_caption = QLabel("")
        bar.addWidget(self.sample_index)
        bar.addWidget(random_button)
        bar.addWidget(self.sample_caption, 1)
        v.addLayout(bar)
        v.addWidget(self.maps, 1)
        return page

    # --- data and model ----------------------------------------------------------------
    def _data(self, data_dir):
        key = data_dir
        if key not in self._data_cache:
            train, test = load_mnist(data_dir, "train"), load_mnist(data_dir, "test")
            self._data_cache = {key: ((train.images, train.labels),
                                      (test.images, test.labels))}
        return self._data_cache[key]

    def test_set(self):
        return self._data(self.setup.settings().data_dir)[1]

    def _choose_sample(self, index: int) -> None:
        try:
            images, labels = self.test_set()
        except (OSError, ValueError) as e:
            self._show_error(f"Cannot read the dataset: {e}")
            return
        index = min(index, len(labels) - 1)
        self.sample_index.setMaximum(len(labels) - 1)
        self._sample = (images[index] / np.float32(255), int(labels[index]))
        self.sample_caption.setText(f"label {labels[index]}")
        if self.trainer is not None and isinstance(self.trainer.probe, Probe):
            self.trainer.probe.set_sample(*self._sample)

    def _new_model(self, s):
        if s.model == "file":
            if not s.model_path:
                raise ValueError("choose a model file first")
            return load(s.model_path)
        return MODELS[s.model](seed=s.seed)

    def _config(self, s) -> TrainConfig:
        return TrainConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr,
                           optimizer=s.optimizer, momentum=s.momentum,
                           weight_decay=s.weight_decay, seed=s.seed, limit=s.limit,
                           shift=s.shift, snapshot_interval=SNAPSHOT_INTERVAL,
                           delay=self.slow.value() / 1000, lr_schedule=s.lr_schedule,
                           pause_on_divergence=True)

    @staticmethod
    def _key(s) -> tuple:
        d = asdict(s)
        d.pop("lr"), d.pop("momentum")     # these may change during a run
        return tuple(sorted(d.items()))

    def _make_trainer(self, model, s) -> Trainer:
        train, test = self._data(s.data_dir)
        if self._sample is None:
            self._choose_sample(self.sample_index.value())
        probe = Probe(model, *self._sample)
        return Trainer(model, train, test, self._config(s), probe=probe)

    # --- run control ---------------------------------------------------------------
    def start(self) -> None:
        """Start a new run, or continue a stopped one with unchanged settings."""
        if self.runner is not None and self.runner.is_running():
            if self.trainer.paused:
                self.resume()
            return
        s = self.setup.settings()
        try:
            if (self.trainer is None or self.state == "finished"
                    or self._key(s) != self._settings_key):
                self._new_run(s, keep_overlay=self.trainer is not None)
            else:
                self.trainer.set_lr(s.lr)
        except (OSError, ValueError) as e:
            self._show_error(f"Cannot start: {e}")
            return
        self._launch()

    def _new_run(self, s, keep_overlay: bool, model=None) -> None:
        model = model if model is not None else self._new_model(s)
        self._initial_weights = model.state_dict()
        self._initial_settings = s
        if keep_overlay and self.curves.batch["loss"].total:
            self.curves.freeze_run(self._run_label)
        else:
            self.curves.reset()
        self.weights_view.reset()
        self.trainer = self._make_trainer(model, s)
        self._settings_key = self._key(s)
        self.run_count += 1
        self._run_label = (f"run {self.run_count}: {s.optimizer} lr {s.lr:g}"
                           f"{f' m {s.momentum:g}' if s.momentum else ''} bs {s.batch_size}")
        self.curves.samples_per_epoch = self.trainer.n_train
        self.curves.set_run_length(self.trainer.config.epochs * self.trainer.n_train)
        self.weights_view.set_run_length(self.trainer.config.epochs * self.trainer.n_train)
        self.curves.set_lr_range(self.trainer.base_lr)
        self._ema = None
        self._saved_step = 0
        self.digit.set_model(model)
        self.banner.hide()

    def _prime_views(self) -> None:
        """Build and fill the live views from the model as it is, before the
        training thread starts (so reading the model here is safe). Building
        the maps' two dozen view boxes takes ~100 ms once; done here, at the
        click, it never shows up as a stall while training runs."""
        first = self.trainer.probe(self.trainer)
        weights = first["weights"]
        self.weights_view.prepare(self.trainer.probe.param_layers)
        cache_static_items(self.views)      # after the last plot is built
        self.weights_view.add(self.trainer.samples_seen, first)
        self.weights_view.redraw()
        self._latest_maps = first
        self._latest_weights, self._weights_dirty = weights, True
        self._on_frame(force=True, all_views=True)
        if self.isVisible() and self.trainer.step == 0:
            # Render every page once off screen, at the visible page's size
            # (hidden pages of a QTabWidget keep their old size until shown):
            # the first layout and paint of a page full of plots is the slow
            # one, and a first visit mid-run then re-lays out nothing.
            size = self.views.currentWidget().size()
            for i in range(self.views.count()):
                self.views.widget(i).resize(size)
                self.views.widget(i).grab()

    def _launch(self) -> None:
        try:
            # The first probe runs the model once, here: a model that does
            # not fit the data fails now, with a message, not in the thread.
            self._prime_views()
        except (ValueError, TypeError) as e:
            self._show_error(f"Cannot train this model on this data: {e}")
            self._set_state("idle")
            return
        if self.runner is not None and self.runner.is_running():
            self._old_runners.append(self.runner)
        self._old_runners = [r for r in self._old_runners if r.is_running()]
        runner = self.runner = TrainingRunner(self.trainer, after_snapshot=self._between_batches)
        # Snapshots still queued from an earlier run must not reach this one's curves.
        runner.snapshot.connect(lambda s: self._on_snapshot(s) if runner is self.runner else None)
        runner.failed.connect(lambda t: self._on_failed(t) if runner is self.runner else None)
        runner.finished.connect(lambda: self._on_thread_finished()
                                if runner is self.runner else None)
        if self._switch_interval is None:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(RUN_SWITCH_INTERVAL)
        runner.start()
        self.frame_timer.start()
        self._set_state("running")

    def restart(self) -> None:
        """Same seed, same initial weights, current settings; old curves stay as overlays."""
        if not self.shutdown(timeout=2.0):
            self._show_error("The previous run did not stop in time.")
            return
        s = self.setup.settings()
        try:
            if self._initial_weights is not None and s.model == self._initial_settings.model \
                    and s.seed == self._initial_settings.seed:
                model = self._new_model(s)
                model.load_state_dict(self._initial_weights)
            else:
                model = None
            self._new_run(s, keep_overlay=True, model=model)
        except (OSError, ValueError) as e:
            self._show_error(f"Cannot restart: {e}")
            return
        self._launch()

    def toggle_pause(self) -> None:
        if self.trainer is None or self.runner is None or not self.runner.is_running():
            return
        if self.state == "paused":
            self.resume()
        else:
            self.pause()

    def pause(self) -> None:
        if self.trainer is not None:
            self.trainer.request_pause()

    def resume(self) -> None:
        if self.trainer is None:
            return
        if self.runner is None or not self.runner.is_running():
            self.start()
            return
        self.banner.hide()
        self.trainer.request_resume()
        self._set_state("running")

    def step(self) -> None:
        """One batch, then paused (starts a paused run if there is none)."""
        if self.runner is None or not self.runner.is_running():
            self.start()
            if self.trainer is not None and self.runner is not None:
                self._step_when_paused = True
                self.trainer.request_pause()
            return
        if self.trainer.paused:
            self._step_in_flight = True
        self.trainer.request_step()

    def stop(self) -> None:
        if self.trainer is not None and self.runner is not None and self.runner.is_running():
            self.trainer.request_stop()

    def _lr_edited(self, lr: float) -> None:
        if self.trainer is not None and self.runner is not None and self.runner.is_running():
            self.trainer.set_lr(lr)
            self.message.emit(f"learning rate {lr:g} from the next batch")

    def _momentum_edited(self, m: float) -> None:
        if self.trainer is not None and self.runner is not None and self.runner.is_running():
            self.trainer.set_momentum(m)
            self.message.emit(f"momentum {m:g} from the next batch")

    def _slow_changed(self, ms: int) -> None:
        self.slow_label.setText(f"Slow motion: {ms} ms per batch" if ms else "Slow motion: off")
        if self.trainer is not None:
            # A float attribute read once per batch by the training thread.
            self.trainer.config.delay = ms / 1000

    # --- shutting down -------------------------------------------------------------------
    def shutdown(self, timeout: float = 1.0) -> bool:
        """Stop and join the training thread (the main window's closeEvent).
        True when no training thread is left."""
        ok = True
        if self.runner is not None:
            ok = self.runner.stop(timeout)
        for r in self._old_runners:
            ok = r.stop(0.1) and ok
        self.frame_timer.stop()
        self._restore_switch_interval()
        if ok and self.runner is not None:
            self._on_frame(force=True)
        return ok

    def has_unsaved_model(self) -> bool:
        """A model was trained (at least one batch) since the last save."""
        return self.trainer is not None and self.trainer.step > self._saved_step

    def confirm_close(self) -> bool:
        """Before the window closes: if the trained model is unsaved, ask
        (Save / Discard / Cancel). False means: keep the window open."""
        if not self.has_unsaved_model():
            return True
        answer = QMessageBox.question(
            self, "Unsaved model",
            "The trained model has not been saved. Save a checkpoint before closing?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        return answer != QMessageBox.StandardButton.Save or self._ask_save_checkpoint()

    def closeEvent(self, event) -> None:
        """Used as a top-level window (standalone): ask, then stop the worker."""
        if not self.confirm_close():
            event.ignore()
            return
        self.shutdown(1.0)
        event.accept()

    # --- snapshots ---------------------------------------------------------------------
    def _between_batches(self, snap) -> None:
        """Runs in the training thread before a snapshot is emitted: the only
        place where the trainer's state may be read while it runs."""
        path = self._autosave_to
        if snap.kind == "epoch" and path:
            try:
                self.trainer.save_checkpoint(path, {"autosave": True})
                snap.extra["autosaved"] = str(path)
                snap.extra["saved_step"] = self.trainer.step
            except OSError as e:
                snap.extra["error"] = f"Autosave to {path} failed: {e}"
        while True:
            try:
                job = self._requests.get_nowait()
            except queue.Empty:
                break
            try:
                snap.extra.setdefault("done", []).append(job())
            except Exception as e:   # reported in the window, the run goes on
                snap.extra["error"] = f"{type(e).__name__}: {e}"

    def _run_safely(self, job) -> None:
        """Run ``job()`` (it reads the trainer) between batches: now if the
        training thread is blocked or gone, otherwise at its next snapshot."""
        blocked = self.trainer.paused and not self._step_in_flight
        if self.runner is None or not self.runner.is_running() or blocked:
            try:
                self.message.emit(job())
            except Exception as e:
                self._show_error(f"{type(e).__name__}: {e}")
        else:
            self._requests.put(job)

    def _on_snapshot(self, snap) -> None:
        """File a snapshot (cheap); drawing waits for the frame timer."""
        self._file_batches(snap.batches)
        if snap.kind == "batch" and snap.samples_per_sec > 0:
            self.curves.add_batches(np.array([snap.samples_seen]),
                                    {"samples_per_sec": [snap.samples_per_sec]})
        ex = snap.extra
        if ex:
            self.weights_view.add(snap.samples_seen, ex)
            if "maps" in ex:
                self._latest_maps = ex
            if "weights" in ex:
                self._latest_weights = ex["weights"]
                self._weights_dirty = True
            for msg in ex.get("done", ()):
                self.message.emit(msg)
            if "saved_step" in ex:
                self._saved_step = max(self._saved_step, ex["saved_step"])
            if "error" in ex:
                self._show_error(ex["error"])
        if snap.kind == "epoch":
            self.curves.add_epoch(snap.samples_seen, {
                "train_loss": snap.train_loss_epoch, "test_loss": snap.test_loss,
                "train_accuracy": snap.train_accuracy_epoch,
                "test_accuracy": snap.test_accuracy})
            if snap.test_probs is not None:
                self._latest_eval = (snap.test_probs, f"After epoch {snap.epoch}: ")
                self._eval_dirty = True
        if snap.kind == "diverged":
            self._show_error(snap.message + " (The run paused itself.)")
            self.setup.lr.setStyleSheet("background: #ffd7d7;")
        elif snap.kind in ("paused", "batch") and snap.paused:
            self._step_in_flight = False
            self._set_state("paused")
            if self._step_when_paused:
                self._step_when_paused = False
                self.step()
        elif snap.kind == "stopped":
            self._set_state("stopped")
        elif snap.kind == "finished":
            self._set_state("finished")
        self._latest = snap
        self.snapshot_received.emit(snap)

    def _file_batches(self, b: dict) -> None:
        """History rows -> curve points, with the smoothed loss (the same
        exponential average as the trainer's, over every batch)."""
        if not len(b.get("loss", ())):
            return
        loss = b["loss"]
        smooth = np.empty(len(loss))
        ema = self._ema
        for i, v in enumerate(loss.tolist()):
            if np.isfinite(v):
                ema = v if ema is None else 0.98 * ema + 0.02 * v
            smooth[i] = np.nan if ema is None else ema
        self._ema = ema
        self.curves.add_batches(b["samples_seen"], {"loss": loss, "smoothed_loss": smooth,
                                                    "accuracy": b["accuracy"], "lr": b["lr"]})

    def _on_failed(self, text: str) -> None:
        self._show_error("Training failed: " + text.split("\n\n")[0])
        self.last_error = text
        self._set_state("stopped")

    def _restore_switch_interval(self) -> None:
        if self._switch_interval is not None and not (self.runner and self.runner.is_running()):
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    def _on_thread_finished(self) -> None:
        self._restore_switch_interval()
        if self.state in ("running", "paused"):
            self._set_state("stopped")
        self._on_frame(force=True)

    def _show_error(self, text: str) -> None:
        self.last_error = text
        self.banner.setText(text)
        self.banner.show()
        self.message.emit(text)

    # --- drawing -----------------------------------------------------------------------
    def _page_changed(self, _index: int) -> None:
        """Paint the page as it was first, bring its data up to date a moment
        later: two shorter stalls instead of one long one."""
        if self.state == "running":
            QTimer.singleShot(PAGE_REFRESH_DELAY_MS, lambda: self._on_frame(force=True))
        else:
            self._on_frame(force=True)

    def _on_frame(self, force: bool = False, all_views: bool = False) -> None:
        snap = self._latest
        now = time.perf_counter()
        # Half a tick of slack: ticks are FRAME_MS apart give or take a little.
        if snap is not None and (force or now - self._last_status >= STATUS_INTERVAL - 0.05):
            self._latest = None
            self._last_status = now
            self._update_status(snap)
        if not (force or now - self._last_plot >= PLOT_INTERVAL):
            return
        self._last_plot = now
        page = self.views.currentWidget()
        # Only the page on screen: a hidden one is brought up to date when
        # it is shown (_page_changed), and exports redraw what they save.
        if page is self.views.widget(0) or all_views:
            self.curves.redraw()
        if (page is self.views.widget(1) or all_views) and self._latest_maps is not None:
            ex, self._latest_maps = self._latest_maps, None
            probs = ex["sample_probs"]
            pred = int(np.argmax(probs))
            self.maps.set_maps(ex["sample_input"], ex["maps"],
                               f"input: label {self._sample[1]}<br>predicted {pred} "
                               f"({probs[pred]:.0%})")
        if page is self.weights_view or all_views:
            self.weights_view.redraw()
        if page is self.evaluation and self._eval_dirty:
            self._eval_dirty = False
            images, labels = self.test_set()
            probs, caption = self._latest_eval
            self.evaluation.set_results(images, labels, probs, caption)
        if (page is self.digit or all_views) and self._weights_dirty:
            self._weights_dirty = False
            self.digit.set_weights(self._latest_weights)

    def _update_status(self, snap) -> None:
        acc = "" if snap.test_accuracy is None else f" · test accuracy {snap.test_accuracy:.2%}"
        self.status.setText(
            f"epoch {snap.epoch}/{snap.epochs} · batch {snap.batch}/{snap.batches_per_epoch} · "
            f"{snap.samples_seen:,} samples · {snap.samples_per_sec:,.0f} samples/s · "
            f"elapsed {_fmt_time(snap.elapsed)} · ETA {_fmt_time(snap.eta)}\n"
            f"loss {snap.loss:.4f} (smoothed {snap.smoothed_loss:.4f}){acc} · lr {snap.lr:.4g}")

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_label.setText(state)
        alive = state in ("running", "paused")
        self.start_button.setText("Continue" if state == "stopped" else "Start")
        self.start_button.setEnabled(not alive)
        self.pause_button.setEnabled(alive)
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.stop_button.setEnabled(alive)
        self.step_button.setEnabled(state != "finished")
        self.setup.lock_structure(alive)
        if state != "paused":
            self.setup.lr.setStyleSheet("")
        self.run_state_changed.emit(state)

    # --- files ---------------------------------------------------------------------------
    def save_checkpoint(self, path) -> None:
        """Save weights, optimizer state, progress and history (atomic).
        While training it happens between two batches."""
        if self.trainer is None:
            raise RuntimeError("nothing to save: no run yet")
        trainer = self.trainer

        def job():
            trainer.save_checkpoint(path, {"run": self._run_label})
            self._saved_step = max(self._saved_step, trainer.step)
            return f"checkpoint saved to {path} (step {trainer.step})"
        self._run_safely(job)

    def load_checkpoint(self, path) -> None:
        """Load a checkpoint into a new, paused-to-start run; Start resumes it
        and the curves continue its history."""
        if not self.shutdown(timeout=2.0):
            raise RuntimeError("the current run did not stop")
        model, state = load_checkpoint(path)     # raises ModelFileError / CheckpointError
        s = self.setup.settings()
        cfg = state["config"]
        self.setup.epochs.setValue(max(int(cfg.get("epochs", s.epochs)), 1))
        self.setup.batch_size.setValue(int(cfg.get("batch_size", s.batch_size)))
        self.setup.seed.setValue(int(cfg.get("seed", s.seed)))
        self.setup.limit.setValue(int(cfg.get("limit") or 0))
        self.setup.shift.setValue(int(cfg.get("shift", 0)))
        i = self.setup.optimizer.findData(cfg.get("optimizer", "sgd"))
        self.setup.optimizer.blockSignals(True)
        self.setup.optimizer.setCurrentIndex(max(i, 0))
        self.setup.optimizer.blockSignals(False)
        self.setup.weight_decay.setValue(float(cfg.get("weight_decay", 0.0)))
        j = self.setup.schedule.findData(cfg.get("lr_schedule", "cosine"))
        self.setup.schedule.setCurrentIndex(max(j, 0))
        self.setup.set_model_file(str(path))
        s = self.setup.settings()
        self._new_run(s, keep_overlay=False, model=model)
        self.trainer.load_state_dict(state)
        self._saved_step = self.trainer.step
        self._load_history_into_curves(self.trainer.history)
        self.digit.set_model(model)
        self._set_state("stopped" if self.trainer.epoch < self.trainer.config.epochs
                        else "finished")
        self.status.setText(f"Loaded {path}: step {self.trainer.step}, epoch "
                            f"{self.trainer.epoch}/{self.trainer.config.epochs}. "
                            f"Continue to resume training.")

    def _load_history_into_curves(self, history) -> None:
        self._ema = None
        self._file_batches(history.batches())
        e = history.epochs()
        for i in range(len(e["epoch"])):
            self.curves.add_epoch(e["samples_seen"][i], {k: e[k][i] for k in (
                "train_loss", "test_loss", "train_accuracy", "test_accuracy")})
        self.curves.redraw(force=True)

    def export_csv(self, path) -> None:
        trainer = self.trainer

        def job():
            trainer.history.to_csv(path)
            return f"history written to {path}"
        self._run_safely(job)

    def export_curves_png(self, path) -> None:
        self.curves.redraw(force=True)
        save_widget_png(self.curves, path)
        self.message.emit(f"curves written to {path}")

    def _ask_save_checkpoint(self) -> bool:
        if self.trainer is None:
            self._show_error("Nothing to save yet: start a run first.")
            return False
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", "checkpoint.npz",
                                              "cnnviz checkpoints (*.npz)")
        if not path:
            return False
        self.save_checkpoint(path)
        return True

    def _ask_load_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load checkpoint", "",
                                              "cnnviz checkpoints (*.npz)")
        if path:
            try:
                self.load_checkpoint(path)
            except (ModelFileError, OSError, ValueError, RuntimeError) as e:
                self._show_error(str(e))

    def _ask_export_csv(self) -> None:
        if self.trainer is None:
            self._show_error("No history yet: start a run first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export history", "history.csv",
                                              "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def _ask_export_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export curves", "curves.png", "PNG (*.png)")
        if path:
            try:
                self.export_curves_png(path)
            except OSError as e:
                self._show_error(str(e))
