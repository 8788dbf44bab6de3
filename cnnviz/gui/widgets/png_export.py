"""Views saved as PNG files, atomically (temporary file, then rename)."""

from __future__ import annotations

from PyQt6.QtCore import QBuffer, QByteArray, QIODevice
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import QWidget

from cnnviz.atomic import atomic_write_bytes


def save_png(image: QImage | QPixmap, path) -> None:
    """Write ``image`` to ``path`` as a PNG; the old file stays if anything fails.

    Encoded in memory first: QImage.save to a file only answers False, while
    writing the bytes ourselves gives the OSError that says why (a full disk)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OSError(f"the image ({image.width()}x{image.height()}) could not be encoded as PNG")
    atomic_write_bytes(path, bytes(data))


def save_widget_png(widget: QWidget, path) -> None:
    """Render ``widget`` as it looks now to a PNG file."""
    save_png(widget.grab(), path)
