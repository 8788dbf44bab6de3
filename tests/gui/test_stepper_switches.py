"""The Layer Stepper after several changes in a row (pytest-qt, offscreen):
switching networks with any side tab showing, ticking Training mode or
changing the digit in the middle of stepping; the tab stays usable and what
it says matches what it does."""

import numpy as np
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFontMetrics

from stepper_steps import click, where_text


@pytest.fixture
def tab(stepper_tab):
    return stepper_tab


def test_switching_network_twice_from_another_side_tab(tab, qtbot):
    """The tester's sequence: conv1 on Weights, then Saliency, then two switches."""
    tab.choose_network("trained")
    click(tab, "forward")
    click(tab, "forward")
    tab.side.setCurrentWidget(tab.weights_tab)
    tab.side.setCurrentWidget(tab.saliency_tab)
    assert tab.choose_network("lenet5")
    qtbot.wait(10)                 # the event loop runs, as between two clicks
    assert tab.choose_network("small")
    assert tab.source == tab._titles["small"]
    tab.side.setCurrentWidget(tab.weights_tab)
    click(tab, "forward")
    click(tab, "forward")
    assert tab.weights_tab.specs                 # the small net's conv1 weights are shown
    panel = tab.weights_tab.panel_for("weight")
    assert panel.isVisible()
    assert tab.session.model.layers[tab.session.focus].name in panel.header.text()


@pytest.mark.parametrize("first, second", [("backward_tab", "weights_tab"),
                                           ("weights_tab", "check_tab"),
                                           ("edit_tab", "saliency_tab")])
def test_switches_with_side_tabs_in_any_order(tab, qtbot, first, second):
    """Weights seen on the old network, then another side tab (or none), two
    or three switches with the event loop running between them."""
    click(tab, "forward")
    click(tab, "forward")
    tab.side.setCurrentWidget(tab.weights_tab)
    for key, side in (("lenet5", first), ("small", second), ("trained", second),
                      ("lenet5", first)):
        tab.side.setCurrentWidget(getattr(tab, side))
        assert tab.choose_network(key)
        assert tab.source == tab._titles[key]
        qtbot.wait(10)
    tab.side.setCurrentWidget(tab.weights_tab)
    click(tab, "run_back")
    assert tab.weights_tab.panel_for("dW").isVisible()


def step_to(tab, name):
    while tab.session.focus < 0 or tab.session.model.layers[tab.session.focus].name != name:
        click(tab, "forward")


def check_steps_on_to_the_end(tab, start):
    """From layer ``start`` every Right shows the next layer, its output the
    one the pass computed, the words naming it; then the end, said so."""
    s = tab.session
    for i in range(start + 1, s.num_layers):
        assert tab.buttons["forward"].isEnabled(), tab.buttons["forward"].toolTip()
        tab.press_step_key(Qt.Key.Key_Right)
        assert s.focus == i
        name = s.model.layers[i].name
        assert where_text(tab).endswith(f", at {name}")
        assert tab.status.text() == f"Forward through {name}: its input and its output."
        np.testing.assert_array_equal(tab.panel_b.tensor, s.model.trace[i].output)
    assert not tab.buttons["forward"].isEnabled()
    assert "reached the end" in tab.buttons["forward"].toolTip()
    click(tab, "back")
    assert s.phase == "backward" and s.focus == s.num_layers - 1


@pytest.mark.parametrize("layer", ["bn1", "conv1"])
def test_training_mode_ticked_while_stepping_stays_steppable(tab, qtbot, layer):
    assert tab.choose_network("arch:colour-cnn")
    step_to(tab, layer)
    tab.side.setCurrentWidget(tab.norm_tab)
    tab.mode_switch.click()
    s = tab.session
    assert s.training and s.loss is not None           # the pass ran to the end: loss shown
    assert s.model.layers[s.focus].name == layer       # the view stays where it was
    check_steps_on_to_the_end(tab, s.focus)


def test_a_new_digit_while_stepping_stays_steppable(tab, qtbot):
    assert tab.choose_network("trained")
    step_to(tab, "conv1")
    tab.digit_spin.setValue(tab.digit_spin.value() + 1)
    s = tab.session
    assert s.model.layers[s.focus].name == "conv1"
    np.testing.assert_array_equal(s.model.trace[0].input, s.x)     # the new digit's pass
    check_steps_on_to_the_end(tab, s.focus)


