"""Kernel Lab legibility, measured (issue #12 points 8-11): numbers fit their cells
(QFontMetrics), every control is inside the panel's reachable area, labels and maps
refer to the same input."""

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, QRect, Qt
from PyQt6.QtWidgets import QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QWidget

from cnnviz.data.images import sample_images
from cnnviz.gui.widgets.kernel_editor import INVALID_STYLE

PHOTOS = sample_images()


@pytest.fixture
def window(lab_window):
    return lab_window


def settle(qtbot, lab):
    qtbot.waitUntil(lambda: not lab.busy, timeout=20000)
    QApplication.processEvents()


def number_fits(cell) -> bool:
    """The rendered text fits the line edit's text area (frame and margins taken off)."""
    metrics = cell.fontMetrics()
    room = cell.contentsRect().width() - cell.textMargins().left() - cell.textMargins().right() - 4
    return metrics.horizontalAdvance(cell.text()) <= room


@pytest.mark.parametrize("columns", [3, 7, 12])
def test_kernel_cells_show_every_number_whole(qtbot, window, lab, columns):
    editor = lab.bank.editor
    values = np.array([0.02393, 1.965e-05, -0.0001234, -123.4567, 3.0, -2.5e-12], np.float32)
    kernel = np.resize(values, (3, columns)).astype(np.float32)
    editor.set_kernel(kernel)
    QApplication.processEvents()
    for r in range(3):
        for c in range(columns):
            cell = editor.cell(r, c)
            assert number_fits(cell), (r, c, cell.text(), cell.width())


def reachable(lab, widget: QWidget) -> bool:
    """The widget lies in the controls panel and the panel's scroll area can bring it
    into view: the panel is not wider (or taller) than what the scroll bars reach."""
    scroll, panel = lab.controls_scroll, lab.controls
    top_left = widget.mapTo(panel, QPoint(0, 0))
    rect = QRect(top_left, widget.size())
    if not panel.rect().contains(rect):
        return False
    viewport = scroll.viewport()
    hbar, vbar = scroll.horizontalScrollBar(), scroll.verticalScrollBar()
    reach_w = viewport.width() + (hbar.maximum() if hbar.isVisible() or
                                  scroll.horizontalScrollBarPolicy() !=
                                  Qt.ScrollBarPolicy.ScrollBarAlwaysOff else 0)
    reach_h = viewport.height() + vbar.maximum()
    return rect.right() < reach_w and rect.bottom() < reach_h


@pytest.mark.parametrize("columns", [1, 7, 12])
@pytest.mark.parametrize("size", [(1400, 900), (1920, 1080)])
def test_every_control_is_reachable(qtbot, window, lab, columns, size):
    window.resize(*size)
    lab.bank.editor.set_kernel(np.full((3, columns), 1.965e-05, np.float32))
    for _ in range(3):
        QApplication.processEvents()
    kinds = (QAbstractButton, QComboBox, QAbstractSpinBox)
    controls = [w for w in lab.controls.findChildren(QWidget)
                if isinstance(w, kinds) and w.isVisibleTo(lab.controls)]
    assert len(controls) > 20
    cut = [w.text() if hasattr(w, "text") else type(w).__name__
           for w in controls if not reachable(lab, w)]
    assert not cut, cut
    assert lab.splitter.handleWidth() >= 6


def type_keys(qtbot, cell, text):
    cell.setFocus()
    cell.selectAll()
    qtbot.keyClicks(cell, text)


def test_a_number_being_typed_is_no_error_until_the_cell_is_left(qtbot, window, lab):
    editor = lab.bank.editor
    editor.apply_preset("identity")
    cell = editor.cell(0, 0)
    seen = []
    editor.problem_changed.connect(seen.append)
    for text in ("-", "-.", "1e", "1e-", "."):
        type_keys(qtbot, cell, text)
        assert cell.styleSheet() != INVALID_STYLE, text
        assert not [m for m in seen if m], (text, seen)
    type_keys(qtbot, cell, "-0.5")
    assert editor.kernel()[0, 0] == np.float32(-0.5) and not [m for m in seen if m]
    type_keys(qtbot, cell, "-")
    qtbot.keyClick(cell, Qt.Key.Key_Tab)          # left unfinished: now it is an error
    assert cell.styleSheet() == INVALID_STYLE
    assert "'-' is not a number" in editor.problem_label.text()
    assert editor.kernel()[0, 0] == np.float32(-0.5)   # the last valid value stays


