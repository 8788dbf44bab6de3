"""The `cnnviz` command.

    cnnviz                      open the GUI (also: cnnviz gui)
    cnnviz train [options]      train headless with a progress bar (--model M, --arch FILE.json)
    cnnviz summary [FILE]       print the architecture table of a model (.npz), an
                                architecture file (.json) or --model M
    cnnviz eval MODEL.npz       print a saved model's test accuracy (--data: on its own dataset)
    cnnviz cache [--clear]      where the image-folder cache is and its size; empty it
    cnnviz bench [args]         run bench/engine.py (source checkouts)

Headless commands never import Qt. Every error is one line on stderr,
`cnnviz: error: ...`, naming the file or option and what is wrong, never a
traceback; exit status 2 for bad arguments, 1 for everything else, 130 after
Ctrl-C. An unforeseen exception (a bug) also ends in one line, which says
where the full traceback was written (crash-*.log under $XDG_STATE_HOME/cnnviz,
else ~/.local/state/cnnviz, else the temporary directory). Output cut short by
a closed pipe (`cnnviz summary | head -1`) ends quietly with status 1, as
Python's own recipe for SIGPIPE does.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path


PROG = "cnnviz"

BATCH_MEMORY_BUDGET = 4 << 30
"""The most memory one training batch may need: 4 GiB.

Estimated before training from the model's summary: the input plus every
layer's output, per image, times ``_ACTIVATION_FACTOR`` (forward caches, im2col
buffers and gradients; measured peak over that sum: 3.8 for `small`, 4.0 for
`lenet5`, at batch 4000), times the float size. For LeNet-5 on 28x28 images
that is about 265 KB an image, so batches up to about 16,000 images fit; a
larger --batch-size is refused with the figure before the first batch."""
_ACTIVATION_FACTOR = 4


class CliError(Exception):
    """A user error: printed as one line, exit status 1."""


# --- argument types ----------------------------------------------------------
def _number(convert, minimum, strict, kind, bound_text):
    """An argparse type: ``convert(s)`` that must be finite and >= (or >,
    when ``strict``) ``minimum``; clear messages for anything else."""
    def parse(s):
        try:
            v = convert(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {s!r}") from None
        if v != v or v in (float("inf"), float("-inf")) or v < minimum or (strict and v == minimum):
            raise argparse.ArgumentTypeError(f"must be {bound_text}, got {s}")
        return v
    return parse


_positive_int = _number(int, 1, False, "a whole number", "at least 1")
_nonneg_int = _number(int, 0, False, "a whole number", "0 or more")
_positive_float = _number(float, 0.0, True, "a number", "a positive number")


def _fraction(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {s}")
    return v


def _nonneg_float(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not 0 <= v < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {s}")
    return v


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() returns a status,
    and says it in one line (pointing at --help rather than printing usage)."""

    def error(self, message):
        raise _UsageError(f"{PROG}: error: {message} (see `{self.prog} --help`)")


class _UsageError(Exception):
    """Bad arguments: printed as one line, exit status 2."""


def _model_names() -> list[str]:
    """--model choices: the engine's models and the bundled architecture files."""
    from cnnviz.engine.architecture import bundled
    from cnnviz.engine.models import MODELS
    return sorted({*MODELS, *bundled()})


def _add_dataset_options(p) -> None:
    """--data/--data-dir, --size and --grey/--colour: the same for train and
    eval (_dataset_spec reads them)."""
    data = p.add_mutually_exclusive_group()
    data.add_argument("--data", default=None, metavar="DATA",
                      help="the dataset (docs/datasets.md): mnist (the default, bundled), "
                           "colored-mnist (generated from it, 3x28x28), folder:PATH (one "
                           "subfolder per class of images), cifar10:PATH (CIFAR-10's binary "
                           "version), or PATH, a directory of the four IDX files")
    data.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                      help="directory of the four IDX files, raw or .gz, each declaring at most "
                           "1 GiB of data (default: the bundled MNIST); the same as --data DIR")
    p.add_argument("--size", default=None, metavar="HxW",
                   help="image folders: the size images are resized to (default: the "
                        "network's input)")
    tone = p.add_mutually_exclusive_group()
    tone.add_argument("--grey", "--gray", dest="colour", action="store_false", default=None,
                      help="image folders and CIFAR-10: load the images grey")
    tone.add_argument("--colour", "--color", dest="colour", action="store_true",
                      help="image folders: load the images in colour (default: as the "
                           "network's input: colour for a 3-channel network)")


