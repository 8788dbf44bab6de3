"""Image folders as datasets (cnnviz/data/image_folder.py through
cnnviz/data/datasets.py): folders the tests write with cv2, the split, the
messages for bad folders, the disk cache, progress and cancel."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from cnnviz.data import image_folder
from cnnviz.data.datasets import DatasetError, DatasetSpec, LoadCancelled, load_dataset


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """Every test its own cache dir: nothing written to the user's ~/.cache."""
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home / "cnnviz"


def colour_of(label, i):
    """The RGB colour image i of class `label` is filled with: unique per file."""
    return (40 * label + 20, 7 * i, 200)


def write_image(path: Path, rgb, shape=(20, 24), grey=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if grey:
        img = np.full(shape, rgb[0], np.uint8)
    else:
        img = np.empty((*shape, 3), np.uint8)
        img[...] = rgb[::-1]                          # cv2 writes BGR
    assert cv2.imwrite(str(path), img)


def make_classes(root: Path, classes=("cat", "dog", "emu"), n=10, grey=False, suffix=".png"):
    for name in classes:
        label = sorted(classes).index(name)           # the label the loader gives it
        for i in range(n):
            shape = (20 + i, 24 + 2 * i)              # any size: each file its own
            write_image(root / name / f"{i:03d}{suffix}", colour_of(label, i), shape, grey)


def load(root, **kw):
    return load_dataset(DatasetSpec("folder", root, **kw))


def test_a_folder_loads_with_class_names_colour_and_a_stratified_seeded_split(tmp_path):
    make_classes(tmp_path / "pets", classes=("emu", "cat", "dog"))
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("not an image: ignored")
    (tmp_path / "pets" / ".hidden").mkdir()
    train, test = load(tmp_path / "pets", size=(8, 6), colour=True)
    assert train.class_names == test.class_names == ("cat", "dog", "emu")   # sorted
    assert train.images.shape == (24, 3, 8, 6) and test.images.shape == (6, 3, 8, 6)
    assert train.channels == 3 and train.image_shape == (3, 8, 6)
    assert np.bincount(test.labels).tolist() == [2, 2, 2]                  # 0.2 of each class
    assert train.warnings == () and "8x6 colour" in train.source
    # each image is one file's flat colour, in R, G, B order, under its own label
    for split in (train, test):
        for img, label in zip(split.images, split.labels):
            r, g, b = (int(img[c, 0, 0]) for c in range(3))
            assert (img == img[:, :1, :1]).all()
            assert r == 40 * label + 20 and b == 200 and g % 7 == 0
    greens = sorted(int(i[1, 0, 0]) // 7 for s in (train, test) for i, l in
                    zip(s.images, s.labels) if l == 0)
    assert greens == list(range(10))                  # every file once, in one split
    # in a mixed order, not class by class
    assert len(set(train.labels[:6].tolist())) > 1 and len(set(test.labels[:3].tolist())) > 1
    # the same seed, the same split; another seed, another
    again, _ = load(tmp_path / "pets", size=(8, 6), colour=True)
    np.testing.assert_array_equal(again.images, train.images)
    other, other_test = load(tmp_path / "pets", size=(8, 6), colour=True, seed=1)
    assert not np.array_equal(other.images, train.images)
    assert np.bincount(other_test.labels).tolist() == [2, 2, 2]
    _, half = load(tmp_path / "pets", size=(8, 6), colour=True, test_fraction=0.5)
    assert np.bincount(half.labels).tolist() == [5, 5, 5]


def test_grey_colour_and_the_datas_own(tmp_path):
    make_classes(tmp_path / "g", grey=True, n=4)
    train, _ = load(tmp_path / "g", size=(5, 5))                    # all grey: grey
    assert train.images.ndim == 3 and train.channels == 1
    assert sorted(int(i[0, 0]) for i in train.images[train.labels == 1]) == [60, 60, 60]
    train, _ = load(tmp_path / "g", size=(5, 5), colour=True)       # grey made colour
    assert train.images.shape[1] == 3 and (train.images[:, 0] == train.images[:, 2]).all()
    make_classes(tmp_path / "c", n=4)
    train, _ = load(tmp_path / "c", size=(5, 5))                    # colour: colour
    assert train.channels == 3
    grey, _ = load(tmp_path / "c", size=(5, 5), colour=False)       # colour made grey
    r, g, b = (train.images[:, c].astype(float) for c in range(3))
    np.testing.assert_allclose(grey.images, 0.299 * r + 0.587 * g + 0.114 * b, atol=1)


def test_resizing_averages_when_shrinking(tmp_path):
    """A 2-pixel checkerboard shrunk to half size averages to flat grey (INTER_AREA)."""
    board = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)
    for c in ("a", "b"):
        for i in range(2):
            (tmp_path / "f" / c).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "f" / c / f"{i}.png"), board)
    train, _ = load(tmp_path / "f", size=(8, 8), colour=False)
    assert np.abs(train.images.astype(int) - 128).max() <= 1


