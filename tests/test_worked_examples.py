"""The worked examples of CNN-NOTES.md, reproduced exactly by the engine
(float32, the default, and float64); example 4 is pinned."""

import numpy as np
import pytest

import reference as ref

from cnnviz.engine import SGD, AvgPool2D, Conv2D, MaxPool2D, Sequential
from cnnviz.engine import functional as F

DTYPES = [np.float32, np.float64]

EX1_X = [[2, 5, 0, 1], [6, 7, 1, 2], [3, 0, 4, 0], [3, 9, 7, 4]]
K1 = [[1, 0, 1], [-1, 1, 0], [0, 1, -1]]
K2 = [[-1, 1, 0], [0, 1, -1], [1, 0, 1]]
EX2_X = [[1, 3, 0, 2, 4], [4, 7, 4, 1, 0], [4, 6, 0, 0, 6], [3, 2, 8, 1, 2], [3, 5, 0, 7, 3]]
EX3_X = [[1, 3, 0, 3], [2, 2, 4, 1], [4, 2, 0, 0], [3, 3, 3, 1]]


def img(a, dtype):
    return np.array(a, dtype=dtype)[None, None]


@pytest.mark.parametrize("dtype", DTYPES)
def test_example_1_single_in_multi_out(dtype):
    x = img(EX1_X, dtype)
    w = np.array([[K1], [K2]], dtype=dtype)           # (2, 1, 3, 3)
    out = F.conv2d(x, w)
    assert out.shape == (1, 2, 2, 2) and out.dtype == dtype
    np.testing.assert_array_equal(out[0, 0], [[-1, 4], [6, 16]])
    np.testing.assert_array_equal(out[0, 1], [[16, -6], [7, 11]])   # by hand and by reference
    np.testing.assert_array_equal(out, ref.conv2d(x, w))
    # the same through a layer
    conv = Conv2D(1, 2, 3, bias=False, dtype=dtype)
    conv.params["weight"][...] = w
    np.testing.assert_array_equal(conv.forward(x), out)


@pytest.mark.parametrize("dtype", DTYPES)
def test_example_2_stride_2_and_1(dtype):
    x = img(EX2_X, dtype)
    w = np.array([[K1]], dtype=dtype)
    s2 = F.conv2d(x, w, stride=2)
    s1 = F.conv2d(x, w, stride=1)
    np.testing.assert_array_equal(s2[0, 0], [[10, -5], [8, 3]])
    np.testing.assert_array_equal(s1[0, 0], [[10, 2, -5], [4, 9, 3], [8, 5, 3]])
    # the stride-2 map is the stride-1 map without the "cross"
    np.testing.assert_array_equal(s2, s1[:, :, ::2, ::2])
    # and so the stride-2 backward is the stride-1 backward of the dilated δ
    g = np.array([[[[1, 2], [3, 4]]]], dtype=dtype)
    _, cache2 = F.conv2d_forward(x, w, stride=2)
    _, cache1 = F.conv2d_forward(x, w, stride=1)
    dx2, dw2, _ = F.conv2d_backward(g, cache2)
    dx1, dw1, _ = F.conv2d_backward(F.dilate(g, 2), cache1)
    np.testing.assert_array_equal(dx2, dx1)
    np.testing.assert_array_equal(dw2, dw1)
    np.testing.assert_array_equal(F.conv2d_input_grad_by_rotation(g, w, x.shape, stride=2), dx2)
    rdx, rdw, _ = ref.conv2d_backward(g, x, w, stride=2)
    np.testing.assert_array_equal(dx2, rdx)
    np.testing.assert_array_equal(dw2, rdw)


@pytest.mark.parametrize("dtype", DTYPES)
def test_example_3_pooling_forward_and_backward(dtype):
    x = img(EX3_X, dtype)
    up = img([[1, 2], [3, 4]], dtype)
    mp, ap = MaxPool2D(2, 2), AvgPool2D(2, 2)
    np.testing.assert_array_equal(mp.forward(x)[0, 0], [[3, 4], [4, 3]])
    np.testing.assert_array_equal(ap.forward(x)[0, 0], [[2, 2], [3, 1]])
    dmax = mp.backward(up)
    davg = ap.backward(up)
    assert dmax.dtype == davg.dtype == dtype
    np.testing.assert_array_equal(dmax[0, 0], [[0, 1, 0, 0],
                                               [0, 0, 2, 0],
                                               [3, 0, 0, 0],
                                               [0, 0, 4, 0]])
    np.testing.assert_array_equal(davg[0, 0], [[.25, .25, .5, .5],
                                               [.25, .25, .5, .5],
                                               [.75, .75, 1, 1],
                                               [.75, .75, 1, 1]])
    np.testing.assert_array_equal(dmax, ref.max_pool2d_backward(up, x, 2, 2))
    np.testing.assert_array_equal(davg, ref.avg_pool2d_backward(up, x.shape, 2, 2))


# --- example 4: 3-channel 5x5 input, two 3x3x3 filters, padding 1, stride 2

