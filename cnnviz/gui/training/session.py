"""Where a training run stands: plain Python, no Qt, so it is testable alone.

The session owns the run (its ``Trainer``), the run's state, what was saved
and the rules of what an action may do; the Training tab draws it, forwards
the user's actions to it and runs the trainer in a worker thread (the tab
tells the session when that thread starts, reports and ends).

States (``state``)::

    idle ──start──> running <──resume── paused      (diverged: paused by the
      ^               │  └──pause/step──>  │         trainer itself; the flag
      │               │                    │         ``diverged`` says so)
      │          stop │ thread ends  stop  │
      │               v                    v
      │            stopped <───────────────┘
      │               │ epochs done
      │               v
      └─(failed     finished
         to start)

    load (a validated checkpoint) ──> stopped, or finished when its epochs are done
    set_epochs on a finished run with more epochs ──> stopped (Continue goes on)

Saved or not: ``has_unsaved()`` is true once the run trained a batch since
its last save (a checkpoint, an autosave, or the load it came from).

Rules:
- Nothing of the current run is touched until its replacement is built in
  full: ``prepare_new`` / ``prepare_restart`` / ``prepare_checkpoint`` build
  a ``PreparedRun`` (model, trainer, loaded state, a first forward pass that
  checks the data's labels fit the model) in local variables, and raise
  ``RunError`` with one line on any failure; only ``install`` replaces the run.
- What would discard an unsaved trained run asks first: ``discard_question``
  gives the question (None: nothing to lose).
- Start continues the run when its settings are unchanged (lr, momentum and
  epochs are the run's own: edits apply to it); otherwise it is a new run
  (``start_action``), which discards the current one.
- The learning rate, momentum and epochs shown are the run's (``run_values``);
  only an edit by the user changes them (``set_lr`` / ``set_momentum`` /
  ``set_epochs``), never a start, a continue or a load.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from cnnviz.engine.architecture import read as read_architecture
from cnnviz.engine.fit import input_mismatch, output_fit, output_shape
from cnnviz.engine.fit import shape_text as dims_text
from cnnviz.engine.models import INPUT_SHAPE, MODELS
from cnnviz.engine.serialization import ModelFileError, load
from cnnviz.engine.trainer import TrainConfig, Trainer, load_checkpoint
from cnnviz.gui.training.probe import Probe

IDLE, RUNNING, PAUSED, STOPPED, FINISHED = "idle", "running", "paused", "stopped", "finished"
ALIVE = (RUNNING, PAUSED)        # the worker thread exists


@dataclass
class Settings:
    """The set-up panel's values, plain."""

    model: str                 # "lenet5", "small", "file", "arch" (a .json) or "builder"
    model_path: str | None     # the model file ("file") or the architecture file ("arch")
    dataset: tuple             # (kind, path, size, colour): dataset_row.DatasetRow.spec_key
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    epochs: int
    seed: int
    limit: int | None
    shift: int
    lr_schedule: str
    architecture: object = None     # "builder": the Network builder's checked Architecture
    average: bool = True            # test (and end with) the weights' running average

    @property
    def data_dir(self) -> str | None:
        """The IDX directory chosen (None: the bundled MNIST or another kind)."""
        return self.dataset[1] if self.dataset[0] == "idx" else None


class RunError(ValueError):
    """An action on the run that cannot be done; the message is one line for the user."""


def one_line(e: BaseException) -> str:
    """An exception as one line (a KeyError's message is only the key's repr)."""
    text = f"missing field {e}" if isinstance(e, KeyError) else str(e) or type(e).__name__
    return " ".join(text.split())


def settings_key(s) -> tuple:
    """What makes a run: every setting but those the run itself changes
    (lr, momentum, epochs)."""
    d = asdict(s)
    for k in ("lr", "momentum", "epochs"):
        d.pop(k)
    return tuple(sorted(d.items()))


@dataclass
class PreparedRun:
    """A run built in full, not yet installed."""

    trainer: Trainer
    settings: object             # the setup panel's Settings the run was made with
    initial_weights: dict        # for "restart from the same initial weights"
    label: str
    sample: tuple                # the monitored test image: (image in [0, 1], label, index)
    source: str | None = None    # the checkpoint it was loaded from
    warnings: tuple = ()         # said to the user, the run goes on (e.g. unused outputs)


