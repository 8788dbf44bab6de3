"""Read an image's format and size from its first bytes, without decoding it.

Decoding allocates height x width x channels before anyone can say no (a
20000 x 20000 RGB PNG of a few kilobytes decodes to 1.2 GB), so the loader
asks the header first. Covers PNG, JPEG, BMP, GIF, WebP and TIFF; anything
else (or a header too damaged to read) gives None, and the loader checks the
size after decoding instead.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = ["HeaderInfo", "read_header", "sniff_format", "PNG_SIGNATURE"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# JPEG start-of-frame markers (the ones carrying the size): C0-CF except
# C4 (Huffman tables), C8 (reserved) and CC (arithmetic conditioning).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class HeaderInfo(NamedTuple):
    """What the header says; a field is None when the header does not tell."""

    format: str  # "png", "jpeg", "bmp", "gif", "webp", "tiff"
    height: int
    width: int
    channels: int | None = None
    bit_depth: int | None = None  # PNG: bits per sample (1, 2, 4, 8, 16)
    jpeg_huffman: bool | None = None  # JPEG: Huffman-coded (False: arithmetic)
    jpeg_scan_offset: int | None = None  # JPEG: where the first scan's data starts


def sniff_format(data: bytes) -> str | None:
    """The format the file's signature claims ("png", "jpeg", ...), or None."""
    for name, matches, _parse in _PARSERS:
        if matches(data):
            return name
    return None


def read_header(data: bytes) -> HeaderInfo | None:
    """Format and size from the first bytes of an image file, or None if unknown."""
    for _name, matches, parse in _PARSERS:
        if matches(data):
            try:
                return parse(data)
            except (struct.error, IndexError):
                return None  # header cut short: the decoder will report it
    return None


def _png(d: bytes) -> HeaderInfo | None:
    # signature, then the IHDR chunk: length, b"IHDR", width, height, depth, colour type
    if d[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", d[16:24])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(d[25])
    return HeaderInfo("png", h, w, channels, bit_depth=d[24])


def _jpeg(d: bytes) -> HeaderInfo | None:
    """The frame header's size, and where the first scan starts (if in the bytes given)."""
    frame = None
    i = 2
    while i + 4 <= len(d):
        if d[i] != 0xFF:
            return None  # lost sync: not a well-formed marker sequence
        marker = d[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker == 0xD9:  # end of image before any scan
            return frame
        (length,) = struct.unpack(">H", d[i + 2 : i + 4])
        if marker == 0xDA:  # start of scan: its entropy-coded data follows the header
            return None if frame is None else frame._replace(jpeg_scan_offset=i + 2 + length)
        if marker in _JPEG_SOF and frame is None:
            h, w = struct.unpack(">HH", d[i + 5 : i + 9])
            if not (h and w):
                return None
            frame = HeaderInfo("jpeg", h, w, d[i + 9], jpeg_huffman=marker < 0xC8)
        i += 2 + length
    return frame


def _bmp(d: bytes) -> HeaderInfo | None:
    (dib_size,) = struct.unpack("<I", d[14:18])
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        w, h = struct.unpack("<HH", d[18:22])
    else:
        w, h = struct.unpack("<ii", d[18:26])
    return HeaderInfo("bmp", abs(h), abs(w))  # negative height: rows stored top-down


def _gif(d: bytes) -> HeaderInfo:
    w, h = struct.unpack("<HH", d[6:10])
    return HeaderInfo("gif", h, w)


def _webp(d: bytes) -> HeaderInfo | None:
    chunk = d[12:16]
    if chunk == b"VP8 ":  # lossy: frame tag (3 bytes), start code 9d 01 2a, 14-bit sizes
        w, h = struct.unpack("<HH", d[26:30])
        return HeaderInfo("webp", h & 0x3FFF, w & 0x3FFF)
    if chunk == b"VP8L":  # lossless: signature 0x2f, then 14 bits width-1, 14 bits height-1
        (bits,) = struct.unpack("<I", d[21:25])
        return HeaderInfo("webp", ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1)
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1 and height-1
        w = int.from_bytes(d[24:27], "little") + 1
        h = int.from_bytes(d[27:30], "little") + 1
        return HeaderInfo("webp", h, w)
    return None


def _tiff(d: bytes) -> HeaderInfo | None:
    e = "<" if d[:2] == b"II" else ">"
    (ifd,) = struct.unpack(e + "I", d[4:8])
    (count,) = struct.unpack(e + "H", d[ifd : ifd + 2])
    size = {}
    for k in range(count):  # a few dozen 12-byte entries at most
        tag, typ, _n = struct.unpack(e + "HHI", d[ifd + 2 + 12 * k : ifd + 10 + 12 * k])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            value = d[ifd + 10 + 12 * k : ifd + 14 + 12 * k]
            size[tag] = struct.unpack(e + ("H" if typ == 3 else "I"), value[: 2 if typ == 3 else 4])[0]
    if 256 in size and 257 in size:
        return HeaderInfo("tiff", size[257], size[256])
    return None


_PARSERS = (  # (name, signature test, size parser)
    ("png", lambda d: d.startswith(PNG_SIGNATURE), _png),
    ("jpeg", lambda d: d.startswith(b"\xff\xd8\xff"), _jpeg),
    ("bmp", lambda d: d.startswith(b"BM"), _bmp),
    ("gif", lambda d: d[:6] in (b"GIF87a", b"GIF89a"), _gif),
    ("webp", lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", _webp),
    ("tiff", lambda d: d[:4] in (b"II*\x00", b"MM\x00*"), _tiff),
)
