"""cnnviz.atomic: a failed or killed save leaves the old file as it was, no
litter accumulates, and saved files get the mode the user's umask asks for.

Real files throughout; the faults are real too: child processes killed with
SIGKILL mid-save, a tiny tmpfs filled up, a file-size limit (RLIMIT_FSIZE).
"""

import errno
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import cnnviz.atomic as atomic
from cnnviz.atomic import (atomic_open, atomic_path, atomic_save_npy, atomic_savetxt,
                           atomic_write_text, current_umask, save_failure_message)
from cnnviz.engine import Linear, Sequential, lenet5, load, save
from disks import fill, tmpfs

ROOT = Path(__file__).resolve().parent.parent


def temporaries(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.glob(f".{name}.*"))


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test, then put the old one back."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def child(code: str, *args, **kwargs) -> subprocess.Popen:
    """A Python child importing this worktree's cnnviz."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


# --- the basics -------------------------------------------------------------------------

def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "kernel.json"
    atomic_write_text(target, "old")
    os.chmod(target, 0o640)
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as f:
            f.write("half of the new")
            raise RuntimeError("disk full, say")
    assert target.read_text() == "old"
    assert mode_of(target) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["kernel.json"]


def test_a_successful_write_replaces_the_file_and_creates_folders(tmp_path):
    target = tmp_path / "new" / "dir" / "view.png"
    with atomic_path(target, suffix=".png") as tmp:
        assert tmp.parent == target.parent and tmp != target and not target.exists()
        tmp.write_bytes(b"png")
    assert target.read_bytes() == b"png"
    assert [p.name for p in target.parent.iterdir()] == ["view.png"]


def test_npy_and_text_go_to_exactly_the_name_given(tmp_path):
    # np.save("a.NPY") would write "a.NPY.npy"; np.savetxt("t.gz") would gzip
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    atomic_save_npy(tmp_path / "a.NPY", a)
    atomic_savetxt(tmp_path / "t.gz", a, fmt="%.9g")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.NPY", "t.gz"]
    np.testing.assert_array_equal(np.load(tmp_path / "a.NPY"), a)
    assert (tmp_path / "t.gz").read_text().splitlines()[0] == "0 1 2 3"


def test_a_symbolic_link_stays_a_link_to_the_updated_file(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


# --- modes ------------------------------------------------------------------------------

@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_mode_the_umask_gives(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask
    atomic_write_text(tmp_path / "k.json", "{}")
    atomic_save_npy(tmp_path / "a.npy", np.zeros(3))
    save(lenet5(), tmp_path / "m.npz")
    for name in ["k.json", "a.npy", "m.npz"]:
        assert oct(mode_of(tmp_path / name)) == oct(expected), name


@pytest.mark.parametrize("existing", [0o644, 0o600, 0o664, 0o444])
@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_an_existing_file_keeps_its_mode(tmp_path, umask, mask, existing):
    target = tmp_path / "k.json"
    target.write_text("old")
    os.chmod(target, existing)
    umask(mask)
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert oct(mode_of(target)) == oct(existing)


def test_a_writer_that_replaces_the_temporary_still_gets_the_mode(tmp_path, umask):
    # some writers given a path write their own file and rename it over that path
    umask(0o022)
    target = tmp_path / "view.png"
    with atomic_path(target, suffix=".png") as tmp:
        own = tmp_path / "writer's own"
        os.close(os.open(own, os.O_WRONLY | os.O_CREAT, 0o600))
        own.write_bytes(b"png")
        os.replace(own, tmp)
    assert target.read_bytes() == b"png"
    assert oct(mode_of(target)) == oct(0o644)
    assert [p.name for p in tmp_path.iterdir()] == ["view.png"]


def test_reading_the_umask_does_not_change_it(umask):
    umask(0o027)
    assert current_umask() == 0o027
    assert os.umask(0o027) == 0o027


# --- stale temporaries ------------------------------------------------------------------

HOLD_A_SAVE = r"""
import sys, time
from cnnviz.atomic import atomic_open
with atomic_open(sys.argv[1], "w") as f:
    f.write("half written")
    f.flush()
    print("writing", flush=True)
    sys.stdin.readline()          # the parent says when to finish (or kills us)
    f.write(" and done")
