"""The training loop: a generator the CLI and the GUI's worker thread drive.

    trainer = Trainer(lenet5(seed=0), (train_images, train_labels),
                      (test_images, test_labels), TrainConfig(epochs=5))
    for snap in trainer.run():          # a Snapshot every few batches
        print(snap.kind, snap.epoch, snap.loss, snap.test_accuracy)

Between batches (never inside one) ``run`` honours requests made from any
thread: ``request_pause`` / ``request_resume`` / ``request_step`` /
``request_stop``, ``set_lr`` and ``set_momentum``. Pure NumPy: never imports Qt.

Snapshot kinds, in the order they can come:
    "batch"     every ``snapshot_every`` batches (or ``snapshot_interval`` s),
                and after each batch run by ``request_step``
    "epoch"     at each epoch end, after the test set was evaluated (in
                chunks of EVAL_CHUNK images, ``evaluation_progress`` says
                how far; a stop or pause request ends it within a chunk,
                and the epoch ends when it is evaluated again, on resume)
    "paused"    each time the run enters the paused state (then it blocks)
    "diverged"  the loss became non-finite: the last weights that gave a
                finite loss are back, the optimizer's buffers are reset;
                followed by "paused" (pause_on_divergence) or "stopped"
    "stopped"   a stop was requested (or divergence without pausing); last
    "finished"  all epochs done; last

Counters: ``epoch`` is 1-based (the epoch running, or just finished), ``batch``
the number of batches done in it (== batches_per_epoch at its end), ``step``
the batches done in the whole run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..atomic import atomic_write_text
from . import functional as F
from .augment import random_shift
from .averaging import WeightAverage
from .losses import SoftmaxCrossEntropy
from .optim import OPTIMIZERS
from .parallel import make_step_engine, resolve_workers
from .sequential import Sequential
from . import jsonfields as jf
from .jsonfields import FieldError
from .npz_archive import NpzError
from .serialization import (FORMAT, MAX_HEADER_CHARS, VERSION, ModelFileError, architecture,
                            atomic_savez, open_archive, read_model, state_members)

LR_SCHEDULES = ("cosine", "step", "none")
# Test images evaluated at a time at an epoch end: ~65 ms of LeNet-5 on this
# project's 2-core reference machine, so a stop or pause request waits at
# most that long (a whole 10,000-image test set took 1.3-2.7 s in one go).
EVAL_CHUNK = 200
DIVERGED_LOSS = 1e3   # a cross-entropy this high (chance is ln 10 = 2.3) means the run blew up
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3}   # with momentum 0.9 / beta1 0.9, warm-up and cosine decay


class CheckpointError(ModelFileError):
    """A checkpoint that cannot be read; the message names the file."""


@dataclass
class TrainConfig:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 0.05                 # SGD momentum 0.9, wd 5e-4, warm-up + cosine, shifts of 1 px:
                                     # 99.29-99.33% on MNIST after 5 epochs (99.12-99.27% unshifted)
    optimizer: str = "sgd"           # or "adam" (try lr 1e-3)
    momentum: float = 0.9            # Adam: beta1
    weight_decay: float = 5e-4
    seed: int = 0                    # shuffling and augmentation (the model has its own)
    limit: int | None = None         # train on the first `limit` samples only
    shift: int = 1                   # random shifts of up to `shift` pixels (0: none)
    snapshot_every: int = 50         # batches between "batch" snapshots ...
    snapshot_interval: float | None = None   # ... or seconds between them, if set
    delay: float = 0.0               # slow motion: seconds of sleep per batch
    lr_schedule: str = "cosine"      # "cosine" (to 0 over the run), "step" (x0.1 at 50%, 75%), "none"
    pause_on_divergence: bool = False
    warmup_steps: int = 100          # linear lr warm-up over the first batches (at most 1/5 of the run)
    workers: int | None = 1          # processes computing each batch (engine/parallel.py); None: one per core
    average: bool = True             # test a running average of the weights (engine/averaging.py),
                                     # which the model takes when the run finishes

    def validate(self):
        """Raise ValueError naming the first bad field."""
        def bad(name, why):
            raise ValueError(f"{name} {why}, got {getattr(self, name)!r}")
        if int(self.epochs) != self.epochs or self.epochs < 0:
            bad("epochs", "must be a whole number >= 0")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            bad("batch_size", "must be a whole number >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            bad("lr", "must be a positive number")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"must be one of {sorted(OPTIMIZERS)}")
        if not 0 <= self.momentum < 1:
            bad("momentum", "must be in [0, 1)")
        if not self.weight_decay >= 0:
            bad("weight_decay", "must be >= 0")
        if self.limit is not None and (int(self.limit) != self.limit or self.limit < 1):
            bad("limit", "must be None or a whole number >= 1")
        if int(self.shift) != self.shift or self.shift < 0:
            bad("shift", "must be a whole number >= 0")
        if int(self.snapshot_every) != self.snapshot_every or self.snapshot_every < 1:
            bad("snapshot_every", "must be a whole number >= 1")
        if self.snapshot_interval is not None and not self.snapshot_interval >= 0:
            bad("snapshot_interval", "must be None or >= 0")
        if not self.delay >= 0:
            bad("delay", "must be >= 0")
        if int(self.warmup_steps) != self.warmup_steps or self.warmup_steps < 0:
            bad("warmup_steps", "must be a whole number >= 0")
        if self.lr_schedule not in LR_SCHEDULES:
            bad("lr_schedule", f"must be one of {list(LR_SCHEDULES)}")
        if self.workers is not None:
            try:
                resolve_workers(self.workers)
            except (ValueError, TypeError):
                bad("workers", "must be None (one per core) or a whole number >= 1")
        return self


@dataclass
class Snapshot:
    """A plain value handed to the caller: every array in it is a copy (or
    fresh, never touched again by the trainer), so it can be kept."""

    kind: str            # "batch" | "epoch" | "diverged" | "paused" | "stopped" | "finished"
    epoch: int           # 1-based epoch running or just finished
    batch: int           # batches done in that epoch
    batches_per_epoch: int
    step: int            # batches done in the run
    samples_seen: int
    loss: float          # of the last batch (nan before the first)
    accuracy: float      # of the last batch, in [0, 1]
    smoothed_loss: float # debiased exponential average of the batch losses
    lr: float            # learning rate of the next batch
    samples_per_sec: float
    elapsed: float       # seconds of running, pauses excluded
    eta: float           # seconds to the end of the run, estimated
    test_loss: float | None = None        # latest epoch-end evaluation (None before)
    test_accuracy: float | None = None
    train_loss_epoch: float | None = None  # mean over the last completed epoch
    train_accuracy_epoch: float | None = None
    message: str = ""
    extra: dict = field(default_factory=dict)   # what the probe returned
    # additions
    epochs: int = 0                      # epochs of the run
    momentum: float = 0.0                # momentum (SGD) / beta1 (Adam) of the next batch
    paused: bool = False                 # the run is paused after this snapshot
    batches: dict = field(default_factory=dict)  # History rows added since the previous snapshot
    test_predictions: np.ndarray | None = None   # "epoch" only: argmax per test image
    test_probs: np.ndarray | None = None         # "epoch" only: (N_test, classes) softmax


# --------------------------------------------------------------------------
class History:
    """Per-batch and per-epoch records. Batch columns are numpy arrays that
    grow by doubling (``history.loss`` is a view of the filled part)."""

    BATCH = (("step", np.int64), ("samples_seen", np.int64), ("loss", np.float64),
             ("accuracy", np.float64), ("lr", np.float64), ("momentum", np.float64))
    # Columns a checkpoint from an older cnnviz may lack, and what fills them
    # there (from_dict's ``defaults``): momentum was not recorded per batch.
    OPTIONAL_BATCH = ("momentum",)
    EPOCH = (("epoch", np.int64), ("step", np.int64), ("samples_seen", np.int64),
             ("train_loss", np.float64), ("train_accuracy", np.float64),
             ("test_loss", np.float64), ("test_accuracy", np.float64), ("elapsed", np.float64))

    def __init__(self, capacity: int = 1024):
        self._b = {k: np.empty(max(capacity, 1), t) for k, t in self.BATCH}
        self.n_batches = 0
        self._e = {k: [] for k, _ in self.EPOCH}

    def append_batch(self, step, samples_seen, loss, accuracy, lr, momentum=np.nan):
        """One batch's row; ``momentum``: SGD's momentum or Adam's beta1 it trained with."""
        i = self.n_batches
        if i == len(self._b["step"]):
            for k in self._b:
                grown = np.empty(2 * i, self._b[k].dtype)
                grown[:i] = self._b[k]
                self._b[k] = grown
        b = self._b
        b["step"][i], b["samples_seen"][i], b["loss"][i] = step, samples_seen, loss
        b["accuracy"][i], b["lr"][i], b["momentum"][i] = accuracy, lr, momentum
        self.n_batches = i + 1

    def append_epoch(self, **row):
        for k, _ in self.EPOCH:
            v = row[k]
            self._e[k].append(np.nan if v is None else v)

    # --- reading --------------------------------------------------------
    def batches(self, start: int = 0) -> dict[str, np.ndarray]:
        """Copies of the batch rows from ``start`` on."""
        n = self.n_batches
        return {k: v[start:n].copy() for k, v in self._b.items()}

    def epochs(self) -> dict[str, np.ndarray]:
        """The per-epoch table as arrays (nan where there was no test set)."""
        return {k: np.array(self._e[k], t) for k, t in self.EPOCH}

    @property
    def n_epochs(self) -> int:
        return len(self._e["epoch"])

    step = property(lambda self: self._b["step"][:self.n_batches])
    samples_seen = property(lambda self: self._b["samples_seen"][:self.n_batches])
    loss = property(lambda self: self._b["loss"][:self.n_batches])
    accuracy = acc = property(lambda self: self._b["accuracy"][:self.n_batches])
    lr = property(lambda self: self._b["lr"][:self.n_batches])
    momentum = property(lambda self: self._b["momentum"][:self.n_batches])

    # --- round trips ------------------------------------------------------
    def to_dict(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays ("batch/loss", "epoch/test_accuracy", ...)."""
        d = {f"batch/{k}": v for k, v in self.batches().items()}
        d.update({f"epoch/{k}": v for k, v in self.epochs().items()})
        return d

    @classmethod
    def from_dict(cls, d: dict, defaults: dict | None = None) -> "History":
        """From ``to_dict``'s arrays. A column of OPTIONAL_BATCH that ``d``
        lacks (an older checkpoint) is filled with ``defaults[name]`` (the
        value the run had), else NaN."""
        n = len(d["batch/step"])
        h = cls(capacity=max(1024, 2 * n))
        for k, t in cls.BATCH:
            if f"batch/{k}" not in d and k in cls.OPTIONAL_BATCH:
                h._b[k][:n] = (defaults or {}).get(k, np.nan)
                continue
            h._b[k][:n] = np.asarray(d[f"batch/{k}"], t)
        h.n_batches = n
        for k, t in cls.EPOCH:
            h._e[k] = np.asarray(d[f"epoch/{k}"], t).tolist()
        return h

    def to_csv(self, path):
        """One row per batch; the epoch columns are filled on the last batch
        of each epoch. Written atomically."""
        b, e = self.batches(), self.epochs()
        end_of = {int(s): i for i, s in enumerate(e["step"])}
        ecols = [k for k, _ in self.EPOCH if k not in ("step", "samples_seen")]
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow([k for k, _ in self.BATCH] + [c if c == "epoch" else f"epoch_{c}"
                                                  for c in ecols])
        for i in range(self.n_batches):
            row = [int(b["step"][i]), int(b["samples_seen"][i]), repr(float(b["loss"][i])),
                   repr(float(b["accuracy"][i])), repr(float(b["lr"][i])),
                   repr(float(b["momentum"][i]))]
            j = end_of.get(int(b["step"][i]))
            if j is None:
                row += [""] * len(ecols)
            else:
                row += [int(e["epoch"][j])] + ["" if np.isnan(e[c][j]) else repr(float(e[c][j]))
                                               for c in ecols[1:]]
            w.writerow(row)
        atomic_write_text(path, out.getvalue())


# --------------------------------------------------------------------------
def _split(data, what):
    """(images, labels) from a tuple or an object with .images/.labels.
    Grey images come back (N, H, W) (a (N, 1, H, W) array loses its channel
    axis), colour ones (N, C, H, W)."""
    if data is None:
        return None
    images, labels = (data.images, data.labels) if hasattr(data, "images") else data
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim not in (3, 4):
        raise ValueError(f"{what} images must be (N, H, W) or (N, C, H, W), got {images.shape}")
    if labels.shape != (len(images),):
        raise ValueError(f"{what}: {len(images)} images but labels of shape {labels.shape}")
    if len(images) == 0:
        raise ValueError(f"{what} set is empty")
    return images, labels


def _sample_shape(images) -> tuple:
    """(C, H, W) of one image of a batch from ``_split``."""
    return (1, *images.shape[1:]) if images.ndim == 3 else tuple(images.shape[1:])


def _as_input(images, dtype):
    """A batch (n, H, W) or (n, C, H, W) -> model input (n, C, H, W): uint8 is
    scaled to [0, 1]."""
    if images.dtype == np.uint8:
        x = images / np.asarray(255, dtype)
    else:
        x = images.astype(dtype, copy=False)
    return x[:, None] if x.ndim == 3 else x


def evaluate_model(model, images, labels, batch=1000, predict=None, *, lock=None,
                   interrupted=None, progress=None):
    """(mean loss, accuracy, predictions (N,), probabilities (N, classes)
    float32) of ``model`` on a whole set, forward only, ``batch`` at a time.
    Images uint8 (N, H, W) or (N, C, H, W), or float in [0, 1]; labels (N,) ints.

    ``predict`` computes the outputs (default ``model.predict``; the trainer
    passes its step engine's, which splits the rows over its workers);
    ``lock``: held during each batch's forward pass (not between them);
    ``interrupted()``: asked before each batch, True ends the evaluation
    and it returns None (no partial result); ``progress(done, total)``:
    called after each batch."""
    images, labels = _split((images, labels), "evaluation")
    predict = model.predict if predict is None else predict
    dtype, total, probs, n = model.dtype, 0.0, [], len(labels)
    lock = lock if lock is not None else contextlib.nullcontext()
    for i in range(0, n, batch):
        if interrupted is not None and interrupted():
            return None
        with lock:
            logits = predict(_as_input(images[i:i + batch], dtype))
        logp = F.log_softmax(logits.astype(np.float64))
        total -= logp[np.arange(len(logp)), labels[i:i + batch]].sum()
        probs.append(np.exp(logp).astype(np.float32))
        if progress is not None:
            progress(min(i + batch, n), n)
    probs = np.concatenate(probs)
    preds = probs.argmax(axis=1)
    return float(total / n), float(np.mean(preds == labels)), preds, probs


class Trainer:
    """Trains ``model`` on ``train`` = (images, labels) with mini-batch SGD
    or Adam, evaluating on ``test`` at each epoch end. Images are uint8,
    grey (N, H, W) or colour (N, C, H, W) (scaled by 1/255 one batch at a
    time), or float in [0, 1].

    ``probe(trainer) -> dict`` runs in the training thread at each snapshot,
    between batches; its result is the snapshot's ``extra``.
    ``model_lock`` is held during each batch and each evaluation: hold it to
    use the model from another thread between batches."""

    def __init__(self, model: Sequential, train, test=None, config: TrainConfig | None = None,
                 probe=None):
        self.model = model
        self.config = (config or TrainConfig()).validate()
        self.train_images, self.train_labels = _split(train, "training")
        self.test = _split(test, "test")
        if self.config.limit is not None:
            self.train_images = self.train_images[:self.config.limit]
            self.train_labels = self.train_labels[:self.config.limit]
        self.probe = probe
        self.loss_fn = SoftmaxCrossEntropy()
        self.params = model.parameters()
        if not self.params:
            raise ValueError("the model has no parameters to train")
        self.dtype = model.dtype
        self._sizes = [p.value.size for p in self.params]
        self._backup = np.empty(sum(self._sizes), self.dtype)   # last weights with a finite loss
        self._backup_views = [v.reshape(p.value.shape) for v, p in
                              zip(np.split(self._backup, np.cumsum(self._sizes)[:-1]), self.params)]
        self._have_backup = False
        # None: the weights themselves are evaluated and kept
        self.average = WeightAverage(self.params) if self.config.average else None

        c = self.config
        self.base_lr = float(c.lr)            # the schedule scales this
        self.momentum = float(c.momentum)
        self.optimizer = self._make_optimizer(self.base_lr * self._lr_factor(0))
        self.rng = np.random.default_rng([c.seed, 1])   # augmentation
        self.history = History()
        self.model_lock = threading.RLock()
        # computes each batch's loss and gradients: here, or split over worker processes
        self.step_engine = make_step_engine(
            model, self.loss_fn, c.workers, sample_shape=_sample_shape(self.train_images),
            max_batch=c.batch_size, diverged_above=DIVERGED_LOSS)

        # progress (all in state_dict)
        self.epoch = 0            # epochs completed
        self.batch = 0            # batches done in the current epoch
        self.step = 0
        self.samples_seen = 0
        self._loss_ema = 0.0
        self._epoch_loss_sum = 0.0   # sums over the current epoch, weighted by batch size
        self._epoch_correct = 0
        self._epoch_samples = 0
        self._elapsed = 0.0
        self.last_loss = self.last_accuracy = float("nan")
        self.divergence = ""      # what the last divergence was, in words (see _diverged)
        self.test_loss = self.test_accuracy = None
        self.train_loss_epoch = self.train_accuracy_epoch = None

        # requests from other threads
        self._stop = threading.Event()
        self._pause = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._steps_pending = 0
        self._pending_lr = None
        self._pending_momentum = None
        self._pending_epochs = None
        self._running = False
        self._paused = False
        # (images evaluated, test images) while the test set is evaluated at
        # an epoch end, else None: read by other threads for a progress line
        self.evaluation_progress: tuple[int, int] | None = None
        # rates
        self._rate = None
        self._eval_seconds = None

    # --- geometry ---------------------------------------------------------
    @property
    def n_train(self) -> int:
        return len(self.train_labels)

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.n_train // self.config.batch_size)

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.batches_per_epoch

    def _warmup(self) -> int:
        """Batches of linear warm-up: ``warmup_steps``, at most a fifth of the run."""
        return min(self.config.warmup_steps, max(self.total_steps, 1) // 5)

    def _decay(self, step) -> float:
        """The schedule's decay alone (no warm-up): 1 at the start, non-increasing."""
        total, s = max(self.total_steps, 1), self.config.lr_schedule
        if s == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
        if s == "step":
            return 0.1 ** ((step >= 0.5 * total) + (step >= 0.75 * total))
        return 1.0

    def _lr_factor(self, step) -> float:
        warm = self._warmup()
        return ((step + 1) / warm if step < warm else 1.0) * self._decay(step)

    @property
    def lr(self) -> float:
        """Learning rate of the next batch (a rate set by ``set_lr`` included)."""
        pending = self._pending_lr
        return pending if pending is not None else self.base_lr * self._lr_factor(self.step)

    def _apply_lr(self, lr: float) -> None:
        """The next batch trains at exactly ``lr``: a warm-up still under way
        ends here (recorded in the config, so a checkpoint resumes it so) and
        the schedule decays from ``lr`` over the remaining steps."""
        s = self.step
        if s < self._warmup():
            self.config.warmup_steps = s
        d = self._decay(s)
        self.base_lr = lr / d if d > 0 else lr

    def _apply_epochs(self, epochs: int) -> None:
        """Re-plan the run for ``epochs``: the schedule is stretched (or
        shortened) to the new end. The next batch keeps its learning rate
        and the decay goes on from it over the new remaining steps; a warm-up
        under way finishes where it was planned. A run whose schedule had
        ended (cosine at 0) is re-planned as if it had been started with
        ``epochs``."""
        lr_now, warm, s = self.lr, self._warmup(), self.step
        ended = s >= self.total_steps or lr_now <= 0
        self.config.epochs = max(int(epochs), self._epoch_in_progress())
        self.config.warmup_steps = warm        # the warm-up's length does not move
        if s >= warm and not ended:
            d = self._decay(s)
            self.base_lr = lr_now / d if d > 0 else lr_now

    def _epoch_in_progress(self) -> int:
        """The least number of epochs the run can still be given."""
        return self.epoch + 1 if self.batch else max(self.epoch, 1)

    def _make_optimizer(self, lr):
        c = self.config
        if c.optimizer == "adam":
            return OPTIMIZERS["adam"](self.params, lr=lr, betas=(self.momentum, 0.999),
                                      weight_decay=c.weight_decay)
        return OPTIMIZERS[c.optimizer](self.params, lr=lr, momentum=self.momentum,
                                       weight_decay=c.weight_decay)

    # --- requests (any thread) ---------------------------------------------
    def request_pause(self):
        """Pause before the next batch (yields "paused", then blocks)."""
        self._pause.set()
        self._wake.set()

    def request_resume(self):
        self._pause.clear()
        self._wake.set()

    def request_step(self):
        """While paused: run exactly one batch, yield its snapshot, stay
        paused. While running: the same as request_pause."""
        with self._lock:
            if self._paused:
                self._steps_pending += 1
        self._pause.set()
        self._wake.set()

    def request_stop(self):
        """Yield "stopped" and return, before the next batch (wakes a pause)."""
        self._stop.set()
        self._wake.set()

    def set_lr(self, lr):
        """The next batch trains at exactly ``lr``; a warm-up under way ends
        there and the schedule decays from ``lr`` over the remaining steps.
        Not running: applied now; running: before the next batch."""
        lr = float(lr)
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"learning rate must be a positive number, got {lr!r}")
        if self._running:
            self._pending_lr = lr
        else:
            self._pending_lr = None
            self._apply_lr(lr)

    def set_momentum(self, m):
        """Momentum (SGD) or beta1 (Adam) from the next batch on."""
        m = float(m)
        if not 0 <= m < 1:
            raise ValueError(f"momentum must be in [0, 1), got {m!r}")
        if self._running:
            self._pending_momentum = m
        else:
            self._pending_momentum = None
            self._apply_momentum(m)

    def _apply_momentum(self, m: float) -> None:
        self.momentum = m
        if self.config.optimizer == "adam":
            self.optimizer.betas = (m, self.optimizer.betas[1])
        else:
            self.optimizer.momentum = m

    def set_epochs(self, epochs):
        """Re-plan the run for ``epochs`` in all (see ``_apply_epochs``): now
        when not running, else before the next batch. Fewer epochs than the
        one in progress is refused."""
        if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}")
        least = self._epoch_in_progress()
        if epochs < least:
            raise ValueError(f"epochs must be at least {least} (the epoch in progress), "
                             f"got {epochs}")
        if self._running:
            self._pending_epochs = int(epochs)
        else:
            self._pending_epochs = None
            self._apply_epochs(int(epochs))

    def _apply_pending(self) -> None:
        """Requests made while running, applied between batches (training thread)."""
        if self._pending_epochs is not None:
            epochs, self._pending_epochs = self._pending_epochs, None
            self._apply_epochs(epochs)
        if self._pending_lr is not None:
            self._apply_lr(self._pending_lr)
            self._pending_lr = None
        if self._pending_momentum is not None:
            m, self._pending_momentum = self._pending_momentum, None
            self._apply_momentum(m)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def running(self) -> bool:
        return self._running

    # --- the loop -------------------------------------------------------------
    def run(self):
        """Generator of Snapshots; see the module docstring."""
        self._running = True
        self.model.train()      # Dropout drops, BatchNorm2d learns its statistics
        try:
            yield from self._run()
        finally:
            self._running = self._paused = False
            self.step_engine.stop_workers()     # restarted by the next run

    def _run(self):
        c = self.config
        every, interval = c.snapshot_every, c.snapshot_interval
        self._t_active = time.perf_counter()
        self._last_snap = (self._t_active, self.samples_seen, self.history.n_batches,
                           self._elapsed)
        stepping = False
        while True:
            if self._pending_epochs is not None:    # fewer epochs may end the run here
                self._apply_pending()
            if self.epoch >= c.epochs:
                break
            perm = np.random.default_rng([c.seed, 0, self.epoch]).permutation(self.n_train)
            while True:
                if self._stop.is_set():
                    self._stop.clear()
                    self._pause.clear()
                    yield self._snapshot("stopped", message=self._stop_message())
                    return
                if self._pause.is_set() and not stepping:
                    if not self._paused:
                        self._enter_pause()
                        yield self._snapshot("paused")
                    action = self._wait_while_paused()
                    if action == "step":
                        stepping = True
                    elif action == "resume":
                        self._leave_pause()
                    continue
                if self.batch >= self.batches_per_epoch:
                    # A stop or pause request ends the evaluation (within one
                    # chunk); the epoch then ends when it is evaluated again.
                    snap = self._end_epoch(lambda: self._stop.is_set() or (
                        self._pause.is_set() and not stepping))
                    if snap is not None:
                        yield snap
                        break
                    continue
                t0 = time.perf_counter()
                ok = self._train_batch(perm)
                if c.delay:
                    self._stop.wait(c.delay)
                if stepping:
                    self._elapsed += time.perf_counter() - t0
                if not ok:
                    stepping = False
                    d = self._diverged()
                    yield d
                    if c.pause_on_divergence:
                        self._pause.set()
                        continue
                    yield self._snapshot("stopped", message=f"Stopped. {d.message}")
                    return
                if stepping:
                    stepping = False
                    yield self._snapshot("batch")
                elif self.batch == self.batches_per_epoch:
                    pass        # the epoch snapshot follows
                elif interval is not None:
                    if time.perf_counter() - self._last_snap[0] >= interval:
                        yield self._snapshot("batch")
                elif self.batch % every == 0:
                    yield self._snapshot("batch")
        if self.average is not None:
            with self.model_lock:
                self.average.copy_to_model()
        yield self._snapshot("finished", message=self._summary_message())

    def _stop_message(self) -> str:
        if self.batch >= self.batches_per_epoch and self.test is not None:
            return (f"stopped on request, before the test set was evaluated at the end of "
                    f"epoch {self.epoch + 1} (Continue evaluates it)")
        return "stopped on request"

    def _enter_pause(self):
        self._elapsed += time.perf_counter() - self._t_active
        self._paused = True

    def _leave_pause(self):
        self._paused = False
        self._t_active = time.perf_counter()

    def _wait_while_paused(self) -> str:
        """Block (no busy wait) until a stop, a step or a resume."""
        while True:
            self._wake.clear()
            if self._stop.is_set():
                self._leave_pause()
                return "stop"
            with self._lock:
                if self._steps_pending:
                    self._steps_pending -= 1
                    return "step"
                if not self._pause.is_set():
                    return "resume"
            self._wake.wait(0.5)

    def _train_batch(self, perm) -> bool:
        """One optimisation step; False (nothing changed but the restored
        weights) if the loss was not finite."""
        c, bs = self.config, self.config.batch_size
        self._apply_pending()
        lr = self.lr
        self.optimizer.lr = lr
        idx = perm[self.batch * bs:(self.batch + 1) * bs]
        xb, yb = self.train_images[idx], self.train_labels[idx]
        if c.shift:
            xb = random_shift(xb, c.shift, self.rng)
        x = _as_input(xb, self.dtype)
        with self.model_lock, np.errstate(over="ignore", invalid="ignore"):
            loss, correct = self.step_engine.gradients(x, yb)
            if not loss < DIVERGED_LOSS:        # nan, inf, or blown up
                self._restore(loss)
                return False
            for view, p in zip(self._backup_views, self.params):
                view[...] = p.value
            self._have_backup = True
            self.optimizer.step()
            if self.average is not None:
                self.average.update()
        n = len(yb)
        self.batch += 1
        self.step += 1
        self.samples_seen += n
        self.last_loss, self.last_accuracy = loss, correct / n
        self._loss_ema = 0.98 * self._loss_ema + 0.02 * loss
        self._epoch_loss_sum += loss * n
        self._epoch_correct += correct
        self._epoch_samples += n
        self.history.append_batch(self.step, self.samples_seen, loss, correct / n, lr,
                                  self.momentum)
        return True

    def _restore(self, loss):
        self._bad_loss = loss
        if self._have_backup:
            for view, p in zip(self._backup_views, self.params):
                p.value[...] = view
        if self.average is not None:      # the weights that failed are in it: out again
            self.average.undo()
        self.optimizer = self._make_optimizer(self.lr)

    def _diverged(self):
        e, b = self.epoch + 1, self.batch + 1
        # what happened, for any caller (the CLI, which cannot resume, says its own next step)
        self.divergence = (f"the loss became {self._bad_loss:.4g} at epoch {e}, batch {b} "
                           f"(step {self.step + 1}): the learning rate ({self.lr:.3g}) is "
                           f"likely too high")
        msg = (f"{self.divergence[0].upper()}{self.divergence[1:]}. The last weights that gave "
               f"a finite loss were restored and the optimizer's state reset; lower the "
               f"learning rate and resume.")
        return self._snapshot("diverged", message=msg)

    def _end_epoch(self, interrupted=None):
        """Evaluate the test set and close the epoch; its "epoch" snapshot.
        None if ``interrupted()`` became true during the evaluation: then
        nothing changed (no half-evaluated result is kept)."""
        t0 = time.perf_counter()
        probs = preds = None
        test_loss, test_accuracy = self.test_loss, self.test_accuracy
        if self.test is not None:
            self.evaluation_progress = (0, len(self.test[1]))
            try:
                result = self._evaluate(*self.test, batch=EVAL_CHUNK, interrupted=interrupted,
                                        averaged=True)
            finally:
                self.evaluation_progress = None
            if result is None:
                return None
            test_loss, test_accuracy, preds, probs = result
        self._eval_seconds = time.perf_counter() - t0
        n = max(self._epoch_samples, 1)
        self.train_loss_epoch = self._epoch_loss_sum / n
        self.train_accuracy_epoch = self._epoch_correct / n
        self.test_loss, self.test_accuracy = test_loss, test_accuracy
        self.epoch += 1
        self.batch = 0
        self._epoch_loss_sum, self._epoch_correct, self._epoch_samples = 0.0, 0, 0
        elapsed = self.elapsed
        self.history.append_epoch(epoch=self.epoch, step=self.step, samples_seen=self.samples_seen,
                                  train_loss=self.train_loss_epoch,
                                  train_accuracy=self.train_accuracy_epoch,
                                  test_loss=self.test_loss, test_accuracy=self.test_accuracy,
                                  elapsed=elapsed)
        snap = self._snapshot("epoch", message=self._summary_message())
        snap.test_predictions, snap.test_probs = preds, probs
        return snap

    def _summary_message(self):
        if self.history.n_epochs == 0:
            return ""
        msg = (f"epoch {self.epoch}/{self.config.epochs}: train loss {self.train_loss_epoch:.4f}, "
               f"accuracy {100 * self.train_accuracy_epoch:.2f}%")
        if self.test_accuracy is not None:
            msg += f"; test loss {self.test_loss:.4f}, accuracy {100 * self.test_accuracy:.2f}%"
            if self.average is not None:
                msg += " (averaged weights)"
        return msg

    @property
    def elapsed(self) -> float:
        """Seconds of running (pauses excluded)."""
        if self._running and not self._paused:
            return self._elapsed + time.perf_counter() - self._t_active
        return self._elapsed

    def _snapshot(self, kind, message=""):
        now, elapsed = time.perf_counter(), self.elapsed
        t_prev, s_prev, row_prev, e_prev = self._last_snap
        ds, de = self.samples_seen - s_prev, elapsed - e_prev
        if kind != "epoch" and ds > 0 and de > 0:   # an epoch's interval holds the evaluation
            inst = ds / de
            self._rate = inst if self._rate is None else 0.7 * self._rate + 0.3 * inst
        rate = self._rate or 0.0
        remaining = max(self.config.epochs * self.n_train - self.samples_seen, 0)
        eta = remaining / rate if rate else float("nan")
        if rate and self.test is not None and self._eval_seconds is not None:
            eta += self._eval_seconds * (self.config.epochs - self.epoch)
        k = self.step
        smoothed = self._loss_ema / (1 - 0.98 ** k) if k else float("nan")
        in_epoch = self.epoch + 1 if self.batch or self.epoch == 0 else self.epoch
        batch = self.batch if self.batch or self.epoch == 0 else self.batches_per_epoch
        snap = Snapshot(
            kind=kind, epoch=in_epoch, batch=batch, batches_per_epoch=self.batches_per_epoch,
            step=self.step, samples_seen=self.samples_seen, loss=self.last_loss,
            accuracy=self.last_accuracy, smoothed_loss=smoothed, lr=self.lr,
            samples_per_sec=rate, elapsed=elapsed, eta=eta, test_loss=self.test_loss,
            test_accuracy=self.test_accuracy, train_loss_epoch=self.train_loss_epoch,
            train_accuracy_epoch=self.train_accuracy_epoch, message=message,
            epochs=self.config.epochs, momentum=self.momentum,
            paused=self._paused or kind == "paused"
            or (kind == "diverged" and self.config.pause_on_divergence),
            batches=self.history.batches(row_prev))
        self._last_snap = (now, self.samples_seen, self.history.n_batches, elapsed)
        if self.probe is not None:
            snap.extra = dict(self.probe(self) or {})
        return snap

    # --- evaluation ---------------------------------------------------------------
    def evaluate(self, images, labels, batch=1000):
        """(mean loss, accuracy, predictions) over a whole set, forward only,
        ``batch`` images at a time. Images as for training."""
        loss, acc, preds, _ = self._evaluate(*_split((images, labels), "evaluation"), batch)
        return loss, acc, preds

    def predict_proba(self, images, batch=1000) -> np.ndarray:
        """Softmax probabilities (N, classes), float32."""
        images = np.asarray(images)
        if images.ndim == 4 and images.shape[1] == 1:
            images = images[:, 0]
        out = []
        with self.model_lock:
            for i in range(0, len(images), batch):
                out.append(F.softmax(self.step_engine.predict(_as_input(images[i:i + batch],
                                                                        self.dtype))))
        return np.concatenate(out).astype(np.float32, copy=False)

    def _evaluate(self, images, labels, batch=1000, interrupted=None, averaged=False):
        """evaluate_model under the model lock (taken per chunk), split over
        the step engine's workers, with ``evaluation_progress`` kept current;
        None if interrupted. ``averaged``: of the averaged weights (if the
        run keeps an average), swapped in chunk by chunk, so the model holds
        its own weights whenever the lock is free."""
        def progress(done, total):
            self.evaluation_progress = (done, total)
        predict = self.step_engine.predict
        if averaged and self.average is not None:
            def predict(x, average=self.average, own=predict):
                with average.swapped_in():
                    return own(x)
        return evaluate_model(self.model, images, labels, batch, predict,
                              lock=self.model_lock, interrupted=interrupted, progress=progress)

    # --- checkpoints -------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: weights, optimizer, progress,
        history, RNG. Arrays are copies."""
        return {
            "model": self.model.state_dict(),
            "average": None if self.average is None else self.average.values(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history.to_dict(),
            "config": asdict(self.config),
            "progress": {
                "epoch": self.epoch, "batch": self.batch, "step": self.step,
                "samples_seen": self.samples_seen, "base_lr": self.base_lr,
                "momentum": self.momentum, "loss_ema": self._loss_ema,
                "epoch_loss_sum": self._epoch_loss_sum, "epoch_correct": self._epoch_correct,
                "epoch_samples": self._epoch_samples, "elapsed": self.elapsed,
                "last_loss": self.last_loss, "last_accuracy": self.last_accuracy,
                "test_loss": self.test_loss, "test_accuracy": self.test_accuracy,
                "train_loss_epoch": self.train_loss_epoch,
                "train_accuracy_epoch": self.train_accuracy_epoch,
                "rng": self.rng.bit_generator.state,
                "average_count": 0 if self.average is None else self.average.count,
            },
        }

    def load_state_dict(self, d: dict):
        """Restore a state_dict (not while running). The trainer's own config
        (e.g. more epochs) is kept; resuming is exact when it is unchanged.
        All or nothing: everything is converted and checked (weights against
        the model, optimizer state against the config) before the trainer
        changes, so a ValueError / KeyError leaves it as it was."""
        if self._running:
            raise RuntimeError("cannot load a state into a running trainer")
        p = d["progress"]
        optimizer = self._make_optimizer(self.lr)        # hyperparameters come from the state
        optimizer.load_state_dict(d["optimizer"])
        for name, bufs in d["optimizer"]["buffers"].items():
            shape = self.model[name.rsplit(".", 1)[0]].params[name.rsplit(".", 1)[1]].shape
            if any(np.shape(b) != shape for b in bufs):
                raise ValueError(f"optimizer buffer of {name} does not have its shape {shape}")
        history = History.from_dict(d["history"], {"momentum": float(p["momentum"])})
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = p["rng"]
        ints = {k: int(p[k]) for k in ("epoch", "batch", "step", "samples_seen", "epoch_correct",
                                       "epoch_samples")}
        floats = {k: float(p[k]) for k in ("base_lr", "momentum", "loss_ema", "epoch_loss_sum",
                                           "elapsed", "last_loss", "last_accuracy")}
        maybe = {k: None if p[k] is None else float(p[k])
                 for k in ("test_loss", "test_accuracy", "train_loss_epoch", "train_accuracy_epoch")}
        average = d.get("average")
        if average is not None:
            shapes = {q.name: q.value.shape for q in self.params}
            if set(average) != set(shapes):
                raise ValueError(f"the averaged weights name {sorted(average)}, the model's "
                                 f"parameters are {sorted(shapes)}")
            for name, v in average.items():
                if np.shape(v) != shapes[name]:
                    raise ValueError(f"averaged weights of {name} do not have its shape "
                                     f"{shapes[name]}")
        self.model.load_state_dict(d["model"])           # checks every name and shape first
        # nothing below can fail
        self.optimizer, self.history, self.rng = optimizer, history, rng
        self.epoch, self.batch, self.step = ints["epoch"], ints["batch"], ints["step"]
        self.samples_seen = ints["samples_seen"]
        self._epoch_correct, self._epoch_samples = ints["epoch_correct"], ints["epoch_samples"]
        self.base_lr, self.momentum = floats["base_lr"], floats["momentum"]
        self._loss_ema, self._epoch_loss_sum = floats["loss_ema"], floats["epoch_loss_sum"]
        self._elapsed = floats["elapsed"]
        self.last_loss, self.last_accuracy = floats["last_loss"], floats["last_accuracy"]
        for k, v in maybe.items():
            setattr(self, k, v)
        self._have_backup = False
        if self.average is not None:
            if average is None:         # a run made without one: it starts here
                self.average.reset()
            else:
                self.average.load(average, int(p.get("average_count") or 0))

    def save_checkpoint(self, path, metadata: dict | None = None):
        """One .npz (atomic): a model file that ``cnnviz.engine.load`` opens,
        plus the trainer's state for ``load_checkpoint``."""
        state = self.state_dict()
        header = {"format": FORMAT, "version": VERSION, "architecture": architecture(self.model),
                  "metadata": {"checkpoint": True, **(metadata or {})}}
        arrays = state_members(self.model, state["model"])
        opt = dict(state["optimizer"])
        for name, bufs in opt.pop("buffers").items():
            for i, b in enumerate(bufs):
                arrays[f"opt/{i}/{name}"] = b
        arrays.update({f"history/{k}": v for k, v in state["history"].items()})
        arrays.update({f"average/{k}": v for k, v in (state["average"] or {}).items()})
        meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "optimizer": opt,
                "config": state["config"], "progress": state["progress"]}
        atomic_savez(path, arrays, {"header": np.array(json.dumps(header)),
                                    "trainer": np.array(json.dumps(meta))})

    @classmethod
    def from_checkpoint(cls, path, train, test=None, probe=None, **overrides):
        """A new trainer that continues a checkpoint (config from the file,
        with ``overrides``, e.g. epochs=10). The whole file is checked first
        (``load_checkpoint``): on any problem it raises (CheckpointError for
        the file, ValueError for the data or overrides) and nothing that
        exists was changed, so a caller replaces its current run only after
        this returns."""
        model, state = load_checkpoint(path)
        config = TrainConfig(**{**state["config"], **overrides})
        trainer = cls(model, train, test, config, probe)
        trainer.load_state_dict(state)
        return trainer


