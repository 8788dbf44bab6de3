"""The Layer Stepper measured, not trusted (pytest-qt, offscreen): every number
fits its cell, every panel of a side tab shows its whole content inside the one
scroll area, kernel mosaics are drawn large enough and hover names the kernel
cell, and after a change every label and map shows the present state."""

import numpy as np
import pytest
from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QFontMetrics
from PyQt6.QtWidgets import QScrollArea

from cnnviz.engine import lenet5, save
from cnnviz.gui.stepper.number_table import number_text
from cnnviz.gui.stepper.probs_chart import loss_text
from cnnviz.gui.stepper.tensor_panel import GUTTER_RGBA

from stepper_steps import click

SIZES = [(1400, 900), (1920, 1080)]


@pytest.fixture
def tab(stepper_tab):
    return stepper_tab


def settle(qtbot, ms=50):
    qtbot.wait(ms)


def laid_out(side_tab):
    """Every shown panel has been given the height its content asks for."""
    return all(p.height() >= p.minimumSizeHint().height() for p in panels_in(side_tab))


def layer_index(tab, name):
    return [layer.name for layer in tab.session.model.layers].index(name)


def check_tables_fit(panel):
    """Every cell's text is its value to 4 significant digits and its rendered
    width fits the column; no table scrolls itself."""
    assert panel.showing_numbers
    checked = 0
    for i, table in enumerate(panel.tables.tables):
        metrics = QFontMetrics(table.font())
        data = panel.rendered.data[i]
        assert table.horizontalScrollBar().maximum() == 0
        assert table.verticalScrollBar().maximum() == 0
        for r in range(table.rowCount()):
            for c in range(table.columnCount()):
                text = table.item(r, c).text()
                assert text == number_text(float(data[r, c]))
                # 6 px: the cell's own margins around the text
                assert metrics.horizontalAdvance(text) + 6 <= table.columnWidth(c), \
                    (panel.header.text(), r, c, text, table.columnWidth(c))
                checked += 1
        assert table.viewport().width() >= sum(table.columnWidth(c)
                                               for c in range(table.columnCount()))
    return checked


def test_numbers_fit_their_cells(tab, qtbot):
    """conv1's 150 weights and dW, fc3's δ and its 84 dx: every value whole."""
    click(tab, "run_back")
    tab.session.goto(layer_index(tab, "conv1"))
    tab.refresh()
    tab.side.setCurrentWidget(tab.weights_tab)
    for key in ("weight", "dW"):
        panel = tab.weights_tab.panel_for(key)
        panel.numbers.setChecked(True)
        assert check_tables_fit(panel) == 150
    for key in ("bias", "db"):                  # vectors: numbers without asking
        assert check_tables_fit(tab.weights_tab.panel_for(key)) == 6
    tab.strip.blocks[-1].click()               # fc3
    for panel in (tab.panel_a, tab.panel_b):
        panel.numbers.setChecked(True)
    assert check_tables_fit(tab.panel_a) == 10
    assert check_tables_fit(tab.panel_b) == 84


def test_number_text_is_short_and_never_minus_zero():
    for v in (0.43127, -0.000123456, 1.965e-05, 123456.7, -1e-30, 7.0):
        text = number_text(v)
        assert len(text) <= 10 and float(text) == pytest.approx(v, rel=1e-3, abs=1e-30)
    assert number_text(-0.0) == "0" and number_text(float("nan")) == ""
    assert loss_text(-3e-9) == "0.0000" and loss_text(2.0653) == "2.0653"
    assert loss_text(3.2e-7) == "3.2e-07"


def panels_in(side_tab):
    return [p for p in side_tab.stack.panels if not p.isHidden()]