def build_parser() -> argparse.ArgumentParser:
    from cnnviz.engine.trainer import LR_SCHEDULES
    models = _model_names()

    p = _Parser(prog=PROG, description="See how a convolutional network works. "
                "With no command, opens the GUI.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("gui", help="open the GUI (the default)")

    t = sub.add_parser("train", help="train a model on MNIST, an image folder, CIFAR-10, "
                       "coloured MNIST or any IDX dataset, headless",
                       description="Train headless with a progress bar; prints the test "
                       "accuracy after each epoch.")
    which = t.add_mutually_exclusive_group()
    which.add_argument("--model", choices=models, default="lenet5",
                       help="the network (default lenet5): a built-in model or a bundled "
                            "architecture file")
    which.add_argument("--arch", type=Path, default=None, metavar="FILE.json",
                       help="the network described in an architecture file "
                            "(docs/architecture-format.md), with fresh weights")
    t.add_argument("--epochs", type=_positive_int, default=5, help="passes over the training "
                   "images (default 5)")
    t.add_argument("--batch-size", type=_positive_int, default=64,
                   help="images per batch (default 64); more than the training images means "
                        "the whole set, and a batch needing over 4 GiB is refused")
    t.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: 0.05 for sgd, 0.001 for adam)")
    t.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd",
                   help="default sgd")
    t.add_argument("--momentum", type=_fraction, default=0.9,
                   help="SGD momentum, or Adam's beta1 (default 0.9)")
    t.add_argument("--weight-decay", type=_nonneg_float, default=5e-4,
                   help="L2 weight decay (default 5e-4)")
    t.add_argument("--schedule", choices=list(LR_SCHEDULES), default="cosine",
                   help="learning-rate schedule (default cosine)")
    t.add_argument("--warmup", type=_nonneg_int, default=100, metavar="STEPS",
                   help="linear learning-rate warm-up over the first STEPS batches (default "
                        "100), at most a fifth of the run's batches")
    t.add_argument("--no-average", dest="average", action="store_false",
                   help="test and keep the weights themselves. By default the test set is run "
                        "on a running average of the weights over about the last 500 batches, "
                        "which reaches a given accuracy sooner, and the model ends with it")
    _add_dataset_options(t)
    t.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="train on the first N training images only (all of them if N is more)")
    t.add_argument("--seed", type=_nonneg_int, default=0,
                   help="seeds the initial weights, the shuffling and the shifts (default 0)")
    t.add_argument("--shift", type=_nonneg_int, default=None, metavar="N",
                   help="random shifts of up to N pixels (augmentation; default 1, the "
                        "trainer's; 0: none); "
                        "less than the image side")
    t.add_argument("--save", default=None, metavar="PATH",
                   help="save the trained model to this file (.npz); checked before training "
                        "(its directory is created if needed). A directory, or a path ending "
                        "in /, is refused. An interrupted run (Ctrl-C) never writes PATH: it "
                        "saves beside it as NAME.interrupted.npz and leaves PATH as it was; "
                        "a second Ctrl-C stops at once and saves nothing. A diverged run "
                        "saves nothing")
    t.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="processes that compute each batch together (default: one per core; "
                        "1: this process alone)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("summary", help="print a model's architecture table")
    s.add_argument("file", nargs="?", type=Path, default=None,
                   help="a saved model (.npz) or an architecture file (.json); default: --model")
    s.add_argument("--model", choices=models, default="lenet5",
                   help="the network when no file is given (default lenet5): a built-in model "
                        "or a bundled architecture file")

    e = sub.add_parser("eval", help="print a saved model's test accuracy",
                       description="Evaluate a saved model on a dataset's test split: the "
                       "accuracy, and per class when the classes fit in a few lines.")
    e.add_argument("model", type=Path, metavar="MODEL.npz")
    _add_dataset_options(e)
    e.add_argument("--seed", type=_nonneg_int, default=None,
                   help="image folders without train/ and test/: the seed of the split "
                        "(default: the --seed the model was trained with, from its file, else 0)")
    e.add_argument("--batch-size", type=_positive_int, default=1000,
                   help="images evaluated at a time (default 1000)")

    c = sub.add_parser("cache", help="show where the decoded image folders are cached, or "
                       "empty the cache",
                       description="Image folders are decoded once and kept in a cache "
                       "(docs/datasets.md); the least recently used go first past 2 GiB.")
    c.add_argument("--clear", action="store_true", help="delete every cached image folder")

    b = sub.add_parser("bench", help="run bench/engine.py (in a source checkout)")
    b.add_argument("args", nargs=argparse.REMAINDER, help="passed to bench/engine.py")
    return p


