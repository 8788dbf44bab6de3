"""Coloured MNIST (cnnviz/data/colored_mnist.py): deterministic, legible,
colours independent of the class, and the DatasetSpec entry point."""

import numpy as np
import pytest

from cnnviz.data import load_mnist
from cnnviz.data.colored_mnist import MIN_LUMA_DIFFERENCE, colour_pairs, load_colored_mnist
from cnnviz.data.datasets import (DatasetError, DatasetSpec, load_dataset, parse_data_option,
                                  parse_size)

LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def splits():
    return load_dataset(DatasetSpec("colored-mnist"))


def test_sizes_shapes_and_labels(splits):
    train, test = splits
    assert train.images.shape == (60_000, 3, 28, 28) and test.images.shape == (10_000, 3, 28, 28)
    assert train.images.dtype == np.uint8 and not train.images.flags.writeable
    np.testing.assert_array_equal(train.labels, load_mnist().labels)
    assert train.class_names == tuple("0123456789") and train.channels == 3
    assert train.as_float(0, 5).shape == (5, 3, 28, 28)


def test_deterministic_and_seeded(splits):
    load_colored_mnist.cache_clear()
    again = load_colored_mnist("test", 0)
    assert again is not splits[1]
    np.testing.assert_array_equal(again.images, splits[1].images)
    other = load_colored_mnist("test", 1)
    assert not np.array_equal(other.images, splits[1].images)


def test_the_digit_stands_out_from_its_background(splits):
    """Background pixels (MNIST 0) are one colour; the inkiest pixel of the
    digit (MNIST >= 250 in almost every image) differs from it in luma by
    about the minimum or more: legible in grey too."""
    grey = load_mnist(split="test").images.reshape(10_000, -1)
    img = splits[1].images.reshape(10_000, 3, -1).astype(float)
    inkiest = grey.argmax(1)
    checked = 0
    for i in range(0, 10_000, 7):
        a = int(grey[i, inkiest[i]])
        if a < 250:
            continue
        background = img[i][:, grey[i] == 0]
        assert (background == background[:, :1]).all()
        luma = abs(LUMA @ (img[i][:, inkiest[i]] - background[:, 0]))
        assert luma >= MIN_LUMA_DIFFERENCE * a / 255 - 1, i
        checked += 1
    assert checked > 1300
    pairs = colour_pairs(5000, np.random.default_rng(3))
    diff = np.abs((pairs[0].astype(float) - pairs[1]) @ LUMA)
    assert diff.min() >= MIN_LUMA_DIFFERENCE - 0.5


def test_colours_say_nothing_about_the_class(splits):
    """Each class's mean stroke and background colour is the overall mean,
    within a few standard errors (6,000 images a class, sd ~ 74 per channel)."""
    train = splits[0]
    grey = load_mnist().images
    ink = grey == 255
    first = ink.reshape(len(grey), -1).argmax(1)                # one ink pixel per image
    rows, cols = np.unravel_index(first, (28, 28))
    stroke = train.images[np.arange(len(grey)), :, rows, cols].astype(float)   # (N, 3)
    background = train.images[:, :, 0, 0].astype(float)
    for colours in (stroke, background):
        overall = colours.mean(0)
        for c in range(10):
            assert np.abs(colours[train.labels == c].mean(0) - overall).max() < 6
        assert colours.std(0).min() > 60                        # spread over the range


def test_the_data_option_and_spec_checks():
    assert parse_data_option(None) == DatasetSpec("mnist")
    assert parse_data_option("colored-mnist") == DatasetSpec("colored-mnist")
    assert parse_data_option("folder:/x/y").kind == "folder"
    assert parse_data_option("cifar10:/c") == DatasetSpec("cifar10", parse_data_option("/c").path)
    assert parse_data_option("some/dir").kind == "idx"
    with pytest.raises(DatasetError, match="give the folder after 'folder:'"):
        parse_data_option("folder:")
    assert parse_size("32x24") == (32, 24) and parse_size("16") == (16, 16)
    with pytest.raises(DatasetError, match="expected HxW"):
        parse_size("big")
    with pytest.raises(DatasetError, match="unknown dataset kind 'png'"):
        load_dataset(DatasetSpec("png"))
    with pytest.raises(DatasetError, match="a folder dataset needs a folder"):
        load_dataset(DatasetSpec("folder"))
    with pytest.raises(DatasetError, match="a size applies to image folders only"):
        load_dataset(DatasetSpec("mnist", size=(32, 32)))
    with pytest.raises(DatasetError, match="colored-mnist is colour"):
        load_dataset(DatasetSpec("colored-mnist", colour=False))
    with pytest.raises(DatasetError, match="test fraction 1.0"):
        load_dataset(DatasetSpec("folder", "/x", test_fraction=1.0))
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(DatasetSpec("idx", "/"))
