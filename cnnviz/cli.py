"""The `cnnviz` command.

    cnnviz                      open the GUI (also: cnnviz gui)
    cnnviz train [options]      train headless with a progress bar
    cnnviz summary [--model M]  print the architecture table
    cnnviz eval MODEL.npz       print a saved model's test accuracy
    cnnviz bench [args]         run bench/engine.py (source checkouts)

Headless commands never import Qt. User errors (bad arguments, missing or
damaged files) end with one line on stderr and a non-zero exit status, never
a traceback: 2 for bad arguments, 1 for everything else, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

PROG = "cnnviz"


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
    """argparse that raises instead of exiting, so main() returns a status."""

    def error(self, message):
        raise _UsageError(f"{self.prog}: error: {message}", self.format_usage())


class _UsageError(Exception):
    def __init__(self, message, usage):
        super().__init__(message)
        self.usage = usage


def build_parser() -> argparse.ArgumentParser:
    from cnnviz.engine.models import MODELS
    from cnnviz.engine.trainer import LR_SCHEDULES

    p = _Parser(prog=PROG, description="See how a convolutional network works. "
                "With no command, opens the GUI.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("gui", help="open the GUI (the default)")

    t = sub.add_parser("train", help="train a model on MNIST (or any IDX dataset) headless",
                       description="Train headless with a progress bar; prints the test "
                       "accuracy after each epoch.")
    t.add_argument("--model", choices=sorted(MODELS), default="lenet5")
    t.add_argument("--epochs", type=_positive_int, default=5)
    t.add_argument("--batch-size", type=_positive_int, default=64)
    t.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: 0.05 for sgd, 0.001 for adam)")
    t.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    t.add_argument("--momentum", type=_fraction, default=0.9,
                   help="SGD momentum, or Adam's beta1 (default 0.9)")
    t.add_argument("--weight-decay", type=_nonneg_float, default=5e-4,
                   help="L2 weight decay (default 5e-4)")
    t.add_argument("--schedule", choices=list(LR_SCHEDULES), default="cosine",
                   help="learning-rate schedule (default cosine)")
    t.add_argument("--warmup", type=_nonneg_int, default=100, metavar="STEPS",
                   help="linear learning-rate warm-up over the first STEPS batches (default 100)")
    t.add_argument("--data-dir", type=Path, default=None,
                   help="directory of the four IDX files (default: the bundled MNIST)")
    t.add_argument("--limit", type=_positive_int, default=None,
                   help="train on the first N training images only")
    t.add_argument("--seed", type=_nonneg_int, default=0,
                   help="seeds the initial weights, the shuffling and the shifts")
    t.add_argument("--shift", type=_nonneg_int, default=0,
                   help="random shifts of up to N pixels (augmentation)")
    t.add_argument("--save", type=Path, default=None, metavar="PATH",
                   help="save the trained model here (.npz)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("summary", help="print a model's architecture table")
    s.add_argument("file", nargs="?", type=Path, default=None,
                   help="a saved model (.npz); default: --model")
    s.add_argument("--model", choices=sorted(MODELS), default="lenet5")

    e = sub.add_parser("eval", help="print a saved model's test accuracy")
    e.add_argument("model", type=Path, metavar="MODEL.npz")
    e.add_argument("--data-dir", type=Path, default=None,
                   help="directory of the four IDX files (default: the bundled MNIST)")
    e.add_argument("--batch-size", type=_positive_int, default=1000)

    b = sub.add_parser("bench", help="run bench/engine.py (in a source checkout)")
    b.add_argument("args", nargs=argparse.REMAINDER, help="passed to bench/engine.py")
    return p


# --- main -------------------------------------------------------------------------
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _gui([])
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as e:
        print(e.usage.rstrip(), file=sys.stderr)
        print(e, file=sys.stderr)
        return 2
    except SystemExit as e:        # --help
        return e.code if isinstance(e.code, int) else 0
    try:
        if args.command in (None, "gui"):
            return _gui([])
        return COMMANDS[args.command](args)
    except CliError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


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
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def _user_errors():
    """The exception types that mean bad input, not a bug."""
    from cnnviz.data.idx import IdxError
    from cnnviz.engine.serialization import ModelFileError
    return (IdxError, ModelFileError, OSError)


def _load_data(data_dir, split):
    from cnnviz.data import load_mnist
    try:
        return load_mnist(data_dir, split)
    except _user_errors() as e:
        raise CliError(str(e)) from None


def _check_fits(model, data, what):
    """A clear error if the model cannot take the dataset's images or labels."""
    from cnnviz.engine import summary
    h, w = data.images.shape[1:]
    try:
        table = summary(model, (1, 1, h, w))
    except ValueError as e:
        raise CliError(f"{what} cannot take the dataset's {h}x{w} images ({e})") from None
    out = table.rows[-1].output_shape if table.rows else (1, 0)
    classes = out[1] if len(out) == 2 else 0
    if len(data.labels) and int(data.labels.max()) >= classes:
        raise CliError(f"{what} has {classes} outputs but the dataset has label "
                       f"{int(data.labels.max())}")


