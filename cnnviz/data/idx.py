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
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IdxError", "read_idx", "write_idx", "IMAGES_MAGIC", "LABELS_MAGIC"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

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


def describe_magic(magic: int) -> str:
    """Human-readable form of a magic number, e.g. '0x00000803 (uint8, 3 dims)'."""
    code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    dt = _TYPES.get(code)
    kind = dt.newbyteorder("=").name if dt is not None else f"unknown type 0x{code:02X}"
    return f"0x{magic:08X} ({kind}, {ndim} dim{'s' if ndim != 1 else ''})"


def _read_bytes(path: Path) -> bytes:
    """Whole (decompressed) content of `path`; IdxError if unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IdxError(f"{path}: no such file") from None
    except OSError as e:
        raise IdxError(f"{path}: cannot read ({e.strerror or e})") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        # EOFError: the stream ends early; BadGzipFile/zlib.error: damaged.
        raise IdxError(f"{path}: damaged or truncated gzip data ({e})") from None


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a NumPy array.

    Args:
        path: the file.
        magic: if given, the expected magic number (e.g. IMAGES_MAGIC); a file
            with any other type or number of dimensions is refused.

    Returns:
        A writable, C-contiguous array in native byte order whose shape is the
        sizes declared in the header and whose dtype is the declared type
        (uint8 for MNIST images (N, rows, cols) and labels (N,)).

    Raises:
        IdxError (a ValueError) naming the file and what is wrong: missing,
        damaged gzip, not IDX, unknown type, unexpected magic, or a data size
        that does not match the header (truncated or with trailing bytes).
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IdxError(f"{path}: {len(data)} bytes is too short for an IDX header (4 bytes or more)")
    if data[0] != 0 or data[1] != 0:
        raise IdxError(
            f"{path}: not an IDX file (first bytes {data[:4].hex(' ')}; an IDX file starts with 00 00)"
        )
    found = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if code not in _TYPES:
        raise IdxError(f"{path}: unknown IDX element type 0x{code:02X} in magic 0x{found:08X}")
    if magic is not None and found != magic:
        raise IdxError(f"{path}: expected magic {describe_magic(magic)}, found {describe_magic(found)}")
    if ndim == 0:
        raise IdxError(f"{path}: IDX header declares 0 dimensions")

    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: truncated header ({len(data)} bytes, {ndim} dims need {header})")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", ndim, offset=4))
    dtype = _TYPES[code]
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize  # object: no overflow
    actual = len(data) - header
    if actual < expected:
        raise IdxError(
            f"{path}: truncated: header declares shape {shape} of {dtype.newbyteorder('=').name} "
            f"({expected} bytes of data), file holds only {actual}"
        )
    if actual > expected:
        raise IdxError(
            f"{path}: {actual - expected} unexpected bytes after the data "
            f"(header declares shape {shape}, {expected} bytes; file holds {actual}); wrong header?"
        )
    arr = np.frombuffer(data, dtype, offset=header).reshape(shape)
    # astype copies: the result owns writable memory in native byte order
    return arr.astype(dtype.newbyteorder("="), order="C")


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write `array` as an IDX file; gzipped if `path` ends in '.gz'.

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
    from cnnviz.atomic import atomic_write_bytes   # here, not at the top: one hunk to merge
    atomic_write_bytes(path, payload)
    return path
