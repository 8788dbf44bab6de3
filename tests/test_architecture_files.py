"""Architecture files (.json): the ready ones, reading and writing, sizes
taken from the input, and the command line (`cnnviz summary FILE.json`,
`cnnviz train --arch FILE.json`)."""

import json

import numpy as np
import pytest

from cnnviz.cli import main
from cnnviz.data import load_mnist
from cnnviz.data.idx import write_idx
from cnnviz.engine import architecture, lenet5, lenet5_1998, load, summary
from cnnviz.engine.serialization import architecture as model_architecture


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_the_ready_architectures_ship():
    assert set(architecture.bundled()) == {"lenet5", "lenet5-1998", "bottleneck-3x3",
                                           "bottleneck-1x1", "colour-cnn", "cifar-cnn"}
    assert architecture.read(architecture.bundled()["colour-cnn"]).input_shape == (3, 28, 28)
    assert architecture.read(architecture.bundled()["cifar-cnn"]).input_shape == (3, 32, 32)


def test_the_cifar_network_is_summarised_and_trains_on_cifar_files(capsys, tmp_path,
                                                                    monkeypatch):
    from test_datasets_cifar10 import write_cifar

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    code, out, err = run(capsys, "summary", "--model", "cifar-cnn")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "cifar-cnn: CIFAR CNN (3x32x32 colour)"
    assert lines[1] == "input (1, 3, 32, 32)"
    assert lines[-1].split() == ["total", "90,058", "2,896,512"]
    # one epoch of a small file in the CIFAR-10 binary format, by the real command
    write_cifar(tmp_path / "cifar", per_file=8)
    code, out, err = run(capsys, "train", "--model", "cifar-cnn", "--data",
                         f"cifar10:{tmp_path / 'cifar'}", "--epochs", 1, "--batch-size", 8,
                         "--workers", 1, "--no-progress", "--warmup", 0,
                         "--save", tmp_path / "m.npz")
    assert code == 0, err
    assert "10 classes: airplane, automobile" in out
    from cnnviz.engine import load
    saved = load(tmp_path / "m.npz")
    assert saved.metadata["dataset"] == f"cifar10:{tmp_path / 'cifar'}"
    assert [layer.name for layer in saved.layers][-1] == "fc2"


@pytest.mark.parametrize("name,make", [("lenet5", lenet5), ("lenet5-1998", lenet5_1998)])
def test_the_bundled_lenets_build_exactly_the_engines_models(name, make):
    arch = architecture.read(architecture.bundled()[name])
    assert arch.input_shape == (1, 28, 28)
    built, expected = arch.build(seed=3), make(seed=3)
    assert model_architecture(built) == model_architecture(expected)
    for k, v in expected.state_dict().items():
        np.testing.assert_array_equal(built.state_dict()[k], v, err_msg=k)


@pytest.mark.parametrize("name,total,rows", [
    ("bottleneck-3x3", "5,898,240,000", ["conv3x3  Conv2D  (1, 256, 100, 100)  590,080  "
                                         "5,898,240,000"]),
    ("bottleneck-1x1", "1,638,400,000", ["reduce1x1  Conv2D  (1, 64, 100, 100)    16,448    "
                                         "163,840,000",
                                         "conv3x3    Conv2D  (1, 256, 100, 100)  147,712  "
                                         "1,474,560,000"])])
def test_summary_prints_the_notes_bottleneck_numbers(capsys, name, total, rows):
    path = architecture.bundled()[name]
    for argv in (("summary", path), ("summary", "--model", name)):
        code, out, err = run(capsys, *argv)
        assert code == 0 and err == ""
        lines = out.splitlines()
        assert lines[1] == "input (1, 256, 100, 100)"
        assert lines[-1].split()[0] == "total" and lines[-1].split()[-1] == total
        for row in rows:
            assert row in lines


def test_summary_of_the_1998_lenet_file_is_the_notes_table(capsys):
    code, out, _ = run(capsys, "summary", architecture.bundled()["lenet5-1998"])
    assert code == 0 and out.splitlines()[0].endswith(": LeNet-5 (1998)")
    params = {line.split()[0]: line.split()[-2] for line in out.splitlines()[4:-2]}
    assert {k: params[k] for k in ("C1", "S2", "C3", "S4", "C5", "F6", "output")} == {
        "C1": "156", "S2": "12", "C3": "1,516", "S4": "32", "C5": "48,120", "F6": "10,164",
        "output": "850"}
    assert out.splitlines()[-1].split()[1] == "60,850"