CHECKPOINT_FORMAT = "cnnviz-trainer"
CHECKPOINT_VERSION = 1
_HISTORY_INTS = {"step", "samples_seen", "epoch"}     # the other History columns are floats


def load_checkpoint(path):
    """(model, state) from ``Trainer.save_checkpoint``; pass the state to
    ``Trainer.load_state_dict``.

    The WHOLE file is read and checked before anything is returned, and
    nothing outside is touched: the model file (see ``serialization``), then
    every trainer field (types, ranges, ``TrainConfig.validate``), the
    optimizer buffers (names, shapes and dtypes of the parameters they
    belong to, finite), the history (every column present, of one length per
    kind, matching the step and epoch counts) and the RNG state (a valid
    PCG64 state). Nothing is clamped, zero-filled or defaulted except
    training settings an older file did not have. Any problem raises one
    CheckpointError (a ModelFileError) naming the file and the field, e.g.
    "ck.npz: trainer.progress.base_lr: expected a number > 0, got null".
    So a caller (the GUI) may call this first and replace its current run
    only after it returned."""
    with open_archive(path, CheckpointError) as archive:
        contents = read_model(archive)
        if "trainer" not in archive:
            raise NpzError("a model file, but not a training checkpoint (no trainer state)")
        meta = jf.parse(archive.text("trainer", MAX_HEADER_CHARS), "trainer")
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise FieldError(f"trainer: not a cnnviz training checkpoint "
                             f"(no \"format\": \"{CHECKPOINT_FORMAT}\")")
        jf.obj(meta, "trainer", allowed=("format", "version", "optimizer", "config", "progress"),
               required=("version", "optimizer", "config", "progress"))
        version = jf.whole(meta["version"], "trainer.version", 1)
        if version > CHECKPOINT_VERSION:
            raise FieldError(f"trainer.version: made by a newer cnnviz (version {version}, "
                             f"this one reads {CHECKPOINT_VERSION})")
        if contents.nonfinite:
            name, count = next(iter(contents.nonfinite.items()))
            kind = "buffer" if name in {b.name for b in contents.model.buffers()} else "param"
            raise NpzError(f"{kind}/{name}: {count:,} NaN or infinite weights; "
                           f"training cannot resume from them")
        config = _checked_config(meta["config"])
        progress = _checked_progress(meta["progress"])
        optimizer = _checked_optimizer(meta["optimizer"], config, progress, contents, archive)
        history = _checked_history(archive, progress)
        average = _checked_average(archive, contents, config, progress)
    state = {"model": contents.model.state_dict(), "optimizer": optimizer, "history": history,
             "config": config, "progress": progress, "average": average}
    return contents.model, state