def test_train_and_test_subfolders_are_used_as_given(tmp_path):
    make_classes(tmp_path / "d" / "train", n=5)
    make_classes(tmp_path / "d" / "test", n=2, suffix=".jpg")
    train, test = load(tmp_path / "d", size=(6, 6))
    assert train.class_names == ("cat", "dog", "emu")
    assert np.bincount(train.labels).tolist() == [5, 5, 5]
    assert np.bincount(test.labels).tolist() == [2, 2, 2]
    assert "its train/ and test/" in train.source
    # JPEG is lossy: the flat colours come back close
    for img, label in zip(test.images, test.labels):
        assert abs(int(img[2].mean()) - 200) <= 4
        assert abs(int(img[0].mean()) - (40 * label + 20)) <= 4


def _message(root, **kw):
    with pytest.raises(DatasetError) as e:
        load(root, **kw)
    text = str(e.value)
    assert "\n" not in text
    return text


def test_bad_folders_get_one_clear_line_each(tmp_path):
    assert _message(tmp_path / "nope") == (
        f"{tmp_path / 'nope'}: no such folder; an image dataset is a folder with one "
        f"subfolder per class")
    (tmp_path / "empty").mkdir()
    assert _message(tmp_path / "empty").startswith(f"{tmp_path / 'empty'}: empty folder;")
    write_image(tmp_path / "flat" / "a.png", (1, 2, 3))
    assert _message(tmp_path / "flat").startswith(f"{tmp_path / 'flat'}: no class subfolders;")
    make_classes(tmp_path / "one", classes=("cat",), n=3)
    assert _message(tmp_path / "one") == (
        f"{tmp_path / 'one'}: only one class ('cat'); a classifier needs at least two class "
        f"subfolders")
    make_classes(tmp_path / "hole", n=3)
    (tmp_path / "hole" / "cow").mkdir()
    (tmp_path / "hole" / "cow" / "readme.txt").write_text("no pictures")
    assert _message(tmp_path / "hole").startswith(
        f"{tmp_path / 'hole'}: class 'cow' has no images (no ")
    make_classes(tmp_path / "half" / "train", n=3)
    assert _message(tmp_path / "half").startswith(
        f"{tmp_path / 'half'}: has train/ but no test/; give both")
    make_classes(tmp_path / "mis" / "train", classes=("cat", "dog", "emu"), n=2)
    make_classes(tmp_path / "mis" / "test", classes=("cat", "dog", "yak"), n=2)
    assert _message(tmp_path / "mis") == (
        f"{tmp_path / 'mis'}: train/ and test/ have different classes (only in train/: emu; "
        f"only in test/: yak); both need the same class subfolders")
    make_classes(tmp_path / "tiny", n=1)
    assert _message(tmp_path / "tiny") == (
        f"{tmp_path / 'tiny'}: class 'cat' has 1 readable image; a train/test split needs "
        f"at least 2 per class")


def test_a_few_unreadable_files_are_skipped_with_a_warning(tmp_path):
    make_classes(tmp_path / "d", n=10)
    for name in ("a.png", "b.jpg", "c.png", "d.png"):
        (tmp_path / "d" / "dog" / name).write_bytes(b"this is not an image")
    (tmp_path / "d" / "emu" / "z.png").write_bytes(b"")                 # empty
    train, test = load(tmp_path / "d", size=(4, 4))
    assert len(train) + len(test) == 30
    (warning,) = train.warnings
    assert warning.startswith("skipped 5 unreadable files of 35: dog/a.png, dog/b.jpg, "
                              "dog/c.png, ... (first: ")
    assert test.warnings == train.warnings