"""


def start_a_save(target: Path) -> subprocess.Popen:
    """A child process inside a save of ``target``, its temporary on disk."""
    p = child(HOLD_A_SAVE, target, stdin=subprocess.PIPE)
    assert p.stdout.readline() == "writing\n", p.stderr.read()
    return p


def test_temporaries_of_killed_saves_are_removed_at_the_next_save(tmp_path):
    target = tmp_path / "kernel.json"
    atomic_write_text(target, "old")
    saves = [start_a_save(target) for _ in range(3)]   # three at once: none removes another's
    for p in saves:                                     # killed the way kill -9 kills
        p.kill()
        p.wait()
        p.stdout.close(), p.stderr.close(), p.stdin.close()
    assert len(temporaries(tmp_path, "kernel.json")) == 3
    assert target.read_text() == "old"
    unrelated = [".kernel.json.backup.tmp", ".kernel.json.abcd1234.png", ".other.json.abcd1234.tmp",
                 "kernel.json.abcd1234.tmp", ".kernel.json.abcd1234.tmp.keep"]
    for name in unrelated:
        (tmp_path / name).write_text("mine")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(unrelated + ["kernel.json"])


def test_a_fifo_or_folder_named_like_a_temporary_is_left_alone_and_blocks_nothing(tmp_path):
    target = tmp_path / "kernel.json"
    os.mkfifo(tmp_path / ".kernel.json.abcd1234.tmp")     # opening it to read would wait
    (tmp_path / ".kernel.json.efgh5678.tmp").mkdir()
    saver = threading.Thread(target=atomic_write_text, args=(target, "saved"), daemon=True)
    saver.start()
    saver.join(20)
    assert not saver.is_alive(), "the save hung on a FIFO"
    assert target.read_text() == "saved"
    assert len(temporaries(tmp_path, "kernel.json")) == 2


def test_a_save_in_progress_in_another_process_is_left_alone(tmp_path):
    target = tmp_path / "kernel.json"
    p = start_a_save(target)
    try:
        atomic_write_text(target, "from us")         # cleans the target's temporaries
        assert len(temporaries(tmp_path, "kernel.json")) == 1
        p.communicate("go on\n", timeout=30)
        assert p.returncode == 0                     # its save finished: its file was still there
    finally:
        p.kill()
    assert target.read_text() == "half written and done"
    assert temporaries(tmp_path, "kernel.json") == []


def test_a_save_in_progress_in_another_thread_is_left_alone(tmp_path):
    # a PID check would take our own thread's temporary for a live one only by luck;
    # flock is per open file, so it tells threads of one process apart
    target = tmp_path / "kernel.json"
    writing, finish, errors = threading.Event(), threading.Event(), []

    def slow_save():
        try:
            with atomic_open(target, "w") as f:
                f.write("thread")
                writing.set()
                finish.wait(30)
        except BaseException as e:                  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=slow_save)
    t.start()
    assert writing.wait(30)
    atomic_write_text(target, "main")
    assert len(temporaries(tmp_path, "kernel.json")) == 1
    finish.set()
    t.join(30)
    assert errors == [] and target.read_text() == "thread"


def test_a_cleaner_between_creating_and_locking_the_temporary_is_harmless(tmp_path, monkeypatch):
    # the worst moment for a concurrent cleaner: the new temporary exists, not yet locked
    target = tmp_path / "kernel.json"
    real_mkstemp, cleaned = atomic.tempfile.mkstemp, []

    def mkstemp_then_a_cleaner_runs(*args, **kwargs):
        made = real_mkstemp(*args, **kwargs)
        if not cleaned:
            atomic._remove_stale_temporaries(target, ".tmp")
            cleaned.append(not os.path.exists(made[1]))
        return made

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp_then_a_cleaner_runs)
    with atomic_path(target) as tmp:
        tmp.write_text("saved")
        atomic._remove_stale_temporaries(target, ".tmp")  # another cleaner, mid-write
        assert tmp.exists(), "a temporary being written was taken for a dead one"
    assert cleaned == [True]                          # the first did remove the unlocked file
    assert target.read_text() == "saved"
    assert temporaries(tmp_path, "kernel.json") == []


# --- kill -9 in a save loop -------------------------------------------------------------

# One clean process imports cnnviz once, then forks a saver per kill (a fresh
# interpreter per kill spent most of the test's time importing numpy).
SAVERS = r"""
import os, sys
from cnnviz.engine import lenet5, save
models = [lenet5(seed=s) for s in (1, 2, 3)]
for k, _ in enumerate(sys.stdin):
    pid = os.fork()
    if pid == 0:                                  # the saver: saves until it is killed
        while True:
            save(models[k % 3], sys.argv[1])
    print(pid, flush=True)
    os.waitpid(pid, 0)                            # it is gone for good, not just signalled
    print("dead", flush=True)