_CONFIG_TYPES = {"bool": jf.flag, "str": jf.text, "float": jf.number,
                 "int": lambda v, where: jf.whole(v, where, None)}


def _checked_config(raw) -> dict:
    """Every TrainConfig field of the right JSON type (defaults for fields an
    older file lacks), then TrainConfig.validate for the ranges."""
    jf.obj(raw, "trainer.config", allowed=[f.name for f in fields(TrainConfig)])
    # a file from before weight averaging continues without it, as it was made
    config = {**asdict(TrainConfig()), "average": False}
    for f in fields(TrainConfig):
        if f.name not in raw:
            continue
        where, v, kind = f"trainer.config.{f.name}", raw[f.name], str(f.type)
        check = _CONFIG_TYPES.get(kind.removesuffix(" | None"))
        if check is None:           # a type without a JSON check here: validate() judges it
            config[f.name] = v
        else:
            config[f.name] = jf.optional(check, v, where) if "None" in kind else check(v, where)
    jf.whole(config["seed"], "trainer.config.seed", 0, 2 ** 64 - 1, "2**64 - 1")
    try:
        TrainConfig(**config).validate()
    except ValueError as e:         # "batch_size must be ..." names the field first
        name, _, why = str(e).partition(" ")
        raise FieldError(f"trainer.config.{name}: {why}") from None
    return config