def test_mostly_or_wholly_unreadable_folders_are_refused(tmp_path):
    for c in ("cat", "dog"):
        for i in range(4):
            (tmp_path / "junk" / c).mkdir(parents=True, exist_ok=True)
            (tmp_path / "junk" / c / f"{i}.png").write_bytes(b"x" * (i + 1))
    text = _message(tmp_path / "junk")
    assert text.startswith(f"{tmp_path / 'junk'}: none of the 8 image files could be read "
                           f"(cat/0.png, cat/1.png, cat/2.png, ...; first: ")
    assert text.endswith("is this the right folder?")
    write_image(tmp_path / "junk" / "cat" / "ok.png", (1, 2, 3))
    assert _message(tmp_path / "junk").startswith(
        f"{tmp_path / 'junk'}: 8 of the 9 image files could not be read, more than half (")
    # most files fine, but every file of one class unreadable
    make_classes(tmp_path / "cls", n=6)
    (tmp_path / "cls" / "yak").mkdir()
    (tmp_path / "cls" / "yak" / "1.png").write_bytes(b"nope")
    assert _message(tmp_path / "cls").startswith(
        f"{tmp_path / 'cls'}: class 'yak' has no readable images: its 1 files could not be "
        f"read (yak/1.png; first: ")


def test_the_cache_is_hit_missed_and_rebuilt_when_corrupt(tmp_path, cache_home):
    root = tmp_path / "d"
    make_classes(root, n=4)
    first, _ = load(root, size=(6, 6))
    (cache,) = cache_home.glob("folder-*.npz")
    # a hit decodes nothing: a file replaced by junk of the same size and
    # modification time still loads from the cache, without a warning
    victim = root / "dog" / "001.png"
    st = victim.stat()
    victim.write_bytes(b"j" * st.st_size)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    hit, _ = load(root, size=(6, 6))
    np.testing.assert_array_equal(hit.images, first.images)
    assert hit.warnings == ()
    # a corrupt cache is ignored: the folder is decoded again (the junk file is now found)
    cache.write_bytes(cache.read_bytes()[:100])
    rebuilt, _ = load(root, size=(6, 6))
    assert rebuilt.warnings and "dog/001.png" in rebuilt.warnings[0]
    assert np.load(cache)["pixels"].shape == (12, 3, 6, 6)          # rewritten whole
    # a changed file list misses, and its new cache replaces the old one
    write_image(root / "cat" / "new.png", (9, 9, 9))
    more, _ = load(root, size=(6, 6))
    assert len(more) + len(_) == 12
    assert [p.name for p in cache_home.glob("folder-*.npz")] != [cache.name]
    assert len(list(cache_home.glob("folder-*.npz"))) == 1
    # a cache file of another file list under this one's name is not used: a
    # changed file (same size, new time) is decoded again, not taken from it
    (current,) = cache_home.glob("folder-*.npz")
    stale = current.read_bytes()
    write_image(root / "cat" / "new.png", (200, 9, 9))
    os.utime(root / "cat" / "new.png", ns=(1, 10**18))
    load(root, size=(6, 6))
    (fresh,) = cache_home.glob("folder-*.npz")
    fresh.write_bytes(stale)
    newer, newer_test = load(root, size=(6, 6))
    reds = {int(i[0, 0, 0]) for s in (newer, newer_test) for i in s.images}
    assert 200 in reds and 9 not in reds
    # another size or colour: its own cache, both kept
    load(root, size=(5, 5))
    load(root, size=(5, 5), colour=False)
    assert len(list(cache_home.glob("folder-*.npz"))) == 3


def cached(cache_home) -> set:
    return {p.name for p in cache_home.glob("folder-*.npz")}


