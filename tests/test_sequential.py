"""Sequential: whole-network gradient check, the trace, need_input_grad,
the stepper's one-layer passes, state dicts and dtypes."""

import numpy as np
import pytest

from gradcheck import assert_grad_close
from tolerance import assert_same_sums

from cnnviz.engine import (Adam, AvgPool2D, Conv2D, Flatten, LeakyReLU, Linear, MaxPool2D, Normalize,
                           ReLU, SGD, Sequential, Sigmoid, SoftmaxCrossEntropy, Tanh, lenet5,
                           lenet5_small, summary)


def small_net(dtype=np.float64):
    """Every layer type, odd geometry: (2, 2, 11, 9) -> 3 classes."""
    rng = np.random.default_rng(0)
    net = Sequential(
        Normalize(0.1, 0.5),
        Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), seed=rng, dtype=dtype),  # -> 3x6x8
        Tanh(),
        MaxPool2D(2, (1, 2)),                                                       # -> 3x5x4
        Conv2D(3, 4, 2, padding=1, dilation=2, seed=rng, dtype=dtype),              # -> 4x5x4
        LeakyReLU(0.1),
        AvgPool2D((2, 3), 1),                                                       # -> 4x4x2
        Flatten(),                                                                  # -> 32
        Linear(32, 6, seed=rng, dtype=dtype),
        Sigmoid(),
        Linear(6, 3, seed=rng, dtype=dtype),
        ReLU(),
        Linear(3, 3, seed=rng, dtype=dtype),
    )
    for p in net.parameters():        # non-zero biases
        if p.key == "bias":
            p.value[...] = rng.uniform(0.05, 0.3, p.value.shape)
    return net


X_SHAPE = (2, 2, 11, 9)


def batch(dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, X_SHAPE).astype(dtype), rng.integers(0, 3, X_SHAPE[0])


def test_whole_network_gradient_check_float64():
    net = small_net()
    x, y = batch()
    loss_fn = SoftmaxCrossEntropy()
    loss_fn(net.forward(x), y)
    dx = net.backward(loss_fn.backward())
    grads = {p.name: p.grad.copy() for p in net.parameters()}
    assert len(grads) == 10

    def loss():
        return SoftmaxCrossEntropy()(net.forward(x), y)

    assert_grad_close(dx, loss, x, tol=1e-6, what="input")
    for p in net.parameters():
        assert_grad_close(grads[p.name], loss, p.value, tol=1e-6, what=p.name)


def test_backward_never_changes_weights():
    net = small_net()
    x, y = batch()
    before = net.state_dict()
    loss_fn = SoftmaxCrossEntropy()
    loss_fn(net.forward(x), y)
    net.backward(loss_fn.backward())
    net.backward(loss_fn.backward(), need_input_grad=False)
    after = net.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


@pytest.mark.parametrize("make,shape", [(small_net, X_SHAPE), (lenet5, (3, 1, 28, 28)),
                                        (lenet5_small, (2, 1, 28, 28))])
def test_trace_holds_every_layer_and_agrees_with_summary(make, shape):
    net = make()
    dtype = net.dtype
    x = np.random.default_rng(2).uniform(0, 1, shape).astype(dtype)
    out = net.forward(x)
    g = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    dx = net.backward(g)
    rows = summary(net, shape).rows
    assert len(net.trace) == len(net.layers) == len(rows)
    for i, (t, layer, row) in enumerate(zip(net.trace, net.layers, rows)):
        assert t.layer is layer and t.name == layer.name == row.name
        for a in (t.input, t.output, t.grad_output, t.grad_input):
            assert isinstance(a, np.ndarray)
        assert t.output.shape == t.grad_output.shape == row.output_shape
        assert t.input.shape == t.grad_input.shape
        if i:
            np.testing.assert_array_equal(t.input, net.trace[i - 1].output)
            np.testing.assert_array_equal(net.trace[i - 1].grad_output, t.grad_input)
    assert net.trace[0].input is x
    np.testing.assert_array_equal(net.trace[-1].output, out)
    np.testing.assert_array_equal(net.trace[-1].grad_output, g)
    np.testing.assert_array_equal(net.trace[0].grad_input, dx)


