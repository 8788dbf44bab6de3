"""Where cnnviz writes its logs: one place for the command line's crash
logs and the window's log, so the README can name it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def log_dirs() -> list[Path]:
    """$XDG_STATE_HOME/cnnviz (or ~/.local/state/cnnviz), then the temporary
    directory for when that cannot be written."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return [base / "cnnviz", Path(tempfile.gettempdir())]
