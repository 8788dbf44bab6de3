"""Image loading: formats, depths, channel order, alpha, sizes, and every refusal."""

import os
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from cnnviz.data.imageheader import read_header
from cnnviz.data.images import (
    DECODE_BUDGET_BYTES,
    ImageLoadError,
    ImageTooLargeError,
    fit_size,
    image_size,
    load_image,
    read_image,
    resize,
    sample_images,
    to_grey,
)


def write(path, img, params=()):
    """cv2.imencode + write_bytes: works for any path, unlike cv2.imwrite."""
    ok, buf = cv2.imencode(path.suffix, img, list(params))
    assert ok, path
    path.write_bytes(buf.tobytes())
    return path


def png_bytes(width, height, bit_depth=1, colour_type=0, rows=None):
    """A valid PNG built by hand: a huge all-zero one compresses to a few kB."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    if rows is None:
        channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
        rows = bytes((1 + (width * bit_depth * channels + 7) // 8) * height)  # filter byte + zeros
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def big_png_bytes(width, height, channels=1):
    """An 8-bit all-black PNG compressed row block by row block: 20000 x 20000 grey is
    1.7 MB and takes under a second, without the 400 MB of raw rows in memory."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + width * channels)
    per_block = max(1, (8 << 20) // len(row))
    comp, parts, left = zlib.compressobj(1), [], height
    while left:
        n = min(left, per_block)
        parts.append(comp.compress(row * n))
        left -= n
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, {1: 0, 3: 2, 4: 6}[channels], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts))
            + chunk(b"IEND", b""))