EX4_X = [[[0, 1, 1, 0, 2], [2, 2, 2, 2, 1], [1, 0, 0, 2, 0], [0, 1, 1, 0, 0], [1, 2, 0, 0, 2]],
         [[1, 0, 2, 2, 0], [0, 0, 0, 2, 0], [1, 2, 1, 2, 1], [1, 0, 0, 0, 0], [1, 2, 1, 1, 1]],
         [[2, 1, 2, 0, 0], [1, 0, 0, 1, 0], [0, 2, 1, 0, 1], [0, 1, 2, 2, 2], [2, 1, 0, 0, 1]]]
EX4_W = [[[[-1, 1, 0], [0, 1, 0], [0, 1, 1]], [[-1, -1, 0], [0, 0, 0], [0, -1, 0]],
          [[0, 0, -1], [0, 1, 0], [1, -1, -1]]],
         [[[1, 1, -1], [-1, -1, 1], [0, -1, 1]], [[0, 1, 0], [-1, 0, -1], [-1, 1, 0]],
          [[-1, 0, 0], [-1, 0, 1], [-1, 0, 0]]]]
EX4_B = [1, 0]
EX4_G = [[[0, 1, 1], [2, 2, 2], [1, 0, 0]], [[1, 0, 2], [0, 0, 0], [1, 2, 1]]]

# pinned: computed once by the engine, forward checked against the naive reference
EX4_OUT = [[[6, 7, 5], [3, -1, -1], [2, -1, 4]],
           [[2, -5, -8], [1, -4, -4], [0, -5, -5]]]
EX4_DX = [[[-1, 1, 1, -2, -1], [1, -1, 3, -1, 1], [2, 0, 2, 0, 2], [4, 3, 4, 1, 3], [0, -1, -2, 1, -1]],
          [[0, -1, 0, -2, 0], [-1, -2, -3, -4, -1], [0, 0, 0, 0, 0], [-2, 0, 0, 0, -1], [0, -3, 0, -3, 0]],
          [[0, 1, 1, -2, 1], [0, -1, -1, -4, -1], [2, 0, 2, 0, 2], [-2, -3, -2, -1, -2], [1, -1, 0, 1, 0]]]
EX4_DW = [[[[8, 10, 9], [5, 6, 6], [6, 5, 4]],
           [[4, 1, 4], [10, 9, 12], [2, 2, 2]],
           [[2, 2, 3], [5, 8, 5], [7, 8, 7]]],
          [[[2, 2, 1], [4, 7, 3], [4, 4, 2]],
           [[0, 1, 0], [9, 5, 4], [4, 0, 0]],
           [[4, 6, 5], [2, 5, 2], [2, 1, 0]]]]
EX4_DB = [9, 7]
EX4_W_NEW = [[[[-1.008, 0.99, -0.009], [-0.005, 0.994, -0.006], [-0.006, 0.995, 0.996]],
              [[-1.004, -1.001, -0.004], [-0.01, -0.009, -0.012], [-0.002, -1.002, -0.002]],
              [[-0.002, -0.002, -1.003], [-0.005, 0.992, -0.005], [0.993, -1.008, -1.007]]],
             [[[0.998, 0.998, -1.001], [-1.004, -1.007, 0.997], [-0.004, -1.004, 0.998]],
              [[0.0, 0.999, 0.0], [-1.009, -0.005, -1.004], [-1.004, 1.0, 0.0]],
              [[-1.004, -0.006, -0.005], [-1.002, -0.005, 0.998], [-1.002, -0.001, 0.0]]]]
EX4_B_NEW = [0.991, -0.007]


@pytest.mark.parametrize("dtype", DTYPES)
def test_example_4_forward_backward_and_sgd_step_pinned(dtype):
    x = np.array(EX4_X, dtype=dtype)[None]
    conv = Conv2D(3, 2, 3, stride=2, padding=1, dtype=dtype)   # identity activation
    conv.params["weight"][...] = EX4_W
    conv.params["bias"][...] = EX4_B
    model = Sequential(conv)
    out = model.forward(x)
    assert out.shape == (1, 2, 3, 3) and out.dtype == dtype
    np.testing.assert_array_equal(out, ref.conv2d(x, np.array(EX4_W), np.array(EX4_B), 2, 1))
    np.testing.assert_array_equal(out[0], EX4_OUT)

    dx = model.backward(np.array(EX4_G, dtype=dtype)[None])
    assert dx.dtype == conv.grads["weight"].dtype == dtype
    np.testing.assert_array_equal(dx[0], EX4_DX)
    np.testing.assert_array_equal(conv.grads["weight"], EX4_DW)
    np.testing.assert_array_equal(conv.grads["bias"], EX4_DB)
    rdx, rdw, rdb = ref.conv2d_backward(np.array(EX4_G)[None], x, np.array(EX4_W), 2, 1)
    np.testing.assert_array_equal(rdx[0], EX4_DX)
    np.testing.assert_array_equal(rdw, EX4_DW)
    np.testing.assert_array_equal(rdb, EX4_DB)
    # backward did not touch the filters; the optimizer does
    np.testing.assert_array_equal(conv.params["weight"], EX4_W)
    SGD(model.parameters(), lr=0.001).step()
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(conv.params["weight"], EX4_W_NEW, rtol=0, atol=tol)
    np.testing.assert_allclose(conv.params["bias"], EX4_B_NEW, rtol=0, atol=tol)
    assert conv.params["weight"].dtype == dtype
