"""CIFAR-10's binary version (cnnviz/data/cifar10.py), from small files the
tests write in exactly that format: 1 label byte, then the R, G and B planes
of a 32x32 image, 1,024 bytes each, row by row."""

import numpy as np
import pytest

from cnnviz.data import cifar10
from cnnviz.data.datasets import DatasetError, DatasetSpec, LoadCancelled, load_dataset

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"]


def record(label: int, seed: int) -> tuple[bytes, np.ndarray]:
    """One record and the (3, 32, 32) RGB image it holds."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)
    red, green, blue = (image[c].tobytes() for c in range(3))     # each row by row
    return bytes([label]) + red + green + blue, image


def write_cifar(folder, per_file=3, meta=True):
    """data_batch_1..5.bin and test_batch.bin of ``per_file`` records each;
    returns {file name: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for k, name in enumerate((*cifar10.TRAIN_FILES, cifar10.TEST_FILE)):
        recs = [record((k * per_file + i) % 10, 100 * k + i) for i in range(per_file)]
        (folder / name).write_bytes(b"".join(r for r, _ in recs))
        written[name] = (np.stack([im for _, im in recs]),
                         np.array([(k * per_file + i) % 10 for i in range(per_file)], np.uint8))
    if meta:
        (folder / cifar10.META_FILE).write_text("\n".join(NAMES) + "\n\n")
    return written


def test_the_official_binary_format_reads_unchanged(tmp_path):
    written = write_cifar(tmp_path / "cifar-10-batches-bin")
    # the folder the archive unpacks to, or the folder holding it
    for path in (tmp_path / "cifar-10-batches-bin", tmp_path):
        train, test = load_dataset(DatasetSpec("cifar10", path))
        assert train.images.shape == (15, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
        expected = np.concatenate([written[n][0] for n in cifar10.TRAIN_FILES])
        np.testing.assert_array_equal(train.images, expected)          # R, G, B planes
        np.testing.assert_array_equal(train.labels, np.arange(15) % 10)
        np.testing.assert_array_equal(test.images, written[cifar10.TEST_FILE][0])
        np.testing.assert_array_equal(test.labels, written[cifar10.TEST_FILE][1])
        assert train.class_names == test.class_names == tuple(NAMES)
        assert train.channels == 3 and "CIFAR-10" in train.source


def test_class_names_from_the_meta_file_or_the_official_ones(tmp_path):
    write_cifar(tmp_path / "a", meta=False)
    assert load_dataset(DatasetSpec("cifar10", tmp_path / "a"))[0].class_names == tuple(NAMES)
    write_cifar(tmp_path / "b")
    (tmp_path / "b" / cifar10.META_FILE).write_text("\n".join(n.upper() for n in NAMES))
    assert load_dataset(DatasetSpec("cifar10", tmp_path / "b"))[0].class_names[0] == "AIRPLANE"
    (tmp_path / "b" / cifar10.META_FILE).write_text("plane\ncar\n")     # too few names
    with pytest.raises(DatasetError, match="batches.meta.txt: names 2 classes but the "
                                           "dataset's labels go up to 9"):
        load_dataset(DatasetSpec("cifar10", tmp_path / "b"))


def test_grey_is_the_luma_of_the_planes(tmp_path):
    written = write_cifar(tmp_path)
    train, test = load_dataset(DatasetSpec("cifar10", tmp_path, colour=False))
    assert test.images.shape == (3, 32, 32) and test.channels == 1
    r, g, b = (written[cifar10.TEST_FILE][0][:, c].astype(float) for c in range(3))
    np.testing.assert_allclose(test.images, 0.299 * r + 0.587 * g + 0.114 * b, atol=0.51)


def test_a_truncated_or_odd_sized_file_names_the_file_and_its_size(tmp_path):
    write_cifar(tmp_path)
    bad = tmp_path / "data_batch_3.bin"
    bad.write_bytes(bad.read_bytes()[:-100])                    # cut short
    with pytest.raises(DatasetError) as e:
        load_dataset(DatasetSpec("cifar10", tmp_path))
    assert str(e.value) == (
        f"{bad}: 9,119 bytes, not a whole number of 3,073-byte CIFAR-10 records (1 label byte "
        f"+ 32x32x3 pixels; 2 records and 2,973 bytes over); the file is cut short or not "
        f"CIFAR-10's binary version")
    bad.write_bytes(b"")
    with pytest.raises(DatasetError, match=r"data_batch_3.bin: 0 bytes, not a whole number"):
        load_dataset(DatasetSpec("cifar10", tmp_path))


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        load_dataset(DatasetSpec("cifar10", tmp_path / "nope"))
    write_cifar(tmp_path)
    (tmp_path / "data_batch_5.bin").unlink()
    (tmp_path / "test_batch.bin").unlink()
    with pytest.raises(DatasetError) as e:
        load_dataset(DatasetSpec("cifar10", tmp_path))
    assert str(e.value).startswith(f"{tmp_path}: data_batch_5.bin, test_batch.bin missing;")


def test_a_label_beyond_the_ten_classes_without_names(tmp_path):
    write_cifar(tmp_path, meta=False)
    rec, _ = record(12, 0)
    (tmp_path / "test_batch.bin").write_bytes(rec)
    with pytest.raises(DatasetError, match="labels go up to 12, but CIFAR-10 has 10 classes"):
        load_dataset(DatasetSpec("cifar10", tmp_path))


def test_progress_cancel_and_the_in_process_cache(tmp_path):
    write_cifar(tmp_path)
    calls = []
    first = load_dataset(DatasetSpec("cifar10", tmp_path), progress=lambda d, t: calls.append(d))
    assert calls == [1, 2, 3, 4, 5, 6]
    assert load_dataset(DatasetSpec("cifar10", tmp_path))[0] is first[0]      # cached
    (tmp_path / "test_batch.bin").write_bytes(record(1, 5)[0] * 2)           # changed: reread
    assert len(load_dataset(DatasetSpec("cifar10", tmp_path))[1]) == 2
    (tmp_path / "test_batch.bin").write_bytes(record(1, 5)[0] * 3)
    with pytest.raises(LoadCancelled):
        load_dataset(DatasetSpec("cifar10", tmp_path), cancel=lambda: True)