def tile_rects(lab):
    """Each visible stage's map views, in maps-area coordinates (x, y, w, h)."""
    host = lab.maps_scroll.widget()
    rects = {}
    for name, grid in lab.grids.items():
        if not grid.isVisible():
            continue
        out = []
        for tile in grid.tiles:
            r = grid.mapFromScene(tile.view.sceneBoundingRect()).boundingRect()
            top_left = grid.mapTo(host, r.topLeft())
            out.append((top_left.x(), top_left.y(), r.width(), r.height()))
        rects[name] = out
    return rects


def assert_reachable_and_inside(lab, rects):
    host, scroll = lab.maps_scroll.widget(), lab.maps_scroll
    reach = scroll.viewport().height() + scroll.verticalScrollBar().maximum()
    for name, tiles in rects.items():
        grid = lab.grids[name]
        top = grid.mapTo(host, QPoint(0, 0)).y()
        for x, y, w, h in tiles:
            assert h >= 40 and w >= 40, (name, h, w)                    # a readable map
            assert top <= y and y + h <= top + grid.height() + 1, name   # not clipped
            assert y + h <= min(host.height(), reach) + 1, name          # scrolls into view


def pump(qtbot, lab, n=5):
    settle(qtbot, lab)
    for _ in range(n):
        QApplication.processEvents()


def test_map_layout_recovers_after_twelve_maps(qtbot, window, lab):
    lab.open_path(PHOTOS["chelsea"])
    pump(qtbot, lab)
    start = tile_rects(lab)
    lab.bank.load_bank_presets(["Sobel x", "Sobel y", "blur", "sharpen"])
    lab.layer.set_choice(lab.layer.mode_box, "depthwise")
    pump(qtbot, lab)
    twelve = tile_rects(lab)
    assert len(twelve["conv"]) == 12 and len(twelve["pool"]) == 12
    assert_reachable_and_inside(lab, twelve)       # the 4th row too, by scrolling
    lab.layer.set_choice(lab.layer.mode_box, "sum")
    lab.bank.load_bank_presets(["Sobel x"])
    pump(qtbot, lab)
    for step in ("back to 1", "reset zoom", "tab switch"):
        if step == "reset zoom":
            lab.reset_zoom()
        if step == "tab switch":
            window.tabs.setCurrentIndex(2)
            pump(qtbot, lab)
            window.tabs.setCurrentIndex(0)
        pump(qtbot, lab)
        now = tile_rects(lab)
        assert now.keys() == start.keys(), step
        for name in start:
            for a, b in zip(start[name], now[name]):
                assert all(abs(p - q) <= 2 for p, q in zip(a, b)), (step, name, a, b)
        assert lab.maps_scroll.verticalScrollBar().maximum() == 0, step


def test_a_hidden_stage_gives_its_space_to_the_others(qtbot, window, lab):
    lab.open_path(PHOTOS["chelsea"])
    pump(qtbot, lab)
    width = lab.grids["pool"].width()
    lab.layer.set_choice(lab.layer.activation_box, "none")
    pump(qtbot, lab)
    assert not lab.grids["activation"].isVisible()
    assert lab.grids["pool"].width() > 1.8 * width   # the lone last stage spans the row