def check_panel_whole(panel):
    """The header and scale read whole; every map tile lies inside the grid
    widget (no tile cut off); tables sit inside their page."""
    for label in (panel.header, panel.scale_label):
        needed = label.fontMetrics().boundingRect(
            QRect(0, 0, label.width(), 10_000), Qt.TextFlag.TextWordWrap, label.text()).height()
        assert needed <= label.height(), (label.text(), needed, label.height())
    if panel.showing_numbers:
        page = panel.table_page
        for table in panel.tables.tables:
            top_left = table.mapTo(page, table.rect().topLeft())
            assert page.rect().contains(QRect(top_left, table.size())), panel.header.text()
        return
    grid = panel.grid
    assert panel.stack.currentWidget() is grid
    visible = grid.viewport().rect()
    for tile in grid.tiles:
        rect = grid.mapFromScene(tile.layout.sceneBoundingRect()).boundingRect()
        assert visible.adjusted(-1, -1, 1, 1).contains(rect), (panel.header.text(), rect,
                                                                visible)
        view = tile.view.sceneBoundingRect()
        assert view.width() >= 60 and view.height() >= 20


def check_reachable(side_tab):
    """The one scroll area holds every panel whole: its widget is as large as
    the panels need, and no panel has a scroll area of its own that scrolls."""
    inner = side_tab.stack                  # the shown page's panels (the Weights tab has one per layer)
    area = inner.parentWidget().parentWidget()
    assert isinstance(area, QScrollArea) and area.isVisible()
    for panel in panels_in(side_tab):
        geo = QRect(panel.mapTo(inner, panel.rect().topLeft()), panel.size())
        assert inner.rect().contains(geo)
        assert panel.table_page.horizontalScrollBar().maximum() == 0
        assert panel.table_page.verticalScrollBar().maximum() == 0
        assert panel.height() >= panel.minimumSizeHint().height()


@pytest.mark.parametrize("size", SIZES)
def test_side_tabs_show_every_panel_whole(tab, qtbot, size):
    tab.resize(*size)
    conv2 = layer_index(tab, "conv2")
    tab.session.goto(conv2)
    tab.refresh()
    tab.side.setCurrentWidget(tab.backward_tab)                 # forward: im2col, 16 maps
    settle(qtbot)
    panels = panels_in(tab.backward_tab)
    assert [p.rendered.tile_count for p in panels] == [1, 1, 16]
    for panel in panels:
        check_panel_whole(panel)
    qtbot.waitUntil(lambda: laid_out(tab.backward_tab), timeout=3000)
    check_reachable(tab.backward_tab)
    tab.buttons["run_forward"].click()
    while tab.session.phase != "backward" or tab.session.focus != conv2:
        click(tab, "back")
    tab.backward_tab.filter_spin.setValue(3)
    settle(qtbot)
    panels = panels_in(tab.backward_tab)
    assert len(panels) == 15                     # 8 steps, im2col forward 3, backward 4
    rot = panels[3]
    assert rot.rendered.titles == ["w[3,0]", "rot180"] and rot.rendered.tile_count == 2
    for panel in panels:
        check_panel_whole(panel)
    qtbot.waitUntil(lambda: laid_out(tab.backward_tab), timeout=3000)
    check_reachable(tab.backward_tab)
    click(tab, "run_back")
    click(tab, "update")                                        # before / after tiles
    tab.session.goto(layer_index(tab, "conv1"))
    tab.refresh()
    tab.side.setCurrentWidget(tab.weights_tab)
    settle(qtbot)
    update = tab.weights_tab.panel_for("update")
    assert update.rendered.tile_count == 18                     # 3 x 6 kernels
    for panel in panels_in(tab.weights_tab):
        check_panel_whole(panel)
    qtbot.waitUntil(lambda: laid_out(tab.weights_tab), timeout=3000)
    check_reachable(tab.weights_tab)


