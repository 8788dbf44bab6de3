"""MNIST-style datasets: the bundled MNIST, or any directory of the four IDX files.

A directory qualifies if it holds

    train-images-idx3-ubyte   train-labels-idx1-ubyte
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

each optionally gzipped (`.gz`), which is how MNIST, Fashion-MNIST and KMNIST
are all distributed, so any of them loads unchanged. It may also hold a
``classes.txt`` naming the classes, one name a line in label order (see
cnnviz/data/classes.py); Fashion-MNIST is recognised without one.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnviz.data.classes import class_names
from cnnviz.data.idx import IMAGES_MAGIC, LABELS_MAGIC, IdxError, read_idx, read_idx_header
from cnnviz.data.paths import MNIST_DIR

__all__ = ["MnistSplit", "DatasetSplit", "load_mnist", "load_splits", "to_float", "SPLIT_FILES",
           "MNIST_DIR"]

# split -> (images file, labels file), without the optional .gz
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True, eq=False)
class MnistSplit:
    """One split of a dataset: MNIST-style IDX files, an image folder,
    CIFAR-10 or coloured MNIST (``DatasetSplit`` is the same class).

    Attributes:
        images: uint8, grey (N, H, W) or colour (N, 3, H, W) with the planes
            R, G, B; 0 = black. Read-only: it is shared by the caches.
        labels: uint8 (N,), read-only.
        split: "train" or "test".
        images_path, labels_path: the IDX files it came from (None for other
            sources).
        class_names: the dataset's class names, one per label at least
            (label i is called class_names[i]); "0".."9" for MNIST.
        source: one line saying where the data came from, for titles and
            messages ("the bundled MNIST", "folder /data/pets (64x64 colour)").
        warnings: what the user should be told about the load, one line each
            (an image folder's skipped unreadable files).
    """

    images: np.ndarray
    labels: np.ndarray
    split: str
    images_path: Path | None = None
    labels_path: Path | None = None
    class_names: tuple[str, ...] = tuple(str(i) for i in range(10))
    source: str = ""
    warnings: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        """(image, label) for an index; (images, labels) for a slice or index array."""
        return self.images[i], self.labels[i]

    @property
    def channels(self) -> int:
        """1 for grey images, 3 for colour."""
        return 1 if self.images.ndim == 3 else int(self.images.shape[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image: what a model takes."""
        return (self.channels, *map(int, self.images.shape[-2:]))

    def as_float(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Images [start:stop] as float32 in [0, 1], shape (n, C, H, W): a model's input."""
        return to_float(self.images[start:stop])


DatasetSplit = MnistSplit


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1] of shape (N, C, H, W).

    Grey (N, H, W) becomes (N, 1, H, W); colour (N, C, H, W) keeps its shape;
    a single grey (H, W) image becomes (1, 1, H, W).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8 images, got {images.dtype}")
    if images.ndim == 2:
        images = images[None]
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"to_float expects (N, H, W), (N, C, H, W) or (H, W) images, "
                         f"got shape {images.shape}")
    return images / np.float32(255)  # one pass; 255 -> exactly 1.0


def _find(directory: Path, name: str) -> Path:
    """`directory/name` or `directory/name.gz` (raw preferred: it reads faster)."""
    candidates = [directory / name, directory / (name + ".gz")]
    for c in candidates:
        if c.is_file():
            return c
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"MNIST-style file {name!r} not found in {directory}; looked for: {looked}. "
        f"A dataset directory holds {', '.join(n for pair in SPLIT_FILES.values() for n in pair)} "
        f"(each optionally .gz)"
    )


def load_mnist(data_dir: str | os.PathLike | None = None, split: str = "train") -> MnistSplit:
    """Load one split of an MNIST-style dataset.

    Args:
        data_dir: a directory holding the four standard IDX files (see the
            module docstring); None means the bundled MNIST.
        split: "train" (60,000 images for MNIST) or "test" (10,000).

    Returns:
        An MnistSplit with images uint8 (N, H, W) and labels uint8 (N,).
        Loads are cached in-process by resolved path (and the files' size and
        modification time), so repeated calls are free; the arrays are
        read-only, copy them to modify.

    Raises:
        FileNotFoundError if a file is missing (listing what was looked for),
        IdxError (a ValueError) if a file is damaged, the wrong kind or
        larger than MAX_IDX_BYTES, if images and labels disagree on the
        count, or if the split holds no images or images with no pixels
        (the headers are checked before the data is read); ValueError for a
        bad split; ValueError naming the file and line for a bad classes.txt.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_FILES)}")
    directory = Path(MNIST_DIR if data_dir is None else data_dir).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(f"dataset directory {directory} does not exist or is not a directory")
    images_name, labels_name = SPLIT_FILES[split]
    images_path = _find(directory, images_name).resolve()
    labels_path = _find(directory, labels_name).resolve()
    images, labels = _load_pair(images_path, labels_path, _stamp(images_path), _stamp(labels_path))
    if split == "test":
        names = class_names(directory, labels)
    else:
        names = class_names(directory, _test_labels(directory), labels)
    source = "the bundled MNIST" if data_dir is None else f"IDX files in {directory}"
    return MnistSplit(images, labels, split, images_path, labels_path, names, source)


def _test_labels(directory: Path) -> np.ndarray:
    """The test labels (they identify Fashion-MNIST), or none if unreadable:
    the test split's own load says what is wrong with them."""
    try:
        path = _find(directory, SPLIT_FILES["test"][1]).resolve()
        return _load_labels(path, _stamp(path))
    except (OSError, ValueError):
        return np.empty(0, np.uint8)


@functools.lru_cache(maxsize=8)
def _load_labels(path: Path, _stamp) -> np.ndarray:
    labels = read_idx(path, LABELS_MAGIC)
    labels.flags.writeable = False
    return labels


def _stamp(path: Path) -> tuple[int, int]:
    """(size, mtime_ns): part of the cache key, so a replaced file is reread."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def load_splits(data_dir: str | os.PathLike | None = None) -> tuple[MnistSplit, MnistSplit]:
    """(train, test) of an MNIST-style dataset, checked together: IdxError
    if the test images are not the size of the training images (a model
    trained on one size cannot take the other). Otherwise as ``load_mnist``."""
    train, test = load_mnist(data_dir, "train"), load_mnist(data_dir, "test")
    size, test_size = train.images.shape[1:], test.images.shape[1:]
    if size != test_size:
        raise IdxError(
            f"{test.images_path}: the test images are {test_size[0]}x{test_size[1]} but the "
            f"training images ({train.images_path.name}) are {size[0]}x{size[1]}; "
            f"both splits need one size")
    return train, test


@functools.lru_cache(maxsize=8)
def _load_pair(images_path: Path, labels_path: Path, _s1, _s2) -> tuple[np.ndarray, np.ndarray]:
    # the headers first: a mismatch or an empty split is refused before any data is read
    n_images, *size = read_idx_header(images_path, IMAGES_MAGIC).shape
    n_labels = read_idx_header(labels_path, LABELS_MAGIC).shape[0]
    if n_images != n_labels:
        raise IdxError(
            f"{images_path} holds {n_images} images but {labels_path} holds {n_labels} labels"
        )
    if n_images == 0:
        raise IdxError(f"{images_path}: holds 0 images; a dataset split needs at least one")
    if 0 in size:
        raise IdxError(f"{images_path}: its images are {size[0]}x{size[1]} pixels; "
                       f"an image needs at least one row and one column")
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    images.flags.writeable = False  # shared by every caller through the cache
    labels.flags.writeable = False
    return images, labels
