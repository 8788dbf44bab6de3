"""The set-up panel: model, dataset, optimizer and the run's hyperparameters.

``settings()`` returns plain values; the tab turns them into a model, the
data and a TrainConfig. The learning rate, momentum and epochs fields stay
editable during a run: they show the run's own values (``show_run_values``,
which emits nothing) and a user's edit is forwarded to the run."""

from __future__ import annotations

from pathlib import Path

from cnnviz.engine.trainer import DEFAULT_LR, TrainConfig
from cnnviz.gui.training.dataset_row import DatasetRow
from cnnviz.engine.architecture import read as read_architecture
from cnnviz.gui.training.session import Settings, TrainingSession, one_line
from cnnviz.gui.widgets.narrow_combo import narrow

from PyQt6.QtCore import QSignalBlocker, Qt, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                             QGroupBox, QLabel, QSpinBox)

MODEL_CHOICES = [("LeNet-5", "lenet5"), ("LeNet-5 small", "small")]
FILE_FILTER = ("cnnviz models, checkpoints and architectures (*.npz *.json);;"
               "Models and checkpoints (*.npz);;Architecture files (*.json)")


def is_architecture_file(path: str) -> bool:
    """A .json file is an architecture (fresh weights); anything else is
    read as a model or a checkpoint (.npz)."""
    return Path(path).suffix.lower() == ".json"


class LogSpinBox(QDoubleSpinBox):
    """A spin box for values spanning decades (learning rates): the arrows
    multiply or divide by about 2, and any value from 1e-6 to 1e7 can be typed."""

    def __init__(self, value: float, lo: float = 1e-6, hi: float = 1e7):
        super().__init__()
        self.setDecimals(6)
        self.setRange(lo, hi)
        self.setValue(value)
        self.setKeyboardTracking(False)   # emit on Enter / focus out, not per keystroke

    def stepBy(self, steps: int) -> None:
        self.setValue(self.value() * (2.0 ** steps))

    def textFromValue(self, v: float) -> str:
        return f"{v:.6g}"


