"""The `cnnviz` command, driven in-process (main([...])) and once as a subprocess."""

import os
import subprocess
import sys

import numpy as np
import pytest

from cnnviz.cli import main
from cnnviz.data import load_mnist
from cnnviz.data.idx import write_idx
from cnnviz.engine import lenet5, load, save


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A small MNIST-style directory: 600 training and 200 test images."""
    d = tmp_path_factory.mktemp("mini")
    tr, te = load_mnist(), load_mnist(split="test")
    write_idx(d / "train-images-idx3-ubyte", tr.images[:600])
    write_idx(d / "train-labels-idx1-ubyte", tr.labels[:600])
    write_idx(d / "t10k-images-idx3-ubyte.gz", te.images[:200])
    write_idx(d / "t10k-labels-idx1-ubyte.gz", te.labels[:200])
    return d


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_summary_in_process(capsys):
    code, out, err = run(capsys, "summary", "--model", "small")
    assert code == 0
    assert "conv1" in out and "fc1" in out and "(1, 16, 4, 4)" in out
    total = out.strip().splitlines()[-1].split()
    assert total[0] == "total" and total[1] == "5,142"


def test_summary_as_a_subprocess_does_not_import_qt():
    code = ("import sys, runpy; sys.argv = ['cnnviz', 'summary'];\n"
            "try:\n    runpy.run_module('cnnviz', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "assert not any(m.startswith(('PyQt6', 'pyqtgraph', 'cnnviz.gui')) for m in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "61,706" in r.stdout
    r = subprocess.run([sys.executable, "-m", "cnnviz", "summary", "--model", "lenet5"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "total" in r.stdout and r.stderr == ""


def test_train_save_then_eval(capsys, data_dir, tmp_path):
    path = tmp_path / "out" / "m.npz"
    code, out, err = run(capsys, "train", "--model", "lenet5", "--data-dir", data_dir,
                         "--epochs", "2", "--limit", "320", "--batch-size", "32", "--lr", "0.01",
                         "--save", path)
    assert code == 0, err
    lines = [l for l in out.splitlines() if l.startswith("epoch ")]
    assert [l.split(":")[0] for l in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "test loss" in lines[0] and "%" in lines[0]
    acc = float(out.split("test accuracy: ")[1].split("%")[0])
    assert "img/s" in err                               # the progress bar
    model = load(path)
    assert model.metadata["epochs_done"] == 2 and model.metadata["steps"] == 20
    code, out, err = run(capsys, "eval", path, "--data-dir", data_dir)
    assert code == 0
    assert out.startswith(f"test accuracy: {acc:.2f}%") and "/200)" in out
    assert acc > 20


def test_seeded_training_is_reproducible(capsys, data_dir, tmp_path):
    args = ["train", "--data-dir", data_dir, "--epochs", "1", "--limit", "128",
            "--batch-size", "32", "--no-progress", "--shift", "1", "--seed", "5",
            "--workers", "1"]     # one process: bit for bit (workers add in another order)
    for name in ("a", "b"):
        assert run(capsys, *args, "--save", tmp_path / f"{name}.npz")[0] == 0
    a, b = load(tmp_path / "a.npz"), load(tmp_path / "b.npz")
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.value, pb.value)
    assert run(capsys, *args[:-2], "--seed", "6", "--save", tmp_path / "c.npz")[0] == 0
    c = load(tmp_path / "c.npz")
    assert not np.array_equal(a.parameters()[0].value, c.parameters()[0].value)


def test_diverging_training_says_so(capsys, data_dir):
    code, out, err = run(capsys, "train", "--data-dir", data_dir, "--epochs", "1",
                         "--limit", "256", "--lr", "1e6", "--schedule", "none", "--no-progress")
    assert code == 1
    assert "learning rate" in err and "too high" in err


@pytest.mark.parametrize("argv, needle", [
    (["train", "--epochs", "0"], "--epochs: must be at least 1"),
    (["train", "--lr", "-1"], "--lr: must be a positive number"),
    (["train", "--lr", "abc"], "--lr: expected a number"),
    (["train", "--model", "vgg"], "invalid choice: 'vgg'"),
    (["train", "--momentum", "1.5"], "--momentum: must be in [0, 1)"),
    (["train", "--optimizer", "rmsprop"], "invalid choice"),
    (["eval"], "the following arguments are required: MODEL.npz"),
    (["train", "--workers", "0"], "--workers: must be at least 1"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and needle in err and out == ""


def test_missing_and_bad_files(capsys, tmp_path, data_dir):
    code, _, err = run(capsys, "eval", tmp_path / "nope.npz")
    assert code == 1 and err.count("\n") == 1 and "nope.npz: no such file" in err

    corrupt = tmp_path / "corrupt.npz"
    save(lenet5(), corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    code, _, err = run(capsys, "eval", corrupt)
    assert code == 1 and err.count("\n") == 1 and "corrupt.npz" in err

    code, _, err = run(capsys, "summary", corrupt)
    assert code == 1 and "corrupt.npz" in err

    code, _, err = run(capsys, "train", "--data-dir", tmp_path / "nodir")
    assert code == 1 and "nodir" in err and "does not exist" in err

    bad = tmp_path / "bad"
    bad.mkdir()
    for f in data_dir.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    code, _, err = run(capsys, "train", "--data-dir", bad)
    assert code == 1 and err.count("\n") == 1 and "train-labels-idx1-ubyte" in err

    code, _, err = run(capsys, "train", "--data-dir", data_dir, "--save", tmp_path)
    assert code == 1 and "is a directory" in err


def test_model_that_cannot_take_the_images(capsys, tmp_path):
    d = tmp_path / "big"
    d.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("t10k", 20)):
        write_idx(d / f"{split}-images-idx3-ubyte", rng.integers(0, 255, (n, 32, 32), np.uint8))
        write_idx(d / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))
    code, _, err = run(capsys, "train", "--data-dir", d)
    assert code == 1 and "32x32" in err


def test_no_display_gui_is_a_clear_error(capsys, monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("display detection is for Linux")
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    code, _, err = run(capsys)
    assert code == 1 and "no display" in err


def test_ctrl_c_stops_training_cleanly(data_dir, tmp_path):
    import signal
    path = tmp_path / "int.npz"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "cnnviz", "train", "--data-dir", str(data_dir),
                          "--epochs", "1000", "--limit", "64", "--batch-size", "32",
                          "--save", str(path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline()          # "training ..." once the data is loaded
        assert line.startswith("training"), line + p.stderr.read()
        line = p.stdout.readline()          # the first epoch is done: a loaded machine can be slow
        assert line.startswith("epoch 1/1000"), line + p.stderr.read()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "interrupted at epoch" in err
    saved = tmp_path / "int.interrupted.npz"     # never under the final name
    assert f"saved the model so far as {saved} ({path} was not written)" in err
    assert not path.exists()
    assert load(saved).metadata["steps"] >= 2
    assert load(saved).metadata["interrupted"] is True


def test_limit_and_batch_beyond_the_set_are_clamped_and_said(capsys, data_dir, tmp_path):
    code, out, err = run(capsys, "train", "--data-dir", data_dir, "--epochs", "1",
                         "--limit", "100000", "--batch-size", "10000000", "--no-progress",
                         "--save", tmp_path / "m.npz")
    assert code == 0, err
    first = out.splitlines()[0]
    assert "on 600 images (all of them; --limit 100000 asked for more)" in first
    assert "batch 600 (the whole set; --batch-size 10000000 asked for more)" in first
    model = load(tmp_path / "m.npz")
    assert model.metadata["steps"] == 1 and model.metadata["config"]["batch_size"] == 600


def test_workers_train_together_and_are_said(capsys, data_dir, tmp_path):
    code, out, err = run(capsys, "train", "--data-dir", data_dir, "--epochs", "1",
                         "--limit", "320", "--batch-size", "32", "--no-progress",
                         "--workers", "2", "--save", tmp_path / "m.npz")
    assert code == 0, err
    assert out.splitlines()[0].endswith(", 2 processes")
    assert "warning" not in err                 # no worker died
    assert load(tmp_path / "m.npz").metadata["config"]["workers"] == 2


def test_more_workers_than_cores_is_refused_before_any_process_starts(capsys, data_dir):
    from cnnviz.engine.parallel import usable_cores

    code, out, err = run(capsys, "train", "--data-dir", data_dir, "--workers", "1000")
    cores = usable_cores()
    assert code == 1 and out == ""
    assert err.strip() == (f"cnnviz: error: --workers 1000: cnnviz may use {cores} "
                           f"core{'s' * (cores != 1)} here, and processes beyond one per core "
                           f"only slow each other down; use --workers {cores} or fewer")


def test_eval_warns_when_the_model_was_trained_on_other_classes(capsys, data_dir, tmp_path):
    named = tmp_path / "named"
    named.mkdir()
    for f in data_dir.iterdir():
        (named / f.name).write_bytes(f.read_bytes())
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    (named / "classes.txt").write_text("\n".join(names) + "\n")
    path = tmp_path / "fashion.npz"
    code, _, err = run(capsys, "train", "--data-dir", named, "--epochs", "1", "--limit", "64",
                       "--batch-size", "32", "--no-progress", "--save", path)
    assert code == 0, err
    assert load(path).metadata["class_names"] == names
    code, out, err = run(capsys, "eval", path, "--data-dir", data_dir)
    assert code == 0 and out.startswith("test accuracy: ")
    assert err == (f"cnnviz: warning: {path} was trained on classes T-shirt/top, Trouser, "
                   f"Pullover, Dress, ... (10), but {data_dir} has classes 0, 1, 2, 3, ... (10): "
                   f"the accuracy compares different classes\n")
    code, out, err = run(capsys, "eval", path, "--data-dir", named)        # its own: quiet
    assert code == 0 and err == ""


def test_eval_warns_for_an_older_file_that_names_only_its_dataset(capsys, data_dir, tmp_path):
    path = tmp_path / "old.npz"
    save(lenet5(seed=0), path, metadata={"dataset": str(data_dir)})
    code, out, err = run(capsys, "eval", path)
    assert code == 0 and err == (
        f"cnnviz: warning: {path} was trained on {data_dir}, not on the bundled MNIST: if "
        f"their classes differ, the accuracy compares different classes\n")
    code, out, err = run(capsys, "eval", path, "--data-dir", data_dir)
    assert code == 0 and err == ""
