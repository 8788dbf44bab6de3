"""IDX reader/writer: round trips, byte layout, and every way a file can be wrong."""

import gzip
import time

import numpy as np
import pytest

from cnnviz.data.idx import (IMAGES_MAGIC, LABELS_MAGIC, MAX_IDX_BYTES, IdxError, read_idx,
                             read_idx_header, write_idx)

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (5, 3, 4), (2, 3, 1, 6)])
def test_round_trip(tmp_path, dtype, shape, suffix):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(shape) * 100).astype(dtype)
    path = write_idx(tmp_path / f"a-idx{suffix}", a)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.shape == shape
    np.testing.assert_array_equal(a, b)
    assert b.flags.writeable and b.flags.c_contiguous and b.dtype.isnative


def test_header_bytes_are_big_endian_mnist_layout(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = write_idx(tmp_path / "img", images).read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03"  # IMAGES_MAGIC
    assert raw[4:16] == b"\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04"
    assert raw[16:] == images.tobytes()
    labels = write_idx(tmp_path / "lab", np.array([258], np.int16)).read_bytes()
    assert labels == b"\x00\x00\x0b\x01\x00\x00\x00\x01\x01\x02"


def test_gz_suffix_compresses_and_reader_detects_by_content(tmp_path):
    a = np.arange(100, dtype=np.uint8).reshape(4, 25)
    gz = write_idx(tmp_path / "a.gz", a)
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    renamed = gz.rename(tmp_path / "no-suffix")  # gzip content, misleading name
    np.testing.assert_array_equal(read_idx(renamed), a)
    raw_named_gz = tmp_path / "raw.gz"
    raw_named_gz.write_bytes(write_idx(tmp_path / "raw", a).read_bytes())
    np.testing.assert_array_equal(read_idx(raw_named_gz), a)


def test_expected_magic_accepts_and_refuses(tmp_path):
    images = write_idx(tmp_path / "images", np.zeros((2, 28, 28), np.uint8))
    labels = write_idx(tmp_path / "labels", np.zeros(2, np.uint8))
    assert read_idx(images, IMAGES_MAGIC).shape == (2, 28, 28)
    assert read_idx(labels, LABELS_MAGIC).shape == (2,)
    with pytest.raises(IdxError) as e:
        read_idx(labels, IMAGES_MAGIC)
    msg = str(e.value)
    assert str(labels) in msg and "0x00000803" in msg and "0x00000801" in msg


def _header(code, dims):
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, ">u4").tobytes()


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", ["too short"]),
        (b"\x00\x00", ["too short"]),
        (b"hello, this is text", ["not an IDX file"]),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), ["not an IDX file"]),
        (_header(0x0A, [3]) + bytes(3), ["unknown IDX element type 0x0A"]),
        (_header(0x08, []), ["0 dimensions"]),
        (_header(0x08, [2, 3, 4])[:10], ["truncated header"]),
        (_header(0x08, [2, 3, 4]) + bytes(23), ["truncated", "(2, 3, 4)", "24 bytes", "23"]),
        (_header(0x0B, [5]) + bytes(9), ["truncated", "int16", "10 bytes"]),
        (_header(0x08, [2, 3]) + bytes(10), ["4 unexpected bytes"]),
        (_header(0x08, [2**32 - 1] * 3) + bytes(8), ["over the 1 GiB", "budget"]),  # no MemoryError
        (_header(0x08, [60000, 28, 28]) + bytes(8), ["truncated", "47040000 bytes", "only 8"]),
    ],
)
def test_bad_content_gives_clear_error(tmp_path, content, words):
    for path in (tmp_path / "bad-idx", tmp_path / "bad-idx.gz"):
        path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
        with pytest.raises(IdxError) as e:
            read_idx(path)
        msg = str(e.value)
        assert msg.startswith(str(path)), msg
        for w in words:
            assert w in msg, msg


def test_truncated_real_file(tmp_path):
    path = write_idx(tmp_path / "images", np.ones((10, 28, 28), np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(IdxError, match="truncated"):
        read_idx(path)


def test_damaged_gzip(tmp_path):
    data = write_idx(tmp_path / "a.gz", np.random.default_rng(1).integers(0, 255, 5000, np.uint8)).read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(IdxError, match="damaged or truncated gzip"):
        read_idx(cut)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    bad = tmp_path / "flipped.gz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(IdxError, match="gzip"):
        read_idx(bad)


def test_missing_and_unreadable(tmp_path):
    with pytest.raises(IdxError, match="no such file"):
        read_idx(tmp_path / "nope")
    with pytest.raises(IdxError, match="cannot read"):
        read_idx(tmp_path)  # a directory


def test_idx_error_is_value_error():
    assert issubclass(IdxError, ValueError)


@pytest.mark.parametrize("array", [np.zeros(3, np.uint32), np.zeros(3, np.complex64), np.array(5, np.uint8)])
def test_writer_refuses_what_idx_cannot_hold(tmp_path, array):
    with pytest.raises(IdxError):
        write_idx(tmp_path / "x", array)


def _inflating_gzip(path, header_shape, inflated_mib):
    """A gzip whose IDX header declares `header_shape` of uint8 but whose data
    inflates to about `inflated_mib` MiB: one member for the header and the
    first MiB, then the same 1 MiB-of-zeros member repeated (gzip allows
    concatenated members), so making it costs milliseconds, not gigabytes."""
    zeros = gzip.compress(bytes(1 << 20), mtime=0)
    with open(path, "wb") as f:
        f.write(gzip.compress(_header(0x08, header_shape) + bytes(1 << 20), mtime=0))
        for _ in range(inflated_mib - 1):
            f.write(zeros)
    return path


def test_gzip_inflating_past_its_declared_size_is_stopped_early(tmp_path):
    path = _inflating_gzip(tmp_path / "bomb.gz", [600, 28, 28], 5 * 1024)   # 5 GiB inflated
    assert path.stat().st_size < 30 << 20
    t = time.perf_counter()
    with pytest.raises(IdxError) as e:
        read_idx(path)
    assert time.perf_counter() - t < 2          # inflating 5 GiB takes far longer
    msg = str(e.value)
    assert msg.startswith(str(path)) and "inflates past the 470,400 bytes its header declares" in msg


def test_declared_size_over_the_budget_is_refused_before_reading(tmp_path):
    assert MAX_IDX_BYTES == 1 << 30
    path = _inflating_gzip(tmp_path / "big.gz", [7015, 28, 28000], 2)   # declares 5.5 GB
    for read in (read_idx, read_idx_header):
        with pytest.raises(IdxError, match=r"5,499,760,000 bytes\) of data, over the 1 GiB"):
            read(path)
    small = write_idx(tmp_path / "small", np.zeros((4, 5), np.uint8))
    with pytest.raises(IdxError, match=r"over the 19 bytes budget"):
        read_idx(small, max_bytes=19)
    assert read_idx(small, max_bytes=20).shape == (4, 5)


def test_header_alone(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros((3, 4, 5), np.int16))
    h = read_idx_header(path)
    assert h.shape == (3, 4, 5) and h.dtype == np.int16 and h.data_bytes == 120
    with pytest.raises(IdxError, match="expected magic"):
        read_idx_header(path, IMAGES_MAGIC)


def test_writes_are_atomic(tmp_path):
    path = write_idx(tmp_path / "a", np.arange(5, dtype=np.uint8))
    with pytest.raises(IdxError):
        write_idx(path, np.zeros(3, np.complex64))
    np.testing.assert_array_equal(read_idx(path), np.arange(5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
