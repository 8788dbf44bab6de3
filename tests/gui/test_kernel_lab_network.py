"""The Kernel Lab's "Use a network's first layer": a model file (or a
checkpoint) the test writes, or the Training tab's model; its first conv
layer's kernels in the bank, run on the lab's picture as the engine runs them."""

import numpy as np
import pytest
from PyQt6.QtWidgets import QApplication

from cnnviz.data.images import sample_images
from cnnviz.engine import Conv2D, Flatten, Linear, ReLU, Sequential, lenet5, lenet5_small, save
from cnnviz.engine import functional as F
from cnnviz.engine.trainer import Trainer, TrainConfig

PHOTO = sample_images()["chelsea"] if "chelsea" in sample_images() else next(
    iter(sample_images().values()))


@pytest.fixture
def window(lab_window):
    return lab_window


def settle(qtbot, lab):
    qtbot.waitUntil(lambda: not lab.busy, timeout=20000)
    QApplication.processEvents()


def lab_input(lab):
    return lab.output.result.stages[0].maps


def engine_conv(lab):
    """What the engine's conv gives for the lab's input with the bank and the layer's settings."""
    v = lab.layer.values()
    return F.conv2d(np.ascontiguousarray(lab_input(lab))[None], lab.bank.weights, lab.bank.bias,
                    v["stride"], v["padding"], v["dilation"])[0]


def folded(model):
    """The first conv's kernels and biases with a Normalize before it folded in, by hand."""
    from cnnviz.engine.layers import Normalize

    conv = [l for l in model.layers if isinstance(l, Conv2D)][0]
    w, b = conv.params["weight"].astype(np.float64), conv.params["bias"].astype(np.float64)
    for layer in model.layers[:model.layers.index(conv)]:
        if isinstance(layer, Normalize):
            w, b = w / layer.std, b - layer.mean / layer.std * w.sum(axis=(1, 2, 3))
    return w, b


def test_a_grey_networks_first_layer_runs_on_the_photo_made_grey(qtbot, window, tmp_path):
    lab = window.kernel_lab
    lab.open_path(PHOTO)
    settle(qtbot, lab)
    assert lab.colour
    model = lenet5(seed=3)
    path = tmp_path / "lenet.npz"
    save(model, path)
    assert lab.network_button.use_file(path)
    settle(qtbot, lab)
    conv1 = model["conv1"]
    w, b = conv1.params["weight"], conv1.params["bias"]
    # 6 x 1 x 5 x 5, the input normalisation (x - 0.1307) / 0.3081 folded in
    np.testing.assert_allclose(lab.bank.weights, w / 0.3081, rtol=1e-5)
    np.testing.assert_allclose(lab.bank.bias, b - 0.1307 / 0.3081 * w.sum(axis=(1, 2, 3)),
                               rtol=1e-5, atol=1e-6)
    assert lab.bank.names == [f"conv1[{o}]" for o in range(6)]
    assert not lab.colour                                   # a grey layer: the photo as grey
    assert lab.layer.values()["padding"] == (2, 2) and lab.layer.values()["stride"] == (1, 1)
    text = lab.input_banner.label.text()
    assert text.startswith("lenet.npz: conv1's 6 filters of 1 channel(s), 5x5, stride 1, "
                           "padding 2, in the bank.")
    assert "the photo is used as grey (BT.601 luma)" in text
    assert ("norm1's (x - 0.1307) / 0.3081 is folded into the kernels and biases (w / 0.3081, "
            "b - 0.1307 / 0.3081 * sum(w)): the maps are conv1's as the network computes them"
            in text)
    assert ("Within 2 pixel(s) of the border the maps differ: the network pads the normalised "
            "picture with 0, the lab the raw picture" in text)
    conv = lab.output.result.stage("conv").maps
    assert conv.shape[0] == 6
    np.testing.assert_allclose(conv, engine_conv(lab), atol=1e-4)
    # inside the border: the network's own conv1 maps
    x = np.ascontiguousarray(lab_input(lab))[None]
    net = model.forward_layer(1, model.forward_layer(0, x))[0]
    np.testing.assert_allclose(conv[:, 2:-2, 2:-2], net[:, 2:-2, 2:-2], atol=1e-4)


def test_lenet5_1998s_c1_padded_then_normalised_is_the_networks_everywhere(qtbot, window,
                                                                            tmp_path):
    from cnnviz.engine.architecture import bundled, read

    lab = window.kernel_lab
    digit = (np.arange(28 * 28).reshape(28, 28) * 7 % 256).astype(np.uint8)
    lab.open_digit(digit, 3, "test", 0)
    settle(qtbot, lab)
    model = read(bundled()["lenet5-1998"]).build(seed=5)
    path = tmp_path / "lenet1998.npz"
    save(model, path)
    assert lab.network_button.use_file(path)
    settle(qtbot, lab)
    assert lab.layer.values()["padding"] == (2, 2)             # the pad layer's 2
    assert "border" not in lab.input_banner.label.text()        # exact everywhere
    x = np.ascontiguousarray(lab_input(lab))[None]
    for i in range(3):                                          # pad, norm, C1
        x = model.forward_layer(i, x)
    np.testing.assert_allclose(lab.output.result.stage("conv").maps, x[0], atol=1e-4)


