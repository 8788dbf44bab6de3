"""MNIST-style preprocessing of a hand-drawn digit (pure NumPy + OpenCV).

MNIST's digits were made this way (LeCun et al.): the ink's bounding box is
scaled, keeping its aspect ratio, to fit a 20x20 box, and that box is placed
in a 28x28 field so that the ink's centre of mass sits at the field's centre.
A drawing preprocessed differently (say, stretched to fill 28x28) looks
nothing like the training data and gets misclassified, which is the point of
showing the converted image beside the canvas.
"""

from __future__ import annotations

import cv2
import numpy as np

FIELD, BOX = 28, 20
CENTRE = 14.0


def mnist_preprocess(ink: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """(H, W) ink in [0, 1] (white digit on black) -> (28, 28) float32 in [0, 1].

    An empty drawing gives an all-zero field."""
    ink = np.asarray(ink, dtype=np.float32)
    rows = np.flatnonzero((ink > threshold).any(axis=1))
    cols = np.flatnonzero((ink > threshold).any(axis=0))
    out = np.zeros((FIELD, FIELD), np.float32)
    if rows.size == 0:
        return out
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    # INTER_AREA averages the covered pixels: anti-aliased edges like MNIST's.
    box = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
    np.clip(box, 0, 1, out=box)
    total = float(box.sum())
    ys, xs = np.indices(box.shape)
    cy = float((ys * box).sum()) / total
    cx = float((xs * box).sum()) / total
    # With pixel (r, c) at coordinates (r, c), MNIST's centres of mass sit at
    # (14, 14) on average (measured on the test set: 13.99, 14.00), not at the
    # geometric middle 13.5: LeCun's centring used that convention.
    top = int(round(CENTRE - cy))
    left = int(round(CENTRE - cx))
    top = min(max(top, 0), FIELD - nh)
    left = min(max(left, 0), FIELD - nw)
    out[top:top + nh, left:left + nw] = box
    return out


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    """(row, col) of the intensity-weighted centre of a 2-D image."""
    ys, xs = np.indices(img.shape)
    total = float(img.sum())
    return float((ys * img).sum()) / total, float((xs * img).sum()) / total
