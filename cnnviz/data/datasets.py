"""One way to name and load any dataset cnnviz trains on, for the CLI and the GUI.

    spec = DatasetSpec("folder", "~/pets", size=(64, 64), colour=True)
    train, test = load_dataset(spec, progress=lambda done, total: ..., cancel=lambda: False)

Kinds (docs/datasets.md):

    mnist           the bundled MNIST (grey 28x28)
    idx             a folder of the four MNIST-style IDX files (MNIST, Fashion-MNIST, ...)
    colored-mnist   coloured MNIST generated from the bundled MNIST (3x28x28)
    folder          one subfolder per class of image files (cnnviz/data/image_folder.py)
    cifar10         CIFAR-10's official binary version (cnnviz/data/cifar10.py)

Both splits are MnistSplit values (uint8 images, grey (N, H, W) or colour
(N, 3, H, W), labels, class_names, source). Everything wrong with a dataset
is a DatasetError (a ValueError) with a one-line message, raised before any
training; ``cancel()`` returning True raises LoadCancelled. Both callbacks
are called from the loading thread (a GUI runs load_dataset in a worker
thread and posts them on).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cnnviz.data.errors import DatasetError, LoadCancelled
from cnnviz.data.mnist import MnistSplit

__all__ = ["DatasetSpec", "load_dataset", "load_test_split", "DatasetError", "LoadCancelled", "KINDS",
           "KIND_TITLES", "parse_data_option", "parse_size"]

KINDS = ("mnist", "idx", "colored-mnist", "folder", "cifar10")
KIND_TITLES = {
    "mnist": "MNIST (bundled)",
    "idx": "IDX files (MNIST-style folder)",
    "colored-mnist": "Coloured MNIST (generated)",
    "folder": "Image folder (one subfolder per class)",
    "cifar10": "CIFAR-10 (binary version)",
}
_NEEDS_PATH = {"idx", "folder", "cifar10"}
MAX_SIDE = 4096


@dataclass(frozen=True)
class DatasetSpec:
    """What to load.

    kind: one of KINDS. path: the folder (idx, folder, cifar10; ignored
    otherwise). size: (height, width) images are resized to (folder only;
    None: image_folder.DEFAULT_SIZE, 28x28). colour: True for 3 channels, False for grey,
    None for the data's own (folder: colour if any image is, else grey;
    cifar10: colour). test_fraction and seed: the held-out share of each
    class and the seed of that split, for a folder without train/ and test/.
    """

    kind: str = "mnist"
    path: str | os.PathLike | None = None
    size: tuple[int, int] | None = None
    colour: bool | None = None
    test_fraction: float = 0.2
    seed: int = 0

    def check(self) -> "DatasetSpec":
        """self, or DatasetError saying which field is wrong."""
        if self.kind not in KINDS:
            raise DatasetError(f"unknown dataset kind {self.kind!r}; expected one of "
                               f"{', '.join(KINDS)}")
        if self.kind in _NEEDS_PATH and (self.path is None or not str(self.path).strip()):
            raise DatasetError(f"a {self.kind} dataset needs a folder")
        if self.size is not None:
            if self.kind != "folder":
                raise DatasetError(f"a size applies to image folders only; {self.kind} "
                                   f"images keep their own")
            h, w = self.size
            if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
                raise DatasetError(f"image size {h}x{w}: each side must be 1 to {MAX_SIDE}")
        if self.colour is not None and self.kind not in ("folder", "cifar10"):
            raise DatasetError(f"grey or colour can be chosen for image folders and CIFAR-10 "
                               f"only; {self.kind} is {'colour' if self.kind == 'colored-mnist' else 'grey'}")
        if not 0 < self.test_fraction < 1:
            raise DatasetError(f"test fraction {self.test_fraction}: must be between 0 and 1")
        return self

    def describe(self) -> str:
        """One line for titles: "image folder /data/pets", "the bundled MNIST"."""
        if self.kind == "mnist":
            return "the bundled MNIST"
        if self.kind == "colored-mnist":
            return "coloured MNIST"
        what = {"idx": "IDX files in", "folder": "image folder", "cifar10": "CIFAR-10 in"}
        return f"{what[self.kind]} {self.path}"


def load_dataset(spec: DatasetSpec, progress=None, cancel=None) -> tuple[MnistSplit, MnistSplit]:
    """(train, test) for ``spec``; DatasetError with a one-line message if the
    data cannot be trained on, LoadCancelled if ``cancel()`` said so.
    ``progress(done, total)``: files (or images) loaded so far."""
    spec.check()
    try:
        if spec.kind in ("mnist", "idx"):
            from cnnviz.data.mnist import load_splits
            splits = load_splits(None if spec.kind == "mnist" else spec.path)
        elif spec.kind == "colored-mnist":
            from cnnviz.data.colored_mnist import load_colored_mnist
            splits = load_colored_mnist("train", spec.seed), load_colored_mnist("test", spec.seed)
        elif spec.kind == "cifar10":
            from cnnviz.data.cifar10 import load_cifar10
            return load_cifar10(spec.path, spec.colour is not False, progress, cancel)
        else:
            from cnnviz.data.image_folder import load_image_folder
            return load_image_folder(spec.path, size=spec.size, colour=spec.colour,
                                     test_fraction=spec.test_fraction, seed=spec.seed,
                                     progress=progress, cancel=cancel)
    except (DatasetError, LoadCancelled):
        raise
    except (ValueError, OSError) as e:          # IdxError, a missing file: already one line
        raise DatasetError(str(e)) from None
    if progress is not None:
        progress(1, 1)
    return splits


def load_test_split(spec: DatasetSpec, progress=None, cancel=None) -> MnistSplit:
    """The test split alone, for evaluating a trained model: MNIST, IDX files
    and coloured MNIST skip their training images (coloured MNIST's take 4 s
    to generate); an image folder and CIFAR-10 are read whole (a folder's
    seeded split needs every file). Errors as load_dataset's."""
    spec.check()
    if spec.kind not in ("mnist", "idx", "colored-mnist"):
        return load_dataset(spec, progress, cancel)[1]
    try:
        if spec.kind == "colored-mnist":
            from cnnviz.data.colored_mnist import load_colored_mnist
            return load_colored_mnist("test", spec.seed)
        from cnnviz.data.mnist import load_mnist
        return load_mnist(None if spec.kind == "mnist" else spec.path, "test")
    except DatasetError:
        raise
    except (ValueError, OSError) as e:
        raise DatasetError(str(e)) from None


def parse_size(text: str) -> tuple[int, int]:
    """"32x32" or "32" -> (32, 32); DatasetError otherwise."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        h, w = (int(parts[0]), int(parts[0])) if len(parts) == 1 else map(int, parts)
    except ValueError:
        raise DatasetError(f"size {text!r}: expected HxW, e.g. 32x32") from None
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise DatasetError(f"size {text!r}: each side must be 1 to {MAX_SIDE}")
    return h, w


def parse_data_option(text: str | None) -> DatasetSpec:
    """The CLI's --data: None or "mnist", "colored-mnist", "folder:PATH",
    "cifar10:PATH", "idx:PATH" or a plain PATH (an IDX folder)."""
    if text is None or text == "mnist":
        return DatasetSpec("mnist")
    if text in ("colored-mnist", "coloured-mnist"):
        return DatasetSpec("colored-mnist")
    kind, sep, rest = text.partition(":")
    if sep and kind in ("folder", "cifar10", "idx"):
        if not rest:
            raise DatasetError(f"--data {text}: give the folder after '{kind}:'")
        return DatasetSpec(kind, Path(rest).expanduser())
    return DatasetSpec("idx", Path(text).expanduser())
