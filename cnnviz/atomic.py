"""Writing files so that nothing a user made is ever half-written.

Every save goes to a temporary file beside the target, is flushed to disk,
and only then renamed over it (a rename within a directory is atomic): a
crash, a full disk or an exception leaves the old file as it was. No Qt here,
so the engine can use it too.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path beside ``path``; write it inside the block.
    On success it replaces ``path``; on any exception it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path, mode: str = "wb", **kwargs):
    """``open()`` for writing, atomically (see ``atomic_path``), fsynced."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
