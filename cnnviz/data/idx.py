"""Read and write IDX files, the format MNIST and its look-alikes ship in.

An IDX file is a big-endian header followed by the raw array:

    bytes 0-1   zero
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16,
                0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions, d
    then        d sizes, each a big-endian uint32
    then        prod(sizes) elements, big-endian, row-major

So MNIST images start with magic 0x00000803 (uint8, 3 dims: count, rows,
cols) and labels with 0x00000801 (uint8, 1 dim: count). Files may be gzipped;
the reader tells by the content (gzip starts with 1f 8b, IDX with 00 00),
not by the name.

Memory is bounded by what the header declares, checked before anything is
allocated: a file declaring more than MAX_IDX_BYTES of data is refused, and
the data is streamed (gzip inflated chunk by chunk) straight into the result,
so a gzip member that inflates past its declared size is stopped a little
after it, never inflated whole.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnviz.atomic import atomic_open

__all__ = ["IdxError", "IdxHeader", "read_idx", "read_idx_header", "write_idx",
           "IMAGES_MAGIC", "LABELS_MAGIC", "MAX_IDX_BYTES"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

MAX_IDX_BYTES = 1 << 30
"""The most data an IDX file may declare: 1 GiB (1,073,741,824 bytes).

The whole array is held in memory, so this bounds what opening any IDX file
can cost. MNIST's training images are 47 MB and EMNIST ByClass, the largest
common MNIST look-alike, 547 MB: both fit with room to spare. A header
declaring more (60000 x 60000 x 60000 is 216 TB) is refused, with the figure,
before a byte of data is read or allocated."""

_CHUNK = 1 << 20   # bytes read (or inflated) at a time; also how far past its declared size a gzip is followed

# type byte -> big-endian dtype as stored in the file
_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in _TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IdxError(ValueError):
    """An IDX file is missing, damaged or not what the caller expected."""


@dataclass(frozen=True)
class IdxHeader:
    """What an IDX file declares: its magic number, element type and shape."""

    magic: int
    dtype: np.dtype          # native byte order
    shape: tuple[int, ...]

    @property
    def data_bytes(self) -> int:
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize  # object: no overflow


def describe_magic(magic: int) -> str:
    """Human-readable form of a magic number, e.g. '0x00000803 (uint8, 3 dims)'."""
    code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    dt = _TYPES.get(code)
    kind = dt.newbyteorder("=").name if dt is not None else f"unknown type 0x{code:02X}"
    return f"0x{magic:08X} ({kind}, {ndim} dim{'s' if ndim != 1 else ''})"


def _size(n: int) -> str:
    """'196 TiB (216,000,000,000,000 bytes)': the figure a message gives."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


