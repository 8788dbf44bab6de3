"""What `cnnviz summary` and `cnnviz train` say of a model's input and output
shapes: a saved colour model summarised at the size it was trained on, a
network that does not end in class scores, more outputs than classes."""

import json

import pytest

from cnnviz.cli import main
from cnnviz.engine import save
from cnnviz.engine.architecture import read
from test_cli_datasets import FAST, run, tiny_arch
from test_datasets_folder import make_classes


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def test_a_trained_colour_model_is_summarised_at_its_training_size(capsys, tmp_path):
    make_classes(tmp_path / "pets", n=6)
    arch = tiny_arch(tmp_path / "c.json", (3, 12, 10))
    model = tmp_path / "pets.npz"
    code, out, err = run(capsys, "train", "--arch", arch, "--data", f"folder:{tmp_path / 'pets'}",
                         "--save", model, *FAST)
    assert code == 0, err
    code, out, err = run(capsys, "summary", model)
    assert code == 0, err
    assert "input (1, 3, 12, 10)" in out.splitlines()[1]
    assert out.splitlines()[-1].split()[:2] == ["total", "475"]     # conv 112 + linear 120 * 3 + 3


def test_a_model_file_without_its_input_shape_is_summarised_at_a_size_that_fits(capsys,
                                                                                 tmp_path):
    """Files saved before the input shape was recorded: the channels from the
    first convolution, the side from the first Linear that takes the maps."""
    arch = tiny_arch(tmp_path / "c.json", (3, 32, 32))
    path = tmp_path / "old.npz"
    save(read(arch).build(seed=0), path)                   # no metadata at all
    code, out, err = run(capsys, "summary", path)
    assert code == 0, err
    assert "input (1, 3, 32, 32)" in out


def test_a_network_that_ends_in_maps_is_refused_in_one_line(capsys, tmp_path):
    make_classes(tmp_path / "pets", n=4)
    arch = tmp_path / "maps.json"
    arch.write_text(json.dumps({"input_shape": [3, 12, 10], "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 3}]}))
    code, out, err = run(capsys, "train", "--arch", arch, "--data", f"folder:{tmp_path / 'pets'}",
                         *FAST)
    assert code == 1 and out == ""
    assert err == (f"cnnviz: error: {arch}: the network's output is 4x10x8 maps, not one score "
                   f"per class: end it with Flatten and Linear\n")


def test_more_outputs_than_classes_trains_with_a_warning(capsys, tmp_path):
    make_classes(tmp_path / "pets", n=6)                   # 3 classes
    arch = tmp_path / "ten.json"
    layers = json.loads(tiny_arch(tmp_path / "t.json", (3, 12, 10)).read_text())
    layers["layers"][-1]["out_features"] = 10
    arch.write_text(json.dumps(layers))
    code, out, err = run(capsys, "train", "--arch", arch, "--data", f"folder:{tmp_path / 'pets'}",
                         *FAST)
    assert code == 0, err
    assert (f"cnnviz: warning: {arch}: the network has 10 outputs, the data 3 classes: "
            f"outputs 3-9 are never the answer") in err.splitlines()
    assert "test accuracy: " in out
