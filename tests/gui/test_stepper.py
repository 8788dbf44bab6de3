"""The Layer Stepper driven as a user drives it (pytest-qt, offscreen): what the
tables and maps show must be the notes' numbers and the engine's trace."""

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from cnnviz.engine import (Conv2D, Flatten, Linear, ReLU, Sequential, SoftmaxCrossEntropy,
                           lenet5, load, save)
from cnnviz.engine import kernels as presets
from cnnviz.engine.lessons import LESSONS
from cnnviz.gui.stepper import StepperTab
from cnnviz.gui.stepper.explain import as_maps
from cnnviz.gui.stepper.inputs import TRAINED_FILE

from stepper_steps import click


@pytest.fixture
def tab(stepper_tab):
    return stepper_tab


def texts(panel, i=0):
    assert panel.showing_numbers, f"{panel.header.text()} is not shown as numbers"
    assert panel.stack.currentWidget() is panel.table_page      # the tables are what is seen
    return panel.tables.texts(i)


def as_text(rows):
    return [[f"{v:.4g}" for v in row] for row in rows]


# --- lessons: the notes' numbers in the tables --------------------------------------------

def test_lesson1_forward_and_backward_tables(tab):
    tab.choose_network("ex1")
    names = [b.text().split("\n")[0] for b in tab.strip.blocks]
    assert names == ["input", "conv1"]                        # the strip follows the network
    assert texts(tab.input_panel) == as_text(LESSONS["ex1"].input[0])
    click(tab, "forward")
    assert texts(tab.panel_b, 0) == [["-1", "4"], ["6", "16"]]
    assert texts(tab.panel_b, 1) == as_text(np.ascontiguousarray(tab.session.model.trace[0].output)[0, 1])
    tab.side.setCurrentWidget(tab.weights_tab)
    kernels = tab.weights_tab.panel_for("weight")
    assert kernels.tables.texts(0) == as_text(LESSONS["ex1"].layer.weight[0][0])
    click(tab, "back")
    assert texts(tab.panel_a, 0) == [["1", "1"], ["1", "1"]]             # the given δ
    dx = np.ascontiguousarray(tab.session.model.trace[0].grad_input)[0, 0]
    assert texts(tab.panel_b, 0) == as_text(dx)
    assert tab.weights_tab.panel_for("dW").tables.values(0).tolist() == \
        tab.session.model.layers[0].grads["weight"][0, 0].tolist()


def test_lesson2_stride_2_and_1_and_dilated_delta(tab):
    tab.choose_network("ex2s2")
    click(tab, "forward")
    assert texts(tab.panel_b) == [["10", "-5"], ["8", "3"]]
    click(tab, "back")
    tab.side.setCurrentWidget(tab.backward_tab)
    dilated = tab.backward_tab.stack.panels[1]
    assert texts(dilated) == [["1", "0", "2"], ["0", "0", "0"], ["3", "0", "4"]]
    dx = tab.backward_tab.stack.panels[5]
    assert texts(dx) == as_text(np.ascontiguousarray(tab.session.model.trace[0].grad_input)[0, 0])
    tab.choose_network("ex2s1")
    click(tab, "run_forward")
    assert texts(tab.panel_b) == [["10", "2", "-5"], ["4", "9", "3"], ["8", "5", "3"]]


@pytest.mark.parametrize("key", ["ex3max", "ex3avg"])
def test_lesson3_pooling_tables(tab, key):
    lesson = LESSONS[key]
    tab.choose_network(key)
    click(tab, "forward")
    assert texts(tab.panel_b) == as_text(lesson.expected["output0"])
    click(tab, "back")
    assert texts(tab.panel_a) == [["1", "2"], ["3", "4"]]
    assert texts(tab.panel_b) == as_text(lesson.expected["grad_input0"])
    tab.side.setCurrentWidget(tab.backward_tab)
    last = tab.backward_tab.stack.panels[len(tab.backward_tab.steps) - 1]
    assert texts(last) == as_text(lesson.expected["grad_input0"])


def test_lesson4_update_with_the_notes_learning_rate(tab):
    tab.choose_network("ex4")
    assert tab.lr_spin.value() == pytest.approx(0.001)
    click(tab, "run_back")
    conv = tab.session.model.layers[0]
    before, dw = conv.params["weight"].copy(), conv.grads["weight"].copy()
    click(tab, "update")
    tab.session.goto(0)
    tab.refresh()
    update = tab.weights_tab.panel_for("update")
    np.testing.assert_array_equal(update.tensor[0], before)
    np.testing.assert_array_equal(update.tensor[1], before - 0.001 * dw)
    np.testing.assert_array_equal(update.tensor[1], conv.params["weight"])