_PROGRESS = {
    **{k: (jf.whole, 0) for k in ("epoch", "batch", "step", "samples_seen",
                                                "epoch_correct", "epoch_samples")},
    "base_lr": (jf.number, 0, math.inf, {"lo_open": True}),
    "momentum": (jf.number, 0, 1, {"hi_open": True}),
    "loss_ema": (jf.number, 0), "epoch_loss_sum": (jf.number, 0), "elapsed": (jf.number, 0),
    "last_loss": (jf.number, 0, math.inf, {"nan": True}),
    "last_accuracy": (jf.number, 0, 1, {"nan": True}),
}
_PROGRESS_NEWER = ("average_count",)     # absent from older files (None then)
_PROGRESS_OPTIONAL = {"test_loss": (0, math.inf, {"finite": False}), "test_accuracy": (0, 1, {}),
                      "train_loss_epoch": (0, math.inf, {}), "train_accuracy_epoch": (0, 1, {})}


def _checked_progress(raw) -> dict:
    names = [*_PROGRESS, *_PROGRESS_OPTIONAL, "rng"]
    jf.obj(raw, "trainer.progress", allowed=[*names, *_PROGRESS_NEWER], required=names)
    p = {k: None if k not in raw else jf.whole(raw[k], f"trainer.progress.{k}", 0)
         for k in _PROGRESS_NEWER}
    for k, (check, *args) in _PROGRESS.items():
        kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
        p[k] = check(raw[k], f"trainer.progress.{k}", *args, **kwargs)
    for k, (lo, hi, kwargs) in _PROGRESS_OPTIONAL.items():
        p[k] = jf.optional(jf.number, raw[k], f"trainer.progress.{k}", lo, hi, **kwargs)
    for small, big in (("batch", "step"), ("epoch_correct", "epoch_samples"),
                       ("epoch_samples", "samples_seen")):
        if p[small] > p[big]:
            raise FieldError(f"trainer.progress.{small}: {p[small]:,} is more than "
                             f"progress.{big} ({p[big]:,})")
    p["rng"] = _checked_rng(raw["rng"], "trainer.progress.rng")
    return p


