"""Fixtures shared by the GUI tests."""

import pytest


@pytest.fixture
def stepper_tab(qtbot, tmp_path, monkeypatch):
    """A shown Layer Stepper at 1400x880 with its own settings folder; its
    loader thread is stopped afterwards."""
    from cnnviz.gui.stepper import StepperTab

    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path))
    tab = StepperTab()
    qtbot.addWidget(tab)
    tab.resize(1400, 880)
    tab.show()
    qtbot.waitExposed(tab)
    yield tab
    tab.shutdown()


@pytest.fixture
def lab_window(qtbot, tmp_path, monkeypatch):
    """The main window at 1400x900 with no default picture, its own settings
    folder, closed afterwards: the Kernel Lab tests' window."""
    from cnnviz.gui.app import configure_pyqtgraph
    from cnnviz.gui.main_window import MainWindow

    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path / "settings"))
    configure_pyqtgraph()
    window = MainWindow(load_default_input=False)
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()


@pytest.fixture
def lab(window):
    """The Kernel Lab of the test module's ``window`` fixture."""
    return window.kernel_lab


@pytest.fixture
def main_window(qtbot, tmp_path, monkeypatch):
    """The main window with its standard tabs at 1400x900, its own settings
    folder, no default picture; closed afterwards answering Discard to every
    unsaved-work question, and no worker thread may be left running."""
    from PyQt6.QtWidgets import QMessageBox

    from cnnviz.gui.app import configure_pyqtgraph
    from cnnviz.gui.main_window import MainWindow

    from dialogs import AnswerEach

    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path / "settings"))
    configure_pyqtgraph()
    w = MainWindow(load_default_input=False)
    w.add_standard_tabs()
    # Not qtbot.addWidget: pytest-qt would close it before this fixture's
    # teardown, and a window with a trained model asks first.
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    yield w
    if w.isVisible():
        discard = AnswerEach(QMessageBox.StandardButton.Discard)
        w.close()
        discard.stop()
    for i in range(w.tabs.count()):
        inner = getattr(w.tabs.widget(i), "inner", None)
        if inner is not None and hasattr(inner, "shutdown"):
            assert inner.shutdown(2.0), "a worker thread was left running"
    # deleted through Qt by tests/conftest.py's delete_the_tests_windows


@pytest.fixture
def training_tabs(qtbot):
    """Make Training tabs (``training_tabs(**TrainingTab kwargs)``), shown at
    1400x900; afterwards each is closed (Discard), shut down, and no training
    or dataset-loading thread of any may be left running."""
    from PyQt6.QtWidgets import QMessageBox

    from cnnviz.gui.training import TrainingTab
    from dialogs import Answer

    tabs = []

    def make(**kwargs):
        tab = TrainingTab(**kwargs)
        tab.resize(1400, 900)
        tab.show()
        tabs.append(tab)
        return tab

    yield make
    left = []
    for tab in tabs:
        if tab.isVisible():
            discard = Answer(QMessageBox.StandardButton.Discard)
            tab.close()
            discard.stop()
        tab.shutdown(3.0)
        runners = [tab.runner, *tab._old_runners]
        left += [r for r in runners if r is not None and r.is_running()]
        left += [t for t, _ in tab.loader._old if t.isRunning()]
    assert not left, "a training or loading thread was left running"
