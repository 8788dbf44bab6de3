"""Your own data in the Training tab (issue #14 points 4 and 5), driven as a
user drives it: image folders the tests write (PNG files), coloured MNIST,
a folder that cannot be trained on, a 50,000-image folder loaded while the
GUI keeps answering, and Cancel.

The image folders' on-disk cache goes to a temporary XDG_CACHE_HOME, the
settings to a temporary folder. Every test checks, on the way out, that no
training or loading thread is left running."""

import json
import time

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QFileDialog, QLabel

from cnnviz.engine import architecture
from cnnviz.engine import architecture as A
from cnnviz.engine.layers import Conv2D, Flatten, Linear, MaxPool2D, ReLU
from cnnviz.engine.sequential import Sequential
from cnnviz.engine.serialization import save

COLOURS = {"blue": (0, 0, 255), "green": (0, 200, 0), "red": (255, 0, 0)}   # RGB


def write_folder(root, per_class=24, side=12, names=COLOURS, seed=0):
    """One subfolder per class of PNG files: each class a noisy picture of its colour."""
    rng = np.random.default_rng(seed)
    for name, rgb in names.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = np.clip(np.array(rgb) * rng.uniform(0.6, 1.0)
                          + rng.normal(0, 25, (side, side, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{i:03d}.png"), img[..., ::-1])   # cv2 writes BGR
    return root


def colour_model(side, classes, path):
    """A small colour network for 3 x side x side images, saved where the tab can open it."""
    rng = np.random.default_rng(0)
    inner = (side - 2) // 2
    model = Sequential(Conv2D(3, 4, 3, seed=rng), ReLU(), MaxPool2D(2), Flatten(),
                       Linear(4 * inner * inner, classes, seed=rng))
    save(model, path)
    return path


@pytest.fixture
def make_tab(tmp_path, monkeypatch, training_tabs):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path / "settings"))

    def make():
        tab = training_tabs()
        tab.setup.epochs.setValue(1)
        return tab

    return make


def choose(qtbot, tab, kind, path=None, side=None, colour=None, timeout=60_000):
    """Choose a dataset as the set-up panel does and wait until it is loaded (or failed)."""
    tab.setup.dataset.set_choice(kind, path, side, colour)
    key = tab.setup.settings().dataset
    qtbot.waitUntil(lambda: tab.session.has_data(key) or tab.banner.isVisible(), timeout=timeout)
    return key


def test_an_image_folder_trains_and_its_class_names_are_everywhere(qtbot, make_tab, tmp_path):
    folder = write_folder(tmp_path / "colours")
    tab = make_tab()
    key = choose(qtbot, tab, "folder", folder, 12, True)
    assert tab.session.has_data(key) and not tab.banner.isVisible()
    assert "of 3 classes" in tab.status.text()
    tab.setup.set_model_file(str(colour_model(12, 3, tmp_path / "colour.npz")))
    tab.setup.batch_size.setValue(8)
    kinds = []
    tab.snapshot_received.connect(lambda s: kinds.append(s.kind))
    tab.start()
    qtbot.waitUntil(lambda: tab.state == "finished", timeout=60_000)
    assert "epoch" in kinds and tab.trainer.step >= 5
    # the monitored sample: in colour, captioned with its class name
    tab.views.setCurrentIndex(1)
    tab._show_current_sample()
    qtbot.waitUntil(lambda: tab.maps.input_view is not None, timeout=10_000)
    assert tab.maps.input_view.data.shape == (3, 12, 12)
    label = tab._sample[1]
    assert f"label {label} ({sorted(COLOURS)[label]})" in tab.maps.caption
    assert f"({sorted(COLOURS)[label]})" in tab.sample_caption.text()
    # the confusion matrix and the gallery name the classes
    tab.views.setCurrentWidget(tab.evaluation)
    tab._eval_dirty = True
    tab._on_frame(force=True)
    m = tab.evaluation.matrix
    assert m.classes == 3
    assert [t[1] for t in m.getPlotItem().getAxis("left")._tickLevels[0]] == sorted(COLOURS)
    tab.evaluation.show_cell(0, 0)
    assert tab.evaluation.gallery.title.text().startswith("True blue, predicted blue")
    captions = [c.text() for c in tab.evaluation.gallery.findChildren(QLabel)]
    assert any("blue\n→ blue" in c for c in captions)
    # not digits: "Try an image" instead of drawing
    assert not tab.views.isTabVisible(tab.views.indexOf(tab.digit))
    assert tab.views.isTabVisible(tab.views.indexOf(tab.picture))
    assert tab.picture.input_shape == (3, 12, 12)


def test_a_folder_that_cannot_be_trained_on_is_its_message_and_the_tab_goes_on(
        qtbot, make_tab, tmp_path):
    lonely = write_folder(tmp_path / "lonely", per_class=4, names={"cat": (200, 100, 0)})
    tab = make_tab()
    choose(qtbot, tab, "folder", lonely, 12, True)
    assert tab.banner.isVisible()
    message = tab.banner.text()
    assert str(lonely) in message and "class" in message and "\n" not in message
    assert tab.trainer is None and not tab.setup.dataset.progress_row.isVisible()
    tab.start()                                    # Start on it: the message again, no run
    qtbot.waitUntil(lambda: tab.banner.isVisible(), timeout=30_000)
    assert tab.trainer is None and tab.state == "idle"
    # another folder then trains
    good = write_folder(tmp_path / "good", per_class=12)
    choose(qtbot, tab, "folder", good, 12, True)
    tab.setup.set_model_file(str(colour_model(12, 3, tmp_path / "colour.npz")))
    tab.setup.batch_size.setValue(8)
    tab.start()
    qtbot.waitUntil(lambda: tab.trainer is not None and tab.trainer.step >= 2, timeout=60_000)
    assert not tab.banner.isVisible()


def test_unreadable_files_are_said_once_and_a_refused_folder_is_not_still_loading(
        qtbot, make_tab, tmp_path):
    """A folder with a few unreadable files loads with one warning (its
    training and test splits share it: it was shown twice); a refused folder
    leaves no "loading ..." on the status line."""
    folder = write_folder(tmp_path / "some_bad", per_class=30)
    for i in range(5):
        (folder / "red" / f"broken{i}.png").write_bytes(b"not a picture")
    tab = make_tab()
    choose(qtbot, tab, "folder", folder, 12, True)
    text = tab.banner.text()
    assert tab.banner.isVisible() and text.count("skipped 5 unreadable files") == 1, text
    lonely = write_folder(tmp_path / "lonely", per_class=4, names={"cat": (200, 100, 0)})
    key = choose(qtbot, tab, "folder", lonely, 12, True)
    qtbot.waitUntil(lambda: "class" in tab.banner.text(), timeout=30_000)
    assert "loading" not in tab.status.text(), tab.status.text()
    assert "was not loaded" in tab.status.text()
    assert not tab.session.has_data(key)


def test_a_network_whose_outputs_are_not_the_classes_is_said_in_one_line(
        qtbot, make_tab, tmp_path):
    """On a 3-class folder: 2 outputs are refused, 10 train with a warning
    that outputs 3-9 are never the answer, conv maps at the end are refused
    (they gave "which has 0 outputs (labels 0 to -1)")."""
    tab = make_tab()
    choose(qtbot, tab, "folder", write_folder(tmp_path / "c", per_class=8), 12, True)
    tab.setup.batch_size.setValue(8)
    tab.setup.set_model_file(str(colour_model(12, 2, tmp_path / "two.npz")))
    tab.start()
    assert tab.trainer is None
    assert tab.banner.text() == (
        "Cannot train this model on this data: the network has 2 outputs, the data 3 "
        "classes: it needs one output per class (end it with a Linear layer of 3 outputs).")
    save(Sequential(Conv2D(3, 4, 3, seed=0), ReLU()), tmp_path / "maps.npz")
    tab.setup.set_model_file(str(tmp_path / "maps.npz"))
    tab.start()
    assert tab.trainer is None
    assert tab.banner.text() == (
        "Cannot train this model on this data: the network's output is 4x10x10 maps, not "
        "one score per class: end it with Flatten and Linear.")
    tab.setup.set_model_file(str(colour_model(12, 10, tmp_path / "ten.npz")))
    tab.start()
    assert tab.trainer is not None
    assert tab.banner.isVisible() and tab.banner.text() == (
        "Training goes on, but the network has 10 outputs, the data 3 classes: outputs 3-9 "
        "are never the answer.")
    qtbot.waitUntil(lambda: tab.state == "finished", timeout=60_000)


def test_lenet5_on_colour_images_is_a_clear_message(qtbot, make_tab, tmp_path):
    tab = make_tab()
    choose(qtbot, tab, "folder", write_folder(tmp_path / "c", per_class=8, side=32), 32, True)
    tab.start()                                     # LeNet-5: 1x28x28 grey images
    assert tab.trainer is None
    text = tab.banner.text()
    assert text == ("Cannot train this model on this data: the network takes 1x28x28, the "
                    "dataset gives 3x32x32; set the folder's size to 28 px and grey to fit "
                    "the network.")
    assert "\n" not in text


def write_big_folder(root, n, classes=10, side=8):
    """``n`` tiny PNG files in ``classes`` subfolders (each class's bytes encoded once)."""
    rng = np.random.default_rng(1)
    for k in range(classes):
        d = root / f"class{k}"
        d.mkdir(parents=True)
        data = cv2.imencode(".png", rng.integers(0, 255, (side, side, 3), np.uint8))[1].tobytes()
        for i in range(k, n, classes):
            (d / f"{i:05d}.png").write_bytes(data)
    return root


def test_a_50000_image_folder_loads_while_the_gui_answers_and_cancel_stops_it(
        qtbot, make_tab, tmp_path):
    folder = write_big_folder(tmp_path / "big", 50_000)
    tab = make_tab()
    ticks, listing = [], []    # listing: no progress yet (the files are listed and checked)
    bar = tab.setup.dataset.progress
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: (ticks.append(time.perf_counter()),
                                   listing.append(bar.maximum() == 0)))
    timer.start()
    cpu0 = time.process_time()
    tab.setup.dataset.set_choice("folder", folder, 8, True)
    assert tab.setup.dataset.progress_row.isVisible()
    qtbot.waitUntil(lambda: bar.maximum() == 50_000 and bar.value() >= 5_000, timeout=120_000)
    loading, phase = np.array(ticks), np.array(listing)
    tab.setup.dataset.cancel_button.click()
    cancelled_at = time.perf_counter()
    timer.stop()
    gaps = np.diff(loading)
    decoding = gaps[~phase[1:]]
    print(f"\nloading {bar.value():,} of 50,000 files, {len(loading)} ticks: longest gaps "
          f"{np.round(np.sort(gaps[phase[1:]])[-3:] * 1000)} ms while listing, "
          f"{np.round(np.sort(decoding)[-3:] * 1000)} ms while decoding; "
          f"process CPU {time.process_time() - cpu0:.1f} s; load {open('/proc/loadavg').read()}")
    assert decoding.max() < 0.1, f"the GUI thread did not answer for {decoding.max():.3f} s"
    assert gaps.max() < 0.5, f"the GUI thread did not answer for {gaps.max():.3f} s"
    assert not tab.setup.dataset.progress_row.isVisible()
    qtbot.waitUntil(lambda: not any(t.isRunning() for t, _ in tab.loader._old), timeout=10_000)
    print(f"the loading thread ended {time.perf_counter() - cancelled_at:.2f} s after Cancel")
    assert not tab.session.has_data(tab.setup.settings().dataset)
    assert "cancelled" in tab.status.text()
    assert not tab.banner.isVisible()