def test_sizes_of_the_input_are_taken_from_the_shape_and_the_file_round_trips(tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps({
        "input_shape": [3, 9, 8], "name": "tiny",
        "layers": [{"type": "Conv2D", "out_channels": 5, "kernel_size": [3, 2], "padding": 1},
                   {"type": "BatchNorm2d"}, {"type": "ReLU"}, {"type": "Subsampling2D"},
                   {"type": "Dropout", "p": 0.2}, {"type": "GlobalAvgPool2D"},
                   {"type": "Linear", "out_features": 4}]}))
    arch = architecture.read(path)
    configs = {name: config for _, name, config in arch.layers}
    assert configs["conv1"]["in_channels"] == 3 and configs["bn1"]["num_features"] == 5
    assert configs["subsamp1"]["channels"] == 5 and configs["fc1"]["in_features"] == 5
    model = arch.build(seed=0)
    table = summary(model, arch.batch_input_shape)
    assert [r.output_shape for r in table.rows] == [
        (1, 5, 9, 9), (1, 5, 9, 9), (1, 5, 9, 9), (1, 5, 4, 4), (1, 5, 4, 4), (1, 5), (1, 4)]
    assert model["dropout1"].seed is not None          # seeded from the build
    assert model["fc1"].params["weight"].std() < 1 / np.sqrt(5)   # the classifier: fan_in init
    again = tmp_path / "again.json"
    architecture.write(again, arch)
    back = architecture.read(again)
    assert back.layers == arch.layers and back.input_shape == (3, 9, 8) and back.name == "tiny"
    assert len(again.read_text().splitlines()) == 8 + len(arch.layers)    # one layer a line


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mini")
    tr, te = load_mnist(), load_mnist(split="test")
    write_idx(d / "train-images-idx3-ubyte", tr.images[:256])
    write_idx(d / "train-labels-idx1-ubyte", tr.labels[:256])
    write_idx(d / "t10k-images-idx3-ubyte", te.images[:100])
    write_idx(d / "t10k-labels-idx1-ubyte", te.labels[:100])
    return d


def test_train_an_architecture_file_and_save_it(capsys, data_dir, tmp_path):
    arch = tmp_path / "bn-net.json"
    arch.write_text(json.dumps({"input_shape": [1, 28, 28], "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 5}, {"type": "BatchNorm2d"},
        {"type": "ReLU"}, {"type": "MaxPool2D", "kernel_size": 2}, {"type": "Dropout", "p": 0.1},
        {"type": "Flatten"}, {"type": "Linear", "out_features": 10}]}))
    saved = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--arch", arch, "--data-dir", data_dir, "--epochs", 1,
                         "--batch-size", 32, "--workers", 1, "--no-progress", "--save", saved)
    assert code == 0, err
    assert out.startswith(f"training {arch} on 256 images")
    model = load(saved)
    assert model.metadata["model"] == str(arch)
    assert [type(l).__name__ for l in model.layers][:3] == ["Conv2D", "BatchNorm2d", "ReLU"]
    assert not np.allclose(model["bn1"].buffers["running_mean"], 0)     # trained statistics
    code, out, err = run(capsys, "eval", saved, "--data-dir", data_dir)
    assert code == 0 and out.startswith("test accuracy: ")


def test_an_architecture_for_other_images_is_refused_before_training(capsys, data_dir, tmp_path):
    arch = tmp_path / "big.json"
    arch.write_text(json.dumps({"input_shape": [1, 32, 32], "layers": [{"type": "Flatten"}]}))
    code, out, err = run(capsys, "train", "--arch", arch, "--data-dir", data_dir)
    assert code == 1 and out == ""
    assert err == (f"cnnviz: error: {arch}: the network takes 1x32x32, the dataset gives "
                   f"1x28x28; use a network whose input_shape is [1, 28, 28]\n")
    code, _, err = run(capsys, "train", "--arch", arch, "--model", "small")
    assert code == 2 and "not allowed with argument" in err


def test_the_documented_example_reads_and_has_the_totals_the_document_gives():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "docs" / "architecture-format.md").read_text()
    example = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))
    arch = architecture.parse(example)
    table = summary(arch.build(seed=0), arch.batch_input_shape)
    said = re.search(r"gives ([\d,]+) parameters and ([\d,]+) multiply-adds", text)
    assert (f"{table.total_params:,}", f"{table.total_macs:,}") == said.groups()
