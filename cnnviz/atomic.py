"""Writing files so that nothing a user made is ever half-written.

Every save goes to a temporary file beside the target (``.NAME.XXXXXXXX.tmp``),
is fsynced, given the mode the target should have, and only then renamed over
it (a rename within a directory is atomic); the directory is fsynced after.
A crash, a kill -9, a full disk or an exception leaves the old file as it was.

Modes: a new file gets what the umask gives (0644 under umask 022, 0600 under
077), an existing file keeps its own mode, as if it had been written in place;
mkstemp's 0600 never reaches the target.

Temporaries of a killed save are removed at the next save of the same target:
see ``_remove_stale_temporaries``. No Qt here, so the engine can use it too.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:                  # not POSIX: stale temporaries are judged by age only
    fcntl = None

__all__ = ["atomic_path", "atomic_open", "atomic_write_text", "atomic_write_bytes",
           "atomic_save_npy", "atomic_savetxt", "current_umask", "save_failure_message",
           "STALE_AGE_WITHOUT_LOCKS"]

# mkstemp's random part: 8 characters from this alphabet (CPython's tempfile).
_RANDOM_PART = "[a-z0-9_]{8}"
# Only without flock (not POSIX): a temporary this old is taken as abandoned.
STALE_AGE_WITHOUT_LOCKS = 24 * 3600.0
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    os.umask can only read the mask by setting it; setting it briefly to 0
    while another thread creates a file would give that file mode 0666. So on
    Linux read "Umask:" from /proc/self/status (kernel 4.7+); elsewhere fall
    back to the set-and-restore dance, under a lock (which only guards our own
    callers)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        old = os.umask(0o077)        # for that instant, the strictest: never looser
        os.umask(old)
    return old


def _mode_for(target: Path) -> tuple[int, os.stat_result | None]:
    """The mode the saved file must have: the existing file's own, else what
    the umask gives a new file (as open(path, "w") would)."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return 0o666 & ~current_umask(), None
    return stat.S_IMODE(st.st_mode), st