"""


def test_kill_9_during_a_save_loop_never_breaks_the_model_nor_piles_up_temporaries(tmp_path):
    target = tmp_path / "m.npz"
    save(lenet5(seed=0), target)
    weights = [lenet5(seed=s)["conv1"].params["weight"] for s in range(4)]
    rng = random.Random(10)
    kills, left_behind = 20, 0
    savers = child(SAVERS, target, stdin=subprocess.PIPE)
    try:
        for k in range(kills):
            savers.stdin.write("go\n")
            savers.stdin.flush()
            pid = int(savers.stdout.readline() or f"0{savers.stderr.read()}")
            time.sleep(rng.uniform(0.0, 0.2))
            os.kill(pid, signal.SIGKILL)
            assert savers.stdout.readline() == "dead\n"
            stale = temporaries(tmp_path, "m.npz")
            assert len(stale) <= 1, f"after kill {k + 1}: {stale}"
            left_behind += len(stale)
            conv1 = load(target)["conv1"].params["weight"]        # always loads, never a mix
            assert any(np.array_equal(conv1, w) for w in weights)
    finally:
        savers.kill()
        savers.communicate()
    save(lenet5(seed=0), target)
    assert temporaries(tmp_path, "m.npz") == []
    print(f"{kills} kills, {left_behind} left a temporary (each removed by the next save)")
    assert left_behind >= 3, "too few kills landed inside a save to test the clean-up"


# --- a full disk ------------------------------------------------------------------------

@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (skipped where mounting is not permitted)."""
    with tmpfs(tmp_path / "disk", "64k") as disk:
        yield disk


def test_a_full_disk_leaves_the_existing_kernel_json_byte_identical(tiny_disk):
    target = tiny_disk / "kernel.json"
    atomic_write_text(target, '{"kernel": [[0, 0, 0], [0, 1, 0], [0, 0, 0]]}\n')
    before = target.read_bytes()
    fill(tiny_disk)
    big = '{"kernel": [' + ", ".join(["[" + ", ".join(["0.125"] * 31) + "]"] * 31) + "]}\n"
    with pytest.raises(OSError) as caught:
        atomic_write_text(target, big)
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == before
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "kernel.json"]
    assert save_failure_message(target, caught.value) == (
        f"Could not save {target}: the disk is full. The existing kernel.json was left as it was.")


def test_a_full_disk_leaves_the_existing_model_byte_identical(tiny_disk):
    target = tiny_disk / "m.npz"
    save(Sequential(Linear(4, 3, seed=1)), target)              # fits; lenet5 (250 KB) cannot
    before = target.read_bytes()
    with pytest.raises(OSError) as caught:
        save(lenet5(seed=1), target)
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == before
    assert [p.name for p in tiny_disk.iterdir()] == ["m.npz"]
    load(target)


TOO_BIG = r"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # then a write past the limit is EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
from cnnviz.atomic import save_failure_message
from cnnviz.engine import lenet5, save
try:
    save(lenet5(seed=2), sys.argv[1])
