"""Layers: stateful wrappers of the functional ops.

Each layer has ``forward(x)``, ``backward(grad_out) -> grad_in``, ``params``
and ``grads`` (dicts with the same keys), and keeps its last input and output
for the views that show them. ``backward`` only computes gradients; an
optimizer applies them, so gradients can be shown before anything changes.

Every layer also answers, for a given input shape, its output shape,
parameter count and multiply-add count: the one source of truth for shapes.
"""

from __future__ import annotations

import math

import numpy as np

from . import functional as F

DEFAULT_DTYPE = np.float32


class Layer:
    """Base class. Subclasses set ``kind`` (used for default names) and
    override forward/backward/output_shape; parametric ones fill params."""

    kind = "layer"

    def __init__(self):
        self.name = ""            # set by Sequential (conv1, relu1, ...)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.last_input = None
        self.last_output = None

    # --- computation -----------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_out, need_input_grad=True):
        raise NotImplementedError

    def infer(self, x, overwrite=False):
        """The output for x, keeping nothing (no last input/output, no
        cache for backward): inference. ``overwrite=True`` lets the layer
        reuse x's memory, for inputs nobody else holds."""
        raise NotImplementedError

    # an elementwise, non-decreasing activation commutes with max pooling
    # (max(f(a), f(b)) = f(max(a, b))), so inference and the training step
    # (Sequential.predict, Sequential.train_forward) may pool first
    commutes_with_max_pool = False

    def __call__(self, x):
        return self.forward(x)

    # --- description -----------------------------------------------------
    def output_shape(self, input_shape):
        return tuple(input_shape)

    def macs(self, input_shape) -> int:
        """Multiply-adds of one forward pass on ``input_shape`` (batch included)."""
        return 0

    @property
    def num_params(self) -> int:
        return sum(int(p.size) for p in self.params.values())

    def config(self) -> dict:
        """Constructor arguments; ``type(self)(**config())`` rebuilds it."""
        return {}

    def astype(self, dtype):
        """Convert parameters in place (float64 for gradient checks)."""
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)
        self.grads = {}
        return self

    def zero_grads(self):
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def _uniform(rng, bound, shape, dtype):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _as_rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class Conv2D(Layer):
    """2-D convolution (cross-correlation). Weights (C_out, C_in, kh, kw),
    He-uniform initialised (suits ReLU networks); bias zero."""

    kind = "conv"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, seed=None, dtype=DEFAULT_DTYPE):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = F.pair(stride, "stride")
        self.padding = F.pair(padding, "padding")
        self.dilation = F.pair(dilation, "dilation")
        self.bias = bool(bias)
        rng = _as_rng(seed)
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.params["weight"] = _uniform(rng, math.sqrt(6 / fan_in), shape, dtype)
        if self.bias:
            self.params["bias"] = np.zeros(self.out_channels, dtype=dtype)
        self._cache = None
        # the forward pass's work buffers (im2col, padding), reused by the
        # next one: the cache of the last forward refers to them
        self._scratch = F.Scratch()

    def forward(self, x):
        self.last_input = x
        out, self._cache = F.conv2d_forward(x, self.params["weight"], self.params.get("bias"),
                                            self.stride, self.padding, self.dilation,
                                            self._scratch)
        self.last_output = out
        return out

    def infer(self, x, overwrite=False):
        return F.conv2d(x, self.params["weight"], self.params.get("bias"),
                        self.stride, self.padding, self.dilation)

    def backward(self, grad_out, need_input_grad=True):
        dx, dw, db = F.conv2d_backward(grad_out, self._cache, need_input_grad)
        self.grads["weight"] = dw
        if self.bias:
            self.grads["bias"] = db
        return dx

    def output_shape(self, input_shape):
        return F.conv2d_output_shape(input_shape, self.params["weight"].shape,
                                     self.stride, self.padding, self.dilation)

    def macs(self, input_shape):
        n, c, h, w = self.output_shape(input_shape)
        return n * c * h * w * self.in_channels * self.kernel_size[0] * self.kernel_size[1]

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "dilation": list(self.dilation),
                "bias": self.bias}


class Linear(Layer):
    """y = x W^T + b with W (out, in) as in PyTorch; bias zero.

    ``init`` picks the weights' uniform bound: "he" sqrt(6/fan_in), for a
    layer a ReLU follows; "fan_in" 1/sqrt(fan_in) (PyTorch's default), for
    a classifier whose outputs go straight to the softmax: with He's bound
    its initial scores are so spread out that LeNet-5's first loss is 5.4,
    not about ln(10) = 2.3 (3.1 with this bound; 1,000 test images, seed 0)."""

    kind = "fc"
    INIT_BOUNDS = {"he": lambda fan_in: math.sqrt(6 / fan_in),
                   "fan_in": lambda fan_in: 1 / math.sqrt(fan_in)}

    def __init__(self, in_features, out_features, bias=True, seed=None, dtype=DEFAULT_DTYPE,
                 init="he"):
        super().__init__()
        self.in_features, self.out_features, self.bias = int(in_features), int(out_features), bool(bias)
        if init not in self.INIT_BOUNDS:
            raise ValueError(f"init must be one of {sorted(self.INIT_BOUNDS)}, got {init!r}")
        rng = _as_rng(seed)
        self.params["weight"] = _uniform(rng, self.INIT_BOUNDS[init](self.in_features),
                                         (self.out_features, self.in_features), dtype)
        if self.bias:
            self.params["bias"] = np.zeros(self.out_features, dtype=dtype)

    def forward(self, x):
        self.last_input = x
        self.last_output = self.infer(x)
        return self.last_output

    def infer(self, x, overwrite=False):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self.name or 'Linear'} expects (N, {self.in_features}) input, "
                             f"got {tuple(x.shape)}")
        return F.linear(x, self.params["weight"], self.params.get("bias"))

    def backward(self, grad_out, need_input_grad=True):
        dx, dw, db = F.linear_backward(grad_out, self.last_input, self.params["weight"],
                                       need_input_grad)
        self.grads["weight"] = dw
        if self.bias:
            self.grads["bias"] = db
        return dx

    def output_shape(self, input_shape):
        if len(input_shape) != 2 or input_shape[1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) cannot take "
                             f"input of shape {tuple(input_shape)}")
        return (input_shape[0], self.out_features)

    def macs(self, input_shape):
        return input_shape[0] * self.in_features * self.out_features

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias}


