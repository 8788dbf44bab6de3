"""The layers of the house: imports only point down (see DESIGN.md).

cnnviz.engine and cnnviz.data never import Qt, pyqtgraph or cnnviz.gui;
the engine does not import cv2 either, and in cnnviz.data only the image
loader does. Checked on the source (ast, so an import inside a function or a
relative `from ..gui import x` counts) and, as a second net, by importing
the packages in a fresh interpreter and looking at sys.modules.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cnnviz"
QT = {"PyQt6", "PyQt5", "PySide6", "PySide2", "qtpy", "superqt", "pyqtgraph", "cnnviz.gui"}
IMPORTERS = {"importlib.import_module", "import_module", "__import__"}


def imported_modules(source: str, module: str, is_package: bool = False):
    """(line, module name) for every import in `source`, relative ones resolved.

    `module` is the dotted name of the file ("cnnviz.engine.layers"), needed
    to resolve `from . import x`. `from a import b` yields both "a" and "a.b"
    (b may be a submodule). importlib.import_module("x") / __import__("x")
    with a literal name count too.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else (
                f"{f.value.id}.{f.attr}" if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            )
            if name in IMPORTERS and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def violations(root: Path, package: str, forbidden: set, allow: tuple = ()) -> list:
    """'file:line imports X' for every forbidden import in the .py files under root.

    allow: file names (relative to root, e.g. "images.py") exempt from the rule.
    """
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.as_posix() in allow:
            continue
        parts = [package, *rel.with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        for line, name in imported_modules(path.read_text(encoding="utf-8"), module, is_package):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path}:{line} imports {name}")
    return sorted(set(found))


def _layer(name):
    root = PACKAGE / name
    assert root.is_dir(), f"{root} is missing: update this test if the layout changed"
    return root, f"cnnviz.{name}"


def test_engine_has_no_qt_gui_or_cv2():
    root, package = _layer("engine")
    assert violations(root, package, QT | {"cv2"}) == []


def test_data_has_no_qt_or_gui():
    root, package = _layer("data")
    assert list(root.glob("*.py")), "no sources found: the check would pass vacuously"
    assert violations(root, package, QT) == []


def test_data_uses_cv2_only_in_the_image_loader():
    root, package = _layer("data")
    assert violations(root, package, {"cv2"}, allow=("images.py",)) == []
    assert violations(root, package, {"cv2"}), "images.py is expected to use cv2: is the check blind?"


def test_session_has_no_qt_if_present():
    root = PACKAGE / "session"
    if not root.is_dir():
        pytest.skip("no cnnviz/session layer yet")
    assert violations(root, "cnnviz.session", QT) == []


BAD = {
    "plain.py": "import PyQt6\n",
    "from_import.py": "from PyQt6.QtWidgets import QWidget\n",
    "alias.py": "import pyqtgraph as pg\n",
    "in_function.py": "def f():\n    import cv2\n    return cv2\n",
    "absolute_gui.py": "import cnnviz.gui.widgets\n",
    "from_cnnviz.py": "from cnnviz import gui\n",
    "relative.py": "from ..gui import main_window\n",
    "relative_module.py": "from ..gui.widgets import FeatureGrid\n",
    "dynamic.py": "import importlib\nqt = importlib.import_module('PySide6.QtCore')\n",
    "dunder.py": "qt = __import__('superqt')\n",
    "sub/__init__.py": "from ...gui import x\n",
}
GOOD = (
    "import numpy as np\nfrom . import functional\nfrom .layers import Conv2D\n"
    "from cnnviz.data import load_mnist\nimport cv2x\nimport PyQt6ish\n"
    "# import PyQt6\nNAME = 'PyQt6'\nprint('import cnnviz.gui')\n"
)


def test_checker_catches_every_bad_pattern(tmp_path):
    root = tmp_path / "engine"
    (root / "sub").mkdir(parents=True)
    for name, source in BAD.items():
        (root / name).write_text(source)
    (root / "good.py").write_text(GOOD)
    found = violations(root, "cnnviz.engine", QT | {"cv2"})
    flagged = {Path(v.split(":")[0]).relative_to(root).as_posix() for v in found}
    assert flagged == set(BAD), found
    assert f"{root / 'relative.py'}:1 imports cnnviz.gui" in found
    assert violations(root, "cnnviz.engine", QT | {"cv2"}, allow=tuple(BAD)) == []


def test_relative_imports_resolve_against_the_package():
    found = set(imported_modules("from . import x\nfrom ..y import z\n", "cnnviz.data.mnist"))
    assert found == {(1, "cnnviz.data"), (1, "cnnviz.data.x"), (2, "cnnviz.y"), (2, "cnnviz.y.z")}
    names = {n for _, n in imported_modules("from . import x\n", "cnnviz.data", is_package=True)}
    assert names == {"cnnviz.data", "cnnviz.data.x"}


def test_importing_engine_and_data_loads_no_qt():
    """Catches indirect imports the source scan cannot see (e.g. via a third party)."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import cnnviz.engine, cnnviz.data\n"
        "for pkg in (cnnviz.engine, cnnviz.data):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.split())
    assert "cnnviz.data.images" in loaded and "cnnviz.engine" in loaded  # the walk did run
    bad = sorted(f for f in QT if any(m == f or m.startswith(f + ".") for m in loaded))
    assert bad == [], f"importing cnnviz.engine/cnnviz.data loaded {bad}"
