"""Naive loop references for the engine's ops, written from the definitions
in CNN-NOTES.md and independently of ``cnnviz.engine`` (which this module
never imports). Slow on purpose: every sum is an explicit loop, so each one
can be read against the formula. All results are float64.

Conventions (as PyTorch): NCHW, weights (C_out, C_in, kh, kw), convolution
is cross-correlation, pooling has no padding and ties go to the first
maximum in row-major window order.
"""

import math

import numpy as np


def as_pair(v):
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# --------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------

def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """out[n,o,y,x] = b[o] + sum_{c,i,j} x[n, c, y*sh + i*dh - ph, x*sw + j*dw - pw] * w[o,c,i,j]
    (terms outside the input are the zero padding)."""
    sh, sw = as_pair(stride)
    ph, pw = as_pair(padding)
    dh, dw = as_pair(dilation)
    N, C, H, W = x.shape
    O, C2, KH, KW = w.shape
    assert C == C2
    Ho, Wo = out_size(H, KH, sh, ph, dh), out_size(W, KW, sw, pw, dw)
    out = np.zeros((N, O, Ho, Wo))
    for n in range(N):
        for o in range(O):
            for y in range(Ho):
                for xx in range(Wo):
                    acc = 0.0 if b is None else float(b[o])
                    for c in range(C):
                        for i in range(KH):
                            r = y * sh + i * dh - ph
                            if r < 0 or r >= H:
                                continue
                            for j in range(KW):
                                q = xx * sw + j * dw - pw
                                if 0 <= q < W:
                                    acc += float(x[n, c, r, q]) * float(w[o, c, i, j])
                    out[n, o, y, xx] = acc
    return out


def conv2d_backward(g, x, w, stride=1, padding=0, dilation=1):
    """By the definition: every product x[n,c,r,q]*w[o,c,i,j] that went into
    out[n,o,y,x] sends g[n,o,y,x]*w[o,c,i,j] to dx[n,c,r,q] and
    g[n,o,y,x]*x[n,c,r,q] to dw[o,c,i,j]; db[o] = sum of g over n, y, x."""
    sh, sw = as_pair(stride)
    ph, pw = as_pair(padding)
    dh, dw_ = as_pair(dilation)
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    _, _, Ho, Wo = g.shape
    dx = np.zeros(x.shape)
    dw = np.zeros(w.shape)
    db = np.zeros(O)
    for n in range(N):
        for o in range(O):
            for y in range(Ho):
                for xx in range(Wo):
                    gv = float(g[n, o, y, xx])
                    db[o] += gv
                    for c in range(C):
                        for i in range(KH):
                            r = y * sh + i * dh - ph
                            if r < 0 or r >= H:
                                continue
                            for j in range(KW):
                                q = xx * sw + j * dw_ - pw
                                if 0 <= q < W:
                                    dx[n, c, r, q] += gv * float(w[o, c, i, j])
                                    dw[o, c, i, j] += gv * float(x[n, c, r, q])
    return dx, dw, db


# --------------------------------------------------------------------------
# pooling: explicit windows
# --------------------------------------------------------------------------

def _pool_geom(shape, kernel_size, stride):
    kh, kw = as_pair(kernel_size)
    sh, sw = (kh, kw) if stride is None else as_pair(stride)
    N, C, H, W = shape
    return kh, kw, sh, sw, (H - kh) // sh + 1, (W - kw) // sw + 1


def max_pool2d(x, kernel_size, stride=None):
    """Returns (out, winners); winners[n, c, y, x] = (row, col) in x of the
    first maximum (row-major scan, strict >) of that window."""
    kh, kw, sh, sw, Ho, Wo = _pool_geom(x.shape, kernel_size, stride)
    N, C = x.shape[:2]
    out = np.zeros((N, C, Ho, Wo))
    winners = {}
    for n in range(N):
        for c in range(C):
            for y in range(Ho):
                for xx in range(Wo):
                    best, pos = None, None
                    for i in range(kh):
                        for j in range(kw):
                            v = float(x[n, c, y * sh + i, xx * sw + j])
                            if best is None or v > best:
                                best, pos = v, (y * sh + i, xx * sw + j)
                    out[n, c, y, xx] = best
                    winners[n, c, y, xx] = pos
    return out, winners


