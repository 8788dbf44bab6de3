"""The Kernel Lab given bad inputs, as a user meets them (pytest-qt, offscreen): damaged
and lying images, a huge PNG to downscale, kernels that overflow float32, bad kernel
files. Each case checks what the user is told and that the lab still works after."""

import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QFileDialog, QMessageBox

from cnnviz.data.images import sample_images
from dialogs import Answer
from test_images import big_png_bytes

PHOTOS = sample_images()


@pytest.fixture
def window(lab_window):
    return lab_window


def settle(qtbot, lab, timeout=30_000):
    qtbot.waitUntil(lambda: not lab.busy, timeout=timeout)
    QApplication.processEvents()


def open_and_settle(qtbot, lab, path):
    lab.open_path(path)
    settle(qtbot, lab)


def type_into(qtbot, cell, text):
    cell.setFocus()
    cell.selectAll()
    qtbot.keyClicks(cell, text)


def input_header(lab):
    return lab.grids["input"].header.text


def assert_lab_still_works(qtbot, lab):
    """A good photo opens and its maps are computed, finite, without a banner."""
    open_and_settle(qtbot, lab, PHOTOS["coffee"])
    assert lab.image.name == "coffee.png" and lab.input_banner.isHidden()
    assert lab.output.result.stages[0].tensor.shape[1] == 3
    assert np.isfinite(lab.output.result.stage("conv").tensor).all()
    assert lab.compute_banner.isHidden()


def photo_like(h=256, w=256):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 100 * np.sin(x / 17), 128 + 100 * np.cos(y / 23),
                    128 + 60 * np.sin((x + y) / 31)], axis=-1)
    return img.astype(np.uint8)


def jpeg_bytes(img):
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def png_file(path, width, height, channels=1):
    """An 8-bit black PNG compressed block by block (20000 x 20000 grey: 1.7 MB, < 1 s)."""
    path.write_bytes(big_png_bytes(width, height, channels))
    return path


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    return png_file(tmp_path_factory.mktemp("huge") / "huge.png", 20000, 20000)


@pytest.fixture(scope="module")
def large_png(tmp_path_factory):
    """Large enough to be asked about; its result comes back only through the event loop,
    so a request made in the same slot always overtakes it."""
    return png_file(tmp_path_factory.mktemp("large") / "large.png", 6000, 6000)


# --- damaged and lying images --------------------------------------------------------------

def test_jpeg_with_a_damaged_scan_is_shown_with_a_warning(qtbot, window, lab, tmp_path):
    data = jpeg_bytes(photo_like())
    start, end = data.rfind(b"\xff\xda") + 14, data.rfind(b"\xff\xd9")
    mid = (start + end) // 2
    path = tmp_path / "scan.jpg"
    path.write_bytes(data[:mid] + bytes(400) + data[mid + 400:])   # a bad sector's zeros
    open_and_settle(qtbot, lab, path)
    text = lab.input_banner.label.text()
    assert lab.input_banner.kind == "warning", text
    assert text.startswith("scan.jpg: the JPEG data is damaged (libjpeg: Corrupt JPEG data"), text
    assert text.endswith("The picture is shown as decoded.")
    assert lab.image.name == "scan.jpg" and input_header(lab) == "input: (1, 3, 256, 256)"
    assert_lab_still_works(qtbot, lab)


def test_jpeg_missing_most_of_its_data_is_refused(qtbot, window, lab, tmp_path):
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    data = bytearray(jpeg_bytes(photo_like()))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 1024, 1024)   # claims 1024 x 1024, holds 256 x 256
    path = tmp_path / "tall.jpg"
    path.write_bytes(bytes(data))
    open_and_settle(qtbot, lab, path)
    text = lab.input_banner.label.text()
    assert lab.input_banner.kind == "error", text
    assert "Could not open <b>tall.jpg</b>" in text and "the JPEG data ends early" in text
    assert "of its 1024 x 1024 pixels is not in the file" in text
    assert text.endswith("The current input stays.")
    assert lab.image.name == "camera.png"
    assert_lab_still_works(qtbot, lab)


def test_jpeg_claiming_20000_squared_is_refused_on_downscale(qtbot, window, lab, tmp_path):
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    data = bytearray(jpeg_bytes(photo_like()))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 20000, 20000)
    path = tmp_path / "lie.jpg"
    path.write_bytes(bytes(data))
    lab.open_path(path)
    lab.input_banner.buttons["Downscale to 2048 x 2048"].click()
    settle(qtbot, lab)
    text = lab.input_banner.label.text()
    assert lab.input_banner.kind == "error", text
    assert "its header claims 20000 x 20000 pixels, but the file holds only" in text
    assert "the file is damaged or its header is wrong" in text
    assert lab.image.name == "camera.png"   # never a grey 2048 x 2048 input
    assert_lab_still_works(qtbot, lab)


