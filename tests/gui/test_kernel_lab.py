"""The Kernel Lab driven as a user drives it (pytest-qt, offscreen): open photos,
pick presets, type into cells, change the layer, click pixels, export."""

import struct
import zlib

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QEvent, QMimeData, QPointF, Qt, QUrl
from PyQt6.QtGui import QDropEvent, QMouseEvent
from PyQt6.QtWidgets import QApplication

from cnnviz.data.images import load_image, sample_images, to_grey
from cnnviz.engine import functional as F
from cnnviz.engine import kernels as K
from cnnviz.gui.widgets.kernel_editor import INVALID_STYLE
from cnnviz.gui.widgets.kernel_json import KernelFileError, bank_from_json, parse_cell

PHOTOS = sample_images()


@pytest.fixture
def window(lab_window):
    return lab_window


def settle(qtbot, lab):
    """Wait until every submitted computation has been drawn."""
    qtbot.waitUntil(lambda: not lab.busy, timeout=20000)
    QApplication.processEvents()


def open_and_settle(qtbot, lab, path):
    lab.open_path(path)
    settle(qtbot, lab)


def headers(lab):
    return [g.header.text for name, g in lab.grids.items() if g.isVisible()]


def conv(lab, i=0):
    return lab.output.result.stage("conv").maps[i]


def type_into(qtbot, cell, text):
    cell.setFocus()
    cell.selectAll()
    if text:
        qtbot.keyClicks(cell, text)
    else:
        qtbot.keyClick(cell, Qt.Key.Key_Backspace)


def grey_input(lab):
    return lab.output.result.stages[0].maps[0]


# --- opening ---------------------------------------------------------------------------

def test_open_photo_shows_shapes_in_headers_and_status_bar(qtbot, window, lab):
    open_and_settle(qtbot, lab, PHOTOS["coffee"])
    h, w = load_image(PHOTOS["coffee"]).shape[:2]
    assert headers(lab) == [f"input: (1, 3, {h}, {w})", f"conv: (1, 1, {h - 2}, {w - 2})",
                            f"ReLU: (1, 1, {h - 2}, {w - 2})",
                            f"max pool: (1, 1, {(h - 2) // 2}, {(w - 2) // 2})"]
    assert window.input_status.text() == f"coffee.png  (1, 3, {h}, {w})"
    assert lab.compute_banner.isHidden() and lab.input_banner.isHidden()


def test_seed_example_from_the_samples_menu(qtbot, window, lab):
    window._fill_samples_menu()
    seed = next(a for a in window.samples_menu.actions() if a.text().startswith("Seed example"))
    seed.trigger()
    settle(qtbot, lab)
    assert headers(lab) == ["input: (1, 3, 80, 80)", "conv: (1, 1, 78, 78)",
                            "ReLU: (1, 1, 78, 78)", "max pool: (1, 1, 39, 39)"]


def test_grey_mode_gives_one_channel(qtbot, window, lab):
    open_and_settle(qtbot, lab, PHOTOS["chelsea"])
    window.grey_action.trigger()
    settle(qtbot, lab)
    assert lab.output.result.stages[0].tensor.shape[1] == 1
    np.testing.assert_allclose(grey_input(lab), to_grey(load_image(PHOTOS["chelsea"])), atol=1e-6)


# --- presets and cells -----------------------------------------------------------------