def max_pool2d_backward(g, x, kernel_size, stride=None):
    _, winners = max_pool2d(x, kernel_size, stride)
    dx = np.zeros(x.shape)
    for (n, c, y, xx), (r, q) in winners.items():
        dx[n, c, r, q] += float(g[n, c, y, xx])
    return dx


def avg_pool2d(x, kernel_size, stride=None):
    kh, kw, sh, sw, Ho, Wo = _pool_geom(x.shape, kernel_size, stride)
    N, C = x.shape[:2]
    out = np.zeros((N, C, Ho, Wo))
    for n in range(N):
        for c in range(C):
            for y in range(Ho):
                for xx in range(Wo):
                    vals = [float(x[n, c, y * sh + i, xx * sw + j])
                            for i in range(kh) for j in range(kw)]
                    out[n, c, y, xx] = math.fsum(vals) / (kh * kw)
    return out


def avg_pool2d_backward(g, x_shape, kernel_size, stride=None):
    kh, kw, sh, sw, Ho, Wo = _pool_geom(x_shape, kernel_size, stride)
    N, C = x_shape[:2]
    dx = np.zeros(x_shape)
    for n in range(N):
        for c in range(C):
            for y in range(Ho):
                for xx in range(Wo):
                    share = float(g[n, c, y, xx]) / (kh * kw)
                    for i in range(kh):
                        for j in range(kw):
                            dx[n, c, y * sh + i, xx * sw + j] += share
    return dx


# --------------------------------------------------------------------------
# elementwise, linear, loss
# --------------------------------------------------------------------------

def _map(f, x):
    x = np.asarray(x, dtype=np.float64)
    return np.array([f(v) for v in x.ravel()]).reshape(x.shape)


def relu(x):
    return _map(lambda v: v if v > 0 else 0.0, x)


def relu_grad(x):
    return _map(lambda v: 1.0 if v > 0 else 0.0, x)


def leaky_relu(x, slope):
    return _map(lambda v: v if v > 0 else slope * v, x)


def leaky_relu_grad(x, slope):
    return _map(lambda v: 1.0 if v > 0 else slope, x)


def _sigmoid1(v):
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def sigmoid(x):
    return _map(_sigmoid1, x)


def sigmoid_grad(x):
    return _map(lambda v: _sigmoid1(v) * (1.0 - _sigmoid1(v)), x)


def tanh(x):
    return _map(math.tanh, x)


def tanh_grad(x):
    return _map(lambda v: 1.0 - math.tanh(v) ** 2, x)


def linear(x, w, b=None):
    """y[n, o] = sum_i x[n, i] * w[o, i] + b[o]."""
    N, I = x.shape
    O = w.shape[0]
    y = np.zeros((N, O))
    for n in range(N):
        for o in range(O):
            y[n, o] = math.fsum(float(x[n, i]) * float(w[o, i]) for i in range(I)) + \
                (0.0 if b is None else float(b[o]))
    return y


def linear_backward(g, x, w):
    N, I = x.shape
    O = w.shape[0]
    dx, dw, db = np.zeros(x.shape), np.zeros(w.shape), np.zeros(O)
    for n in range(N):
        for o in range(O):
            db[o] += g[n, o]
            for i in range(I):
                dx[n, i] += g[n, o] * w[o, i]
                dw[o, i] += g[n, o] * x[n, i]
    return dx, dw, db


def softmax_cross_entropy(z, labels):
    """Mean over the batch of -log softmax(z)[label], row by row with the
    row max subtracted; gradient (softmax - onehot) / N."""
    N, K = z.shape
    losses, grad = [], np.zeros((N, K))
    for n in range(N):
        row = [float(v) for v in z[n]]
        m = max(row)
        exps = [math.exp(v - m) for v in row]
        total = math.fsum(exps)
        losses.append(-(row[labels[n]] - m - math.log(total)))
        for k in range(K):
            grad[n, k] = (exps[k] / total - (1.0 if k == labels[n] else 0.0)) / N
    return math.fsum(losses) / N, grad