except OSError as e:
    print(e.errno, save_failure_message(sys.argv[1], e))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="no RLIMIT_FSIZE on this platform")
def test_a_file_size_limit_leaves_the_existing_model_byte_identical(tmp_path):
    # runs everywhere on POSIX, also where mounting a tiny disk is not allowed
    target = tmp_path / "m.npz"
    save(Sequential(Linear(4, 3, seed=1)), target)
    before = target.read_bytes()
    out, err = child(TOO_BIG, target).communicate(timeout=120)
    assert out.split(" ", 1) == [str(errno.EFBIG), f"Could not save {target}: the file is larger "
                                 "than this file system or its limits allow. The existing m.npz "
                                 "was left as it was.\n"], err
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


# --- in the GUI: the user's Save and Export ---------------------------------------------

@contextmanager
def answering(path):
    """Inside the block: type ``path`` into the file dialog and accept (Yes to
    its "replace?"), then record the text of a message box that follows and
    close it. Yields the list of texts. The poller stops at the block's end,
    so that it never answers a later test's box."""
    from PyQt6.QtCore import QMetaObject, Qt, QTimer
    from PyQt6.QtWidgets import QApplication, QFileDialog, QLineEdit, QMessageBox

    messages, state = [], {"seen": 0, "stopped": False}

    def poll():
        if state["stopped"]:
            return
        box = QApplication.activeModalWidget()
        if isinstance(box, QFileDialog):
            state["seen"] += 1
            if state["seen"] == 3:          # settled: its own start-up selection is done
                box.findChild(QLineEdit, "fileNameEdit").setText(str(path))
                # queued: accept() may ask "replace?" in a nested loop we must answer
                QMetaObject.invokeMethod(box, "accept", Qt.ConnectionType.QueuedConnection)
        elif isinstance(box, QMessageBox):
            if isinstance(box.parent(), QFileDialog):   # "... already exists. Replace it?"
                box.button(QMessageBox.StandardButton.Yes).click()
            else:
                messages.append(box.text())
                box.button(QMessageBox.StandardButton.Ok).click()
        QTimer.singleShot(30, poll)

    QTimer.singleShot(30, poll)
    try:
        yield messages
    finally:
        state["stopped"] = True


@pytest.fixture
def editor(qtbot, tmp_path, monkeypatch):
    from cnnviz.gui.widgets.kernel_editor import KernelEditor

    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path / "settings"))
    e = KernelEditor()
    qtbot.addWidget(e)
    e.apply_preset("emboss")
    return e


def test_kernel_editor_save_writes_the_chosen_file_with_the_umask_mode(editor, tmp_path, umask):
    from cnnviz.engine import kernels as K
    from cnnviz.gui.widgets.kernel_json import kernel_from_json

    umask(0o022)
    path = tmp_path / "emboss.JSON"
    with answering(path) as messages:
        editor.save_dialog()
    assert messages == [] and sorted(p.name for p in tmp_path.iterdir()) == ["emboss.JSON", "settings"]
    np.testing.assert_array_equal(kernel_from_json(path.read_text()), K.emboss())
    assert oct(mode_of(path)) == oct(0o644)
    os.chmod(path, 0o600)                                   # the user's choice is kept
    with answering(path) as messages:
        editor.save_dialog()                                # over it, after "Replace?"
    assert messages == [] and oct(mode_of(path)) == oct(0o600)


def test_kernel_editor_save_on_a_full_disk_says_so_and_keeps_the_old_file(editor, tiny_disk):
    path = tiny_disk / "kernel.json"
    editor.save_json(path)
    before = path.read_bytes()
    fill(tiny_disk)
    editor.set_kernel(np.full((31, 31), 0.123456, np.float32))
    with answering(path) as messages:
        editor.save_dialog()
    assert messages == [f"Could not save {path}: the disk is full. "
                        "The existing kernel.json was left as it was."]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "kernel.json"]


@pytest.mark.parametrize("kind, name, mask, expected", [("npy", "conv1.NPY", 0o022, 0o644),
                                                        ("txt", "conv1.txt", 0o077, 0o600)])
