"""The message banner wraps; it never widens the window it sits in."""

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