def test_lesson_cell_edit_reruns_and_reset_restores(tab):
    tab.choose_network("ex1")
    click(tab, "forward")
    table = tab.input_panel.tables.tables[0]
    table.item(0, 0).setText("3")                       # was 2; kernel A's corner is 1
    assert tab.session.x[0, 0, 0, 0] == 3
    assert texts(tab.panel_b, 0)[0][0] == "0"           # -1 + 1
    click(tab, "reset_weights")                         # "Reset lesson"
    assert tab.buttons["reset_weights"].text() == "Reset lesson"
    click(tab, "forward")
    assert texts(tab.panel_b, 0) == [["-1", "4"], ["6", "16"]]
    tab.side.setCurrentWidget(tab.weights_tab)
    tab.weights_tab.panel_for("weight").tables.tables[0].item(1, 1).setText("0")
    assert tab.session.model.layers[0].params["weight"][0, 0, 1, 1] == 0
    assert texts(tab.panel_b, 0) != [["-1", "4"], ["6", "16"]]


# --- LeNet-5: every displayed map is the engine's ------------------------------------------

def reference_pass(x, label):
    ref = load(TRAINED_FILE)                    # the default network: the bundled trained one
    ref.forward(x)
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn(ref.trace[-1].output, np.array([label]))
    ref.backward(loss_fn.backward())
    return ref, loss, loss_fn.probs[0]


def test_lenet_to_the_end_and_back_matches_the_engine(tab):
    s = tab.session
    ref, loss, probs = reference_pass(s.x.copy(), s.label)
    n = s.num_layers
    for i in range(n):
        click(tab, "forward")
        np.testing.assert_array_equal(tab.panel_a.rendered.data, as_maps(ref.trace[i].input)[0])
        np.testing.assert_array_equal(tab.panel_b.rendered.data, as_maps(ref.trace[i].output)[0])
        np.testing.assert_array_equal(tab.panel_b.tensor, ref.trace[i].output)
    assert not tab.buttons["forward"].isEnabled()
    assert "reached the end" in tab.buttons["forward"].toolTip()
    assert s.loss == loss
    np.testing.assert_array_equal(tab.chart.probs, probs)
    assert f"prediction <b>{int(np.argmax(probs))}</b>" in tab.chart.label.text()
    for i in range(n - 1, -1, -1):
        click(tab, "back")
        np.testing.assert_array_equal(tab.panel_a.rendered.data,
                                      as_maps(ref.trace[i].grad_output)[0])
        np.testing.assert_array_equal(tab.panel_b.rendered.data,
                                      as_maps(ref.trace[i].grad_input)[0])
        assert tab.panel_a.rendered.scales[0].signed          # diverging, centred at 0
        assert tab.panel_a.rendered.scales[0].lo == -tab.panel_a.rendered.scales[0].hi
    assert not tab.buttons["back"].isEnabled()
    assert "reached the input" in tab.buttons["back"].toolTip()


