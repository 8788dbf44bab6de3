"""Big maps coloured at the size they are seen (#13 point 5): a 2042x2042 map
in a tile a few hundred pixels wide is coloured at every n-th pixel only;
what is drawn is those pixels' own colours, the scale still comes from every
value, hover and PNG export read the full map, and zooming in colours finer."""

import numpy as np
import pytest
from PyQt6.QtWidgets import QApplication

from cnnviz.data.images import load_image, resize, sample_images
from cnnviz.gui.kernel_lab.fast_render import colour_image, display_step, render_fast
from cnnviz.gui.kernel_lab.input_loader import InputImage
from cnnviz.gui.widgets.rendered_maps import render_maps


@pytest.fixture
def window(lab_window):
    return lab_window


def test_display_step_leaves_headroom_for_a_2x_zoom():
    assert [display_step(d) for d in (0.3, 1.0, 3.9, 4.0, 6.9, 10.2)] == [1, 1, 1, 2, 3, 5]
    assert display_step(float("nan")) == 1


def test_a_stepped_render_draws_every_nth_pixel_with_the_full_maps_scale():
    rng = np.random.default_rng(3)
    maps = rng.normal(size=(2, 101, 67)).astype(np.float32)
    maps[1, 50, 33] = 40.0          # only the full map holds the peak: the scale must see it
    full = render_fast(maps, ["a", "b"])
    stepped = render_fast(maps, ["a", "b"], step=4)
    assert stepped.step == 4 and stepped.data is not None
    assert stepped.scales == full.scales == render_maps(maps, ["a", "b"]).scales
    for i in range(2):
        assert stepped.images[i].shape == (26, 17, 4)
        np.testing.assert_array_equal(stepped.images[i],
                                      colour_image(np.ascontiguousarray(maps[i, ::4, ::4]),
                                                   full.scales[i]))
        np.testing.assert_array_equal(stepped.images[i], full.images[i][::4, ::4])


def settle(qtbot, lab, ms=150):
    qtbot.waitUntil(lambda: not lab.busy, timeout=30000)
    qtbot.wait(ms)
    QApplication.processEvents()


def test_a_big_photo_is_coloured_coarsely_hovered_exactly_and_sharpened_on_zoom(
        qtbot, window, lab, tmp_path):
    side = 1600
    pixels = resize(load_image(sample_images()["astronaut"]), (side, side))
    lab.set_input(InputImage(pixels, f"astronaut {side}x{side}", (side, side)))
    lab.bank.editor.apply_preset("Sobel x")
    settle(qtbot, lab)
    lab.recompute()               # the views now exist: the edit is coloured for them
    settle(qtbot, lab)
    conv = lab.grids["conv"]
    data = lab.output.result.stage("conv").maps
    step = conv.rendered.step
    density = lab.densities()["conv"]
    assert step == display_step(density) > 1, (step, density)
    image = conv.tiles[0].image.image
    assert image.shape[:2] == tuple(-(-n // step) for n in data.shape[1:])
    np.testing.assert_array_equal(
        image, colour_image(np.ascontiguousarray(data[0, ::step, ::step]),
                            conv.rendered.scales[0]))
    # the image covers the map in view coordinates (every step-th pixel, step wide)
    rect = conv.tiles[0].image.mapRectToParent(conv.tiles[0].image.boundingRect())
    assert rect.width() == pytest.approx(image.shape[1] * step * conv.pixel_size[0])

    # hover reads the full-resolution value, not the sampled pixel's
    row, col = 7, 5
    x, y = conv.pixel_centre(row, col)
    conv.show_values_at(x, y)
    assert f"[{row}, {col}] = {data[0, row, col]:.4g}" in conv.tiles[0].title.text

    # a tile exported as PNG is the full map
    path = tmp_path / "conv.png"
    conv.save_tile_png(0, str(path))
    from PyQt6.QtGui import QImage
    saved = QImage(str(path))
    assert (saved.height(), saved.width()) == data.shape[1:]

    # zooming in to a 60-pixel region colours every pixel
    view = lab.grids["input"].views[0]
    view.setRange(xRange=(100, 160), yRange=(100, 160), padding=0)
    lab.link.sync_from(view)
    qtbot.waitUntil(lambda: conv.rendered.step == 1, timeout=5000)
    assert conv.tiles[0].image.image.shape[:2] == data.shape[1:]
    np.testing.assert_array_equal(conv.tiles[0].image.image,
                                  colour_image(data[0], conv.rendered.scales[0]))
