"""cnnviz.atomic: a failed save leaves the old file as it was, and no litter."""

import pytest

from cnnviz.atomic import atomic_open, atomic_path, atomic_write_text


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "kernel.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as f:
            f.write("half of the new")
            raise RuntimeError("disk full, say")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["kernel.json"]


def test_a_successful_write_replaces_the_file_and_creates_folders(tmp_path):
    target = tmp_path / "new" / "dir" / "view.png"
    with atomic_path(target, suffix=".png") as tmp:
        assert tmp.parent == target.parent and tmp != target and not target.exists()
        tmp.write_bytes(b"png")
    assert target.read_bytes() == b"png"
    assert [p.name for p in target.parent.iterdir()] == ["view.png"]
