"""Shared test set-up.

Qt must not look for a display: the offscreen platform is chosen here, before
pytest-qt or any test module imports PyQt6. An explicit QT_QPA_PLATFORM in the
environment (e.g. xcb, to watch GUI tests) still wins.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
