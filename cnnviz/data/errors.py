"""The errors every dataset loader raises, in one place so each can import them."""

from __future__ import annotations

__all__ = ["DatasetError", "LoadCancelled"]


class DatasetError(ValueError):
    """A dataset that cannot be trained on; the message is one line naming
    the folder or file and what is wrong, meant for the user as it is."""


class LoadCancelled(Exception):
    """The caller's ``cancel()`` returned True: loading stopped between files,
    nothing was cached."""
