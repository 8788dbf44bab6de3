"""How close two float results must be when they may come from different
BLAS kernels, memory layouts or thread counts.

Exact equality is right only for (a) a stored object or a copy of it, (b) the
same operations on the same arrays in the same layout, in one process, and
(c) values that are exact in floating point (small integers, sums of them).
A matrix product computed twice in different layouts may round differently:
OpenBLAS's AVX-512 kernels gave 218 of 240 Linear outputs that differ by up
to 7.6e-6 between a contiguous array and a strided view of the same values.

The bound: a dot product of n terms computed in any order, with or without
fused multiply-adds, is within gamma_n * sum_i |a_i b_i| of the exact value,
gamma_n = n u / (1 - n u), u = eps / 2 (Higham, Accuracy and Stability of
Numerical Algorithms, 3.1). Two such results are therefore within
2 gamma_n * sum_i |a_i b_i| of each other; the sum of magnitudes is the
layer applied to |x| with |W| and |b|, which this module computes.
"""

import copy

import numpy as np


def gamma(n: int, dtype) -> float:
    u = np.finfo(dtype).eps / 2
    return n * u / (1 - n * u)


def magnitude_sums(layer, x):
    """sum_i |w_i x_i| (+ |b|) for every output of ``layer`` on ``x``: the
    layer, with every parameter replaced by its absolute value, on |x|."""
    absolute = copy.deepcopy(layer)
    for v in absolute.params.values():
        np.abs(v, out=v)
    return absolute.forward(np.abs(x))


def fan_in(layer) -> int:
    """Terms per output of a weighted layer (Conv2D: C_in kh kw; Linear: in)."""
    w = layer.params["weight"]
    return int(np.prod(w.shape[1:]))


def assert_same_sums(actual, expected, layer, x):
    """``actual`` and ``expected`` are ``layer`` on ``x`` computed two ways
    (other layout, kernel or thread count): equal within 2 gamma_n times the
    magnitude of the sums (+1 term for the bias), elementwise."""
    bound = 2 * gamma(fan_in(layer) + 1, actual.dtype) * magnitude_sums(layer, x)
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    worst = np.argmax(err - bound)
    assert np.all(err <= bound), (
        f"{layer.name}: |difference| {err.flat[worst]:.3g} exceeds the rounding bound "
        f"{bound.flat[worst]:.3g} at flat index {worst}")
