"""The Network builder's network trained in the Training tab and stepped in
the Layer Stepper (the main window, pytest-qt, offscreen)."""

import json

import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QMessageBox

from cnnviz.data.idx import write_idx
from cnnviz.data.mnist import load_mnist
from cnnviz.engine import architecture as A

from dialogs import Answer
from test_builder import open_tab, select_palette, window  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory):
    d = tmp_path_factory.mktemp("mnist-small")
    train, test = load_mnist(split="train"), load_mnist(split="test")
    write_idx(d / "train-images-idx3-ubyte", train.images[:1000])
    write_idx(d / "train-labels-idx1-ubyte", train.labels[:1000])
    write_idx(d / "t10k-images-idx3-ubyte", test.images[:200])
    write_idx(d / "t10k-labels-idx1-ubyte", test.labels[:200])
    return d


def build_small_net(builder):
    """conv 8 maps 3x3, BatchNorm, ReLU, max pool, Dropout, flatten, linear 10,
    added from the palette."""
    builder.start_from("", ask=False)
    for label in ("Conv2D", "BatchNorm", "ReLU", "Max pooling", "Dropout", "Flatten", "Linear"):
        select_palette(builder, label)
        builder.add_chosen()
    assert builder.evaluation.ok and builder.train_button.isEnabled()


def visit_every_view(qtbot, training):
    """Each page of the Training tab shown while the run goes on: no error."""
    for page in range(training.views.count()):
        training.views.setCurrentIndex(page)
        step = training.trainer.step
        qtbot.waitUntil(lambda: training.trainer.step >= step + 2, timeout=30_000)
        assert not training.banner.isVisible(), training.banner.text()


def test_train_this_network_trains_it_in_the_training_tab(qtbot, window, small_mnist):
    builder = open_tab(window, "Network builder")
    build_small_net(builder)
    qtbot.mouseClick(builder.train_button, Qt.MouseButton.LeftButton)
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Training"
    training = window._current_inner()
    assert training.setup.model.currentData() == "builder"
    assert "(from the Network builder)" in training.setup.source.text()
    training.setup.set_data_dir(str(small_mnist))
    training.setup.epochs.setValue(20)
    training.start()
    qtbot.waitUntil(lambda: training.trainer is not None and training.trainer.step >= 5,
                    timeout=30_000)
    model = training.trainer.model
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "BatchNorm2d", "ReLU", "MaxPool2D", "Dropout", "Flatten", "Linear"]
    assert [layer.name for layer in model.layers] == [r.name for r in builder.evaluation.rows]
    assert not training.banner.isVisible(), training.banner.text()
    visit_every_view(qtbot, training)
    # it learns: the loss of the last batches below that of the first
    qtbot.waitUntil(lambda: training.trainer.history.n_batches >= 25, timeout=60_000)
    loss = np.asarray(training.trainer.history.loss)
    training.stop()
    qtbot.waitUntil(lambda: not training.runner.is_running(), timeout=10_000)
    assert loss[-5:].mean() < loss[:5].mean()
    # an edit in the builder is not the run's network until handed over again
    builder.model.set_field(0, "out_channels", "4")
    builder.refresh()
    assert training.setup.settings().architecture.layers[0][2]["out_channels"] == 8


def test_the_1998_lenet5_trains_with_every_view_of_the_training_tab(qtbot, window,
                                                                   small_mnist):
    builder = open_tab(window, "Network builder")
    builder.start_from("lenet5-1998", ask=False)
    qtbot.mouseClick(builder.train_button, Qt.MouseButton.LeftButton)
    training = window._current_inner()
    training.setup.set_data_dir(str(small_mnist))
    training.setup.epochs.setValue(20)
    training.start()
    qtbot.waitUntil(lambda: training.trainer is not None and training.trainer.step >= 3,
                    timeout=30_000)
    assert [layer.name for layer in training.trainer.model.layers][:3] == ["pad", "norm", "C1"]
    visit_every_view(qtbot, training)
    training.stop()
    qtbot.waitUntil(lambda: not training.runner.is_running(), timeout=10_000)
    assert not training.banner.isVisible(), training.banner.text()


def test_an_architecture_file_is_a_model_choice(qtbot, window, small_mnist, tmp_path):
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"input_shape": [1, 28, 28], "layers": [
        {"type": "Flatten"}, {"type": "Linear", "out_features": 10}]}))
    training = open_tab(window, "Training")
    training.setup.set_model_file(str(path))
    training.setup.set_data_dir(str(small_mnist))
    training.start()
    qtbot.waitUntil(lambda: training.trainer is not None and training.trainer.step >= 2,
                    timeout=30_000)
    assert [layer.name for layer in training.trainer.model.layers] == ["flatten1", "fc1"]
    training.stop()
    # the tab's state, not the thread: the thread ends first, and a Start
    # before the tab has taken its end in is a Start on a running run (none);
    # this small network's 80 batches may also have finished the run first
    qtbot.waitUntil(lambda: training.state in ("stopped", "finished"), timeout=10_000)
    # a bad file: one line, no run
    path.write_text("{")
    other = tmp_path / "other.json"
    other.write_text("{")
    training.setup.set_model_file(str(other))
    discard = Answer(QMessageBox.StandardButton.Discard)
    training.start()
    discard.stop()
    assert training.banner.isVisible() and str(other) in training.banner.text()
    assert "not valid JSON" in training.banner.text()


def test_step_through_this_network_opens_it_in_the_stepper(qtbot, window):
    builder = open_tab(window, "Network builder")
    build_small_net(builder)
    qtbot.mouseClick(builder.step_button, Qt.MouseButton.LeftButton)
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Layer Stepper"
    stepper = window._current_inner()
    assert [layer.name for layer in stepper.session.model.layers] == [
        r.name for r in builder.evaluation.rows]
    assert stepper.source == builder.model.architecture().title


def test_a_network_the_stepper_cannot_take_leaves_its_message_in_the_builder(qtbot, window):
    builder = open_tab(window, "Network builder")
    builder.start_from("bottleneck-1x1", ask=False)      # ends in maps, not class scores
    assert builder.step_button.isEnabled()
    qtbot.mouseClick(builder.step_button, Qt.MouseButton.LeftButton)
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Network builder"
    message = builder.banner.label.text()
    assert message.startswith("The Layer Stepper cannot step it: ")
    stepper = open_tab(window, "Layer Stepper")
    assert message.removeprefix("The Layer Stepper cannot step it: ") in \
        stepper.banner.label.text()
    assert A.read(A.bundled()["bottleneck-1x1"]).title not in stepper.source
