"""Turning files and digits into the lab's input, with the size rules of the lab.

Images larger than MAX_SIDE on a side are never shrunk silently: the lab asks
first (``needs_question``), then calls ``load_downscaled`` or ``load_full``
(on its loader thread: a big file takes seconds). No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_SIDE = 2048


@dataclass
class InputImage:
    pixels: np.ndarray            # (H, W) grey or (H, W, 3) RGB, float32 in [0, 1]
    name: str                     # shown in the status bar and the title
    original_size: tuple[int, int]
    warnings: tuple[str, ...] = field(default=())   # the loader's, e.g. a damaged JPEG scan

    @property
    def is_colour(self) -> bool:
        return self.pixels.ndim == 3

    @property
    def downscaled(self) -> bool:
        return tuple(self.pixels.shape[:2]) != tuple(self.original_size)


def downscaled_size(size: tuple[int, int], max_side: int = MAX_SIDE) -> tuple[int, int]:
    h, w = size
    factor = max_side / max(h, w)
    return max(1, round(h * factor)), max(1, round(w * factor))


def needs_question(size: tuple[int, int] | None) -> bool:
    return size is not None and max(size) > MAX_SIDE


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(height, width) from the file header, None if unknown; ImageLoadError if unreadable."""
    from cnnviz.data.images import image_size

    size = image_size(path)
    return None if size is None else (size.height, size.width)


def load_full(path: str | Path) -> InputImage:
    """Raises ImageLoadError (ImageTooLargeError past the loader's pixel limit)."""
    from cnnviz.data.images import read_image

    pixels, warnings = read_image(path)
    return InputImage(pixels, Path(path).name, tuple(pixels.shape[:2]), warnings)


def can_keep_full_size(size: tuple[int, int]) -> bool:
    from cnnviz.data.images import DEFAULT_MAX_PIXELS

    return size[0] * size[1] <= DEFAULT_MAX_PIXELS


def load_downscaled(path: str | Path, size: tuple[int, int]) -> InputImage:
    """Decode at reduced size where the format allows, then resize to fit MAX_SIDE."""
    from cnnviz.data.images import read_image, resize

    target = downscaled_size(size)
    pixels, warnings = read_image(path, max_pixels=target[0] * target[1], downscale=True)
    if tuple(pixels.shape[:2]) != target:
        pixels = resize(pixels, target)
    return InputImage(np.ascontiguousarray(pixels, np.float32), Path(path).name, tuple(size),
                      warnings)


def downscale_pixels(image: InputImage) -> InputImage:
    from cnnviz.data.images import resize

    pixels = resize(image.pixels, downscaled_size(image.pixels.shape[:2]))
    return InputImage(pixels, image.name, image.original_size, image.warnings)


def mnist_input(digit: np.ndarray, label: int, split: str, index: int) -> InputImage:
    pixels = np.asarray(digit, np.float32) / 255.0
    return InputImage(pixels, f"MNIST {split} #{index} (label {label})", tuple(pixels.shape))


def as_chw(image: InputImage, colour: bool) -> np.ndarray:
    """The tensor the layer sees (without the batch axis): (3, H, W) or (1, H, W)."""
    if image.is_colour and colour:
        return np.ascontiguousarray(image.pixels.transpose(2, 0, 1))
    if image.is_colour:
        from cnnviz.data.images import to_grey

        return to_grey(image.pixels)[None]
    return image.pixels[None]