def test_keys_step_and_update_changes_weights_by_lr_dw(tab, qtbot):
    tab.lr_spin.setValue(0.05)
    tab.activateWindow()
    tab.setFocus()
    qtbot.keyClick(tab, Qt.Key.Key_Right)
    assert tab.session.done == 1
    assert "(Right)" in tab.buttons["forward"].toolTip()
    assert "(U)" in tab.buttons["update"].toolTip() and "(R)" in tab.buttons["reset"].toolTip()
    click(tab, "run_back")
    qtbot.keyClick(tab, Qt.Key.Key_Left)                     # already at the input: nothing
    conv1 = tab.session.model["conv1"]
    before, dw = conv1.params["weight"].copy(), conv1.grads["weight"].copy()
    qtbot.keyClick(tab, Qt.Key.Key_U)
    assert tab.session.last_update is not None
    tab.strip.blocks[2].click()                              # conv1 (block 0 is the input)
    assert tab.session.focus == 1
    tab.side.setCurrentWidget(tab.weights_tab)
    shown = tab.weights_tab.panel_for("update").tensor
    np.testing.assert_array_equal(shown[0], before)
    np.testing.assert_array_equal(shown[1], before - np.float32(0.05) * dw)
    np.testing.assert_array_equal(shown[2], shown[1] - shown[0])
    np.testing.assert_allclose(shown[2], -0.05 * dw, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(tab.weights_tab.panel_for("weight").tensor,
                                  conv1.params["weight"])
    qtbot.keyClick(tab, Qt.Key.Key_R)
    assert tab.session.done == 0 and tab.session.focus == -1


# --- a trained model: edit conv1's first kernel --------------------------------------------

@pytest.fixture(scope="module")
def trained_path(tmp_path_factory):
    from cnnviz.data.mnist import load_mnist
    from cnnviz.engine.trainer import TrainConfig, Trainer

    train = load_mnist(split="train")
    model = lenet5(seed=0)
    config = TrainConfig(epochs=1, limit=2000, batch_size=50, lr=0.05, snapshot_every=1000)
    for _ in Trainer(model, (train.images[:2000], train.labels[:2000]), None, config).run():
        pass
    path = tmp_path_factory.mktemp("model") / "trained.npz"
    save(model, path)
    return path


def test_trained_kernel_set_to_a_preset_updates_downstream(tab, trained_path):
    assert tab.load_model_file(trained_path)
    click(tab, "run_forward")
    x = tab.session.x.copy()
    tab.side.setCurrentWidget(tab.edit_tab)
    tab.edit_tab.select("conv1", 0, 0)
    tab.edit_tab.editor.apply_preset("Sobel x")
    sobel = presets.preset("Sobel x", (5, 5))
    np.testing.assert_array_equal(tab.session.model["conv1"].params["weight"][0, 0], sobel)
    ref = load(trained_path)
    ref["conv1"].params["weight"][0, 0] = sobel
    logits = ref.forward(x)
    for mine, theirs in zip(tab.session.model.trace, ref.trace):
        np.testing.assert_array_equal(mine.output, theirs.output)
    assert tab.session.forward_complete
    pred = int(np.argmax(logits[0]))
    assert tab.session.prediction == pred
    assert f"prediction <b>{pred}</b>" in tab.chart.label.text()
    tab.strip.blocks[2].click()                              # conv1's maps on screen
    np.testing.assert_array_equal(tab.panel_b.rendered.data, as_maps(ref.trace[1].output)[0])
    tab.edit_tab.reset_button.click()
    np.testing.assert_array_equal(tab.session.model["conv1"].params["weight"],
                                  load(trained_path)["conv1"].params["weight"])


# --- bad input: a message or a disabled action, never an exception -------------------------

def test_bad_model_files_and_models(tab, tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"\x00" * 100)
    assert not tab.load_model_file(corrupt)
    assert "corrupt.npz" in tab.banner.label.text() and tab.banner.isVisible()
    four = Sequential(Conv2D(4, 4, 3), Flatten(), Linear(4 * 26 * 26, 10))
    path = tmp_path / "four_channels.npz"
    save(four, path)
    assert not tab.load_model_file(path)
    assert ("takes input of shape (4, 28, 28); the stepper feeds grey (1 channel) or colour "
            "(3 channel) pictures") in tab.banner.label.text()
    assert not tab.use_model(Sequential(Conv2D(1, 2, 3), ReLU()), "maps only")
    assert "class scores" in tab.banner.label.text()
    assert tab.session.model.layers[1].name == "conv1"        # LeNet-5 still loaded
    click(tab, "forward")


def test_disabled_actions_say_why(tab, qtbot):
    assert not tab.buttons["back"].isEnabled()
    assert "run the forward pass to the end first" in tab.buttons["back"].toolTip()
    assert not tab.buttons["update"].isEnabled()
    assert "step backward through conv1 first" in tab.buttons["update"].toolTip()
    tab.setFocus()
    qtbot.keyClick(tab, Qt.Key.Key_Left)                      # disabled: nothing happens
    qtbot.keyClick(tab, Qt.Key.Key_U)
    assert tab.session.done == 0


def test_external_image_is_converted_and_shown(tab):
    rgb = np.random.default_rng(0).random((80, 60, 3), dtype=np.float32)
    assert tab.set_image(rgb, "photo")
    assert tab.input_panel.rendered.data.shape == (1, 28, 28)
    assert "converted" in tab.banner.label.text() and "80x60x3" in tab.banner.label.text()
    assert not tab.set_image(np.zeros((5, 5, 4)), "odd")
    assert "Cannot use odd" in tab.banner.label.text()
    tab.choose_network("ex1")
    assert not tab.set_image(rgb, "photo")


# --- trust and export ----------------------------------------------------------------------

def test_gradient_check_button(tab):
    click(tab, "run_back")
    tab.strip.blocks[5].click()                               # conv2 ... the backward way
    tab.session.goto(4)
    tab.refresh()
    tab.side.setCurrentWidget(tab.check_tab)
    tab.check_tab.button.click()
    result = tab.check_tab.result
    assert result is not None and result.layer == "conv2"
    assert result.max_rel_error < 1e-5 and "largest relative error" in tab.check_tab.result_label.text()


def test_saliency_tab_shows_the_engine_gradient(tab):
    tab.side.setCurrentWidget(tab.saliency_tab)
    np.testing.assert_array_equal(tab.saliency_tab.saliency, tab.session.saliency(tab.session.label))
    tab.saliency_tab.class_box.setCurrentIndex(4)             # class 3
    np.testing.assert_array_equal(tab.saliency_tab.saliency, tab.session.saliency(3))


def test_exports(tab, tmp_path):
    click(tab, "forward")
    click(tab, "forward")
    tensor = tab.panel_b.tensor
    tab.panel_b.save(tmp_path / "t.npy", "npy")
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), tensor)
    tab.panel_b.save(tmp_path / "t.txt", "txt")
    np.testing.assert_allclose(np.loadtxt(tmp_path / "t.txt").reshape(tensor.shape), tensor,
                               rtol=1e-7)
    tab.export_view(tmp_path / "view.png")
    assert (tmp_path / "view.png").stat().st_size > 10_000