# --- main -------------------------------------------------------------------------
def main(argv=None) -> int:
    try:
        return _main(argv)
    except (KeyboardInterrupt, ImportError) as e:
        # Ctrl-C while the engine (NumPy) is still being imported; NumPy
        # turns one inside its C extension into an ImportError
        if not _interrupted(e):
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            return _fail(f"cannot import what cnnviz needs ({first}); reinstall cnnviz")
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _interrupted(e: BaseException | None) -> bool:
    """A KeyboardInterrupt, or an exception raised while handling one."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _main(argv) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _gui([])
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as e:
        print(_one_line(e), file=sys.stderr)
        return 2
    except SystemExit as e:        # --help
        return e.code if isinstance(e.code, int) else 0
    try:
        if args.command in (None, "gui"):
            return _gui([])
        code = COMMANDS[args.command](args)
        sys.stdout.flush()         # a closed pipe shows here, not at exit
        return code
    except CliError as e:
        return _fail(e)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): nothing left to say; stdout to
        # /dev/null so the interpreter's last flush does not complain
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except MemoryError:
        return _fail("out of memory; try a smaller --batch-size or --limit")
    except Exception as e:         # a bug: one line here, the whole trace in a log file
        return _internal_error(e, argv)


def _one_line(message) -> str:
    return " ".join(str(message).splitlines())


def _internal_error(exc: BaseException, argv) -> int:
    """Say in one line that this is a bug and where the full traceback is."""
    import traceback

    from cnnviz.atomic import atomic_write_text
    from cnnviz.state_dirs import log_dirs

    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = (f"cnnviz internal error at {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n"
            f"command: {PROG} {' '.join(argv)}\npython: {sys.version.split()[0]}\n\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    where = None
    for folder in log_dirs():
        path = folder / f"crash-{stamp}-{os.getpid()}.log"
        try:
            atomic_write_text(path, text)
        except OSError:
            continue
        where = f"the full traceback is in {path}"
        break
    where = where or "the traceback could not be written to a log file"
    detail = _one_line(exc)
    detail = detail if len(detail) <= 200 else detail[:200] + "..."   # the log has it all
    return _fail(f"internal error ({type(exc).__name__}: {detail}); this is a bug in cnnviz, "
                 f"please report it; {where}")


def _gui(argv) -> int:
    if (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        return _fail("no display to open the GUI on (DISPLAY is not set); headless, use "
                     "`cnnviz train`, `cnnviz eval` or `cnnviz summary`")
    try:
        from cnnviz.gui.app import run_gui
    except ImportError as e:
        raise SystemExit(_fail(f"the GUI is not available ({e})"))
    return run_gui(argv)


def _fail(message) -> int:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
    return 1


def _user_errors():
    """The exception types that mean bad input, not a bug."""
    from cnnviz.data.errors import DatasetError
    from cnnviz.data.idx import IdxError
    from cnnviz.engine.architecture import ArchitectureError
    from cnnviz.engine.serialization import ModelFileError
    return (IdxError, DatasetError, ModelFileError, ArchitectureError, OSError)


def _dataset_spec(args, input_shape):
    """The DatasetSpec of train's and eval's --data/--data-dir/--size/--grey/--colour.
    An image folder without --size or --grey/--colour takes the network's
    input (C, H, W): resized to its H x W, colour for 3 channels."""
    from cnnviz.data.datasets import DatasetError, DatasetSpec, parse_data_option, parse_size
    try:
        spec = parse_data_option(None if args.data_dir is not None else args.data)
        if args.data_dir is not None:
            spec = DatasetSpec("idx", args.data_dir)
        if args.size is not None and spec.kind != "folder":
            raise DatasetError(f"--size {args.size}: applies to image folders (--data "
                               f"folder:PATH) only; {spec.describe()} keeps its own size")
        if args.colour is not None and spec.kind not in ("folder", "cifar10"):
            raise DatasetError(f"--{'colour' if args.colour else 'grey'}: applies to image "
                               f"folders and CIFAR-10 only; {spec.describe()} is "
                               f"{'colour' if spec.kind == 'colored-mnist' else 'grey'}")
        if args.colour is True and spec.kind == "cifar10":
            args.colour = None                   # CIFAR-10 is colour already
        if spec.kind == "folder":
            c, h, w = input_shape[1:]
            size = parse_size(args.size) if args.size is not None else (h, w)
            colour = args.colour if args.colour is not None else c == 3
            spec = DatasetSpec("folder", spec.path, size=size, colour=colour, seed=args.seed)
        elif spec.kind == "cifar10" and args.colour is False:
            spec = DatasetSpec("cifar10", spec.path, colour=False)
        return spec.check()
    except DatasetError as e:
        raise CliError(str(e)) from None


def _dataset_source(spec) -> str:
    """How a saved model's metadata names its dataset ("dataset"; eval
    compares it): "bundled MNIST", an IDX folder's path, "colored-mnist",
    "folder:PATH", "cifar10:PATH"."""
    if spec.kind == "mnist":
        return "bundled MNIST"
    if spec.kind == "idx":
        return str(spec.path)
    return spec.kind if spec.path is None else f"{spec.kind}:{spec.path}"


def _load_dataset(spec, show_progress=True, test_only=False):
    """(train, test) of a DatasetSpec, or its test split alone, with a
    progress bar for image folders (their first load decodes every file)."""
    from cnnviz.data.datasets import load_dataset, load_test_split
    bar = None

    def progress(done, total):
        nonlocal bar
        if spec.kind != "folder" or total <= 1 or not show_progress:
            return
        if bar is None:
            from tqdm import tqdm
            bar = tqdm(total=total, unit="file", desc="loading", file=sys.stderr,
                       dynamic_ncols=True, mininterval=0.2, leave=False)
        bar.update(done - bar.n)
    try:
        return (load_test_split if test_only else load_dataset)(spec, progress=progress)
    except _user_errors() as e:
        raise CliError(str(e)) from None
    finally:
        if bar is not None:
            bar.close()


def _data_shape(data) -> tuple:
    """(C, H, W) of a split's images."""
    return (1, *data.images.shape[1:]) if data.images.ndim == 3 else tuple(data.images.shape[1:])


