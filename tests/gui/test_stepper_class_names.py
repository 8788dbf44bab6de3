"""The Layer Stepper names a network's own classes (issue #14): a model
trained on an image folder of cats, dogs and ships shows "cat", "dog",
"ship" in the probability chart, the loss line, the Target box and the
Saliency tab, whether it comes from `cnnviz train --save`, a Training tab
checkpoint or the Training tab's "Open in Layer Stepper". A file saved before
names were recorded, or a network nobody named, is numbered 0..k-1 for its
own k outputs (not 0-9)."""

import json

import numpy as np
import pytest

from cnnviz.cli import main as cli_main
from cnnviz.data.classes import saved_class_names
from cnnviz.engine import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential
from cnnviz.engine.serialization import save
from cnnviz.gui.stepper.class_names import ClassSpin

from test_training_datasets import write_folder

PETS = {"cat": (200, 120, 40), "dog": (90, 60, 30), "ship": (40, 80, 220)}   # RGB


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def tiny_arch(path, side=12, classes=3):
    path.write_text(json.dumps({"input_shape": [3, side, side], "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"}, {"type": "MaxPool2D", "kernel_size": 2}, {"type": "Flatten"},
        {"type": "Linear", "out_features": classes}]}))
    return path


def small_net(classes, side=12):
    return Sequential(Conv2D(3, 4, 3, padding=1, seed=0), ReLU(), MaxPool2D(2), Flatten(),
                      Linear(4 * (side // 2) ** 2, classes, seed=0))


def ticks(tab):
    return [t[1] for t in tab.chart.plot.getAxis("bottom")._tickLevels[0]]


def shown_classes(tab):
    """What the Stepper says the classes are: the chart's ticks after a full
    forward pass, the Target box's text for each class, the Saliency tab's entries."""
    tab.buttons["run_forward"].click()
    spin = tab.target_spin
    texts = [spin.textFromValue(v) for v in range(spin.minimum(), spin.maximum() + 1)]
    box = tab.saliency_tab.class_box
    return ticks(tab), texts, [box.itemText(i) for i in range(1, box.count())]


def test_a_model_trained_on_a_folder_shows_its_class_names(stepper_tab, tmp_path, capsys):
    folder = write_folder(tmp_path / "pets", per_class=8, names=PETS)
    model_file = tmp_path / "pets.npz"
    code = cli_main([str(a) for a in (
        "train", "--arch", tiny_arch(tmp_path / "pets.json"), "--data", f"folder:{folder}",
        "--epochs", 1, "--batch-size", 8, "--workers", 1, "--no-progress", "--warmup", 0,
        "--save", model_file)])
    assert code == 0, capsys.readouterr().err
    tab = stepper_tab
    assert tab.load_model_file(model_file), tab.banner.label.text()
    chart, target, saliency = shown_classes(tab)
    assert chart == ["cat", "dog", "ship"]
    assert target == ["0 cat", "1 dog", "2 ship"]
    assert saliency == ["0 cat", "1 dog", "2 ship"]
    # the loss line names the target and the prediction
    s = tab.session
    pred = int(np.argmax(s.probs))
    text = tab.chart.label.text()
    assert f"(target {s.label} {list(PETS)[s.label]}, p = " in text
    assert f"prediction <b>{pred} {list(PETS)[pred]}</b>" in text
    # the user picks a target by its name; the loss follows
    tab.target_spin.lineEdit().setText("ship")
    tab.target_spin.interpretText()
    assert tab.target_spin.value() == 2 and tab.session.label == 2
    assert "(target 2 ship, p = " in tab.chart.label.text()
    # the saliency of a named class says its name
    tab.side.setCurrentWidget(tab.saliency_tab)
    tab.saliency_tab.class_box.setCurrentIndex(2)
    assert "class 1 dog" in tab.saliency_tab.info.text()


def test_a_file_without_names_and_an_unnamed_network_are_numbered_for_their_outputs(
        stepper_tab, tmp_path):
    tab = stepper_tab
    old = tmp_path / "old.npz"
    save(small_net(10), old, metadata={"model": "small", "epochs_done": 1})   # no class_names
    assert tab.load_model_file(old)
    chart, target, saliency = shown_classes(tab)
    assert chart == target == saliency == [str(i) for i in range(10)]
    assert "class" not in tab.banner.label.text()      # nothing to say about names
    # a 3-output network given by another tab (the builder's): 3 classes, 0..2
    assert tab.use_model(small_net(3), "three classes")
    assert shown_classes(tab) == (["0", "1", "2"],) * 3
    assert tab.target_spin.maximum() == 2 and tab.session.label <= 2
    tab.target_spin.setValue(2)
    assert tab.session.label == 2
    # a 3-output file saved without names, after a named one: numbered again
    named = tmp_path / "named.npz"
    save(small_net(3), named, metadata={"class_names": ["cat", "dog", "ship"]})
    assert tab.load_model_file(named)
    assert shown_classes(tab)[0] == ["cat", "dog", "ship"]
    unnamed = tmp_path / "unnamed.npz"
    save(small_net(3), unnamed)
    assert tab.load_model_file(unnamed)
    assert shown_classes(tab) == (["0", "1", "2"],) * 3


def test_names_a_file_cannot_give_are_said_and_numbered(stepper_tab, tmp_path):
    tab = stepper_tab
    short = tmp_path / "short.npz"
    save(small_net(3), short, metadata={"class_names": ["cat", "dog"]})
    assert tab.load_model_file(short)
    assert shown_classes(tab)[0] == ["cat", "dog", "2"]
    assert tab.banner.label.text() == ("short.npz: it names 2 classes for its 3 outputs: "
                                       "classes 2 to 2 are numbered.")
    bad = tmp_path / "bad.npz"
    save(small_net(3), bad, metadata={"class_names": "cat dog ship"})
    assert tab.load_model_file(bad)
    assert shown_classes(tab)[0] == ["0", "1", "2"]
    assert tab.banner.label.text() == (
        "bad.npz: its class_names are not a list of names (each 1 to 100 characters): the "
        "classes are numbered 0 to 2.")


def test_saved_class_names_rules():
    assert saved_class_names({}, 3) == (("0", "1", "2"), "")
    assert saved_class_names({"class_names": []}, 2) == (("0", "1"), "")
    # a digits dataset names ten classes; a network using three takes the first three
    assert saved_class_names({"class_names": [str(i) for i in range(10)]}, 3)[0] == ("0", "1", "2")
    assert saved_class_names({"class_names": ["a", 3]}, 2)[0] == ("0", "1")


def test_the_target_box_takes_numbers_and_names(qtbot):
    spin = ClassSpin()
    qtbot.addWidget(spin)
    spin.set_names(["airplane", "automobile", "bird"])
    assert spin.maximum() == 2 and spin.text() == "0 airplane"
    for typed, value in (("2", 2), ("automobile", 1), ("1 automobile", 1), ("BIRD", 2)):
        spin.lineEdit().setText(typed)
        spin.interpretText()
        assert spin.value() == value, typed
    assert spin.validate("auto", 4)[0].name == "Intermediate"
    assert spin.validate("zebra", 5)[0].name == "Invalid"
    # wide enough for the widest name, not only the first and last
    assert spin.minimumWidth() >= spin.fontMetrics().horizontalAdvance("1 automobile")


def test_the_training_tabs_model_and_checkpoints_carry_the_datasets_names(
        qtbot, main_window, tmp_path):
    from test_training_datasets import choose, colour_model

    training = main_window._inner_tab("Training", build=True)
    training.setup.epochs.setValue(1)
    choose(qtbot, training, "folder", write_folder(tmp_path / "pets", per_class=8, names=PETS),
           12, True)
    training.setup.set_model_file(str(colour_model(12, 3, tmp_path / "colour.npz")))
    training.setup.batch_size.setValue(8)
    training.start()
    qtbot.waitUntil(lambda: training.state == "finished", timeout=60_000)
    assert training.run_class_names() == ("cat", "dog", "ship")
    # "Open in Layer Stepper": the copy is named after the run's dataset
    assert main_window.open_training_model_in_stepper()
    stepper = main_window._inner_tab("Layer Stepper")
    assert shown_classes(stepper)[0] == ["cat", "dog", "ship"]
    # a checkpoint keeps them; opened in the Stepper it shows them
    checkpoint = tmp_path / "pets-checkpoint.npz"
    training.save_checkpoint(str(checkpoint))
    qtbot.waitUntil(checkpoint.exists, timeout=10_000)
    assert stepper.load_model_file(checkpoint), stepper.banner.label.text()
    assert shown_classes(stepper)[:2] == (["cat", "dog", "ship"], ["0 cat", "1 dog", "2 ship"])
