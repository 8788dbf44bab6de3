"""A folder of your own images as a dataset: one subfolder per class.

    pets/cat/001.jpg  pets/cat/002.png ...  pets/dog/a.jpg ...

or, with the split chosen by you, the same under ``train/`` and ``test/``:

    pets/train/cat/... pets/train/dog/...  pets/test/cat/... pets/test/dog/...

Class names are the subfolder names, sorted (label 0 is the first). Image
files are those directly in a class folder with a suffix in IMAGE_SUFFIXES
(any format cnnviz.data.images.load_image reads, any size); other files and
hidden ones (".DS_Store") are ignored. Each image is resized to ``size``
(cnnviz.data.images.resize: INTER_AREA when shrinking, which averages and so
does not alias, INTER_LINEAR when enlarging) and made grey or colour as asked.
Without train/ and test/ each class is split with a seeded shuffle, its
``test_fraction`` held out (stratified: every class in both splits). Both
splits come in a seeded random order, not class by class, so the first N
images (``--limit N``, a view's first samples) mix the classes.

What is refused, before any training, each with a one-line DatasetError:
no such folder, an empty folder, no class subfolders, only one class, a
class with no images, more than 256 classes, train/ without test/ (or the
reverse) or the two with different classes, a class too small to split.
Unreadable files (not an image, damaged, empty): when at least half the files
load, they are skipped and the split's ``warnings`` say how many and name
the first 3 (a user who dropped a stray file in expects the rest to load);
when more than half fail, or all of a class's files, the dataset is refused
with the count and the first 3 names (the folder is likely not what was meant).

Loading is cached on disk (cache_dir()), keyed by the folder, every file's
name, size and modification time, the size and the colour asked for; a
cache that cannot be read is ignored and rebuilt. The cache is bounded:
each write keeps the most recently used entries up to CACHE_BUDGET bytes
(2 GiB) and deletes the rest (prune_cache; clear_cache empties it). Decoding runs on a few
threads (OpenCV releases the GIL). ``progress(done, total)`` is called
after each chunk of CHUNK files; ``cancel()`` is asked after each chunk and
every 50 ms while one is decoded; once it says True, the decoding threads
stop before their next file and nothing is cached.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

from cnnviz.atomic import atomic_open
from cnnviz.data import images as img_io
from cnnviz.data.errors import DatasetError, LoadCancelled
from cnnviz.data.mnist import MnistSplit

__all__ = ["load_image_folder", "cache_dir", "cache_entries", "prune_cache", "clear_cache",
           "CACHE_BUDGET", "IMAGE_SUFFIXES", "DEFAULT_SIZE", "MAX_CLASSES",
           "UNREADABLE_FRACTION_REFUSED"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(img_io._IMAGE_SUFFIXES | {".pgm", ".ppm", ".pbm", ".pnm", ".jp2",
                                                      ".jpe", ".dib", ".sr", ".ras", ".pfm"})
DEFAULT_SIZE = (28, 28)
MAX_CLASSES = 256                      # labels are uint8
UNREADABLE_FRACTION_REFUSED = 0.5      # more than this share unreadable: refused, not skipped
SHOWN = 3                              # file names a message lists
CHUNK = 32                             # files a decoding task takes at a time
CACHE_VERSION = 1
CACHE_BUDGET = 2 << 30                 # bytes of decoded folders kept on disk (2 GiB)
CACHE_PATTERN = "folder-*.npz"         # atomic_open's temporaries start with "." instead


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/cnnviz, else ~/.cache/cnnviz."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnviz"


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted((e for e in map(Path, os.scandir(folder))
                       if e.is_dir() and not _is_hidden(e.name)), key=lambda p: p.name)
    except OSError as e:
        raise DatasetError(f"{folder}: cannot list it ({e.strerror or e})") from None


def _image_files(folder: Path) -> list[os.DirEntry]:
    try:
        entries = [e for e in os.scandir(folder)
                   if not _is_hidden(e.name) and e.is_file()
                   and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES]
    except OSError as e:
        raise DatasetError(f"{folder}: cannot list it ({e.strerror or e})") from None
    return sorted(entries, key=lambda e: e.name)


def _suffix_list() -> str:
    return ", ".join(sorted({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".webp"}))


def _classes(folder: Path, where: str) -> dict[str, list[os.DirEntry]]:
    """class name -> its image files, for a folder of class subfolders."""
    subs = _subfolders(folder)
    if not subs:
        try:
            anything = any(not _is_hidden(n) for n in os.listdir(folder))
        except OSError:
            anything = False
        if not anything:
            raise DatasetError(f"{where}: empty folder; it needs one subfolder per class, "
                               f"each holding that class's images ({where}/cat/1.png, ...)")
        raise DatasetError(f"{where}: no class subfolders; put each class's images in a "
                           f"subfolder named after the class ({where}/cat/1.png, ...)")
    if len(subs) > MAX_CLASSES:
        raise DatasetError(f"{where}: {len(subs)} class subfolders; at most {MAX_CLASSES}")
    classes = {s.name: _image_files(s) for s in subs}
    for name, files in classes.items():
        if not files:
            raise DatasetError(f"{where}: class '{name}' has no images (no {_suffix_list()}, "
                               f"... files directly in {name}/)")
    if len(classes) == 1:
        only = next(iter(classes))
        raise DatasetError(f"{where}: only one class ('{only}'); a classifier needs at least "
                           f"two class subfolders")
    return classes


def _layout(root: Path) -> tuple[dict, dict | None]:
    """(train classes, test classes or None for a seeded split)."""
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "no such folder"
        raise DatasetError(f"{root}: {what}; an image dataset is a folder with one subfolder "
                           f"per class")
    names = {p.name for p in _subfolders(root)}
    has_train, has_test = "train" in names, "test" in names
    if has_train != has_test:
        there, missing = ("train", "test") if has_train else ("test", "train")
        raise DatasetError(f"{root}: has {there}/ but no {missing}/; give both (each with the "
                           f"same class subfolders), or put the class subfolders directly in "
                           f"{root.name}/ for a seeded split")
    if not has_train:
        return _classes(root, str(root)), None
    train = _classes(root / "train", str(root / "train"))
    test = _classes(root / "test", str(root / "test"))
    if set(train) != set(test):
        only_train = sorted(set(train) - set(test))
        only_test = sorted(set(test) - set(train))
        parts = ([f"only in train/: {', '.join(only_train[:SHOWN])}"] if only_train else []) + \
                ([f"only in test/: {', '.join(only_test[:SHOWN])}"] if only_test else [])
        raise DatasetError(f"{root}: train/ and test/ have different classes ({'; '.join(parts)});"
                           f" both need the same class subfolders")
    return train, test


# --- decoding -----------------------------------------------------------------------
def _decode(path: str, size: tuple[int, int], colour: bool | None):
    """(uint8 (H, W) or (H, W, 3) pixels, was colour, warnings) or (None, False, reason)."""
    h, w = size
    try:
        # downscale: JPEGs decode at 1/2..1/8 scale when that still leaves 16x the pixels
        loaded = img_io.read_image(path, max_pixels=max(16 * h * w, 1 << 16), downscale=True,
                                   background=1.0)
    except (ValueError, OSError) as e:
        return None, False, str(e)
    x = loaded.pixels
    was_colour = x.ndim == 3
    if colour is False and was_colour:
        x = img_io.to_grey(x)
    elif colour is not False and not was_colour:
        x = np.repeat(x[:, :, None], 3, axis=2)
    x = img_io.resize(x, (h, w))
    return (np.rint(x * 255).astype(np.uint8), was_colour, loaded.warnings)


def _decode_all(paths: list[str], size, colour, progress, cancel):
    """Pixels (N, C, H, W) uint8 (C = 3 unless grey asked, then (N, H, W)),
    a per-file ok mask, per-file colour flags, failures [(index, reason)],
    decoder warnings."""
    n = len(paths)
    h, w = size
    out = np.zeros((n, h, w) if colour is False else (n, 3, h, w), np.uint8)
    ok = np.zeros(n, bool)
    is_colour = np.zeros(n, bool)
    failures, warnings = [], []
    stop = threading.Event()

    def task(start):
        done = []
        for i in range(start, min(start + CHUNK, n)):
            if stop.is_set():
                break
            pixels, was_colour, extra = _decode(paths[i], size, colour)
            if pixels is None:
                failures.append((i, extra))
                continue
            out[i] = pixels if colour is False else pixels.transpose(2, 0, 1)
            ok[i], is_colour[i] = True, was_colour
            warnings.extend(extra)
            done.append(i)
        return len(done)

    threads = max(1, min(4, os.cpu_count() or 1))
    finished = 0
    with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="cnnviz-decode") as pool:
        futures = [pool.submit(task, s) for s in range(0, n, CHUNK)]
        try:
            for f, s in zip(futures, range(0, n, CHUNK)):
                while True:
                    try:
                        f.result(timeout=0.05)
                        break
                    except concurrent.futures.TimeoutError:
                        if cancel is not None and cancel():
                            raise LoadCancelled() from None
                finished = min(s + CHUNK, n)
                if cancel is not None and cancel():
                    raise LoadCancelled()
                if progress is not None:
                    progress(finished, n)
        except BaseException:
            stop.set()
            for f in futures:
                f.cancel()
            raise
    failures.sort()
    return out, ok, is_colour, failures, warnings


# --- the cache ----------------------------------------------------------------------
_KEY_CHUNK = 512      # file entries hashed at a time


def _key(root: Path, entries: list[tuple[str, int, int]], size, colour) -> str:
    """The file list's digest, hashed in pieces: one json.dumps of 50,000
    entries holds the interpreter lock for 55 ms (and several times that on
    a busy machine), a stall of the GUI thread while a folder loads."""
    head = json.dumps([CACHE_VERSION, str(root), list(size), colour])
    digest = hashlib.sha256(head.encode("utf-8", "surrogatepass"))
    for i in range(0, len(entries), _KEY_CHUNK):
        digest.update(json.dumps(entries[i:i + _KEY_CHUNK]).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _cache_path(root: Path, key: str, size, colour) -> Path:
    """folder-<the folder, size and colour>-<the key>.npz: a newer file list
    replaces its older cache, another size or colour has its own."""
    what = json.dumps([str(root), list(size), colour])
    folder = hashlib.sha256(what.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return cache_dir() / f"folder-{folder}-{key[:32]}.npz"


def _read_cache(path: Path, key: str, n: int, size, colour):
    """What _decode_all returned, from the cache file, or None if it is
    missing, unreadable or not for this key (then it is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("key") != key:
                return None
            out, ok, is_colour = z["pixels"], z["ok"], z["colour"]
        h, w = size
        shape = (n, h, w) if colour is False else (n, 3, h, w)
        if (out.shape != shape or out.dtype != np.uint8 or ok.shape != (n,)
                or is_colour.shape != (n,) or ok.dtype != bool or is_colour.dtype != bool):
            return None
        failures = [(int(i), str(m)) for i, m in meta["failures"]]
        if any(not 0 <= i < n or ok[i] for i, _ in failures) or \
                len(failures) + int(ok.sum()) != n:
            return None
        return out, ok, is_colour, failures, [str(x) for x in meta["warnings"]]
    except Exception:                 # any damage at all: rebuild
        return None


def _mark_used(path: Path) -> None:
    """A cache hit: its modification time becomes the last use, which
    prune_cache orders by (a read-only cache just stays as it was)."""
    try:
        os.utime(path)
    except OSError:
        pass


def cache_entries() -> list[tuple[Path, int, float]]:
    """(path, bytes, last used as a time stamp) of every cached folder, the
    most recently used first."""
    found = []
    try:
        paths = list(cache_dir().glob(CACHE_PATTERN))
    except OSError:
        return []
    for p in paths:
        try:
            st = p.stat()
        except OSError:               # removed meanwhile (another process pruned it)
            continue
        found.append((p, st.st_size, st.st_mtime))
    found.sort(key=lambda e: e[2], reverse=True)
    return found


def prune_cache(keep: Path | None = None, budget: int | None = None) -> list[Path]:
    """Delete the least recently used cached folders: from the first entry
    that would take the total over ``budget`` bytes (CACHE_BUDGET), it and
    every older one go; ``keep`` (the entry just written) always stays. The
    paths removed. Safe while other processes load: a reader keeps the file
    it has open (POSIX), a writer's temporary is not a cache entry until it
    is renamed, and an entry someone else removed first is skipped."""
    budget = CACHE_BUDGET if budget is None else budget
    entries = cache_entries()
    total = sum(size for p, size, _ in entries if p == keep)
    removed, over = [], False
    for path, size, _ in entries:
        if path == keep:
            continue
        over = over or total + size > budget
        if not over:
            total += size
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:          # in use (Windows) or read-only: next time
            log.warning("could not remove the old cache file %s (%s)", path, e.strerror or e)
            continue
        removed.append(path)
    return removed


def clear_cache() -> tuple[int, int]:
    """Delete every cached folder: (files, bytes) removed."""
    files = size = 0
    for path, n, _ in cache_entries():
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        files, size = files + 1, size + n
    return files, size


def _write_cache(path: Path, key: str, result) -> None:
    out, ok, is_colour, failures, warnings = result
    meta = json.dumps({"key": key, "failures": failures, "warnings": warnings})
    try:
        with atomic_open(path, "wb") as f:
            buf = np.frombuffer(meta.encode("utf-8", "surrogatepass"), np.uint8)
            np.savez(f, pixels=out, ok=ok, colour=is_colour, meta=buf)
        # older caches of the same folder (files changed since): not needed any more
        for old in path.parent.glob(path.name.rsplit("-", 1)[0] + "-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
        prune_cache(keep=path)
    except OSError as e:
        log.warning("could not cache the decoded images in %s (%s); the next load decodes "
                    "them again", path.parent, e.strerror or e)


# --- the dataset --------------------------------------------------------------------
def _names(paths: list[str], idx, root: Path) -> str:
    shown = ", ".join(os.path.relpath(paths[i], root) for i in idx[:SHOWN])
    return shown + (", ..." if len(idx) > SHOWN else "")


def _split_seeded(labels: np.ndarray, n_classes: int, fraction: float, seed: int,
                  class_names, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): per class a seeded shuffle, ``fraction``
    of it (rounded, at least 1, at most all but 1) held out."""
    train, test = [], []
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            raise DatasetError(f"{where}: class '{class_names[c]}' has {len(idx)} readable "
                               f"image; a train/test split needs at least 2 per class")
        rng = np.random.default_rng([seed, c])
        idx = idx[rng.permutation(len(idx))]
        k = min(max(int(round(len(idx) * fraction)), 1), len(idx) - 1)
        test.append(np.sort(idx[:k]))
        train.append(np.sort(idx[k:]))
    return np.concatenate(train), np.concatenate(test)


def load_image_folder(path, size=None, colour=None, test_fraction=0.2, seed=0,
                      progress=None, cancel=None) -> tuple[MnistSplit, MnistSplit]:
    """(train, test) of an image folder (see the module docstring).

    size: (height, width), default DEFAULT_SIZE; colour: True (N, 3, H, W),
    False (N, H, W) grey, None: colour if any image is colour, else grey."""
    root = Path(path).expanduser().resolve()
    size = tuple(int(s) for s in (size or DEFAULT_SIZE))
    train_classes, test_classes = _layout(root)
    class_names = tuple(train_classes)
    paths, labels, in_test = [], [], []
    for split_classes, is_test in ((train_classes, False), (test_classes or {}, True)):
        for label, name in enumerate(class_names):
            for e in split_classes.get(name, ()):
                paths.append(e.path)
                labels.append(label)
                in_test.append(is_test)
    labels = np.asarray(labels, np.uint8)
    in_test = np.asarray(in_test, bool)

    entries = []
    for p in paths:
        st = os.stat(p)
        entries.append((os.path.relpath(p, root), st.st_size, st.st_mtime_ns))
    mode = None if colour is None else bool(colour)
    key = _key(root, entries, size, mode)
    _free_in_pieces(entries)
    cache = _cache_path(root, key, size, mode)
    result = _read_cache(cache, key, len(paths), size, mode)
    if result is None:
        result = _decode_all(paths, size, mode, progress, cancel)
        _write_cache(cache, key, result)
    else:
        _mark_used(cache)
        if progress is not None:
            progress(len(paths), len(paths))
    out, ok, is_colour, failures, decoder_warnings = result

    warnings = _check_failures(root, paths, labels, ok, failures, class_names)
    if decoder_warnings:
        warnings.append(f"{len(decoder_warnings)} damaged file"
                        f"{'s' * (len(decoder_warnings) != 1)} loaded in part: "
                        f"{'; '.join(decoder_warnings[:SHOWN])}")
    if mode is None and not is_colour[ok].any():
        out = out[:, 0]                     # every image grey: keep one channel
    channels = 1 if out.ndim == 3 else 3
    if test_classes is None:
        train_idx, test_idx = _split_seeded(np.where(ok, labels, 255), len(class_names),
                                            test_fraction, seed, class_names, str(root))
    else:
        train_idx, test_idx = np.flatnonzero(ok & ~in_test), np.flatnonzero(ok & in_test)
    # a seeded order, not by class: --limit N and the first images a view
    # shows then mix the classes, as MNIST's files do
    order = np.random.default_rng([seed, 1 << 20])
    train_idx = train_idx[order.permutation(len(train_idx))]
    test_idx = test_idx[order.permutation(len(test_idx))]
    how = ("its train/ and test/" if test_classes is not None
           else f"{test_fraction:g} held out per class, seed {seed}")
    source = (f"image folder {root} ({size[0]}x{size[1]} {'colour' if channels == 3 else 'grey'},"
              f" {how})")
    splits = []
    for split, idx in (("train", train_idx), ("test", test_idx)):
        images, split_labels = _gather(out, idx), labels[idx]
        images.flags.writeable = False
        split_labels.flags.writeable = False
        splits.append(MnistSplit(images, split_labels, split, class_names=class_names,
                                 source=source, warnings=tuple(warnings)))
    for files in (*train_classes.values(), *(test_classes or {}).values()):
        _free_in_pieces(files)
    _free_in_pieces(paths)
    return tuple(splits)


def _free_in_pieces(items: list, piece: int = 2048) -> None:
    """Empty a big list a piece at a time. Freeing a folder's 50,000 file
    entries at once (a list's or the returning function's locals) is one C
    call that holds the interpreter lock for 20 ms of CPU, 60-100 ms on a busy
    machine: a freeze of the GUI thread just as the data arrives. Between
    pieces the lock can pass."""
    while items:
        del items[-piece:]


def _gather(images: np.ndarray, idx: np.ndarray, rows: int = 2048) -> np.ndarray:
    """images[idx] a few MB at a time: NumPy holds the GIL for a whole fancy
    index, which for 50,000 images stalled a GUI thread for ~0.2 s."""
    out = np.empty((len(idx), *images.shape[1:]), images.dtype)
    for i in range(0, len(idx), rows):
        out[i:i + rows] = images[idx[i:i + rows]]
    return out


def _check_failures(root, paths, labels, ok, failures, class_names) -> list[str]:
    """Warnings for skipped unreadable files; DatasetError if too many failed."""
    if not failures:
        return []
    n, bad = len(paths), [i for i, _ in failures]
    first = failures[0][1]
    if len(bad) > UNREADABLE_FRACTION_REFUSED * n:
        what = (f"none of the {n:,} image files could be read" if len(bad) == n else
                f"{len(bad):,} of the {n:,} image files could not be read, more than half")
        raise DatasetError(f"{root}: {what} ({_names(paths, bad, root)}; first: {first}); "
                           f"is this the right folder?")
    for c, name in enumerate(class_names):
        if not ok[labels == c].any():
            idx = [i for i in bad if labels[i] == c]
            raise DatasetError(f"{root}: class '{name}' has no readable images: its "
                               f"{len(idx):,} files could not be read ({_names(paths, idx, root)};"
                               f" first: {first})")
    return [f"skipped {len(bad):,} unreadable file{'s' * (len(bad) != 1)} of {n:,}: "
            f"{_names(paths, bad, root)} (first: {first})"]