def _check_fits(model, data, what, classes: int = 0):
    """A clear error if the model cannot take the split's images or labels,
    or (``classes``: the data's own class count) has fewer outputs than it
    has classes (engine/fit.py's words, as the Training tab's)."""
    from cnnviz.engine import summary
    from cnnviz.engine.fit import output_fit, shape_text
    from cnnviz.engine.summary import first_channels
    c, h, w = _data_shape(data)
    takes = first_channels(model)
    if takes is not None and takes != c:
        raise CliError(f"{what}: the network takes {takes}-channel images, the dataset gives "
                       f"{shape_text((c, h, w))} ({'colour' if c == 3 else 'grey'})")
    try:
        table = summary(model, (1, c, h, w))
    except ValueError as e:
        raise CliError(f"{what} cannot take the dataset's {shape_text((c, h, w))} images "
                       f"({e})") from None
    out = table.rows[-1].output_shape[1:] if table.rows else (0,)
    refusal, _ = output_fit(out, classes or (out[0] if len(out) == 1 else 1))
    if refusal:
        raise CliError(f"{what}: {refusal}")
    if int(data.labels.max()) >= out[0]:
        import numpy as np

        first = int(np.argmax(data.labels >= out[0]))
        where = data.labels_path or data.source
        raise CliError(f"{where}: label {data.labels[first]} (of image #{first}) is "
                       f"out of range for {what}, which has {out[0]} outputs "
                       f"(labels 0 to {out[0] - 1})")
    return table


def _batch_bytes(model, table, n: int) -> int:
    """Estimated peak memory of training on a batch of ``n`` images (see
    BATCH_MEMORY_BUDGET)."""
    import numpy as np

    c, h, w = table.input_shape[1:]
    per_image = c * h * w + sum(int(np.prod(r.output_shape[1:])) for r in table.rows)
    return n * per_image * _ACTIVATION_FACTOR * np.dtype(model.dtype).itemsize


