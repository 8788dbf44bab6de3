"""Where cnnviz keeps its window state and last directory (QSettings).

``CNNVIZ_SETTINGS_DIR`` redirects everything to an INI file in that directory;
tests and benchmarks set it so they never touch the user's own settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from PyQt6.QtCore import QSettings

ORGANIZATION = "cnnviz"
APPLICATION = "cnnviz"
LAST_DIR_KEY = "files/last_dir"


def app_settings() -> QSettings:
    override = os.environ.get("CNNVIZ_SETTINGS_DIR")
    if override:
        return QSettings(str(Path(override) / f"{APPLICATION}.ini"), QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


def last_dir() -> str:
    value = app_settings().value(LAST_DIR_KEY, "", type=str)
    return value if value and Path(value).is_dir() else str(Path.home())


def remember_dir(path: str | os.PathLike) -> None:
    p = Path(path)
    app_settings().setValue(LAST_DIR_KEY, str(p if p.is_dir() else p.parent))
