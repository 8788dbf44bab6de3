"""The shipped models and summary(): parameter counts, shapes, MACs, and
one training step that lowers the loss."""

import numpy as np
import pytest

from cnnviz.engine import (MODELS, SGD, Adam, Conv2D, Linear, MaxPool2D, ReLU, Sequential,
                           SoftmaxCrossEntropy, lenet5, lenet5_small, summary)

LENET5_PARAMS = {"conv1": 156, "conv2": 2416, "fc1": 48120, "fc2": 10164, "fc3": 850}


def test_lenet5_parameter_counts_per_layer():
    net = lenet5()
    counts = {l.name: l.num_params for l in net.layers if l.num_params}
    assert counts == LENET5_PARAMS
    assert net.num_params == sum(LENET5_PARAMS.values()) == 61706
    s = summary(net, (1, 1, 28, 28))
    assert s.total_params == 61706
    assert {r.name: r.params for r in s.rows if r.params} == LENET5_PARAMS


def test_lenet5_shapes_and_macs():
    s = summary(lenet5(), (1, 1, 28, 28))
    rows = {r.name: r for r in s.rows}
    assert rows["conv1"].output_shape == (1, 6, 28, 28)
    assert rows["pool1"].output_shape == (1, 6, 14, 14)
    assert rows["conv2"].output_shape == (1, 16, 10, 10)
    assert rows["pool2"].output_shape == (1, 16, 5, 5)
    assert rows["flatten1"].output_shape == (1, 400)
    assert [rows[f"fc{i}"].output_shape for i in (1, 2, 3)] == [(1, 120), (1, 84), (1, 10)]
    assert rows["conv1"].macs == 117_600
    assert rows["conv2"].macs == 240_000
    assert rows["fc1"].macs == 48_000 and rows["fc2"].macs == 10_080 and rows["fc3"].macs == 840
    assert s.total_macs == sum(r.macs for r in s.rows)
    # batch scales the multiply-adds, not the parameters
    s8 = summary(lenet5(), (8, 1, 28, 28))
    assert {r.name: r.macs for r in s8.rows} == {r.name: 8 * r.macs for r in s.rows}
    assert s8.total_params == s.total_params


def test_small_variant_shapes():
    net = lenet5_small()
    s = summary(net, (1, 1, 28, 28))
    shapes = {r.name: r.output_shape for r in s.rows}
    assert shapes["conv1"] == (1, 6, 24, 24) and shapes["pool1"] == (1, 6, 12, 12)
    assert shapes["conv2"] == (1, 16, 8, 8) and shapes["pool2"] == (1, 16, 4, 4)
    assert shapes["flatten1"] == (1, 256) and shapes["fc1"] == (1, 10)
    assert net["fc1"].params["weight"].shape == (10, 256)
    assert s.total_params == 156 + 2416 + 2570
    out = net.forward(np.zeros((3, 1, 28, 28), np.float32))
    assert out.shape == (3, 10)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_summary_shapes_equal_a_real_forward(name):
    net = MODELS[name]()
    x = np.random.default_rng(0).uniform(0, 1, (2, 1, 28, 28)).astype(np.float32)
    net.forward(x)
    rows = summary(net, x.shape).rows
    assert [r.output_shape for r in rows] == [t.output.shape for t in net.trace]
    text = str(summary(net, x.shape))
    assert net.layers[2].name in text and f"{net.num_params:,}" in text


def test_summary_names_the_layer_that_cannot_take_its_input():
    net = Sequential(Conv2D(1, 2, 5), ReLU(), MaxPool2D(2), Conv2D(2, 2, 5))
    with pytest.raises(ValueError, match="conv2"):
        summary(net, (1, 1, 12, 12))
    with pytest.raises(ValueError, match="fc1"):
        summary(Sequential(Linear(10, 2)), (1, 9))


def test_summary_of_the_1x1_conv_example_in_the_notes():
    big = Sequential(Conv2D(256, 256, 3, padding=1))
    assert summary(big, (1, 256, 100, 100)).total_macs == 5_898_240_000
    cheap = Sequential(Conv2D(256, 64, 1), Conv2D(64, 256, 3, padding=1))
    assert summary(cheap, (1, 256, 100, 100)).total_macs == 163_840_000 + 1_474_560_000


def test_models_take_float32_images_in_0_1_and_are_seeded():
    a, b, c = lenet5(seed=3), lenet5(seed=3), lenet5(seed=4)
    x = np.random.default_rng(1).uniform(0, 1, (2, 1, 28, 28)).astype(np.float32)
    ya = a.forward(x)
    assert ya.dtype == np.float32 and ya.shape == (2, 10) and np.all(np.isfinite(ya))
    np.testing.assert_array_equal(ya, b.forward(x))
    assert not np.array_equal(ya, c.forward(x))


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_one_training_step_lowers_the_loss_on_a_fixed_batch(name, opt):
    net = MODELS[name](seed=0)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    loss_fn = SoftmaxCrossEntropy()
    optimizer = (SGD(net.parameters(), lr=0.005, momentum=0.9) if opt == "sgd"
                 else Adam(net.parameters(), lr=1e-3))
    before = loss_fn(net.forward(x), y)
    net.backward(loss_fn.backward(), need_input_grad=False)
    optimizer.step()
    after = loss_fn(net.forward(x), y)
    assert np.isfinite(before) and after < before - 1e-3, (before, after)


def test_linear_init_bounds_and_a_calm_first_loss():
    """He's bound for layers a ReLU follows, PyTorch's 1/sqrt(fan_in) for the
    classifier: the fresh network's loss starts near ln(10), not at ~6."""
    from cnnviz.data import load_mnist
    from cnnviz.engine import Linear, SoftmaxCrossEntropy
    he, fan_in = Linear(84, 1000, seed=0), Linear(84, 1000, seed=0, init="fan_in")
    assert 0.99 * np.sqrt(6 / 84) < np.abs(he.params["weight"]).max() <= np.sqrt(6 / 84)
    assert 0.99 / np.sqrt(84) < np.abs(fan_in.params["weight"]).max() <= 1 / np.sqrt(84)
    with pytest.raises(ValueError, match="init must be one of"):
        Linear(3, 2, init="xavier")
    model = lenet5(seed=0)
    assert model.layers[-1].config() == {"in_features": 84, "out_features": 10, "bias": True}
    test = load_mnist(split="test")
    x = (test.images[:1000] / 255).astype(np.float32)[:, None]
    assert SoftmaxCrossEntropy()(model.predict(x), test.labels[:1000]) < 3.5
