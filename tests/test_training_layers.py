"""Dropout, BatchNorm2d and GlobalAvgPool2D beyond the generic layer table
(tests/test_layers.py): their training and evaluation modes, the state they
keep for the backward pass and the views, and Sequential.train / eval."""

import numpy as np
import pytest

import reference as ref
from gradcheck import assert_grad_close

from cnnviz.engine import (SGD, BatchNorm2d, Conv2D, Dropout, Flatten, GlobalAvgPool2D, Linear,
                           ReLU, Sequential)


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- Dropout ------------------------------------------------------------------------
def test_dropout_training_pass_drops_with_probability_p_and_scales_the_rest():
    layer = Dropout(0.3, seed=1)
    x = rand((4, 5, 60, 70))
    y = layer.forward(x)
    assert layer.mask.shape == x.shape and layer.mask.dtype == bool
    np.testing.assert_allclose(y, ref.dropout(x, layer.mask, 0.3), rtol=1e-15)
    dropped = 1 - layer.mask.mean()
    assert abs(dropped - 0.3) < 0.005, dropped          # 84,000 draws: sd 0.0016
    g = rand(x.shape, 2)
    np.testing.assert_allclose(layer.backward(g), ref.dropout(g, layer.mask, 0.3), rtol=1e-15)


def test_dropout_gradient_by_finite_differences_with_the_mask_held():
    layer = Dropout(0.5, seed=0)
    x, g = rand((2, 3, 5, 4), 1), rand((2, 3, 5, 4), 2)

    def loss():
        layer.buffers["draws"][0] = 7           # the same mask at every evaluation
        return float(np.sum(layer.forward(x) * g))

    loss()
    assert 0 < layer.mask.sum() < layer.mask.size
    assert_grad_close(layer.backward(g), loss, x, what="dropout dx")


def test_dropout_is_seeded_and_the_identity_in_evaluation_and_inference():
    x = rand((2, 3, 8, 8))
    a, b, c = Dropout(0.5, seed=3), Dropout(0.5, seed=3), Dropout(0.5, seed=4)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(a.forward(x), c.forward(x))
    second = a.mask                                            # of draw 1 (0-based)
    assert not np.array_equal(a.forward(x) != 0, second)      # each pass draws a new mask
    assert a.buffers["draws"][0] == 3
    a.buffers["draws"][0] = 1                                  # the k-th mask again
    a.forward(x)
    np.testing.assert_array_equal(a.mask, second)
    unseeded = Dropout(0.5)
    assert Dropout(**unseeded.config()).config() == unseeded.config()   # its seed is kept
    assert a.infer(x) is x                       # inference never drops, whatever the mode
    a.training = False
    assert a.forward(x) is x and a.mask is None
    np.testing.assert_array_equal(a.backward(x), x)
    assert Dropout(0.0, seed=0).forward(x) is x
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            Dropout(bad)


# ---- BatchNorm2d -----------------------------------------------------------------------
def test_batch_norm_training_moves_the_running_statistics_as_pytorch():
    layer = BatchNorm2d(3, momentum=0.25, dtype=np.float64)
    x = rand((2, 3, 4, 5)) * 3 + 1
    layer.forward(x)
    mean, var, unbiased = ref.channel_stats(x)
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.25 * mean, rtol=1e-13)
    np.testing.assert_allclose(layer.buffers["running_var"], 0.75 + 0.25 * unbiased, rtol=1e-13)
    # what the views show: the statistics used and the normalised map
    np.testing.assert_allclose(layer.used_mean, mean, rtol=1e-13)
    np.testing.assert_allclose(layer.used_var, var, rtol=1e-13)
    np.testing.assert_allclose(layer.normalized, ref.batch_norm2d(x, np.ones(3), np.zeros(3),
                                                                  mean, var, layer.eps), rtol=1e-12)


