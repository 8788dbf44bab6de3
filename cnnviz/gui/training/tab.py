"""The Training tab: LeNet-5 on MNIST in a worker thread, everything on screen.

Data flow: the trainer runs in a TrainingRunner's thread and yields
snapshots (copies) about 15 times a second; ``_on_snapshot`` (GUI thread)
only files them (appends curve points, keeps the newest maps and weights);
``_on_frame``, driven by a QTimer at 15 Hz, redraws what is visible. So the
GUI's per-snapshot work is tiny and its per-frame work is bounded.

The run itself, its state and the rules of what an action may do (continue
or start anew, ask before discarding, load only a checkpoint built in full)
live in ``session.TrainingSession`` (no Qt, unit-tested alone); this tab
holds the widgets and the worker thread, forwards the user's actions to the
session and draws it.

Anything that reads the trainer's state (checkpoints, CSV export) runs
between batches: in the training thread through ``_between_batches`` while
it runs, or directly while the thread is blocked in a pause or gone.
"""

from __future__ import annotations

import gc
import html
import queue
import sys
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSignalBlocker, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QFontMetrics
from PyQt6.QtWidgets import (QCheckBox, QFileDialog, QGridLayout, QGroupBox, QHBoxLayout,
                             QLabel, QLineEdit, QMessageBox, QPushButton, QScrollArea,
                             QSizePolicy, QSlider, QSpinBox, QSplitter, QTabWidget, QVBoxLayout,
                             QWidget)

from cnnviz.data.classes import DIGIT_NAMES, name_of
from cnnviz.gui.training.curves import CurvesPanel
from cnnviz.gui.training.dataset_loader import DatasetLoader
from cnnviz.gui.training.dataset_row import (choice_shape, data_that_fits, describe,
                                             fitting_choice)
from cnnviz.gui.training.draw_canvas import DigitPanel
from cnnviz.gui.training.evaluation import EvaluationPanel
from cnnviz.gui.training.inside import MapsView, WeightsView
from cnnviz.gui.training.picture_panel import PicturePanel
from cnnviz.gui.training.dataset_state import restore_dataset, save_dataset
from cnnviz.gui.training.probe import Probe
from cnnviz.gui.training.session import RunError, TrainingSession, image_shape, one_line
from cnnviz.gui.training.setup_panel import SetupPanel
from cnnviz.gui.training.smoothing import smoothed_losses
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
# Loading an image folder (a thread that lists the files, four that decode
# them) holds the GIL the same way; it is set while a dataset loads, too.
RUN_SWITCH_INTERVAL = 0.0001
# A page switched to mid-run is painted whole at once; bringing its data up
# to date in the same moment made one 50-80 ms stall. Its data follow this
# much later instead: two stalls of at most ~40 ms.
PAGE_REFRESH_DELAY_MS = 80
# Datasets read in the GUI thread when needed (a fraction of a second, and
# cached); every other kind is loaded off it (dataset_loader.py) first.
QUICK_DATASETS = ("mnist", "idx")
NOTE_SECONDS = 6         # an acknowledgement stays on the status line this long
EXIT_WAIT = 0.1          # s a closing program waits for a batch in flight to end


def _cannot(action: str, e: Exception) -> str:
    text = str(e)
    return text if text.startswith("Cannot") else f"Cannot {action}: {text}"