@pytest.mark.parametrize("damage", ["crc", "cut"])
def test_damaged_png_is_refused(qtbot, window, lab, tmp_path, damage):
    data = bytearray(cv2.imencode(".png", photo_like(64, 64))[1].tobytes())
    i = data.find(b"IDAT")
    n = struct.unpack(">I", data[i - 4:i])[0]
    if damage == "crc":
        data[i + 4 + n // 2] ^= 0xFF
    else:
        data = data[:i + 4 + n // 2]
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    open_and_settle(qtbot, lab, path)
    text = lab.input_banner.label.text()
    assert lab.input_banner.kind == "error" and "damaged or truncated PNG" in text, text
    assert ("(libpng: " if damage == "crc" else "the file is cut short") in text
    assert_lab_still_works(qtbot, lab)


def test_image_over_the_decode_memory_budget_is_refused_with_the_figure(qtbot, window, lab,
                                                                        tmp_path):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = tmp_path / "vast.png"   # the header of a 30000 x 20000 RGBA PNG: refused unread
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 20000,
                                                                       8, 6, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    lab.open_path(path)
    lab.input_banner.buttons["Downscale to 2048 x 1365"].click()
    settle(qtbot, lab)
    text = lab.input_banner.label.text()
    assert "30000 x 20000 pixels needs about 4.8 GB of memory, more than the 2.0 GB" in text, text
    assert_lab_still_works(qtbot, lab)


# --- a huge PNG, decoded off the GUI thread --------------------------------------------------

def test_downscaling_a_20000_squared_png_keeps_the_window_responsive(qtbot, window, lab,
                                                                     huge_png):
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    lab.open_path(huge_png)
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    start = time.perf_counter()
    lab.input_banner.buttons["Downscale to 2048 x 2048"].click()
    clicked = time.perf_counter() - start
    assert lab.loading and lab.input_banner.kind == "info"
    assert "Loading <b>huge.png</b> (20000 x 20000, downscaling to 2048 x 2048)" in \
        lab.input_banner.label.text()
    assert lab.image.name == "camera.png"            # the current input stays meanwhile
    qtbot.waitUntil(lambda: not lab.loading, timeout=60_000)
    loaded_after = time.perf_counter() - start
    timer.stop()
    gaps = np.diff([start] + ticks)
    print(f"click returned in {clicked * 1e3:.0f} ms; decoded in {loaded_after:.1f} s; "
          f"{len(ticks)} timer ticks, longest stall {gaps.max() * 1e3:.0f} ms")
    assert clicked < 0.2 and len(ticks) > 20
    # decoding on the GUI thread stalled it 2.5-3.5 s; what is left is the repaint as the
    # banner appears (60-120 ms measured alone, offscreen) and, on a loaded 2-core machine,
    # the scheduler (up to 250 ms seen at a load average of 7)
    assert gaps.max() < 0.5, f"the GUI thread stalled {gaps.max() * 1e3:.0f} ms"
    settle(qtbot, lab)
    assert lab.image.name == "huge.png" and input_header(lab) == "input: (1, 1, 2048, 2048)"
    assert "downscaled from 20000 x 20000" in lab.input_label.text()
    assert lab.input_banner.isHidden()


def test_a_new_open_replaces_a_load_still_running(qtbot, window, lab, large_png):
    lab.open_path(large_png)
    lab.input_banner.buttons["Downscale to 2048 x 2048"].click()
    assert lab.loading
    lab.open_path(PHOTOS["coffee"])                  # the user changes their mind
    settle(qtbot, lab, timeout=60_000)
    assert lab.image.name == "coffee.png" and lab.input_banner.isHidden()
    QApplication.processEvents()
    assert lab.image.name == "coffee.png"           # the big result, when it came, was dropped


def test_cancel_keeps_the_current_input(qtbot, window, lab, large_png):
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    lab.open_path(large_png)
    lab.input_banner.buttons["Downscale to 2048 x 2048"].click()
    lab.input_banner.buttons["Cancel"].click()
    assert not lab.loading and lab.input_banner.isHidden()
    qtbot.waitUntil(lambda: not lab.loader.busy, timeout=60_000)
    QApplication.processEvents()
    assert lab.image.name == "camera.png"


def test_closing_stops_the_loader_thread(qtbot, window, lab):
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    window.close()
    assert not lab.loader._thread.isRunning()


# --- kernels that overflow float32 ----------------------------------------------------------

def test_kernel_values_that_overflow_float32_are_named_in_the_banner(qtbot, window, lab):
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    editor = lab.bank.editor
    editor.apply_preset("identity")
    settle(qtbot, lab)
    for r in range(3):          # each cell is a valid float32; nine products sum past 3.4e38
        for c in range(3):
            type_into(qtbot, editor.cell(r, c), "1e38")
    settle(qtbot, lab)
    text = lab.compute_banner.label.text()
    assert lab.compute_banner.kind == "warning", text
    assert text.startswith("The maps overflow float32: kernel values up to 1e+38 on inputs up to"), text
    assert "conv values are infinite or NaN" in text and "Use smaller kernel values." in text
    lab.click("conv", 0, 10, 10)                    # the arithmetic of a pixel still shows
    assert lab.arithmetic.isVisible()
    editor.apply_preset("Sobel x")
    settle(qtbot, lab)
    assert lab.compute_banner.isHidden()
    assert np.isfinite(lab.output.result.stage("conv").tensor).all()


@pytest.mark.parametrize("typed, reason", [("nan", "'nan' is not a finite number"),
                                           ("inf", "'inf' is not a finite number"),
                                           ("-Infinity", "is not a finite number"),
                                           ("1e39", "too large (float32 holds up to 3.4e38)")])
def test_non_finite_cells_are_refused(qtbot, window, lab, typed, reason):
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    editor = lab.bank.editor
    editor.apply_preset("identity")
    settle(qtbot, lab)
    type_into(qtbot, editor.cell(0, 0), typed)
    settle(qtbot, lab)
    assert reason in editor.problem_label.text() and "stays in use" in editor.problem_label.text()
    assert np.isfinite(editor.kernel()).all()   # "1e3" on the way to "1e39" was a number
    assert np.isfinite(lab.output.result.stage("conv").tensor).all()
    assert lab.compute_banner.isHidden()


# --- bad kernel files -------------------------------------------------------------------------

BAD_KERNEL_FILES = {
    "5000-digit integer": ('{"kernel": [[' + "9" * 5000 + "]]}",
                           "a number in it has thousands of digits"),
    "100,000 levels of nesting": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "400-digit integer": ('{"kernel": [[' + "9" * 400 + "]]}", "not a finite float32 number"),
    "NaN": ('{"kernel": [[NaN, 1], [1, 1]]}', "not a finite float32 number"),
    "Infinity": ('{"kernel": [[Infinity]]}', "not a finite float32 number"),
    "1e39": ("[[1e39]]", "not a finite float32 number"),
    "ragged rows": ('{"kernel": [[1, 2], [3]]}', "rectangular grid of numbers"),
    "strings": ('{"kernel": [["1", "2"], ["3", "4"]]}', "must hold only numbers"),
    "booleans": ("[[true, false]]", "must hold only numbers"),
    "wrong shape": ('{"kernel": [1, 2, 3]}', "must have 2 dimensions"),
    "3-D": ('{"kernel": [[[1]]]}', "must have 2 dimensions, got lists nested 3 deep"),
    "too big a kernel": ("[" + ",".join(["[" + ",".join(["1"] * 12) + "]"] * 12) + "]",
                         "kernels must be 1x1 to 11x11, got 12x12"),
    "no kernel entry": ('{"format": "cnnviz-kernel"}', 'needs a "kernel" entry'),
    "bad names": ('{"weights": [[[[1]]]], "names": 5}', '"names" must list 1 strings'),
    "empty": ("", "the file is empty"),
    "binary garbage": (bytes(range(256)) * 8, "not text"),
    "not JSON": ("{kernel: [[1]]", "not valid JSON"),
    "huge file": ("[[" + "0, " * 600_000 + "0]]", "larger than 1000 KB"),
}


@pytest.mark.parametrize("case", list(BAD_KERNEL_FILES))
def test_bad_kernel_files_get_one_clear_message(qtbot, window, lab, tmp_path, monkeypatch, case):
    content, reason = BAD_KERNEL_FILES[case]
    path = tmp_path / "kernel.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    open_and_settle(qtbot, lab, PHOTOS["camera"])
    editor = lab.bank.editor
    editor.apply_preset("Sobel x")
    settle(qtbot, lab)
    before = editor.kernel().copy()
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args, **kwargs: (str(path), "")))
    answer = Answer(QMessageBox.StandardButton.Ok)
    try:
        editor.buttons["Load..."].click()
        qtbot.waitUntil(lambda: bool(answer.asked), timeout=5_000)
    finally:
        answer.stop()
    (message,) = answer.asked
    assert message.startswith("kernel.json is not a usable kernel:\n"), message
    assert reason in message, message
    assert "\n" not in message.split("\n", 1)[1] and "Traceback" not in message
    np.testing.assert_array_equal(editor.kernel(), before)      # nothing half-loaded
    editor.apply_preset("emboss")                               # and the lab goes on
    settle(qtbot, lab)
    assert lab.output.result.config.weights.shape[2:] == (3, 3) and lab.compute_banner.isHidden()
