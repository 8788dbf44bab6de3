"""Load pictures with OpenCV as float32 in [0, 1], RGB order.

The one place in cnnviz.data that uses cv2. Decisions made here:
- Files are read as bytes and decoded with `cv2.imdecode`, so paths with
  non-ASCII characters work (cv2.imread fails on them on some platforms).
- PNG, TIFF, WebP, BMP... are decoded IMREAD_UNCHANGED (keeps 16-bit and
  alpha). JPEG, which has no alpha, is decoded with IMREAD_ANYCOLOR |
  IMREAD_ANYDEPTH so its EXIF orientation is applied: phone photos come
  out upright.
- Integer pixels are scaled by their type's range (uint8 by 255, uint16 by
  65535); float pixels are taken as already in [0, 1] and clipped to it.
- Alpha is composited over a background, white by default (how a browser or
  viewer shows a transparent picture); the alpha channel is not returned.
- Grey files (grey + alpha too) give (H, W); colour files give (H, W, 3),
  converted from OpenCV's BGR once, here. WebP has no grey mode: always colour.
- Size is checked from the header before decoding (see imageheader.py), so
  a tiny file declaring 20000 x 20000 pixels is refused without allocating
  gigabytes; `downscale=True` shrinks it to fit instead, decoding at 1/2 to
  1/8 size where OpenCV can (see _reduction).
- Memory: the decode's peak is estimated from the header and refused above
  DECODE_BUDGET_BYTES (2 GB), with the figure. Measured peaks (VmHWM) with
  downscale to 2048 px, OpenCV 5.0: a 20000 x 20000 grey PNG 0.5 GB, RGB
  PNG 1.5 GB (libpng decodes the full size; OpenCV halves it after).
- A JPEG whose scan is damaged decodes anyway (libjpeg only prints a warning
  on stderr): the warning is caught (stderr_capture.py) and returned in
  LoadedImage.warnings; when most of the picture is missing (the decoder's
  flat grey fill, e.g. a header claiming far more pixels than the file
  holds) the file is refused instead.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from cnnviz.data.imageheader import HeaderInfo, read_header, sniff_format
from cnnviz.data.paths import IMAGES_DIR
from cnnviz.data.stderr_capture import captured_stderr

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DECODE_BUDGET_BYTES",
    "ImageLoadError",
    "LoadedImage",
    "read_image",
    "ImageTooLargeError",
    "ImageSize",
    "load_image",
    "image_size",
    "fit_size",
    "to_grey",
    "resize",
    "sample_images",
]

# 25 megapixels: any phone photo; as float32 RGB that is 300 MB already.
DEFAULT_MAX_PIXELS = 25_000_000

# Estimated peak bytes of one decode (see _decode_cost): above it a file is refused.
DECODE_BUDGET_BYTES = 2_000_000_000

# A JPEG whose bottom this fraction or more is the decoder's grey fill is refused.
MISSING_FRACTION_REFUSED = 0.5

# libjpeg's warnings about damaged data (jerror.h, JWRN_*): the picture is wrong somewhere.
_JPEG_DAMAGE = ("Corrupt JPEG data", "Premature end of JPEG file")
_JPEG_DATA_ENDS = ("premature end of data segment", "Premature end of JPEG file")

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


class ImageLoadError(ValueError):
    """A file could not be loaded as an image; the message names the file and why."""


class ImageSize(NamedTuple):
    height: int
    width: int


class LoadedImage(NamedTuple):
    """Pixels as load_image returns them, and what the user should be told about them."""

    pixels: np.ndarray
    warnings: tuple[str, ...] = ()


class ImageTooLargeError(ImageLoadError):
    """The image has more pixels than allowed; `size` and `max_pixels` say by how much."""

    def __init__(self, path: Path, size: ImageSize, max_pixels: int):
        self.path, self.size, self.max_pixels = path, ImageSize(*size), max_pixels
        h, w = size
        fh, fw = fit_size(size, max_pixels)
        super().__init__(
            f"{path}: {w} x {h} pixels ({h * w / 1e6:.1f} MP) is more than the limit of "
            f"{max_pixels / 1e6:.1f} MP; load it with downscale=True to shrink it to {fw} x {fh}"
        )


def fit_size(size: tuple[int, int], max_pixels: int) -> ImageSize:
    """The largest (height, width) with the aspect ratio of `size` and at most max_pixels pixels."""
    h, w = size
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be at least 1, got {max_pixels}")
    if h * w <= max_pixels:
        return ImageSize(h, w)
    s = math.sqrt(max_pixels / (h * w))
    nh, nw = int(h * s), int(w * s)
    if nh < 1:  # a very thin strip: keep one row, as wide as allowed
        return ImageSize(1, min(w, max_pixels))
    if nw < 1:
        return ImageSize(min(h, max_pixels), 1)
    return ImageSize(nh, nw)


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read() if limit is None else f.read(limit)
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageLoadError(f"{path}: is a directory, not an image file") from None
    except OSError as e:
        raise ImageLoadError(f"{path}: cannot read ({e.strerror or e})") from None
    if not data:
        raise ImageLoadError(f"{path}: empty file (0 bytes), not an image")
    return data


def image_size(path: str | os.PathLike) -> ImageSize | None:
    """(height, width) read from the file's header without decoding, or None.

    None means the format is not one whose header we parse (PNG, JPEG, BMP,
    GIF, WebP, TIFF) or the header is damaged. A JPEG's EXIF rotation is not
    applied here: height and width may come out swapped for such photos.
    """
    path = Path(path)
    data = _read_bytes(path, 1 << 20)
    info = read_header(data)
    if info is None and data[:2] == b"\xff\xd8" and len(data) == 1 << 20:
        info = read_header(_read_bytes(path))  # frame header behind large metadata
    return None if info is None else ImageSize(info.height, info.width)


def load_image(
    path: str | os.PathLike,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    downscale: bool = False,
    background: float = 1.0,
) -> np.ndarray:
    """Load an image file as float32 in [0, 1].

    Args:
        path: PNG, JPEG, BMP, TIFF, WebP, or anything else OpenCV decodes.
        max_pixels: refuse (ImageTooLargeError) images with more pixels...
        downscale: ...unless this is True: then shrink to fit max_pixels,
            keeping the aspect ratio (INTER_AREA; JPEGs are decoded at 1/2,
            1/4 or 1/8 scale directly when that is enough, 8-bit PNGs at 1/2,
            which saves memory).
        background: grey level in [0, 1] that transparent pixels are
            composited over (1.0 = white).

    Returns:
        C-contiguous float32 array in [0, 1]: (H, W) for a grey file,
        (H, W, 3) in RGB order for a colour one. Warnings about damaged data
        are logged; read_image returns them instead.

    Raises:
        ImageLoadError (a ValueError) naming the file: missing, a directory,
        empty, not an image, truncated or damaged, mostly missing, over the
        decode memory budget, unsupported channels; ImageTooLargeError (a
        subclass) when too large and not downscaling.
    """
    loaded = read_image(path, max_pixels=max_pixels, downscale=downscale, background=background)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return loaded.pixels


def read_image(
    path: str | os.PathLike,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    downscale: bool = False,
    background: float = 1.0,
) -> LoadedImage:
    """load_image, with the decoder's warnings (one line each, naming the file) returned."""
    path = Path(path)
    data = _read_bytes(path)
    info = read_header(data)

    flags = cv2.IMREAD_UNCHANGED
    reduction = 1
    if info is not None and info.format == "jpeg":
        flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH  # applies EXIF orientation
    if info is not None and info.height * info.width > max_pixels:
        if not downscale:
            raise ImageTooLargeError(path, ImageSize(info.height, info.width), max_pixels)
        reduction, flags = _reduction(info, max_pixels, flags)
    if info is not None:
        _check_budget(path, info, reduction)
    if info is not None and info.format == "jpeg":
        _check_jpeg_data(path, data, info)

    img, damage = _decode_with_messages(path, data, flags, info.format if info else None)
    warnings = _jpeg_warnings(path, img, damage)
    too_big = img.shape[0] * img.shape[1] > max_pixels
    if too_big and not downscale:  # formats whose header we do not parse
        raise ImageTooLargeError(path, ImageSize(*img.shape[:2]), max_pixels)
    has_alpha = img.ndim == 3 and img.shape[2] in (2, 4)
    grey_file = info is not None and info.channels in (1, 2)
    if too_big and has_alpha and img.dtype in (np.uint8, np.uint16):
        # composite in strips at the file's depth: a full-size float copy is 4x the size, and more
        img = _over_in_strips(img, background, grey_file)
        has_alpha = False
    if too_big and not has_alpha and img.dtype in (np.uint8, np.uint16, np.float32):
        # shrink before the float copy, which is 4x the size of uint8 pixels
        img = resize(img, fit_size(img.shape[:2], max_pixels))
    img = _to_unit_float(path, img)
    # OpenCV expands grey + alpha (or grey with a transparent colour) to BGRA
    img = _to_grey_or_rgb(path, img, background, grey_file)
    if img.shape[0] * img.shape[1] > max_pixels:  # alpha: composite first, then shrink
        img = resize(img, fit_size(img.shape[:2], max_pixels))
    return LoadedImage(np.ascontiguousarray(img, dtype=np.float32), tuple(warnings))


