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


# --- cnnviz eval --data ------------------------------------------------------------
def test_eval_on_the_image_folder_a_model_was_trained_on(capsys, tmp_path):
    pets = tmp_path / "pets"
    make_classes(pets, n=10)
    arch = tiny_arch(tmp_path / "c.json", (3, 12, 10))         # not square: from the file
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--arch", arch, "--data", f"folder:{pets}", *FAST,
                         "--seed", 3, "--save", model)
    assert code == 0, err
    trained = out.split("test accuracy: ")[1].split("%")[0]
    # the same folder, sized, coloured and split (seed 3, from the file) as in training
    code, out, err = run(capsys, "eval", model, "--data", f"folder:{pets}")
    assert code == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0].startswith(f"test accuracy: {trained}% (") and "/6), loss " in lines[0]
    assert lines[0].endswith(f", on image folder {pets} (12x10 colour, 0.2 held out per class, "
                             f"seed 3)")
    assert len(lines) == 2 and lines[1].startswith("per class: cat ")
    for name in ("cat", "dog", "emu"):
        assert f" {name} " in f" {lines[1]}" and "(" in lines[1]
    assert lines[1].count("/2)") == 3                             # 0.2 of each 10 held out
    # what does not fit the model: one line each, nothing on stdout
    for extra, message in (
            (("--size", "16x16"), f"the model expects 3x12x10 inputs; image folder {pets} gives "
                                  f"3x16x16; leave out --size (or give --size 12x10)"),
            (("--grey",), f"the model expects 3x12x10 inputs; image folder {pets} gives 1x12x10; "
                          f"give --colour")):
        code, out, err = run(capsys, "eval", model, "--data", f"folder:{pets}", *extra)
        assert (code, out, err) == (1, "", f"cnnviz: error: {model}: {message}\n")
    code, out, err = run(capsys, "eval", model, "--data", "colored-mnist")
    assert (code, out) == (1, "") and err == (
        f"cnnviz: error: {model}: the model expects 3x12x10 inputs; coloured MNIST gives "
        f"3x28x28\n")
    make_classes(tmp_path / "more", classes=("cat", "cow", "dog", "emu"), n=4)
    code, out, err = run(capsys, "eval", model, "--data", f"folder:{tmp_path / 'more'}")
    assert (code, out) == (1, "") and err == (
        f"cnnviz: error: {model}: the model has 3 outputs (classes); image folder "
        f"{tmp_path / 'more'} has 4 classes (cat, cow, dog, emu)\n")


def test_eval_on_cifar10_names_its_classes_and_a_square_model_is_sized_from_its_layers(
        capsys, tmp_path):
    write_cifar(tmp_path / "cifar", per_file=10)
    arch = tiny_arch(tmp_path / "c.json", (3, 32, 32))
    arch.write_text(arch.read_text().replace('"out_features": 3', '"out_features": 10'))
    from cnnviz.engine import load, save
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--arch", arch, "--data",
                         f"cifar10:{tmp_path / 'cifar'}", *FAST, "--save", model)
    assert code == 0, err
    code, out, err = run(capsys, "eval", model, "--data", f"cifar10:{tmp_path / 'cifar'}")
    assert code == 0 and err == "", err
    first, *per_class = out.splitlines()
    assert first.startswith("test accuracy: ") and "/10), loss " in first
    text = " ".join(per_class)
    assert text.startswith("per class: airplane ") and "truck " in text
    assert 2 <= len(per_class) <= 4 and all(len(line) <= 100 for line in per_class)
    # the same weights in a file without the recorded input (another tool's
    # save): 32x32 is worked out from the layers
    bare = tmp_path / "bare.npz"
    save(load(model), bare)
    code, out, err = run(capsys, "eval", bare, "--data", "colored-mnist")
    assert (code, out) == (1, "") and err == (
        f"cnnviz: error: {bare}: the model expects 3x32x32 inputs; coloured MNIST gives "
        f"3x28x28\n")
    code, out, err = run(capsys, "eval", bare, "--data", f"cifar10:{tmp_path / 'cifar'}",
                         "--grey")
    assert (code, out) == (1, "") and err == (
        f"cnnviz: error: {bare}: the model expects 3x32x32 inputs; CIFAR-10 in "
        f"{tmp_path / 'cifar'} gives 1x32x32; give --colour\n")


def test_eval_of_a_colour_model_on_coloured_mnist(capsys, tmp_path):
    arch = tiny_arch(tmp_path / "c.json", (3, 28, 28))
    arch.write_text(arch.read_text().replace('"out_features": 3', '"out_features": 10'))
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--arch", arch, "--data", "colored-mnist", *FAST,
                         "--limit", 256, "--save", model)
    assert code == 0, err
    code, out, err = run(capsys, "eval", model, "--data", "colored-mnist")
    assert code == 0 and err == "", err
    assert out.startswith("test accuracy: ") and "/10000), loss" in out
    assert "per class: 0 " in out and ", 9 " in out
    # its own data, not the default MNIST: the grey images are refused in one line
    code, out, err = run(capsys, "eval", model)
    assert (code, out) == (1, "") and err.startswith(
        f"cnnviz: error: {model}: the model expects 3x28x28 inputs; the bundled MNIST gives "
        f"1x28x28")


def test_cache_says_where_the_cache_is_and_clears_it(capsys, tmp_path):
    where = tmp_path / "xdg-cache" / "cnnviz"
    code, out, err = run(capsys, "cache")
    assert (code, err) == (0, "") and out == (
        f"{where}: 0 cached image folders, 0.0 MiB (at most 2.0 GiB kept, the least recently "
        f"used removed first); `cnnviz cache --clear` empties it\n")
    make_classes(tmp_path / "pets", n=6)
    arch = tiny_arch(tmp_path / "c.json", (3, 12, 10))
    assert run(capsys, "train", "--arch", arch, "--data", f"folder:{tmp_path / 'pets'}",
               *FAST)[0] == 0
    (entry,) = where.glob("folder-*.npz")
    mib = f"{entry.stat().st_size / (1 << 20):.1f} MiB"
    code, out, err = run(capsys, "cache")
    assert code == 0 and out.startswith(f"{where}: 1 cached image folder, {mib} (")
    code, out, err = run(capsys, "cache", "--clear")
    assert (code, err) == (0, "") and out == f"removed 1 cached image folder ({mib}) from {where}\n"
    assert not entry.exists()
