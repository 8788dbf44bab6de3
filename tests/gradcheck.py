"""Centered finite differences in float64, and a relative error."""

import numpy as np


def numerical_grad(f, x, eps=1e-6):
    """d f() / d x by centered differences, perturbing ``x`` in place (it is
    restored). ``f`` takes no arguments and returns a scalar; ``x`` must be
    a float64 array that ``f`` reads."""
    assert x.dtype == np.float64, "finite differences need float64"
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    assert np.shares_memory(flat, x)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def rel_error(a, b):
    """||a - b|| / max(||a|| + ||b||, tiny): 0 when equal, ~1 when unrelated."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / max(denom, 1e-300)) if denom else 0.0


def assert_grad_close(analytic, f, x, tol=1e-7, eps=1e-6, what="gradient"):
    num = numerical_grad(f, x, eps)
    err = rel_error(analytic, num)
    assert err < tol, f"{what}: relative error {err:.3e} (tol {tol:.0e})\nmine:\n{analytic}\nnumeric:\n{num}"
    return err
