"""The lessons hold the notes' worked examples exactly (CNN-NOTES.md, examples 1-4).

Example 4 prints no results: it is checked against a naive loop implementation
written here, independent of the engine's im2col code."""

import numpy as np
import pytest

from cnnviz.engine import SGD
from cnnviz.engine.lessons import LESSONS, ConvSpec


def run(key):
    lesson = LESSONS[key]
    model = lesson.build()
    out = np.ascontiguousarray(model.forward(lesson.input_array()))
    dx = np.ascontiguousarray(model.backward(lesson.delta_array()))
    return lesson, model, out, dx


@pytest.mark.parametrize("key", sorted(LESSONS))
def test_lesson_matches_the_notes(key):
    lesson, model, out, dx = run(key)
    assert out.dtype == dx.dtype == np.float64
    for name, expected in lesson.expected.items():
        got = out[0, 0] if name == "output0" else dx[0, 0]
        np.testing.assert_array_equal(got, np.array(expected, dtype=float), err_msg=name)


def test_notes_numbers_by_hand():
    # the notes' own figures, restated so a change to the lesson data shows here
    assert run("ex1")[2][0, 0].tolist() == [[-1, 4], [6, 16]]
    assert run("ex2s2")[2][0, 0].tolist() == [[10, -5], [8, 3]]
    assert run("ex2s1")[2][0, 0].tolist() == [[10, 2, -5], [4, 9, 3], [8, 5, 3]]
    assert run("ex3max")[2][0, 0].tolist() == [[3, 4], [4, 3]]
    assert run("ex3avg")[2][0, 0].tolist() == [[2, 2], [3, 1]]


def test_stride2_map_is_stride1_map_without_the_cross():
    s2, s1 = run("ex2s2")[2][0, 0], run("ex2s1")[2][0, 0]
    np.testing.assert_array_equal(s2, s1[::2, ::2])


def naive_conv(x, w, b, s, p):
    c_out, c_in, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    ho, wo = (xp.shape[1] - kh) // s + 1, (xp.shape[2] - kw) // s + 1
    out = np.zeros((c_out, ho, wo))
    for o in range(c_out):
        for i in range(ho):
            for j in range(wo):
                out[o, i, j] = np.sum(xp[:, i * s:i * s + kh, j * s:j * s + kw] * w[o]) + b[o]
    return out


def naive_conv_backward(x, w, s, p, d):
    c_out, c_in, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for o in range(c_out):
        for i in range(d.shape[1]):
            for j in range(d.shape[2]):
                dxp[:, i * s:i * s + kh, j * s:j * s + kw] += w[o] * d[o, i, j]
                dw[o] += xp[:, i * s:i * s + kh, j * s:j * s + kw] * d[o, i, j]
    return dxp[:, p:p + x.shape[1], p:p + x.shape[2]], dw, d.sum(axis=(1, 2))


def test_example4_against_naive_loops_and_one_sgd_step():
    lesson, model, out, dx = run("ex4")
    spec: ConvSpec = lesson.layer
    x = lesson.input_array()[0]
    w, b = np.array(spec.weight, float), np.array(spec.bias, float)
    np.testing.assert_allclose(out[0], naive_conv(x, w, b, spec.stride, spec.padding), atol=1e-12)
    ndx, ndw, ndb = naive_conv_backward(x, w, spec.stride, spec.padding, lesson.delta_array()[0])
    conv = model.layers[0]
    np.testing.assert_allclose(dx[0], ndx, atol=1e-12)
    np.testing.assert_allclose(conv.grads["weight"], ndw, atol=1e-12)
    np.testing.assert_allclose(conv.grads["bias"], ndb, atol=1e-12)
    SGD(model.parameters(), lr=lesson.lr).step()
    np.testing.assert_allclose(conv.params["weight"], w - 0.001 * ndw, atol=1e-12)
    np.testing.assert_allclose(conv.params["bias"], b - 0.001 * ndb, atol=1e-12)
    assert out.shape == (1, 2, 3, 3)


def test_lessons_are_independent_copies():
    a, b = LESSONS["ex1"].build(), LESSONS["ex1"].build()
    a.layers[0].params["weight"][...] = 0
    assert b.layers[0].params["weight"].any()