def _check_batch(model, table, batch: int, n: int, what: str) -> int:
    """The batch actually used (at most the ``n`` images there are); a clear
    error if one batch would need more than BATCH_MEMORY_BUDGET."""
    used = min(batch, n)
    need = _batch_bytes(model, table, used)
    if need > BATCH_MEMORY_BUDGET:
        fits = max(BATCH_MEMORY_BUDGET // _batch_bytes(model, table, 1), 1)
        whole = " (the whole set)" if used < batch else ""
        h, w = table.input_shape[2:]
        raise CliError(f"--batch-size {batch}: a batch of {used:,} {h}x{w} images{whole} needs "
                       f"about {need / (1 << 30):.1f} GiB for {what}'s activations, over the "
                       f"{BATCH_MEMORY_BUDGET >> 30} GiB budget; use --batch-size {fits:,} or less")
    return used


def _check_save_target(text: str) -> Path:
    """--save PATH checked before any work: a file name, in a directory that
    exists (or is created here) and can be written. CliError otherwise."""
    opt = f"--save {text}"
    if not text.strip():
        raise CliError("--save: empty path; give a file name such as model.npz")
    path = Path(text).expanduser()
    if path.is_dir():
        raise CliError(f"{opt}: is a directory; give a file name such as {path / 'model.npz'}")
    if text.endswith(("/", os.sep)):      # Path() drops the slash: say what it meant
        raise CliError(f"{opt}: ends in /, so names a directory; give a file name such as "
                       f"{path / 'model.npz'}")
    if path.exists() and not path.is_file():
        raise CliError(f"{opt}: exists and is not a regular file")
    if path.exists():      # replaceable? (an immutable or read-only file refuses this, root too)
        try:
            open(path, "ab").close()
        except OSError as e:
            raise CliError(f"{opt}: the existing file cannot be replaced "
                           f"({e.strerror or e})") from None
    folder = path.parent
    for part in reversed([folder, *folder.parents]):    # from the top down
        if part.exists() and not part.is_dir():
            raise CliError(f"{opt}: {part} is a file, not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CliError(f"{opt}: cannot create directory {folder} ({e.strerror or e})") from None
    try:   # writable? the save writes a temporary file there, then renames it
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".write-test", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise CliError(f"{opt}: cannot write in {folder} ({e.strerror or e})") from None
    return path


def _check_space(target: Path, model) -> None:
    """Room in the target's folder for the model file (and its temporary,
    written before the old file goes): found now, not after the run."""
    need = sum(p.value.nbytes for p in model.parameters()) + (64 << 10)   # + header, zip
    try:
        st = os.statvfs(target.parent)
    except (OSError, AttributeError):     # no statvfs here: the save will say
        return
    free = st.f_bavail * st.f_frsize
    if free < need:
        raise CliError(f"--save {target}: {free:,} bytes free in {target.parent}, the model "
                       f"file needs about {need:,}")


def _save_somewhere(save, model, path: Path, meta: dict) -> None:
    """Save to ``path``; if that fails after the run (the disk filled up
    meanwhile), save to the temporary folder instead, so the work is kept."""
    try:
        save(model, path, metadata=meta)
        return
    except OSError as e:
        why = e.strerror or str(e)
    fallback = Path(tempfile.gettempdir()) / f"cnnviz-{path.stem}-{os.getpid()}{path.suffix}"
    try:
        save(model, fallback, metadata=meta)
    except OSError:
        raise CliError(f"cannot save {path}: {why}; nor in {fallback.parent}: the trained "
                       f"model is lost") from None
    raise CliError(f"cannot save {path}: {why}; the trained model was saved as {fallback}")


def _interrupted_path(path: Path) -> Path:
    """m.npz -> m.interrupted.npz: where an interrupted run is saved."""
    return path.with_name(f"{path.stem}.interrupted{path.suffix}")


def _cmd_train(args) -> int:
    from tqdm import tqdm

    from cnnviz.engine import save
    from cnnviz.engine.trainer import DEFAULT_LR, Trainer, TrainConfig
    shift_given = args.shift is not None
    if not shift_given:
        args.shift = TrainConfig.shift

    # everything that can be wrong is found here, before the first batch
    target = _check_save_target(args.save) if args.save is not None else None
    _check_workers(args.workers)
    label, model, input_shape, _ = _new_model(args.arch, args.model, args.seed)
    spec = _dataset_spec(args, input_shape)
    train, test = _load_dataset(spec, not args.no_progress)
    _check_input_shape(label, input_shape, train, spec.kind == "folder")
    classes = _own_classes(spec, train)
    table = _check_fits(model, train, label, classes)
    _check_fits(model, test, label, classes)
    _warn_of_spare_outputs(table, classes, label)
    h, w = train.images.shape[-2:]
    if not shift_given and args.shift >= min(h, w):
        args.shift = 0                  # the default, on images too small to shift
    if args.shift >= min(h, w):
        image = f"{h}-pixel image" if h == w else f"{h}x{w} image's {min(h, w)}-pixel side"
        raise CliError(f"--shift {args.shift}: must be less than the {image}")
    n_train = min(args.limit or len(train), len(train))
    batch = _check_batch(model, table, args.batch_size, n_train, label)
    if target is not None:
        _check_space(target, model)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    config = TrainConfig(epochs=args.epochs, batch_size=batch, lr=lr,
                         optimizer=args.optimizer, momentum=args.momentum,
                         weight_decay=args.weight_decay, seed=args.seed, limit=args.limit,
                         shift=args.shift, lr_schedule=args.schedule, warmup_steps=args.warmup,
                         snapshot_interval=0.1, workers=args.workers, average=args.average)
    try:
        trainer = Trainer(model, train, test, config)
    except ValueError as e:
        raise CliError(str(e)) from None
    for warning in train.warnings:           # the data is usable: say what was left out
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    source = _dataset_source(spec)
    images = f"{trainer.n_train} images"
    if args.limit and args.limit > len(train):
        images += f" (all of them; --limit {args.limit} asked for more)"
    batch_text = f"batch {batch}"
    if batch < args.batch_size:
        batch_text += f" (the whole set; --batch-size {args.batch_size} asked for more)"
    interrupted = threading.Event()

    def on_sigint(signum, frame):
        if interrupted.is_set():
            raise KeyboardInterrupt    # the second Ctrl-C: stop at once
        interrupted.set()
        trainer.request_stop()
        print(f"{'' if args.no_progress else chr(10)}{PROG}: stopping after this batch "
              f"(Ctrl-C again: stop at once, save nothing)", file=sys.stderr, flush=True)

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    try:
        # one line (scripts and tests read "training ..." then "epoch 1/..."),
        # naming the data and its classes
        print(f"training {label} on {images} of {train.source or source} "
              f"({_plural(len(train.class_names), 'class', 'classes')}: "
              f"{_names_text(train.class_names, 10)}) for {args.epochs} "
              f"epoch{'s' * (args.epochs != 1)}: {args.optimizer}, lr {lr:g}, {batch_text}, "
              f"{args.schedule} schedule, {'averaged weights, ' * args.average}"
              f"seed {args.seed}, "
              f"{_plural(trainer.step_engine.workers, 'process', 'processes')}", flush=True)
        last = _run_with_progress(trainer, config, args, tqdm)
        if trainer.step_engine.failure:      # a worker died: the run went on in one process
            print(f"{PROG}: warning: {trainer.step_engine.failure}", file=sys.stderr)
        return _finish(args, trainer, config, model, last, interrupted, target, source, save,
                       train.class_names, _data_shape(train))
    except KeyboardInterrupt:
        if not interrupted.is_set():
            raise
        what = f"; {target} was left as it was" if target is not None and target.exists() else ""
        print(f"{PROG}: interrupted again: stopped at once, nothing saved{what}", file=sys.stderr)
        return 130
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)


def _check_workers(workers) -> None:
    from cnnviz.engine.parallel import usable_cores

    cores = usable_cores()
    if workers is not None and workers > cores:
        raise CliError(f"--workers {workers}: cnnviz may use {cores} core{'s' * (cores != 1)} "
                       f"here, and processes beyond one per core only slow each other down; "
                       f"use --workers {cores} or fewer")


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _run_with_progress(trainer, config, args, tqdm):
    """Drive the trainer with a progress bar; the last snapshot."""
    bar = tqdm(total=config.epochs * trainer.n_train, unit="img", dynamic_ncols=True,
               file=sys.stderr, disable=args.no_progress, mininterval=0.2,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, "
                          "{rate_fmt}{postfix}]")
    last = None
    start = (trainer.samples_seen, trainer.elapsed)    # of the epoch running
    try:
        for snap in trainer.run():
            bar.update(snap.samples_seen - bar.n)
            bar.set_postfix_str(f"epoch {snap.epoch}/{snap.epochs}, loss {snap.smoothed_loss:.4f}, "
                                f"acc {100 * snap.accuracy:.1f}%", refresh=False)
            if snap.kind == "epoch":
                # the epoch's own rate, its evaluation included (the snapshot's
                # samples_per_sec is a running average over recent batches)
                seconds = snap.elapsed - start[1]
                rate = (snap.samples_seen - start[0]) / seconds if seconds > 0 else float("nan")
                tqdm.write(snap.message + f" [{rate:,.0f} images/s]", file=sys.stdout)
                start = (snap.samples_seen, snap.elapsed)
            last = snap
    finally:
        bar.close()
    return last


def _finish(args, trainer, config, model, last, interrupted, target, source, save,
            class_names=(), input_shape=()) -> int:
    """After the run: report, and save where the outcome says (never over
    the user's file unless the run completed)."""
    finished = last is not None and last.kind == "finished"
    if not finished and not interrupted.is_set():      # diverged
        kept = f" Nothing saved; {target} was left as it was." if target is not None else ""
        raise CliError(f"training diverged: {trainer.divergence}; try a lower --lr.{kept}")
    if finished and trainer.test_accuracy is not None:
        print(f"test accuracy: {100 * trainer.test_accuracy:.2f}%")
    where = f"interrupted at epoch {last.epoch}, batch {last.batch}" if not finished else ""
    if target is None:
        if where:
            print(f"{where}; nothing saved (no --save)", file=sys.stderr)
        return 0 if finished else 130
    path = target if finished else _interrupted_path(target)
    if not finished and trainer.average is not None:
        trainer.average.copy_to_model()     # what the tests measured (a finished run has it)
    meta = {"model": str(args.arch) if args.arch else args.model, "epochs_done": trainer.epoch,
            "steps": trainer.step,
            "config": {k: v for k, v in vars(config).items()},
            "test_accuracy": trainer.test_accuracy, "dataset": str(source),
            "class_names": list(class_names),
            # (C, H, W), read back by summary, eval (an image folder is sized
            # to it) and the Layer Stepper (summary.stated_input_shape)
            "input_shape": [int(v) for v in input_shape],
            "interrupted": not finished}
    _save_somewhere(save, model, path, meta)
    if finished:
        print(f"saved {path}")
        return 0
    kept = "was left as it was" if target.exists() else "was not written"
    print(f"{where}; saved the model so far as {path} ({target} {kept})", file=sys.stderr)
    return 130


def _load_model(path):
    from cnnviz.engine import load
    try:
        model = load(path)
    except _user_errors() as e:
        raise CliError(str(e)) from None
    for note in model.load_notes:       # converted weights, NaN weights: said, not silent
        print(f"{PROG}: warning: {note}", file=sys.stderr)
    return model


def _new_model(arch_file, name, seed=0):
    """(label, fresh model, input shape (1, C, H, W), title) of an architecture
    file, else of --model: a built-in model or a bundled architecture file."""
    from cnnviz.engine import architecture
    from cnnviz.engine.models import INPUT_SHAPE, MODELS
    if arch_file is None and name in MODELS:
        return name, MODELS[name](seed=seed), INPUT_SHAPE, ""
    path = arch_file if arch_file is not None else architecture.bundled()[name]
    try:
        arch = architecture.read(path)
    except architecture.ArchitectureError as e:
        raise CliError(str(e)) from None
    return (str(arch_file) if arch_file is not None else name, arch.build(seed),
            arch.batch_input_shape, arch.name)


def _mismatch_hint(takes: int, gives: int) -> str:
    if takes == 3 and gives == 1:
        return "train it on colour data (e.g. --data colored-mnist, or --colour for a folder)"
    if takes == 1 and gives == 3:
        return ("use a colour network (e.g. --model colour-cnn), or --grey for a folder "
                "or CIFAR-10")
    return "use a network whose input_shape matches the data"


def _check_input_shape(label, input_shape, data, folder=False) -> None:
    """The network's input (an architecture file's input_shape, or a built-in
    model's 1x28x28) must be the dataset's images; ``folder``: the images
    were resized, so --size can fix it."""
    from cnnviz.engine.fit import input_mismatch, shape_text
    net, got = tuple(input_shape[1:]), _data_shape(data)
    if net == got:
        return
    if net[0] != got[0]:
        hint = _mismatch_hint(net[0], got[0])
    elif folder:
        hint = f"leave out --size (or give --size {shape_text(net[1:])}) to fit the network"
    else:
        hint = f"use a network whose input_shape is {list(got)}"
    raise CliError(f"{label}: {input_mismatch(net, got)}; {hint}")


def _cmd_summary(args) -> int:
    from cnnviz.engine import summary
    from cnnviz.engine.models import INPUT_SHAPE
    from cnnviz.engine.summary import find_input_shape, stated_input_shape

    title = ""
    if args.file is not None and args.file.suffix.lower() == ".json":
        name, model, shape, title = _new_model(args.file, None)
    elif args.file is not None:
        name, model = str(args.file), _load_model(args.file)
        shape = stated_input_shape(model.metadata) or find_input_shape(model) or INPUT_SHAPE
    else:
        name, model, shape, title = _new_model(None, args.model)
    try:
        table = summary(model, shape)
    except ValueError as e:
        raise CliError(f"{name} cannot take {shape} input ({e})") from None
    print(f"{name}: {title}" if title else name)
    print(table)
    return 0


def _cmd_eval(args) -> int:
    from cnnviz.engine.summary import first_channels
    from cnnviz.engine.trainer import evaluate_model

    label = str(args.model)
    model = _load_model(args.model)
    expects = _model_input(model)
    if args.seed is None:      # a folder's split: the one the model was trained on
        seed = model.metadata.get("config", {}).get("seed") if isinstance(
            model.metadata.get("config"), dict) else None
        args.seed = seed if isinstance(seed, int) and seed >= 0 else 0
    if (expects is None and args.size is None
            and _data_kind(args) == "folder"):
        raise CliError(f"{label}: its input size cannot be worked out from its layers; give "
                       f"the images' size with --size HxW")
    spec = _dataset_spec(args, expects or (1, first_channels(model) or 1, 28, 28))
    test = _load_dataset(spec, sys.stderr.isatty(), test_only=True)
    _check_eval_data(model, label, expects, test, spec)
    table = _check_fits(model, test, label)
    _warn_of_spare_outputs(table, _own_classes(spec, test), label)
    batch = _check_batch(model, table, args.batch_size, len(test), label)
    mismatch = _dataset_mismatch(model.metadata, test.class_names, spec)
    if mismatch:
        print(f"{PROG}: warning: {label} {mismatch}", file=sys.stderr)
    for warning in test.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    loss, acc, preds, _ = evaluate_model(model, test.images, test.labels, batch)
    correct = int((preds == test.labels).sum())
    print(f"test accuracy: {100 * acc:.2f}% ({correct}/{len(test.labels)}), loss {loss:.4f}, "
          f"on {test.source or spec.describe()}")
    for line in _per_class_lines(preds, test.labels, test.class_names):
        print(line)
    return 0


def _data_kind(args) -> str:
    """The dataset kind --data/--data-dir name (errors are _dataset_spec's to say)."""
    from cnnviz.data.datasets import DatasetError, parse_data_option
    if args.data_dir is not None:
        return "idx"
    try:
        return parse_data_option(args.data).kind
    except DatasetError:
        return ""


def _model_input(model):
    """(1, C, H, W) a saved model takes, or None: the input shape `cnnviz
    train` recorded in the file, if the model takes it; else the engine's
    search (find_input_shape: the channels its first layer names, the first
    square side that ends it in class scores)."""
    from cnnviz.engine.summary import ends_in_scores, find_input_shape, stated_input_shape
    stated = stated_input_shape(model.metadata)
    if stated is not None and ends_in_scores(model, stated):
        return stated
    return find_input_shape(model)


def _own_classes(spec, data) -> int:
    """The data's class count where its classes are its own (IDX names its
    labels "0".."9" whatever they are: 0 there, the labels' range is checked)."""
    return len(data.class_names) if spec.kind in ("folder", "cifar10", "colored-mnist") else 0


def _warn_of_spare_outputs(table, classes: int, label: str) -> None:
    """More outputs than classes trains and evaluates, said once."""
    from cnnviz.engine.fit import output_fit
    if classes:
        _, warning = output_fit(table.rows[-1].output_shape[1:], classes)
        if warning:
            print(f"{PROG}: warning: {label}: {warning}", file=sys.stderr)


def _check_eval_data(model, label, expects, test, spec) -> None:
    """One line when the dataset's images or classes are not the model's:
    "m.npz: the model expects 3x32x32 inputs; coloured MNIST gives 3x28x28"."""
    from cnnviz.engine.fit import shape_text
    from cnnviz.engine.summary import ends_in_scores, first_channels
    got = _data_shape(test)
    takes = first_channels(model)
    misfit = (takes is not None and takes != got[0]) or not ends_in_scores(model, (1, *got))
    if misfit and expects is not None:      # else _check_fits says why, from the layers
        hint = ""
        if expects[1] != got[0] and spec.kind in ("folder", "cifar10"):
            hint = f"; give {'--colour' if expects[1] == 3 else '--grey'}"
        elif spec.kind == "folder":
            hint = f"; leave out --size (or give --size {shape_text(expects[2:])})"
        raise CliError(f"{label}: the model expects {shape_text(expects[1:])} inputs; "
                       f"{spec.describe()} gives {shape_text(got)}{hint}")
    # classes that are the data's own (IDX names its labels "0".."9" whatever they are)
    if not misfit and spec.kind in ("folder", "cifar10", "colored-mnist"):
        from cnnviz.engine import summary
        outputs = summary(model, (1, *got)).rows[-1].output_shape[1]
        names = test.class_names
        if outputs < len(names):
            raise CliError(f"{label}: the model has {outputs} outputs (classes); "
                           f"{spec.describe()} has {_plural(len(names), 'class', 'classes')} "
                           f"({_names_text(names)})")


PER_CLASS_SHOWN = 20      # more classes than this: only the weakest few are listed


def _per_class_lines(preds, labels, names, width: int = 100) -> list[str]:
    """'per class: cat 95.0% (57/60), dog 88.3% (53/60), ...' wrapped to a few
    lines; past PER_CLASS_SHOWN classes only the 5 lowest."""
    import textwrap
    items = []
    for c, name in enumerate(names):
        mask = labels == c
        n = int(mask.sum())
        if n:
            right = int((preds[mask] == c).sum())
            items.append((right / n, f"{name} {100 * right / n:.1f}% ({right}/{n})"))
    if len(items) < 2:
        return []
    head = "per class:"
    if len(items) > PER_CLASS_SHOWN:
        items = sorted(items, key=lambda item: item[0])[:5]
        head = f"per class, the 5 lowest of {len(names)}:"
    return textwrap.wrap(f"{head} " + ", ".join(text for _, text in items), width,
                         subsequent_indent="  ", break_on_hyphens=False)


def _dataset_mismatch(metadata, class_names, spec) -> str:
    """Why a model's metadata says it was trained on another dataset than
    the one given ("" if it does not, or does not say): its class names
    differ (files since class names were recorded), else its dataset."""
    from cnnviz.data.datasets import DatasetError, parse_data_option

    given = {"mnist": "the bundled MNIST", "idx": str(spec.path)}.get(spec.kind,
                                                                     spec.describe())
    names = metadata.get("class_names")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        if tuple(names) == tuple(class_names[:len(names)]) and len(names) == len(class_names):
            return ""
        return (f"was trained on classes {_names_text(names)}, but {given} has classes "
                f"{_names_text(class_names)}: the accuracy compares different classes")
    trained = metadata.get("dataset")
    if not isinstance(trained, str) or not trained:
        return ""
    try:
        was = parse_data_option("mnist" if trained == "bundled MNIST" else trained)
    except DatasetError:
        was = None

    def where(s):
        from cnnviz.data.paths import MNIST_DIR
        path = MNIST_DIR if s.kind == "mnist" else s.path
        return (s.kind if s.kind != "mnist" else "idx",
                None if path is None else Path(path).expanduser().resolve())
    if was is not None and where(was) == where(spec):
        return ""
    return (f"was trained on {trained}, not on {given}: if their classes differ, the "
            f"accuracy compares different classes")


def _names_text(names, shown: int = 4) -> str:
    text = ", ".join(names[:shown])
    return text + (f", ... ({len(names)})" if len(names) > shown else "")


def _bytes_text(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


def _cmd_cache(args) -> int:
    from cnnviz.data.image_folder import CACHE_BUDGET, cache_dir, cache_entries, clear_cache
    where = cache_dir()
    if args.clear:
        files, size = clear_cache()
        print(f"removed {_plural(files, 'cached image folder', 'cached image folders')} "
              f"({_bytes_text(size)}) from {where}")
        return 0
    entries = cache_entries()
    print(f"{where}: {_plural(len(entries), 'cached image folder', 'cached image folders')}, "
          f"{_bytes_text(sum(size for _, size, _ in entries))} (at most "
          f"{_bytes_text(CACHE_BUDGET)} kept, the least recently used removed first); "
          f"`{PROG} cache --clear` empties it")
    return 0


def _cmd_bench(args) -> int:
    import runpy

    script = Path(__file__).resolve().parent.parent / "bench" / "engine.py"
    if not script.is_file():
        raise CliError(f"{script} not found: the benchmarks live in a source checkout")
    old = sys.argv
    sys.argv = [str(script), *args.args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    return 0


COMMANDS = {"train": _cmd_train, "summary": _cmd_summary, "eval": _cmd_eval,
            "cache": _cmd_cache, "bench": _cmd_bench}


if __name__ == "__main__":
    raise SystemExit(main())
