"""The Training tab's views in colour and for any number of classes (issue
#14 point 5), driven with images the tests make: the monitored input as
colour plus its channels, colour gallery thumbnails, a confusion matrix
resized to the dataset's classes with their names, the "Load an image"
panel, and the dataset choice kept between sessions."""

import cv2
import numpy as np
from PyQt6.QtCore import QSettings

from cnnviz.engine.layers import Conv2D, Flatten, Linear, ReLU
from cnnviz.engine.sequential import Sequential
from cnnviz.gui.training.dataset_state import restore_dataset, save_dataset
from cnnviz.gui.training.evaluation import EvaluationPanel, thumbnail
from cnnviz.gui.training.inside import MapsView, WeightsView
from cnnviz.gui.training.mosaic import colour_tiles
from cnnviz.gui.training.picture_panel import PicturePanel, network_input

NAMES = ("cat", "dog", "horse-drawn")


def colour_image(h=8, w=8):
    """(3, H, W) in [0, 1]: pure red left half, pure blue right half."""
    img = np.zeros((3, h, w), np.float32)
    img[0, :, :w // 2] = 1.0
    img[2, :, w // 2:] = 1.0
    return img


def test_colour_tiles_show_the_image_and_each_channel_in_its_colour():
    img = colour_image()
    tiles = colour_tiles(img)
    assert tiles.shape == (17, 17, 4)
    top_left, top_right = tiles[:8, :8, :3], tiles[:8, 9:, :3]
    bottom_left, bottom_right = tiles[9:, :8, :3], tiles[9:, 9:, :3]
    assert (top_left[:, :4] == (255, 0, 0)).all() and (top_left[:, 4:] == (0, 0, 255)).all()
    assert (top_right[:, :4] == (255, 0, 0)).all() and (top_right[:, 4:] == 0).all()   # red
    assert (bottom_left == 0).all()                                                  # green
    assert (bottom_right[:, :4] == 0).all() and (bottom_right[:, 4:] == (0, 0, 255)).all()


def test_the_monitored_input_is_drawn_in_colour(qtbot):
    view = MapsView()
    qtbot.addWidget(view)
    img = colour_image()
    maps = [("conv1", np.ones((2, 6, 6), np.float32), np.zeros((2, 6, 6), np.float32))]
    view.set_maps(img, maps, "input: label 1 (dog)")
    shown = view.input_view.image.image
    assert view.input_view.data.shape == (3, 8, 8)
    assert shown.shape == (17, 17, 4)
    assert tuple(shown[0, 0, :3]) == (255, 0, 0) and tuple(shown[0, 7, :3]) == (0, 0, 255)
    assert "R, G, B" in view.input_view.title.text
    view.set_maps(img[0], maps, "grey")                 # a grey input: one grey map
    assert view.input_view.data.shape == (1, 8, 8)


def test_colour_kernels_are_drawn_as_colour_pictures(qtbot):
    view = WeightsView()
    qtbot.addWidget(view)
    w = np.zeros((2, 3, 3, 3), np.float32)
    w[0, 0] = 1.0                      # kernel 0 weighs red up: red
    w[1, 2] = -1.0                     # kernel 1 weighs blue down: yellow-ish
    view.add(0, {"conv1": (w, -w)})
    view.redraw()
    rgba = view.kernels.image.image
    grads = view.kernel_grads.image.image           # one tile per kernel, as the kernels
    assert grads.shape == rgba.shape and tuple(grads[1, 1, :3]) == (0, 128, 128)
    assert rgba.shape == (3, 7, 4)     # two 3x3 kernels side by side
    assert tuple(rgba[1, 1, :3]) == (255, 128, 128)
    assert tuple(rgba[1, 5, :3]) == (128, 128, 0)
    assert "(2, 3, 3, 3)" in view.kernels.title.text


def test_gallery_thumbnails_are_in_colour(qtbot):        # qtbot: a QApplication for QPixmap
    img = (colour_image(10, 10) * 255).astype(np.uint8)
    pix = thumbnail(img, np.array([0.2, 0.7, 0.1]), 1)
    q = pix.toImage()
    scale = round(60 / 10)
    assert pix.width() == 10 * scale
    left, right = q.pixelColor(2, 2), q.pixelColor(10 * scale - 3, 2)
    assert (left.red(), left.green(), left.blue()) == (255, 0, 0)
    assert (right.red(), right.green(), right.blue()) == (0, 0, 255)


def test_the_confusion_matrix_takes_the_datasets_classes_and_names(qtbot):
    panel = EvaluationPanel()
    qtbot.addWidget(panel)
    rng = np.random.default_rng(0)
    images = (rng.random((30, 3, 8, 8)) * 255).astype(np.uint8)
    labels = np.arange(30) % 3
    probs = np.full((30, 3), 0.1)
    probs[np.arange(30), (labels + (np.arange(30) % 5 == 0)) % 3] = 0.8
    panel.set_results(images, labels, probs, "After epoch 1: ", NAMES)
    m = panel.matrix
    assert m.classes == 3 and len(m.texts) == 3 and m.counts.shape == (3, 3)
    left = [t[1] for t in m.getPlotItem().getAxis("left")._tickLevels[0]]
    assert left == list(NAMES)
    bottom = [t[1] for t in m.getPlotItem().getAxis("bottom")._tickLevels[0]]
    assert bottom == list(NAMES)                       # three wide columns: whole names
    assert int(m.counts.trace()) == 24
    panel.show_cell(0, 1)
    assert "True cat, predicted dog" in panel.gallery.title.text()
    captions = panel.gallery.findChildren(type(panel.gallery.title))
    assert any("cat\n→ dog" in c.text() for c in captions)
    pix = panel.gallery._grid.itemAt(0).widget().findChildren(type(panel.gallery.title))[0].pixmap()
    colour = pix.toImage().pixelColor(0, 0)
    r, g, b = (int(v) for v in images[panel.gallery.indices[0], :, 0, 0])
    assert (colour.red(), colour.green(), colour.blue()) == (r, g, b)
    panel.set_results(images[:10], np.arange(10), np.eye(10)[np.arange(10)], "", ())
    assert panel.matrix.classes == 10 and len(panel.matrix.texts[9]) == 10
    panel.set_results(images[:10], np.arange(10), np.eye(10)[np.arange(10)], "",
                      [f"class {NAMES[2]} {i}" for i in range(10)])
    bottom = [t[1] for t in panel.matrix.getPlotItem().getAxis("bottom")._tickLevels[0]]
    assert bottom[0] == "class\u2026"                  # ten narrow columns: cut to six


def small_colour_model(classes=3):
    rng = np.random.default_rng(0)
    return Sequential(Conv2D(3, 4, 3, seed=rng), ReLU(), Flatten(),    # 3x8x8 -> 4x6x6
                      Linear(4 * 6 * 6, classes, seed=rng))


def test_network_input_is_the_dataset_shape():
    rgb = np.random.default_rng(1).random((40, 30, 3)).astype(np.float32)
    assert network_input(rgb, 3, 8, 8).shape == (3, 8, 8)
    grey = network_input(rgb, 1, 28, 28)
    assert grey.shape == (1, 28, 28) and grey.dtype == np.float32
    assert network_input(rgb[..., 0], 3, 8, 8).shape == (3, 8, 8)


def test_load_an_image_predicts_its_class_and_a_bad_file_is_a_message(qtbot, tmp_path):
    panel = PicturePanel()
    qtbot.addWidget(panel)
    panel.set_input_shape(3, 8, 8)
    panel.set_class_names(NAMES)
    panel.set_model(small_colour_model())
    picture = np.zeros((40, 40, 3), np.uint8)
    picture[:, :, 2] = 255                                  # pure red (cv2 writes BGR)
    cv2.imwrite(str(tmp_path / "red.png"), picture)
    assert panel.load(tmp_path / "red.png")
    assert panel.converted.shape == (3, 8, 8)
    np.testing.assert_allclose(panel.converted[0], 1.0)
    np.testing.assert_allclose(panel.converted[1:], 0.0)
    assert panel.probs is not None and panel.probs.shape == (3,)
    best = int(np.argmax(panel.probs))
    assert panel.answer.text().startswith(f"It sees: <b>{NAMES[best]}</b>")
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    assert not panel.load(tmp_path / "broken.png")
    assert "broken.png" in panel.note.text()
    assert panel.converted.shape == (3, 8, 8)                # the last good picture stays


def test_the_dataset_choice_is_kept_and_a_gone_folder_is_a_message(tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    folder = tmp_path / "pets"
    folder.mkdir()
    save_dataset(settings, ("folder", str(folder), 48, False))
    assert restore_dataset(settings) == (("folder", str(folder), 48, False), None)
    save_dataset(settings, ("colored-mnist", None, None, None))
    assert restore_dataset(settings) == (("colored-mnist", None, None, None), None)
    save_dataset(settings, ("cifar10", str(tmp_path / "gone"), None, None))
    key, problem = restore_dataset(settings)
    assert key is None
    assert problem == (f"The dataset used last time, CIFAR-10 directory {tmp_path / 'gone'}, "
                       f"is not there any more: the bundled MNIST is chosen instead.")
    settings.setValue("training/dataset/kind", "imagenet")      # a kind unknown here
    assert restore_dataset(settings) == (None, None)
