"""Coloured MNIST, generated from the bundled MNIST: a colour dataset that
ships with cnnviz (no colour benchmark can be downloaded everywhere).

Each image is its MNIST digit with the strokes in one colour and the
background in another, both drawn at random, independently of the digit's
class, so colour says nothing about the label and a network must find the
shape in three channels:

    pixel = background + (stroke - background) * ink,   ink = MNIST pixel / 255

Legibility: a stroke and background pair is drawn again until their BT.601
luma differs by at least MIN_LUMA_DIFFERENCE (of 255), so the digit stands out
in grey too, not only by hue. Deterministic: the colours come from
``numpy.random.default_rng([seed, split])``; the same seed gives the same
images on every machine (integer arithmetic, no float rounding).
Train 60,000 and test 10,000 images, 3 x 28 x 28 uint8, planes R, G, B.
"""

from __future__ import annotations

import functools

import numpy as np

from cnnviz.data.mnist import MnistSplit, load_mnist

__all__ = ["load_colored_mnist", "MIN_LUMA_DIFFERENCE", "colour_pairs"]

MIN_LUMA_DIFFERENCE = 80
_LUMA = np.array([299, 587, 114])          # BT.601, in thousandths
_SPLIT_STREAM = {"train": 0, "test": 1}


def colour_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(stroke, background) colours, uint8 (n, 3) each, drawn uniformly over
    RGB and again wherever their luma differs by less than MIN_LUMA_DIFFERENCE."""
    stroke = rng.integers(0, 256, (n, 3))
    background = rng.integers(0, 256, (n, 3))
    while True:
        bad = np.abs((stroke - background) @ _LUMA) < MIN_LUMA_DIFFERENCE * 1000
        count = int(bad.sum())
        if not count:
            return stroke.astype(np.uint8), background.astype(np.uint8)
        stroke[bad] = rng.integers(0, 256, (count, 3))
        background[bad] = rng.integers(0, 256, (count, 3))


def tint(grey: np.ndarray, stroke: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Grey uint8 digits (n, H, W) -> colour uint8 (n, 3, H, W), rounded exactly."""
    ink = grey[:, None].astype(np.uint32)                         # (n, 1, H, W)
    s = stroke.astype(np.uint32)[:, :, None, None]               # (n, 3, 1, 1)
    b = background.astype(np.uint32)[:, :, None, None]
    return ((b * (255 - ink) + s * ink + 127) // 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def load_colored_mnist(split: str = "train", seed: int = 0) -> MnistSplit:
    """One split of coloured MNIST (see the module docstring); cached in-process,
    the arrays read-only. ~0.2 s for the training split on one core."""
    if split not in _SPLIT_STREAM:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(_SPLIT_STREAM)}")
    grey = load_mnist(None, split)
    rng = np.random.default_rng([int(seed), _SPLIT_STREAM[split]])
    stroke, background = colour_pairs(len(grey), rng)
    images = np.empty((len(grey), 3, *grey.images.shape[1:]), np.uint8)
    for i in range(0, len(grey), 5000):                  # bounded temporaries (uint32)
        images[i:i + 5000] = tint(grey.images[i:i + 5000], stroke[i:i + 5000],
                                  background[i:i + 5000])
    images.flags.writeable = False
    return MnistSplit(images, grey.labels, split, class_names=grey.class_names,
                      source=f"coloured MNIST (generated from the bundled MNIST, seed {seed})")