def test_lesson_matrices_show_their_numbers(tab, qtbot):
    tab.choose_network("ex4")
    click(tab, "forward")
    tab.side.setCurrentWidget(tab.backward_tab)
    settle(qtbot)
    patches = panels_in(tab.backward_tab)[0]
    assert patches.rendered.data.shape == (1, 27, 9)
    assert check_tables_fit(patches) == 27 * 9
    check_panel_whole(patches)
    qtbot.waitUntil(lambda: laid_out(tab.backward_tab), timeout=3000)
    check_reachable(tab.backward_tab)
    click(tab, "back")                                   # the backward pass as products
    settle(qtbot)
    panels = {p.title: p for p in panels_in(tab.backward_tab)}
    dw = panels["dW = δ · patchesᵀ: 2x27"]
    assert check_tables_fit(dw) == 2 * 27
    np.testing.assert_allclose(dw.tables.values(0).reshape(2, 3, 3, 3),
                               tab.session.model.layers[0].grads["weight"], rtol=1e-3, atol=1e-4)
    assert check_tables_fit(panels["Wᵀ · δ: 27x9"]) == 27 * 9
    dx = panels["dx = col2im(Wᵀ · δ): 3x5x5"]
    assert check_tables_fit(dx) == 75
    for panel in panels.values():
        check_panel_whole(panel)
    qtbot.waitUntil(lambda: laid_out(tab.backward_tab), timeout=3000)
    check_reachable(tab.backward_tab)


def test_conv2_mosaic_is_readable_and_hover_names_the_kernel_cell(tab, qtbot):
    conv2 = layer_index(tab, "conv2")
    tab.session.goto(conv2)
    tab.refresh()
    tab.side.setCurrentWidget(tab.weights_tab)
    settle(qtbot)
    panel = tab.weights_tab.panel_for("weight")
    w = tab.session.model.layers[conv2].params["weight"]
    assert panel.mosaic == (5, 5)
    tile = panel.grid.tiles[0]
    view = tile.view
    # screen px per kernel pixel: at least 8 (a 5x5 kernel is 40 px or more)
    px = view.width() / view.viewRect().width()
    assert px >= 8, px
    image = panel.rendered.images[0]
    assert tuple(image[5, 0]) == GUTTER_RGBA and tuple(image[0, 5]) == GUTTER_RGBA
    seen = []
    panel.hover_text.connect(seen.append)
    o, c, r, k = 3, 2, 1, 4
    panel._on_hover(panel.grid, c * 6 + k + 0.5, o * 6 + r + 0.5)
    assert seen[-1].startswith("conv2.weight (kernels): filter 3, channel 2, row 1, col 4")
    assert seen[-1].endswith(f"= {number_text(float(w[o, c, r, k]))}")
    panel._on_hover(panel.grid, 5.5, 0.5)
    assert seen[-1].endswith("between kernels")
    bias = tab.weights_tab.panel_for("bias")
    shown = [t for row in bias.tables.texts(0) for t in row if t]
    assert bias.showing_numbers and shown[:16] == [
        number_text(float(v)) for v in tab.session.model.layers[conv2].params["bias"]]


def test_update_shows_before_and_after_with_both_losses(tab, qtbot):
    tab.choose_network("ex4")
    click(tab, "run_back")
    before = np.array(tab.session.model.trace[0].output[0, 0])
    click(tab, "update")
    assert "BEFORE the update" in tab.panel_a.header.text()
    assert "AFTER the update (lr 0.001)" in tab.panel_b.header.text()
    assert tab.panel_a.tables.texts(0)[0] == ["6", "7", "5"]
    assert tab.panel_b.tables.texts(0)[0] == ["5.929", "6.876", "4.931"]
    np.testing.assert_array_equal(tab.panel_a.tensor[0, 0], before)
    np.testing.assert_array_equal(tab.panel_b.tensor, tab.session.model.trace[0].output)
    click(tab, "reset")                                  # the comparison ends with an action
    assert "BEFORE" not in tab.panel_a.header.text()
    tab.choose_network("lenet5")
    click(tab, "run_back")
    loss = tab.session.loss
    click(tab, "update")
    text = tab.chart.label.text()
    assert f"before the update {loss_text(loss)}" in text
    assert f"after it <b>{loss_text(tab.session.loss)}</b>" in text
    last = tab.session.num_layers - 1
    assert tab.session.focus == layer_index(tab, "conv1")
    tab.strip.blocks[-1].click()                          # fc3: compare its scores too
    assert tab.session.focus == last and "BEFORE" in tab.panel_a.header.text()