def test_large_maps_refuse_tables_with_a_reason(tab):
    click(tab, "forward")
    click(tab, "forward")                                     # conv1: 28x28 maps
    assert not tab.panel_b.numbers.isEnabled()
    assert "too large" in tab.panel_b.numbers.toolTip()
    for _ in range(5):
        click(tab, "forward")                                 # relu1 ... pool2: 5x5 maps
    assert tab.session.model.layers[tab.session.focus].name == "pool2"
    assert tab.panel_b.numbers.isEnabled()
    tab.panel_b.numbers.setChecked(True)
    values = np.array([tab.panel_b.tables.values(i) for i in range(16)])
    np.testing.assert_allclose(values, np.ascontiguousarray(tab.session.model.trace[6].output)[0],
                               rtol=1e-3, atol=1e-4)


def test_hover_reports_the_value_under_the_cursor(tab):
    click(tab, "forward")
    click(tab, "forward")                                     # conv1 output, 6 maps
    grid = tab.panel_b.grid
    out = np.ascontiguousarray(tab.session.model.trace[1].output)[0]
    tab.panel_b._on_hover(grid, 3.5, 2.5)                     # view x=col 3, y=row 2
    text = tab.status.text()
    assert "[2, 3]" in text and f"{out[0, 2, 3]:.4g}" in text and f"{out[5, 2, 3]:.4g}" in text


def test_missing_mnist_gives_a_message_not_an_exception(qtbot, tmp_path):
    t = StepperTab(mnist_dir=tmp_path)
    qtbot.addWidget(t)
    assert "MNIST could not be read" in t.banner.label.text()
    t.buttons["run_forward"].click()
    assert t.session.forward_complete


def test_lesson_delta_is_editable_at_the_output(tab):
    tab.choose_network("ex3max")
    click(tab, "forward")
    click(tab, "back")
    assert tab.panel_a.edit_target == ("delta",)
    tab.panel_a.tables.tables[0].item(1, 1).setText("10")     # δ[1, 1]: 4 -> 10
    assert texts(tab.panel_b)[3][2] == "10"                    # routed to its window's max
    assert tab.session.phase == "backward"


def test_small_variant_steps_to_the_end_and_back(tab):
    tab.network_box.setCurrentIndex(1)
    tab.choose_network("small")
    assert [b.text().split("\n")[0] for b in tab.strip.blocks][-1] == "fc1"
    click(tab, "run_back")
    s = tab.session
    assert s.back == 0 and s.probs.shape == (10,)
    # Run backward rests on the first layer with weights (not the weightless norm1)
    first = s.model.first_param_index()
    assert s.focus == first and first > 0 and s.model.layers[first].params
    np.testing.assert_array_equal(tab.panel_b.tensor, s.model.trace[first].grad_input)
    tab.side.setCurrentWidget(tab.weights_tab)
    np.testing.assert_array_equal(tab.weights_tab.panel_for("dW").tensor,
                                  s.model.layers[first].grads["weight"])