class _Pool(Layer):
    kind = "pool"
    _forward = _backward = _infer = None

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else F.pair(stride, "stride")
        self._cache = None

    def forward(self, x):
        self.last_input = x
        self.last_output, self._cache = type(self)._forward(x, self.kernel_size, self.stride)
        return self.last_output

    def infer(self, x, overwrite=False):
        return type(self)._infer(x, self.kernel_size, self.stride)

    def backward(self, grad_out, need_input_grad=True):
        return type(self)._backward(grad_out, self._cache)

    def output_shape(self, input_shape):
        return F.pool2d_output_shape(input_shape, self.kernel_size, self.stride)

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}


class MaxPool2D(_Pool):
    _forward = staticmethod(F.max_pool2d_forward)
    _backward = staticmethod(F.max_pool2d_backward)
    _infer = staticmethod(F.max_pool2d)

    @property
    def argmax(self):
        """Winner index (i*kw + j) per window of the last forward pass."""
        return None if self._cache is None else F.max_pool2d_argmax(self._cache)


class AvgPool2D(_Pool):
    _forward = staticmethod(F.avg_pool2d_forward)
    _backward = staticmethod(F.avg_pool2d_backward)
    _infer = staticmethod(F.avg_pool2d)


class ReLU(Layer):
    kind = "relu"
    commutes_with_max_pool = True

    def forward(self, x):
        self.last_input = x
        self.last_output = F.relu(x)
        return self.last_output

    def infer(self, x, overwrite=False):
        return np.maximum(x, 0, out=x) if overwrite else F.relu(x)

    def backward(self, grad_out, need_input_grad=True):
        return F.relu_backward(grad_out, self.last_input)


class LeakyReLU(Layer):
    kind = "lrelu"

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    @property
    def commutes_with_max_pool(self):
        return self.negative_slope >= 0

    def forward(self, x):
        self.last_input = x
        self.last_output = F.leaky_relu(x, self.negative_slope)
        return self.last_output

    def infer(self, x, overwrite=False):
        return F.leaky_relu(x, self.negative_slope)

    def backward(self, grad_out, need_input_grad=True):
        return F.leaky_relu_backward(grad_out, self.last_input, self.negative_slope)

    def config(self):
        return {"negative_slope": self.negative_slope}


class Sigmoid(Layer):
    kind = "sigmoid"
    commutes_with_max_pool = True

    def forward(self, x):
        self.last_input = x
        self.last_output = F.sigmoid(x)
        return self.last_output

    def infer(self, x, overwrite=False):
        return F.sigmoid(x)

    def backward(self, grad_out, need_input_grad=True):
        return F.sigmoid_backward(grad_out, self.last_output)


class Tanh(Layer):
    kind = "tanh"
    commutes_with_max_pool = True

    def forward(self, x):
        self.last_input = x
        self.last_output = F.tanh(x)
        return self.last_output

    def infer(self, x, overwrite=False):
        return np.tanh(x, out=x) if overwrite else F.tanh(x)

    def backward(self, grad_out, need_input_grad=True):
        return F.tanh_backward(grad_out, self.last_output)


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), in C, H, W order as PyTorch's flatten."""

    kind = "flatten"

    def forward(self, x):
        self.last_input = x
        self.last_output = self.infer(x)
        return self.last_output

    def infer(self, x, overwrite=False):
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out, need_input_grad=True):
        # same memory layout as the input (batch-innermost after a conv
        # stack), so the pooling backward below runs on matching strides
        grad_in = np.empty_like(self.last_input, dtype=grad_out.dtype)
        grad_in[...] = grad_out.reshape(self.last_input.shape)
        return grad_in

    def output_shape(self, input_shape):
        return (input_shape[0], int(np.prod(input_shape[1:])))


class Normalize(Layer):
    """(x - mean) / std: lets a model take raw [0, 1] images."""

    kind = "norm"

    def __init__(self, mean=0.0, std=1.0):
        super().__init__()
        self.mean, self.std = float(mean), float(std)

    def forward(self, x):
        self.last_input = x
        self.last_output = self.infer(x)
        return self.last_output

    def infer(self, x, overwrite=False):
        return (x - np.asarray(self.mean, x.dtype)) * np.asarray(1 / self.std, x.dtype)

    def backward(self, grad_out, need_input_grad=True):
        return grad_out * np.asarray(1 / self.std, grad_out.dtype)

    def config(self):
        return {"mean": self.mean, "std": self.std}


LAYER_TYPES = {cls.__name__: cls for cls in
               (Conv2D, Linear, MaxPool2D, AvgPool2D, ReLU, LeakyReLU, Sigmoid, Tanh,
                Flatten, Normalize)}