def test_every_preset_drives_the_conv_like_filter2d(qtbot, window, lab):
    window.grey_action.trigger()
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    editor = lab.bank.editor
    for name in K.PRESETS:
        editor.preset_box.textActivated.emit(name)    # what choosing it in the menu emits
        settle(qtbot, lab)
        k = editor.kernel()
        assert editor.preset_box.currentText() == name
        assert lab.bank.names[0] == name
        x = grey_input(lab)
        kh, kw = k.shape
        ref = cv2.filter2D(x, cv2.CV_32F, k, borderType=cv2.BORDER_CONSTANT)
        ref = ref[kh // 2:x.shape[0] - (kh - 1 - kh // 2), kw // 2:x.shape[1] - (kw - 1 - kw // 2)]
        np.testing.assert_allclose(conv(lab), ref, atol=1e-4, err_msg=name)


def test_typing_into_cells_valid_and_invalid(qtbot, window, lab):
    window.grey_action.trigger()
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    editor = lab.bank.editor
    editor.apply_preset("identity")
    settle(qtbot, lab)
    cell = editor.cell(0, 0)
    in_use = 0.0
    for text, reason in [("abc", "'abc' is not a number"), ("", "empty"),
                         ("1e400", "'1e400' is not a finite number"),
                         ("nan", "'nan' is not a finite number")]:
        type_into(qtbot, cell, text)
        qtbot.keyClick(cell, Qt.Key.Key_Return)   # leaving the cell: "" is no longer unfinished
        settle(qtbot, lab)
        assert cell.styleSheet() == INVALID_STYLE
        assert reason in cell.toolTip() and "stays in use" in cell.toolTip()
        assert reason in editor.problem_label.text() and editor.problem_label.isVisible()
        # every keystroke that left a finite number was used ("1e4" on the way to "1e400")
        for k in range(1, len(text) + 1):
            try:
                in_use = parse_cell(text[:k])
            except ValueError:
                pass
        assert editor.kernel()[0, 0] == np.float32(in_use)
        assert lab.output.result.config.weights[0, 0, 0, 0] == np.float32(in_use)
        assert np.isfinite(conv(lab)).all()
    type_into(qtbot, cell, "1/2")
    settle(qtbot, lab)
    assert cell.styleSheet() == "" and editor.problem_label.isHidden()
    assert editor.kernel()[0, 0] == 0.5
    x = grey_input(lab)
    np.testing.assert_allclose(conv(lab), x[1:-1, 1:-1] + 0.5 * x[:-2, :-2], atol=1e-5)
    assert lab.bank.names[0] == "identity (edited)"


def test_kernel_tools_and_size(qtbot, window, lab):
    editor = lab.bank.editor
    editor.apply_preset("Sobel x")
    editor.buttons["Transpose"].click()
    np.testing.assert_array_equal(editor.kernel(), K.sobel_y())
    editor.buttons["Rotate 180\u00b0"].click()
    np.testing.assert_array_equal(editor.kernel(), -K.sobel_y())
    editor.apply_preset("sharpen")
    editor.buttons["Normalize"].click()
    assert editor.kernel().sum() == pytest.approx(1.0)
    editor.apply_preset("Sobel x")
    editor.buttons["Normalize"].click()           # sums to 0: refused with a message
    assert "sum to 0" in editor.problem_label.text()
    np.testing.assert_array_equal(editor.kernel(), K.sobel_x())
    editor.buttons["Zero"].click()
    assert not editor.kernel().any()
    editor.cols_spin.setValue(7)
    editor.rows_spin.setValue(1)
    assert editor.kernel().shape == (1, 7) and len(editor._cells[0]) == 7
    assert lab.bank.weights.shape[2:] == (1, 7)
    editor.rows_spin.setValue(11)
    editor.cols_spin.setValue(11)
    assert editor.kernel().shape == (11, 11)
    editor.sigma_spin.setValue(2.0)
    editor.apply_preset("Gaussian")
    np.testing.assert_allclose(editor.kernel(), K.gaussian((11, 11), 2.0))


def test_kernel_json_round_trip_and_bad_files(qtbot, lab, tmp_path):
    editor = lab.bank.editor
    editor.apply_preset("emboss")
    path = tmp_path / "k.json"
    editor.save_json(path)
    editor.zero()
    editor.load_json(path)
    np.testing.assert_array_equal(editor.kernel(), K.emboss())
    bad = tmp_path / "bad.json"
    for text, message in [("{not json", "not valid JSON"), ('{"kernel": [[1, 2], [3]]}',
                          "rectangular"), ('{"kernel": [[1e999]]}', "finite"),
                          ('{"kernel": []}', "dimensions")]:
        bad.write_text(text)
        with pytest.raises(KernelFileError, match=message):
            editor.load_json(bad)
        np.testing.assert_array_equal(editor.kernel(), K.emboss())


# --- layer controls ----------------------------------------------------------------------

def test_stride_padding_dilation_change_the_shapes(qtbot, window, lab):
    window.grey_action.trigger()
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    h, w = grey_input(lab).shape
    ctl = lab.layer
    ctl.set_choice(ctl.pool_box, "none")
    ctl.stride[0].setValue(2)
    ctl.padding[1].setValue(3)
    ctl.dilation[0].setValue(2)
    settle(qtbot, lab)
    ho = (h - 2 * 2 - 1) // 2 + 1
    wo = w + 6 - 2
    assert headers(lab)[1] == f"conv: (1, 1, {ho}, {wo})"
    ref = F.conv2d(grey_input(lab)[None, None], lab.bank.weights, lab.bank.bias, (2, 1), (0, 3), (2, 1))
    np.testing.assert_allclose(conv(lab), ref[0, 0], atol=1e-5)


def test_impossible_settings_show_a_message_and_recover(qtbot, window, lab):
    digit = np.zeros((28, 28), np.uint8)
    lab.open_digit(digit, 0, "test", 0)
    settle(qtbot, lab)
    shown = headers(lab)
    lab.bank.editor.rows_spin.setValue(11)
    lab.bank.editor.cols_spin.setValue(11)
    lab.layer.dilation[0].setValue(3)
    settle(qtbot, lab)
    assert lab.compute_banner.isVisible()
    assert "no output pixels" in lab.compute_banner.label.text()
    assert headers(lab) != [] and lab.output is not None
    lab.layer.dilation[0].setValue(1)
    settle(qtbot, lab)
    assert lab.compute_banner.isHidden()
    assert headers(lab)[1] == "conv: (1, 1, 18, 18)"
    lab.layer.pool_size[0].setValue(16)
    lab.layer.pool_size[1].setValue(16)
    lab.layer.pool_stride[0].setValue(16)
    lab.layer.pool_stride[1].setValue(16)
    lab.layer.set_choice(lab.layer.pool_box, "avg")
    lab.bank.editor.rows_spin.setValue(3)
    lab.bank.editor.cols_spin.setValue(3)
    lab.layer.stride[0].setValue(2)
    settle(qtbot, lab)
    assert "Cannot pool" in lab.compute_banner.label.text()
    assert not lab.grids["pool"].isVisible()
    assert shown[0] == headers(lab)[0]


@pytest.mark.parametrize("activation,fn", [("none", None), ("relu", F.relu),
                                           ("leaky_relu", lambda x: F.leaky_relu(x, 0.01)),
                                           ("sigmoid", F.sigmoid), ("tanh", F.tanh)])
@pytest.mark.parametrize("pool", ["none", "max", "avg"])
def test_activation_and_pooling_switch(qtbot, window, lab, activation, fn, pool):
    window.grey_action.trigger()
    lab.open_digit(np.arange(28 * 28).reshape(28, 28) % 256, 3, "train", 7)
    ctl = lab.layer
    ctl.set_choice(ctl.activation_box, activation)
    ctl.set_choice(ctl.pool_box, pool)
    settle(qtbot, lab)
    result = lab.output.result
    names = [s.name for s in result.stages]
    assert ("activation" in names) == (activation != "none")
    assert ("pool" in names) == (pool != "none")
    before_pool = conv(lab)
    if fn is not None:
        before_pool = result.stage("activation").maps[0]
        np.testing.assert_allclose(before_pool, fn(conv(lab)), atol=1e-6)
    if pool != "none":
        ref = (F.max_pool2d if pool == "max" else F.avg_pool2d)(before_pool[None, None], 2, 2)
        np.testing.assert_allclose(result.stage("pool").maps[0], ref[0, 0], atol=1e-6)
        assert headers(lab)[-1].startswith("max pool" if pool == "max" else "avg pool")
    # signed maps are diverging, non-negative ones grey
    grid_scale = lab.grids["conv"].rendered.scales[0]
    assert grid_scale.signed == bool((conv(lab) < 0).any())
    if grid_scale.signed:
        assert grid_scale.lo == -grid_scale.hi


def test_bank_depthwise_and_per_channel_kernels(qtbot, window, lab):
    open_and_settle(qtbot, lab, PHOTOS["chelsea"])
    lab.bank.example_button.click()
    settle(qtbot, lab)
    h, w = lab.output.result.stages[0].tensor.shape[2:]
    assert headers(lab)[1] == f"conv: (1, 3, {h - 2}, {w - 2})"
    assert lab.output.result.stage("conv").map_labels == ["Sobel x", "Sobel y", "blur"]
    lab.layer.set_choice(lab.layer.mode_box, "depthwise")
    settle(qtbot, lab)
    assert headers(lab)[1] == f"conv (depthwise): (1, 9, {h - 2}, {w - 2})"
    lab.layer.set_choice(lab.layer.mode_box, "sum")
    lab.bank.select_filter(2)
    lab.bank.select_channel(1)                # green gets its own sub-kernel
    lab.bank.editor.apply_preset("identity")
    settle(qtbot, lab)
    x = lab.output.result.stages[0].maps
    wts = lab.bank.weights[2]
    np.testing.assert_array_equal(wts[1], K.identity())
    np.testing.assert_array_equal(wts[0], K.blur())
    ref = sum(cv2.filter2D(x[c], cv2.CV_32F, wts[c], borderType=cv2.BORDER_CONSTANT)[1:-1, 1:-1]
              for c in range(3))
    np.testing.assert_allclose(conv(lab, 2), ref, atol=1e-4)
    lab.bank.bias_spin.setValue(0.5)
    settle(qtbot, lab)
    np.testing.assert_allclose(conv(lab, 2), ref + 0.5, atol=1e-4)


# --- clicking --------------------------------------------------------------------------

def click_map_pixel(qtbot, grid, tile, row, col):
    """A real mouse click on the centre of a map pixel, zoomed in so that the
    pixel spans many screen pixels."""
    x, y = grid.pixel_centre(row, col)
    view = grid.tiles[tile].view
    view.setRange(xRange=(x - 8, x + 8), yRange=(y - 8, y + 8), padding=0)
    QApplication.processEvents()
    scene_point = view.mapViewToScene(QPointF(x, y))
    viewport_point = grid.mapFromScene(scene_point)
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=viewport_point)