def test_maps_never_show_an_older_request_than_the_settings(qtbot, window, lab):
    """A big request on the worker thread, then a small one that runs inline when the big
    one ends: the big one's (older) maps must not be drawn over the newer ones."""
    lab.open_path(PHOTOS["chelsea"])
    pump(qtbot, lab)
    lab.bank.load_bank_presets(["Sobel x", "Sobel y", "blur", "sharpen"])
    lab.layer.set_choice(lab.layer.mode_box, "depthwise")   # 12 maps: the worker thread
    assert lab.runner.busy
    lab.layer.set_choice(lab.layer.mode_box, "sum")
    lab.bank.load_bank_presets(["Sobel x"])                  # small: inline once it is free
    pump(qtbot, lab)
    assert lab.output.result.config.weights.shape[0] == lab.bank.filter_count == 1
    assert not lab.output.result.config.depthwise
    assert len(lab.grids["conv"].tiles) == 1


def test_name_and_shape_change_with_the_maps_and_a_busy_bar_shows_meanwhile(qtbot, window, lab):
    from cnnviz.gui.kernel_lab.input_loader import InputImage

    lab.open_path(PHOTOS["chelsea"])
    pump(qtbot, lab)
    old_label, old_status = lab.input_label.text(), window.input_status.text()
    assert "chelsea" in old_label and "chelsea" in old_status
    assert not lab.busy_bar.isVisibleTo(lab)
    big = np.random.default_rng(0).random((1600, 1600, 3), dtype=np.float32)
    lab.set_input(InputImage(big, "big.png", (1600, 1600)))   # goes to the worker thread
    assert lab.runner.busy
    assert lab.busy_bar.isVisibleTo(lab) and lab.busy_label.isVisibleTo(lab)
    # the old maps are still up: so are the old name and shape
    assert lab.input_label.text() == old_label and window.input_status.text() == old_status
    pump(qtbot, lab)
    assert "big.png" in lab.input_label.text() and "(1, 3, 1600, 1600)" in lab.input_label.text()
    assert window.input_status.text() == "big.png  (1, 3, 1600, 1600)"
    assert lab.output.result.stages[0].tensor.shape == (1, 3, 1600, 1600)
    assert not lab.busy_bar.isVisibleTo(lab)


def test_a_grey_picture_says_grey_and_a_colour_one_gets_the_choice_back(qtbot, window, lab):
    from cnnviz.gui.kernel_lab.input_loader import InputImage

    grey = InputImage(np.random.default_rng(1).random((40, 50), dtype=np.float32), "g", (40, 50))
    rgb = InputImage(np.random.default_rng(2).random((40, 50, 3), dtype=np.float32), "c", (40, 50))
    lab.set_input(rgb)
    pump(qtbot, lab)
    assert lab.colour_box.currentText().startswith("RGB")
    lab.set_input(grey)
    pump(qtbot, lab)
    assert lab.colour_box.currentText().startswith("Grey") and not lab.colour_box.isEnabled()
    assert window.grey_action.isChecked()
    lab.set_input(rgb)
    pump(qtbot, lab)
    assert lab.colour_box.currentText().startswith("RGB") and lab.colour_box.isEnabled()
    assert lab.output.result.stages[0].tensor.shape == (1, 3, 40, 50)


def test_the_hover_line_fits_the_status_bar_with_twelve_maps(qtbot, window, lab):
    lab.open_path(PHOTOS["chelsea"])
    pump(qtbot, lab)
    lab.bank.load_bank_presets(["Sobel x", "Sobel y", "blur", "sharpen"])
    lab.layer.set_choice(lab.layer.mode_box, "depthwise")
    pump(qtbot, lab)
    lab._on_hover(100.5, 100.5)
    text = window.value_label.text()
    assert "conv [99, 99]" in text and "max pool [49, 49]" in text and "+10 more" in text
    label = window.value_label
    assert label.fontMetrics().horizontalAdvance(text) <= label.width(), (text, label.width())
    # a new input: the old input's values leave the status bar with its maps
    lab.open_path(PHOTOS["coffee"])
    pump(qtbot, lab)
    assert window.value_label.text() == ""


