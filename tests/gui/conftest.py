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