def test_a_colour_networks_kernels_keep_their_three_channels(qtbot, window, tmp_path):
    lab = window.kernel_lab
    lab.open_path(PHOTO)
    settle(qtbot, lab)
    net = Sequential(Conv2D(3, 5, 3, stride=2, padding=1, seed=1), ReLU(), Flatten(),
                     Linear(5 * 16 * 16, 10, seed=1))
    path = tmp_path / "colour.npz"
    save(net, path)
    assert lab.network_button.use_file(path)
    settle(qtbot, lab)
    np.testing.assert_array_equal(lab.bank.weights, net.layers[0].params["weight"])  # 5x3x3x3
    assert lab.colour and lab.layer.values()["stride"] == (2, 2)
    assert lab.layer.values()["padding"] == (1, 1)
    assert lab.input_banner.label.text() == ("colour.npz: conv1's 5 filters of 3 channel(s), "
                                             "3x3, stride 2, padding 1, in the bank.")
    np.testing.assert_allclose(lab.output.result.stage("conv").maps, engine_conv(lab), atol=1e-4)


def test_a_checkpoints_first_layer(qtbot, window, tmp_path):
    lab = window.kernel_lab
    lab.open_path(PHOTO)
    settle(qtbot, lab)
    rng = np.random.default_rng(0)
    data = (rng.integers(0, 256, (32, 28, 28), np.uint8), rng.integers(0, 10, 32))
    trainer = Trainer(lenet5_small(seed=0), data, None,
                      TrainConfig(epochs=1, batch_size=16, lr=0.01, warmup_steps=0,
                                  snapshot_every=1))
    for _ in trainer.run():
        pass
    path = tmp_path / "run.npz"
    trainer.save_checkpoint(path)                            # a checkpoint, not a model file
    assert lab.network_button.use_file(path)
    settle(qtbot, lab)
    conv1 = [l for l in trainer.model.layers if isinstance(l, Conv2D)][0]
    w, b = folded(trainer.model)
    np.testing.assert_allclose(lab.bank.weights, w, rtol=1e-5)
    np.testing.assert_allclose(lab.bank.bias, b, rtol=1e-5, atol=1e-6)
    assert lab.input_banner.label.text().startswith(f"run.npz: {conv1.name}'s")


def test_a_colour_layer_on_a_grey_picture_sums_its_kernels_exactly(qtbot, window, tmp_path):
    lab = window.kernel_lab
    digit = (np.arange(28 * 28).reshape(28, 28) % 251).astype(np.uint8)
    lab.open_digit(digit, 3, "test", 0)
    settle(qtbot, lab)
    net = Sequential(Conv2D(3, 4, 3, seed=2), Flatten(), Linear(4 * 26 * 26, 10, seed=2))
    path = tmp_path / "colour.npz"
    save(net, path)
    assert lab.network_button.use_file(path)
    settle(qtbot, lab)
    w = net.layers[0].params["weight"]
    np.testing.assert_allclose(lab.bank.weights[:, 0], w.sum(axis=1), rtol=1e-6)
    assert "each filter's R, G and B kernels act as their sum" in lab.input_banner.label.text()
    # the same maps as the grey picture fed in all three channels to the network's layer
    grey = lab_input(lab)[0]
    rgb = np.repeat(grey[None, None], 3, axis=1)
    expected = F.conv2d(rgb, w, net.layers[0].params["bias"])[0]
    np.testing.assert_allclose(lab.output.result.stage("conv").maps, expected, atol=1e-4)


def test_bad_networks_are_refused_with_a_message(qtbot, window, tmp_path):
    lab = window.kernel_lab
    lab.open_path(PHOTO)
    settle(qtbot, lab)
    before = lab.bank.weights.copy()
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    assert not lab.network_button.use_file(corrupt)
    text = lab.input_banner.label.text()
    assert text.startswith("Cannot use this network's first layer: ") and "corrupt.npz" in text
    mlp = tmp_path / "mlp.npz"
    save(Sequential(Flatten(), Linear(784, 10)), mlp)
    assert not lab.network_button.use_file(mlp)
    assert lab.input_banner.label.text() == ("Cannot use this network's first layer: mlp.npz "
                                             "has no conv layer: no kernels to run on the photo")
    np.testing.assert_array_equal(lab.bank.weights, before)      # the bank is untouched


def test_the_training_tabs_model(qtbot, window):
    lab = window.kernel_lab
    lab.open_path(PHOTO)
    settle(qtbot, lab)
    assert lab.network_button.training_action.isEnabled()
    assert not lab.network_button.take_training_model()          # no run yet
    assert lab.input_banner.label.text() == "No training run yet: start one in the Training tab."
    model = lenet5_small(seed=4)
    lab.set_training_source(lambda: (model, "Model from Training at step 10"))
    assert lab.network_button.take_training_model()
    settle(qtbot, lab)
    np.testing.assert_allclose(lab.bank.weights, folded(model)[0], rtol=1e-5)
    assert lab.input_banner.label.text().startswith("Model from Training at step 10: conv1's")
