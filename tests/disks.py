"""Small real file systems for tests of a full disk (Linux, root)."""

import errno
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(folder: Path, size: str):
    """Mount a tmpfs of ``size`` (e.g. "64k") on ``folder``, a real ENOSPC
    when it fills. Needs the right to mount (root, no seccomp/user-namespace
    ban): the test is skipped with the reason otherwise."""
    folder.mkdir(exist_ok=True)
    if sys.platform != "linux":
        pytest.skip("tmpfs is Linux only")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs",
                            str(folder)], capture_output=True, text=True, timeout=30)
    except OSError as e:
        pytest.skip(f"cannot run mount: {e}")
    if r.returncode != 0:
        pytest.skip(f"mounting a tiny tmpfs is not permitted here: {r.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def fill(folder: Path) -> None:
    """Write a filler file until the file system says it is full."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while f.write(b"\0" * 4096):
                pass
        except OSError as e:
            assert e.errno == errno.ENOSPC