class TrainingSession:
    def __init__(self):
        self.trainer: Trainer | None = None
        self.settings = None              # the run's settings
        self.state = IDLE
        self.diverged = False
        self.saved_step = 0
        self.run_count = 0
        self.run_label = ""
        self.run_changes: list[str] = []
        self._changes: list[tuple] = []
        self.initial_weights = None
        self.initial_settings = None
        self._data_cache: dict = {}       # Settings.dataset -> (train, test, class names)

    # --- queries ----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.state in ALIVE

    def has_unsaved(self) -> bool:
        """The run trained at least one batch since it was last saved (or loaded)."""
        return self.trainer is not None and self.trainer.step > self.saved_step

    def continues(self, s) -> bool:
        """Would Start with settings ``s`` go on with the current run?"""
        return (self.trainer is not None and self.state in (IDLE, STOPPED, PAUSED, RUNNING)
                and settings_key(s) == settings_key(self.settings))

    def start_action(self, s) -> str:
        """What Start does now: "resume" (paused), "none" (running), "continue"
        (the run, unchanged settings) or "new" (a new run: discards the current one)."""
        if self.state == RUNNING:
            return "none"
        if self.state == PAUSED:
            return "resume"
        return "continue" if self.continues(s) else "new"

    def start_label(self, s) -> str:
        return {"resume": "Resume", "none": "Start", "continue": "Continue",
                "new": "Start" if self.trainer is None else "Start a new run"}[self.start_action(s)]

    def edits_apply(self, s) -> bool:
        """Does an edit of lr, momentum or epochs go to the run? Yes while the
        other settings are the run's (else they are the next run's values)."""
        return self.trainer is not None and settings_key(s) == settings_key(self.settings)

    def shows_run_values(self, s) -> bool:
        """Do the lr, momentum and epochs boxes show the run's own values (Start
        would go on with it)? Else they show what a new run would start with."""
        return self.start_action(s) != "new"

    def discard_question(self, action: str) -> str | None:
        """The question to ask before ``action`` discards the run, or None if
        there is nothing unsaved to lose."""
        if not self.has_unsaved():
            return None
        t = self.trainer
        return (f"The trained model ({t.samples_seen:,} samples, step {t.step}) has not "
                f"been saved. Save a checkpoint before {action}?")

    def run_values(self) -> dict | None:
        """The run's own learning rate (of the next batch), momentum and
        epochs, for the spin boxes; None without a run."""
        if self.trainer is None:
            return None
        t = self.trainer
        return {"lr": t.lr, "momentum": t.momentum, "epochs": t.config.epochs}

    def test_set(self, dataset=None):
        """The run's test set (the one its evaluation refers to), else ``dataset``'s."""
        if self.settings is not None:
            dataset = self.settings.dataset
        return self.data(dataset)[1]

    # --- building (nothing of the current run is touched) --------------------------------
    def has_data(self, dataset) -> bool:
        """Is ``dataset`` (a Settings.dataset) loaded and kept?"""
        return dataset in self._data_cache

    def put_data(self, dataset, train, test) -> None:
        """Keep ``dataset``'s splits (loaded elsewhere, e.g. off the GUI
        thread); only the newest dataset is kept (the run's, when a run exists)."""
        keep = {} if self.settings is None or self.settings.dataset == dataset else {
            self.settings.dataset: self._data_cache.get(self.settings.dataset)}
        keep = {k: v for k, v in keep.items() if v is not None}
        keep[dataset] = ((train.images, train.labels), (test.images, test.labels),
                         tuple(test.class_names))
        self._data_cache = keep

    def data(self, dataset):
        """((train images, labels), (test images, labels)) of ``dataset``,
        loaded here (the GUI thread) if not kept yet: the tab loads big ones
        off the GUI thread first. DatasetError / OSError / ValueError."""
        if dataset not in self._data_cache:
            from cnnviz.gui.training.dataset_row import load_choice
            self.put_data(dataset, *load_choice(dataset))
        return self._data_cache[dataset][:2]

    def class_names(self, dataset=None) -> tuple[str, ...]:
        """The names of the classes of the run's dataset, else ``dataset``'s
        (label i is called names[i]); OSError / ValueError as ``data``."""
        if self.settings is not None:
            dataset = self.settings.dataset
        self.data(dataset)
        return self._data_cache[dataset][2]

    @staticmethod
    def new_model(s):
        """The run's model: loaded ("file"), or fresh weights from the seed
        (the zoo's, an architecture file's, the Network builder's)."""
        if s.model == "file":
            if not s.model_path:
                raise RunError("choose a model file first")
            return load(s.model_path)
        if s.model == "arch":
            if not s.model_path:
                raise RunError("choose an architecture file (.json) first")
            return read_architecture(s.model_path).build(seed=s.seed)
        if s.model == "builder":
            if s.architecture is None:
                raise RunError("no network from the Network builder yet: build one there and "
                               "press \"Train this network\"")
            return s.architecture.build(seed=s.seed)
        return MODELS[s.model](seed=s.seed)

    @staticmethod
    def network_input(s):
        """(C, H, W) the model of settings ``s`` takes, if it says (a model
        file does not: None); reads no weights."""
        if s.model in MODELS:
            return tuple(INPUT_SHAPE[1:])
        try:
            if s.model == "builder" and s.architecture is not None:
                return tuple(s.architecture.batch_input_shape[1:])
            if s.model == "arch" and s.model_path:
                return tuple(read_architecture(s.model_path).batch_input_shape[1:])
        except (OSError, ValueError):
            pass                # said when the run is made
        return None

    @staticmethod
    def config(s, **gui) -> TrainConfig:
        return TrainConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr,
                           optimizer=s.optimizer, momentum=s.momentum,
                           weight_decay=s.weight_decay, seed=s.seed, limit=s.limit,
                           shift=s.shift, lr_schedule=s.lr_schedule, average=s.average,
                           **gui)

    def _trainer(self, model, s, config, sample_index: int, takes=None):
        """(trainer, monitored sample (image in [0, 1], label, index), warnings)."""
        train, test = self.data(s.dataset)
        warnings = check_labels(model, train, test, takes, len(self.class_names(s.dataset)),
                                s.dataset[0])
        i = min(max(int(sample_index), 0), len(test[1]) - 1)
        sample = (test[0][i] / np.float32(255), int(test[1][i]), i)
        return (Trainer(model, train, test, config, probe=Probe(model, *sample[:2])), sample,
                warnings)

    def _label(self, s, number: int) -> str:
        return (f"run {number}: {s.optimizer} lr {s.lr:g}"
                f"{f' m {s.momentum:g}' if s.momentum else ''} bs {s.batch_size}")

    def prepare_new(self, s, gui: dict, sample_index: int = 0, model=None) -> PreparedRun:
        """A new run with settings ``s`` (``gui``: the TrainConfig fields the
        window sets, e.g. snapshot_interval). Raises RunError (one line)."""
        try:
            model = model if model is not None else self.new_model(s)
            initial = model.state_dict()
            trainer, sample, warnings = self._trainer(model, s, self.config(s, **gui),
                                                      sample_index, self.network_input(s))
        except RunError:
            raise
        except (OSError, ValueError, TypeError, KeyError, IndexError) as e:
            raise RunError(one_line(e)) from None
        return PreparedRun(trainer, s, initial, self._label(s, self.run_count + 1), sample,
                           warnings=tuple(warnings))

    def prepare_restart(self, s, gui: dict, sample_index: int = 0) -> PreparedRun:
        """A new run from the current run's initial weights (same model and
        seed; else fresh ones), with settings ``s``."""
        model = None
        if (self.initial_weights is not None and s.model == self.initial_settings.model
                and s.model_path == self.initial_settings.model_path
                and s.seed == self.initial_settings.seed
                and s.architecture == self.initial_settings.architecture):
            try:
                model = self.new_model(s)
                model.load_state_dict(self.initial_weights)
            except (OSError, ValueError, KeyError) as e:
                raise RunError(one_line(e)) from None
        return self.prepare_new(s, gui, sample_index, model)

    def prepare_checkpoint(self, path, s, gui: dict, sample_index: int = 0) -> PreparedRun:
        """The run saved in ``path``, whole: its model, its config (epochs,
        schedule, warm-up, rates) and its state, on the dataset of ``s``.
        Raises RunError naming the file if anything in it is wrong."""
        try:
            model, state = load_checkpoint(path)
            names = {f.name for f in fields(TrainConfig)}
            cfg = {k: v for k, v in state["config"].items() if k in names}
            config = TrainConfig(**{**cfg, **gui})
            initial = model.state_dict()
            trainer, sample, warnings = self._trainer(model, s, config, sample_index)
            trainer.load_state_dict(state)
        except ModelFileError as e:
            raise RunError(one_line(e)) from None
        except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            raise RunError(f"{path}: cannot be resumed: {one_line(e)}") from None
        c = trainer.config
        loaded = type(s)(**{**asdict(s), "model": "file", "model_path": str(path),
                            "optimizer": c.optimizer, "lr": trainer.lr,
                            "momentum": trainer.momentum, "weight_decay": c.weight_decay,
                            "batch_size": c.batch_size, "epochs": c.epochs, "seed": c.seed,
                            "limit": c.limit, "shift": c.shift, "lr_schedule": c.lr_schedule,
                            "average": c.average})
        return PreparedRun(trainer, loaded, initial, self._label(loaded, self.run_count + 1),
                           sample, source=str(path), warnings=tuple(warnings))

    def install(self, run: PreparedRun) -> None:
        """Make ``run`` the current run (the old one, if any, is gone: the
        caller stopped its thread and asked about it)."""
        if self.alive:
            raise RuntimeError("install while the run's thread is alive")
        self.trainer = run.trainer
        self.settings = run.settings
        self.run_count += 1
        self.run_label = run.label
        self.run_changes: list[str] = []    # mid-run lr / momentum edits, for the overlay
        self._changes: list[tuple] = []     # (what, samples seen, old, new)
        self.initial_weights, self.initial_settings = run.initial_weights, run.settings
        self.diverged = False
        if run.source is not None:
            t = run.trainer
            self.saved_step = t.step
            self.state = FINISHED if t.epoch >= t.config.epochs else STOPPED
        else:
            self.saved_step = 0
            self.state = IDLE

    # --- the worker thread's life (told by the tab) ---------------------------------------
    def launched(self) -> None:
        self.state, self.diverged = RUNNING, False

    def resumed(self) -> None:
        if self.state == PAUSED:
            self.state, self.diverged = RUNNING, False

    def on_snapshot(self, snap) -> None:
        if snap.kind == "diverged":
            # Paused only at the "paused" snapshot that follows: the trainer
            # pauses after this one, so a resume before it would be lost.
            self.diverged = True
        elif snap.kind in ("paused", "batch") and snap.paused:
            self.state = PAUSED
        elif snap.kind == "stopped":
            self.state = STOPPED
        elif snap.kind == "finished":
            self.state = FINISHED

    def thread_finished(self) -> None:
        if self.alive:
            self.state = STOPPED

    def failed_to_start(self) -> None:
        """The run was installed but could not launch: it is dropped (it never trained)."""
        if self.trainer is not None and self.trainer.step == 0 and self.state == IDLE:
            self.trainer, self.settings = None, None

    def mark_saved(self, trainer, step: int) -> None:
        """A save of ``trainer`` at ``step`` happened (any thread); a late
        report about an earlier run changes nothing."""
        if trainer is self.trainer:
            self.saved_step = max(self.saved_step, step)

    # --- the user's edits of the run --------------------------------------------------------
    def set_lr(self, lr: float) -> str | None:
        """The next batch trains at exactly ``lr``. None without a run."""
        if self.trainer is None:
            return None
        old = self.trainer.lr
        self.trainer.set_lr(lr)
        self._record_change("lr", old, lr)
        return f"learning rate {lr:g} from the next batch"

    def set_momentum(self, m: float) -> str | None:
        if self.trainer is None:
            return None
        old = self.trainer.momentum
        self.trainer.set_momentum(m)
        self._record_change("m", old, m)
        return f"momentum {m:g} from the next batch"

    def _record_change(self, what: str, old: float, new: float) -> None:
        """Edits at the same point of the run (keystrokes in a box, before
        the next batch) merge into one: from the first old to the last new."""
        at = self.trainer.samples_seen
        if self._changes and self._changes[-1][:2] == (what, at):
            old = self._changes.pop()[2]
        elif self._changes and any(c[0] == what and c[1] == at for c in self._changes):
            i = max(i for i, c in enumerate(self._changes) if c[0] == what and c[1] == at)
            old = self._changes.pop(i)[2]
        if f"{old:.3g}" != f"{new:.3g}":
            self._changes.append((what, at, old, new))
        self.run_changes = [f"{w} {o:.3g} -> {n:.3g} at {_samples_text(a)}"
                            for w, a, o, n in self._changes]

    @property
    def overlay_label(self) -> str:
        """The run's label with its mid-run changes, e.g. "run 1: sgd lr 0.05
        m 0.9 bs 64; lr 0.05 -> 0.001 at 12k" (what its overlay is called)."""
        return "; ".join([self.run_label, *self.run_changes])

    def set_epochs(self, epochs: int) -> str | None:
        """Re-plan the run for ``epochs`` (its schedule now ends there). A
        finished run given more epochs can continue. RunError if fewer than
        the epoch in progress."""
        t = self.trainer
        if t is None:
            return None
        if epochs == t.config.epochs:
            return None
        try:
            t.set_epochs(epochs)
        except ValueError as e:
            raise RunError(f"Epochs: {one_line(e)}") from None
        if self.state == FINISHED and t.epoch < epochs:
            self.state = STOPPED
        when = "from the next batch" if self.alive else "now"
        return (f"the run now lasts {epochs} epochs: its learning-rate schedule was "
                f"re-planned to end there ({when})")


