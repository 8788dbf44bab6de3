"""The original LeNet-5 (1998) against the table of CNN-NOTES.md, its sparse
C3 connection table, and the sparse convolution's weights held at zero."""

import numpy as np
import pytest

from cnnviz.engine import (SGD, Adam, SoftmaxCrossEntropy, SparseConv2D, lenet5_1998, summary)
from cnnviz.engine.sparse_conv import LENET5_C3_CONNECTIONS, connection_mask

# CNN-NOTES.md, "LeNet": layer -> (output shape without the batch, parameters)
NOTES = {"C1": ((6, 28, 28), 156), "S2": ((6, 14, 14), 12), "C3": ((16, 10, 10), 1516),
         "S4": ((16, 5, 5), 32), "C5": ((120, 1, 1), 48120), "F6": ((84,), 10164),
         "output": ((10,), 850)}


def test_parameter_table_matches_the_notes():
    table = summary(lenet5_1998(), (1, 1, 28, 28))
    rows = {r.name: r for r in table.rows}
    assert rows["pad"].output_shape == (1, 1, 32, 32)            # the paper's 32x32 input
    for name, (shape, params) in NOTES.items():
        assert rows[name].output_shape[1:] == shape, name
        assert rows[name].params == params, name
    assert table.total_params == sum(p for _, p in NOTES.values()) == 60_850
    text = str(table)
    assert "C3       SparseConv2D   (1, 16, 10, 10)   1,516" in text
    assert text.splitlines()[-1].split()[:2] == ["total", "60,850"]


def _runs(seen):
    """Whether the input maps form one cyclically contiguous run (mod 6)."""
    s = set(seen)
    return any(all((start + k) % 6 in s for k in range(len(s))) for start in range(6))


def test_c3_connection_table_is_the_papers():
    groups = {3: [], 4: [], 6: []}
    for seen in LENET5_C3_CONNECTIONS:
        groups[len(seen)].append(seen)
    assert len(groups[3]) == 6 and all(_runs(s) for s in groups[3])
    contiguous = [s for s in groups[4] if _runs(s)]
    assert len(contiguous) == 6 and len(groups[4]) == 9        # and 3 non-contiguous
    assert len(groups[6]) == 1
    mask = connection_mask(LENET5_C3_CONNECTIONS, 6)
    assert mask.sum() == 60 and (mask.sum(axis=0) == 10).all()  # each S2 map feeds 10 C3 maps
    # table I, column 12: S2 maps 0, 1, 3, 4
    np.testing.assert_array_equal(np.flatnonzero(mask[12]), [0, 1, 3, 4])


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_weights_outside_the_table_stay_zero_and_get_no_gradient(opt):
    net = lenet5_1998(seed=0)
    c3 = net["C3"]
    outside = ~c3.mask[:, :, None, None].repeat(5, 2).repeat(5, 3)
    assert isinstance(c3, SparseConv2D) and c3.num_params == 1516
    assert np.all(c3.params["weight"][outside] == 0) and np.all(c3.params["weight"][~outside] != 0)
    optimizer = (SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4) if opt == "sgd"
                 else Adam(net.parameters(), lr=1e-3, weight_decay=5e-4))
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (16, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 16)
    loss_fn = SoftmaxCrossEntropy()
    losses = []
    for _ in range(5):
        losses.append(loss_fn(net.forward(x), y))
        net.backward(loss_fn.backward(), need_input_grad=False)
        assert np.all(c3.grads["weight"][outside] == 0)
        optimizer.step()
    assert np.all(c3.params["weight"][outside] == 0)
    assert losses[-1] < losses[0] - 0.1, losses


def test_weights_put_outside_the_table_are_never_used():
    net = lenet5_1998(seed=0)
    x = np.random.default_rng(2).uniform(0, 1, (2, 1, 28, 28)).astype(np.float32)
    before = net.predict(x)
    c3 = net["C3"]
    c3.params["weight"][~c3.mask] = 100.0             # e.g. a file written by hand
    np.testing.assert_array_equal(net.predict(x), before)
    np.testing.assert_array_equal(net.forward(x), before)


def test_connection_table_errors_name_the_map():
    with pytest.raises(ValueError, match=r"connections\[1\]: 6 is not an input map \(0 to 5\)"):
        SparseConv2D(6, 2, 3, [[0], [1, 6]])
    with pytest.raises(ValueError, match=r"connections\[0\]: input map 2 appears twice"):
        SparseConv2D(6, 1, 3, [[2, 2]])
    with pytest.raises(ValueError, match="3 lists for 2 output maps"):
        SparseConv2D(6, 2, 3, [[0], [1], [2]])
