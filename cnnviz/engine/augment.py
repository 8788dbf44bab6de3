"""Data augmentation for training: random shifts, vectorized over the batch."""

from __future__ import annotations

import numpy as np


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Shift each image by its own random (dy, dx), each in [-max_shift, max_shift].

    images: (N, H, W) or (N, C, H, W), any dtype. Pixels shifted in are 0
    (MNIST's background). Returns a new array of the same shape and dtype;
    ``max_shift <= 0`` returns ``images`` itself. One gather for the whole
    batch, no Python loop over samples:

        out[i, ..., r, c] = images[i, ..., r - dy[i], c - dx[i]]   (0 outside)
    """
    s = int(max_shift)
    if s <= 0:
        return images
    if images.ndim not in (3, 4):
        raise ValueError(f"random_shift expects (N, H, W) or (N, C, H, W), got {images.shape}")
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    dy = rng.integers(-s, s + 1, size=n)
    dx = rng.integers(-s, s + 1, size=n)
    pad = [(0, 0)] * (images.ndim - 2) + [(s, s), (s, s)]
    padded = np.pad(images, pad)                          # (N, [C,] H+2s, W+2s)
    rows = np.arange(h) + s - dy[:, None]                 # (N, H) rows to read
    cols = np.arange(w) + s - dx[:, None]                 # (N, W)
    if images.ndim == 3:
        return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    c = images.shape[1]
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