def test_coloured_mnist_shows_a_three_channel_sample(qtbot, make_tab, tmp_path):
    tab = make_tab()
    choose(qtbot, tab, "colored-mnist")
    # the bundled colour network (BatchNorm after each convolution)
    arch = architecture.read(architecture.bundled()["colour-cnn"])
    save(arch.build(0), tmp_path / "colour-cnn.npz")
    tab.setup.set_model_file(str(tmp_path / "colour-cnn.npz"))
    tab.setup.limit.setValue(256)
    tab.views.setCurrentIndex(1)
    tab.start()
    qtbot.waitUntil(lambda: tab.maps.input_view is not None
                    and tab.maps.input_view.data.shape == (3, 28, 28), timeout=60_000)
    shown = tab.maps.input_view.data
    assert not np.allclose(shown[0], shown[1]) or not np.allclose(shown[1], shown[2])
    rgba = tab.maps.input_view.image.image
    assert rgba.shape == (57, 57, 4)               # colour, then R, G, B
    assert "bn1" in tab.maps._names                 # BatchNorm maps shown too
    # coloured digits: no drawing canvas, "Try an image" instead
    assert tab.views.isTabVisible(tab.views.indexOf(tab.picture))
    assert not tab.views.isTabVisible(tab.views.indexOf(tab.digit))
    # a batch of this bigger network can outlast the fixture's wait on a loaded machine
    tab.stop()
    qtbot.waitUntil(lambda: not tab.runner.is_running(), timeout=60_000)


