"""A bad-input corpus for the `cnnviz` command: one case per class of bad
input, each run as a real subprocess on files the test generates.

Every case must end with exactly one stderr line, `cnnviz: error: ...`,
naming the file or option, the right exit status, no traceback, and within a
time bound. The fault tests check that nothing the user has is lost: Ctrl-C
(once or twice) and a diverging run never touch an existing model file.
"""

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnnviz import cli
from cnnviz.data.idx import write_idx
from cnnviz.engine import lenet5, load, save
from disks import fill, tmpfs

ROOT = Path(__file__).resolve().parent.parent
TIME_BOUND = 20.0       # seconds per refused case; each takes about 0.5 s alone


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **extra)


def cnnviz(cwd, *argv, timeout=60, **env):
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "cnnviz", *map(str, argv)], cwd=cwd,
                       env=_env(**env), capture_output=True, text=True, timeout=timeout)
    r.seconds = time.perf_counter() - t
    return r


def assert_one_error(r, status, *needles):
    lines = r.stderr.splitlines()
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert r.returncode == status, r.stderr
    assert len(lines) == 1 and lines[0].startswith("cnnviz: error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert r.seconds < TIME_BOUND


def make_set(d, n_train=300, n_test=100, hw=(28, 28), test_hw=None, test_label=None,
             n_train_labels=None, seed=0):
    """An MNIST-style directory of random images and labels 0-9."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    write_idx(d / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, *hw), np.uint8))
    write_idx(d / "train-labels-idx1-ubyte",
              rng.integers(0, 10, n_train if n_train_labels is None else n_train_labels, np.uint8))
    write_idx(d / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, *(test_hw or hw)), np.uint8))
    labels = rng.integers(0, 10, n_test, np.uint8)
    if test_label is not None:
        labels[5] = test_label
    write_idx(d / "t10k-labels-idx1-ubyte", labels)
    return d


def idx_header(code, dims):
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, ">u4").tobytes()


def inflating_gzip(path, dims, inflated_mib):
    """A gzip whose IDX header declares `dims` (uint8) but whose data inflates
    to about `inflated_mib` MiB (concatenated 1 MiB members: cheap to make)."""
    zeros = gzip.compress(bytes(1 << 20), mtime=0)
    with open(path, "wb") as f:
        f.write(gzip.compress(idx_header(0x08, dims) + bytes(1 << 20), mtime=0))
        for _ in range(inflated_mib - 1):
            f.write(zeros)
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return make_set(tmp_path_factory.mktemp("good"))


# --- the corpus: (setup(tmp, good) -> argv, status, needles) ---------------------------
def _replace(good, tmp, name, content):
    d = tmp / "data"
    d.mkdir()
    for f in good.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    if isinstance(content, Path):
        (d / name).unlink()
        content.rename(d / content.name)
    else:
        (d / name).write_bytes(content)
    return d


def _bomb(good, tmp):
    bomb = inflating_gzip(tmp / "train-images-idx3-ubyte.gz", [300, 28, 28], 5 * 1024)
    return ["train", "--data-dir", _replace(good, tmp, "train-images-idx3-ubyte", bomb)]


CASES = {
    "empty training set": (
        lambda good, tmp: ["train", "--data-dir", make_set(tmp / "d", n_train=0)],
        1, ["train-images-idx3-ubyte: holds 0 images"]),
    "labels count differs from images": (
        lambda good, tmp: ["train", "--data-dir", make_set(tmp / "d", n_train_labels=299)],
        1, ["holds 300 images but", "train-labels-idx1-ubyte holds 299 labels"]),
    "test label out of range": (
        lambda good, tmp: ["train", "--data-dir", make_set(tmp / "d", test_label=200)],
        1, ["t10k-labels-idx1-ubyte: label 200 (of image #5) is out of range for lenet5, "
            "which has 10 outputs"]),
    "test images of another size": (
        lambda good, tmp: ["train", "--data-dir", make_set(tmp / "d", test_hw=(20, 20))],
        1, ["t10k-images-idx3-ubyte: the test images are 20x20 but the training images"]),
    "images the model cannot take": (
        lambda good, tmp: ["train", "--data-dir", make_set(tmp / "d", n_test=10, hw=(4, 4))],
        1, ["lenet5: the network takes 1x28x28, the dataset gives 1x4x4; use a network "
            "whose input_shape is [1, 4, 4]"]),
    "gzip inflating past its declared size": (
        _bomb, 1, ["train-images-idx3-ubyte.gz: the gzip data inflates past the 235,200 bytes "
                   "its header declares"]),
    "declared size over the budget": (
        lambda good, tmp: ["train", "--data-dir", _replace(
            good, tmp, "train-images-idx3-ubyte", idx_header(0x08, [60000, 60000, 60000]))],
        1, ["216,000,000,000,000 bytes) of data, over the 1 GiB"]),
    "not an IDX file": (
        lambda good, tmp: ["train", "--data-dir", _replace(
            good, tmp, "t10k-labels-idx1-ubyte", b"hello, this is text")],
        1, ["t10k-labels-idx1-ubyte: not an IDX file"]),
    "truncated gzip": (
        lambda good, tmp: ["train", "--data-dir", _replace(
            good, tmp, "train-labels-idx1-ubyte",
            gzip.compress(idx_header(0x08, [300]) + bytes(300))[:30])],
        1, ["train-labels-idx1-ubyte: damaged or truncated gzip data"]),
    "missing data directory": (
        lambda good, tmp: ["train", "--data-dir", tmp / "nowhere"], 1, ["nowhere", "does not exist"]),
    "batch far beyond memory": (
        lambda good, tmp: ["train", "--batch-size", "10000000"],      # the bundled MNIST
        1, ["--batch-size 10000000: a batch of 60,000 28x28 images (the whole set) needs about",
            "over the 4 GiB budget; use --batch-size"]),
    "shift as large as the image": (
        lambda good, tmp: ["train", "--data-dir", good, "--shift", "28"],
        1, ["--shift 28: must be less than the 28-pixel image"]),
    "save under a file": (
        lambda good, tmp: (tmp / "a").write_text("x") and ["train", "--data-dir", good,
                                                           "--save", "a/b.npz"],
        1, ["--save a/b.npz: a is a file, not a directory"]),
    "save to a directory": (
        lambda good, tmp: (tmp / "out").mkdir() or ["train", "--data-dir", good, "--save", "out"],
        1, ["--save out: is a directory; give a file name such as out/model.npz"]),
    "save with a trailing slash": (
        lambda good, tmp: ["train", "--data-dir", good, "--save", "newdir/"],
        1, ["--save newdir/: ends in /, so names a directory; give a file name such as "
            "newdir/model.npz"]),
    "save where nothing can be written": (      # /proc: not even root can create a file there
        lambda good, tmp: ["train", "--data-dir", good, "--save", "/proc/cnnviz-test.npz"],
        1, ["--save /proc/cnnviz-test.npz: cannot write in /proc"]),
    "bad option value": (
        lambda good, tmp: ["train", "--epochs", "abc"],
        2, ["argument --epochs: expected a whole number, got 'abc' (see `cnnviz train --help`)"]),
    "unknown option": (
        lambda good, tmp: ["eval", "m.npz", "--frobnicate"], 2, ["unrecognized arguments: --frobnicate"]),
    "text file named .npz": (
        lambda good, tmp: (tmp / "m.npz").write_text("hello") and ["eval", "m.npz"],
        1, ["m.npz"]),
    "eval: test label out of range": (
        lambda good, tmp: save(lenet5(), tmp / "m.npz") or [
            "eval", "m.npz", "--data-dir", make_set(tmp / "d", test_label=10)],
        1, ["t10k-labels-idx1-ubyte: label 10 (of image #5) is out of range for m.npz"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line(case, good, tmp_path):
    if "/proc" in case and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc")
    setup, status, needles = CASES[case]
    argv = setup(good, tmp_path)
    if argv[0] == "train":
        argv += ["--no-progress", "--epochs", "1"]
    before = sorted(p.name for p in tmp_path.iterdir())
    r = cnnviz(tmp_path, *argv)
    assert_one_error(r, status, *needles)
    assert r.stdout == ""                      # refused before the first batch
    assert sorted(p.name for p in tmp_path.iterdir()) == before   # nothing written


def test_refusing_a_gzip_bomb_takes_little_memory(good, tmp_path):
    """5 GiB of inflated data behind a header declaring 300x28x28: refused
    after reading a little past the declared size. Peak memory is the child's
    own VmHWM (ru_maxrss would include what it inherited across exec)."""
    argv = [str(a) for a in _bomb(good, tmp_path)] + ["--no-progress"]
    code = ("import sys\nfrom cnnviz.cli import main\ncode = main(sys.argv[1:])\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print(int(hwm.split()[1]) // 1024)\nsys.exit(code)\n")
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs Linux's /proc")
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, env=_env(),
                       capture_output=True, text=True, timeout=60)
    r.seconds = time.perf_counter() - t
    assert_one_error(r, 1, "inflates past the 235,200 bytes")
    assert int(r.stdout) < 150        # MiB; the interpreter with NumPy and the engine is ~60
    assert r.seconds < 5


# --- faults: nothing the user has is lost ---------------------------------------------------
def _start_training(tmp_path, good, *extra):
    p = subprocess.Popen([sys.executable, "-m", "cnnviz", "train", "--data-dir", str(good),
                          "--epochs", "1000", "--no-progress", "--save", "m.npz", *extra],
                         cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()          # "training ..." once everything was checked
    assert line.startswith("training"), line + p.stderr.read()
    return p


def _existing_model(tmp_path):
    path = tmp_path / "m.npz"
    save(lenet5(seed=7), path, metadata={"mine": True})
    return path, path.read_bytes()


def test_ctrl_c_keeps_the_existing_model_and_saves_beside_it(tmp_path, good):
    path, original = _existing_model(tmp_path)
    p = _start_training(tmp_path, good, "--batch-size", "32")
    try:
        line = p.stdout.readline()      # an epoch done: the model in memory is worth keeping
        assert line.startswith("epoch 1/1000"), line
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130 and "Traceback" not in err, err
    assert path.read_bytes() == original
    saved = tmp_path / "m.interrupted.npz"
    assert "saved the model so far as m.interrupted.npz (m.npz was left as it was)" in err
    model = load(saved)
    assert model.metadata["interrupted"] is True and model.metadata["steps"] >= 10
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m.interrupted.npz", "m.npz"]


def test_second_ctrl_c_stops_at_once_and_saves_nothing(tmp_path, good):
    path, original = _existing_model(tmp_path)
    # one batch of 2000 images takes most of a second: the second Ctrl-C,
    # sent as soon as the first is acknowledged, lands inside it
    data = make_set(tmp_path / "d", n_train=2000, n_test=10)
    p = _start_training(tmp_path, data, "--batch-size", "2000")
    try:
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        line = p.stderr.readline()
        assert line.startswith("cnnviz: stopping after this batch (Ctrl-C again"), line
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines() == ["cnnviz: interrupted again: stopped at once, "
                                        "nothing saved; m.npz was left as it was"]
    assert path.read_bytes() == original
    assert sorted(f.name for f in tmp_path.iterdir()) == ["d", "m.npz"]


def test_diverging_run_leaves_the_existing_model(tmp_path, good):
    path, original = _existing_model(tmp_path)
    r = cnnviz(tmp_path, "train", "--data-dir", good, "--epochs", "1", "--lr", "1e6",
               "--schedule", "none", "--warmup", "0", "--no-progress", "--save", "m.npz")
    assert_one_error(r, 1, "training diverged:", "too high; try a lower --lr.",
                     "Nothing saved; m.npz was left as it was.")
    assert "resume" not in r.stderr            # the CLI cannot: the GUI's advice is not given
    assert path.read_bytes() == original
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m.npz"]


def test_closed_pipe_ends_quietly(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "cnnviz", "summary"], cwd=tmp_path, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()                     # the reader is gone before anything is written
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 1 and err == ""


# --- the last resort --------------------------------------------------------------------
def _bug(args):
    raise ZeroDivisionError("a bug")


def test_unforeseen_error_is_one_line_and_logged(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "summary", _bug)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert cli.main(["summary"]) == 1
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("cnnviz: error: internal error (ZeroDivisionError: a bug); "
                               "this is a bug in cnnviz")
    logs = list((tmp_path / "state" / "cnnviz").glob("crash-*.log"))
    assert len(logs) == 1 and f"the full traceback is in {logs[0]}" in lines[0]
    text = logs[0].read_text()
    assert "Traceback (most recent call last)" in text and "in _bug" in text
    assert "command: cnnviz summary" in text

    # an unwritable state directory: the log goes to the temporary directory
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "file"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert cli.main(["summary"]) == 1
    err = capsys.readouterr().err
    logs = list((tmp_path / "tmp").glob("crash-*.log"))
    assert len(logs) == 1 and f"the full traceback is in {logs[0]}" in err


# --- a full disk or an unreplaceable file: found before the run, or the model kept --------
def test_a_disk_without_room_for_the_model_is_found_before_training(tmp_path, good):
    with tmpfs(tmp_path / "disk", "64k") as disk:           # LeNet-5's file needs ~300 KB
        r = cnnviz(tmp_path, "train", "--data-dir", good, "--no-progress", "--workers", "1",
                   "--save", disk / "m.npz")
        assert_one_error(r, 1, f"--save {disk / 'm.npz'}: ", "bytes free in", "needs about")
        assert r.stdout == "" and list(disk.iterdir()) == []


def test_an_existing_file_that_cannot_be_replaced_is_found_before_training(tmp_path, good):
    path, original = _existing_model(tmp_path)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available or not permitted here")
    try:
        r = cnnviz(tmp_path, "train", "--data-dir", good, "--no-progress", "--save", path)
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    assert_one_error(r, 1, "the existing file cannot be replaced")
    assert r.stdout == "" and path.read_bytes() == original


def test_a_disk_that_fills_during_the_run_keeps_the_model_in_the_temp_folder(tmp_path, good):
    with tmpfs(tmp_path / "disk", "1m") as disk:
        p = subprocess.Popen([sys.executable, "-m", "cnnviz", "train", "--data-dir", str(good),
                              "--epochs", "3", "--batch-size", "8", "--no-progress",
                              "--workers", "1", "--save", str(disk / "m.npz")],
                             cwd=tmp_path, env=_env(TMPDIR=str(tmp_path)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().startswith("training")     # the checks passed
            fill(disk)                                             # then the disk fills up
            out, err = p.communicate(timeout=120)
        finally:
            p.kill()
    fallback = tmp_path / f"cnnviz-m-{p.pid}.npz"
    assert p.returncode == 1 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == (f"cnnviz: error: cannot save {disk / 'm.npz'}: No "
                                            f"space left on device; the trained model was "
                                            f"saved as {fallback}")
    assert load(fallback).metadata["epochs_done"] == 3


@pytest.mark.parametrize("delay", [0.3, 0.6, 0.9, 1.2, 1.5])
def test_ctrl_c_from_a_terminal_at_any_moment_is_one_line(tmp_path, good, delay):
    """A terminal's Ctrl-C reaches the whole process group: the imports, the
    workers being spawned (they used to print their start-up's traceback),
    the first batches. (Before ~0.1 s it lands in Python's own start-up.)"""
    def interrupted_at(seconds):
        p = subprocess.Popen([sys.executable, "-m", "cnnviz", "train", "--data-dir", str(good),
                              "--epochs", "1000", "--no-progress", "--workers", "2"],
                             cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            time.sleep(seconds)
            os.killpg(p.pid, signal.SIGINT)
            out, err = p.communicate(timeout=60)
        finally:
            p.kill()
        return p, err

    # (the few ms in which the workers are spawned included: SIGINT is
    # blocked then, not ignored, so none is lost)
    p, err = interrupted_at(delay)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "Fatal Python error" not in err, err
    assert 1 <= len(err.splitlines()) <= 2, err     # "interrupted", or "stopping..." + where


def test_the_default_shift_is_dropped_on_images_too_small_to_shift(tmp_path):
    """The default run shifts by 1 px; on 1x1 images it trains unshifted,
    while a --shift the user gave is still refused with its reason."""
    data = make_set(tmp_path / "dots", n_train=64, n_test=20, hw=(1, 1))
    arch = tmp_path / "dot.json"
    arch.write_text('{"input_shape": [1, 1, 1], "layers": [{"type": "Flatten"}, '
                    '{"type": "Linear", "out_features": 10}]}')
    r = cnnviz(tmp_path, "train", "--data-dir", data, "--arch", arch, "--epochs", "1",
               "--workers", "1", "--no-progress")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "test accuracy:" in r.stdout
    r = cnnviz(tmp_path, "train", "--data-dir", data, "--arch", arch, "--epochs", "1",
               "--workers", "1", "--no-progress", "--shift", "1")
    assert_one_error(r, 1, "--shift 1: must be less than the 1-pixel image")