def test_trace_is_not_overwritten_by_later_layers():
    """Each recorded output is what its layer computes from its recorded
    input, after the whole pass (no in-place reuse of a shown buffer).
    The recomputation runs on a contiguous copy where the pass may have used
    a strided view, so a weighted layer may round differently (by BLAS
    kernel): it must agree within the rounding bound of its sums, while an
    overwritten buffer would differ by whole values."""
    net = lenet5()
    x = np.random.default_rng(4).uniform(0, 1, (2, 1, 28, 28)).astype(np.float32)
    out = net.forward(x)
    net.backward(np.ones(out.shape, np.float32))
    saved = [(t.input.copy(), t.output.copy(), t.grad_output.copy(), t.grad_input.copy())
             for t in net.trace]
    assert (net.trace[1].output < 0).any()          # conv1 output still has its negatives
    for layer, t, (inp, outp, _, _) in zip(net.layers, net.trace, saved):
        np.testing.assert_array_equal(t.input, inp)      # stored object, copied: exact
        again = layer.forward(inp.copy())
        if "weight" in layer.params:
            assert_same_sums(again, outp, layer, inp)
        else:                                            # elementwise: exact anywhere
            np.testing.assert_array_equal(again, outp)
    # a second pass on other data does not change copies taken before it
    net.forward(x[::-1].copy())
    assert not np.array_equal(net.trace[1].output, saved[1][1])


def test_need_input_grad_false_skips_early_layers_and_gives_identical_grads():
    net = lenet5()
    assert net.first_param_index() == 1                  # Normalize first
    x = np.random.default_rng(5).uniform(0, 1, (4, 1, 28, 28)).astype(np.float32)
    out = net.forward(x)
    g = np.random.default_rng(6).standard_normal(out.shape).astype(np.float32)
    full = net.backward(g)
    assert full is not None and full.shape == x.shape
    grads_full = {p.name: p.grad.copy() for p in net.parameters()}
    grad_in_full = [None if t.grad_input is None else t.grad_input.copy() for t in net.trace]

    net.forward(x)
    assert net.backward(g, need_input_grad=False) is None
    assert net.trace[0].grad_output is None and net.trace[0].grad_input is None
    assert net.trace[1].grad_output is not None and net.trace[1].grad_input is None
    for p in net.parameters():
        np.testing.assert_array_equal(p.grad, grads_full[p.name])
    for i in range(2, len(net.layers)):
        np.testing.assert_array_equal(net.trace[i].grad_input, grad_in_full[i])


def test_need_input_grad_false_when_first_layer_is_parametric():
    net = small_net().layers[1:]
    net = Sequential(*[type(l)(**l.config()) for l in net])   # fresh: Conv2D first
    net.astype(np.float64)
    x = np.random.default_rng(7).uniform(0, 1, X_SHAPE)
    out = net.forward(x)
    g = np.ones(out.shape)
    net.backward(g)
    dw = net.layers[0].grads["weight"].copy()
    net.forward(x)
    assert net.backward(g, need_input_grad=False) is None
    assert net.trace[0].grad_input is None
    np.testing.assert_array_equal(net.layers[0].grads["weight"], dw)


def test_stepper_one_layer_at_a_time_equals_the_full_pass():
    net = small_net()
    x, _ = batch()
    out = net.forward(x)
    g = np.random.default_rng(8).standard_normal(out.shape)
    dx = net.backward(g)
    grads = {p.name: p.grad.copy() for p in net.parameters()}
    h = x
    for i in range(len(net)):
        h = net.forward_layer(i, h)
    np.testing.assert_array_equal(h, out)
    d = g
    for i in reversed(range(len(net))):
        d = net.backward_layer(i, d)
        assert net.trace[i].grad_input is d
    np.testing.assert_array_equal(d, dx)
    for p in net.parameters():
        np.testing.assert_array_equal(p.grad, grads[p.name])


def test_layer_names_lookup_and_duplicates():
    net = lenet5()
    names = [l.name for l in net.layers]
    assert names[:5] == ["norm1", "conv1", "relu1", "pool1", "conv2"]
    assert names[-1] == "fc3" and len(set(names)) == len(names)
    assert net["conv2"] is net.layers[4] and net[1] is net.layers[1]
    with pytest.raises(KeyError):
        net["nope"]
    a, b = ReLU(), ReLU()
    a.name = b.name = "same"
    with pytest.raises(ValueError, match="same"):
        Sequential(a, b)


def test_state_dict_round_trip_and_mismatch_errors():
    a, b = lenet5(seed=1), lenet5(seed=2)
    x = np.random.default_rng(9).uniform(0, 1, (2, 1, 28, 28)).astype(np.float32)
    assert not np.array_equal(a.forward(x), b.forward(x))
    state = a.state_dict()
    state["conv1.weight"] += 0     # copies, not views
    assert not np.shares_memory(state["conv1.weight"], a["conv1"].params["weight"])
    b.load_state_dict(state)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    bad = dict(state)
    del bad["fc3.bias"]
    with pytest.raises(ValueError, match="fc3.bias"):
        b.load_state_dict(bad)
    bad = dict(state, **{"conv1.weight": np.zeros((6, 1, 3, 3))})
    with pytest.raises(ValueError, match="conv1.weight"):
        b.load_state_dict(bad)


