"""The Training tab's dataset choice kept between sessions (QSettings).

Saved: the kind, its path, and an image folder's size and grey/colour
choice. Restored only if it still makes sense: a kind this version does not
know is ignored, and a saved path that is gone gives a one-line message (the
bundled MNIST is used instead), never an error at start-up.
"""

from __future__ import annotations

from pathlib import Path

from cnnviz.gui.training.dataset_row import KINDS, NEEDS_PATH, describe

PREFIX = "training/dataset/"


def save_dataset(settings, key: tuple) -> None:
    """``key``: a Settings.dataset, (kind, path, size, colour)."""
    kind, path, size, colour = key
    settings.setValue(PREFIX + "kind", kind)
    settings.setValue(PREFIX + "path", path or "")
    settings.setValue(PREFIX + "size", int(size or 0))
    settings.setValue(PREFIX + "colour", "" if colour is None else ("colour" if colour else "grey"))


def restore_dataset(settings) -> tuple[tuple | None, str | None]:
    """(the saved key, or None; a message for the user, or None)."""
    kind = settings.value(PREFIX + "kind", "", type=str)
    if kind not in {k for _, k, _ in KINDS}:
        return None, None
    path = settings.value(PREFIX + "path", "", type=str) or None
    try:
        size = int(settings.value(PREFIX + "size", 0)) or None
    except (TypeError, ValueError):
        size = None
    colour = {"colour": True, "grey": False}.get(settings.value(PREFIX + "colour", "", type=str))
    if kind in NEEDS_PATH:
        if not path:
            return None, None
        if not Path(path).is_dir():
            gone = describe((kind, path, size, colour))
            return None, (f"The dataset used last time, {gone}, is not there any more: "
                          f"the bundled MNIST is chosen instead.")
    return (kind, path if kind in NEEDS_PATH else None, size, colour), None
