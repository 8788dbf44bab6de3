"""Open/save dialogs that start in the last directory used and remember the new one."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QFileDialog, QWidget

from cnnviz.gui.settings import last_dir, remember_dir

IMAGE_FILTER = ("Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp *.pgm *.ppm *.pbm);;"
                "All files (*)")


def ask_open_path(parent: QWidget | None, caption: str, name_filter: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, caption, last_dir(), name_filter)
    if not path:
        return None
    remember_dir(path)
    return path


def ask_save_path(parent: QWidget | None, caption: str, name_filter: str,
                  default_name: str, suffix: str) -> str | None:
    """``suffix`` (".png") is appended when the user typed a name without it."""
    start = str(Path(last_dir()) / default_name)
    path, _ = QFileDialog.getSaveFileName(parent, caption, start, name_filter)
    if not path:
        return None
    if not path.lower().endswith(suffix):
        path += suffix
    remember_dir(path)
    return path