def _samples_text(n: int) -> str:
    """12000 -> "12k", 1500 -> "1.5k", 640 -> "640" samples."""
    return f"{n / 1000:.3g}k" if n >= 1000 else str(n)


def image_shape(images: np.ndarray) -> tuple[int, int, int]:
    """(channels, height, width) of a dataset's images: (N, H, W) are grey."""
    return (1, *images.shape[1:]) if images.ndim == 3 else tuple(images.shape[1:])


def shape_text(shape) -> str:
    c, h, w = shape
    kind = "grey" if c == 1 else "colour" if c == 3 else f"{c}-channel"
    return f"{c}x{h}x{w} ({kind})"


def as_input(images: np.ndarray) -> np.ndarray:
    """Images as a model's input (N, C, H, W) float32 in [0, 1]."""
    x = images / np.float32(255) if images.dtype == np.uint8 else images.astype(np.float32)
    return x[:, None] if x.ndim == 3 else x


def check_labels(model, train, test, takes=None, classes: int = 0,
                 kind: str = "") -> list[str]:
    """Raise RunError (one line) if the model cannot take the images or has
    not one output per class of the data; return the warnings to say (more
    outputs than classes). ``takes``: the (C, H, W) the network says it
    takes, if it does; ``classes``: the dataset's class count (its class
    names); ``kind``: the dataset's kind, for the hint."""
    gives = image_shape(train[0])
    mismatch = input_mismatch(takes, gives)
    if mismatch:
        raise RunError(f"Cannot train this model on this data: {mismatch}; "
                       f"{fit_hint(takes, gives, kind)}.")
    try:
        out = output_shape(model, gives)
    except ValueError as e:
        raise RunError(f"Cannot train this model on this data: the dataset gives "
                       f"{dims_text(gives)} images and the network cannot take them "
                       f"({one_line(e)}); choose a network made for {shape_text(gives)} "
                       f"images, or another dataset.") from None
    refused, warning = output_fit(out, classes)
    if refused:
        raise RunError(f"Cannot train this model on this data: {refused}.")
    n = out[0]
    for what, (_, labels) in (("training", train), ("test", test)):
        if not len(labels):
            continue
        lo, hi = int(np.min(labels)), int(np.max(labels))
        if lo < 0 or hi >= n:       # a label beyond the dataset's own classes
            bad = hi if hi >= n else lo
            raise RunError(f"Cannot train on this dataset: its {what} set has label {bad}, "
                           f"but the model has {n} outputs (labels 0-{n - 1}).")
    return [f"Training goes on, but {warning}."] if warning else []


def fit_hint(takes, gives, kind: str) -> str:
    """What to change when the network takes ``takes`` and the data gives ``gives``."""
    c, h, w = takes
    if kind == "folder" and h == w:
        return (f"set the folder's size to {h} px and {'colour' if c == 3 else 'grey'} "
                f"to fit the network")
    if c == 1 and gives[0] == 3:
        return "choose grey data (e.g. the bundled MNIST), or a colour network"
    if c == 3 and gives[0] == 1:
        return "choose colour data (e.g. Coloured MNIST, CIFAR-10, a colour image folder)"
    return f"choose data of {dims_text(takes)} images, or a network made for {dims_text(gives)}"
