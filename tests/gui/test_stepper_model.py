"""The Layer Stepper's plain-Python parts: session state machine, the backward
pass taken apart, the gradient check, input checks. No display needed."""

import copy

import numpy as np
import pytest

from cnnviz.engine import (Conv2D, Flatten, Linear, ReLU, Sequential, SoftmaxCrossEntropy, lenet5,
                           lenet5_small, save)
from cnnviz.engine.lessons import LESSONS
from cnnviz.data.images import resize
from cnnviz.gui.stepper.explain import (as_maps, conv_backward_im2col_steps, conv_backward_steps,
                                        conv_im2col_steps, pool_backward_steps)
from cnnviz.gui.stepper.gradcheck import check_layer
from cnnviz.gui.stepper.inputs import (StepperInputError, check_model, load_model,
                                       to_model_input)
from cnnviz.gui.stepper.session import BACKWARD, FORWARD, StepperSession


@pytest.fixture
def digit():
    rng = np.random.default_rng(3)
    return rng.random((1, 1, 28, 28), dtype=np.float32)


def lenet_session(digit, label=3):
    return StepperSession(lenet5(seed=1), digit, label=label, lr=0.05)


def test_forward_then_backward_positions_and_reasons(digit):
    s = lenet_session(digit)
    n = s.num_layers
    assert s.why_not_backward().startswith("Backward needs the gradient at the output")
    assert s.why_not_update() is not None
    for k in range(n):
        assert s.step_forward()
        assert s.done == k + 1 and s.focus == k
    assert s.step_forward() is False                      # past the end: refused, no error
    assert "reached the end" in s.why_not_forward()
    assert s.loss is not None and s.probs.shape == (10,)
    for k in range(n - 1, -1, -1):
        assert s.step_backward()
        assert s.phase == BACKWARD and s.back == k
    assert s.step_backward() is False                     # past the input
    assert "reached the input" in s.why_not_backward()
    assert s.why_not_update() is None


def test_stepped_trace_equals_one_engine_pass(digit):
    s = lenet_session(digit)
    s.run_backward()
    ref = lenet5(seed=1)
    ref.forward(digit)
    from cnnviz.engine import SoftmaxCrossEntropy
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn(ref.trace[-1].output, np.array([3]))
    ref.backward(loss_fn.backward())
    assert s.loss == pytest.approx(loss, rel=0, abs=0)
    for mine, theirs in zip(s.model.trace, ref.trace):
        np.testing.assert_array_equal(mine.output, theirs.output)
        np.testing.assert_array_equal(mine.grad_input, theirs.grad_input)


def test_update_is_one_sgd_step_and_restarts_forward(digit):
    s = lenet_session(digit)
    assert s.apply_update() is False
    s.run_backward()
    w = s.model["conv1"].params["weight"].copy()
    dw = s.model["conv1"].grads["weight"].copy()
    assert s.apply_update(0.1)
    np.testing.assert_array_equal(s.model["conv1"].params["weight"],
                                  w - np.float32(0.1) * dw)
    rec = s.last_update
    np.testing.assert_array_equal(rec.before["conv1.weight"], w)
    np.testing.assert_array_equal(rec.grad["conv1.weight"], dw)
    # the forward pass has rerun with the new weights: outputs and loss are current
    assert s.phase == FORWARD and s.done == s.num_layers and s.update_fresh
    ref = copy.deepcopy(s.model)
    loss_fn = SoftmaxCrossEntropy()
    assert s.loss == pytest.approx(loss_fn(ref.forward(s.x), np.array([s.label])), rel=1e-6)
    np.testing.assert_allclose(s.model.trace[-1].output, ref.trace[-1].output, rtol=1e-6)
    assert rec.loss_before is not None and rec.loss_before != s.loss
    assert not np.array_equal(rec.outputs_before[-1], s.model.trace[-1].output)
    s.goto(2)                                        # comparing another layer: still fresh
    assert s.update_fresh
    s.reset()
    assert not s.update_fresh and s.done == 0