def test_tensor_panel_export_writes_exactly_the_chosen_file(qtbot, tmp_path, monkeypatch, umask,
                                                            kind, name, mask, expected):
    from cnnviz.gui.stepper.tensor_panel import TensorPanel

    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path / "settings"))
    panel = TensorPanel("conv1 (1, 2, 3, 4)")
    qtbot.addWidget(panel)
    tensor = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) / 7
    panel.show_maps(tensor, tensor[0], ["map 0", "map 1"], "conv1: (1, 2, 3, 4)")
    umask(mask)
    with answering(tmp_path / name) as messages:
        panel._export_dialog(kind)                           # the Export menu's action
    path = tmp_path / name
    assert messages == [] and sorted(p.name for p in tmp_path.iterdir()) == [name, "settings"]
    saved = np.load(path) if kind == "npy" else np.loadtxt(path).reshape(tensor.shape)
    np.testing.assert_allclose(saved, tensor, rtol=1e-7)
    assert oct(mode_of(path)) == oct(expected)


@pytest.mark.parametrize("kind", ["npy", "txt"])
def test_tensor_panel_export_on_a_full_disk_says_so_and_keeps_the_old_file(qtbot, tiny_disk,
                                                                          monkeypatch, kind):
    from cnnviz.gui.stepper.tensor_panel import TensorPanel

    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tiny_disk.parent / "settings"))
    panel = TensorPanel("conv1 (1, 2, 3, 4)")
    qtbot.addWidget(panel)
    small = np.ones((1, 1, 2, 2), np.float32)
    panel.show_maps(small, small[0], ["map 0"], "conv1: (1, 1, 2, 2)")
    path = tiny_disk / f"conv1.{kind}"
    panel.save(path, kind)
    before = path.read_bytes()
    fill(tiny_disk)
    big = np.random.default_rng(0).standard_normal((1, 6, 24, 24)).astype(np.float32)
    panel.show_maps(big, big[0], [f"map {i}" for i in range(6)], "conv1: (1, 6, 24, 24)")
    with answering(path) as messages:
        panel._export_dialog(kind)
    assert messages == [f"Could not save {path}: the disk is full. "
                        f"The existing conv1.{kind} was left as it was."]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["conv1." + kind, "filler"]


def test_feature_map_export_writes_exactly_the_chosen_file(qtbot, tmp_path, monkeypatch, umask):
    from cnnviz.gui.widgets.feature_map_grid import FeatureMapGrid

    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path / "settings"))
    grid = FeatureMapGrid()
    qtbot.addWidget(grid)
    maps = np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5)
    grid.set_maps(maps, ["a", "b"])
    umask(0o022)
    path = tmp_path / "b.NPY"
    with answering(path) as messages:
        grid.export_tile_dialog(1, "npy")
    assert messages == [] and sorted(p.name for p in tmp_path.iterdir()) == ["b.NPY", "settings"]
    np.testing.assert_array_equal(np.load(path), maps[1])
    assert oct(mode_of(path)) == oct(0o644)


def test_feature_map_png_export_on_a_full_disk_says_so_and_keeps_the_old_file(qtbot, tiny_disk,
                                                                            monkeypatch):
    from cnnviz.gui.widgets.feature_map_grid import FeatureMapGrid

    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tiny_disk.parent / "settings"))
    grid = FeatureMapGrid()
    qtbot.addWidget(grid)
    grid.set_maps(np.zeros((1, 2, 2), np.float32), ["flat"])
    path = tiny_disk / "map.png"
    grid.save_tile_png(0, path)
    before = path.read_bytes()
    fill(tiny_disk)
    grid.set_maps(np.random.default_rng(0).standard_normal((1, 64, 64)).astype(np.float32), ["noise"])
    with answering(path) as messages:
        grid.export_tile_dialog(0, "png")
    assert path.read_bytes() == before
    assert messages == [f"Could not save {path}: the disk is full. "
                        "The existing map.png was left as it was."]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler", "map.png"]