def test_batch_norm_evaluation_uses_the_running_statistics_and_leaves_them():
    layer = BatchNorm2d(2, dtype=np.float64)
    for seed in range(5):
        layer.forward(rand((3, 2, 4, 4), seed) * 2 + 5)
    running = {k: v.copy() for k, v in layer.buffers.items()}
    layer.training = False
    x = rand((1, 2, 3, 3), 9)
    y = layer.forward(x)
    expected = ref.batch_norm2d(x, np.ones(2), np.zeros(2), running["running_mean"],
                                running["running_var"], layer.eps)
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_allclose(layer.infer(x), expected, rtol=1e-12)
    for k, v in running.items():
        np.testing.assert_array_equal(layer.buffers[k], v)
    layer.training = True          # inference is evaluation in any mode
    np.testing.assert_allclose(layer.infer(x), expected, rtol=1e-12)


def test_batch_norm_needs_more_than_one_value_per_channel_to_train():
    layer = BatchNorm2d(4)
    with pytest.raises(ValueError, match="more than one value per channel"):
        layer.forward(np.ones((1, 4, 1, 1), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        layer.forward(np.ones((2, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        layer.output_shape((2, 4))
    layer.training = False              # one image is fine with running statistics
    assert layer.forward(np.ones((1, 4, 1, 1), np.float32)).shape == (1, 4, 1, 1)


def test_a_batch_that_overflows_does_not_poison_the_running_statistics():
    layer = BatchNorm2d(2, dtype=np.float64)
    x = rand((2, 2, 3, 3))
    x[0, 1, 0, 0] = np.inf
    with np.errstate(invalid="ignore"):
        layer.forward(x)
    np.testing.assert_array_equal(layer.buffers["running_mean"], [0, 0])
    np.testing.assert_array_equal(layer.buffers["running_var"], [1, 1])


def test_batch_norm_params_and_multiply_adds():
    layer = BatchNorm2d(6)
    assert layer.num_params == 12 and set(layer.params) == {"gamma", "beta"}
    assert layer.macs((2, 6, 5, 7)) == 2 * 6 * 5 * 7
    assert layer.astype(np.float64).buffers["running_var"].dtype == np.float64


# ---- GlobalAvgPool2D ----------------------------------------------------------------------
def test_global_average_pooling_spreads_the_gradient_evenly():
    layer = GlobalAvgPool2D()
    x = rand((2, 3, 4, 5))
    assert layer.forward(x).shape == (2, 3) == layer.output_shape(x.shape)
    g = rand((2, 3), 1)
    np.testing.assert_allclose(layer.backward(g), np.repeat(np.repeat(
        g[:, :, None, None] / 20, 4, axis=2), 5, axis=3), rtol=1e-15)
    with pytest.raises(ValueError, match="maps"):
        layer.output_shape((2, 3))


# ---- Sequential.train / eval ---------------------------------------------------------------
def net():
    return Sequential(Conv2D(2, 4, 3, seed=0, dtype=np.float64), BatchNorm2d(4, dtype=np.float64),
                      ReLU(), Dropout(0.5, seed=0), GlobalAvgPool2D(),
                      Linear(4, 3, seed=1, dtype=np.float64)).astype(np.float64)


def test_train_and_eval_switch_every_layer_and_predict_is_evaluation():
    model = net()
    x = rand((3, 2, 6, 7))
    for _ in range(3):
        model.forward(x)                             # training: running statistics move
    assert model.training and model["bn1"].training and model["dropout1"].training
    assert model.eval() is model and not model.training
    assert not any(layer.training for layer in model.layers)
    evaluated = model.forward(x)
    assert model["dropout1"].mask is None
    np.testing.assert_allclose(model.predict(x), evaluated, rtol=1e-12)
    model.train()
    assert all(layer.training for layer in model.layers)
    np.testing.assert_allclose(model.predict(x), evaluated, rtol=1e-12)   # predict: evaluation
    assert not np.allclose(model.forward(x), evaluated)


def test_a_model_with_every_new_layer_learns_and_its_gradients_check():
    model = net()
    x, y = rand((4, 2, 6, 7)), np.array([0, 1, 2, 1])
    from cnnviz.engine import SoftmaxCrossEntropy
    loss_fn = SoftmaxCrossEntropy()

    def loss():
        model["dropout1"].buffers["draws"][0] = 3
        return loss_fn(model.forward(x), y)

    loss()
    model.backward(loss_fn.backward())
    for p in model.parameters():
        if p.name == "conv1.bias":      # batch norm subtracts the mean: a bias before it is moot
            assert np.abs(p.grad).max() < 1e-12
            continue
        assert_grad_close(p.grad.copy(), loss, p.value, tol=1e-6, what=p.name)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    first = loss()
    for _ in range(10):
        loss()
        model.backward(loss_fn.backward(), need_input_grad=False)
        opt.step()
    assert loss() < first - 0.1


# ---- the trainer ---------------------------------------------------------------------------
def tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 6, 6), dtype=np.uint8), rng.integers(0, 3, n)


def test_the_trainer_trains_in_training_mode_whatever_mode_it_was_given():
    from cnnviz.engine.trainer import Trainer, TrainConfig
    model = Sequential(Conv2D(1, 3, 3, seed=0), BatchNorm2d(3), ReLU(), Dropout(0.5, seed=0),
                       Flatten(), Linear(48, 3, seed=1)).eval()    # e.g. left so by a view
    trainer = Trainer(model, tiny_data(), None, TrainConfig(epochs=1, batch_size=16,
                                                            warmup_steps=0, workers=1))
    list(trainer.run())
    assert model.training and model["dropout1"].mask is not None
    assert not np.allclose(model["bn1"].buffers["running_mean"], 0)


def test_each_training_worker_draws_its_own_dropout_masks():
    """Two identical rows, one per process: with the same masks both would
    give the same gradient, and the batch's would be twice this process's."""
    from cnnviz.engine.losses import SoftmaxCrossEntropy
    from cnnviz.engine.parallel import ParallelStep
    model = Sequential(Flatten(), Dropout(0.5, seed=0), Linear(64, 2, seed=1))
    step = ParallelStep(model, SoftmaxCrossEntropy(), 2, sample_shape=(1, 8, 8), max_batch=2)
    try:
        assert step.wait_ready(60), step.failure
        x = np.repeat(np.random.default_rng(2).uniform(0, 1, (1, 1, 8, 8)), 2, axis=0)
        x = x.astype(np.float32)
        step.gradients(x, np.array([1, 1]))
        assert step.parallel_batches == 1
        total = model["fc1"].grads["weight"].copy()
        # this process's half: the same row and mask again, alone, scaled by 1/2
        model["dropout1"].buffers["draws"] -= 1
        loss_fn = SoftmaxCrossEntropy()
        loss_fn(model.train_forward(x[:1]), np.array([1]))
        g = loss_fn.backward() * np.float32(0.5)
        model.train_backward(g)
        own = model["fc1"].grads["weight"]
        assert not np.allclose(total, 2 * own)
    finally:
        step.close()



def test_a_run_with_dropout_and_batch_norm_resumes_from_a_checkpoint_exactly(tmp_path):
    """The masks (Dropout's draw count) and the running statistics are saved
    with the weights, so the resumed run is the uninterrupted one."""
    from cnnviz.engine.trainer import Trainer, TrainConfig

    def model():
        return Sequential(Conv2D(1, 3, 3, seed=0), BatchNorm2d(3), ReLU(), Dropout(0.5, seed=1),
                          Flatten(), Linear(48, 3, seed=2))

    config = TrainConfig(epochs=2, batch_size=16, warmup_steps=0, workers=1, snapshot_every=1)
    data = tiny_data()
    full = Trainer(model(), data, data, config)
    list(full.run())
    part = Trainer(model(), data, data, config)
    run = part.run()
    for snap in run:
        if snap.kind == "batch" and snap.step == 5:
            break
    run.close()
    path = tmp_path / "ck.npz"
    part.save_checkpoint(path)
    resumed = Trainer.from_checkpoint(path, data, data)
    assert resumed.model["dropout1"].buffers["draws"][0] == 5
    list(resumed.run())
    np.testing.assert_array_equal(resumed.history.loss, full.history.loss)
    for name, value in full.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[name], value, err_msg=name)