def test_clicking_a_conv_pixel_shows_arithmetic_equal_to_the_map(qtbot, window, lab):
    open_and_settle(qtbot, lab, PHOTOS["astronaut"])
    lab.layer.padding[0].setValue(1)
    lab.layer.padding[1].setValue(1)
    lab.layer.stride[1].setValue(2)
    lab.bank.bias_spin.setValue(0.25)
    settle(qtbot, lab)
    lab.reset_zoom()
    QApplication.processEvents()
    grid = lab.grids["conv"]
    for row, col in [(0, 0), (40, 30)]:
        click_map_pixel(qtbot, grid, 0, row, col)
        a = lab.arithmetic.current
        assert (a.row, a.col) == (row, col)
        assert a.total == pytest.approx(conv(lab)[row, col], abs=1e-4)
        assert a.total == pytest.approx(a.products.sum() + 0.25, abs=1e-9)
        assert "the engine's conv2d here" in lab.arithmetic.toPlainText()
        assert "\u2713 equal" in lab.arithmetic.toPlainText()
    # the corner pixel reaches into the padding: marked on the input
    lab.click("conv", 0, 0, 0)
    overlays = lab.grids["input"].tiles[0].overlays
    assert len(overlays) == 2                        # taps inside, taps on padding
    assert len(overlays[1].data) == 5                # 3 + 2 padded taps of a 3x3 at (0, 0)