def _reduction(info: HeaderInfo, max_pixels: int, flags: int) -> tuple[int, int]:
    """(r, flag) to decode at 1/r size, r the largest that still leaves >= max_pixels.

    libjpeg-turbo decodes a JPEG at 1/2, 1/4 or 1/8 directly (DCT scaling).
    OpenCV 5 decodes other formats at full size and then resizes with
    INTER_LINEAR_EXACT; at 1/2 that is an exact 2 x 2 average (no aliasing)
    and halves the peak memory of an 8-bit PNG (measured: 20000 x 20000 RGB,
    2.3 GB -> 1.5 GB), so PNGs use 1/2 at most. The reduced flags drop alpha
    and 16 bits, so only 8-bit PNGs without alpha are reduced.
    """
    grey = info.channels == 1
    if info.format == "jpeg":
        factors = (8, 4, 2)
    elif info.format == "png" and info.bit_depth == 8 and info.channels in (1, 3):
        factors = (2,)
    else:
        return 1, flags
    table = {
        8: (cv2.IMREAD_REDUCED_COLOR_8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
        4: (cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
        2: (cv2.IMREAD_REDUCED_COLOR_2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
    }
    for r in factors:
        if (info.height // r) * (info.width // r) >= max_pixels:
            return r, table[r][1 if grey else 0]
    return 1, flags


def _decode_cost(info: HeaderInfo, reduction: int) -> int:
    """Estimated peak bytes of decoding (measured with OpenCV 5.0, see the module docstring).

    A full-size decode peaks at twice the pixels (the codec's buffer and the
    returned array); a PNG reduced by OpenCV at the full size plus two reduced
    copies; a JPEG reduced by libjpeg at twice the reduced size.
    """
    channels = info.channels or 4  # unknown: assume the worst
    sample = 2 if (info.bit_depth or 8) > 8 else 1
    full = info.height * info.width * channels * sample
    if reduction == 1:
        return 2 * full
    reduced = math.ceil(info.height / reduction) * math.ceil(info.width / reduction) * channels * sample
    return 2 * reduced if info.format == "jpeg" else full + 2 * reduced


def _check_budget(path: Path, info: HeaderInfo, reduction: int) -> None:
    cost = _decode_cost(info, reduction)
    if cost > DECODE_BUDGET_BYTES:
        raise ImageLoadError(
            f"{path}: decoding its {info.width} x {info.height} pixels needs about "
            f"{cost / 1e9:.1f} GB of memory, more than the {DECODE_BUDGET_BYTES / 1e9:.1f} GB "
            f"cnnviz allows for one image; shrink it with an image editor first"
        )


def _check_jpeg_data(path: Path, data: bytes, info: HeaderInfo) -> None:
    """Refuse a JPEG that is cut off, or far too short for the size its header claims."""
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        # libjpeg fills a cut-off JPEG with grey and only warns: refuse it here.
        raise ImageLoadError(f"{path}: truncated JPEG (no end-of-image marker after the last scan)")
    if not info.jpeg_huffman or info.jpeg_scan_offset is None:
        return  # arithmetic coding can pack a flat block into less than a bit
    # Huffman codes are at least one bit long, and every 8 x 8 block of the
    # first scan codes at least its DC difference: at least one bit per block.
    blocks = math.ceil(info.height / 8) * math.ceil(info.width / 8)
    needed = blocks // 8
    held = len(data) - info.jpeg_scan_offset
    if held < needed:
        raise ImageLoadError(
            f"{path}: its header claims {info.width} x {info.height} pixels, but the file holds "
            f"only {_kb(held)} of image data where that size needs at least {_kb(needed)}: "
            f"the file is damaged or its header is wrong"
        )


def _kb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB" if n >= 1e3 else f"{n} bytes"


def _decode_with_messages(path: Path, data: bytes, flags: int,
                          fmt: str | None) -> tuple[np.ndarray, list[str]]:
    """_decode, and the damage warnings libjpeg printed for a JPEG; other lines pass on.

    A PNG that fails gets libpng's reason ("IDAT: CRC error") in its message.
    """
    if fmt not in ("jpeg", "png"):
        return _decode(path, data, flags), []
    failure = None
    with captured_stderr() as lines:
        try:
            img = _decode(path, data, flags)
        except ImageLoadError as exc:
            failure = exc
    damage = [line for line in lines if line.startswith(_JPEG_DAMAGE if fmt == "jpeg" else
                                                        "libpng error: ")]
    others = [line for line in lines if line not in damage]
    if others:  # not the decoder's: give them back to whoever reads stderr
        os.write(2, ("\n".join(others) + "\n").encode())
    if failure is not None:
        reason = damage[0].replace("libpng error: ", "libpng: ") if damage else ""
        raise ImageLoadError(f"{failure} ({reason})" if reason else str(failure)) from None
    return img, damage


def _jpeg_warnings(path: Path, img: np.ndarray, damage: list[str]) -> list[str]:
    """One warning for a damaged scan; refuse when most of the picture is the decoder's fill."""
    if not damage:
        return []
    what = damage[0] if len(damage) == 1 else f"{damage[0]}, and {len(damage) - 1} more"
    missing = 0.0
    if any(line.endswith(_JPEG_DATA_ENDS) for line in damage):
        missing = _grey_fill_fraction(img)
    if missing >= MISSING_FRACTION_REFUSED:
        h, w = img.shape[:2]
        raise ImageLoadError(
            f"{path}: the JPEG data ends early: the bottom {missing:.0%} of its {w} x {h} pixels "
            f"is not in the file (libjpeg: {what}); the file is cut short or its header claims "
            f"a larger image than it holds"
        )
    shown = (f"the bottom {missing:.0%} is missing and shows as flat grey" if missing >= 0.005
             else "some rows or blocks may be wrong or shifted")
    return [f"{path.name}: the JPEG data is damaged (libjpeg: {what}); {shown}"]


def _grey_fill_fraction(img: np.ndarray) -> float:
    """Fraction of rows, from the bottom up, that are all 128: libjpeg's fill for missing data."""
    h = img.shape[0]
    mid = 128 if img.dtype == np.uint8 else 32768
    bottom = h
    strip = 64
    while bottom > 0:
        top = max(0, bottom - strip)
        flat = (img[top:bottom] == mid).reshape(bottom - top, -1).all(axis=1)
        if not flat.all():
            bottom = top + int(np.flatnonzero(~flat)[-1]) + 1
            break
        bottom = top
    return (h - bottom) / h


def _over_in_strips(img: np.ndarray, background: float, grey_file: bool) -> np.ndarray:
    """BGRA / grey-alpha at 8 or 16 bits -> colour (or grey) over the background, same dtype."""
    top = np.iinfo(img.dtype).max
    c = img.shape[2]
    colour_channels = 1 if (c == 2 or grey_file) else 3
    out = np.empty(img.shape[:2] + (colour_channels,), img.dtype)
    for r in range(0, img.shape[0], 256):
        block = img[r:r + 256].astype(np.float32) / top
        colour = block[..., :colour_channels]
        alpha = block[..., c - 1:]
        mixed = _over(colour, alpha, background) * top + 0.5
        out[r:r + 256] = mixed.astype(img.dtype)
    return out if colour_channels == 3 else out[..., 0]


def _decode(path: Path, data: bytes, flags: int) -> np.ndarray:
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as e:
        reason = str(e).strip().splitlines()[-1]
        raise ImageLoadError(f"{path}: OpenCV could not decode it ({reason})") from None
    if img is not None:
        return img
    fmt = sniff_format(data)
    if fmt is None:
        claimed = f" (its name ends in {path.suffix!r}, but the content is not that format)" if (
            path.suffix.lower() in _IMAGE_SUFFIXES
        ) else ""
        raise ImageLoadError(
            f"{path}: not an image OpenCV can read{claimed}; the file starts with {data[:8]!r}"
        )
    hint = ""
    if fmt == "png" and b"IEND" not in data[-64:]:
        hint = " (no IEND chunk at the end: the file is cut short)"
    raise ImageLoadError(f"{path}: damaged or truncated {fmt.upper()} file{hint}")


def _to_unit_float(path: Path, img: np.ndarray) -> np.ndarray:
    """Any decoded dtype -> float32 in [0, 1]."""
    if img.dtype == np.uint8:
        return img / np.float32(255)
    if np.issubdtype(img.dtype, np.integer):
        lo, hi = np.iinfo(img.dtype).min, np.iinfo(img.dtype).max
        return ((img.astype(np.float64) - lo) / (hi - lo)).astype(np.float32)
    if np.issubdtype(img.dtype, np.floating):
        if not np.isfinite(img).all():
            raise ImageLoadError(f"{path}: floating-point image holds NaN or infinite values")
        return np.clip(img, 0.0, 1.0).astype(np.float32, copy=False)
    raise ImageLoadError(f"{path}: unsupported pixel type {img.dtype}")


def _to_grey_or_rgb(path: Path, img: np.ndarray, background: float, grey_file: bool) -> np.ndarray:
    """(H, W[, C]) BGR/BGRA float -> (H, W) grey or (H, W, 3) RGB; alpha composited.

    grey_file: the header says grey, so B = G = R and one channel is kept.
    """
    if img.ndim == 2:
        return img
    c = img.shape[2]
    if grey_file and c in (3, 4):
        return img[..., 0] if c == 3 else _over(img[..., 0], img[..., 3], background)
    if c == 1:
        return img[..., 0]
    if c == 2:  # grey + alpha
        return _over(img[..., 0], img[..., 1], background)
    if c == 3:
        return img[..., ::-1]  # BGR -> RGB
    if c == 4:
        return _over(img[..., 2::-1], img[..., 3:], background)
    raise ImageLoadError(f"{path}: {c} channels per pixel; expected grey, colour or colour + alpha")


def _over(colour: np.ndarray, alpha: np.ndarray, background: float) -> np.ndarray:
    """Straight (non-premultiplied) alpha, as PNG and WebP store it, over a flat background."""
    return colour * alpha + np.float32(background) * (1 - alpha)


_LUMA_601 = np.array([0.299, 0.587, 0.114], np.float32)


def to_grey(img: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) -> grey (H, W) float32 by ITU-R BT.601 luma; (H, W) is returned as float32."""
    img = np.asarray(img)
    if img.ndim == 2:
        return img.astype(np.float32, copy=False)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"to_grey expects (H, W) or (H, W, 3), got shape {img.shape}")
    out = img.astype(np.float32, copy=False) @ _LUMA_601
    return np.clip(out, 0.0, 1.0, out=out)  # weights sum to 1 up to rounding


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W) or (H, W, C) to size = (height, width).

    INTER_AREA when shrinking (averages, no aliasing), INTER_LINEAR when
    enlarging; both keep values inside the input's range. dtype is kept.
    """
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"resize needs a positive (height, width), got {size}")
    if (h, w) == img.shape[:2]:
        return img.copy()
    shrink = h <= img.shape[0] and w <= img.shape[1]
    out = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out.reshape((h, w) + img.shape[2:])  # cv2 drops a trailing 1-channel axis


def sample_images() -> dict[str, Path]:
    """The bundled photographs, name (file stem, e.g. "camera") -> path, sorted by name."""
    return {
        p.stem: p for p in sorted(IMAGES_DIR.iterdir()) if p.suffix.lower() in _IMAGE_SUFFIXES
    }
