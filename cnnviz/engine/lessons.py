"""The worked examples of CNN-NOTES.md as tiny networks: the Layer Stepper's lessons.

A lesson is pure data (input, kernels, biases, stride, padding, the upstream
gradient δ given at the output instead of a loss, a learning rate) plus
``build()``, which turns it into a float64 ``Sequential`` so every cell is
exact. ``expected`` holds the numbers the notes print, for the tests and for
the lesson's description; the engine, not this file, computes what is shown.

Examples 1-3 print no upstream gradient for the conv lessons: there the δ is
ours (all ones for example 1, 1..4 for example 2 so the dilation by the stride
is visible) and says so in the description.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .layers import AvgPool2D, Conv2D, Layer, MaxPool2D
from .sequential import Sequential

LESSON_DTYPE = np.float64

KERNEL_A = [[1, 0, 1], [-1, 1, 0], [0, 1, -1]]
KERNEL_B = [[-1, 1, 0], [0, 1, -1], [1, 0, 1]]


@dataclass(frozen=True)
class ConvSpec:
    weight: list          # (C_out, C_in, kh, kw) nested lists
    bias: list | None = None
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True)
class PoolSpec:
    kind: str             # "max" or "avg"
    kernel_size: int = 2
    stride: int = 2


@dataclass(frozen=True)
class Lesson:
    key: str
    title: str
    description: str
    input: list                            # (C, H, W) nested lists
    layer: ConvSpec | PoolSpec
    delta: list                            # upstream δ, (C_out, H_out, W_out)
    lr: float = 0.01
    expected: dict = field(default_factory=dict)   # the notes' numbers, by name

    def input_array(self) -> np.ndarray:
        """(1, C, H, W) float64."""
        return np.array(self.input, dtype=LESSON_DTYPE)[None]

    def delta_array(self) -> np.ndarray:
        return np.array(self.delta, dtype=LESSON_DTYPE)[None]

    def build(self) -> Sequential:
        """A one-layer float64 network holding the lesson's exact parameters."""
        return Sequential(_layer(self.layer))


def _layer(spec) -> Layer:
    if isinstance(spec, PoolSpec):
        cls = MaxPool2D if spec.kind == "max" else AvgPool2D
        return cls(spec.kernel_size, spec.stride)
    w = np.array(spec.weight, dtype=LESSON_DTYPE)
    layer = Conv2D(w.shape[1], w.shape[0], w.shape[2:], stride=spec.stride,
                   padding=spec.padding, bias=spec.bias is not None, dtype=LESSON_DTYPE)
    layer.params["weight"][...] = w
    if spec.bias is not None:
        layer.params["bias"][...] = np.array(spec.bias, dtype=LESSON_DTYPE)
    return layer


_EX2_INPUT = [[[1, 3, 0, 2, 4], [4, 7, 4, 1, 0], [4, 6, 0, 0, 6], [3, 2, 8, 1, 2], [3, 5, 0, 7, 3]]]
_EX3_INPUT = [[[1, 3, 0, 3], [2, 2, 4, 1], [4, 2, 0, 0], [3, 3, 3, 1]]]
_EX3_DELTA = [[[1, 2], [3, 4]]]