class SetupPanel(QGroupBox):
    lr_changed = pyqtSignal(float)
    momentum_changed = pyqtSignal(float)
    epochs_changed = pyqtSignal(int)
    structure_changed = pyqtSignal()      # any other setting (a new run would differ)
    refused = pyqtSignal(str)             # a choice not taken, in one line (the banner's)
    model_shown = pyqtSignal(str)         # another model is the one Start trains: its name

    def __init__(self, parent=None):
        super().__init__("Set-up", parent)
        form = QFormLayout(self)
        # The headless trainer's defaults (one source of truth): the GUI with
        # its defaults trains exactly what `cnnviz train` trains.
        d = TrainConfig()
        self.model = QComboBox()
        for label, key in MODEL_CHOICES:
            self.model.addItem(label, key)
        # one file choice for every kind of file a user has: a trained model
        # or a checkpoint (.npz), or an architecture (.json, fresh weights
        # from the run's seed); the file's suffix says which
        self.model.addItem("From file (model or architecture)...", "file")
        self.model.setItemData(self.model.count() - 1,
                               "A trained model or checkpoint (.npz), or an architecture "
                               "file (.json) trained from fresh weights",
                               Qt.ItemDataRole.ToolTipRole)
        # a network built in the Network builder ("Train this network")
        self.model.addItem("Network builder", "builder")
        self.model_path: str | None = None
        self.architecture = None          # the builder's (a checked Architecture)
        self._model_index = 0             # the model shown (kept when a choice is refused)
        self.model.activated.connect(self._model_chosen)
        form.addRow("Model", self.model)

        self.dataset = DatasetRow()       # the combo, its path and options, the load's progress
        self.data = self.dataset.combo
        form.addRow("Dataset", self.data)
        form.addRow(self.dataset.path_label)
        form.addRow(self.dataset.options)
        form.addRow(self.dataset.progress_row)

        self.optimizer = QComboBox()
        self.optimizer.addItem("SGD with momentum", "sgd")
        self.optimizer.addItem("Adam", "adam")
        self.optimizer.currentIndexChanged.connect(self._optimizer_changed)
        form.addRow("Optimizer", self.optimizer)

        self.lr = LogSpinBox(d.lr)
        self.lr.setToolTip("Takes effect at the next batch, also while training.")
        self.lr.valueChanged.connect(self.lr_changed)
        form.addRow("Learning rate", self.lr)
        self.schedule = QComboBox()
        for label, key in (("cosine decay", "cosine"), ("step (x0.1 at 50%, 75%)", "step"),
                           ("constant", "none")):
            self.schedule.addItem(label, key)
        self.schedule.setCurrentIndex(self.schedule.findData(d.lr_schedule))
        form.addRow("LR schedule", self.schedule)
        # as wide as the column, not as their longest entries (the lists show them whole)
        for combo in (self.model, self.optimizer, self.schedule):
            narrow(combo)
        self.momentum = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=0.999, singleStep=0.05,
                                       value=d.momentum)
        self.momentum.setKeyboardTracking(False)
        self.momentum.setToolTip("SGD momentum or Adam's beta1; takes effect at the next batch.")
        self.momentum.valueChanged.connect(self.momentum_changed)
        form.addRow("Momentum", self.momentum)
        self.weight_decay = QDoubleSpinBox(decimals=6, minimum=0.0, maximum=1.0,
                                           singleStep=1e-4, value=d.weight_decay)
        form.addRow("Weight decay", self.weight_decay)
        self.batch_size = QSpinBox(minimum=1, maximum=4096, value=d.batch_size)
        form.addRow("Batch size", self.batch_size)
        self.epochs = QSpinBox(minimum=1, maximum=1000, value=d.epochs)
        self.epochs.setKeyboardTracking(False)
        self.epochs.setToolTip("During a run: re-plans the run (its learning-rate schedule "
                               "ends at the new last epoch).")
        self.epochs.valueChanged.connect(self.epochs_changed)
        form.addRow("Epochs", self.epochs)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=d.seed)
        self.seed.setToolTip("Initial weights and shuffling: the same seed gives the same run.")
        form.addRow("Seed", self.seed)
        self.limit = QSpinBox(minimum=0, maximum=10_000_000, value=0, singleStep=1000)
        self.limit.setSpecialValueText("all")
        self.limit.setToolTip("Train on the first N images only (quick demos); 'all' = every one.")
        form.addRow("Training subset", self.limit)
        self.shift = QSpinBox(minimum=0, maximum=2, value=d.shift, suffix=" px")
        self.shift.setToolTip("Random shifts of the training images (augmentation).")
        form.addRow("Random shifts", self.shift)
        self.average = QCheckBox("test their running average")
        self.average.setChecked(d.average)
        self.average.setToolTip(
            "Run the test set on an average of the weights over about the last 500 batches: "
            "SGD's weights jitter, their average reaches a given test accuracy sooner. The "
            "model takes the averaged weights when the run finishes. Off: the weights "
            "themselves are tested and kept.")
        form.addRow("Weights", self.average)
        self.source = QLabel("")
        self.source.setWordWrap(True)
        form.addRow(self.source)
        self._update_source()
        for combo in (self.model, self.optimizer, self.schedule):
            combo.currentIndexChanged.connect(self.structure_changed)
        self.dataset.changed.connect(self.structure_changed)
        for box in (self.weight_decay, self.batch_size, self.seed, self.limit, self.shift):
            box.valueChanged.connect(self.structure_changed)
        self.average.toggled.connect(self.structure_changed)

    def _model_chosen(self, index: int) -> None:
        if self.model.itemData(index) != "file":
            self._update_source()
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a model, a checkpoint or an architecture",
            str(Path(self.model_path).parent) if self.model_path else "", FILE_FILTER)
        if path and is_architecture_file(path):
            try:                        # refused now, not at Start: the previous model stays
                read_architecture(path)
            except (OSError, ValueError) as e:
                self.model.setCurrentIndex(self._model_index)
                self._update_source()
                self.refused.emit(f"{one_line(e)}; the model stays {self.model_text}.")
                return
        if path:
            self.model_path = path
        elif not self.model_path:
            self.model.setCurrentIndex(self._model_index)
        self._update_source()

    def set_data_dir(self, path: str | None) -> None:
        """An IDX directory as the dataset (None: the bundled MNIST)."""
        if path is None:
            self.dataset.set_choice("mnist")
        else:
            self.dataset.set_choice("idx", path)

    def set_architecture(self, arch) -> None:
        """The Network builder's network (a checked Architecture) as the model."""
        self.architecture = arch
        self.model.setCurrentIndex(self.model.findData("builder"))
        self._update_source()

    def set_model_file(self, path: str) -> None:
        """A model or checkpoint (.npz) or an architecture file (.json) as the model."""
        self.model_path = path
        self.model.setCurrentIndex(self.model.findData("file"))
        self._update_source()

    def _optimizer_changed(self) -> None:
        # Sensible starting rates differ by a factor of 50.
        self.lr.setValue(DEFAULT_LR[self.optimizer.currentData()])

    def _update_source(self) -> None:
        key = self.model.currentData()
        if key == "builder":
            model = (f"{self.architecture.title} (from the Network builder)"
                     if self.architecture is not None else
                     "none yet: build one in the Network builder and press "
                     "\"Train this network\"")
        elif key == "file":
            model = self.model_path or "none yet: choose a file"
            if self.model_path and is_architecture_file(self.model_path):
                model += " (an architecture: fresh weights from the seed)"
        else:
            model = self.model.currentText()
        self.source.setText(f"<small>model: {model}</small>")
        changed = model != getattr(self, "model_text", model)
        self.model_text = model
        if changed:
            self.model_shown.emit(model)
        self._model_index = self.model.currentIndex()
        # an image folder's size and colour follow the network (until set by the user)
        self.dataset.follow_network(TrainingSession.network_input(self.settings()))

    def settings(self) -> Settings:
        key = self.model.currentData()
        if key == "file" and self.model_path and is_architecture_file(self.model_path):
            key = "arch"                 # the session builds it with fresh weights
        return Settings(
            model=key,
            model_path=self.model_path if key in ("file", "arch") else None,
            dataset=self.dataset.spec_key(),
            optimizer=self.optimizer.currentData(), lr=self.lr.value(),
            momentum=self.momentum.value(), weight_decay=self.weight_decay.value(),
            batch_size=self.batch_size.value(), epochs=self.epochs.value(),
            seed=self.seed.value(), limit=self.limit.value() or None, shift=self.shift.value(),
            lr_schedule=self.schedule.currentData(), average=self.average.isChecked(),
            architecture=self.architecture if self.model.currentData() == "builder" else None)

    def show_run_values(self, lr: float, momentum: float, epochs: int) -> None:
        """Show a run's own values without emitting a change. A value the user
        is typing (not yet entered) is left alone."""
        for box, value in ((self.lr, lr), (self.momentum, momentum), (self.epochs, epochs)):
            typing = box.lineEdit().text() != box.textFromValue(box.value())
            if not typing and box.value() != value:
                with QSignalBlocker(box):
                    box.setValue(value)

    def apply(self, s: Settings) -> None:
        """Show the settings ``s`` (a loaded run's) without emitting changes."""
        widgets = [self.model, self.dataset, self.optimizer, self.schedule, self.lr, self.momentum,
                   self.weight_decay, self.batch_size, self.epochs, self.seed, self.limit,
                   self.shift, self.average]
        blockers = [QSignalBlocker(w) for w in widgets]
        try:
            if s.model in ("file", "arch"):
                self.model_path = s.model_path
            elif s.model == "builder":
                self.architecture = s.architecture
            key = "file" if s.model == "arch" else s.model
            self.model.setCurrentIndex(max(self.model.findData(key), 0))
            self.dataset.set_choice(*s.dataset)
            self.optimizer.setCurrentIndex(max(self.optimizer.findData(s.optimizer), 0))
            self.schedule.setCurrentIndex(max(self.schedule.findData(s.lr_schedule), 0))
            self.lr.setValue(s.lr)
            self.momentum.setValue(s.momentum)
            self.weight_decay.setValue(s.weight_decay)
            self.batch_size.setValue(s.batch_size)
            self.epochs.setValue(s.epochs)
            self.seed.setValue(s.seed)
            self.limit.setValue(s.limit or 0)
            self.shift.setValue(s.shift)
            self.average.setChecked(s.average)
        finally:
            del blockers
        self._update_source()

    def lock_structure(self, locked: bool) -> None:
        """While a run exists, only what the trainer can change mid-run stays editable."""
        for w in (self.model, self.optimizer, self.schedule, self.weight_decay,
                  self.batch_size, self.seed, self.limit, self.shift, self.average):
            w.setEnabled(not locked)
        self.dataset.set_editable(not locked)