def _fmt_time(seconds) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class TrainingTab(QWidget):
    run_state_changed = pyqtSignal(str)      # "idle" | "running" | "paused" | "stopped" | "finished"
    snapshot_received = pyqtSignal(object)   # every snapshot, after it was filed (tests, bench)
    message = pyqtSignal(str)                # for a status bar
    open_in_stepper_requested = pyqtSignal()  # the main window hands the model to the Stepper
    SHUTDOWN_FOR_EXIT = True                  # shutdown(for_exit=True): see there

    def __init__(self, parent=None, data_dir: str | None = None, workers: int | None = None):
        super().__init__(parent)
        self.session = TrainingSession()  # the run, its state and its rules
        self.runner: TrainingRunner | None = None
        # Processes that compute each batch (engine/parallel.py): None, one
        # per core, as `cnnviz train`. The workers are spawned (never forked
        # from a process that runs Qt) from the niced training thread, whose
        # niceness they inherit, so the GUI thread still comes first.
        self.workers = workers
        self._worker_failure_noted = ""
        self._after_stop = None           # an action waiting for the training thread to end
        self._showing_run = False         # the lr/momentum/epochs boxes show the run's values
        self._emitted_state = None
        self._note_text, self._note_until = "", 0.0
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._latest = None               # newest snapshot not yet drawn
        self._latest_maps = None          # newest probe payload with maps
        self._latest_weights = None
        self._latest_eval = None
        self._weights_dirty = self._eval_dirty = False
        self._last_plot = 0.0
        self._last_status = 0.0
        self._ema = None                  # smoothed loss per batch (for the curve)
        self._step_in_flight = False
        self._step_when_paused = False
        self._old_runners: list[TrainingRunner] = []   # stopped late: keep until finished
        self._sample = None
        self._eval_shown = False          # when the evaluation's progress was last shown
        self._switch_interval = None      # the interpreter's, while a run changes it
        self._gc_frozen = False           # while a dataset loads: see _loading
        self._autosave_to: str | None = None    # read by the training thread: a plain str
        self._run_names: tuple[str, ...] = ()   # the run's class names (see _install)
        self.last_error = ""

        self.setup = SetupPanel()
        if data_dir is not None:
            self.setup.set_data_dir(str(data_dir))
        self.setup.lr_changed.connect(self._lr_edited)
        self.setup.momentum_changed.connect(self._momentum_edited)
        self.setup.epochs_changed.connect(self._epochs_edited)
        self.setup.structure_changed.connect(self._set_state)
        self.setup.refused.connect(self._show_error)
        # the status says which model Start trains now, not the one before
        self.setup.model_shown.connect(lambda model: self._note(f"Model: {model}; Start trains it."))
        self.setup.dataset.changed.connect(self._dataset_changed)
        self.loader = DatasetLoader(parent=self)
        self._loading_key = None          # the Settings.dataset being loaded
        self._after_load = None           # what waits for it (a start, a restart...)
        self.loader.progress.connect(self.setup.dataset.show_progress)
        self.loader.loaded.connect(self._dataset_loaded)
        self.loader.failed.connect(self._dataset_failed)
        self.loader.cancelled.connect(self._dataset_cancelled)
        self.setup.dataset.cancel_requested.connect(self.loader.cancel)
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
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # wide enough for the column beside its vertical scroll bar, which a
        # 900 px window shows: without it the buttons' right halves were cut
        left_scroll.setMinimumWidth(max(330, left_widget.minimumSizeHint().width()
                                        + left_scroll.verticalScrollBar().sizeHint().width()
                                        + 2 * left_scroll.frameWidth()))

        self.curves = CurvesPanel()
        self.maps = MapsView()
        self.weights_view = WeightsView()
        self.evaluation = EvaluationPanel()
        self.digit = DigitPanel()
        self.picture = PicturePanel()     # instead of drawing, where the data are not digits
        self.views = QTabWidget()
        self.views.addTab(self._curves_page(), "Curves")
        self.views.addTab(self._maps_page(), "Feature && gradient maps")
        self.views.addTab(self.weights_view, "Weights && gradients")
        self.views.addTab(self.evaluation, "Evaluation")
        self.views.addTab(self.digit, "Draw a digit")
        self.views.addTab(self.picture, "Try an image")
        self.views.setTabVisible(self.views.indexOf(self.picture), False)
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
        # As wide as its longest text: the status beside it never moves sideways.
        self.state_label.setFixedWidth(max(
            self.state_label.fontMetrics().horizontalAdvance(t) for t in (
                "idle", "running", "paused", "paused (diverged)", "stopped", "finished")) + 12)
        status_row = QHBoxLayout()
        status_row.addWidget(self.state_label)
        status_row.addWidget(self.status, 1)
        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("color: #b00020; font-weight: bold;")
        self.banner.hide()
        self.banner.setAlignment(Qt.AlignmentFlag.AlignTop)
        # Its room is kept when it is hidden (three lines): showing a message
        # does not push the status line and the pages down.
        self.banner_room = QWidget()
        room = QVBoxLayout(self.banner_room)
        room.setContentsMargins(0, 0, 0, 0)
        room.addWidget(self.banner)
        bold_metrics = QFontMetrics(self.state_label.font())
        self.banner_room.setFixedHeight(3 * bold_metrics.lineSpacing() + 4)
        right = QVBoxLayout()
        right.addWidget(self.banner_room)
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
        self._set_state()

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
        self.stepper_button = QPushButton("Open in Layer Stepper")
        self.stepper_button.setToolTip("Step one sample through a copy of the model's weights "
                                       "as they are now (the run goes on).")
        self.stepper_button.setEnabled(False)
        self.stepper_button.clicked.connect(self.open_in_stepper_requested)
        grid.addWidget(self.stepper_button, 4, 0, 1, 2)
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
        # a network with many layers: its columns scroll, none is cut off
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.maps)
        v.addWidget(scroll, 1)
        return page

    # --- data and model ----------------------------------------------------------------
    def use_architecture(self, arch) -> None:
        """The Network builder's "Train this network": its network is the model
        of the next run (Start trains it, fresh weights from the run's seed)."""
        self.setup.set_architecture(arch)
        self._note(f"Model: {arch.title} from the Network builder; Start trains it.")
        # a dataset whose images it takes (the one chosen if it does)
        takes = tuple(arch.batch_input_shape[1:])
        key = self.setup.settings().dataset
        if choice_shape(key) == takes:
            return
        fits = fitting_choice(takes, self.setup.dataset.paths)
        if fits is not None:
            self.setup.dataset.set_choice(*fits)      # a folder: at the network's size
            self._note(f"Model: {arch.title} from the Network builder, dataset: "
                       f"{describe(self.setup.settings().dataset)}; Start trains it.")
        elif choice_shape(key) is not None:
            self._show_error(f"{arch.title} takes {takes[0]}x{takes[1]}x{takes[2]} images, "
                             f"{describe(key)} gives {'x'.join(map(str, choice_shape(key)))}: "
                             f"choose {data_that_fits(takes)} as the dataset.")

    def _shown_dataset(self):
        """The run's dataset (its evaluation refers to it), else the chosen one."""
        s = self.session.settings or self.setup.settings()
        return s.dataset

    def _data_at_hand(self) -> bool:
        """Is the shown dataset loaded, or quick enough to read here?"""
        key = self._shown_dataset()
        return self.session.has_data(key) or key[0] in QUICK_DATASETS

    def test_set(self):
        """The run's test set (its evaluation refers to it), else the chosen dataset's."""
        return self.session.test_set(self.setup.settings().dataset)

    def class_names(self) -> tuple[str, ...]:
        """The class names of the run's dataset (else the chosen one's)."""
        try:
            if self._data_at_hand():
                return self.session.class_names(self.setup.settings().dataset)
        except (OSError, ValueError):
            pass
        return tuple(str(i) for i in range(10))

    def run_class_names(self) -> tuple[str, ...]:
        """The class names of the current run's dataset, what its model's
        outputs mean (saved in its checkpoints); () without a run."""
        return self._run_names

    def _choose_sample(self, index: int) -> None:
        if not self._data_at_hand():
            return        # chosen again once the dataset is loaded
        try:
            images, labels = self.test_set()
        except (OSError, ValueError) as e:
            self._show_error(f"Cannot read the dataset: {one_line(e)}")
            return
        index = min(index, len(labels) - 1)
        self.sample_index.setMaximum(len(labels) - 1)
        self._sample = (images[index] / np.float32(255), int(labels[index]))
        self.sample_caption.setText(f"label {self._label_text(int(labels[index]))}")
        if self.trainer is not None and isinstance(self.trainer.probe, Probe):
            self.trainer.probe.set_sample(*self._sample)
            self._show_current_sample()

    def _trainer_idle(self) -> bool:
        """The training thread is not in a batch or an evaluation (gone, or
        blocked in a pause): its model may be read now without waiting."""
        return (self.runner is None or not self.runner.is_running()
                or (self.trainer.paused and not self._step_in_flight))

    def _show_current_sample(self, force: bool = False) -> None:
        """Draw the monitored sample's maps from the model's weights of now,
        when the trainer will not send them soon (paused, stopped, finished,
        diverged); a running trainer sends them with its next snapshot.
        ``force``: also for a trainer just pausing itself (divergence)."""
        t = self.trainer
        if t is None or not isinstance(t.probe, Probe) or not (force or self._trainer_idle()):
            return
        with t.model_lock:
            weights = t.model.state_dict()
        self._latest_maps = t.probe.sample_pass(weights)
        self._latest_weights, self._weights_dirty = weights, True
        self._last_plot = 0.0
        self._on_frame(force=True)

    def _gui_config(self) -> dict:
        """The TrainConfig fields the window decides."""
        return dict(snapshot_interval=SNAPSHOT_INTERVAL, delay=self.slow.value() / 1000,
                    pause_on_divergence=True, workers=self.workers)

    # --- the run (the session decides, the tab draws) ----------------------------------
    trainer = property(lambda self: self.session.trainer)
    state = property(lambda self: self.session.state)
    run_count = property(lambda self: self.session.run_count)

    def confirm_discard(self, action: str) -> bool:
        """Before ``action`` discards an unsaved trained run: Save / Discard /
        Cancel. False means: do nothing."""
        question = self.session.discard_question(action)
        if question is None:
            return True
        answer = QMessageBox.question(
            self, "Unsaved model", question,
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        return answer != QMessageBox.StandardButton.Save or self._ask_save_checkpoint()

    def _when_stopped(self, then) -> None:
        """Run ``then()`` once the training thread is gone: now, or when it
        has finished (asked to stop here; the GUI does not wait for it)."""
        if self.runner is not None and self.runner.is_running():
            self._after_stop = then
            self.trainer.request_stop()
            self._note("stopping the current run first")
            return
        then()

    def _install(self, run, keep_overlay: bool) -> None:
        """Make a prepared run the current one and reset the views to it."""
        if keep_overlay and self.curves.batch["loss"].total:
            self.curves.freeze_run(self.session.overlay_label)
        else:
            self.curves.reset()
        self.weights_view.reset()
        self.session.install(run)
        try:     # kept here: the training thread's autosave reads it
            self._run_names = tuple(self.session.class_names())
        except (OSError, ValueError):
            self._run_names = ()
        t = run.trainer
        image, label, index = run.sample
        self._sample = (image, label)
        with QSignalBlocker(self.sample_index):
            self.sample_index.setMaximum(len(t.test[1]) - 1 if t.test is not None else 0)
            self.sample_index.setValue(index)
        self.sample_caption.setText(f"label {self._label_text(label)}")
        self.curves.samples_per_epoch = t.n_train
        self._show_data_views()
        self._set_run_length()
        self.curves.set_lr_range(max(t.config.lr, t.lr))
        self._ema = None
        self.digit.set_model(t.model)
        self.picture.set_model(t.model)
        self.banner.hide()
        if run.warnings:          # e.g. outputs no class uses: the run goes on, the user is told
            self._show_error(" ".join(run.warnings))
        self._set_state()

    def _set_run_length(self) -> None:
        t = self.trainer
        self.curves.set_run_length(t.config.epochs * t.n_train)
        self.weights_view.set_run_length(t.config.epochs * t.n_train)

    # --- the dataset -------------------------------------------------------------------
    def _dataset_ready(self, key, then) -> bool:
        """True if dataset ``key`` can be used now; else its loading (off
        the GUI thread) is under way and ``then()`` follows when it is loaded."""
        if self.session.has_data(key) or key[0] in QUICK_DATASETS:
            return True
        self._after_load = then
        if self._loading_key != key:
            self._load_dataset(key)
        self._note("loading the dataset: the run starts when it is loaded")
        return False

    def _load_dataset(self, key) -> None:
        then = self._after_load
        self.loader.cancel()      # a load in flight ends now (its handler runs here)
        self._after_load = then
        self._loading_key = key
        self.setup.dataset.loading(f"loading {describe(key)}")
        self._loading(True)
        self.loader.load(key)
        self._note(f"loading {describe(key)}")

    def _dataset_changed(self) -> None:
        """Another dataset chosen: a big one starts loading now (a load of
        the previous choice is cancelled)."""
        key = self.setup.settings().dataset
        self._after_load = None
        if self._loading_key is not None and self._loading_key != key:
            self.loader.cancel()
        if not self.session.has_data(key) and key[0] not in QUICK_DATASETS:
            if self._loading_key != key:
                self._load_dataset(key)
        elif self.session.settings is None:
            self._dataset_in_use()

    def _dataset_loaded(self, spec, train, test) -> None:
        key, self._loading_key = self._loading_key, None
        self.setup.dataset.done_loading()
        self._loading(False)
        self.session.put_data(key, train, test)
        self.banner.hide()
        self._note(f"{describe(key)}: {len(train):,} training and {len(test):,} test images "
                   f"of {len(test.class_names)} classes")
        # the splits of one folder share its warnings: each said once
        warnings = list(dict.fromkeys([*getattr(train, "warnings", ()),
                                       *getattr(test, "warnings", ())]))
        if warnings:          # e.g. unreadable files skipped: loaded, but the user is told
            self._show_error(" ".join(warnings))
        if self.session.settings is None:
            self._dataset_in_use()
        then, self._after_load = self._after_load, None
        if then is not None and key == self.setup.settings().dataset:
            then()

    def _dataset_failed(self, spec, message: str) -> None:
        key, self._loading_key, self._after_load = self._loading_key, None, None
        self.setup.dataset.done_loading()
        self._loading(False)
        self._show_error(message)
        # the status line's "loading ..." is no longer true
        self._note(f"{describe(key)} was not loaded: the message above says why"
                   if key is not None else "the dataset was not loaded")

    def _dataset_cancelled(self, spec) -> None:
        self._loading_key = self._after_load = None
        self.setup.dataset.done_loading()
        self._loading(False)
        self._note("loading the dataset was cancelled")

    def _dataset_in_use(self) -> None:
        """Without a run, the views follow the chosen dataset (once it is at hand)."""
        if not self._data_at_hand():
            return
        self._show_data_views()
        self._choose_sample(self.sample_index.value())

    def _show_data_views(self) -> None:
        """Drawing for grey 28x28 digits; "Load an image" for any other data."""
        try:
            images, _ = self.test_set()
            names = self.class_names()
        except (OSError, ValueError):
            return
        shape = image_shape(images)
        digits = shape == (1, 28, 28) and tuple(names[:10]) == DIGIT_NAMES
        self.picture.set_input_shape(*shape)
        self.picture.set_class_names(names)
        page = self.views.currentWidget()
        self.views.setTabVisible(self.views.indexOf(self.digit), digits)
        self.views.setTabVisible(self.views.indexOf(self.picture), not digits)
        if page in (self.digit, self.picture):
            self.views.setCurrentWidget(self.digit if digits else self.picture)

    # --- settings kept between sessions ---------------------------------------------------
    def save_state(self, settings) -> None:
        save_dataset(settings, self.setup.settings().dataset)

    def restore_state(self, settings) -> None:
        """The last dataset chosen; a saved one that is gone is said, not loaded."""
        key, problem = restore_dataset(settings)
        if problem:
            self._show_error(problem)
        if key is not None and self.session.settings is None:
            # shown, not loaded: a big folder loads when it is used (Start)
            with QSignalBlocker(self.setup.dataset):
                self.setup.dataset.set_choice(*key)
            self._set_state()

    # --- run control ---------------------------------------------------------------
    def start(self) -> None:
        """Continue the run (settings unchanged), resume a pause, or start a
        new run (asking first if that discards an unsaved trained run)."""
        s = self.setup.settings()
        action = self.session.start_action(s)
        if action == "resume":
            self.resume()
        if action != "continue" and action != "new":
            return
        if action == "new" and not self._dataset_ready(s.dataset, self.start):
            return
        if action == "new":
            try:
                run = self.session.prepare_new(s, self._gui_config(), self.sample_index.value())
            except RunError as e:
                self._show_error(_cannot("start", e))
                return
            if not self.confirm_discard("starting a new run"):
                return
            self._install(run, keep_overlay=self.trainer is not None)
        self._launch()

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
        if "maps" in first:      # a probe taken moments ago (Continue) has none
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
        self._after_stop = None         # an action waiting for an earlier thread is void
        try:
            # The first probe runs the model once, here: a model that does
            # not fit the data fails now, with a message, not in the thread.
            self._prime_views()
        except (ValueError, TypeError, IndexError) as e:
            self._show_error(f"Cannot train this model on this data: {one_line(e)}")
            self.session.failed_to_start()
            self._set_state()
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
        self._short_switch_interval()
        runner.start()
        self.frame_timer.start()
        self.session.launched()
        self._set_state()

    def restart(self) -> None:
        """Same seed, same initial weights, current settings; old curves stay
        as overlays. Asks first if the current run is unsaved."""
        s = self.setup.settings()
        if not self._dataset_ready(s.dataset, self.restart):
            return
        try:
            run = self.session.prepare_restart(s, self._gui_config(), self.sample_index.value())
        except RunError as e:
            self._show_error(_cannot("restart", e))
            return
        if not self.confirm_discard("starting a new run"):
            return

        def then():
            self._install(run, keep_overlay=True)
            self._launch()
        self._when_stopped(then)

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
        self.session.resumed()
        self._set_state()

    def step(self) -> None:
        """One batch, then paused (starts a paused run if there is none)."""
        if self.runner is None or not self.runner.is_running():
            self.start()
            if self.trainer is not None and self.runner is not None and self.runner.is_running():
                self._step_when_paused = True
                self.trainer.request_pause()
            return
        if self.trainer.paused:
            self._step_in_flight = True
        self.trainer.request_step()

    def stop(self) -> None:
        if self.trainer is not None and self.runner is not None and self.runner.is_running():
            self.trainer.request_stop()

    def _edit(self, change, value) -> None:
        """A user's edit of lr / momentum / epochs: to the run if the other
        settings are the run's (else it is the next run's value)."""
        if not self.session.edits_apply(self.setup.settings()):
            self._set_state()
            return
        try:
            msg = change(value)
        except (RunError, ValueError) as e:
            self._show_error(one_line(e))
            msg = None
        if msg:
            self._note(msg)
        if self.trainer is not None:
            self._set_run_length()
        self._set_state()

    def _lr_edited(self, lr: float) -> None:
        self._edit(self.session.set_lr, lr)

    def _momentum_edited(self, m: float) -> None:
        self._edit(self.session.set_momentum, m)

    def _epochs_edited(self, epochs: int) -> None:
        self._edit(self.session.set_epochs, epochs)

    def _note(self, text: str) -> None:
        """A short acknowledgement on the status line (and the status bar)."""
        self._note_text, self._note_until = text, time.perf_counter() + NOTE_SECONDS
        if not self.session.alive or self._latest is None:
            self.status.setText(self.status.text().split("\n")[0] + "\n" + text)
        self.message.emit(text)

    def _slow_changed(self, ms: int) -> None:
        self.slow_label.setText(f"Slow motion: {ms} ms per batch" if ms else "Slow motion: off")
        if self.trainer is not None:
            # A float attribute read once per batch by the training thread.
            self.trainer.config.delay = ms / 1000

    # --- shutting down -------------------------------------------------------------------
    def shutdown(self, timeout: float = 1.0, for_exit: bool = False) -> bool:
        """Stop and join the training thread (the main window's closeEvent).
        True when no training thread is left; ``for_exit`` (the process ends
        next): or none that needs to finish (TrainingRunner.stop_for_exit)."""
        self._after_stop = None         # a load or restart waiting for the thread is dropped
        self._after_load = None
        ok = self.loader.shutdown(timeout)
        if self.runner is not None:
            ok = self.runner.stop_for_exit(EXIT_WAIT) if for_exit else self.runner.stop(timeout)
        for r in self._old_runners:
            ok = r.stop(0.1) and ok
        self.frame_timer.stop()
        self._restore_switch_interval()
        if ok and self.runner is not None:
            self._on_frame(force=True)
        return ok

    def has_unsaved_model(self) -> bool:
        """A model was trained (at least one batch) since the last save."""
        return self.session.has_unsaved()

    def confirm_close(self) -> bool:
        """Before the window closes: if the trained model is unsaved, ask
        (Save / Discard / Cancel). False means: keep the window open."""
        return self.confirm_discard("closing")

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
                self.trainer.save_checkpoint(path, {"autosave": True,
                                                    "class_names": list(self._run_names)})
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

    def _run_safely(self, job) -> bool:
        """Run ``job()`` (it reads the trainer) between batches: now if the
        training thread is blocked or gone, otherwise at its next snapshot.
        False if it ran now and failed (the error is shown)."""
        blocked = self.trainer.paused and not self._step_in_flight
        if self.runner is None or not self.runner.is_running() or blocked:
            try:
                self._note(job())
            except Exception as e:
                self._show_error(f"{type(e).__name__}: {one_line(e)}")
                return False
        else:
            self._requests.put(job)
        return True

    def _run_queued_requests(self, thread_gone: bool = False) -> None:
        """Run here what was queued for the training thread's next snapshot
        but came after the snapshot it paused at (a paused run takes no
        batch), or after its last one (a finished run's thread may still be
        stopping its worker processes)."""
        if not (thread_gone or self.trainer.paused):
            return
        while True:
            try:
                job = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                self.message.emit(job())
            except Exception as e:
                self._show_error(f"{type(e).__name__}: {one_line(e)}")

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
                self._note(msg)
            if "saved_step" in ex:
                self.session.mark_saved(self.trainer, ex["saved_step"])
            if "error" in ex:
                self._show_error(ex["error"])
        if snap.kind == "epoch":
            self.curves.add_epoch(snap.samples_seen, {
                "train_loss": snap.train_loss_epoch, "test_loss": snap.test_loss,
                "train_accuracy": snap.train_accuracy_epoch,
                "test_accuracy": snap.test_accuracy})
            if snap.test_probs is not None:
                which = " (averaged weights)" if self.trainer.average is not None else ""
                self._latest_eval = (snap.test_probs, f"After epoch {snap.epoch}{which}: ")
                self._eval_dirty = True
        self.session.on_snapshot(snap)
        if snap.kind == "diverged":
            # the maps and the prediction: the restored weights, not a stale pass
            self._show_current_sample(force=True)
            self._show_error(snap.message + " (The run paused itself.)")
            self._set_state()
            self.setup.lr.setStyleSheet("background: #ffd7d7;")
        elif snap.kind in ("paused", "batch") and snap.paused:
            self._step_in_flight = False
            self._run_queued_requests()     # queued while a step was still in flight
            self._set_state()
            if self._step_when_paused:
                self._step_when_paused = False
                self.step()
        elif snap.kind in ("stopped", "finished"):
            self._set_state()
        self._latest = snap
        self.snapshot_received.emit(snap)

    def _file_batches(self, b: dict) -> None:
        """History rows -> curve points, with the smoothed loss (the same
        exponential average as the trainer's, over every batch)."""
        if not len(b.get("loss", ())):
            return
        loss = b["loss"]
        smooth, self._ema = smoothed_losses(loss, b["step"], self._ema or 0.0)
        self.curves.add_batches(b["samples_seen"], {
            "loss": loss, "smoothed_loss": smooth, "accuracy": b["accuracy"], "lr": b["lr"],
            "momentum": b["momentum"]})

    def _on_failed(self, text: str) -> None:
        self._show_error("Training failed: " + " ".join(text.split("\n\n")[0].split()))
        self.last_error = text
        self.session.thread_finished()
        self._set_state()

    def _short_switch_interval(self) -> None:
        """While a run trains or a dataset loads (its decoding threads want
        the GIL too): see RUN_SWITCH_INTERVAL."""
        if self._switch_interval is None:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(RUN_SWITCH_INTERVAL)

    def _loading(self, on: bool) -> None:
        """A dataset load begins (on) or ends. Listing a folder of 50,000
        files makes 100,000s of objects in the loading thread, and each
        full garbage collection it triggers scans every object of the
        process (Qt's wrappers, the plots...) while holding the GIL: the GUI
        thread stalled up to 400 ms. Frozen, the objects that exist before
        the load are left out of those scans until it ends (gc.freeze)."""
        if on and not self._gc_frozen:
            gc.freeze()
            self._gc_frozen = True
        elif not on and self._gc_frozen:
            gc.unfreeze()
            self._gc_frozen = False
        if on:
            self._short_switch_interval()
        else:
            self._restore_switch_interval()

    def _restore_switch_interval(self) -> None:
        if (self._switch_interval is not None and not (self.runner and self.runner.is_running())
                and not self.loader.busy()):
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    def _on_thread_finished(self) -> None:
        self._restore_switch_interval()
        self.session.thread_finished()
        self._run_queued_requests(thread_gone=True)
        self._set_state()
        self._on_frame(force=True)
        then, self._after_stop = self._after_stop, None
        if then is not None:
            then()

    def _show_error(self, text: str) -> None:
        self.last_error = text
        self.banner.setText(text)
        self.banner.setToolTip(text)      # a message longer than its three lines
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

    def _show_evaluation_progress(self, now: float) -> None:
        """No snapshot comes while the test set is evaluated at an epoch end:
        the status line's second line says how far it is (the trainer counts
        the images; this runs at most every STATUS_INTERVAL)."""
        t = self.trainer
        progress = t.evaluation_progress if t is not None and self.session.alive else None
        if progress is None:
            self._eval_shown = False
            return
        if self._eval_shown and now - self._eval_shown < STATUS_INTERVAL - 0.05:
            return
        self._eval_shown = now
        done, total = progress
        first = self.status.text().split("\n")[0]
        self.status.setText(f"{first}\nEvaluating the test set at the end of epoch "
                            f"{t.epoch + 1}: {done:,} / {total:,}")

    def _on_frame(self, force: bool = False, all_views: bool = False) -> None:
        snap = self._latest
        now = time.perf_counter()
        self._show_evaluation_progress(now)
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
            label = ex.get("sample_label", self._sample[1])    # the label of these maps
            self.maps.set_maps(ex["sample_input"], ex["maps"],
                               f"input: label {html.escape(self._label_text(label))}"
                               f"<br>predicted {html.escape(self._label_text(pred))} "
                               f"({probs[pred]:.0%})")
        if page is self.weights_view or all_views:
            self.weights_view.redraw()
        if page is self.evaluation and self._eval_dirty:
            self._eval_dirty = False
            images, labels = self.test_set()
            probs, caption = self._latest_eval
            self.evaluation.set_results(images, labels, probs, caption, self.class_names())
        if (page is self.digit or all_views) and self._weights_dirty:
            self._weights_dirty = all_views     # the picture page's turn too
            names = self.class_names()
            if names != self.digit.class_names:
                self.digit.set_class_names(names)
            self.digit.set_weights(self._latest_weights)
        if (page is self.picture or all_views) and self._weights_dirty:
            self._weights_dirty = False
            self.picture.set_class_names(self.class_names())
            self.picture.set_weights(self._latest_weights)

    def _label_text(self, label: int) -> str:
        """"7", or "7 (Sneaker)" when the class has a name of its own."""
        name = name_of(self.class_names(), label)
        return name if name == str(label) else f"{label} ({name})"

    def _update_status(self, snap) -> None:
        failure = getattr(self.trainer.step_engine, "failure", "") if self.trainer else ""
        if failure and failure != self._worker_failure_noted:
            self._worker_failure_noted = failure
            self._note(failure)      # "training worker 1 failed: ...; training goes on in one process"
        acc = "" if snap.test_accuracy is None else f" · test accuracy {snap.test_accuracy:.2%}"
        if acc and self.trainer is not None and self.trainer.average is not None:
            acc += " (averaged weights)"
        self.status.setText(
            f"epoch {snap.epoch}/{snap.epochs} · batch {snap.batch}/{snap.batches_per_epoch} · "
            f"{snap.samples_seen:,} samples · {snap.samples_per_sec:,.0f} samples/s"
            f"{self._cores_text()} · "
            f"elapsed {_fmt_time(snap.elapsed)} · ETA {_fmt_time(snap.eta)}\n"
            f"loss {snap.loss:.4f} (smoothed {snap.smoothed_loss:.4f}){acc} · lr {snap.lr:.4g}"
            + (f" · {self._note_text}" if time.perf_counter() < self._note_until else ""))
        self._show_run_values()

    def _cores_text(self) -> str:
        """" on 2 cores" once batches are split over worker processes."""
        engine = self.trainer.step_engine if self.trainer is not None else None
        if engine is None or not getattr(engine, "parallel_batches", 0) or not engine.running:
            return ""
        return f" on {engine.workers} cores"

    def _show_run_values(self) -> None:
        """The lr, momentum and epochs boxes show the run's own values while
        Start would go on with it; else what a new run would start with."""
        s = self.setup.settings()
        values = self.session.run_values()
        if values is not None and self.session.shows_run_values(s):
            self._showing_run = True
            self.setup.show_run_values(values["lr"], values["momentum"], values["epochs"])
        elif self._showing_run:
            self._showing_run = False
            run = self.session.settings
            lr = run.lr if s.optimizer == run.optimizer else s.lr
            self.setup.show_run_values(lr, run.momentum, s.epochs)

    def _set_state(self, *_) -> None:
        """Draw the session's state (buttons, label, boxes)."""
        state = self.session.state
        label = "paused (diverged)" if state == "paused" and self.session.diverged else state
        self.state_label.setText(label)
        alive = state in ("running", "paused")
        self._show_run_values()
        self.start_button.setText(self.session.start_label(self.setup.settings()))
        self.start_button.setEnabled(not alive)
        self.pause_button.setEnabled(alive)
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        self.stop_button.setEnabled(alive)
        self.step_button.setEnabled(state != "finished")
        self.stepper_button.setEnabled(self.trainer is not None)
        self.setup.lock_structure(alive)
        if state != "paused":
            self.setup.lr.setStyleSheet("")
        if state != self._emitted_state:     # also called on every settings edit
            self._emitted_state = state
            self.run_state_changed.emit(state)

    # --- files ---------------------------------------------------------------------------
    def save_checkpoint(self, path) -> bool:
        """Save weights, optimizer state, progress and history (atomic).
        While training it happens between two batches. False if it failed now."""
        if self.trainer is None:
            raise RuntimeError("nothing to save: no run yet")
        trainer, session, label = self.trainer, self.session, self.session.run_label
        names = list(self._run_names)

        def job():
            trainer.save_checkpoint(path, {"run": label, "class_names": names})
            session.mark_saved(trainer, trainer.step)
            return f"checkpoint saved to {path} (step {trainer.step})"
        return self._run_safely(job)

    def load_checkpoint(self, path) -> bool:
        """Load a checkpoint as the run, stopped where it was saved: Continue
        resumes it and the curves continue its history. The file is read and
        the run built in full first: if anything is wrong the current run is
        untouched and the error shown. An unsaved current run is asked about;
        a running one is stopped (the load follows when its thread has ended).
        False if nothing was (or will be) loaded."""
        if not self._dataset_ready(self.setup.settings().dataset,
                                   lambda: self.load_checkpoint(path)):
            return True
        try:
            run = self.session.prepare_checkpoint(path, self.setup.settings(),
                                                  self._gui_config(), self.sample_index.value())
        except RunError as e:
            self._show_error(str(e))
            return False
        if not self.confirm_discard("loading a checkpoint"):
            return False
        self._when_stopped(lambda: self._install_checkpoint(run))
        return True

    def _install_checkpoint(self, run) -> None:
        self._install(run, keep_overlay=False)
        self.setup.apply(run.settings)
        self._load_history_into_curves(run.trainer.history)
        self._set_state()
        t = run.trainer
        self.status.setText(f"Loaded {run.source}: step {t.step}, epoch "
                            f"{t.epoch}/{t.config.epochs}. "
                            + ("Continue to resume training." if self.state == "stopped" else
                               "All its epochs are done: raise Epochs to train on."))

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
        """The curves widget itself, rendered as the Curves page shows it:
        from another page, at the size that page would have now (a hidden
        page keeps the size it was last shown at)."""
        page = self.views.widget(0)
        if self.views.currentWidget() is not page:
            page.resize(self.views.currentWidget().size())
            page.layout().activate()
        self.curves.redraw(force=True)
        save_widget_png(self.curves, path)
        self._note(f"curves written to {path}")

    def _ask_save_checkpoint(self) -> bool:
        if self.trainer is None:
            self._show_error("Nothing to save yet: start a run first.")
            return False
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", "checkpoint.npz",
                                              "cnnviz checkpoints (*.npz)")
        if not path:
            return False
        return self.save_checkpoint(path)

    def _ask_load_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load checkpoint", "",
                                              "cnnviz checkpoints (*.npz)")
        if path:
            self.load_checkpoint(path)

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
