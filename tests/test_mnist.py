"""MNIST loading: the bundled files, any directory of the four IDX files, and errors."""

import gzip
import hashlib
import os
import re

import numpy as np
import pytest

from cnnviz.data.idx import IdxError, write_idx
from cnnviz.data.mnist import MNIST_DIR, SPLIT_FILES, load_mnist, load_splits, to_float

# Published per-class counts of MNIST (train, test): a check on the content
# that does not depend on our own files.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _provenance_md5():
    text = (MNIST_DIR / "PROVENANCE.md").read_text()
    table = dict(re.findall(r"^\|\s*([\w-]+-ubyte)\s*\|\s*([0-9a-f]{32})\s*\|", text, re.M))
    assert len(table) == 4, table
    return table


@pytest.mark.parametrize("name", [n for pair in SPLIT_FILES.values() for n in pair])
def test_bundled_files_match_provenance_md5(name):
    raw = gzip.decompress((MNIST_DIR / f"{name}.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == _provenance_md5()[name]


def test_bundled_licence_and_provenance_present():
    licence = (MNIST_DIR / "LICENSE.md").read_text()
    assert "CC BY-SA 3.0" in licence and "LeCun" in licence
    provenance = " ".join((MNIST_DIR / "PROVENANCE.md").read_text().split())
    assert "Creative Commons Attribution-Share Alike 3.0" in provenance


@pytest.mark.parametrize("split, counts", [("train", TRAIN_COUNTS), ("test", TEST_COUNTS)])
def test_bundled_mnist(split, counts):
    ds = load_mnist(split=split)
    n = sum(counts)
    assert len(ds) == n
    assert ds.images.shape == (n, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (n,) and ds.labels.dtype == np.uint8
    assert np.bincount(ds.labels, minlength=10).tolist() == counts
    assert ds.images.min() == 0 and ds.images.max() == 255
    assert ds.images_path.name == SPLIT_FILES[split][0] + ".gz"


def test_first_training_labels_are_the_known_ones():
    assert load_mnist().labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_as_float_is_model_input():
    ds = load_mnist(split="test")
    x = ds.as_float(0, 5)
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0] * 255, ds.images[:5].astype(np.float32))
    assert x.min() == 0.0 and x.max() == 1.0


def test_cached_and_read_only():
    a, b = load_mnist(split="test"), load_mnist(MNIST_DIR, "test")
    assert a.images is b.images and a.labels is b.labels  # same resolved files -> one load
    with pytest.raises(ValueError):
        a.images[0, 0, 0] = 1
    with pytest.raises(ValueError):
        a.labels[0] = 1


def _write_set(root, n_train=7, n_test=3, hw=(20, 24), gz=("train",), seed=0):
    """A small MNIST-style dataset with other sizes and content ('fashion')."""
    rng = np.random.default_rng(seed)
    root.mkdir(exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, *hw), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        suffix = ".gz" if split in gz else ""
        write_idx(root / (SPLIT_FILES[split][0] + suffix), images)
        write_idx(root / (SPLIT_FILES[split][1] + suffix), labels)
        out[split] = images, labels
    return out


@pytest.mark.parametrize("gz", [(), ("train",), ("train", "test")])
def test_directory_dataset_loads_unchanged(tmp_path, gz):
    expected = _write_set(tmp_path / "fashion", gz=gz)
    for split in ("train", "test"):
        ds = load_mnist(str(tmp_path / "fashion"), split)  # str path too
        np.testing.assert_array_equal(ds.images, expected[split][0])
        np.testing.assert_array_equal(ds.labels, expected[split][1])
        assert ds.as_float().shape == (len(ds), 1, 20, 24)
    image, label = load_mnist(tmp_path / "fashion")[3]
    np.testing.assert_array_equal(image, expected["train"][0][3])
    assert label == expected["train"][1][3]


def test_replaced_file_is_reread(tmp_path):
    _write_set(tmp_path, seed=1)
    first = load_mnist(tmp_path, "test")
    new = _write_set(tmp_path, n_test=4, seed=2)
    path = tmp_path / SPLIT_FILES["test"][0]
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))  # coarse clocks: make mtime differ
    second = load_mnist(tmp_path, "test")
    assert len(first) == 3 and len(second) == 4
    np.testing.assert_array_equal(second.images, new["test"][0])


def test_raw_file_preferred_over_gz(tmp_path):
    _write_set(tmp_path)
    name = SPLIT_FILES["test"][1]
    write_idx(tmp_path / (name + ".gz"), np.full(3, 9, np.uint8))
    write_idx(tmp_path / name, np.full(3, 4, np.uint8))
    assert load_mnist(tmp_path, "test").labels.tolist() == [4, 4, 4]


def test_missing_file_lists_what_was_looked_for(tmp_path):
    _write_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    load_mnist(tmp_path, "train")  # the train split is complete
    with pytest.raises(FileNotFoundError) as e:
        load_mnist(tmp_path, "test")
    msg = str(e.value)
    assert str(tmp_path / "t10k-labels-idx1-ubyte") in msg
    assert str(tmp_path / "t10k-labels-idx1-ubyte.gz") in msg


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")