LESSONS: dict[str, Lesson] = {lesson.key: lesson for lesson in (
    Lesson(
        "ex1", "Example 1: one input, two kernels",
        "A 4x4 input through two 3x3 kernels, stride 1: one input map, two output maps "
        "(single in, multi out). The notes give the first map [[-1, 4], [6, 16]]. "
        "Upstream δ (our choice, not in the notes): all ones.",
        [[[2, 5, 0, 1], [6, 7, 1, 2], [3, 0, 4, 0], [3, 9, 7, 4]]],
        ConvSpec([[KERNEL_A], [KERNEL_B]]),
        [np.ones((2, 2)).tolist(), np.ones((2, 2)).tolist()],
        expected={"output0": [[-1, 4], [6, 16]]}),
    Lesson(
        "ex2s2", "Example 2: stride 2",
        "A 5x5 input, the first kernel of example 1, stride 2 -> [[10, -5], [8, 3]]: the "
        "stride-1 map with the in-between cross removed. Going back, δ is dilated by the "
        "stride (zeros put back where the cross was). Upstream δ (our choice): [[1, 2], [3, 4]].",
        _EX2_INPUT, ConvSpec([[KERNEL_A]], stride=2), _EX3_DELTA,
        expected={"output0": [[10, -5], [8, 3]]}),
    Lesson(
        "ex2s1", "Example 2: stride 1",
        "The same 5x5 input and kernel with stride 1 -> [[10, 2, -5], [4, 9, 3], [8, 5, 3]]. "
        "Upstream δ (our choice): all ones.",
        _EX2_INPUT, ConvSpec([[KERNEL_A]], stride=1), [np.ones((3, 3)).tolist()],
        expected={"output0": [[10, 2, -5], [4, 9, 3], [8, 5, 3]]}),
    Lesson(
        "ex3max", "Example 3: 2x2 max pooling",
        "Max over 2x2 windows, stride 2 -> [[3, 4], [4, 3]]. Backward, the upstream "
        "[[1, 2], [3, 4]] goes to each window's max position, zero elsewhere.",
        _EX3_INPUT, PoolSpec("max"), _EX3_DELTA,
        expected={"output0": [[3, 4], [4, 3]],
                  "grad_input0": [[0, 1, 0, 0], [0, 0, 2, 0], [3, 0, 0, 0], [0, 0, 4, 0]]}),
    Lesson(
        "ex3avg", "Example 3: 2x2 average pooling",
        "Mean over 2x2 windows, stride 2 -> [[2, 2], [3, 1]]. Backward, each value of the "
        "upstream [[1, 2], [3, 4]] is spread as value/4 over its window.",
        _EX3_INPUT, PoolSpec("avg"), _EX3_DELTA,
        expected={"output0": [[2, 2], [3, 1]],
                  "grad_input0": [[0.25, 0.25, 0.5, 0.5], [0.25, 0.25, 0.5, 0.5],
                                  [0.75, 0.75, 1, 1], [0.75, 0.75, 1, 1]]}),
    Lesson(
        "ex4", "Example 4: 3 channels, 2 filters, padding 1, stride 2",
        "A 3-channel 5x5 input, two 3x3x3 filters (biases 1 and 0), zero padding 1, "
        "stride 2, identity activation; one backward step with the given 2x3x3 upstream "
        "gradient and learning rate 0.001. Every number shown is the engine's.",
        [[[0, 1, 1, 0, 2], [2, 2, 2, 2, 1], [1, 0, 0, 2, 0], [0, 1, 1, 0, 0], [1, 2, 0, 0, 2]],
         [[1, 0, 2, 2, 0], [0, 0, 0, 2, 0], [1, 2, 1, 2, 1], [1, 0, 0, 0, 0], [1, 2, 1, 1, 1]],
         [[2, 1, 2, 0, 0], [1, 0, 0, 1, 0], [0, 2, 1, 0, 1], [0, 1, 2, 2, 2], [2, 1, 0, 0, 1]]],
        ConvSpec([[[[-1, 1, 0], [0, 1, 0], [0, 1, 1]],
                   [[-1, -1, 0], [0, 0, 0], [0, -1, 0]],
                   [[0, 0, -1], [0, 1, 0], [1, -1, -1]]],
                  [[[1, 1, -1], [-1, -1, 1], [0, -1, 1]],
                   [[0, 1, 0], [-1, 0, -1], [-1, 1, 0]],
                   [[-1, 0, 0], [-1, 0, 1], [-1, 0, 0]]]],
                 bias=[1, 0], stride=2, padding=1),
        [[[0, 1, 1], [2, 2, 2], [1, 0, 0]], [[1, 0, 2], [0, 0, 0], [1, 2, 1]]],
        lr=0.001),
)}