OPTIMIZERS = [lambda ps: SGD(ps, lr=0.01, momentum=0.9, weight_decay=1e-4),
              lambda ps: Adam(ps, lr=1e-3, weight_decay=1e-4)]


@pytest.mark.parametrize("make_opt", OPTIMIZERS, ids=["sgd", "adam"])
def test_lenet5_float32_everywhere_no_silent_upcast(make_opt):
    net = lenet5()
    assert all(p.value.dtype == np.float32 for p in net.parameters())
    x = np.random.default_rng(10).uniform(0, 1, (4, 1, 28, 28)).astype(np.float32)
    y = np.array([0, 1, 2, 3])
    loss_fn = SoftmaxCrossEntropy()
    opt = make_opt(net.parameters())
    for _ in range(2):
        logits = net.forward(x)
        loss_fn(logits, y)
        dlogits = loss_fn.backward()
        assert logits.dtype == dlogits.dtype == np.float32
        dx = net.backward(dlogits)
        assert dx.dtype == np.float32
        for t in net.trace:
            for what in ("input", "output", "grad_output", "grad_input"):
                assert getattr(t, what).dtype == np.float32, f"{t.name}.{what}"
        for p in net.parameters():
            assert p.grad.dtype == np.float32, p.name
        opt.step()
        for p in net.parameters():
            assert p.value.dtype == np.float32, p.name
        net.backward(dlogits, need_input_grad=False)


def test_float64_network_stays_float64():
    net = lenet5().astype(np.float64)
    assert net.dtype == np.float64
    x = np.random.default_rng(11).uniform(0, 1, (2, 1, 28, 28))
    out = net.forward(x)
    dx = net.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float64
    for t in net.trace:
        assert t.output.dtype == t.grad_input.dtype == np.float64
    for p in net.parameters():
        assert p.value.dtype == p.grad.dtype == np.float64


# --- predict: inference without the trace -----------------------------------

def _traced_copy(net, x):
    """The trace of a forward pass, as copies, to compare after predict."""
    net.forward(x)
    return [(t.input.copy(), t.output.copy()) for t in net.trace]