def _checked_rng(raw, where) -> dict:
    jf.obj(raw, where, allowed=("bit_generator", "state", "has_uint32", "uinteger"),
           required=("bit_generator", "state", "has_uint32", "uinteger"))
    jf.text(raw["bit_generator"], f"{where}.bit_generator", ("PCG64",))
    state = jf.obj(raw["state"], f"{where}.state", allowed=("state", "inc"),
                   required=("state", "inc"))
    for k in ("state", "inc"):
        jf.whole(state[k], f"{where}.state.{k}", 0, 2 ** 128 - 1, "2**128 - 1")
    jf.whole(raw["has_uint32"], f"{where}.has_uint32", 0, 1)
    jf.whole(raw["uinteger"], f"{where}.uinteger", 0, 2 ** 32 - 1)
    try:
        np.random.PCG64().state = raw
    except (ValueError, TypeError, OverflowError) as e:
        raise FieldError(f"{where}: not a valid PCG64 state ({e})") from None
    return raw


def _checked_optimizer(raw, config, progress, contents, archive) -> dict:
    where = "trainer.optimizer"
    jf.obj(raw, where, allowed=("type", "hyper", "steps"), required=("type", "hyper", "steps"))
    cls = OPTIMIZERS[config["optimizer"]]
    jf.text(raw["type"], f"{where}.type", (cls.__name__,))
    unit = {"lo": 0, "hi": 1, "hi_open": True}
    checks = {"lr": {"lo": 0}, "weight_decay": {"lo": 0}}
    if cls.__name__ == "Adam":
        checks["eps"] = {"lo": 0, "lo_open": True}
    else:
        checks["momentum"] = unit
    names = [*checks, *(("betas",) if cls.__name__ == "Adam" else ())]
    hyper = jf.obj(raw["hyper"], f"{where}.hyper", allowed=names, required=names)
    hyper = {k: jf.number(hyper[k], f"{where}.hyper.{k}", **kw) for k, kw in checks.items()}
    if "betas" in names:
        betas = jf.array(raw["hyper"]["betas"], f"{where}.hyper.betas")
        if len(betas) != 2:
            raise FieldError(f"{where}.hyper.betas: expected 2 numbers, got {len(betas)}")
        hyper["betas"] = tuple(jf.number(b, f"{where}.hyper.betas[{i}]", **unit)
                               for i, b in enumerate(betas))
    steps = jf.whole(raw["steps"], f"{where}.steps", 0, progress["step"])
    return {"type": cls.__name__, "hyper": hyper, "steps": steps,
            "buffers": _checked_buffers(archive, cls.__name__, contents)}


