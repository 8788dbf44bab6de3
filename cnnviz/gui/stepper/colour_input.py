"""The colour picture a 3-channel network is fed, shown as one RGB image
above its three channel maps (the maps alone do not say what the picture is)."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import QLabel

CHANNEL_TITLES = ("R (red)", "G (green)", "B (blue)")
SIDE_PX = 112               # drawn size of the picture's longer side


def channel_titles(channels: int, name: str) -> list[str]:
    if channels == 1:
        return [name]
    if channels == 3:
        return list(CHANNEL_TITLES)
    return [f"channel {c}" for c in range(channels)]


def rgb_bytes(x: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> (H, W, 3) uint8, C-contiguous."""
    rgb = np.clip(np.asarray(x[0], np.float32).transpose(1, 2, 0), 0, 1)
    return np.ascontiguousarray(np.round(rgb * 255).astype(np.uint8))


class ColourPicture(QLabel):
    """Hidden for a grey input; for a colour one its RGB picture, pixels kept sharp."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._shown: np.ndarray | None = None
        self.hide()

    def show_input(self, x: np.ndarray) -> None:
        if x.ndim != 4 or x.shape[1] != 3:
            self._shown = None
            self.hide()
            return
        rgb = rgb_bytes(x)
        if self._shown is not None and np.array_equal(self._shown, rgb):
            return
        self._shown = rgb
        h, w = rgb.shape[:2]
        image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        scale = max(1, SIDE_PX // max(h, w))
        self.setPixmap(QPixmap.fromImage(image).scaled(
            w * scale, h * scale, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation))
        self.setToolTip(f"the colour picture the network is fed, {w}x{h}, drawn {scale}x")
        self.show()
