"""A kernel edit repaints each changed stage once and leaves the input alone
(#13 point 5, "under 16 ms from key to repaint"): the input's colour image is
cached, and handing it to its grid again used to repaint the 512x512 photo on
every key; and an edit computed on the worker thread (a 1024x1024 photo) used
to paint every grid three times, the busy line appearing and going moving the
maps. Counts, not timings: the timings are bench/kernel_lab.py's."""

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication

from cnnviz.data.images import load_image, resize, sample_images
from cnnviz.gui.kernel_lab.input_loader import InputImage

from paints import PaintCounter



@pytest.fixture
def window(lab_window):
    return lab_window


def settle(qtbot, lab, ms=150):
    qtbot.waitUntil(lambda: not lab.busy, timeout=20000)
    qtbot.wait(ms)          # every deferred or queued paint has come
    QApplication.processEvents()


@pytest.mark.parametrize("side,keys", [(512, 1), (512, 3), (1024, 2)])
def test_a_kernel_edit_paints_each_changed_stage_once_and_not_the_input(qtbot, window, lab,
                                                                        side, keys):
    pixels = resize(load_image(sample_images()["astronaut"]), (side, side))
    lab.set_input(InputImage(pixels, f"astronaut {side}x{side}", (side, side)))
    lab.bank.editor.apply_preset("Sobel x")
    settle(qtbot, lab, 300)
    counters = {}
    for name, grid in lab.grids.items():
        counters[name] = PaintCounter()
        grid.viewport().installEventFilter(counters[name])
    cell = lab.bank.editor.cell(1, 1)
    cell.setFocus()
    for i in range(keys):
        before = {name: c.count for name, c in counters.items()}
        cell.selectAll()
        qtbot.keyClick(cell, Qt.Key(Qt.Key.Key_3 + i))
        worker = lab.runner.busy        # 512x512 is computed at once, 1024x1024 on the worker
        settle(qtbot, lab)
        assert worker == (side > 512)
        painted = {name: c.count - before[name] for name, c in counters.items()}
        assert float(lab.output.request.config.weights[0, 0, 1, 1]) == 3 + i
        assert painted == {"input": 0, "conv": 1, "activation": 1, "pool": 1}, painted
