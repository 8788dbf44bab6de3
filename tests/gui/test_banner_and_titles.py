"""Messages and titles say what is there: the banner wraps without widening
the window; a map of one value says so."""

from PyQt6.QtWidgets import QVBoxLayout, QWidget

from cnnviz.gui.widgets.banner import Banner


def test_a_word_longer_than_the_window_does_not_widen_it(qtbot):
    window = QWidget()
    layout = QVBoxLayout(window)
    banner = Banner()
    layout.addWidget(banner)
    layout.addStretch(1)
    qtbot.addWidget(window)
    window.resize(800, 600)
    window.show()
    qtbot.waitExposed(window)
    banner.show_message("short message " * 30, "error")      # wraps onto a few lines
    qtbot.wait(20)
    assert window.width() == 800 and 40 < banner.height() < 150
    banner.show_message("x.npz: step " + "1" * 5000 + " is too large", "error")
    qtbot.wait(20)
    assert window.width() == 800
    banner.show_message("a short one", "error")
    qtbot.wait(20)
    assert window.width() == 800


def test_a_map_of_one_value_says_so_in_its_title():
    import numpy as np

    from cnnviz.gui.widgets.rendered_maps import render_maps

    maps = np.zeros((3, 4, 5), np.float32)
    maps[1, 0, 0] = 2.0
    maps[2] = -0.5
    r = render_maps(maps, ["relu 0", "relu 1", "conv 2"])
    assert r.titles == ["relu 0 (all 0)", "relu 1", "conv 2 (all -0.5)"]
