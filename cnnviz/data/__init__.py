"""Datasets and images: IDX/MNIST loading and an OpenCV image loader.

Never imports Qt: the engine, the CLI and the tests use this without a display.
`cnnviz.data.images` (OpenCV) is imported only when asked for, so loading
MNIST does not pull in cv2.
"""

from cnnviz.data.idx import IdxError, read_idx, write_idx
from cnnviz.data.mnist import DatasetSplit, MnistSplit, load_mnist, load_splits, to_float

__all__ = ["IdxError", "read_idx", "write_idx", "MnistSplit", "DatasetSplit", "load_mnist", "load_splits", "to_float"]
