"""Sequential model: traced forward and backward passes, a trace-free
training step, and inference."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .layers import Layer, MaxPool2D


@lru_cache(maxsize=None)
def _owner(cls, attribute: str) -> type:
    """The class in ``cls``'s MRO that defines ``attribute`` (Layer if none)."""
    return next((c for c in cls.__mro__ if attribute in c.__dict__), Layer)


def _infer_matches_forward(layer: Layer) -> bool:
    """Whether ``infer`` is defined at least as far down the class tree as
    ``forward``: a subclass that overrides forward alone must not be run
    through the inherited infer (nor moved past a pooling)."""
    cls = type(layer)
    return issubclass(_owner(cls, "infer"), _owner(cls, "forward"))


def _may_run_after_max_pool(layer: Layer) -> bool:
    """An activation whose forward and backward are those of the class that
    declared it commutes with max pooling (a subclass changing either must
    keep its place)."""
    cls = type(layer)
    declared = _owner(cls, "commutes_with_max_pool")
    return (bool(layer.commutes_with_max_pool) and issubclass(declared, _owner(cls, "forward"))
            and issubclass(declared, _owner(cls, "backward")))


def _is_plain_max_pool(layer: Layer) -> bool:
    """A MaxPool2D whose passes no subclass has changed."""
    cls = type(layer)
    return isinstance(layer, MaxPool2D) and all(
        issubclass(MaxPool2D, _owner(cls, a)) for a in ("forward", "backward", "_forward", "_backward"))


@dataclass
class LayerTrace:
    """What one layer saw in the last pass. Arrays are the engine's own
    (not copies): read them, copy before keeping them across passes."""

    name: str
    layer: Layer
    input: np.ndarray | None = None
    output: np.ndarray | None = None
    grad_output: np.ndarray | None = None   # δ = dL/d(output)
    grad_input: np.ndarray | None = None    # dL/d(input); None when skipped


def layer_names(layers) -> list[str]:
    """The names Sequential gives: a layer's own, else its kind and count
    (conv1, relu1, pool1, conv2, ...)."""
    counts, names = Counter(), []
    for layer in layers:
        if layer.name:
            names.append(layer.name)
        else:
            counts[layer.kind] += 1
            names.append(f"{layer.kind}{counts[layer.kind]}")
    return names


@dataclass(frozen=True)
class Param:
    """A named handle on one parameter: ``value`` and ``grad`` always read
    the layer's current arrays, so optimizers update them in place."""

    name: str
    layer: Layer
    key: str

    @property
    def value(self) -> np.ndarray:
        return self.layer.params[self.key]

    @property
    def grad(self) -> np.ndarray | None:
        return self.layer.grads.get(self.key)


@dataclass(frozen=True)
class Buffer:
    """A named handle on one buffer (``layer.buffers[key]``), as Param."""

    name: str
    layer: Layer
    key: str

    @property
    def value(self) -> np.ndarray:
        return self.layer.buffers[self.key]