def _checked_buffers(archive, kind, contents) -> dict:
    """opt/<i>/<param> arrays: i = 0 (SGD velocity, for every parameter or
    none) or 0 and 1 (Adam's m and v, for every parameter)."""
    params = {p.name: p.value for p in contents.model.parameters()}
    slots = 2 if kind == "Adam" else 1
    found: dict[str, dict[int, str]] = {}
    for member in archive.names:
        if not member.startswith("opt/"):
            continue
        slot, _, name = member[len("opt/"):].partition("/")
        if slot not in [str(i) for i in range(slots)] or name not in params:
            raise NpzError(f"{member}: not an optimizer buffer of this model ({kind} keeps "
                           f"opt/{'0' if slots == 1 else '0 and opt/1'}/<parameter>)")
        found.setdefault(name, {})[int(slot)] = member
    if found or kind == "Adam":
        for name in params:
            for i in range(slots):
                if i not in found.get(name, {}):
                    raise NpzError(f"opt/{i}/{name}: missing ({kind} keeps one for every "
                                   f"parameter{' once it has taken a step' if slots == 1 else ''})")
    buffers = {}
    for name, members in found.items():
        for _, member in sorted(members.items()):
            buffers.setdefault(name, []).append(
                _like_param(archive, member, params[name], contents.file_dtypes[name], name))
    return buffers


