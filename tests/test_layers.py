"""Layers: forward against the references, backward against finite
differences (float64), params/grads, no weight change in backward, dtypes."""

import numpy as np
import pytest

import reference as ref
from gradcheck import assert_grad_close

from cnnviz import engine
from cnnviz.engine import (AvgPool2D, BatchNorm2d, Conv2D, Dropout, Flatten, GlobalAvgPool2D,
                           LeakyReLU, Linear, MaxPool2D, Normalize, ReLU, Sigmoid, SparseConv2D,
                           Subsampling2D, Tanh, ZeroPad2D)


def conv_layer(dtype=np.float64, **kw):
    args = dict(in_channels=3, out_channels=4, kernel_size=(3, 2), stride=(2, 1),
                padding=(1, 0), dilation=1, bias=True)
    args.update(kw)
    layer = Conv2D(**args, seed=0, dtype=dtype)
    if "bias" in layer.params:   # non-zero bias, so a dropped bias shows
        layer.params["bias"][...] = np.random.default_rng(1).standard_normal(args["out_channels"])
    return layer


def batch_norm(dtype, training):
    """A BatchNorm2d with gamma, beta and running statistics away from 1 and 0."""
    layer = BatchNorm2d(3, eps=1e-3, momentum=0.2, dtype=dtype)
    rng = np.random.default_rng(3)
    layer.params["gamma"][...] = rng.uniform(0.5, 2, 3)
    layer.params["beta"][...] = rng.standard_normal(3)
    layer.buffers["running_mean"][...] = rng.standard_normal(3)
    layer.buffers["running_var"][...] = rng.uniform(0.5, 2, 3)
    layer.training = training
    return layer


def bn_reference(layer, x):
    g, b = layer.params["gamma"], layer.params["beta"]
    if layer.training:
        mean, var, _ = ref.channel_stats(x)
    else:
        mean, var = layer.buffers["running_mean"], layer.buffers["running_var"]
    return ref.batch_norm2d(x, g, b, mean, var, layer.eps)


def subsampling_layer(dtype, channels=3, kernel_size=2, stride=None):
    layer = Subsampling2D(channels, kernel_size, stride, dtype=dtype)
    rng = np.random.default_rng(4)
    layer.params["weight"][...] = rng.standard_normal(channels)
    layer.params["bias"][...] = rng.standard_normal(channels)
    return layer


SPARSE = [[0, 2], [1], [0, 1, 2], [2, 0]]


def sparse_layer(dtype):
    layer = SparseConv2D(3, 4, (3, 2), SPARSE, stride=(2, 1), padding=(1, 0), seed=0, dtype=dtype)
    layer.params["bias"][...] = np.random.default_rng(5).standard_normal(4)
    return layer


# (factory, input shape, reference forward)
LAYERS = {
    "conv": (lambda d: conv_layer(d), (2, 3, 7, 6),
             lambda l, x: ref.conv2d(x, l.params["weight"], l.params["bias"], (2, 1), (1, 0))),
    "conv_dilated_nobias": (lambda d: conv_layer(d, in_channels=2, out_channels=3, kernel_size=3,
                                                 stride=1, padding=2, dilation=2, bias=False),
                            (2, 2, 6, 7),
                            lambda l, x: ref.conv2d(x, l.params["weight"], None, 1, 2, 2)),
    "linear": (lambda d: Linear(7, 5, seed=0, dtype=d), (3, 7),
               lambda l, x: ref.linear(x, l.params["weight"], l.params["bias"])),
    "linear_nobias": (lambda d: Linear(4, 3, bias=False, seed=0, dtype=d), (2, 4),
                      lambda l, x: ref.linear(x, l.params["weight"])),
    "maxpool": (lambda d: MaxPool2D(3, 2), (2, 3, 7, 8), lambda l, x: ref.max_pool2d(x, 3, 2)[0]),
    "maxpool_rect": (lambda d: MaxPool2D((2, 3), (2, 1)), (1, 2, 7, 8),
                     lambda l, x: ref.max_pool2d(x, (2, 3), (2, 1))[0]),
    "avgpool": (lambda d: AvgPool2D(2), (2, 3, 7, 8), lambda l, x: ref.avg_pool2d(x, 2)),
    "avgpool_overlap": (lambda d: AvgPool2D(3, (2, 1)), (1, 2, 7, 6),
                        lambda l, x: ref.avg_pool2d(x, 3, (2, 1))),
    "relu": (lambda d: ReLU(), (2, 3, 4, 5), lambda l, x: ref.relu(x)),
    "leaky_relu": (lambda d: LeakyReLU(0.1), (2, 3, 4, 5), lambda l, x: ref.leaky_relu(x, 0.1)),
    "sigmoid": (lambda d: Sigmoid(), (2, 3, 4, 5), lambda l, x: ref.sigmoid(x)),
    "tanh": (lambda d: Tanh(), (2, 3, 4, 5), lambda l, x: ref.tanh(x)),
    "flatten": (lambda d: Flatten(), (2, 3, 4, 5), lambda l, x: x.reshape(2, -1)),
    "normalize": (lambda d: Normalize(0.5, 2.0), (2, 1, 4, 5), lambda l, x: (x - 0.5) / 2.0),
    "batchnorm_train": (lambda d: batch_norm(d, True), (2, 3, 3, 5), bn_reference),
    "batchnorm_eval": (lambda d: batch_norm(d, False), (2, 3, 3, 5), bn_reference),
    "dropout_eval": (lambda d: _eval(Dropout(0.4, seed=0)), (2, 3, 4, 5), lambda l, x: x),
    "global_avg_pool": (lambda d: GlobalAvgPool2D(), (2, 3, 4, 5),
                        lambda l, x: ref.global_avg_pool(x)),
    "zero_pad": (lambda d: ZeroPad2D((2, 1)), (2, 3, 4, 5), lambda l, x: ref.zero_pad(x, (2, 1))),
    "subsampling": (lambda d: subsampling_layer(d), (2, 3, 6, 7),
                    lambda l, x: ref.subsampling(x, l.params["weight"], l.params["bias"], 2)),
    "subsampling_rect": (lambda d: subsampling_layer(d, 2, (2, 3), (1, 2)), (2, 2, 5, 7),
                         lambda l, x: ref.subsampling(x, l.params["weight"], l.params["bias"],
                                                      (2, 3), (1, 2))),
    "sparse_conv": (sparse_layer, (2, 3, 7, 6),
                    lambda l, x: ref.sparse_conv2d(x, l.params["weight"], l.params["bias"],
                                                   SPARSE, (2, 1), (1, 0))),
}


