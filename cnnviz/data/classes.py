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

__all__ = ["CLASSES_FILE", "FASHION_MNIST_NAMES", "DIGIT_NAMES", "class_names", "read_classes_file",
           "numbered", "saved_class_names", "name_of", "short_name"]

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


def short_name(name: str, length: int = 8) -> str:
    """A class name cut to fit under a narrow column ("T-shirt/top" -> "T-shirt…")."""
    return name if len(name) <= length else name[:length - 1] + "\u2026"


def numbered(count: int) -> tuple[str, ...]:
    """"0", "1", ... "count-1": the names of classes nobody named."""
    return tuple(str(i) for i in range(count))


def saved_class_names(metadata, outputs: int) -> tuple[tuple[str, ...], str]:
    """The names of a network's ``outputs`` classes from a model file's
    metadata ("class_names": written by `cnnviz train --save` and the Training
    tab's checkpoints) and a sentence when they could not all be used.

    A file without names (saved before they were recorded, or by code that
    gave none, or an empty list) gets 0..outputs-1 and no sentence. More names than outputs is
    normal (a digits dataset names ten classes, a network may use three): the
    first ``outputs`` are taken. Fewer: the rest are numbered, and said."""
    names = metadata.get("class_names") if isinstance(metadata, dict) else None
    if names is None or (isinstance(names, (list, tuple)) and not names):
        return numbered(outputs), ""
    if not (isinstance(names, (list, tuple)) and names and all(
            isinstance(n, str) and n.strip() and len(n) <= MAX_NAME_LENGTH for n in names)):
        return numbered(outputs), (f"its class_names are not a list of names (each 1 to "
                                   f"{MAX_NAME_LENGTH} characters): the classes are numbered "
                                   f"0 to {outputs - 1}")
    names = tuple(n.strip() for n in names[:outputs])
    if len(names) < outputs:
        return names + numbered(outputs)[len(names):], (
            f"it names {len(names)} classes for its {outputs} outputs: classes "
            f"{len(names)} to {outputs - 1} are numbered")
    return names, ""
