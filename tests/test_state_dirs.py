"""The window's log and the command line's crash logs share one folder, the
one the README names: $XDG_STATE_HOME/cnnviz, else ~/.local/state/cnnviz."""

import tempfile
from pathlib import Path

from cnnviz.gui.app import _log_file


def test_the_window_logs_beside_the_crash_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert _log_file() == tmp_path / "state" / "cnnviz" / "cnnviz.log"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _log_file() == tmp_path / "home" / ".local" / "state" / "cnnviz" / "cnnviz.log"


def test_an_unwritable_state_folder_falls_back_to_the_temporary_folder(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "file"))
    assert _log_file() == Path(tempfile.gettempdir()) / "cnnviz.log"
