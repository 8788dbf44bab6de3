"""The networks cnnviz ships. Each takes float32 images in [0, 1] of shape
(N, 1, 28, 28); normalisation to MNIST's mean and std is an early layer."""

from __future__ import annotations

import numpy as np

from .layers import Conv2D, Flatten, Linear, MaxPool2D, Normalize, ReLU, Tanh
from .padding import ZeroPad2D
from .sequential import Sequential
from .sparse_conv import LENET5_C3_CONNECTIONS, SparseConv2D
from .subsampling import Subsampling2D

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


def lenet5_1998(seed=0) -> Sequential:
    """The original LeNet-5 (LeCun, Bottou, Bengio, Haffner, 1998), layer
    names and parameter counts as in CNN-NOTES.md (60,850 in all):

    the 28x28 digit is padded by 2 to the paper's 32x32 input (with zeros,
    before normalising: the border is the digits' black background); S2 and
    S4 are trainable subsampling (Subsampling2D: a coefficient and a bias per
    map); C3 has the paper's sparse connection table (SparseConv2D, 1,516
    parameters); C5 is a 5x5 convolution to 120 maps of 1x1; every layer up
    to F6 is followed by the squashing function, tanh (the paper scales it,
    1.7159 tanh(2a/3); plain tanh trains as well here). The output is a
    Linear 84 -> 10 with softmax cross-entropy, as the notes give it
    ("output 10 with softmax", 850 parameters), not the paper's Euclidean
    RBF units (which have no trainable parameters of their own to count)."""
    rng = np.random.default_rng(seed)
    layers = [
        ZeroPad2D(2),                                   # 1x28x28 -> 1x32x32
        Normalize(MNIST_MEAN, MNIST_STD),
        Conv2D(1, 6, 5, seed=rng),                      # C1: -> 6x28x28, 156 params
        Tanh(),
        Subsampling2D(6, 2),                            # S2: -> 6x14x14, 12
        Tanh(),
        SparseConv2D(6, 16, 5, LENET5_C3_CONNECTIONS, seed=rng),  # C3: -> 16x10x10, 1,516
        Tanh(),
        Subsampling2D(16, 2),                           # S4: -> 16x5x5, 32
        Tanh(),
        Conv2D(16, 120, 5, seed=rng),                   # C5: -> 120x1x1, 48,120
        Tanh(),
        Flatten(),                                      # -> 120
        Linear(120, 84, seed=rng),                      # F6: 10,164
        Tanh(),
        Linear(84, 10, seed=rng, init="fan_in"),        # output: 850
    ]
    names = ["pad", "norm", "C1", "tanh1", "S2", "tanh2", "C3", "tanh3", "S4", "tanh4",
             "C5", "tanh5", "flatten", "F6", "tanh6", "output"]
    for layer, name in zip(layers, names):
        layer.name = name
    return Sequential(*layers)


MODELS = {"lenet5": lenet5, "small": lenet5_small, "lenet5-1998": lenet5_1998}
INPUT_SHAPE = (1, 1, 28, 28)