# --------------------------------------------------------------------------
# the layers of issue 14: padding, subsampling, sparse convolution,
# batch normalisation, dropout, global average pooling
# --------------------------------------------------------------------------

def zero_pad(x, padding):
    ph, pw = as_pair(padding)
    N, C, H, W = x.shape
    out = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    for n in range(N):
        for c in range(C):
            for r in range(H):
                for q in range(W):
                    out[n, c, r + ph, q + pw] = float(x[n, c, r, q])
    return out


def subsampling(x, weight, bias, kernel_size, stride=None):
    """LeNet-5's S layers: out[n,c,y,x] = weight[c] * (sum of the window) + bias[c]."""
    kh, kw, sh, sw, Ho, Wo = _pool_geom(x.shape, kernel_size, stride)
    N, C = x.shape[:2]
    out = np.zeros((N, C, Ho, Wo))
    for n in range(N):
        for c in range(C):
            for y in range(Ho):
                for xx in range(Wo):
                    total = math.fsum(float(x[n, c, y * sh + i, xx * sw + j])
                                      for i in range(kh) for j in range(kw))
                    out[n, c, y, xx] = float(weight[c]) * total + float(bias[c])
    return out


def sparse_conv2d(x, w, b, connections, stride=1, padding=0):
    """A convolution in which output map o sums over the input maps
    ``connections[o]`` only (the other weights are never read)."""
    sh, sw = as_pair(stride)
    ph, pw = as_pair(padding)
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    Ho, Wo = out_size(H, KH, sh, ph, 1), out_size(W, KW, sw, pw, 1)
    out = np.zeros((N, O, Ho, Wo))
    for n in range(N):
        for o in range(O):
            for y in range(Ho):
                for xx in range(Wo):
                    acc = 0.0 if b is None else float(b[o])
                    for c in connections[o]:
                        for i in range(KH):
                            for j in range(KW):
                                r, q = y * sh + i - ph, xx * sw + j - pw
                                if 0 <= r < H and 0 <= q < W:
                                    acc += float(x[n, c, r, q]) * float(w[o, c, i, j])
                    out[n, o, y, xx] = acc
    return out


def channel_stats(x):
    """Per channel over (N, H, W): mean, biased variance, unbiased variance."""
    N, C, H, W = x.shape
    mean, var, unbiased = np.zeros(C), np.zeros(C), np.zeros(C)
    for c in range(C):
        vals = [float(x[n, c, r, q]) for n in range(N) for r in range(H) for q in range(W)]
        m = math.fsum(vals) / len(vals)
        ss = math.fsum((v - m) ** 2 for v in vals)
        mean[c], var[c], unbiased[c] = m, ss / len(vals), ss / (len(vals) - 1)
    return mean, var, unbiased


def batch_norm2d(x, gamma, beta, mean, var, eps):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, channel by channel."""
    N, C, H, W = x.shape
    out = np.zeros(x.shape)
    for n in range(N):
        for c in range(C):
            for r in range(H):
                for q in range(W):
                    out[n, c, r, q] = (float(gamma[c]) * (float(x[n, c, r, q]) - mean[c])
                                       / math.sqrt(var[c] + eps) + float(beta[c]))
    return out


def dropout(x, keep, p):
    """Inverted dropout with a given keep mask: x / (1 - p) where kept, else 0."""
    vals = [float(v) / (1 - p) if k else 0.0 for v, k in zip(np.ravel(x), np.ravel(keep))]
    return np.array(vals).reshape(np.shape(x))


def global_avg_pool(x):
    N, C, H, W = x.shape
    out = np.zeros((N, C))
    for n in range(N):
        for c in range(C):
            out[n, c] = math.fsum(float(x[n, c, r, q]) for r in range(H) for q in range(W)) / (H * W)
    return out