def _eval(layer):
    layer.training = False
    return layer


def layer_input(shape, seed=0):
    """Distinct values away from 0 (no ties for max pool, no kinks for ReLU)."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    v = (rng.permutation(size) - size / 2 + 0.5) * (4.0 / size) + rng.uniform(0, 1e-4, size)
    return v.reshape(shape)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_forward_matches_reference(name):
    make, shape, rfwd = LAYERS[name]
    layer = make(np.float64)
    x = layer_input(shape)
    y = layer.forward(x)
    np.testing.assert_allclose(y, rfwd(layer, x), rtol=1e-12, atol=1e-13)
    assert layer.last_input is x
    np.testing.assert_array_equal(layer.last_output, y)
    assert tuple(layer.output_shape(shape)) == y.shape
    np.testing.assert_array_equal(layer(x), y)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_backward_matches_finite_differences(name):
    make, shape, _ = LAYERS[name]
    layer = make(np.float64)
    x = layer_input(shape, seed=1)
    y = layer.forward(x)
    g = np.random.default_rng(2).standard_normal(y.shape)
    before = {k: v.copy() for k, v in layer.params.items()}
    dx = layer.backward(g)
    assert dx is not None and dx.shape == x.shape      # a layer on its own always returns dx
    assert set(layer.grads) == set(layer.params)
    for k in layer.params:                             # backward never changes weights
        np.testing.assert_array_equal(layer.params[k], before[k])
        assert layer.grads[k].shape == layer.params[k].shape
    analytic = {"x": dx, **{k: layer.grads[k].copy() for k in layer.params}}

    def loss():
        return float(np.sum(layer.forward(x) * g))

    assert_grad_close(analytic["x"], loss, x, what=f"{name} dx")
    for k, p in layer.params.items():
        assert_grad_close(analytic[k], loss, p, what=f"{name} d{k}")


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_float32_in_float32_out(name):
    make, shape, _ = LAYERS[name]
    layer = make(np.float32)
    x = layer_input(shape).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    dx = layer.backward(np.ones(y.shape, np.float32))
    assert dx.dtype == np.float32
    for k in layer.params:
        assert layer.params[k].dtype == layer.grads[k].dtype == np.float32


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_config_rebuilds_the_same_layer(name):
    make, shape, _ = LAYERS[name]
    layer = make(np.float64)
    clone = type(layer)(**layer.config())
    clone.astype(np.float64)
    for k, v in layer.params.items():
        assert clone.params[k].shape == v.shape
        clone.params[k][...] = v
    for k, v in getattr(layer, "buffers", {}).items():     # state, not configuration
        clone.buffers[k][...] = v
    clone.training = getattr(layer, "training", True)
    x = layer_input(shape)
    np.testing.assert_array_equal(clone.forward(x), layer.forward(x))


def test_conv_layer_accepts_int_or_pairs_and_reports_shape_and_macs():
    a = Conv2D(2, 3, 3, stride=2, padding=1, dilation=1, seed=0)
    b = Conv2D(2, 3, (3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), seed=0)
    assert a.kernel_size == b.kernel_size == (3, 3) and a.stride == (2, 2)
    np.testing.assert_array_equal(a.params["weight"], b.params["weight"])
    assert a.params["weight"].shape == (3, 2, 3, 3) and a.params["bias"].shape == (3,)
    assert a.params["weight"].dtype == np.float32           # float32 by default
    x = np.zeros((4, 2, 9, 7), np.float32)
    assert a.output_shape(x.shape) == a.forward(x).shape == (4, 3, 5, 4)
    assert a.macs(x.shape) == 4 * 3 * 5 * 4 * 2 * 3 * 3
    assert a.num_params == 3 * 2 * 9 + 3
    assert Conv2D(2, 3, 3, bias=False).num_params == 54 and "bias" not in Conv2D(2, 3, 3, bias=False).params
    assert Linear(5, 4).macs((6, 5)) == 120 and Linear(5, 4).num_params == 24


def test_layers_raise_value_error_for_impossible_shapes():
    with pytest.raises(ValueError, match="no output pixels"):
        Conv2D(1, 1, 5).output_shape((1, 1, 4, 4))
    with pytest.raises(ValueError, match="channels"):
        Conv2D(3, 1, 3).forward(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError):
        Linear(10, 2).forward(np.zeros((3, 9), np.float32))
    with pytest.raises(ValueError):
        Linear(10, 2).output_shape((3, 2, 5))
    with pytest.raises(ValueError, match="does not fit"):
        MaxPool2D(3).output_shape((1, 1, 2, 8))
    with pytest.raises(ValueError, match="int or an"):
        Conv2D(1, 1, 2.5)
    with pytest.raises(ValueError, match="int or an"):
        MaxPool2D((2, 2, 2))


def test_flatten_is_c_h_w_order_and_backward_restores_the_layout():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    xv = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)  # batch-innermost view
    f = Flatten()
    np.testing.assert_array_equal(f.forward(xv), x.reshape(2, 12))
    g = np.arange(24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_array_equal(f.backward(g), x)


def test_max_pool_layer_exposes_argmax():
    p = MaxPool2D(2)
    assert p.argmax is None
    x = np.array([[[[1, 3, 0, 3], [2, 2, 4, 1], [4, 2, 0, 0], [3, 3, 3, 1]]]], np.float32)
    p.forward(x)
    np.testing.assert_array_equal(np.asarray(p.argmax)[0, 0], [[1, 2], [0, 2]])


def test_layer_contract_names_exist():
    for name in ["Conv2D", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "MaxPool2D", "AvgPool2D",
                 "Flatten", "Linear", "Sequential", "SoftmaxCrossEntropy", "SGD", "Adam",
                 "lenet5", "summary", "save", "load", "functional"]:
        assert hasattr(engine, name), name
    import inspect
    assert list(inspect.signature(Conv2D).parameters)[:7] == [
        "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias"]
    sig = inspect.signature(Conv2D).parameters
    assert (sig["stride"].default, sig["padding"].default, sig["dilation"].default,
            sig["bias"].default) == (1, 0, 1, True)
    assert list(inspect.signature(MaxPool2D).parameters)[:2] == ["kernel_size", "stride"]
    assert list(inspect.signature(AvgPool2D).parameters)[:2] == ["kernel_size", "stride"]
    assert inspect.signature(MaxPool2D).parameters["stride"].default is None


def test_conv_layer_reuses_its_work_buffers_without_mixing_passes():
    """A Conv2D keeps its im2col and padding buffers from pass to pass
    (functional.Scratch): batches of changing size, an inference between a
    forward pass and its backward pass, and a second layer of the same shape
    must all still give the reference's results."""
    rng = np.random.default_rng(40)
    conv = Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), seed=41)
    other = Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), seed=42)
    w, b = conv.params["weight"], conv.params["bias"]
    geometry = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    for n in (4, 1, 4, 3):
        x = rng.standard_normal((n, 2, 7, 6))
        out = conv.forward(x)
        np.testing.assert_allclose(out, ref.conv2d(x, w, b, **geometry), rtol=1e-12, atol=1e-12)
        # an inference of other data, and another layer's pass, in between
        conv.infer(rng.standard_normal((n, 2, 7, 6)))
        other.forward(rng.standard_normal((n, 2, 7, 6)))
        g = rng.standard_normal(out.shape)
        dx = conv.backward(g)
        rdx, rdw, rdb = ref.conv2d_backward(g, x, w, **geometry)
        np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(conv.grads["weight"], rdw, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(conv.grads["bias"], rdb, rtol=1e-12, atol=1e-12)
        # what a pass returns is its own: the next pass does not change it
        kept = out.copy(), dx.copy()
        conv.forward(rng.standard_normal((n, 2, 7, 6)))
        conv.backward(rng.standard_normal(out.shape))
        np.testing.assert_array_equal(out, kept[0])
        np.testing.assert_array_equal(dx, kept[1])


def test_a_pickled_conv_layer_leaves_its_work_buffers_behind():
    import pickle
    conv = Conv2D(1, 6, 5, padding=2, seed=0)
    conv.forward(np.random.default_rng(43).standard_normal((64, 1, 28, 28)).astype(np.float32))
    conv._cache = None
    conv.last_input = conv.last_output = None
    copy = pickle.loads(pickle.dumps(conv))
    assert len(pickle.dumps(conv)) < 10_000        # the 25 x 50,176 im2col buffer stays
    x = np.random.default_rng(44).standard_normal((2, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(copy.forward(x), conv.forward(x))