def _like_param(archive, member, param, stored, name) -> np.ndarray:
    """The array ``member``, finite and stored as the parameter ``name``
    (``param``, stored as ``stored``) is, in the model's dtype."""
    head = archive.header(member)
    if head.dtype != stored or head.shape != param.shape:
        raise NpzError(f"{member}: {head.dtype} of shape {head.shape}; the parameter "
                       f"{name} is {stored} of shape {param.shape}")
    values = archive.read(member)
    if not np.isfinite(values).all():
        raise NpzError(f"{member}: NaN or infinite values")
    return values.astype(param.dtype)


def _checked_average(archive, contents, config, progress) -> dict | None:
    """average/<param> arrays and progress.average_count (a run that averages
    its weights keeps both, for every parameter, at most one update a step),
    or None for a run that does not."""
    params = {p.name: p.value for p in contents.model.parameters()}
    members = [m for m in archive.names if m.startswith("average/")]
    if not config["average"]:
        if members:
            raise NpzError(f"{members[0]}: averaged weights in a run that does not average "
                           f"(trainer.config.average is false)")
        return None
    count = progress["average_count"]
    if count is None:
        raise FieldError("trainer.progress.average_count: missing (a run that averages its "
                         "weights counts the updates of the average)")
    if count > progress["step"]:
        raise FieldError(f"trainer.progress.average_count: {count:,} updates of the average, "
                         f"more than the run's {progress['step']:,} steps")
    average = {}
    for member in members:
        name = member[len("average/"):]
        if name not in params:
            raise NpzError(f"{member}: not a parameter of this model")
        average[name] = _like_param(archive, member, params[name], contents.file_dtypes[name],
                                    name)
    missing = [name for name in params if name not in average]
    if missing:
        raise NpzError(f"average/{missing[0]}: missing (a run that averages its weights keeps "
                       f"their average for every parameter)")
    return average


