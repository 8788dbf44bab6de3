"""The cnnviz engine: a CNN in pure NumPy (never imports Qt)."""

from . import functional
from .layers import (AvgPool2D, Conv2D, Flatten, Layer, LeakyReLU, Linear, MaxPool2D,
                     Normalize, ReLU, Sigmoid, Tanh)
from .global_pool import GlobalAvgPool2D
from .losses import SoftmaxCrossEntropy
from .models import MODELS, lenet5, lenet5_1998, lenet5_small
from .normalization import BatchNorm2d
from .padding import ZeroPad2D
from .regularization import Dropout
from .optim import OPTIMIZERS, SGD, Adam
from .sequential import LayerTrace, Param, Sequential
from .serialization import ModelFileError, load, save
from .sparse_conv import SparseConv2D
from .subsampling import Subsampling2D
from .summary import summary

__all__ = [
    "functional", "Layer", "Conv2D", "Linear", "MaxPool2D", "AvgPool2D", "ReLU", "LeakyReLU",
    "Sigmoid", "Tanh", "Flatten", "Normalize", "Sequential", "LayerTrace", "Param",
    "SoftmaxCrossEntropy", "SGD", "Adam", "OPTIMIZERS", "lenet5", "lenet5_small", "MODELS",
    "summary", "save", "load", "ModelFileError", "BatchNorm2d", "Dropout", "GlobalAvgPool2D",
    "ZeroPad2D", "Subsampling2D", "SparseConv2D", "lenet5_1998",
]