def test_count_mismatch_names_both_files(tmp_path):
    _write_set(tmp_path, gz=())
    write_idx(tmp_path / SPLIT_FILES["test"][1], np.zeros(5, np.uint8))
    with pytest.raises(IdxError) as e:
        load_mnist(tmp_path, "test")
    msg = str(e.value)
    assert "3 images" in msg and "5 labels" in msg
    assert SPLIT_FILES["test"][0] in msg and SPLIT_FILES["test"][1] in msg


def test_swapped_files_are_refused(tmp_path):
    _write_set(tmp_path, gz=())
    images, labels = (tmp_path / n for n in SPLIT_FILES["test"])
    tmp = tmp_path / "swap"
    images.rename(tmp)
    labels.rename(images)
    tmp.rename(labels)
    with pytest.raises(IdxError, match="expected magic 0x00000803"):
        load_mnist(tmp_path, "test")


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        load_mnist(split="validation")


def test_to_float():
    u = np.array([[0, 51], [255, 128]], np.uint8)
    x = to_float(u)
    assert x.shape == (1, 1, 2, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, 0], np.array([[0, 0.2], [1, 128 / 255]], np.float32))
    assert to_float(np.zeros((4, 5, 6), np.uint8)).shape == (4, 1, 5, 6)
    with pytest.raises(TypeError):
        to_float(u.astype(np.float32))
    colour = np.arange(2 * 3 * 5 * 6, dtype=np.uint8).reshape(2, 3, 5, 6)
    np.testing.assert_array_equal(to_float(colour), colour / np.float32(255))
    with pytest.raises(ValueError):
        to_float(np.zeros((2, 1, 1, 5, 6), np.uint8))


def test_count_mismatch_found_from_the_headers(tmp_path):
    """Labels that disagree with the images are named before the data is read:
    here the images' data is missing altogether."""
    _write_set(tmp_path, gz=())
    images = tmp_path / SPLIT_FILES["train"][0]
    images.write_bytes(images.read_bytes()[:16])
    write_idx(tmp_path / SPLIT_FILES["train"][1], np.zeros(9, np.uint8))
    with pytest.raises(IdxError, match="7 images but .* 9 labels"):
        load_mnist(tmp_path, "train")


def test_empty_split_and_empty_images_are_refused(tmp_path):
    _write_set(tmp_path, n_train=0, gz=())
    with pytest.raises(IdxError, match="holds 0 images; a dataset split needs at least one"):
        load_mnist(tmp_path, "train")
    _write_set(tmp_path, hw=(0, 24), gz=())
    with pytest.raises(IdxError, match="images are 0x24 pixels"):
        load_mnist(tmp_path, "test")


def test_splits_of_different_sizes_are_refused_together(tmp_path):
    _write_set(tmp_path, gz=())
    train, test = load_splits(tmp_path)
    assert train.images.shape[1:] == test.images.shape[1:] == (20, 24)
    write_idx(tmp_path / SPLIT_FILES["test"][0], np.zeros((3, 20, 20), np.uint8))
    with pytest.raises(IdxError) as e:
        load_splits(tmp_path)
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / SPLIT_FILES["test"][0]))
    assert "test images are 20x20 but the training images" in msg and "are 20x24" in msg


# --- class names -------------------------------------------------------------------
def test_mnist_is_named_by_its_digits():
    assert load_mnist().class_names == tuple("0123456789")
    assert load_mnist(split="test").class_names == tuple("0123456789")


def test_a_classes_file_names_the_classes_in_label_order(tmp_path):
    _write_set(tmp_path / "set")
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    (tmp_path / "set" / "classes.txt").write_text(
        "\ufeff" + "\n".join(f"  {n} " for n in names) + "\n\n", encoding="utf-8")
    for split in ("train", "test"):
        assert load_mnist(tmp_path / "set", split).class_names == tuple(names)


@pytest.mark.parametrize("text, message", [
    ("a\n\nc\nd\ne\nf\ng\nh\ni\nj\n", "classes.txt, line 2: blank"),
    ("a\nb\nc\n", "names 3 classes but the dataset's labels go up to 9"),
    (b"a\n\xff\n", "not UTF-8 text (byte 2)"),
])
def test_a_bad_classes_file_is_one_line_naming_it(tmp_path, text, message):
    _write_set(tmp_path / "set", seed=1)       # labels up to 9
    path = tmp_path / "set" / "classes.txt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(IdxError) as e:
        load_mnist(tmp_path / "set", "train")
    assert str(path) in str(e.value) and message in str(e.value)


def test_without_a_classes_file_labels_are_their_own_names(tmp_path):
    _write_set(tmp_path / "set")
    assert load_mnist(tmp_path / "set").class_names == tuple("0123456789")


def test_fashion_mnist_is_recognised_by_its_test_labels_md5(tmp_path):
    """Needs the real Fashion-MNIST test labels (set FASHION_MNIST_DIR to a
    directory holding t10k-labels-idx1-ubyte[.gz]); MNIST's are not Fashion."""
    from cnnviz.data.classes import FASHION_MNIST_NAMES, class_names
    assert class_names(tmp_path, load_mnist(split="test").labels) == tuple("0123456789")
    source = os.environ.get("FASHION_MNIST_DIR")
    if not source:
        pytest.skip("FASHION_MNIST_DIR not set")
    labels = load_mnist(source, "test").labels
    assert labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert class_names(tmp_path, labels) == FASHION_MNIST_NAMES
    assert load_mnist(source, "train").class_names == FASHION_MNIST_NAMES
