"""The Layer Stepper's networks (pytest-qt, offscreen): the trained LeNet-5
that ships with the package is the default, labelled with the accuracy its
file records; the untrained ones stay, labelled so; "Model from Training"
is offered only when there is a run."""

import numpy as np
import pytest

from cnnviz.engine import lenet5, load, save
from cnnviz.gui.stepper import StepperTab
from cnnviz.gui.stepper import inputs
from cnnviz.gui.stepper.inputs import TRAINED_FILE

from stepper_steps import where_text


@pytest.fixture
def make_tab(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path))

    def make():
        t = StepperTab()
        qtbot.addWidget(t)
        t.resize(1400, 880)
        t.show()
        return t
    return make


def entries(tab):
    box = tab.network_box
    return [box.itemText(i) for i in range(box.count())]


def same_weights(model, state):
    return all(np.array_equal(v, state[k]) for k, v in model.state_dict().items())


def test_the_default_is_the_trained_lenet5_and_it_reads_the_first_test_digit_as_a_7(make_tab):
    tab = make_tab()
    assert tab.network_box.currentText() == "LeNet-5 (trained, 99.34% on MNIST)"
    assert same_weights(tab.session.model, load(TRAINED_FILE).state_dict())
    assert tab.input_name == "MNIST test #0" and tab.session.label == 7
    tab.buttons["run_forward"].click()
    assert tab.session.prediction == 7 and tab.session.probs[7] > 0.9
    assert "LeNet-5 (trained, 99.34% on MNIST)" in where_text(tab)
    assert tab.window_title().startswith("Layer Stepper \u2014 LeNet-5 (trained, 99.34%")


def test_the_label_is_the_accuracy_the_file_records(make_tab, tmp_path, monkeypatch):
    model = load(TRAINED_FILE)
    path = tmp_path / "other.npz"
    save(model, path, {**model.metadata, "test_accuracy": 0.9712, "dataset": "Fashion-MNIST"})
    monkeypatch.setattr(inputs, "TRAINED_FILE", path)
    tab = make_tab()
    assert entries(tab)[0] == "LeNet-5 (trained, 97.12% on Fashion-MNIST)"
    assert tab.network_box.currentIndex() == 0 and not tab.banner.isVisible()


def test_without_its_file_the_trained_entry_is_disabled_and_says_why(make_tab, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setattr(inputs, "TRAINED_FILE", tmp_path / "gone.npz")
    tab = make_tab()
    item = tab.network_box.model().item(0)
    assert item.text() == "LeNet-5 (trained): not available" and not item.isEnabled()
    assert "gone.npz: no such file" in item.toolTip()
    assert tab.network_box.currentText() == "LeNet-5 (untrained, seed 0)"
    assert same_weights(tab.session.model, lenet5(seed=0).state_dict())
    assert "untrained LeNet-5 is shown instead" in tab.banner.label.text()


def test_the_untrained_networks_are_offered_and_labelled_untrained(make_tab):
    tab = make_tab()
    names = entries(tab)
    assert names[:3] == ["LeNet-5 (trained, 99.34% on MNIST)", "LeNet-5 (untrained, seed 0)",
                         "LeNet-5 small (untrained, seed 0)"]
    tab.network_box.setCurrentIndex(1)
    tab.network_box.activated.emit(1)                   # what a click in the list does
    assert tab.source == "LeNet-5 (untrained, seed 0)"
    assert same_weights(tab.session.model, lenet5(seed=0).state_dict())
    assert tab.session.x.shape == (1, 1, 28, 28) and tab.session.label == 7   # same digit
    tab.choose_network("small")
    assert tab.network_box.currentText() == "LeNet-5 small (untrained, seed 0)"


def test_model_from_training_is_offered_only_with_a_source_and_a_run(make_tab):
    tab = make_tab()
    assert "Model from Training" not in entries(tab)          # no Training tab to ask
    run = {"model": None}

    def take():
        return "No training run yet." if run["model"] is None else (run["model"], "from a run")
    tab.set_training_source(take, lambda: None if run["model"] else "No training run yet.")
    row = entries(tab).index("Model from Training")
    assert row == 3                                           # below the built-in networks
    item = tab.network_box.model().item(row)
    assert not item.isEnabled() and item.toolTip() == "No training run yet."
    assert not tab.take_training_model()
    assert tab.banner.label.text() == "No training run yet."
    assert tab.network_box.currentIndex() == 0                # the trained model stays
    run["model"] = lenet5(seed=3)
    tab.network_box.about_to_pop_up.emit()                    # the list is opened
    assert item.isEnabled() and "a copy" in item.toolTip()
    tab.network_box.setCurrentIndex(row)
    tab.network_box.activated.emit(row)
    assert tab.session.model is run["model"] and tab.source == "from a run"
    assert tab.network_box.currentText() == "Model from Training"
    tab.choose_network("ex1")                                 # a lesson, then back
    tab.network_box.activated.emit(row)
    assert tab.source == "from a run" and tab.session.label == 7


def test_a_busy_training_tab_is_asked_again_until_another_network_is_chosen(make_tab, qtbot):
    from cnnviz.gui.stepper.inputs import NotYet

    tab = make_tab()
    asked = []

    def take():
        asked.append(1)
        return NotYet("The Training tab is evaluating the test set.")
    tab.set_training_source(take, lambda: None)
    assert not tab.take_training_model()
    assert tab.banner.label.text() == "The Training tab is evaluating the test set. Waiting for it..."
    qtbot.waitUntil(lambda: len(asked) >= 3, timeout=2_000)   # asked again, every 200 ms
    row = tab.network_box.findText("LeNet-5 (untrained, seed 0)")
    tab.network_box.setCurrentIndex(row)
    tab.network_box.activated.emit(row)                        # the user chose another
    n = len(asked)
    qtbot.wait(600)
    assert len(asked) == n and tab.source == "LeNet-5 (untrained, seed 0)"
