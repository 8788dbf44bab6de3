"""The main window's tabs working together (pytest-qt, offscreen): the Layer
Stepper fed with the Kernel Lab's picture, and closing the window while the
Training tab trains."""

import time

import numpy as np
import pytest
from PyQt6.QtWidgets import QMessageBox

from cnnviz.gui.stepper.inputs import to_model_input

from dialogs import Answer


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path / "settings"))
    from cnnviz.gui.app import configure_pyqtgraph
    from cnnviz.gui.main_window import MainWindow

    configure_pyqtgraph()
    w = MainWindow(load_default_input=False)
    w.add_standard_tabs()
    # Not qtbot.addWidget: pytest-qt would close it before this fixture's
    # teardown, and a window with a trained model asks first.
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    yield w
    if w.isVisible():       # close it here, answering the unsaved-model question if asked
        discard = Answer(QMessageBox.StandardButton.Discard)
        w.close()
        discard.stop()
    for i in range(w.tabs.count()):
        inner = getattr(w.tabs.widget(i), "inner", None)
        if inner is not None and hasattr(inner, "shutdown"):
            assert inner.shutdown(2.0), "a worker thread was left running"
    w.deleteLater()


def open_tab(window, title):
    index = next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == title)
    window.tabs.setCurrentIndex(index)
    return window.tabs.widget(index).inner


def test_the_stepper_takes_the_kernel_labs_picture(qtbot, window):
    stepper = open_tab(window, "Layer Stepper")
    assert not stepper.lab_button.isHidden()
    stepper.lab_button.click()                                   # nothing open yet
    assert "no picture yet" in stepper.banner.label.text()
    window.kernel_lab.open_sample("chelsea")
    qtbot.waitUntil(lambda: window.kernel_lab.image is not None, timeout=5_000)
    stepper.lab_button.click()
    picture = window.kernel_lab.image
    assert stepper.input_name == picture.name
    np.testing.assert_array_equal(stepper.session.x, to_model_input(picture.pixels))
    assert "converted to the model's input" in stepper.banner.label.text()


def start_training(qtbot, window):
    training = open_tab(window, "Training")
    training.setup.limit.setValue(2000)
    training.setup.epochs.setValue(50)
    training.start()
    qtbot.waitUntil(lambda: training.trainer.step >= 3, timeout=20_000)
    return training


def test_closing_mid_run_asks_cancel_keeps_training(qtbot, window):
    training = start_training(qtbot, window)
    cancel = Answer(QMessageBox.StandardButton.Cancel)
    assert not window.close()
    assert cancel.asked and "has not been saved" in cancel.asked[0]
    assert window.isVisible() and training.runner.is_running()
    step = training.trainer.step
    qtbot.waitUntil(lambda: training.trainer.step > step, timeout=10_000)


def test_closing_mid_run_discard_stops_the_worker_within_a_second(qtbot, window):
    training = start_training(qtbot, window)
    discard = Answer(QMessageBox.StandardButton.Discard)
    assert window.close()
    assert discard.asked
    assert not training.runner.is_running()
    assert time.perf_counter() - discard.clicked_at < 1.0    # from the answer to no thread