class _Reader:
    """A file opened for reading, transparently inflated if gzipped; every
    failure becomes an IdxError naming the file."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.raw = open(path, "rb", buffering=0)
        except FileNotFoundError:
            raise IdxError(f"{path}: no such file") from None
        except OSError as e:
            raise IdxError(f"{path}: cannot read ({e.strerror or e})") from None
        self.gzipped = self._call(self.raw.read, 2) == _GZIP_MAGIC
        self.raw.seek(0)
        self.f = gzip.GzipFile(fileobj=self.raw, mode="rb") if self.gzipped else self.raw

    def _call(self, fn, *args):
        try:
            return fn(*args)
        except (OSError, EOFError, zlib.error) as e:
            if self.gzipped:   # EOFError: the stream ends early; BadGzipFile/zlib.error: damaged
                raise IdxError(f"{self.path}: damaged or truncated gzip data ({e})") from None
            raise IdxError(f"{self.path}: cannot read ({getattr(e, 'strerror', None) or e})") from None

    def read(self, n: int) -> bytes:
        """Up to n bytes; fewer only at the end of the (inflated) data."""
        out = b""
        while len(out) < n:
            chunk = self._call(self.f.read, min(n - len(out), _CHUNK))
            if not chunk:
                break
            out += chunk
        return out

    def readinto(self, view: memoryview) -> int:
        """Fill `view` a chunk at a time (no second copy of the data); bytes read."""
        got = 0
        while got < len(view):
            n = self._call(self.f.readinto, view[got:got + _CHUNK])
            if not n:
                break
            got += n
        return got

    def file_size(self) -> int:
        return os.fstat(self.raw.fileno()).st_size

    def close(self):
        if self.gzipped:
            self.f.close()
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_header(r: _Reader, magic: int | None) -> IdxHeader:
    path = r.path
    head = r.read(4)
    if len(head) < 4:
        raise IdxError(f"{path}: {len(head)} bytes is too short for an IDX header (4 bytes or more)")
    if head[0] != 0 or head[1] != 0:
        raise IdxError(
            f"{path}: not an IDX file (first bytes {head.hex(' ')}; an IDX file starts with 00 00)"
        )
    found = int.from_bytes(head, "big")
    code, ndim = head[2], head[3]
    if code not in _TYPES:
        raise IdxError(f"{path}: unknown IDX element type 0x{code:02X} in magic 0x{found:08X}")
    if magic is not None and found != magic:
        raise IdxError(f"{path}: expected magic {describe_magic(magic)}, found {describe_magic(found)}")
    if ndim == 0:
        raise IdxError(f"{path}: IDX header declares 0 dimensions")
    dims = r.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise IdxError(f"{path}: truncated header ({4 + len(dims)} bytes, {ndim} dims need "
                       f"{4 + 4 * ndim})")
    shape = tuple(int(s) for s in np.frombuffer(dims, ">u4"))
    return IdxHeader(found, _TYPES[code].newbyteorder("="), shape)


def _check_budget(path, h: IdxHeader, max_bytes: int):
    if h.data_bytes > max_bytes:
        raise IdxError(
            f"{path}: header declares shape {h.shape} of {h.dtype.name}, {_size(h.data_bytes)} "
            f"of data, over the {_size(max_bytes)} budget for an IDX file (MAX_IDX_BYTES); "
            f"a damaged header?"
        )


def read_idx_header(path: str | os.PathLike, magic: int | None = None,
                    max_bytes: int = MAX_IDX_BYTES) -> IdxHeader:
    """The header of an IDX file (raw or gzipped), checked as ``read_idx``
    checks it (magic, declared size within ``max_bytes``), without reading
    the data. IdxError names the file and what is wrong."""
    path = Path(path)
    with _Reader(path) as r:
        h = _read_header(r, magic)
    _check_budget(path, h, max_bytes)
    return h


def read_idx(path: str | os.PathLike, magic: int | None = None,
             max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a NumPy array.

    Args:
        path: the file.
        magic: if given, the expected magic number (e.g. IMAGES_MAGIC); a file
            with any other type or number of dimensions is refused.
        max_bytes: the most data the header may declare (MAX_IDX_BYTES).

    Returns:
        A writable, C-contiguous array in native byte order whose shape is the
        sizes declared in the header and whose dtype is the declared type
        (uint8 for MNIST images (N, rows, cols) and labels (N,)).

    Raises:
        IdxError (a ValueError) naming the file and what is wrong: missing,
        damaged gzip, not IDX, unknown type, unexpected magic, a declared size
        over ``max_bytes``, or a data size that does not match the header
        (truncated, with trailing bytes, or a gzip inflating past it).

    Memory: the result plus one chunk (1 MiB), whatever the file holds.
    """
    path = Path(path)
    with _Reader(path) as r:
        h = _read_header(r, magic)
        _check_budget(path, h, max_bytes)
        shape, dtype, expected = h.shape, h.dtype, h.data_bytes
        header = 4 + 4 * len(shape)
        declared = (f"header declares shape {shape} of {dtype.name} "
                    f"({expected} bytes of data)")
        if not r.gzipped:   # a plain file's size is known: check it before reading
            actual = r.file_size() - header
            if actual < expected:
                raise IdxError(f"{path}: truncated: {declared}, file holds only {actual}")
            if actual > expected:
                raise IdxError(
                    f"{path}: {actual - expected} unexpected bytes after the data "
                    f"(header declares shape {shape}, {expected} bytes; file holds {actual}); "
                    f"wrong header?")
        arr = np.empty(shape, dtype)
        got = r.readinto(memoryview(arr.reshape(-1).view(np.uint8)))
        if got < expected:
            raise IdxError(f"{path}: truncated: {declared}, file holds only {got}")
        extra = len(r.read(_CHUNK))   # gzip only: a plain file was sized above
        if extra == _CHUNK:
            raise IdxError(
                f"{path}: the gzip data inflates past the {expected:,} bytes its header declares "
                f"(shape {shape}); stopped reading {_CHUNK // (1 << 20)} MiB past it: damaged or "
                f"forged header?")
        if extra:
            raise IdxError(
                f"{path}: {extra} unexpected bytes after the data (header declares shape {shape}, "
                f"{expected} bytes; file holds {expected + extra}); wrong header?")
    if not _TYPES[(h.magic >> 8) & 0xFF].isnative:
        arr.byteswap(inplace=True)   # the bytes were big-endian
    return arr


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write `array` as an IDX file (atomically); gzipped if `path` ends in '.gz'.

    Args:
        path: destination file.
        array: at least 1-D; dtype uint8, int8, int16, int32, float32 or
            float64 (the types IDX can hold); every size below 2**32.

    Returns:
        The path written.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _TYPE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise IdxError(f"{path}: IDX cannot hold dtype {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise IdxError(f"{path}: IDX needs 1 to 255 dimensions, array has {array.ndim}")
    if any(s >= 2**32 for s in array.shape):
        raise IdxError(f"{path}: a size in {array.shape} does not fit in 32 bits")
    payload = (
        bytes([0, 0, code, array.ndim])
        + np.asarray(array.shape, ">u4").tobytes()
        + np.ascontiguousarray(array, _TYPES[code]).tobytes()
    )
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)  # mtime=0: same bytes every time
    with atomic_open(path, "wb") as f:
        f.write(payload)
    return path