class Sequential:
    """Layers applied in order. Unnamed layers are named by kind and count
    (conv1, relu1, pool1, conv2, ...)."""

    def __init__(self, *layers: Layer):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.layers: list[Layer] = list(layers)
        names = set()
        for layer, name in zip(self.layers, layer_names(self.layers)):
            layer.name = name
            if layer.name in names:
                raise ValueError(f"two layers are named {layer.name!r}")
            names.add(layer.name)
        self.trace: list[LayerTrace] = [LayerTrace(l.name, l) for l in self.layers]

    # --- mode ------------------------------------------------------------
    def train(self, mode: bool = True) -> "Sequential":
        """Training mode (the default): Dropout drops, BatchNorm2d uses and
        updates batch statistics. ``predict`` is always evaluation."""
        for layer in self.layers:
            layer.training = bool(mode)
        return self

    def eval(self) -> "Sequential":
        """Evaluation mode: Dropout is the identity, BatchNorm2d uses its
        running statistics (``forward`` then computes what ``predict`` does)."""
        return self.train(False)

    @property
    def training(self) -> bool:
        return all(getattr(layer, "training", True) for layer in self.layers)

    # --- passes ----------------------------------------------------------
    def forward(self, x):
        for layer, t in zip(self.layers, self.trace):
            t.input = x
            x = layer.forward(x)
            t.output = x
            t.grad_output = t.grad_input = None
        return x

    __call__ = forward

    def backward(self, grad_out, need_input_grad=True):
        """Back-propagate dL/d(output) through every layer, filling the
        trace and each layer's ``grads``. With ``need_input_grad=False``
        (training) the layers before the first parametric one are skipped
        and that one computes no input gradient: nothing would read it.
        Returns dL/d(input), or None when skipped."""
        stop = 0 if need_input_grad else self.first_param_index()
        g = grad_out
        for i in range(len(self.layers) - 1, stop - 1, -1):
            t = self.trace[i]
            t.grad_output = g
            g = self.layers[i].backward(g, need_input_grad=need_input_grad or i > stop)
            t.grad_input = g
        return g if stop == 0 and need_input_grad else None

    def train_forward(self, x):
        """The forward pass of a training step: the same output as
        ``forward`` and, through ``train_backward``, the same gradients, but
        no trace (it is cleared), and a monotonic activation directly before
        a max pooling runs after it, on a quarter of the values:
        max(f(a), f(b)) = f(max(a, b)), and the gradient takes the same path
        (to the window's maximum, times f' there)."""
        for t in self.trace:
            t.input = t.output = t.grad_output = t.grad_input = None
        order = self._training_order()
        for i in order:
            x = self.layers[i].forward(x)
        self._train_order = order
        return x

    def train_backward(self, grad_out) -> None:
        """Fill every parametric layer's ``grads`` for the last
        ``train_forward``, as ``backward(grad_out, need_input_grad=False)``."""
        order = getattr(self, "_train_order", None)
        if order is None:
            raise RuntimeError("train_backward needs a train_forward first")
        first = self.first_param_index()
        g = grad_out
        for i in reversed(order):
            if i == first:
                self.layers[i].backward(g, need_input_grad=False)
                break
            g = self.layers[i].backward(g, need_input_grad=True)
        self._train_order = None

    def _training_order(self) -> list[int]:
        order = list(range(len(self.layers)))
        for k in range(len(order) - 1):
            first, second = self.layers[order[k]], self.layers[order[k + 1]]
            if _may_run_after_max_pool(first) and _is_plain_max_pool(second):
                order[k], order[k + 1] = order[k + 1], order[k]
        return order

    def predict(self, x, batch_size=1000):
        """The model's output for x without touching the trace or any
        layer's state: inference, and safe beside a traced pass. Runs
        ``batch_size`` samples at a time so memory stays bounded; reuses
        its own intermediate buffers in place, and pools before a monotonic
        activation (fewer values to activate, the same result)."""
        if len(x) <= batch_size:
            return self._predict_batch(x)
        return np.concatenate([self._predict_batch(x[i:i + batch_size])
                               for i in range(0, len(x), batch_size)])

    def _predict_batch(self, x):
        given = x
        for layer in self._inference_order():
            if not _infer_matches_forward(layer):
                x = layer.forward(x)      # a subclass that changed forward only
                continue
            # never overwrite the caller's array (Flatten first returns a view of it)
            x = layer.infer(x, overwrite=x is not given and not np.may_share_memory(x, given))
        return x

    def _inference_order(self):
        layers = list(self.layers)
        for i in range(len(layers) - 1):
            first, second = layers[i], layers[i + 1]
            if (first.commutes_with_max_pool and isinstance(second, MaxPool2D)
                    and _infer_matches_forward(first) and _infer_matches_forward(second)):
                layers[i], layers[i + 1] = second, first
        return layers

    def forward_layer(self, i, x):
        """Run layer i alone on x, recording it in the trace (the stepper)."""
        t = self.trace[i]
        t.input = x
        t.output = self.layers[i].forward(x)
        t.grad_output = t.grad_input = None
        return t.output

    def backward_layer(self, i, grad_out, need_input_grad=True):
        """Back-propagate through layer i alone (the stepper)."""
        t = self.trace[i]
        t.grad_output = grad_out
        t.grad_input = self.layers[i].backward(grad_out, need_input_grad=need_input_grad)
        return t.grad_input

    def first_param_index(self) -> int:
        for i, layer in enumerate(self.layers):
            if layer.params:
                return i
        return len(self.layers)

    # --- parameters ------------------------------------------------------
    def parameters(self) -> list[Param]:
        return [Param(f"{l.name}.{k}", l, k) for l in self.layers for k in l.params]

    def buffers(self) -> list[Buffer]:
        """State that is not trained but saved (BatchNorm2d's running statistics)."""
        return [Buffer(f"{l.name}.{k}", l, k) for l in self.layers
                for k in getattr(l, "buffers", {})]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, by ``layer.key`` name."""
        return {p.name: p.value.copy() for p in [*self.parameters(), *self.buffers()]}

    def load_state_dict(self, state: dict[str, np.ndarray]):
        """Copy values in place (shapes must match exactly)."""
        params = {p.name: p for p in [*self.parameters(), *self.buffers()]}
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise ValueError(f"state does not fit the model: missing {missing}, "
                             f"unexpected {unexpected}")
        for name, p in params.items():
            v = np.asarray(state[name])
            if v.shape != p.value.shape:
                raise ValueError(f"{name}: expected shape {p.value.shape}, got {v.shape}")
            p.value[...] = v

    def zero_grads(self):
        for layer in self.layers:
            layer.zero_grads()

    def astype(self, dtype):
        for layer in self.layers:
            layer.astype(dtype)
        return self

    @property
    def num_params(self) -> int:
        return sum(l.num_params for l in self.layers)

    @property
    def dtype(self):
        params = self.parameters()
        return params[0].value.dtype if params else np.dtype(np.float32)

    def __getitem__(self, key):
        if isinstance(key, str):
            for layer in self.layers:
                if layer.name == key:
                    return layer
            raise KeyError(key)
        return self.layers[key]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = "\n".join(f"  ({l.name}): {l!r}" for l in self.layers)
        return f"Sequential(\n{inner}\n)"