def test_goto_and_replay_keep_the_place(digit):
    s = lenet_session(digit)
    s.goto(4)
    assert s.done == 5 and s.focus == 4
    s.goto(1)                                        # already run: only shown
    assert s.done == 5 and s.focus == 1
    s.goto(8)
    s.step_backward()                                # refused: not at the end yet
    assert s.phase == FORWARD and s.done == 9
    s.run_forward()
    s.goto(6)                                        # backward from the output to relu2... pool2
    assert s.phase == FORWARD                        # forward phase until a backward step
    s.step_backward()
    s.goto(6)
    assert s.phase == BACKWARD and s.back == 6 and s.focus == 6
    s.goto(10)                                       # already passed: only shown
    assert s.back == 6 and s.focus == 10
    s.goto(6)
    s.set_param_cells("conv1.weight", (0, 0), np.zeros((5, 5), np.float32))
    assert s.phase == BACKWARD and s.back == 6 and s.focus == 6
    assert not s.model["conv1"].params["weight"][0, 0].any()
    s.reset_weights()
    np.testing.assert_array_equal(s.model["conv1"].params["weight"],
                                  lenet5(seed=1)["conv1"].params["weight"])


@pytest.mark.parametrize("key", ["ex1", "ex2s2", "ex2s1", "ex4"])
def test_conv_steps_rebuild_the_engine_gradients(key):
    lesson = LESSONS[key]
    s = StepperSession(lesson.build(), lesson.input_array(), delta=lesson.delta_array())
    s.run_backward()
    layer, t = s.model.layers[0], s.model.trace[0]
    for c in range(layer.in_channels):
        shares = 0
        for o in range(layer.out_channels):
            steps = conv_backward_steps(layer, t.grad_output, o, c)
            shares = shares + steps[4].data[0]
            np.testing.assert_allclose(steps[5].data[0], t.grad_input[0, c], atol=1e-12)
            np.testing.assert_allclose(steps[7].data[0], layer.grads["weight"][o, c], atol=1e-12)
            np.testing.assert_allclose(steps[3].data[1], layer.params["weight"][o, c, ::-1, ::-1])
        np.testing.assert_allclose(shares, t.grad_input[0, c], atol=1e-12)
    product = conv_im2col_steps(layer)[2].data
    np.testing.assert_array_equal(product, t.output[0])
    # the backward pass as matrix products: dW = δ · patchesᵀ, dx = col2im(Wᵀ · δ)
    delta, dw, dcols, dx = conv_backward_im2col_steps(layer, t.grad_output)
    np.testing.assert_array_equal(delta.data[0], t.grad_output[0].reshape(layer.out_channels, -1))
    np.testing.assert_allclose(dw.data[0].reshape(layer.params["weight"].shape),
                               layer.grads["weight"], atol=1e-12)
    assert dcols.data.shape[1:] == (layer.in_channels * np.prod(layer.kernel_size),
                                    delta.data.shape[2])
    np.testing.assert_allclose(dx.data, t.grad_input[0], atol=1e-12)


def test_backward_im2col_on_lenet_conv2_matches_the_engine(digit):
    s = lenet_session(digit)
    s.run_backward()
    i = [layer.name for layer in s.model.layers].index("conv2")
    layer, t = s.model.layers[i], s.model.trace[i]
    delta, dw, dcols, dx = conv_backward_im2col_steps(layer, t.grad_output)
    assert dw.data.shape == (1, 16, 150) and dcols.data.shape == (1, 150, 100)
    np.testing.assert_allclose(dw.data[0].reshape(16, 6, 5, 5), layer.grads["weight"],
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dx.data, t.grad_input[0], rtol=1e-4, atol=1e-6)


def test_stride2_dilation_puts_zeros_between():
    lesson = LESSONS["ex2s2"]
    s = StepperSession(lesson.build(), lesson.input_array(), delta=lesson.delta_array())
    s.run_backward()
    dilated = conv_backward_steps(s.model.layers[0], s.model.trace[0].grad_output, 0, 0)[1].data[0]
    assert dilated.tolist() == [[1, 0, 2], [0, 0, 0], [3, 0, 4]]


def test_lenet_conv_steps_match(digit):
    s = lenet_session(digit)
    s.run_backward()
    for name in ("conv1", "conv2"):
        i = [l.name for l in s.model.layers].index(name)
        layer, t = s.model.layers[i], s.model.trace[i]
        steps = conv_backward_steps(layer, t.grad_output, 2, 0)
        np.testing.assert_allclose(steps[5].data[0], t.grad_input[0, 0], atol=1e-5)
        np.testing.assert_allclose(steps[7].data[0], layer.grads["weight"][2, 0], atol=1e-5)


