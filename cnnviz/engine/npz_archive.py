"""Reading a .npz archive a user gave us, within a memory bound.

``np.load`` trusts the file: it inflates a member before anyone sees its
name, allocates whatever shape a .npy header declares, and its error for a
text file suggests ``allow_pickle``. Here, in order:

1. the first bytes say what the file is (empty, text, a single .npy, a pickle);
2. the zip directory is read: every member's name must be one the caller
   allows, and its declared uncompressed size (``ZipInfo.file_size``) within
   the caller's limit for that name, before any member is inflated;
3. an array's .npy header (shape, dtype) is read and returned for the caller
   to check against what it expects, and must not declare more bytes than
   the member holds;
4. only then are the data read, into an array of exactly the declared size,
   and the member must end there. ``zipfile`` stops inflating at the declared
   size and checks the CRC, so a member that lies about its size is cut off
   and refused, never inflated further.

Object dtypes (pickles) are refused from the header: no code in the file ever runs.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")     # a local file header; an empty archive
MAX_NPY_HEADER = 10_000        # bytes of .npy header text (numpy's own default limit)
READ_CHUNK = 1 << 20

# what zipfile raises on a damaged archive, besides OSError
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError,
               NotImplementedError, RuntimeError, struct.error)


class NpzError(ValueError):
    """The archive, or one of its members, cannot be read; the message names
    the member but not the file (the caller adds it)."""


@dataclass(frozen=True)
class NpyHeader:
    shape: tuple
    dtype: np.dtype
    fortran_order: bool
    offset: int            # bytes of magic + header before the data

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=object))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


def fmt_bytes(n: int) -> str:
    """1234567 -> '1.2 MB' (decimal units, as file managers show)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{n} bytes"


def sniff(path: Path, kind: str) -> None:
    """NpzError saying what the file is, unless it starts like a zip archive."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        raise NpzError(f"an empty file (0 bytes), not {kind}")
    if head.startswith(ZIP_MAGICS):
        return
    if head.startswith(NPY_MAGIC):
        raise NpzError(f"a single NumPy array (.npy), not {kind}")
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:     # pickle protocols 2-5
        raise NpzError(f"a Python pickle, not {kind} (cnnviz never loads pickles: they can run code)")
    if b"\x00" not in head and all(b >= 32 or b in b"\t\n\r" for b in head):
        raise NpzError(f"a text file, not {kind}")
    raise NpzError(f"not {kind}: not a zip archive")


class NpzArchive:
    """A .npz opened for bounded reading. Member names are given without the
    ".npy" suffix. ``limit(name)`` returns the largest uncompressed size
    allowed for a member name, or None if the name is not allowed.

        with NpzArchive(path, "a cnnviz model (.npz)", limit) as archive:
            header = archive.header("param/fc1.weight")   # check shape, dtype
            values = archive.read("param/fc1.weight")
    """

    def __init__(self, path, kind: str, limit, max_members: int = 10_000):
        self.path = Path(path)
        sniff(self.path, kind)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except _ZIP_ERRORS as e:
            raise NpzError(f"not {kind}, or truncated: a damaged zip archive ({e})") from None
        try:
            self._members = self._check_directory(limit, max_members, kind)
        except BaseException:
            self._zip.close()
            raise
        self._headers: dict[str, NpyHeader] = {}

    def _check_directory(self, limit, max_members, kind) -> dict[str, zipfile.ZipInfo]:
        infos = self._zip.infolist()
        if len(infos) > max_members:
            raise NpzError(f"{len(infos):,} members; a cnnviz file has at most {max_members:,}")
        members = {}
        for info in infos:
            member = info.filename
            name = member[:-4] if member.endswith(".npy") else None
            allowed = None if name is None else limit(name)
            if allowed is None:
                raise NpzError(f"not {kind}: unexpected member {member[:80]!r}")
            if name in members:
                raise NpzError(f"member {member!r} appears twice")
            if info.file_size > allowed:
                raise NpzError(f"member {member} declares {info.file_size:,} bytes "
                               f"({fmt_bytes(info.file_size)}) uncompressed; at most "
                               f"{fmt_bytes(allowed)} are allowed for it")
            members[name] = info
        return members

    # --- reading -----------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self._members)

    def __contains__(self, name) -> bool:
        return name in self._members

    def header(self, name: str) -> NpyHeader:
        """The member's .npy header, checked to fit in the member's declared size."""
        if name not in self._headers:
            with self._open(name) as f:
                self._headers[name] = self._read_header(name, f)
        return self._headers[name]

    def read(self, name: str) -> np.ndarray:
        """The member's array: exactly the size its header declares."""
        head = self.header(name)
        with self._open(name) as f:
            try:
                f.read(head.offset)
                raw = np.empty(head.nbytes, np.uint8)
                buf = memoryview(raw)
                done = 0
                while done < head.nbytes:
                    chunk = f.read(min(READ_CHUNK, head.nbytes - done))
                    if not chunk:
                        raise NpzError(f"{name}: truncated ({done:,} of {head.nbytes:,} bytes "
                                       f"of array data)")
                    buf[done:done + len(chunk)] = chunk
                    done += len(chunk)
                if f.read(1):
                    raise NpzError(f"{name}: data continue past the declared shape {head.shape}")
            except NpzError:
                raise
            except _ZIP_ERRORS as e:
                raise NpzError(f"{name}: damaged ({e})") from None
        return raw.view(head.dtype).reshape(head.shape, order="F" if head.fortran_order else "C")

    def text(self, name: str, max_chars: int) -> str:
        """A member that holds one string (``np.array(str)``), of at most ``max_chars``."""
        head = self.header(name)
        if head.dtype.kind != "U" or head.shape != ():
            raise NpzError(f"{name}: expected one string, found an array of "
                           f"{_dtype_name(head.dtype)} of shape {head.shape}")
        if head.dtype.itemsize // 4 > max_chars:
            raise NpzError(f"{name}: {head.dtype.itemsize // 4:,} characters; "
                           f"at most {max_chars:,} are allowed")
        return str(self.read(name).item())

    def _open(self, name):
        try:
            return self._zip.open(self._members[name])
        except _ZIP_ERRORS as e:
            raise NpzError(f"{name}: damaged ({e})") from None

    def _read_header(self, name, f) -> NpyHeader:
        info = self._members[name]
        try:
            version = np.lib.format.read_magic(f)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read(f, max_header_size=MAX_NPY_HEADER)
        except _ZIP_ERRORS as e:
            raise NpzError(f"{name}: not a NumPy array ({_first_sentence(e)})") from None
        if any(d < 0 for d in shape) or dtype.itemsize == 0:
            raise NpzError(f"{name}: not a NumPy array (shape {tuple(shape)}, dtype {dtype})")
        if dtype.hasobject:
            raise NpzError(f"{name}: holds Python objects (a pickle); "
                           f"cnnviz never loads pickles: they can run code")
        head = NpyHeader(tuple(shape), dtype, fortran, f.tell())
        if head.offset + head.nbytes > info.file_size:
            raise NpzError(f"{name}: the array header declares shape {head.shape} of "
                           f"{_dtype_name(dtype)} ({fmt_bytes(head.nbytes)}), more than the "
                           f"member holds ({fmt_bytes(info.file_size)})")
        return head

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _dtype_name(dtype: np.dtype) -> str:
    return str(dtype) if dtype.names is None else "a structured dtype"


def _first_sentence(e) -> str:
    """numpy's header errors run to several lines and may suggest
    ``allow_pickle``: keep the first line, without that advice."""
    line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return line.split(" allow_pickle")[0].rstrip(" ,;:")