def _unlocked(fd: int) -> bool:
    """True when nobody else holds the flock; we then hold it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:                  # EWOULDBLOCK: a live writer has it
        return False


def _open_to_lock(path: Path) -> int | None:
    """A descriptor to flock ``path`` with, without following a symlink or
    blocking on a FIFO; write-only if its mode forbids reading."""
    flags = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    for access in (os.O_RDONLY, os.O_WRONLY):
        try:
            return os.open(path, access | flags)
        except PermissionError:
            continue
        except OSError:
            return None
    return None


def _remove_stale_temporaries(target: Path, suffix: str) -> None:
    """Remove ``.NAME.XXXXXXXX<suffix>`` files of ``target`` that no one is writing.

    Why a lock, not an age or a PID: a writer holds an exclusive flock on its
    temporary for the whole save, and the kernel drops it when the writer dies,
    even by SIGKILL. So "we can take the lock" means exactly "abandoned", at
    once (no waiting some seconds, which would let a kill loop pile them up),
    whatever the save's length, and without the PID reuse and same-process
    threads that fool os.kill(pid, 0). flock (not fcntl's POSIX locks) is per
    open file, so two threads of one process exclude each other too.
    A temporary is unlinked only while its lock is held; a writer checks, once
    it holds its lock, that its file is still linked (see ``_new_temporary``).
    Only names exactly of mkstemp's shape are touched: ``.kernel.json.bak.tmp``
    or another target's temporaries are not."""
    pattern = re.compile(re.escape(f".{target.name}.") + _RANDOM_PART + re.escape(suffix))
    try:
        names = [e.name for e in os.scandir(target.parent)
                 if e.name.startswith(f".{target.name}.") and pattern.fullmatch(e.name)]
    except OSError:
        return
    for name in names:
        stale = target.parent / name
        fd = _open_to_lock(stale)
        if fd is None:               # gone already (renamed by its writer), or not a plain file
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            if fcntl is not None:
                if not _unlocked(fd):
                    continue
            elif st.st_mtime > time.time() - STALE_AGE_WITHOUT_LOCKS:
                continue
            if os.stat(stale, follow_symlinks=False).st_ino == st.st_ino:  # still that file
                os.unlink(stale)
        except OSError:
            pass
        finally:
            os.close(fd)


def _new_temporary(target: Path, suffix: str) -> tuple[int, Path]:
    """Create, and lock, a fresh temporary beside ``target``: (fd, path)."""
    while True:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
        if fcntl is None:
            return fd, Path(tmp)
        # Blocking: a cleaner holds the lock only for an instant. Between mkstemp and
        # here a cleaner may have taken our new file for a dead one and unlinked it
        # (it unlinks only under the lock): then the link count is 0; start again.
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:              # no flock on this file system: cleaners there cannot
            return fd, Path(tmp)     # lock it either, so they take it for a live one
        if os.fstat(fd).st_nlink > 0:
            return fd, Path(tmp)
        os.close(fd)


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable; best effort (not every system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _descriptor_of(fd: int, tmp: Path) -> int:
    """``fd`` if it is still the file at ``tmp``, else a new one for the file
    there now (a writer given the path may have replaced the file)."""
    now, st = os.stat(tmp), os.fstat(fd)
    if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
        return fd
    new = os.open(tmp, os.O_RDONLY)
    os.close(fd)
    return new


def _finish(fd: int, tmp: Path, mode: int, old: os.stat_result | None) -> None:
    """Give the written temporary the target's mode (and, best effort, its
    owner) and fsync it, before the rename makes it the target."""
    st = os.fstat(fd)
    if old is not None and (old.st_uid, old.st_gid) != (st.st_uid, st.st_gid):
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except (OSError, AttributeError):
            pass                     # not ours to give away; the mode still applies
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:
        os.chmod(tmp, mode)
    os.fsync(fd)                     # the data, before the name points at it


@contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path beside ``path``; write it inside the block.
    On success it replaces ``path``; on any exception it is removed.

    A symbolic link is followed: the file it points to is replaced and the
    link stays a link."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target, suffix)
    mode, old = _mode_for(target)
    fd, tmp = _new_temporary(target, suffix)
    try:
        yield tmp
        fd = _descriptor_of(fd, tmp)
        _finish(fd, tmp, mode, old)
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    finally:
        os.close(fd)                 # releases the lock, after the rename
    _fsync_directory(target.parent)


@contextmanager
def atomic_open(path, mode: str = "wb", **kwargs):
    """``open()`` for writing, atomically (see ``atomic_path``), fsynced."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def atomic_write_text(path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_save_npy(path, array) -> None:
    """np.save to exactly ``path`` (np.save given a name would add ".npy"
    to "a.NPY" or "a.dat"), atomically; never pickles."""
    import numpy as np

    with atomic_open(path, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)


def atomic_savetxt(path, rows, **kwargs) -> None:
    """np.savetxt to exactly ``path``, atomically (given a name ending in
    ".gz" np.savetxt would gzip; given a file it writes what was asked)."""
    import numpy as np

    with atomic_open(path, "wb") as f:
        np.savetxt(f, rows, **kwargs)


_WHY = {
    "ENOSPC": "the disk is full",
    "EDQUOT": "the disk quota is used up",
    "EFBIG": "the file is larger than this file system or its limits allow",
    "EROFS": "the file system is read-only",
    "EACCES": "permission denied (is the folder writable?)",
    "EPERM": "permission denied (is the folder writable?)",
    "EISDIR": "that name is a folder",
    "ENOTDIR": "a part of the path is a file, not a folder",
    "ENAMETOOLONG": "the name is too long",
}


def save_failure_message(path, exc: OSError) -> str:
    """One sentence for the user on a failed atomic save, saying why and that
    the file already there is untouched (the save never wrote over it)."""
    import errno

    path = Path(path)
    why = _WHY.get(errno.errorcode.get(exc.errno or 0, ""), exc.strerror or str(exc))
    kept = (f"The existing {path.name} was left as it was." if path.is_file()
            else "Nothing was written.")
    return f"Could not save {path}: {why}. {kept}"
