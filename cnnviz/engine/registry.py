"""Every layer type a model or an architecture file may name, by class name."""

from .global_pool import GlobalAvgPool2D
from .layers import LAYER_TYPES as _BASIC
from .normalization import BatchNorm2d
from .padding import ZeroPad2D
from .regularization import Dropout
from .sparse_conv import SparseConv2D
from .subsampling import Subsampling2D

LAYER_TYPES = {**_BASIC, **{cls.__name__: cls for cls in
                            (BatchNorm2d, Dropout, GlobalAvgPool2D, ZeroPad2D, Subsampling2D,
                             SparseConv2D)}}
