"""Keeping the work: atomic PNG export and the checkpoint file names.

Checkpoints themselves are the trainer's (``Trainer.save_checkpoint``: one
atomic .npz that is also a model file ``cnnviz.engine.load`` opens, plus the
optimizer state, progress and history). The tab only decides *when* they
may be written: never while the training thread is inside a batch."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PyQt6.QtWidgets import QWidget


def save_widget_png(widget: QWidget, path) -> None:
    """Render ``widget`` to a PNG, written atomically (temporary file, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        if not widget.grab().save(tmp, "PNG"):
            raise OSError(f"could not write {path}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