def test_a_new_network_or_input_starts_clean(tab, qtbot):
    tab.choose_network("ex4")
    assert tab.lr_spin.value() == pytest.approx(0.001)
    tab.backward_tab.filter_spin.setValue(1)
    tab.choose_network("lenet5")
    assert tab.lr_spin.value() == pytest.approx(0.01)     # a model's lr, not the lesson's
    assert tab.backward_tab.filter_spin.value() == 0
    for panel in (tab.input_panel, tab.panel_a, tab.panel_b):
        assert not panel.numbers.isChecked()             # not ticked-and-greyed
    tab.lr_spin.setValue(0.05)
    tab.choose_network("ex1")
    tab.choose_network("lenet5")
    assert tab.lr_spin.value() == pytest.approx(0.05)     # the model lr is kept deliberately
    # a picture, then a digit: the banner about the picture goes
    tab.set_image(np.random.default_rng(0).random((40, 30)), "chelsea.png")
    assert "chelsea.png" in tab.banner.label.text()
    tab.target_spin.setValue(3)
    assert "target is 3" in tab.banner.label.text()       # said with the current target
    current = tab.digit_spin.value()
    tab.choose_digit(current)                             # "Use this digit" on the same index
    assert "chelsea" not in tab.banner.label.text() or tab.banner.isHidden()
    assert tab.input_name == f"MNIST test #{current}"
    # a gradient-check result is about one state only
    click(tab, "reset")
    click(tab, "forward")
    click(tab, "forward")
    tab._run_gradcheck()
    assert tab.check_tab.result_label.text()
    click(tab, "forward")
    assert tab.check_tab.result_label.text() == ""


def test_step_keys_work_while_a_spin_box_has_the_focus(tab, qtbot):
    for spin in (tab.lr_spin, tab.digit_spin, tab.backward_tab.filter_spin):
        tab.session.reset()
        tab.refresh()
        spin.setFocus()
        qtbot.keyClick(spin, Qt.Key.Key_Right)
        assert tab.session.done == 1, spin
        qtbot.keyClick(spin, Qt.Key.Key_R)
        assert tab.session.done == 0
    assert tab.lr_spin.value() == pytest.approx(0.01)     # the keys did not edit the box
    keys = dict(tab.SHORTCUTS)
    assert {"Right", "Left", "U", "R", "F1"} <= set(keys)


def test_words_the_user_reads(tab, qtbot, tmp_path):
    click(tab, "run_back")
    conv2 = layer_index(tab, "conv2")
    tab.session.goto(conv2)
    tab.refresh()
    assert tab.panel_b.stem == "conv2_dx" and tab.panel_a.stem == "conv2_delta"
    seen = []
    tab.panel_b.hover_text.connect(seen.append)
    tab.panel_b._on_hover(tab.panel_b.grid, 3.5, 2.5)
    assert seen[-1].startswith("dx = dL/d(conv2 input): ")
    assert tab.export_file_name() == "stepper_LeNet_5_trained_99_34_on_MNIST_conv2_backward.png"
    assert tab.window_title() == (f"Layer Stepper \u2014 LeNet-5 (trained, 99.34% on MNIST), "
                                  f"{tab.input_name}")
    # map context menus: this program's actions only
    menu = tab.panel_b.grid.tiles[0].menu
    assert [a.text() for a in menu.actions() if a.text()] == [
        "Reset zoom", "Export map as PNG...", "Export map as .npy..."]
    assert tab.panel_b.tile_file_stem(tab.panel_b.grid, 2) == "conv2_dx_map_2"
    # a one-filter layer: no "all 1 shares summed"
    tab.choose_network("ex1")
    click(tab, "run_back")
    tab.side.setCurrentWidget(tab.backward_tab)
    titles = [p.title for p in panels_in(tab.backward_tab)]
    assert any("the shares of all 2 filters summed" in t or "the one filter's share" in t
               for t in titles), titles
    assert not any("all 1 shares" in t for t in titles)
    # a model file is named in the Network box
    path = tmp_path / "my_lenet.npz"
    save(lenet5(seed=2), path)
    assert tab.load_model_file(path)
    assert tab.network_box.currentText() == "my_lenet.npz"
    assert tab.window_title().startswith("Layer Stepper \u2014 my_lenet.npz")


