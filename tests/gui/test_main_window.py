"""The main window's tabs working together (pytest-qt, offscreen): the Layer
Stepper fed with the Kernel Lab's picture, and closing the window while the
Training tab trains."""

import time

import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QMessageBox

from cnnviz.gui.stepper.inputs import to_model_input

from dialogs import Answer


@pytest.fixture
def window(main_window):
    return main_window


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


# --- the Training tab's model in the Layer Stepper ----------------------------------------

def test_without_a_run_model_from_training_is_disabled_and_says_why(qtbot, window):
    stepper = open_tab(window, "Layer Stepper")
    row = stepper.network_box.findText("Model from Training")
    assert row > 0
    stepper.network_box.about_to_pop_up.emit()               # the list is opened
    item = stepper.network_box.model().item(row)
    assert not item.isEnabled()
    assert item.toolTip() == "No training run yet: start one in the Training tab."
    assert not window.open_training_model_in_stepper()
    assert stepper.banner.label.text() == "No training run yet: start one in the Training tab."
    assert stepper.network_box.currentText().startswith("LeNet-5 (trained")


def test_open_in_stepper_takes_a_copy_of_the_weights_of_that_moment(qtbot, window):
    training = start_training(qtbot, window)
    trainer = training.trainer
    with trainer.model_lock:            # the run waits before its next batch: "that moment"
        expected = trainer.model.state_dict()
        assert window.open_training_model_in_stepper()
        # the updates in the weights (counted under the lock, one optimizer since the start)
        step = trainer.optimizer.steps
    stepper = window._current_inner()
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Layer Stepper"
    model = stepper.session.model
    assert model is not trainer.model
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, expected[name])
    assert stepper.network_box.currentText() == "Model from Training"
    assert stepper.source.startswith(f"Model from Training at step {step:,} (")
    assert window.windowTitle().startswith(f"Layer Stepper \u2014 Model from Training at step {step:,}")
    # training goes on; the stepper keeps the copy
    qtbot.waitUntil(lambda: trainer.step >= step + 3, timeout=20_000)
    with trainer.model_lock:
        now = trainer.model.state_dict()
    assert not np.array_equal(now["conv1.weight"], expected["conv1.weight"])
    for name, value in stepper.session.model.state_dict().items():
        np.testing.assert_array_equal(value, expected[name])
    # choosing the entry again takes the newest weights
    row = stepper.network_box.findText("Model from Training")
    stepper.network_box.activated.emit(row)
    assert not np.array_equal(stepper.session.model.state_dict()["conv1.weight"],
                              expected["conv1.weight"])


def test_the_training_tabs_button_opens_the_run_in_the_stepper(qtbot, window):
    training = open_tab(window, "Training")
    assert not training.stepper_button.isEnabled()          # no run yet: nothing to open
    training = start_training(qtbot, window)
    qtbot.waitUntil(training.stepper_button.isEnabled, timeout=5_000)
    qtbot.mouseClick(training.stepper_button, Qt.MouseButton.LeftButton)
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Layer Stepper"
    stepper = window._current_inner()
    # the copy waits for the trainer's lock between two batches (retried every 200 ms)
    qtbot.waitUntil(lambda: stepper.network_box.currentText() == "Model from Training",
                    timeout=10_000)
    assert stepper.session.model is not training.trainer.model


def test_a_busy_trainer_is_not_waited_for_the_stepper_asks_again(qtbot, window):
    import threading

    stepper = open_tab(window, "Layer Stepper")             # built: only the copy is timed
    training = start_training(qtbot, window)
    held, release = threading.Event(), threading.Event()

    def hold():                         # as a test-set evaluation holds the lock
        with training.trainer.model_lock:
            held.set()
            release.wait(10)
    thread = threading.Thread(target=hold)
    thread.start()
    try:
        held.wait(10)
        t0 = time.perf_counter()
        assert not window.open_training_model_in_stepper()
        assert time.perf_counter() - t0 < 0.5                  # the GUI did not wait
        assert window._current_inner() is stepper
        assert stepper.banner.label.text() == ("The Training tab is evaluating the test set. "
                                               "Waiting for it...")
        assert stepper.source.startswith("LeNet-5 (trained")
        qtbot.wait(500)                                        # asked again: still busy
        assert stepper.source.startswith("LeNet-5 (trained")
    finally:
        release.set()
        thread.join()
    # the lock is free: the next try takes the model
    qtbot.waitUntil(lambda: stepper.source.startswith("Model from Training"), timeout=2_000)
    assert stepper.network_box.currentText() == "Model from Training"
