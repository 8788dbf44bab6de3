"""The lab's per-map activation and pooling (map_stages), run by the conv's
threads, against the engine's relu / leaky_relu / sigmoid / tanh / max_pool2d /
avg_pool2d on whole tensors: odd shapes, windows that do not tile the map,
stride != window; and the one-pass finiteness check (filter_conv.all_finite).
No display needed."""

import numpy as np
import pytest

from cnnviz.engine import functional as F
from cnnviz.gui.kernel_lab.filter_conv import all_finite
from cnnviz.gui.kernel_lab.map_stages import LEAKY_SLOPE, activate_into, pool_into
from cnnviz.gui.kernel_lab.pipeline import LayerConfig, finite_stages, overflow_note, run_pipeline

RNG = np.random.default_rng(11)

ENGINE_ACT = {"relu": F.relu, "leaky_relu": lambda x: F.leaky_relu(x, LEAKY_SLOPE),
              "sigmoid": F.sigmoid, "tanh": F.tanh}
ENGINE_POOL = {"max": F.max_pool2d, "avg": F.avg_pool2d}

# (map shape, window, stride): tiling, ragged edges, overlapping, gapped, 1-wide
POOLS = [((8, 8), (2, 2), (2, 2)), ((7, 9), (2, 2), (2, 2)), ((13, 11), (3, 3), (2, 2)),
         ((10, 17), (2, 3), (3, 1)), ((9, 9), (3, 2), (4, 5)), ((5, 1), (2, 1), (1, 1)),
         ((31, 29), (4, 4), (3, 3)), ((6, 6), (6, 6), (1, 1))]


@pytest.mark.parametrize("activation", list(ENGINE_ACT))
def test_activation_of_a_map_equals_the_engine(activation):
    x = RNG.normal(0, 3, (3, 17, 23)).astype(np.float32)
    out = np.full_like(x, np.nan)
    for m in range(len(x)):
        activate_into(x[m], activation, out[m])
    np.testing.assert_allclose(out, ENGINE_ACT[activation](x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("shape,size,stride", POOLS)
def test_pooling_of_a_map_equals_the_engine(kind, shape, size, stride):
    x = RNG.normal(0, 2, (1, 3) + shape).astype(np.float32)
    expected = ENGINE_POOL[kind](x, size, stride)
    out = np.full(expected.shape, np.nan, np.float32)
    for m in range(x.shape[1]):
        pool_into(x[0, m], kind, size, stride, out[0, m])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "none", "tanh"])
@pytest.mark.parametrize("pool,size,stride", [("max", 2, 2), ("max", 3, 2), ("avg", (2, 3), (3, 1))])
def test_pipeline_stages_equal_the_engine_on_threaded_maps(activation, pool, size, stride):
    """A 300x301 input takes the threaded path (one thread per map) with the
    activation and pooling fused into it; every stage equals the engine's."""
    x = RNG.random((3, 300, 301), dtype=np.float32)
    w = RNG.uniform(-1, 1, (4, 3, 3, 3)).astype(np.float32)
    b = RNG.uniform(-0.1, 0.1, 4).astype(np.float32)
    cfg = LayerConfig(w, b, padding=1, stride=(1, 2), activation=activation, pool=pool,
                      pool_size=size, pool_stride=stride)
    result = run_pipeline(x, cfg)
    conv = F.conv2d(x[None], w, b, (1, 2), 1)
    np.testing.assert_allclose(result.stage("conv").tensor, conv, rtol=1e-5, atol=1e-5)
    act = conv if activation == "none" else ENGINE_ACT[activation](conv)
    if activation == "none":
        assert result.stage("activation") is None
    else:
        np.testing.assert_allclose(result.stage("activation").tensor, act, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.stage("pool").tensor, ENGINE_POOL[pool](act, size, stride),
                               rtol=1e-5, atol=1e-5)


def test_all_finite_sees_one_inf_or_nan_anywhere_and_not_big_finite_values():
    maps = RNG.normal(size=(3, 40, 50)).astype(np.float32)
    assert all_finite(maps)
    big = np.full((2, 300, 300), np.finfo(np.float32).max, np.float32)
    big[1] *= -1
    assert all_finite(big)      # their sums overflow float32, not the check
    for value in (np.inf, -np.inf, np.nan):
        for index in ((0, 0, 0), (2, 39, 49), (1, 17, 3)):
            bad = maps.copy()
            bad[index] = value
            assert not all_finite(bad), (value, index)
    assert not all_finite(np.array([[np.inf, -np.inf]], np.float32))   # sums to NaN


@pytest.mark.filterwarnings("ignore:overflow encountered")   # the point of some cases
@pytest.mark.parametrize("kernel,activation,pool", [
    (1e3, "relu", "max"),            # all finite
    (3e38, "relu", "avg"),           # a finite conv whose 2x2 average sums past float32
    (3e38, "leaky_relu", "max"),
    (5e37, "sigmoid", "max"),        # the conv overflows, sigmoid brings it back
    (5e37, "relu", "avg"),
    (-5e37, "tanh", "avg"),
    (5e37, "none", "max"),
])
def test_finite_stages_equals_checking_every_stage(kernel, activation, pool):
    side = 1 if abs(kernel) > 1e38 else 3
    cfg = LayerConfig(np.full((2, 1, side, side), kernel, np.float32), np.zeros(2, np.float32),
                      activation=activation, pool=pool)
    result = run_pipeline(np.ones((1, 9, 9), np.float32), cfg)
    expected = [bool(np.isfinite(s.tensor).all()) for s in result.stages[1:]]
    assert finite_stages(result) == expected
    assert (overflow_note(result) == "") == all(expected)
