"""Optional cross-check with PyTorch (float64). Skipped when torch is not
installed: it is never a dependency, and the reference tests stand alone."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tF = torch.nn.functional
torch.set_num_threads(1)    # tiny tensors: threads only add start-up time

from cnnviz.engine import SGD, Adam, SoftmaxCrossEntropy, lenet5, lenet5_small  # noqa: E402
from cnnviz.engine import functional as F  # noqa: E402
from cnnviz.engine.models import MNIST_MEAN, MNIST_STD  # noqa: E402

CONV = [
    ((2, 3, 9, 7), (4, 3, 3, 2), (2, 1), (1, 0), 1),
    ((3, 2, 8, 11), (3, 2, 3, 3), 2, (2, 1), 2),
    ((1, 4, 10, 10), (2, 4, 5, 5), 3, 2, 1),
    ((2, 1, 7, 12), (5, 1, 2, 4), (1, 3), 0, (2, 1)),
]


def t(a, grad=False):
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("xs,ws,s,p,d", CONV)
def test_conv2d_forward_backward_like_torch(xs, ws, s, p, d):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    out, cache = F.conv2d_forward(x, w, b, s, p, d)
    tx, tw, tb = t(x, True), t(w, True), t(b, True)
    tout = tF.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    tout.backward(t(g))
    dx, dw, db = F.conv2d_backward(g, cache)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,s", [(2, None), (3, 2), ((2, 3), (2, 1)), (3, 1)])
@pytest.mark.parametrize("ties", [False, True])
def test_pools_forward_backward_like_torch(k, s, ties):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, (2, 3, 9, 8)).astype(float) if ties else rng.standard_normal((2, 3, 9, 8))
    for fwd, bwd, tfn in [(F.max_pool2d_forward, F.max_pool2d_backward, tF.max_pool2d),
                          (F.avg_pool2d_forward, F.avg_pool2d_backward, tF.avg_pool2d)]:
        out, cache = fwd(x, k, s)
        tx = t(x, True)
        tout = tfn(tx, k, s)
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-13, atol=1e-15)
        g = rng.standard_normal(out.shape)
        tout.backward(t(g))
        np.testing.assert_allclose(bwd(g, cache), tx.grad.numpy(), rtol=1e-13, atol=1e-15)


def torch_lenet(net):
    """The same network in torch, weights copied from ours."""
    layers = {l.name: l for l in net.layers}

    def p(name, key):
        return torch.nn.Parameter(t(layers[name].params[key]))

    params = {f"{n}.{k}": p(n, k) for n in layers for k in layers[n].params}

    def forward(x):
        h = (x - MNIST_MEAN) / MNIST_STD
        for l in net.layers[1:]:
            kind = type(l).__name__
            if kind == "Conv2D":
                h = tF.conv2d(h, params[f"{l.name}.weight"], params[f"{l.name}.bias"],
                              stride=l.stride, padding=l.padding, dilation=l.dilation)
            elif kind == "ReLU":
                h = torch.relu(h)
            elif kind == "MaxPool2D":
                h = tF.max_pool2d(h, l.kernel_size, l.stride)
            elif kind == "Flatten":
                h = h.flatten(1)
            elif kind == "Linear":
                h = tF.linear(h, params[f"{l.name}.weight"], params[f"{l.name}.bias"])
            else:
                raise AssertionError(kind)
        return h
    return forward, params


@pytest.mark.parametrize("make", [lenet5, lenet5_small])
def test_lenet_forward_backward_like_torch(make):
    net = make(seed=0).astype(np.float64)
    forward, params = torch_lenet(net)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (5, 1, 28, 28))
    y = rng.integers(0, 10, 5)
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn(net.forward(x), y)
    dx = net.backward(loss_fn.backward())
    tx = t(x, True)
    tloss = tF.cross_entropy(forward(tx), torch.tensor(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    for pr in net.parameters():
        np.testing.assert_allclose(pr.grad, params[pr.name].grad.numpy(), rtol=1e-10, atol=1e-13,
                                   err_msg=pr.name)


@pytest.mark.parametrize("which", ["sgd", "adam"])
def test_optimizer_steps_like_torch(which):
    net = lenet5_small(seed=0).astype(np.float64)
    forward, params = torch_lenet(net)
    plist = list(params.values())
    if which == "sgd":
        ours = SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-3)
        theirs = torch.optim.SGD(plist, lr=0.01, momentum=0.9, weight_decay=1e-3)
    else:
        ours = Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-3)
        theirs = torch.optim.Adam(plist, lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=1e-3)
    rng = np.random.default_rng(3)
    loss_fn = SoftmaxCrossEntropy()
    for _ in range(3):
        x, y = rng.uniform(0, 1, (4, 1, 28, 28)), rng.integers(0, 10, 4)
        loss_fn(net.forward(x), y)
        net.backward(loss_fn.backward(), need_input_grad=False)
        ours.step()
        theirs.zero_grad()
        tF.cross_entropy(forward(t(x)), torch.tensor(y)).backward()
        theirs.step()
    for pr in net.parameters():
        np.testing.assert_allclose(pr.value, params[pr.name].detach().numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=pr.name)
