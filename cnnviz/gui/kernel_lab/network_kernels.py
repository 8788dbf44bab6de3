"""A trained network's first conv layer as the Kernel Lab's filter bank:
"Use the first layer of a network", from a model file (or checkpoint) or the
Training tab's current model.

``first_conv_kernels`` is plain data (no Qt): every filter's kernels, one per
input channel, its bias, and how the layer runs (stride, padding,
dilation), plus sentences on what differs between the lab and the network
(what the layers before the conv do to the picture). ``NetworkKernelsButton``
is the Filters group's button and its menu.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QMenu, QPushButton

from cnnviz.engine.layers import Conv2D, Normalize
from cnnviz.engine.padding import ZeroPad2D

MAX_NETWORK_FILTERS = 64         # a first layer wider than this is cut (said)


class NoKernels(ValueError):
    """The network cannot give the lab kernels; the message is shown as is."""


@dataclass
class NetworkKernels:
    weights: np.ndarray            # (F, C, kh, kw) float32, as the layer convolves
    bias: np.ndarray               # (F,)
    names: list[str]
    layer: str                     # "conv1"
    source: str                    # "lenet5.npz", "Model from Training at step 1,200"
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    notes: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return self.weights.shape[1]


def first_conv_kernels(model, source: str) -> NetworkKernels:
    """The first Conv2D (or SparseConv2D, its unconnected kernels zero) of
    ``model``, with what comes before it folded in where that is exact:

    - Normalize (x - m) / s: the conv then sees a*x + c (a = 1/s, c = -m/s),
      and conv(w, a*x + c) + b = conv(a*w, x) + (b + c*sum(w)): the lab's
      maps on the raw picture are the network's;
    - ZeroPad2D: added to the lab's padding (exact when it pads the raw
      picture, before any Normalize; after one, the network pads with
      normalised zeros and the lab with raw ones: the border differs, said).
    Any other layer before the conv is left out, and said."""
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Conv2D):
            break
    else:
        raise NoKernels(f"{source} has no conv layer: no kernels to run on the photo")
    masked = getattr(layer, "_weight", None)
    w = np.array(masked() if callable(masked) else layer.params["weight"], np.float64)
    bias = np.array(layer.params.get("bias", np.zeros(w.shape[0])), np.float64)
    a, c = 1.0, 0.0                     # the conv sees a*x + c of the raw picture
    pad = np.array(layer.padding)
    notes, inexact_border = [], layer.padding != (0, 0)
    for before in model.layers[:i]:
        if isinstance(before, Normalize):
            a, c = a / before.std, (c - before.mean) / before.std
            notes.append(f"{before.name}'s (x - {before.mean:g}) / {before.std:g} is folded into "
                         f"the kernels and biases (w / {before.std:g}, b - {before.mean:g} / "
                         f"{before.std:g} * sum(w)): the maps are {layer.name}'s as the network "
                         f"computes them")
        elif isinstance(before, ZeroPad2D):
            pad += before.padding
            inexact_border = inexact_border or (a, c) != (1.0, 0.0)
        elif before.params or not _is_identity_like(before):
            notes.append(f"{before.name} ({type(before).__name__}) runs before {layer.name} in "
                         f"the network; the lab leaves it out")
    if (a, c) != (1.0, 0.0):
        bias = bias + c * w.sum(axis=(1, 2, 3))
        w = w * a
        if inexact_border:
            notes.append(f"Within {int(pad.max())} pixel(s) of the border the maps differ: the "
                         f"network pads the normalised picture with 0, the lab the raw picture")
    if w.shape[0] > MAX_NETWORK_FILTERS:
        notes.append(f"{layer.name} has {w.shape[0]} filters: the first {MAX_NETWORK_FILTERS} "
                     f"are shown")
        w, bias = w[:MAX_NETWORK_FILTERS], bias[:MAX_NETWORK_FILTERS]
    names = [f"{layer.name}[{o}]" for o in range(w.shape[0])]
    return NetworkKernels(w.astype(np.float32), bias.astype(np.float32), names, layer.name,
                          source, tuple(layer.stride), tuple(int(p) for p in pad),
                          tuple(layer.dilation), notes)


def _is_identity_like(layer) -> bool:
    """Layers that do not change a picture's values before a first conv."""
    return type(layer).__name__ in ("Dropout",)


def kernels_from_file(path) -> NetworkKernels:
    from pathlib import Path

    from cnnviz.engine import ModelFileError, load

    try:
        model = load(path)
    except ModelFileError as e:
        raise NoKernels(str(e)) from None
    return first_conv_kernels(model, Path(path).name)


def for_picture(k: NetworkKernels, colour_picture: bool) -> tuple[np.ndarray, bool, str]:
    """(weights for the lab, use the picture as colour, what was done to fit).

    A grey network's kernels (1 channel) on a colour photo: the photo is used
    as grey (BT.601), as the network would see it. A colour network's kernels
    on a grey picture: feeding the grey picture in all three channels gives
    sum_c (grey * w_c) = grey * (w_R + w_G + w_B), so each filter's three
    kernels are summed into one: the same maps, exactly."""
    if k.channels == 1:
        note = (f"{k.layer} takes grey input: the photo is used as grey (BT.601 luma) to run its "
                f"kernels" if colour_picture else "")
        return k.weights, False, note
    if k.channels == 3 and not colour_picture:
        return (k.weights.sum(axis=1, keepdims=True), False,
                f"The picture is grey: fed in all three of {k.layer}'s channels, each filter's "
                f"R, G and B kernels act as their sum, which is shown")
    if k.channels != 3:
        raise NoKernels(f"{k.layer} takes {k.channels} input channels; the lab's pictures have "
                        f"1 (grey) or 3 (colour)")
    return k.weights, True, ""


class NetworkKernelsButton(QPushButton):
    """"Use a network's first layer": a model file or the Training tab's model."""

    chosen = pyqtSignal(object)         # NetworkKernels
    failed = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__("Use a network's first layer", parent)
        self.setToolTip("Put the trained kernels of a network's first conv layer in the bank "
                        "(every filter, every input channel) and run them on this picture")
        self._training = None           # () -> (model, title) or a sentence
        menu = QMenu(self)
        self.file_action = QAction("Model file or checkpoint (.npz)...", self)
        self.file_action.triggered.connect(self._ask_file)
        self.training_action = QAction("The Training tab's current model", self)
        self.training_action.triggered.connect(self.take_training_model)
        self.training_action.setEnabled(False)
        menu.addAction(self.file_action)
        menu.addAction(self.training_action)
        self.setMenu(menu)

    def set_training_source(self, take) -> None:
        self._training = take
        self.training_action.setEnabled(take is not None)

    def _ask_file(self) -> None:
        from cnnviz.gui.widgets.file_dialogs import ask_open_path

        path = ask_open_path(self, "Use the first layer of a network",
                             "cnnviz model or checkpoint (*.npz);;All files (*)")
        if path:
            self.use_file(path)

    def use_file(self, path) -> bool:
        try:
            kernels = kernels_from_file(path)
        except NoKernels as e:
            self.failed.emit(f"Cannot use this network's first layer: {e}")
            return False
        self.chosen.emit(kernels)
        return True

    def take_training_model(self) -> bool:
        got = self._training() if self._training else "No Training tab to take a model from."
        if isinstance(got, str):
            self.failed.emit(f"{got} Try again in a moment." if type(got).__name__ == "NotYet"
                             else got)
            return False
        model, title = got
        try:
            kernels = first_conv_kernels(model, title)
        except NoKernels as e:
            self.failed.emit(str(e))
            return False
        self.chosen.emit(kernels)
        return True
