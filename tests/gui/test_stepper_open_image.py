"""Opening a picture in the Layer Stepper: decoded off the GUI thread, fed
as the model's input, with the decoder's warnings and errors in the banner."""

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QElapsedTimer, QTimer

from cnnviz.gui.stepper.inputs import to_model_input


@pytest.fixture
def tab(stepper_tab):
    return stepper_tab


def digit_like(h=96, w=80):
    img = np.zeros((h, w, 3), np.uint8)
    cv2.line(img, (w // 4, h // 5), (3 * w // 4, h // 5), (255, 255, 255), 8)
    cv2.line(img, (3 * w // 4, h // 5), (w // 3, 4 * h // 5), (255, 255, 255), 8)
    return img


def test_an_opened_picture_becomes_the_input(qtbot, tab, tmp_path):
    path = tmp_path / "seven.png"
    cv2.imwrite(str(path), digit_like())
    tab.open_image(path)
    assert tab.banner.text.startswith("Loading seven.png")
    qtbot.waitUntil(lambda: tab.input_name == "seven.png", timeout=10_000)
    rgb = cv2.cvtColor(digit_like(), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    np.testing.assert_allclose(tab.session.x, to_model_input(rgb), atol=1e-6)
    assert "seven.png (96x80x3) converted" in tab.banner.text


def test_a_damaged_jpeg_is_fed_with_its_warning(qtbot, tab, tmp_path):
    ok, buf = cv2.imencode(".jpg", digit_like(256, 256))
    data = buf.tobytes()
    start, end = data.rfind(b"\xff\xda") + 14, data.rfind(b"\xff\xd9")
    mid = (start + end) // 2
    path = tmp_path / "scan.jpg"
    path.write_bytes(data[:mid] + bytes(400) + data[mid + 400:])     # a bad sector's zeros
    tab.open_image(path)
    qtbot.waitUntil(lambda: tab.input_name == "scan.jpg", timeout=10_000)
    assert tab.banner.kind == "warning"
    assert tab.banner.text.startswith("scan.jpg: the JPEG data is damaged"), tab.banner.text


def test_an_unreadable_file_says_so_and_keeps_the_input(qtbot, tab, tmp_path):
    before, name = tab.session.x.copy(), tab.input_name
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    tab.open_image(path)
    qtbot.waitUntil(lambda: tab.banner.kind == "error", timeout=10_000)
    assert tab.banner.text.startswith("Cannot open notes.png: "), tab.banner.text
    assert tab.input_name == name
    np.testing.assert_array_equal(tab.session.x, before)


def test_a_huge_png_decodes_without_freezing_the_window(qtbot, tab, tmp_path):
    from test_kernel_lab_bad_inputs import png_file

    path = png_file(tmp_path / "huge.png", 12000, 12000)
    # the tab's own idle work (warmup.py: pieces of up to ~100 ms of CPU, many
    # times that in wall time on a loaded machine) is not the decode's
    qtbot.waitUntil(lambda: tab.warmup.pending == 0, timeout=60_000)
    gaps, clock, last = [], QElapsedTimer(), [0]
    clock.start()

    def beat():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(beat)
    timer.start(10)
    tab.open_image(path)
    qtbot.waitUntil(lambda: tab.input_name == "huge.png", timeout=60_000)
    timer.stop()
    assert len(gaps) > 20                       # the event loop ran while it decoded
    assert max(gaps[1:]) < 500, max(gaps)       # the decode itself blocked nothing


def test_a_model_file_with_nan_weights_is_shown_with_its_note(tab, tmp_path):
    from cnnviz.engine import lenet5, save

    model = lenet5(seed=0)
    model["fc2"].params["weight"][0, 0] = np.nan
    path = tmp_path / "nan.npz"
    save(model, path)
    assert tab.load_model_file(path)
    assert tab.banner.kind == "warning"
    assert "NaN or infinite weights in fc2.weight (1)" in tab.banner.text, tab.banner.text