def _checked_history(archive, progress) -> dict:
    """Every History column (those of History.OPTIONAL_BATCH may be absent:
    older files), one length per kind: the step count for the batch rows,
    the epoch count for the epoch rows."""
    columns = {f"history/{kind}/{k}": (kind, k) for kind, cols in
               (("batch", History.BATCH), ("epoch", History.EPOCH)) for k, _ in cols}
    for member in archive.names:
        if member.startswith("history/") and member not in columns:
            raise NpzError(f"{member}: not a history column")
    rows = {"batch": progress["step"], "epoch": progress["epoch"]}
    history = {}
    for member, (kind, k) in columns.items():
        if member not in archive and kind == "batch" and k in History.OPTIONAL_BATCH:
            continue            # an older checkpoint: History.from_dict fills it
        if member not in archive:
            raise NpzError(f"{member}: missing")
        head = archive.header(member)
        want = "integers" if k in _HISTORY_INTS else "floats"
        if head.dtype.kind not in ("iu" if k in _HISTORY_INTS else "f"):
            raise NpzError(f"{member}: dtype {head.dtype}, expected {want}")
        if head.shape != (rows[kind],):
            raise NpzError(f"{member}: shape {head.shape}, but the checkpoint has "
                           f"{rows[kind]:,} {kind}{'es' if kind == 'batch' else 's'} "
                           f"(progress.{'step' if kind == 'batch' else 'epoch'})")
        history[f"{kind}/{k}"] = archive.read(member)
    for key in ("batch/step", "epoch/epoch"):
        if not np.array_equal(history[key], np.arange(1, len(history[key]) + 1)):
            raise NpzError(f"history/{key}: expected 1, 2, 3, ... (one row per "
                           f"{key.split('/')[1]})")
    return history


Trainer.load_checkpoint = staticmethod(load_checkpoint)
