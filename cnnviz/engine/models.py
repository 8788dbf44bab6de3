"""The networks cnnviz ships. Each takes float32 images in [0, 1] of shape
(N, 1, 28, 28); normalisation to MNIST's mean and std is the first layer."""

from __future__ import annotations

import numpy as np

from .layers import Conv2D, Flatten, Linear, MaxPool2D, Normalize, ReLU
from .sequential import Sequential

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def lenet5(seed=0) -> Sequential:
    """LeNet-5 for 28x28 MNIST (conv1 padded by 2, as the 32x32 original)."""
    rng = np.random.default_rng(seed)
    return Sequential(
        Normalize(MNIST_MEAN, MNIST_STD),
        Conv2D(1, 6, 5, padding=2, seed=rng),   # 1x28x28 -> 6x28x28
        ReLU(),
        MaxPool2D(2),                           # -> 6x14x14
        Conv2D(6, 16, 5, seed=rng),             # -> 16x10x10
        ReLU(),
        MaxPool2D(2),                           # -> 16x5x5
        Flatten(),                              # -> 400
        Linear(400, 120, seed=rng),
        ReLU(),
        Linear(120, 84, seed=rng),
        ReLU(),
        Linear(84, 10, seed=rng, init="fan_in"),  # -> 10 class scores
    )


def lenet5_small(seed=0) -> Sequential:
    """The smaller MNIST variant: no padding, one fully connected layer."""
    rng = np.random.default_rng(seed)
    return Sequential(
        Normalize(MNIST_MEAN, MNIST_STD),
        Conv2D(1, 6, 5, seed=rng),              # 1x28x28 -> 6x24x24
        ReLU(),
        MaxPool2D(2),                           # -> 6x12x12
        Conv2D(6, 16, 5, seed=rng),             # -> 16x8x8
        ReLU(),
        MaxPool2D(2),                           # -> 16x4x4
        Flatten(),                              # -> 256
        Linear(256, 10, seed=rng, init="fan_in"),  # -> 10 class scores
    )


MODELS = {"lenet5": lenet5, "small": lenet5_small}
INPUT_SHAPE = (1, 1, 28, 28)
