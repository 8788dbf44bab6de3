"""Catch what a C library prints on stderr while one call runs.

OpenCV decodes JPEGs with libjpeg's default error manager, whose warnings
("Corrupt JPEG data: premature end of data segment") go straight to file
descriptor 2 with fprintf and never reach Python: imdecode still returns an
image, half of it wrong. There is no OpenCV option to get them (its
grfmt_jpeg.cpp only replaces error_exit, not output_message), so the loader
points fd 2 at a temporary file for the length of the decode and reads it back.

Process-wide by nature: a lock keeps two decodes from swapping fd 2 under each
other, and whatever else was printed meanwhile (another thread's log line) is
handed back to the real stderr, so nothing is lost, only delayed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["captured_stderr"]

_lock = threading.Lock()


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Yields a list that, after the block, holds the lines printed on fd 2 inside it.

    If fd 2 cannot be redirected (closed, as under pythonw), the block runs
    uncaptured and the list stays empty.
    """
    lines: list[str] = []
    with _lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield lines
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield lines
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                lines.extend(sink.read().decode("utf-8", "replace").splitlines())
