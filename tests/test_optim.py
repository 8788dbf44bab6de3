"""Optimizers against hand-written PyTorch-semantics updates over 3 steps,
literal pins on a scalar, and the state_dict round trip."""

import copy

import numpy as np
import pytest

from cnnviz.engine import SGD, Adam, Linear, Sequential


def net_with(values, dtype=np.float64):
    """A Linear(3, 2) whose weight/bias are the given arrays."""
    layer = Linear(3, 2, dtype=dtype)
    layer.params["weight"][...] = values[0]
    layer.params["bias"][...] = values[1]
    return Sequential(layer)


def grads_for(step):
    rng = np.random.default_rng(100 + step)
    return rng.standard_normal((2, 3)), rng.standard_normal(2)


def run(opt_factory, steps=3, dtype=np.float64):
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal((2, 3)), rng.standard_normal(2)]
    net = net_with(w0, dtype)
    opt = opt_factory(net.parameters())
    layer = net.layers[0]
    for t in range(steps):
        gw, gb = grads_for(t)
        layer.grads = {"weight": gw.astype(dtype), "bias": gb.astype(dtype)}
        opt.step()
    return w0, [layer.params["weight"], layer.params["bias"]]


def sgd_by_hand(w0, lr, momentum, wd, steps=3):
    """torch.optim.SGD (dampening 0, nesterov off): g += wd*w; buf = g at
    the first step, then buf = momentum*buf + g; w -= lr*buf."""
    ws = [w.copy() for w in w0]
    bufs = [None, None]
    for t in range(steps):
        for i, g in enumerate(grads_for(t)):
            g = g + wd * ws[i]
            if momentum:
                bufs[i] = g.copy() if bufs[i] is None else momentum * bufs[i] + g
                g = bufs[i]
            ws[i] = ws[i] - lr * g
    return ws


def adam_by_hand(w0, lr, b1, b2, eps, wd, steps=3):
    """torch.optim.Adam (amsgrad off): g += wd*w; m, v moving averages;
    w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)."""
    ws = [w.copy() for w in w0]
    m = [np.zeros_like(w) for w in w0]
    v = [np.zeros_like(w) for w in w0]
    for t in range(1, steps + 1):
        for i, g in enumerate(grads_for(t - 1)):
            g = g + wd * ws[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            denom = np.sqrt(v[i]) / np.sqrt(1 - b2 ** t) + eps
            ws[i] = ws[i] - lr / (1 - b1 ** t) * m[i] / denom
    return ws


@pytest.mark.parametrize("lr,momentum,wd", [(0.1, 0.0, 0.0), (0.05, 0.9, 0.0), (0.1, 0.0, 0.01),
                                            (0.02, 0.8, 0.05)])
def test_sgd_matches_pytorch_semantics_over_3_steps(lr, momentum, wd):
    w0, got = run(lambda ps: SGD(ps, lr=lr, momentum=momentum, weight_decay=wd))
    want = sgd_by_hand(w0, lr, momentum, wd)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert not np.allclose(got[0], w0[0])


@pytest.mark.parametrize("lr,betas,eps,wd", [(1e-3, (0.9, 0.999), 1e-8, 0.0),
                                             (0.05, (0.8, 0.99), 1e-6, 0.0),
                                             (0.01, (0.9, 0.999), 1e-8, 0.1)])
def test_adam_matches_pytorch_semantics_over_3_steps(lr, betas, eps, wd):
    w0, got = run(lambda ps: Adam(ps, lr=lr, betas=betas, eps=eps, weight_decay=wd))
    want = adam_by_hand(w0, lr, betas[0], betas[1], eps, wd)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def scalar_run(opt_factory, grads, w=1.0):
    layer = Linear(1, 1, bias=False, dtype=np.float64)
    layer.params["weight"][...] = w
    opt = opt_factory(Sequential(layer).parameters())
    trail = []
    for g in grads:
        layer.grads = {"weight": np.array([[g]])}
        opt.step()
        trail.append(float(layer.params["weight"][0, 0]))
    return trail


def test_literal_scalar_updates():
    # plain: 1 - 0.1*0.5 ...
    assert scalar_run(lambda p: SGD(p, lr=0.1), [0.5, 0.5, 0.5]) == pytest.approx([0.95, 0.9, 0.85])
    # momentum 0.9: v = 0.5, 0.95, 1.355
    assert scalar_run(lambda p: SGD(p, lr=0.1, momentum=0.9), [0.5, 0.5, 0.5]) == \
        pytest.approx([0.95, 0.855, 0.7195], abs=1e-15)
    # weight decay 0.1, g = 0: w *= (1 - 0.1*0.1) per step
    assert scalar_run(lambda p: SGD(p, lr=0.1, weight_decay=0.1), [0, 0, 0]) == \
        pytest.approx([0.99, 0.9801, 0.970299], abs=1e-15)
    # Adam, constant gradient: m_hat = g, v_hat = g^2, so each step is lr * g / (|g| + eps)
    step = 0.1 * 0.5 / (0.5 + 1e-8)
    assert scalar_run(lambda p: Adam(p, lr=0.1), [0.5, 0.5, 0.5]) == \
        pytest.approx([1 - step, 1 - 2 * step, 1 - 3 * step], abs=1e-12)
    # Adam, first step: always lr * sign(g) (up to eps)
    assert scalar_run(lambda p: Adam(p, lr=0.01), [-123.0]) == pytest.approx([1.01], abs=1e-12)


@pytest.mark.parametrize("factory", [lambda ps: SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
                                     lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01)],
                         ids=["sgd", "adam"])
