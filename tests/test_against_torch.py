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


# ---- the layers of issue 14 -------------------------------------------------------------
from cnnviz.engine import (BatchNorm2d, Dropout, GlobalAvgPool2D, SparseConv2D,  # noqa: E402
                           Subsampling2D, ZeroPad2D, lenet5_1998)
from cnnviz.engine.sparse_conv import LENET5_C3_CONNECTIONS, connection_mask  # noqa: E402


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (5, 4, 1, 3)])
def test_batch_norm_training_and_evaluation_like_torch(shape):
    rng = np.random.default_rng(4)
    c = shape[1]
    ours = BatchNorm2d(c, eps=1e-3, momentum=0.3, dtype=np.float64)
    theirs = torch.nn.BatchNorm2d(c, eps=1e-3, momentum=0.3).double()
    gamma, beta = rng.uniform(0.5, 2, c), rng.standard_normal(c)
    ours.params["gamma"][...], ours.params["beta"][...] = gamma, beta
    with torch.no_grad():
        theirs.weight.copy_(t(gamma))
        theirs.bias.copy_(t(beta))
    for mode in ("train", "train", "eval"):
        ours.training = mode == "train"
        theirs.train(mode == "train")
        theirs.zero_grad()
        x = rng.standard_normal(shape) * 2 + 1
        y = ours.forward(x)
        tx = t(x, True)
        ty = theirs(tx)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-11, atol=1e-12)
        g = rng.standard_normal(shape)
        ty.backward(t(g))
        np.testing.assert_allclose(ours.backward(g), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.grads["gamma"], theirs.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.grads["beta"], theirs.bias.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.buffers["running_mean"], theirs.running_mean.numpy(),
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ours.buffers["running_var"], theirs.running_var.numpy(),
                                   rtol=1e-12)


def test_dropout_is_inverted_dropout_like_torch():
    """torch draws other masks; what must agree is the convention: a kept
    value is x / (1 - p), a dropped one 0, and the gradient takes the same mask."""
    x = np.random.default_rng(5).uniform(1, 2, (3, 4, 6, 6))
    ours = Dropout(0.25, seed=0)
    tx = t(x, True)
    ty = tF.dropout(tx, 0.25, training=True)
    ty.backward(torch.ones_like(ty))
    for out, grad in ((ours.forward(x), ours.backward(np.ones_like(x))),
                      (ty.detach().numpy(), tx.grad.numpy())):
        kept = out != 0
        np.testing.assert_allclose(out[kept], x[kept] / 0.75, rtol=1e-15)
        np.testing.assert_allclose(grad, kept / 0.75, rtol=1e-15)
    np.testing.assert_array_equal(tF.dropout(tx, 0.25, training=False).detach().numpy(),
                                  ours.infer(x))


def test_global_average_pooling_like_torch():
    x = np.random.default_rng(6).standard_normal((2, 3, 5, 4))
    layer = GlobalAvgPool2D()
    tx = t(x, True)
    ty = tF.adaptive_avg_pool2d(tx, 1).flatten(1)
    np.testing.assert_allclose(layer.forward(x), ty.detach().numpy(), rtol=1e-13)
    g = np.random.default_rng(7).standard_normal((2, 3))
    ty.backward(t(g))
    np.testing.assert_allclose(layer.backward(g), tx.grad.numpy(), rtol=1e-13)


def torch_lenet_1998(net):
    """LeNet-5 (1998) composed of torch ops, weights copied from ours: the
    subsampling is 4 * avg_pool * coefficient + bias, C3 a conv with masked weights."""
    params = {p.name: torch.nn.Parameter(t(p.value)) for p in net.parameters()}
    mask = t(connection_mask(LENET5_C3_CONNECTIONS, 6)[:, :, None, None].astype(float))

    def subsample(h, s):
        return torch.tanh(4 * tF.avg_pool2d(h, 2) * params[f"{s}.weight"].view(1, -1, 1, 1)
                          + params[f"{s}.bias"].view(1, -1, 1, 1))

    def forward(x):
        h = tF.pad(x, (2, 2, 2, 2))
        h = (h - MNIST_MEAN) / MNIST_STD
        h = subsample(torch.tanh(tF.conv2d(h, params["C1.weight"], params["C1.bias"])), "S2")
        h = torch.tanh(tF.conv2d(h, params["C3.weight"] * mask, params["C3.bias"]))
        h = subsample(h, "S4")
        h = torch.tanh(tF.conv2d(h, params["C5.weight"], params["C5.bias"])).flatten(1)
        h = torch.tanh(tF.linear(h, params["F6.weight"], params["F6.bias"]))
        return tF.linear(h, params["output.weight"], params["output.bias"])
    return forward, params


def test_lenet5_1998_forward_backward_like_torch():
    net = lenet5_1998(seed=0).astype(np.float64)
    for s in ("S2", "S4"):        # coefficients away from their initial 1/4
        net[s].params["weight"][...] = np.random.default_rng(8).uniform(0.1, 0.5, net[s].channels)
        net[s].params["bias"][...] = np.random.default_rng(9).uniform(-0.2, 0.2, net[s].channels)
    forward, params = torch_lenet_1998(net)
    rng = np.random.default_rng(10)
    x, y = rng.uniform(0, 1, (3, 1, 28, 28)), rng.integers(0, 10, 3)
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn(net.forward(x), y)
    dx = net.backward(loss_fn.backward())
    tx = t(x, True)
    tloss = tF.cross_entropy(forward(tx), torch.tensor(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-14)
    for pr in net.parameters():
        np.testing.assert_allclose(pr.grad, params[pr.name].grad.numpy(), rtol=1e-9, atol=1e-13,
                                   err_msg=pr.name)


def test_sparse_conv_subsampling_and_padding_layers_like_torch():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 8, 7))
    conn = [[0, 2], [1], [2, 1, 0]]
    for layer, op in [
        (SparseConv2D(3, 3, (3, 2), conn, stride=(1, 2), padding=1, seed=0, dtype=np.float64),
         lambda tx, w: tF.conv2d(tx, w["weight"] * t(connection_mask(conn, 3)[:, :, None, None]
                                                     .astype(float)), w["bias"], (1, 2), 1)),
        (Subsampling2D(3, (2, 3), (2, 1), dtype=np.float64),
         lambda tx, w: 6 * tF.avg_pool2d(tx, (2, 3), (2, 1)) * w["weight"].view(1, -1, 1, 1)
         + w["bias"].view(1, -1, 1, 1)),
        (ZeroPad2D((1, 2)), lambda tx, w: tF.pad(tx, (2, 2, 1, 1))),
    ]:
        for k in layer.params:
            layer.params[k][...] = rng.standard_normal(layer.params[k].shape)
        tw = {k: t(v, True) for k, v in layer.params.items()}
        tx = t(x, True)
        ty = op(tx, tw)
        np.testing.assert_allclose(layer.forward(x), ty.detach().numpy(), rtol=1e-12, atol=1e-13)
        g = rng.standard_normal(ty.shape)
        ty.backward(t(g))
        np.testing.assert_allclose(layer.backward(g), tx.grad.numpy(), rtol=1e-12, atol=1e-13)
        for k in layer.params:
            expected = tw[k].grad.numpy()
            np.testing.assert_allclose(layer.grads[k], expected, rtol=1e-12, atol=1e-13)
