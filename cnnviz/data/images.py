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
  gigabytes; `downscale=True` shrinks it to fit instead.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from cnnviz.data.imageheader import read_header, sniff_format
from cnnviz.data.paths import IMAGES_DIR

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageLoadError",
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

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


class ImageLoadError(ValueError):
    """A file could not be loaded as an image; the message names the file and why."""


class ImageSize(NamedTuple):
    height: int
    width: int


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
            1/4 or 1/8 scale directly when that is enough, which saves memory).
        background: grey level in [0, 1] that transparent pixels are
            composited over (1.0 = white).

    Returns:
        C-contiguous float32 array in [0, 1]: (H, W) for a grey file,
        (H, W, 3) in RGB order for a colour one.

    Raises:
        ImageLoadError (a ValueError) naming the file: missing, a directory,
        empty, not an image, truncated or damaged, unsupported channels;
        ImageTooLargeError (a subclass) when too large and not downscaling.
    """
    path = Path(path)
    data = _read_bytes(path)
    info = read_header(data)

    flags = cv2.IMREAD_UNCHANGED
    if info is not None and info.format == "jpeg":
        flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH  # applies EXIF orientation
    if info is not None and info.height * info.width > max_pixels:
        if not downscale:
            raise ImageTooLargeError(path, ImageSize(info.height, info.width), max_pixels)
        if info.format == "jpeg":
            flags = _jpeg_reduced_flag(info, max_pixels, flags)
    if info is not None and info.format == "jpeg" and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        # libjpeg fills a cut-off JPEG with grey and only warns: refuse it here.
        raise ImageLoadError(f"{path}: truncated JPEG (no end-of-image marker after the last scan)")

    img = _decode(path, data, flags)
    too_big = img.shape[0] * img.shape[1] > max_pixels
    if too_big and not downscale:  # formats whose header we do not parse
        raise ImageTooLargeError(path, ImageSize(*img.shape[:2]), max_pixels)
    has_alpha = img.ndim == 3 and img.shape[2] in (2, 4)
    if too_big and not has_alpha and img.dtype in (np.uint8, np.uint16, np.float32):
        # shrink before the float copy, which is 4x the size of uint8 pixels
        img = resize(img, fit_size(img.shape[:2], max_pixels))
    img = _to_unit_float(path, img)
    # OpenCV expands grey + alpha (or grey with a transparent colour) to BGRA
    grey_file = info is not None and info.channels in (1, 2)
    img = _to_grey_or_rgb(path, img, background, grey_file)
    if img.shape[0] * img.shape[1] > max_pixels:  # alpha: composite first, then shrink
        img = resize(img, fit_size(img.shape[:2], max_pixels))
    return np.ascontiguousarray(img, dtype=np.float32)


def _jpeg_reduced_flag(info, max_pixels: int, flags: int) -> int:
    """Largest libjpeg reduction (8, 4, 2) that still leaves >= max_pixels to shrink from."""
    grey = info.channels == 1
    for r, colour_flag, grey_flag in (
        (8, cv2.IMREAD_REDUCED_COLOR_8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
        (4, cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
        (2, cv2.IMREAD_REDUCED_COLOR_2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
    ):
        if (info.height // r) * (info.width // r) >= max_pixels:
            return grey_flag if grey else colour_flag
    return flags


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
