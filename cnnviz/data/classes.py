"""The names of a dataset's classes, so every view can say "Sneaker", not "7".

Where the names come from, first match wins:

1. ``classes.txt`` in the dataset directory: UTF-8 text, one name per line,
   in label order (line 1 names label 0); leading and trailing spaces are
   dropped, blank lines at the end are ignored, a blank line before a name
   is an error. It must name every label the dataset uses. Example for
   Fashion-MNIST::

       T-shirt/top
       Trouser
       ...
       Ankle boot

2. Fashion-MNIST without a classes file, recognised by the MD5 of its
   official 10,000 test labels (the label bytes, so gzipped or not alike).
3. Otherwise the labels are their own names: "0", "1", ... (MNIST's digits).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from cnnviz.data.idx import IdxError

__all__ = ["CLASSES_FILE", "FASHION_MNIST_NAMES", "DIGIT_NAMES", "class_names", "read_classes_file"]

CLASSES_FILE = "classes.txt"
MAX_CLASSES_FILE_BYTES = 1 << 20     # names, not data: a bigger file is a mistake
MAX_NAME_LENGTH = 100

DIGIT_NAMES = tuple(str(i) for i in range(10))
FASHION_MNIST_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                       "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# MD5 of the label bytes (after the 8-byte IDX header) of Fashion-MNIST's
# t10k-labels-idx1-ubyte, computed from the Debian package
# dataset-fashion-mnist (git 55506a9 of zalandoresearch/fashion-mnist);
# its first labels are 9 2 1 1 6 1 4 6 5 7 (Ankle boot, Pullover, Trouser, ...).
FASHION_MNIST_TEST_LABELS_MD5 = "8dea97a4e78c1bd1b5a6e8efbb870b6e"


def read_classes_file(path: Path, n_labels: int) -> tuple[str, ...]:
    """The names in a classes file; IdxError (a ValueError) naming the file (and line)
    if it is not UTF-8 text, too big, has a blank or over-long name, or
    names fewer classes than the ``n_labels`` the dataset uses."""
    size = path.stat().st_size
    if size > MAX_CLASSES_FILE_BYTES:
        raise IdxError(f"{path}: {size:,} bytes; a classes file holds one class name "
                         f"a line (at most {MAX_CLASSES_FILE_BYTES:,} bytes)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise IdxError(f"{path}: not UTF-8 text (byte {e.start}); a classes file "
                         f"holds one class name a line") from None
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    for number, name in enumerate(lines, 1):
        if not name:
            raise IdxError(f"{path}, line {number}: blank; every line up to the last "
                             f"names a class (line 1 names label 0)")
        if len(name) > MAX_NAME_LENGTH:
            raise IdxError(f"{path}, line {number}: a name of {len(name)} characters; "
                             f"at most {MAX_NAME_LENGTH}")
    if len(lines) < n_labels:
        raise IdxError(f"{path}: names {len(lines)} classes but the dataset's labels go "
                         f"up to {n_labels - 1}; it needs one line per label, in label order")
    return tuple(lines)


def class_names(directory: Path, test_labels: np.ndarray, *labels: np.ndarray) -> tuple[str, ...]:
    """The class names of the dataset in ``directory`` (see the module
    docstring), at least one per label used in ``test_labels`` and ``labels``."""
    n_labels = max(int(np.max(a)) + 1 if len(a) else 0 for a in (test_labels, *labels))
    path = directory / CLASSES_FILE
    if path.is_file():
        return read_classes_file(path, n_labels)
    if (len(test_labels) == 10_000 and hashlib.md5(np.ascontiguousarray(test_labels).tobytes())
            .hexdigest() == FASHION_MNIST_TEST_LABELS_MD5):
        return FASHION_MNIST_NAMES
    return tuple(str(i) for i in range(max(n_labels, 10)))


def name_of(names, label: int) -> str:
    """A label's name; the number itself for a label beyond the names."""
    return names[label] if 0 <= label < len(names) else str(label)
