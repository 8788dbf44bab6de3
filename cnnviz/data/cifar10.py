"""CIFAR-10 in its official binary format ("CIFAR-10 binary version" of
https://www.cs.toronto.edu/~kriz/cifar.html), read unchanged.

The folder (``cifar-10-batches-bin``, or the folder holding it) has

    data_batch_1.bin ... data_batch_5.bin    the 50,000 training images
    test_batch.bin                           the 10,000 test images
    batches.meta.txt                         the class names, one a line

Each .bin file is a run of 3,073-byte records: one label byte (0-9), then
the 32x32 image as three 1,024-byte planes, red, green, blue, each row by row.
A file that is not a whole number of records (cut short, or not CIFAR-10) is
refused, naming the file and its byte count. Without batches.meta.txt the
official class names are used.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from cnnviz.data.classes import read_classes_file
from cnnviz.data.errors import DatasetError, LoadCancelled
from cnnviz.data.mnist import MnistSplit

__all__ = ["load_cifar10", "TRAIN_FILES", "TEST_FILE", "META_FILE", "RECORD_BYTES",
           "CIFAR10_NAMES", "find_cifar10_folder"]

TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
META_FILE = "batches.meta.txt"
SIDE = 32
RECORD_BYTES = 1 + 3 * SIDE * SIDE          # 3,073
SUBFOLDER = "cifar-10-batches-bin"          # what the official archive unpacks to
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck")
_LUMA = np.array([299, 587, 114], np.uint32)    # BT.601, thousandths


def find_cifar10_folder(path: str | os.PathLike) -> Path:
    """The folder holding the .bin files: ``path`` or its cifar-10-batches-bin;
    DatasetError naming what is missing otherwise."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DatasetError(f"{path}: no such folder; CIFAR-10 is a folder holding "
                           f"{TRAIN_FILES[0]} ... {TRAIN_FILES[-1]} and {TEST_FILE}")
    if not (path / TEST_FILE).exists() and (path / SUBFOLDER).is_dir():
        path = path / SUBFOLDER
    missing = [n for n in (*TRAIN_FILES, TEST_FILE) if not (path / n).is_file()]
    if missing:
        raise DatasetError(f"{path}: {', '.join(missing)} missing; CIFAR-10's binary version "
                           f"holds {TRAIN_FILES[0]} ... {TRAIN_FILES[-1]} and {TEST_FILE}")
    return path


def _read_records(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 3, 32, 32), labels uint8 (n,)) of one .bin file."""
    size = path.stat().st_size
    if size == 0 or size % RECORD_BYTES:
        whole = size // RECORD_BYTES
        raise DatasetError(
            f"{path}: {size:,} bytes, not a whole number of {RECORD_BYTES:,}-byte CIFAR-10 "
            f"records (1 label byte + 32x32x3 pixels; {whole:,} records and {size - whole * RECORD_BYTES:,} "
            f"bytes over); the file is cut short or not CIFAR-10's binary version")
    records = np.fromfile(path, np.uint8).reshape(-1, RECORD_BYTES)
    return records[:, 1:].reshape(-1, 3, SIDE, SIDE), records[:, 0]


def _class_names(folder: Path, labels: np.ndarray) -> tuple[str, ...]:
    n_labels = int(labels.max()) + 1
    meta = folder / META_FILE
    if meta.is_file():
        try:
            return read_classes_file(meta, n_labels)
        except ValueError as e:
            raise DatasetError(str(e)) from None
    if n_labels > len(CIFAR10_NAMES):
        raise DatasetError(f"{folder}: labels go up to {n_labels - 1}, but CIFAR-10 has "
                           f"{len(CIFAR10_NAMES)} classes and there is no {META_FILE} naming more")
    return CIFAR10_NAMES


def _stat(path: Path):
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def to_grey(images: np.ndarray) -> np.ndarray:
    """uint8 (n, 3, H, W) RGB -> uint8 (n, H, W) by BT.601 luma, rounded."""
    out = np.empty((len(images), *images.shape[2:]), np.uint8)
    for i in range(0, len(images), 5000):
        chunk = images[i:i + 5000].astype(np.uint32)
        out[i:i + 5000] = (np.einsum("nchw,c->nhw", chunk, _LUMA) + 500) // 1000
    return out


def load_cifar10(path: str | os.PathLike, colour: bool = True, progress=None,
                 cancel=None) -> tuple[MnistSplit, MnistSplit]:
    """(train, test) of the CIFAR-10 binary version in ``path``: colour uint8
    (N, 3, 32, 32), or grey (N, 32, 32) when ``colour`` is False. Cached
    in-process by folder and the files' sizes and modification times.
    ``progress(done, total)`` after each file; ``cancel()`` checked before each."""
    folder = find_cifar10_folder(path).resolve()
    files = (*TRAIN_FILES, TEST_FILE)
    stamps = tuple((st.st_size, st.st_mtime_ns) if st else None
                   for st in map(_stat, (folder / n for n in (*files, META_FILE))))
    cached = _cached(folder, stamps, bool(colour))
    if cached is not None:
        if progress is not None:
            progress(len(files), len(files))
        return cached
    parts = []
    for i, name in enumerate(files):
        if cancel is not None and cancel():
            raise LoadCancelled()
        parts.append(_read_records(folder / name))
        if progress is not None:
            progress(i + 1, len(files))
    train_images = np.concatenate([p[0] for p in parts[:-1]])
    train_labels = np.concatenate([p[1] for p in parts[:-1]])
    test_images, test_labels = parts[-1]
    names = _class_names(folder, np.concatenate([train_labels, test_labels]))
    if not colour:
        train_images, test_images = to_grey(train_images), to_grey(test_images)
    source = f"CIFAR-10 in {folder}" + ("" if colour else " (grey)")
    splits = []
    for split, images, labels in (("train", train_images, train_labels),
                                  ("test", np.ascontiguousarray(test_images), test_labels)):
        images.flags.writeable = False
        labels = np.ascontiguousarray(labels)
        labels.flags.writeable = False
        splits.append(MnistSplit(images, labels, split, class_names=names, source=source))
    _remember(folder, stamps, bool(colour), tuple(splits))
    return tuple(splits)


_CACHE: dict = {}


def _cached(folder, stamps, colour):
    return _CACHE.get((folder, stamps, colour))


def _remember(folder, stamps, colour, splits) -> None:
    _CACHE.clear()                   # one CIFAR-10 at a time: 180 MB each
    _CACHE[(folder, stamps, colour)] = splits
