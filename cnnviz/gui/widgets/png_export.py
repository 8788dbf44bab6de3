"""Views saved as PNG files, atomically (temporary file, then rename)."""

from __future__ import annotations

from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import QWidget

from cnnviz.atomic import atomic_path


def save_png(image: QImage | QPixmap, path) -> None:
    """Write ``image`` to ``path`` as a PNG; the old file stays if anything fails."""
    with atomic_path(path, suffix=".png") as tmp:
        if not image.save(str(tmp), "PNG"):
            raise OSError(f"could not write {path}")


def save_widget_png(widget: QWidget, path) -> None:
    """Render ``widget`` as it looks now to a PNG file."""
    save_png(widget.grab(), path)