def test_pool_steps_route_delta():
    lesson = LESSONS["ex3max"]
    s = StepperSession(lesson.build(), lesson.input_array(), delta=lesson.delta_array())
    s.run_backward()
    steps = pool_backward_steps(s.model.layers[0], s.model.trace[0].grad_output, 0)
    assert steps[1].data[0].tolist() == [[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 1, 0]]
    assert steps[3].data[0].tolist() == lesson.expected["grad_input0"]
    lesson = LESSONS["ex3avg"]
    s = StepperSession(lesson.build(), lesson.input_array(), delta=lesson.delta_array())
    s.run_backward()
    steps = pool_backward_steps(s.model.layers[0], s.model.trace[0].grad_output, 0)
    assert steps[1].data[0].tolist() == lesson.expected["grad_input0"]


def test_vectors_wrap_into_near_squares():
    assert as_maps(np.zeros((1, 400)))[0].shape == (1, 20, 20)
    assert as_maps(np.zeros((1, 84)))[0].shape == (1, 7, 12)
    assert as_maps(np.zeros((1, 10)))[0].shape == (1, 1, 10)
    v = np.arange(120.0)[None]
    np.testing.assert_array_equal(as_maps(v)[0].reshape(-1), v[0])   # reading order


def test_gradcheck_passes_on_every_lenet_layer(digit):
    s = lenet_session(digit)
    s.run_backward()
    for layer, t in zip(s.model.layers, s.model.trace):
        result = check_layer(layer, t.input, t.grad_output)
        assert result.max_rel_error < 1e-5, result.text()
        assert result.checked > 0


def test_gradcheck_catches_a_wrong_backward(digit):
    class Doubled(ReLU):
        def backward(self, grad_out, need_input_grad=True):
            return 2 * super().backward(grad_out)

    layer = Doubled()
    layer.name = "bad"
    result = check_layer(layer, digit - 0.5)
    assert result.max_rel_error > 0.3


def test_model_checks(tmp_path, digit):
    check_model(lenet5_small(), "small")
    colour = Sequential(Conv2D(3, 4, 3), Flatten(), Linear(4 * 30 * 30, 10))
    assert check_model(colour, "colour net") == (1, 3, 32, 32)     # found: 32x32 colour
    assert check_model(Sequential(Flatten(), Linear(3 * 32 * 32, 10)), "mlp") == (1, 3, 32, 32)
    assert check_model(Sequential(Flatten(), Linear(28 * 28, 10)), "mlp") == (1, 1, 28, 28)
    with pytest.raises(StepperInputError, match="does not take a 28x28 colour image"):
        check_model(colour, "colour net", (3, 28, 28))
    maps_out = Sequential(Conv2D(1, 2, 3), ReLU())
    with pytest.raises(StepperInputError, match="not class scores"):
        check_model(maps_out, "maps")
    four = Sequential(Conv2D(4, 4, 3), Flatten(), Linear(4 * 26 * 26, 10))
    path = tmp_path / "four.npz"
    save(four, path)
    with pytest.raises(StepperInputError, match="four.npz takes input of shape"):
        load_model(path)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(StepperInputError, match="corrupt.npz"):
        load_model(corrupt)


def test_images_are_converted_to_model_input():
    rgb = np.random.default_rng(0).random((80, 60, 3), dtype=np.float32)
    x = to_model_input(rgb)
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1
    with pytest.raises(StepperInputError):
        to_model_input(np.zeros((4, 4, 5)))
    colour = to_model_input(rgb, (1, 3, 32, 32))
    assert colour.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(colour[0].transpose(1, 2, 0), resize(rgb, (32, 32)), atol=1e-6)
    grey_in_colour = to_model_input(rgb[..., 0], (1, 3, 20, 20))
    np.testing.assert_array_equal(grey_in_colour[0, 0], grey_in_colour[0, 2])


def test_saliency_matches_finite_differences(digit):
    s = lenet_session(digit)
    sal = s.saliency(5)
    model = copy.deepcopy(s.model).astype(np.float64)
    x = digit.astype(np.float64)
    for (r, c) in [(14, 14), (10, 20), (5, 7)]:
        h = 1e-4
        xp, xm = x.copy(), x.copy()
        xp[0, 0, r, c] += h
        xm[0, 0, r, c] -= h
        num = (model.forward(xp)[0, 5] - model.forward(xm)[0, 5]) / (2 * h)
        assert sal[r, c] == pytest.approx(num, rel=1e-3, abs=1e-5)