def test_a_saved_bank_loads_back_as_a_bank(qtbot, window, lab, tmp_path):
    lab.open_path(PHOTOS["chelsea"])
    pump(qtbot, lab)
    lab.bank.load_bank_presets(["Sobel x", "Sobel y", "blur"])
    lab.bank.select_filter(1)
    lab.bank.bias_spin.setValue(0.25)
    lab.layer.set_choice(lab.layer.mode_box, "depthwise")
    pump(qtbot, lab)
    weights, bias, names = lab.bank.weights.copy(), lab.bank.bias.copy(), list(lab.bank.names)
    path = tmp_path / "bank.json"
    lab.export_kernel_json(path)
    lab.bank.load_bank_presets(["identity"])
    lab.layer.set_choice(lab.layer.mode_box, "sum")
    pump(qtbot, lab)
    lab.bank.editor.load_json(path)              # what Load... does with the chosen file
    pump(qtbot, lab)
    np.testing.assert_array_equal(lab.bank.weights, weights)
    np.testing.assert_array_equal(lab.bank.bias, bias)
    assert lab.bank.names == names and lab.layer.depthwise
    assert lab.output.result.config.weights.shape == weights.shape


def test_sized_presets_come_at_a_sensible_size_and_blur_is_one_preset(qtbot, window, lab):
    editor = lab.bank.editor
    editor.apply_preset("Sobel x")
    editor.apply_preset("Gaussian")
    assert editor.kernel().shape == (5, 5)
    items = [editor.preset_box.itemText(i) for i in range(editor.preset_box.count())]
    assert "blur" in items and "box blur" not in items
    editor.set_kernel(np.zeros((7, 7), np.float32))
    editor.apply_preset("blur")
    assert editor.kernel().shape == (7, 7)       # a larger size the user chose is kept


def test_exported_maps_get_names_from_what_they_hold(qtbot, window, lab):
    lab.open_path(PHOTOS["chelsea"])
    pump(qtbot, lab)
    lab.bank.load_bank_presets(["Sobel x", "Sobel y", "blur"])
    lab.layer.set_choice(lab.layer.mode_box, "depthwise")
    pump(qtbot, lab)
    assert lab.grids["conv"].tile_export_name(0, "npy") == "conv_sobel_x_r_map1.npy"
    assert lab.grids["activation"].tile_export_name(5, "png") == "relu_sobel_y_b_map6.png"
    assert lab.grids["pool"].tile_export_name(8, "npy") == "max_pool_blur_b_map9.npy"
    assert lab.grids["input"].tile_export_name(0, "png") == "input_rgb_map1.png"


def test_per_channel_maps_are_named_after_each_channels_own_kernel(qtbot, window, lab):
    lab.open_path(PHOTOS["chelsea"])
    pump(qtbot, lab)
    lab.bank.load_bank_presets(["horizontal edge"])
    lab.layer.set_choice(lab.layer.mode_box, "depthwise")
    lab.bank.select_channel(0)                    # R gets its own kernel: Sobel x
    lab.bank.editor.apply_preset("Sobel x")
    pump(qtbot, lab)
    labels = lab.output.result.stage("conv").map_labels
    assert labels == ["Sobel x \u00b7 R", "horizontal edge \u00b7 G", "horizontal edge \u00b7 B"]
    assert lab.bank.names[0] == "Sobel x / horizontal edge"
    lab.bank.select_channel(1)
    assert lab.bank.editor.preset_box.currentText() == "horizontal edge"
    lab.bank.select_channel(0)
    assert lab.bank.editor.preset_box.currentText() == "Sobel x"


@pytest.mark.parametrize("size", [(1400, 900), (1920, 1080)])
def test_the_arithmetic_shows_every_channels_table_without_scrolling(qtbot, window, lab, size):
    window.resize(*size)
    lab.open_path(PHOTOS["chelsea"])
    pump(qtbot, lab)
    lab.click("conv", 0, 40, 50)
    pump(qtbot, lab)
    text = lab.arithmetic.toPlainText()
    assert all(f"{c}" in text for c in ("R", "G", "B")) and "products" in text
    assert lab.arithmetic.verticalScrollBar().maximum() == 0
    assert all(not g.isVisible() or g.height() >= 150 for g in lab.grids.values())
