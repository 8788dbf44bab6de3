"""`cnnviz train --data ...`: image folders, CIFAR-10 and coloured MNIST from
the command line, and the one-line messages for data the network cannot take."""

import json

import pytest

from cnnviz.cli import main
from test_datasets_cifar10 import write_cifar
from test_datasets_folder import make_classes


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def tiny_arch(path, shape):
    path.write_text(json.dumps({"input_shape": list(shape), "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"}, {"type": "MaxPool2D", "kernel_size": 2}, {"type": "Flatten"},
        {"type": "Linear", "out_features": 3}]}))
    return path


FAST = ("--epochs", 1, "--batch-size", 8, "--workers", 1, "--no-progress", "--warmup", 0)


def test_train_on_an_image_folder_sized_and_coloured_as_the_network(capsys, tmp_path):
    make_classes(tmp_path / "pets", n=6)
    (tmp_path / "pets" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    arch = tiny_arch(tmp_path / "c.json", (3, 12, 10))
    code, out, err = run(capsys, "train", "--arch", arch, "--data", f"folder:{tmp_path / 'pets'}",
                         *FAST)
    assert code == 0, err
    assert (f" images of image folder {tmp_path / 'pets'} (12x10 colour, 0.2 held out per "
            f"class, seed 0) (3 classes: cat, dog, emu) for 1 epoch: ") in out.splitlines()[0]
    assert "test accuracy: " in out
    assert err.startswith("cnnviz: warning: skipped 1 unreadable file of 19: dog/broken.jpg ")
    # a grey network: the folder is loaded grey at its size
    code, out, err = run(capsys, "train", "--arch", tiny_arch(tmp_path / "g.json", (1, 8, 8)),
                         "--data", f"folder:{tmp_path / 'pets'}", *FAST)
    assert code == 0 and "(8x8 grey, " in out
    # --size and --grey given: they win, and a misfit is said before training
    code, out, err = run(capsys, "train", "--arch", arch, "--data", f"folder:{tmp_path / 'pets'}",
                         "--size", "16x16", *FAST)
    assert code == 1 and out == ""
    assert err == (f"cnnviz: error: {arch}: the network takes 3x12x10, the dataset gives "
                   f"3x16x16; leave out --size (or give --size 12x10) to fit the network\n")
    code, out, err = run(capsys, "train", "--arch", arch, "--data", f"folder:{tmp_path / 'pets'}",
                         "--grey", *FAST)
    assert code == 1 and err == (
        f"cnnviz: error: {arch}: the network takes 3x12x10, the dataset gives 1x12x10; train it "
        f"on colour data (e.g. --data colored-mnist, or --colour for a folder)\n")


def test_a_bad_folder_is_one_line_before_training(capsys, tmp_path):
    make_classes(tmp_path / "pets", n=3)
    (tmp_path / "pets" / "cow").mkdir()
    code, out, err = run(capsys, "train", "--data", f"folder:{tmp_path / 'pets'}", *FAST)
    assert code == 1 and out == ""
    assert err.startswith(f"cnnviz: error: {tmp_path / 'pets'}: class 'cow' has no images (no ")
    assert err.count("\n") == 1
    code, out, err = run(capsys, "train", "--data", f"folder:{tmp_path / 'nothing'}", *FAST)
    assert code == 1 and err == (f"cnnviz: error: {tmp_path / 'nothing'}: no such folder; an "
                                 f"image dataset is a folder with one subfolder per class\n")


def test_lenet5_on_colour_data_is_a_clear_mismatch(capsys, tmp_path):
    code, out, err = run(capsys, "train", "--data", "colored-mnist", *FAST)
    assert code == 1 and out == ""
    assert err == ("cnnviz: error: lenet5: the network takes 1x28x28, the dataset gives "
                   "3x28x28; use a colour network (e.g. --model colour-cnn), or --grey for a "
                   "folder or CIFAR-10\n")
    write_cifar(tmp_path / "cifar")
    code, out, err = run(capsys, "train", "--data", f"cifar10:{tmp_path / 'cifar'}", *FAST)
    assert code == 1 and "lenet5: the network takes 1x28x28, the dataset gives 3x32x32;" in err
    code, out, err = run(capsys, "train", "--model", "colour-cnn", *FAST)      # MNIST is grey
    assert code == 1 and err == (
        "cnnviz: error: colour-cnn: the network takes 3x28x28, the dataset gives 1x28x28; train "
        "it on colour data (e.g. --data colored-mnist, or --colour for a folder)\n")


def test_train_on_cifar10_files_and_options_that_do_not_apply(capsys, tmp_path):
    write_cifar(tmp_path / "cifar", per_file=4)
    arch = tiny_arch(tmp_path / "c.json", (3, 32, 32))
    arch.write_text(arch.read_text().replace('"out_features": 3', '"out_features": 10'))
    code, out, err = run(capsys, "train", "--arch", arch, "--data",
                         f"cifar10:{tmp_path / 'cifar'}", *FAST, "--save", tmp_path / "m.npz")
    assert code == 0, err
    assert "10 classes: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck" in out
    from cnnviz.engine import load
    meta = load(tmp_path / "m.npz").metadata
    assert meta["dataset"] == f"cifar10:{tmp_path / 'cifar'}"
    assert meta["class_names"][:2] == ["airplane", "automobile"]
    code, out, err = run(capsys, "train", "--data", "mnist", "--size", "32x32", *FAST)
    assert code == 1 and err.startswith("cnnviz: error: --size 32x32: applies to image folders")
    code, out, err = run(capsys, "train", "--data", "colored-mnist", "--grey", *FAST)
    assert code == 1 and err == ("cnnviz: error: --grey: applies to image folders and CIFAR-10 "
                                 "only; coloured MNIST is colour\n")
    code, out, err = run(capsys, "train", "--data", "x", "--data-dir", "y", *FAST)
    assert code == 2 and "not allowed with argument" in err