@pytest.mark.parametrize("batch_size", [1000, 1])
def test_predict_equals_forward_and_leaves_trace_and_input_alone(batch_size):
    net = small_net()
    x = np.random.default_rng(1).standard_normal(X_SHAPE)
    x_before = x.copy()
    traced = _traced_copy(net, x + 1.0)            # a different input in the trace
    out = net.predict(x, batch_size=batch_size)
    np.testing.assert_allclose(out, net.forward(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(x, x_before)
    net.forward(x + 1.0)
    for (i0, o0), t in zip(traced, net.trace):
        np.testing.assert_array_equal(t.input, i0)
        np.testing.assert_array_equal(t.output, o0)


@pytest.mark.parametrize("activation, swapped", [
    (ReLU(), True), (LeakyReLU(0.2), True), (Sigmoid(), True), (Tanh(), True),
    (LeakyReLU(-0.5), False),           # not monotonic: must not be moved past the max
])
def test_predict_pools_before_monotonic_activations_with_the_same_result(activation, swapped):
    rng = np.random.default_rng(2)
    net = Sequential(Conv2D(1, 2, 3, seed=rng, dtype=np.float64), activation,
                     MaxPool2D(2, 1), Flatten())
    order = [type(l).__name__ for l in net._inference_order()]
    assert order[1:3] == (["MaxPool2D", type(activation).__name__] if swapped
                          else [type(activation).__name__, "MaxPool2D"])
    x = rng.standard_normal((3, 1, 7, 6))
    np.testing.assert_allclose(net.predict(x), net.forward(x), rtol=1e-12, atol=1e-12)


def test_predict_never_overwrites_the_callers_array_through_a_view():
    net = Sequential(Flatten(), ReLU(), Tanh())
    x = np.random.default_rng(3).standard_normal((4, 1, 3, 3))
    x_before = x.copy()
    np.testing.assert_array_equal(net.predict(x), np.tanh(np.maximum(x_before, 0)).reshape(4, 9))
    np.testing.assert_array_equal(x, x_before)


def test_predict_on_lenet5_float32_in_chunks():
    net = lenet5(seed=0)
    x = np.random.default_rng(4).random((130, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(net.predict(x, batch_size=64), net.forward(x), rtol=1e-4, atol=1e-4)


def test_predict_runs_forward_for_a_subclass_that_changed_forward_only():
    class Squared(ReLU):               # not what ReLU.infer computes, and not monotonic
        def forward(self, x):
            self.last_input = x
            self.last_output = (x * x).astype(x.dtype)
            return self.last_output

    rng = np.random.default_rng(5)
    net = Sequential(Conv2D(1, 2, 3, seed=rng, dtype=np.float64), Squared(), MaxPool2D(2), Flatten())
    assert [type(l).__name__ for l in net._inference_order()][1:3] == ["Squared", "MaxPool2D"]
    x = rng.standard_normal((2, 1, 8, 8))
    np.testing.assert_allclose(net.predict(x), net.forward(x), rtol=1e-12, atol=1e-12)


def _grads_of(net, forward, backward, x, y):
    loss_fn = SoftmaxCrossEntropy()
    logits = forward(x)
    loss = loss_fn(logits, y)
    net.zero_grads()
    backward(loss_fn.backward())
    return logits.copy(), loss, {p.name: p.grad.copy() for p in net.parameters()}


def _training_pass(net, x, y):
    return _grads_of(net, net.train_forward, net.train_backward, x, y)


def _traced_pass(net, x, y):
    return _grads_of(net, net.forward, lambda g: net.backward(g, need_input_grad=False), x, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_train_pass_equals_forward_and_backward_exactly_on_lenet5(dtype):
    # ReLU after the pool: same values, same winners, so the same bits.
    net = lenet5(seed=0).astype(dtype)
    assert [type(net.layers[i]).__name__ for i in net._training_order()][2:4] == ["MaxPool2D", "ReLU"]
    rng = np.random.default_rng(6)
    x = (rng.random((5, 1, 28, 28)) - 0.7).astype(dtype)     # many all-negative windows
    y = rng.integers(0, 10, 5)
    logits, loss, grads = _traced_pass(net, x, y)
    logits2, loss2, grads2 = _training_pass(net, x, y)
    np.testing.assert_array_equal(logits2, logits)
    assert loss2 == loss
    assert grads2.keys() == grads.keys()
    for name in grads:
        np.testing.assert_array_equal(grads2[name], grads[name], err_msg=name)
    assert all(t.output is None for t in net.trace)           # no trace, none stale


@pytest.mark.parametrize("activation, swapped", [
    (ReLU(), True), (LeakyReLU(0.2), True), (Sigmoid(), True), (Tanh(), True),
    (LeakyReLU(-0.5), False),
])
def test_train_pass_gradients_match_and_pass_the_finite_difference_check(activation, swapped):
    rng = np.random.default_rng(7)
    net = Sequential(Conv2D(2, 3, 3, padding=1, seed=rng, dtype=np.float64), activation,
                     MaxPool2D(2, (2, 1)), Flatten(), Linear(3 * 3 * 4, 4, seed=rng))
    names = [type(net.layers[i]).__name__ for i in net._training_order()]
    assert names[1:3] == (["MaxPool2D", type(activation).__name__] if swapped
                          else [type(activation).__name__, "MaxPool2D"])
    x = rng.standard_normal((3, 2, 7, 5))
    y = rng.integers(0, 4, 3)
    _, loss, grads = _traced_pass(net, x, y)
    _, loss2, grads2 = _training_pass(net, x, y)
    assert loss2 == pytest.approx(loss, rel=1e-14)
    for name in grads:
        np.testing.assert_allclose(grads2[name], grads[name], rtol=1e-12, atol=1e-14)
    # and against finite differences, through the training pass itself
    w = net.layers[0].params["weight"]
    loss_fn = SoftmaxCrossEntropy()

    def loss_at():
        return loss_fn(net.train_forward(x), y)

    num = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        old = w[idx]
        w[idx] = old + 1e-6
        plus = loss_at()
        w[idx] = old - 1e-6
        minus = loss_at()
        w[idx] = old
        num[idx] = (plus - minus) / 2e-6
    np.testing.assert_allclose(grads2["conv1.weight"], num, rtol=1e-5, atol=1e-8)


def test_train_pass_keeps_a_changed_activation_in_its_place():
    class Squared(ReLU):               # not monotonic: pooling first would change the result
        def forward(self, x):
            self.last_input = x
            return x * x

        def backward(self, grad_out, need_input_grad=True):
            return 2 * self.last_input * grad_out

    rng = np.random.default_rng(8)
    net = Sequential(Conv2D(1, 2, 3, seed=rng, dtype=np.float64), Squared(), MaxPool2D(2),
                     Flatten(), Linear(2 * 3 * 3, 3, seed=rng))
    assert net._training_order() == list(range(5))
    x, y = rng.standard_normal((2, 1, 8, 8)), np.array([0, 2])
    _, loss, grads = _traced_pass(net, x, y)
    _, loss2, grads2 = _training_pass(net, x, y)
    assert loss2 == loss
    for name in grads:
        np.testing.assert_array_equal(grads2[name], grads[name])


def test_train_backward_needs_a_train_forward():
    net = lenet5_small(seed=0)
    with pytest.raises(RuntimeError, match="train_forward"):
        net.train_backward(np.zeros((1, 10), np.float32))