def test_a_dropout_mask_on_a_vector_is_drawn(tab, qtbot):
    """Dropout after Flatten (the usual place): the mask is drawn as the main
    panels draw the vector, wrapped into a square, each unit several px."""
    from cnnviz.engine import Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU, Sequential

    net = Sequential(Conv2D(1, 4, 3, seed=0), ReLU(), MaxPool2D(2), Flatten(),
                     Linear(4 * 13 * 13, 256, seed=0), ReLU(), Dropout(0.5, seed=7),
                     Linear(256, 10, seed=0))
    assert tab.use_model(net, "vector dropout", (1, 28, 28))
    tab.mode_switch.click()
    tab.side.setCurrentWidget(tab.norm_tab)
    tab.strip.layer_clicked.emit(6)
    qtbot.wait(50)
    panel = tab.norm_tab.panel_a
    v = tab.norm_tab.view
    assert f"({v.dropped} of 256 dropped)" in panel.header.text()
    np.testing.assert_array_equal(panel.rendered.data, v.multiplier.reshape(1, 16, 16))
    # cell for cell over the main panels' input and output (scale 2: exact)
    np.testing.assert_array_equal(tab.panel_b.rendered.data,
                                  tab.panel_a.rendered.data * panel.rendered.data)
    view = panel.grid.tiles[0].view
    px = view.width() / view.viewRect().width()
    assert px >= 4, px                                          # a unit is a visible square


@pytest.mark.parametrize("key", ["arch:lenet5-1998", "trained"])
def test_every_strip_block_shows_its_whole_text(tab, qtbot, key):
    assert tab.choose_network(key)
    click(tab, "forward")                 # a highlighted block (its border is wider) too
    qtbot.wait(50)
    for button in tab.strip.blocks + [tab.strip.table_button]:
        metrics = QFontMetrics(button.font())
        widest = max(metrics.horizontalAdvance(line) for line in button.text().split("\n"))
        # 4 px: the block's border and its text margin
        assert widest + 4 <= button.width(), (button.text(), widest, button.width())
        assert button.width() >= button.sizeHint().width(), button.text()


def shown_panels(widget):
    from cnnviz.gui.stepper.tensor_panel import TensorPanel

    return [p for p in widget.findChildren(TensorPanel) if p.isVisible()]


def test_no_panel_is_titled_by_a_placeholder(tab, qtbot):
    """Every panel shown says what it shows ("panel 1", "A", "B" do not)."""
    assert tab.choose_network("arch:lenet5-1998")
    header = tab.panel_b.header.text()
    assert header == "the first layer's output: not run yet"
    tab.side.setCurrentWidget(tab.weights_tab)
    names = [layer.name for layer in tab.session.model.layers]
    seen = 0
    for name in ("C1", "S4", "F6"):
        tab.strip.layer_clicked.emit(names.index(name))
        qtbot.wait(20)
        for panel in shown_panels(tab):
            text = panel.header.text()
            assert text.split(":")[0] not in {"A", "B", "layer input", "layer output"}, text
            assert not text.startswith("panel "), (name, text)
            seen += 1
    assert seen >= 9


def test_a_wrapped_vectors_unused_cells_look_like_empty_cells(tab, qtbot):
    """S4's 16 weights sit in a 3x6 table: its last two cells are blank in the
    table's own colours, not colorize's NaN magenta."""
    from PyQt6.QtGui import QColor

    assert tab.choose_network("arch:lenet5-1998")
    tab.side.setCurrentWidget(tab.weights_tab)
    tab.strip.layer_clicked.emit([l.name for l in tab.session.model.layers].index("S4"))
    qtbot.wait(20)
    for key in ("weight", "bias"):
        panel = tab.weights_tab.panel_for(key)
        table = panel.tables.tables[0]
        assert (table.rowCount(), table.columnCount()) == (3, 6)
        for r, c in ((2, 4), (2, 5)):
            item = table.item(r, c)
            assert item.text() == ""
            assert item.data(Qt.ItemDataRole.BackgroundRole) is None, key
        filled = table.item(0, 0).background().color()
        assert filled != QColor(255, 0, 255) and filled.alpha() == 255
        image = table.viewport().grab().toImage()
        rect = table.visualItemRect(table.item(2, 5))
        pixel = image.pixelColor(rect.center())
        assert pixel == table.palette().color(table.viewport().backgroundRole()), pixel.name()


def test_ready_architectures_that_take_no_picture_cannot_be_chosen(tab):
    """The 1x1 bottleneck's input is 256 maps: listed, greyed, with the reason;
    the picture-taking ones can be chosen."""
    box = tab.network_box
    rows = {box.itemData(i)[1]: i for i in range(box.count()) if box.itemData(i)}
    item = box.model().item(rows["arch:bottleneck-1x1"])
    assert not item.isEnabled()
    assert item.toolTip().startswith("bottleneck-1x1 takes 256x100x100 inputs (256 maps, not a "
                                     "picture): the Stepper feeds one grey or colour picture")
    for stem in ("lenet5-1998", "colour-cnn", "cifar-cnn"):
        assert box.model().item(rows[f"arch:{stem}"]).isEnabled(), stem