def test_a_saved_dataset_that_is_gone_is_a_message_at_start_up(qtbot, make_tab, tmp_path):
    from cnnviz.gui.settings import app_settings
    folder = write_folder(tmp_path / "kept", per_class=4)
    settings = app_settings()
    tab = make_tab()
    tab.setup.dataset.set_choice("folder", folder, 16, False)
    tab.save_state(settings)
    again = make_tab()
    again.restore_state(settings)
    assert again.setup.settings().dataset == ("folder", str(folder), 16, False)
    assert not again.banner.isVisible()
    for f in folder.rglob("*.png"):
        f.unlink()
    for d in sorted(folder.iterdir()):
        d.rmdir()
    folder.rmdir()
    third = make_tab()
    third.restore_state(settings)
    assert third.banner.isVisible()
    assert third.banner.text() == (f"The dataset used last time, image folder {folder} (16x16, "
                                   f"grey), is not there any more: the bundled MNIST is chosen "
                                   f"instead.")
    assert third.setup.settings().dataset == ("mnist", None, None, None)


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]


def write_cifar(folder, per_file=20):
    """CIFAR-10's binary version, small: data_batch_1..5.bin and test_batch.bin of
    ``per_file`` records (a label byte, then the R, G, B planes, 1,024 bytes each),
    and batches.meta.txt."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for k, name in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        labels = (np.arange(per_file) + k) % 10
        images = rng.integers(0, 256, (per_file, 3, 32, 32), dtype=np.uint8)
        (folder / name).write_bytes(b"".join(bytes([int(y)]) + im.tobytes()
                                             for y, im in zip(labels, images)))
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR_NAMES) + "\n")
    return folder


def test_cifar10_files_train_in_the_tab_with_their_class_names(qtbot, make_tab, tmp_path):
    folder = write_cifar(tmp_path / "cifar-10-batches-bin")
    tab = make_tab()
    key = choose(qtbot, tab, "cifar10", folder)
    assert tab.session.has_data(key) and not tab.banner.isVisible()
    tab.setup.set_model_file(str(colour_model(32, 10, tmp_path / "colour32.npz")))
    tab.setup.batch_size.setValue(25)
    tab.start()
    qtbot.waitUntil(lambda: tab.state == "finished", timeout=60_000)
    assert tab.trainer.n_train == 100 and len(tab.trainer.test[1]) == 20
    tab.views.setCurrentWidget(tab.evaluation)
    tab._eval_dirty = True
    tab._on_frame(force=True)
    left = [t[1] for t in tab.evaluation.matrix.getPlotItem().getAxis("left")._tickLevels[0]]
    assert left == CIFAR_NAMES
    captions = [c.text() for c in tab.evaluation.gallery.findChildren(QLabel)
                if c.text().startswith("#")]
    assert captions and all(c.split(": ")[1].split("\n")[0] in CIFAR_NAMES for c in captions)
    tab.views.setCurrentWidget(tab.picture)
    assert tab.picture.input_shape == (3, 32, 32)
    assert [t[1] for t in tab.picture.bar_plot.getAxis("bottom")._tickLevels[0]][1] == "automob…"


def write_arch(path, shape, classes=10):
    """A small architecture file for (C, H, W) images."""
    path.write_text(json.dumps({"input_shape": list(shape), "layers": [
        {"type": "Flatten"}, {"type": "Linear", "out_features": classes}]}))
    return path


def test_a_folders_size_and_colour_follow_the_network_until_the_user_sets_them(
        qtbot, make_tab, tmp_path, monkeypatch):
    """LeNet-5: a folder is read at 28 px, grey (it was 32 px, colour, and
    Start then refused it in the engine's words); a 3x32x32 architecture
    file: 32 px, colour; a size the user set stays."""
    folder = write_folder(tmp_path / "c", per_class=8, side=40)
    tab = make_tab()
    row = tab.setup.dataset
    row.set_choice("folder", folder)
    assert tab.setup.settings().dataset == ("folder", str(folder), 28, False)
    arch = write_arch(tmp_path / "colour32.json", (3, 32, 32), classes=3)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(arch), ""))
    tab.setup.model.setCurrentIndex(tab.setup.model.findData("file"))
    tab.setup.model.activated.emit(tab.setup.model.currentIndex())
    assert tab.setup.settings().dataset == ("folder", str(folder), 32, True)
    key = tab.setup.settings().dataset
    qtbot.waitUntil(lambda: tab.session.has_data(key), timeout=60_000)
    tab.setup.batch_size.setValue(8)
    tab.start()
    assert tab.trainer is not None, tab.banner.text()
    qtbot.waitUntil(lambda: tab.state == "finished", timeout=60_000)
    other = make_tab()
    other.setup.dataset.size.setValue(40)          # the user's: kept when the model changes
    other.setup.model.setCurrentIndex(other.setup.model.findData("file"))
    other.setup.model.activated.emit(other.setup.model.currentIndex())
    assert other.setup.model.currentData() == "file"
    assert other.setup.dataset.size.value() == 40
    assert other.setup.dataset.colour.currentData() is False     # as LeNet-5 had it


def test_a_broken_architecture_file_is_refused_when_chosen(qtbot, make_tab, tmp_path,
                                                           monkeypatch):
    """Refused at the choice (the banner, one line), LeNet-5 kept, and the
    status line names the model Start trains, not an earlier one."""
    tab = make_tab()
    good = write_arch(tmp_path / "good.json", (1, 28, 28))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    chosen = [str(good)]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (chosen[0], ""))
    arch_index = tab.setup.model.findData("file")

    def choose_arch_file():
        tab.setup.model.setCurrentIndex(arch_index)
        tab.setup.model.activated.emit(arch_index)

    tab.use_architecture(A.read(A.bundled()["bottleneck-1x1"]))
    assert "bottleneck" in tab.status.text()
    lenet = tab.setup.model.findData("lenet5")
    tab.setup.model.setCurrentIndex(lenet)         # as a click does: changed, then activated
    tab.setup.model.activated.emit(lenet)
    assert "Model: LeNet-5; Start trains it." in tab.status.text()
    chosen[0] = str(broken)
    choose_arch_file()
    text = tab.banner.text()
    assert tab.banner.isVisible() and str(broken) in text and "\n" not in text
    assert text.endswith("; the model stays LeNet-5.")
    assert tab.setup.model.currentData() == "lenet5"
    assert "Model: LeNet-5" in tab.status.text() and "bottleneck" not in tab.status.text()
    chosen[0] = str(good)
    choose_arch_file()
    assert tab.setup.model.currentData() == "file" and tab.setup.model_path == str(good)


def test_train_this_network_picks_a_dataset_that_fits_or_says_which_would(
        qtbot, make_tab, tmp_path):
    """A 3x32x32 network from the builder on Coloured MNIST (3x28x28): no
    folder or CIFAR-10 at hand, a line naming the data that would fit; with a
    folder chosen before, that folder at 32 px, colour. A 3x28x28 network:
    Coloured MNIST."""
    tab = make_tab()
    tab.setup.dataset.set_choice("colored-mnist")
    wide = A.read(write_arch(tmp_path / "w.json", (3, 32, 32)))
    tab.use_architecture(wide)
    assert tab.setup.settings().dataset[0] == "colored-mnist"
    assert tab.banner.isVisible() and tab.banner.text() == (
        f"{wide.title} takes 3x32x32 images, coloured MNIST (generated) gives 3x28x28: "
        f"choose a CIFAR-10 directory or an image folder (32 px, colour) as the dataset.")
    folder = write_folder(tmp_path / "f", per_class=8)
    tab.setup.dataset.paths["folder"] = str(folder)       # chosen once before
    tab.use_architecture(wide)
    assert tab.setup.settings().dataset == ("folder", str(folder), 32, True)
    tab.setup.dataset.set_choice("mnist")
    tab.use_architecture(A.read(write_arch(tmp_path / "c28.json", (3, 28, 28))))
    assert tab.setup.settings().dataset[0] == "colored-mnist"
    key = tab.setup.settings().dataset
    qtbot.waitUntil(lambda: not tab.setup.dataset.progress_row.isVisible(), timeout=60_000)
    assert key == tab.setup.settings().dataset


def test_many_maps_at_32x32_scroll_instead_of_being_cut_off(qtbot, make_tab):
    """The builder's colour CNN at 3x32x32 (ten layers with titles such as
    "(1, 12, 32, 32)"): every column lies inside the maps view, which is as
    wide as they need and scrolls in the window (fc2 was cut off, no scroll bar)."""
    tab = make_tab()
    tab.views.setCurrentIndex(1)
    qtbot.waitExposed(tab)
    rng = np.random.default_rng(0)
    shapes = [("conv1", (12, 32, 32)), ("bn1", (12, 32, 32)), ("relu1", (12, 32, 32)),
              ("pool1", (12, 16, 16)), ("conv2", (24, 12, 12)), ("bn2", (24, 12, 12)),
              ("relu2", (24, 12, 12)), ("pool2", (24, 6, 6)), ("fc1", (120,)), ("fc2", (10,))]
    maps = [(name, rng.normal(size=s).astype(np.float32), rng.normal(size=s).astype(np.float32))
            for name, s in shapes]
    tab.maps.set_maps(rng.uniform(size=(3, 32, 32)).astype(np.float32), maps,
                      "input: label 0 (airplane)<br>predicted 0 (airplane) (100%)")
    qtbot.wait(100)
    view = tab.maps
    inside = view.mapToScene(view.viewport().rect()).boundingRect()
    for act, grad in view.columns:
        for item in (act.title, act.view, grad.view):
            r = item.sceneBoundingRect()
            assert inside.contains(r), (item, r, inside)
        assert act.view.sceneBoundingRect().width() >= 40
    scroll = view.parentWidget().parentWidget()
    bar = scroll.horizontalScrollBar()
    assert view.width() > scroll.viewport().width() and bar.maximum() > 0
    bar.setValue(bar.maximum())                      # the last column can be brought into view
    last = view.columns[-1][0].view
    right = view.mapTo(scroll.viewport(), view.mapFromScene(
        last.sceneBoundingRect().topRight())).x()
    assert right <= scroll.viewport().width()