def test_clicking_a_pool_pixel_shows_its_window_and_winner(qtbot, window, lab):
    open_and_settle(qtbot, lab, PHOTOS["brick"])
    lab.reset_zoom()
    QApplication.processEvents()
    click_map_pixel(qtbot, lab.grids["pool"], 0, 5, 6)
    a = lab.arithmetic.current
    assert a.kind == "max" and (a.row, a.col) == (5, 6)
    pooled = lab.output.result.stage("pool").maps[0, 5, 6]
    assert a.result == pooled == a.window.max()
    assert a.window[a.winner] == pooled
    assert len(lab.grids["activation"].tiles[0].overlays) == 2   # window + winner


def test_selection_follows_kernel_edits(qtbot, window, lab):
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    lab.click("activation", 0, 10, 10)
    lab.bank.editor.apply_preset("Laplacian")
    settle(qtbot, lab)
    a = lab.arithmetic.current
    np.testing.assert_array_equal(a.kernel[0], K.laplacian())
    assert a.total == pytest.approx(conv(lab)[10, 10], abs=1e-4)
    assert "then ReLU(" in lab.arithmetic.toPlainText()


def test_hover_shows_the_value_of_every_stage(qtbot, window, lab):
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    lab.reset_zoom()
    QApplication.processEvents()
    grid = lab.grids["input"]
    x, y = grid.pixel_centre(20, 30)
    grid.views[0].setRange(xRange=(x - 8, x + 8), yRange=(y - 8, y + 8), padding=0)
    QApplication.processEvents()
    point = grid.mapFromScene(grid.tiles[0].view.mapViewToScene(QPointF(x, y)))
    move = QMouseEvent(QEvent.Type.MouseMove, QPointF(point), QPointF(grid.viewport().mapToGlobal(point)),
                       Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(grid.viewport(), move)
    qtbot.waitUntil(lambda: "[20, 30]" in window.value_label.text())
    text = window.value_label.text()
    assert "conv" in text and "[19, 29]" in text and "max pool" in text
    assert "[20, 30]" in grid.tiles[0].title.text


def test_zoom_is_linked_across_stages(qtbot, window, lab):
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    view = lab.grids["input"].views[0]
    view.setRange(xRange=(50, 90), yRange=(60, 100), padding=0)
    view.sigRangeChangedManually.emit([True, True])   # what a wheel or drag emits
    for name in ("conv", "activation", "pool"):
        rect = lab.grids[name].views[0].viewRect()
        assert rect.contains(QPointF(70, 80))
        assert rect.width() < 120 and rect.height() < 120


# --- robustness ---------------------------------------------------------------------------

def png_header_only(path, width, height):
    """A small but valid PNG that declares width x height grey pixels (all zero)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    comp = zlib.compressobj(9)
    row = bytes(width + 1)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body)
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("make,reason", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("hello, I am not a picture"), "not"),
    (lambda p: p.write_bytes(PHOTOS["coffee"].read_bytes()[:3000]), ""),
    (lambda p: None, "no such file"),
])
def test_bad_files_get_a_message_and_the_lab_keeps_running(qtbot, window, lab, tmp_path, make, reason):
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    before = headers(lab)
    path = tmp_path / "picture.png"
    make(path)
    lab.open_path(path)
    settle(qtbot, lab)
    assert lab.input_banner.isVisible() and lab.input_banner.kind == "error"
    assert "picture.png" in lab.input_banner.label.text()
    assert reason in lab.input_banner.label.text()
    assert headers(lab) == before
    lab.open_path(tmp_path)                              # a directory
    assert "directory" in lab.input_banner.label.text()


def test_huge_image_is_offered_a_downscale_never_silently_changed(qtbot, window, lab, tmp_path):
    path = tmp_path / "huge.png"
    png_header_only(path, 20000, 20000)
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    before = headers(lab)
    lab.open_path(path)
    settle(qtbot, lab)
    banner = lab.input_banner
    assert banner.kind == "warning" and "20000 x 20000" in banner.label.text()
    assert "Keep full size" not in banner.buttons          # 400 MP cannot load at all
    assert headers(lab) == before                           # nothing changed yet
    banner.buttons["Downscale to 2048 x 2048"].click()
    settle(qtbot, lab)
    assert headers(lab)[0] == "input: (1, 1, 2048, 2048)"
    assert "downscaled from 20000 x 20000" in lab.input_label.text()


def test_large_image_can_be_kept_at_full_size(qtbot, window, lab, tmp_path):
    path = tmp_path / "wide.png"
    cv2.imwrite(str(path), np.full((300, 2500), 128, np.uint8))
    lab.open_path(path)
    banner = lab.input_banner
    assert "2500 x 300" in banner.label.text()
    banner.buttons["Keep full size"].click()
    settle(qtbot, lab)
    assert headers(lab)[0] == "input: (1, 1, 300, 2500)"


@pytest.mark.parametrize("kind", ["grey", "rgba", "16bit", "16bit_rgb", "jpeg", "bmp", "tiff", "webp"])
def test_image_kinds_open(qtbot, window, lab, tmp_path, kind):
    rng = np.random.default_rng(1)
    img = {"grey": rng.integers(0, 256, (40, 50), dtype=np.uint8),
           "rgba": rng.integers(0, 256, (40, 50, 4), dtype=np.uint8),
           "16bit": rng.integers(0, 65536, (40, 50), dtype=np.uint16),
           "16bit_rgb": rng.integers(0, 65536, (40, 50, 3), dtype=np.uint16)}.get(
        kind, rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    suffix = {"jpeg": ".jpg", "bmp": ".bmp", "tiff": ".tif", "webp": ".webp"}.get(kind, ".png")
    path = tmp_path / f"img{suffix}"
    assert cv2.imwrite(str(path), img)
    open_and_settle(qtbot, lab, path)
    channels = 1 if kind in ("grey", "16bit") else 3
    assert headers(lab)[0] == f"input: (1, {channels}, 40, 50)"
    assert lab.input_banner.isHidden()
    x = lab.output.result.stages[0].tensor
    assert x.min() >= 0 and x.max() <= 1


# --- window ---------------------------------------------------------------------------------

def test_drop_an_image_file_opens_it(qtbot, window, lab):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(PHOTOS["brick"]))])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    settle(qtbot, lab)
    assert window.input_status.text().startswith("brick.png")


def test_exports(qtbot, window, lab, tmp_path):
    open_and_settle(qtbot, lab, PHOTOS["coffee"])
    grid = lab.grids["conv"]
    grid.save_tile_png(0, tmp_path / "map.png")
    grid.save_tile_npy(0, tmp_path / "map.npy")
    png = cv2.imread(str(tmp_path / "map.png"))
    assert png.shape[:2] == conv(lab).shape
    np.testing.assert_array_equal(np.load(tmp_path / "map.npy"), conv(lab))
    lab.export_view_png(tmp_path / "view.png")
    view = cv2.imread(str(tmp_path / "view.png"))
    assert view.shape[0] > 300 and view.std() > 5
    lab.export_kernel_json(tmp_path / "bank.json")
    bank = bank_from_json((tmp_path / "bank.json").read_text())
    np.testing.assert_array_equal(bank["weights"], lab.bank.weights)
    assert bank["names"] == lab.bank.names


def test_mnist_browser_picks_a_digit(qtbot, window, lab):
    from cnnviz.data.mnist import load_mnist
    from cnnviz.gui.widgets.mnist_browser import MnistDialog

    dialog = MnistDialog(window)
    qtbot.addWidget(dialog)
    browser = dialog.browser
    browser.split_box.setCurrentText("test")
    browser.index_spin.setValue(17)
    data = load_mnist(split="test")
    assert f"label: <b>{int(data.labels[17])}</b>" in browser.label_text.text()
    browser.thumbs[0].click()
    assert browser.index_spin.value() == 12            # the strip is centred on the index
    browser.random_button.click()
    chosen = browser.index_spin.value()
    dialog.browser.digit_chosen.connect(lab.open_digit)
    dialog.use_button.click()
    settle(qtbot, lab)
    assert window.input_status.text().startswith(f"MNIST test #{chosen} (label {int(data.labels[chosen])})")
    np.testing.assert_allclose(grey_input(lab), data.images[chosen] / 255.0, atol=1e-6)


def test_geometry_splitters_and_last_dir_are_remembered(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path / "settings"))
    from cnnviz.gui.main_window import MainWindow
    from cnnviz.gui.settings import last_dir, remember_dir

    first = MainWindow(load_default_input=False)
    qtbot.addWidget(first)
    first.resize(760, 560)      # the offscreen screen is 800x600: stay inside it
    first.show()
    first.kernel_lab.splitter.setSizes([300, 800])
    sizes = first.kernel_lab.splitter.sizes()
    remember_dir(tmp_path / "some_image.png")
    first.close()
    assert (tmp_path / "settings" / "cnnviz.ini").exists()
    second = MainWindow(load_default_input=False)
    qtbot.addWidget(second)
    second.show()
    assert (second.width(), second.height()) == (760, 560)
    assert second.kernel_lab.splitter.sizes() == sizes
    assert last_dir() == str(tmp_path)
    second.close()


def test_unexpected_exceptions_show_a_dialog_and_are_logged(qtbot, window, caplog):
    import sys

    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QMessageBox

    from cnnviz.gui.app import install_excepthook

    old = sys.excepthook
    install_excepthook(None)
    seen = []

    def close_dialog():
        box = QApplication.activeModalWidget()
        seen.append(box.text() if isinstance(box, QMessageBox) else None)
        box.close()

    try:
        QTimer.singleShot(200, close_dialog)
        try:
            raise RuntimeError("boom in a slot")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = old
    assert seen and "RuntimeError: boom in a slot" in seen[0]
    assert "boom in a slot" in caplog.text


def test_add_tab_and_closing_stops_the_worker(qtbot, window, lab):
    from PyQt6.QtWidgets import QLabel

    index = window.add_tab(QLabel("another job"), "Training")
    assert window.tabs.tabText(index) == "Training" and window.tabs.count() == 2
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    window.close()
    assert not lab.runner._thread.isRunning()


def test_standard_tabs_are_built_on_first_visit(qtbot, window):
    window.add_standard_tabs()
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["Kernel Lab", "Layer Stepper", "Training", "Network builder"]
    stepper = window.tabs.widget(1)
    assert stepper.inner is None                      # nothing built at start-up
    window.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: stepper.inner is not None)
    assert type(stepper.inner).__name__ == "StepperTab"
    assert window.tabs.widget(2).inner is None


def test_shared_or_per_map_colour_scale(qtbot, window, lab):
    open_and_settle(qtbot, lab, PHOTOS["coffee"])
    lab.bank.load_bank_presets(["Sobel x", "blur"])
    settle(qtbot, lab)
    scales = lab.grids["conv"].rendered.scales
    assert scales[0] == scales[1] and scales[0].signed          # one diverging scale
    assert lab.grids["conv"].shared_bar is not None
    window.shared_scale_action.trigger()
    settle(qtbot, lab)
    grid = lab.grids["conv"]
    sobel, blur = grid.rendered.scales
    assert sobel.signed and sobel.lo == -sobel.hi
    assert not blur.signed and blur.lo == 0                       # grey from 0 for a blur
    assert all(tile.bar is not None for tile in grid.tiles) and grid.shared_bar is None