def test_main_window_speaks_for_the_stepper_tab(qtbot, tmp_path, monkeypatch):
    """F1 lists the Stepper's keys on the Stepper, the window title names what
    the Stepper shows (not the Kernel Lab's picture), Ctrl+E suggests a stepper
    file name."""
    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path / "settings"))
    from cnnviz.gui.main_window import MainWindow

    window = MainWindow(load_default_input=False)
    qtbot.addWidget(window)
    window.add_standard_tabs()
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    window._on_input_changed("chelsea.png", (300, 451, 3))
    assert "chelsea" in window.windowTitle()
    where, keys = window.shortcuts()
    assert where == "Kernel Lab" and "Right" not in dict(keys)
    index = next(i for i in range(window.tabs.count())
                 if window.tabs.tabText(i) == "Layer Stepper")
    window.tabs.setCurrentIndex(index)
    stepper = window.tabs.widget(index).inner
    qtbot.waitUntil(lambda: window.windowTitle().startswith("Layer Stepper"), timeout=3000)
    assert "chelsea" not in window.windowTitle()
    where, keys = window.shortcuts()
    assert where == "Layer Stepper" and dict(keys)["U"].startswith("Apply the SGD update")
    stepper.buttons["forward"].click()
    assert window._current_inner().export_file_name().startswith("stepper_")
    window.tabs.setCurrentIndex(0)
    assert "chelsea" in window.windowTitle()


def test_strip_tells_the_whole_layer_and_the_summary_is_one_click_away(tab, qtbot):
    from cnnviz.engine.summary import summary

    table = summary(tab.session.model, tab.session.x.shape)
    conv1 = layer_index(tab, "conv1")
    row = table.rows[conv1]
    block = tab.strip.blocks[conv1 + 1].text().split("\n")
    assert block[0] == "conv1" and block[2] == "5x5 s1 p2"
    assert block[3] == f"{row.params:,} params" and block[4] == f"{row.macs / 1000:.4g}k MACs"
    pool1 = layer_index(tab, "pool1")
    assert tab.strip.blocks[pool1 + 1].text().split("\n")[2] == "2x2 s2 p0"
    tab.strip.table_button.click()
    dialog = tab.strip.dialog
    qtbot.addWidget(dialog)
    texts = dialog.texts()
    assert texts[conv1] == ["conv1", "Conv2D", "5x5 s1 p2", str(row.output_shape),
                            f"{row.params:,}", f"{row.macs:,}"]
    assert texts[-1][-2:] == [f"{table.total_params:,}", f"{table.total_macs:,}"]
    # every cell whole
    metrics = QFontMetrics(dialog.table.font())
    for c in range(dialog.table.columnCount()):
        widest = max(metrics.horizontalAdvance(t[c]) for t in texts)
        assert widest <= dialog.table.columnWidth(c)


def test_use_this_digit_applies_the_index_already_in_the_box(tab, qtbot):
    """After a picture, "Use this digit" on the digit the box already shows
    feeds that digit again (the spin box emits no valueChanged for it)."""
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from cnnviz.gui.widgets.mnist_browser import MnistDialog

    tab.set_image(np.random.default_rng(1).random((40, 30)), "noise.png")
    assert tab.input_name == "noise.png"
    index = tab.digit_spin.value()
    clicked = []

    def use_digit():
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, MnistDialog):
            clicked.append(dialog.browser.index_spin.value())
            dialog.use_button.click()
        else:
            QTimer.singleShot(20, use_digit)

    QTimer.singleShot(20, use_digit)
    tab.browse_button.click()
    assert clicked == [index]
    assert tab.input_name == f"MNIST test #{index}"
    x, label = tab._mnist_digit(index)
    np.testing.assert_array_equal(tab.session.x, x)
    assert tab.target_spin.value() == label and not tab.banner.label.text()