def photo_like(h=256, w=256):
    """A smooth colour picture (BGR uint8): JPEG compresses it as it would a photo."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 100 * np.sin(x / 17), 128 + 100 * np.cos(y / 23),
                    128 + 60 * np.sin((x + y) / 31)], axis=-1)
    return img.astype(np.uint8)


def jpeg_scan(data):
    """(start, end) of the entropy-coded data of a single-scan JPEG."""
    return data.rfind(b"\xff\xda") + 14, data.rfind(b"\xff\xd9")  # SOS header: 12 bytes + marker


def damaged_jpegs(tmp_path):
    """name -> path of a valid JPEG damaged in its scan, as bad copies and bad disks do."""
    data = write(tmp_path / "good.jpg", photo_like()).read_bytes()
    start, end = jpeg_scan(data)
    mid = (start + end) // 2
    zeroed = data[:mid] + bytes(400) + data[mid + 400:]
    removed = data[:mid] + data[mid + 1500:]
    early = data[: start + int((end - start) * 0.9)] + b"\xff\xd9"  # last tenth of the scan gone
    out = {}
    for name, body in (("zeroed", zeroed), ("removed", removed), ("early", early)):
        (tmp_path / f"{name}.jpg").write_bytes(body)
        out[name] = tmp_path / f"{name}.jpg"
    return out


def lying_jpeg(tmp_path, name, width, height):
    """A real 256 x 256 JPEG whose frame header claims width x height."""
    data = bytearray(write(tmp_path / "real.jpg", photo_like()).read_bytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


# BGR as OpenCV writes it
RED, GREEN, BLUE = (0, 0, 255), (0, 255, 0), (255, 0, 0)


def colour_fixture():
    """5 x 7 BGR image: (0,0) red, (0,1) green, (0,2) blue, rest grey 128."""
    img = np.full((5, 7, 3), 128, np.uint8)
    img[0, 0], img[0, 1], img[0, 2] = RED, GREEN, BLUE
    return img


# ---- formats and depths ------------------------------------------------------


@pytest.mark.parametrize(
    "suffix, params", [(".png", ()), (".bmp", ()), (".tiff", ()), (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101))]
)
def test_lossless_colour_formats_exact_in_rgb_order(tmp_path, suffix, params):
    path = write(tmp_path / f"c{suffix}", colour_fixture(), params)
    img = load_image(path)
    assert img.shape == (5, 7, 3) and img.dtype == np.float32 and img.flags.c_contiguous
    np.testing.assert_array_equal(img[0, 0], [1, 0, 0])  # pure red is R = 1 in RGB
    np.testing.assert_array_equal(img[0, 1], [0, 1, 0])
    np.testing.assert_array_equal(img[0, 2], [0, 0, 1])
    np.testing.assert_array_equal(img[1, 1], np.float32(128) / 255)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff", ".jpg"])  # WebP is always colour
def test_grey_files_give_2d(tmp_path, suffix):
    grey = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    img = load_image(write(tmp_path / f"g{suffix}", grey))
    assert img.shape == (16, 16) and img.dtype == np.float32
    tol = 3 / 255 if suffix == ".jpg" else 0
    np.testing.assert_allclose(img, grey / 255, atol=tol)


def test_jpeg_colour_is_rgb(tmp_path):
    img = np.zeros((16, 32, 3), np.uint8)
    img[:, :16] = RED
    img[:, 16:] = BLUE
    out = load_image(write(tmp_path / "c.jpg", img, (cv2.IMWRITE_JPEG_QUALITY, 100)))
    assert out.shape == (16, 32, 3)
    np.testing.assert_allclose(out[8, 4], [1, 0, 0], atol=0.05)
    np.testing.assert_allclose(out[8, 28], [0, 0, 1], atol=0.05)


def test_alpha_is_composited_over_white_by_default(tmp_path):
    bgra = np.zeros((1, 3, 4), np.uint8)
    bgra[0, 0] = (*RED, 255)  # opaque red
    bgra[0, 1] = (*RED, 0)  # fully transparent
    bgra[0, 2] = (*BLUE, 51)  # 20 % blue
    path = write(tmp_path / "a.png", bgra)
    img = load_image(path)
    assert img.shape == (1, 3, 3)
    np.testing.assert_allclose(img[0], [[1, 0, 0], [1, 1, 1], [0.8, 0.8, 1]], atol=1e-6)
    black = load_image(path, background=0.0)
    np.testing.assert_allclose(black[0], [[1, 0, 0], [0, 0, 0], [0, 0, 0.2]], atol=1e-6)


def test_grey_alpha_png_stays_grey(tmp_path):
    # 8-bit grey + alpha (colour type 4), which cv2 cannot write: a hand-made PNG.
    rows = bytes([0, 0, 255, 0, 0, 200, 255])  # filter 0; (grey 0, a 255), (0, 0), (200, 255)
    path = tmp_path / "la.png"
    path.write_bytes(png_bytes(3, 1, 8, 4, rows))
    img = load_image(path)
    assert img.shape == (1, 3)
    np.testing.assert_allclose(img[0], [0, 1, 200 / 255], atol=1e-6)


def test_16_bit_png_scaled_by_65535(tmp_path):
    grey = np.array([[0, 257, 32768, 65535]], np.uint16)
    img = load_image(write(tmp_path / "g16.png", grey))
    np.testing.assert_allclose(img, grey / 65535, rtol=1e-6)
    bgra = np.zeros((1, 2, 4), np.uint16)
    bgra[0, 0] = (0, 0, 65535, 65535)
    bgra[0, 1] = (65535, 0, 0, 0)
    img = load_image(write(tmp_path / "c16.png", bgra))
    np.testing.assert_allclose(img[0], [[1, 0, 0], [1, 1, 1]], atol=1e-6)


def test_tiff_integer_and_float_depths(tmp_path):
    u16 = load_image(write(tmp_path / "u16.tiff", np.array([[0, 65535]], np.uint16)))
    np.testing.assert_array_equal(u16, [[0, 1]])
    i16 = load_image(write(tmp_path / "i16.tiff", np.array([[-32768, 32767]], np.int16)))
    np.testing.assert_array_equal(i16, [[0, 1]])
    f32 = load_image(write(tmp_path / "f.tiff", np.array([[0.25, 1.5, -0.5]], np.float32)))
    np.testing.assert_array_equal(f32, [[0.25, 1, 0]])  # taken as [0, 1], clipped
    nan = write(tmp_path / "nan.tiff", np.array([[0.5, np.nan]], np.float32))
    with pytest.raises(ImageLoadError, match="NaN"):
        load_image(nan)


def test_non_ascii_path(tmp_path):
    path = write(tmp_path / "bild_ü_日本.png", colour_fixture())
    np.testing.assert_array_equal(load_image(path)[0, 0], [1, 0, 0])


def test_jpeg_exif_orientation_is_applied(tmp_path):
    img = np.zeros((16, 32, 3), np.uint8)
    img[:8, :8] = 255  # white block top-left of a wide picture
    jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x0112, 3, 1, 6) + struct.pack("<I", 0)
    exif = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd  # orientation 6: rotate 90 cw
    path = tmp_path / "rotated.jpg"
    path.write_bytes(jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:])
    out = load_image(path)
    assert out.shape == (32, 16, 3)  # upright: now tall
    assert out[:8, 8:].mean() > 0.9 and out[:8, :8].mean() < 0.1  # the block moved top-right


# ---- header sizes ----------------------------------------------------------


@pytest.mark.parametrize(
    "suffix, params",
    [
        (".png", ()),
        (".jpg", ()),
        (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
        (".bmp", ()),
        (".tiff", ()),
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 80)),  # VP8
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101)),  # VP8L
    ],
)
def test_image_size_from_header(tmp_path, suffix, params):
    path = write(tmp_path / f"s{suffix}", np.zeros((37, 53, 3), np.uint8), params)
    assert image_size(path) == (37, 53)
    assert image_size(path).width == 53


def test_header_of_webp_with_alpha_and_gif(tmp_path):
    path = write(tmp_path / "a.webp", np.full((37, 53, 4), 200, np.uint8), (cv2.IMWRITE_WEBP_QUALITY, 80))
    assert path.read_bytes()[12:16] == b"VP8X"
    assert image_size(path) == (37, 53)
    gif = tmp_path / "g.gif"
    gif.write_bytes(b"GIF89a" + struct.pack("<HH", 53, 37) + bytes(10))
    assert image_size(gif) == (37, 53)


def test_header_big_endian_tiff_and_top_down_bmp():
    # big-endian TIFF: width as SHORT (left-justified in its 4 bytes), height as LONG
    entries = struct.pack(">HHIHH", 256, 3, 1, 53, 0) + struct.pack(">HHII", 257, 4, 1, 37)
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 2) + entries
    assert read_header(tiff)[1:3] == (37, 53)
    bmp = bytearray(cv2.imencode(".bmp", np.zeros((37, 53), np.uint8))[1].tobytes())
    bmp[22:26] = struct.pack("<i", -37)  # negative height: rows stored top-down
    assert read_header(bytes(bmp))[1:3] == (37, 53)


def test_header_unknown_or_cut_short_is_none(tmp_path):
    assert read_header(b"P6\n53 37\n255\n") is None
    assert read_header(b"\x89PNG\r\n\x1a\n\x00\x00") is None
    assert read_header(b"\xff\xd8\xff\xe0\x00") is None
    assert read_header(b"II*\x00\xff\xff\x00\x00") is None
    ppm = write(tmp_path / "p.ppm", np.zeros((4, 5, 3), np.uint8))
    assert image_size(ppm) is None and load_image(ppm).shape == (4, 5, 3)


# ---- refusals --------------------------------------------------------------


def _expect_error(path, *words, cls=ImageLoadError, **kwargs):
    with pytest.raises(cls) as e:
        load_image(path, **kwargs)
    msg = str(e.value)
    assert msg.startswith(str(path)), msg
    for w in words:
        assert w in msg, msg
    return e.value


def test_missing_directory_and_empty(tmp_path):
    _expect_error(tmp_path / "nope.png", "no such file")
    _expect_error(tmp_path, "is a directory")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    _expect_error(empty, "empty file (0 bytes)")
    with pytest.raises(ImageLoadError, match="no such file"):
        image_size(tmp_path / "nope.png")


def test_text_renamed_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are my notes, not a picture\n")
    _expect_error(path, "not an image", "'.png'", "b'these ar'")
    assert image_size(path) is None


def test_truncated_png(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    data = write(tmp_path / "full.png", noise).read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    _expect_error(path, "damaged or truncated PNG", "no IEND")
    assert image_size(path) == (64, 64)  # the header itself is intact


def test_png_with_damaged_body(tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    _expect_error(path, "damaged or truncated PNG")


def test_truncated_jpeg(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    data = write(tmp_path / "full.jpg", noise).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * 0.9)])  # libjpeg alone would pad it with grey
    _expect_error(path, "truncated JPEG")


@pytest.mark.parametrize("name", ["zeroed", "removed"])
def test_damaged_jpeg_scan_loads_with_a_warning(tmp_path, name, caplog):
    path = damaged_jpegs(tmp_path)[name]
    loaded = read_image(path)
    assert loaded.pixels.shape == (256, 256, 3)
    (warning,) = loaded.warnings
    assert warning.startswith(f"{name}.jpg: the JPEG data is damaged (libjpeg: Corrupt JPEG data"), warning
    assert warning.endswith(("may be wrong or shifted", "shows as flat grey")), warning
    load_image(path)  # the plain call logs it
    assert any("Corrupt JPEG data" in r.getMessage() for r in caplog.records)


def test_jpeg_missing_its_last_rows_says_how_much(tmp_path):
    loaded = read_image(damaged_jpegs(tmp_path)["early"])
    (warning,) = loaded.warnings
    assert "premature end of data segment" in warning and "shows as flat grey" in warning
    percent = int(warning.split("the bottom ")[1].split("%")[0])
    assert 3 <= percent <= 20, warning
    assert (loaded.pixels[-3:] == np.float32(128) / 255).all()  # libjpeg's fill


def test_good_jpeg_has_no_warning_and_stderr_still_works(tmp_path, capfd):
    loaded = read_image(write(tmp_path / "good.jpg", photo_like()))
    assert loaded.warnings == ()
    os.write(2, b"after the decode\n")  # fd 2 is given back after the capture
    assert "after the decode" in capfd.readouterr().err


def test_jpeg_mostly_missing_is_refused(tmp_path):
    path = lying_jpeg(tmp_path, "tall.jpg", 1024, 1024)  # passes the size check, decodes grey
    _expect_error(path, "the JPEG data ends early: the bottom 9", "of its 1024 x 1024 pixels",
                  "premature end of data segment", "header claims a larger image")


def test_jpeg_header_claiming_20000_squared_is_refused_before_decoding(tmp_path):
    path = lying_jpeg(tmp_path, "lie.jpg", 20000, 20000)
    _expect_error(path, "its header claims 20000 x 20000 pixels, but the file holds only",
                  "that size needs at least 781 KB", "damaged or its header is wrong",
                  max_pixels=2048 * 2048, downscale=True)


# a flipped data byte: libpng reports a CRC error or whatever the byte broke first
@pytest.mark.parametrize("damage, why", [("idat byte", "(libpng: "),
                                          ("crc", "(libpng: IDAT: CRC error)"),
                                          ("cut in idat", "no IEND chunk"),
                                          ("rows missing", "(libpng: Not enough image data)")])
def test_damaged_png_is_refused(tmp_path, damage, why):
    img = photo_like(64, 64)
    data = bytearray(cv2.imencode(".png", img)[1].tobytes())
    i = data.find(b"IDAT")
    n = struct.unpack(">I", data[i - 4 : i])[0]
    if damage == "idat byte":
        data[i + 4 + n // 2] ^= 0xFF
    elif damage == "crc":
        data[i + 4 + n] ^= 0xFF
    elif damage == "cut in idat":
        data = data[: i + 4 + n // 2]
    else:  # a valid stream with half the rows: header and CRCs all correct
        rows = b"".join(b"\x00" + img[r].tobytes() for r in range(32))
        data = png_bytes(64, 64, 8, 2, rows=rows)
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    _expect_error(path, "damaged or truncated PNG", why)


def test_decode_over_the_memory_budget_is_refused_with_the_figure(tmp_path):
    path = tmp_path / "vast.png"
    path.write_bytes(png_bytes(30000, 20000, 8, 6, rows=b""))  # header only: refused before decoding
    _expect_error(path, "30000 x 20000 pixels needs about 4.8 GB",
                  f"more than the {DECODE_BUDGET_BYTES / 1e9:.1f} GB", max_pixels=2048 * 2048,
                  downscale=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_downscale_of_20000_squared_png_peak_memory(tmp_path):
    """Decoded at half size by OpenCV: the peak is the 400 MB decode buffer plus a
    quarter, not twice the full size (808 MB measured with IMREAD_UNCHANGED)."""
    path = tmp_path / "big.png"
    path.write_bytes(big_png_bytes(20000, 20000))
    code = (
        "import re, sys, time\n"
        "from cnnviz.data.images import load_image\n"
        "t = time.perf_counter()\n"
        "img = load_image(sys.argv[1], max_pixels=2048 * 2048, downscale=True)\n"
        "status = open('/proc/self/status').read()\n"
        "print(img.shape, img.max(), time.perf_counter() - t,\n"
        "      int(re.search(r'VmHWM:\\s*(\\d+) kB', status).group(1)) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         check=True, timeout=120)
    shape, top, seconds, peak_mb = out.stdout.rsplit(" ", 3)
    assert shape.startswith("(2048, 2048)") and float(top) == 0
    assert int(peak_mb) < 700, f"peak {peak_mb} MB"
    print(f"20000 x 20000 grey PNG, downscale: {float(seconds):.1f} s, peak {peak_mb} MB")


def test_image_load_errors_are_value_errors():
    assert issubclass(ImageLoadError, ValueError) and issubclass(ImageTooLargeError, ImageLoadError)


def test_huge_png_refused_from_header(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes(20000, 20000))  # ~50 kB file, 400 MB once decoded
    assert path.stat().st_size < 100_000
    assert image_size(path) == (20000, 20000)
    err = _expect_error(path, "20000 x 20000", "400.0 MP", "downscale=True", cls=ImageTooLargeError)
    assert err.size == (20000, 20000) and err.max_pixels == 25_000_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_huge_png_refused_without_decoding(tmp_path):
    """In a fresh process, so that its peak memory says whether it was decoded.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
    across exec, so a big pytest process would make this fail for nothing.
    """
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes(20000, 20000))
    code = (
        "import re, sys\n"
        "from cnnviz.data.images import load_image, ImageTooLargeError\n"
        "try:\n    load_image(sys.argv[1])\nexcept ImageTooLargeError:\n"
        "    status = open('/proc/self/status').read()\n"
        "    print(int(re.search(r'VmHWM:\\s*(\\d+) kB', status).group(1)) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    peak_mb = int(out.stdout)
    assert peak_mb < 300, f"peak RSS {peak_mb} MB: the 400 MB image was decoded"


def test_size_limit_applies_to_formats_without_header_parser(tmp_path):
    ppm = write(tmp_path / "p.ppm", np.zeros((40, 50, 3), np.uint8))
    err = _expect_error(ppm, "50 x 40", cls=ImageTooLargeError, max_pixels=500)
    assert err.size == (40, 50)
    assert load_image(ppm, max_pixels=500, downscale=True).shape == (20, 25, 3)


# ---- downscaling -----------------------------------------------------------


def test_downscale_png_equals_load_then_resize(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (600, 900, 3), np.uint8)
    path = write(tmp_path / "big.png", img)
    small = load_image(path, max_pixels=60_000, downscale=True)
    assert small.shape == (200, 300, 3)
    # decoded at half size (OpenCV's 2 x 2 average, as INTER_AREA), then shrunk as uint8
    # before the float conversion: equal up to two roundings to uint8
    half = resize(load_image(path), (300, 450))
    np.testing.assert_allclose(small, resize(half, (200, 300)), atol=1 / 255 + 1e-6)


def test_downscale_with_alpha_composites_first(tmp_path):
    bgra = np.zeros((40, 60, 4), np.uint8)
    bgra[:, :, 2] = 255  # red...
    bgra[:, ::2, 3] = 255  # ...opaque in every other column, transparent between
    small = load_image(write(tmp_path / "a.png", bgra), max_pixels=600, downscale=True)
    assert small.shape == (20, 30, 3)
    np.testing.assert_allclose(small[..., 0], 1)  # red over white stays R = 1
    # half the area was white; composited at the file's 8 bits (in strips, to bound memory)
    np.testing.assert_allclose(small[..., 1:], 0.5, atol=0.5 / 255 + 1e-6)


def test_downscale_jpeg_decodes_reduced(tmp_path):
    img = np.zeros((1600, 1200, 3), np.uint8)
    img[:] = (40, 160, 220)  # BGR of an orange-ish colour
    path = write(tmp_path / "big.jpg", img, (cv2.IMWRITE_JPEG_QUALITY, 95))
    small = load_image(path, max_pixels=100_000, downscale=True)
    h, w, _ = small.shape
    assert h * w <= 100_000 and h * w > 95_000 and abs(h / w - 4 / 3) < 0.01
    np.testing.assert_allclose(small.mean(axis=(0, 1)), np.array([220, 160, 40]) / 255, atol=0.02)


def test_downscale_huge_one_bit_png(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(4000, 3000))
    out = load_image(path, max_pixels=120_000, downscale=True)
    assert out.shape == (300, 400) and out.max() == 0


def test_fit_size():
    assert fit_size((10, 20), 200) == (10, 20)
    assert fit_size((1000, 2000), 20_000) == (100, 200)
    h, w = fit_size((20000, 20000), 25_000_000)
    assert h == w == 5000
    assert fit_size((7, 100_000), 1000) == (1, 1000)
    assert fit_size((100_000, 7), 1000) == (1000, 1)
    with pytest.raises(ValueError):
        fit_size((10, 10), 0)


# ---- helpers ---------------------------------------------------------------


def test_to_grey_bt601():
    rgb = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0]]], np.float32)
    np.testing.assert_allclose(to_grey(rgb), [[0.299, 0.587, 0.114, 1, 0]], atol=1e-6)
    assert to_grey(rgb).dtype == np.float32 and to_grey(rgb).max() <= 1
    g = np.random.default_rng(0).random((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(to_grey(g), g)
    with pytest.raises(ValueError):
        to_grey(np.zeros((3, 4, 4), np.float32))


def test_resize_area_when_shrinking_and_shape_order():
    checker = np.indices((4, 6)).sum(0) % 2  # alternating 0/1
    small = resize(checker.astype(np.float32), (2, 3))
    assert small.shape == (2, 3) and small.dtype == np.float32
    np.testing.assert_allclose(small, 0.5)  # area averaging, no aliasing
    rgb = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    big = resize(rgb, (11, 13))
    assert big.shape == (11, 13, 3) and big.min() >= rgb.min() and big.max() <= rgb.max()
    assert resize(rgb, (5, 7)) is not rgb
    with pytest.raises(ValueError):
        resize(rgb, (0, 3))


def test_sample_images():
    samples = sample_images()
    assert list(samples) == ["astronaut", "brick", "camera", "chelsea", "coffee"]
    assert load_image(samples["camera"]).shape == (512, 512)
    assert load_image(samples["brick"]).shape == (512, 512)
    chelsea = load_image(samples["chelsea"])
    assert chelsea.shape == (300, 451, 3) and 0 <= chelsea.min() and chelsea.max() <= 1
    assert (samples["camera"].parent / "PROVENANCE.md").is_file()