def _cmd_train(args) -> int:
    from tqdm import tqdm

    from cnnviz.engine import MODELS, save
    from cnnviz.engine.trainer import DEFAULT_LR, Trainer, TrainConfig

    if args.save is not None and args.save.is_dir():
        raise CliError(f"--save {args.save}: is a directory; give a file name such as model.npz")
    train = _load_data(args.data_dir, "train")
    test = _load_data(args.data_dir, "test")
    model = MODELS[args.model](seed=args.seed)
    _check_fits(model, train, args.model)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=lr,
                         optimizer=args.optimizer, momentum=args.momentum,
                         weight_decay=args.weight_decay, seed=args.seed, limit=args.limit,
                         shift=args.shift, lr_schedule=args.schedule, warmup_steps=args.warmup,
                         snapshot_interval=0.1)
    trainer = Trainer(model, train, test, config)
    source = args.data_dir or "bundled MNIST"
    print(f"training {args.model} on {trainer.n_train} images of {source} for {args.epochs} "
          f"epoch{'s' * (args.epochs != 1)}: {args.optimizer}, lr {lr:g}, batch {args.batch_size}, "
          f"{args.schedule} schedule, seed {args.seed}", flush=True)

    interrupted = threading.Event()

    def on_sigint(signum, frame):
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        trainer.request_stop()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    bar = tqdm(total=config.epochs * trainer.n_train, unit="img", dynamic_ncols=True,
               file=sys.stderr, disable=args.no_progress, mininterval=0.2,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, "
                          "{rate_fmt}{postfix}]")
    last = None
    try:
        for snap in trainer.run():
            bar.update(snap.samples_seen - bar.n)
            bar.set_postfix_str(f"epoch {snap.epoch}/{snap.epochs}, loss {snap.smoothed_loss:.4f}, "
                                f"acc {100 * snap.accuracy:.1f}%", refresh=False)
            if snap.kind == "epoch":
                tqdm.write(snap.message + f" [{snap.samples_per_sec:,.0f} images/s]",
                           file=sys.stdout)
            last = snap
    finally:
        bar.close()
        if in_main:
            signal.signal(signal.SIGINT, previous)
    if last is not None and last.kind == "stopped" and not interrupted.is_set():
        print(f"{PROG}: {last.message}", file=sys.stderr)   # diverged
        return 1
    if interrupted.is_set():
        print(f"interrupted at epoch {last.epoch}, batch {last.batch}", file=sys.stderr)
    elif trainer.test_accuracy is not None:
        print(f"test accuracy: {100 * trainer.test_accuracy:.2f}%")
    if args.save is not None:
        meta = {"model": args.model, "epochs_done": trainer.epoch, "steps": trainer.step,
                "config": {k: v for k, v in vars(config).items()},
                "test_accuracy": trainer.test_accuracy, "dataset": str(source)}
        try:
            save(model, args.save, metadata=meta)
        except OSError as e:
            raise CliError(f"cannot save {args.save}: {e}") from None
        print(f"saved {args.save}")
    return 130 if interrupted.is_set() else 0


def _load_model(path):
    from cnnviz.engine import load
    try:
        return load(path)
    except _user_errors() as e:
        raise CliError(str(e)) from None


def _cmd_summary(args) -> int:
    from cnnviz.engine import MODELS, summary
    from cnnviz.engine.models import INPUT_SHAPE

    model = _load_model(args.file) if args.file else MODELS[args.model]()
    name = str(args.file) if args.file else args.model
    try:
        table = summary(model, INPUT_SHAPE)
    except ValueError as e:
        raise CliError(f"{name} cannot take {INPUT_SHAPE} input ({e})") from None
    print(name)
    print(table)
    return 0


def _cmd_eval(args) -> int:
    from cnnviz.engine.trainer import evaluate_model

    model = _load_model(args.model)
    test = _load_data(args.data_dir, "test")
    _check_fits(model, test, str(args.model))
    loss, acc, preds, _ = evaluate_model(model, test.images, test.labels, args.batch_size)
    correct = int((preds == test.labels).sum())
    print(f"test accuracy: {100 * acc:.2f}% ({correct}/{len(test.labels)}), loss {loss:.4f}")
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


COMMANDS = {"train": _cmd_train, "summary": _cmd_summary, "eval": _cmd_eval, "bench": _cmd_bench}


if __name__ == "__main__":
    raise SystemExit(main())