def test_state_dict_round_trip_continues_identically(factory):
    rng = np.random.default_rng(1)
    w0 = [rng.standard_normal((2, 3)), rng.standard_normal(2)]
    a = net_with(w0)
    opt_a = factory(a.parameters())
    for t in range(2):
        a.layers[0].grads = dict(zip(("weight", "bias"), grads_for(t)))
        opt_a.step()
    state = copy.deepcopy(opt_a.state_dict())
    b = net_with([a.layers[0].params["weight"].copy(), a.layers[0].params["bias"].copy()])
    opt_b = type(opt_a)(b.parameters(), lr=123.0)        # wrong hyperparameters, fresh buffers
    opt_b.load_state_dict(state)
    assert opt_b.steps == opt_a.steps == 2
    assert opt_b.hyper() == opt_a.hyper()
    for t in (2, 3):
        g = dict(zip(("weight", "bias"), grads_for(t)))
        a.layers[0].grads = g
        b.layers[0].grads = {k: v.copy() for k, v in g.items()}
        opt_a.step()
        opt_b.step()
    for k in ("weight", "bias"):
        np.testing.assert_array_equal(a.layers[0].params[k], b.layers[0].params[k])
    # the saved state is a copy: stepping did not change it
    fresh = type(opt_a)(b.parameters(), lr=1.0)
    fresh.load_state_dict(state)
    assert fresh.steps == 2


def test_state_dict_of_the_wrong_optimizer_is_rejected():
    net = net_with([np.zeros((2, 3)), np.zeros(2)])
    with pytest.raises(ValueError, match="SGD"):
        Adam(net.parameters()).load_state_dict(SGD(net.parameters(), lr=0.1).state_dict())


def test_step_without_gradients_is_a_clear_error():
    net = net_with([np.zeros((2, 3)), np.zeros(2)])
    with pytest.raises(RuntimeError, match="backward"):
        SGD(net.parameters(), lr=0.1).step()
    with pytest.raises(ValueError):
        SGD([], lr=0.1)


def test_optimizer_updates_the_layers_arrays_in_place():
    net = net_with([np.ones((2, 3)), np.ones(2)])
    w = net.layers[0].params["weight"]
    net.layers[0].grads = {"weight": np.ones((2, 3)), "bias": np.ones(2)}
    SGD(net.parameters(), lr=0.5).step()
    assert net.layers[0].params["weight"] is w
    np.testing.assert_array_equal(w, 0.5)