def test_the_cache_keeps_the_most_recently_used_folders_within_its_budget(
        tmp_path, cache_home, monkeypatch):
    entry = {}
    for name in ("a", "b", "c"):
        make_classes(tmp_path / name, n=4)
        before = cached(cache_home)
        load(tmp_path / name, size=(16, 16))
        (entry[name],) = cached(cache_home) - before
    size = (cache_home / entry["a"]).stat().st_size
    assert all((cache_home / e).stat().st_size == size for e in entry.values())
    # last used: a long ago, b then c more recently; a hit on a makes it the newest
    for age, name in ((300, "a"), (200, "b"), (100, "c")):
        t = (cache_home / entry[name]).stat().st_mtime - age
        os.utime(cache_home / entry[name], (t, t))
    hit, _ = load(tmp_path / "a", size=(16, 16))
    assert cached(cache_home) == set(entry.values())       # a hit writes nothing, prunes nothing
    # room for two: the next write (d) keeps itself and a, the most recently
    # used; b and c go, the least recently used first
    monkeypatch.setattr(image_folder, "CACHE_BUDGET", 2 * size + size // 2)
    make_classes(tmp_path / "d", n=4)
    load(tmp_path / "d", size=(16, 16))
    assert len(cached(cache_home)) == 2 and entry["a"] in cached(cache_home)
    assert not {entry["b"], entry["c"]} & cached(cache_home)
    again, _ = load(tmp_path / "a", size=(16, 16))            # still a hit, same pixels
    np.testing.assert_array_equal(again.images, hit.images)
    # an entry bigger than the whole budget: the one just written stays, alone
    monkeypatch.setattr(image_folder, "CACHE_BUDGET", 1)
    load(tmp_path / "b", size=(16, 16))
    assert cached(cache_home) == {entry["b"]}
    assert image_folder.clear_cache() == (1, size)
    assert cached(cache_home) == set()


def test_pruning_while_others_read_and_write(tmp_path, cache_home, monkeypatch):
    # a reader keeps the file it opened when another load prunes it
    make_classes(tmp_path / "a", n=4)
    load(tmp_path / "a", size=(8, 8))
    (path,) = cache_home.glob("folder-*.npz")
    with np.load(path) as z:
        assert image_folder.prune_cache(budget=0) == [path]
        assert not path.exists()
        assert z["pixels"].shape == (12, 3, 8, 8)
    # loads of four folders at once, each write pruning to a budget of about
    # one entry: every load gives its own images, the cache ends within budget
    # (plus the entries being written), and no temporary is left
    import concurrent.futures
    for name in "wxyz":
        make_classes(tmp_path / name, n=4)
    expected = {name: load(tmp_path / name, size=(8, 8))[0].images for name in "wxyz"}
    one = max(p.stat().st_size for p in cache_home.glob("folder-*.npz"))
    image_folder.clear_cache()
    monkeypatch.setattr(image_folder, "CACHE_BUDGET", one)

    def loads(name):
        for _ in range(4):
            np.testing.assert_array_equal(load(tmp_path / name, size=(8, 8))[0].images,
                                          expected[name])
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(loads, name) for name in "wxyz"]:
            f.result()
    assert 1 <= len(cached(cache_home)) <= 4
    assert [p.name for p in cache_home.iterdir() if p.name.startswith(".")] == []


def test_an_unwritable_cache_dir_still_loads(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    make_classes(tmp_path / "d", n=3)
    train, test = load(tmp_path / "d", size=(4, 4))
    assert len(train) + len(test) == 9


def test_progress_and_cancel(tmp_path, cache_home):
    root = tmp_path / "d"
    n = 2 * image_folder.CHUNK + 5
    for c in ("a", "b"):
        for i in range(n // 2 + 1):
            write_image(root / c / f"{i}.png", (i, 0, 0), (4, 4))
    total = 2 * (n // 2 + 1)
    calls = []
    load_dataset(DatasetSpec("folder", root, size=(4, 4)),
                 progress=lambda done, t: calls.append((done, t)))
    assert len(calls) >= 3 and calls[-1] == (total, total)
    assert all(t == total for _, t in calls) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    calls.clear()
    load_dataset(DatasetSpec("folder", root, size=(4, 4)),                  # cached: one call
                 progress=lambda done, t: calls.append((done, t)))
    assert calls == [(total, total)]
    asked = []

    def cancel():
        asked.append(1)
        return len(calls) >= 1                        # after the first chunk's progress
    calls.clear()
    with pytest.raises(LoadCancelled):
        load_dataset(DatasetSpec("folder", root, size=(3, 3)),
                     progress=lambda done, t: calls.append((done, t)), cancel=cancel)
    assert calls and calls[-1][0] < total
    assert len(list(cache_home.glob("folder-*.npz"))) == 1          # nothing cached for 3x3
