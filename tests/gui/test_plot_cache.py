"""Cheaper repaints: cached axes, and scenes kept out of window activation."""

import pyqtgraph as pg
from PyQt6.QtCore import QEvent
from PyQt6.QtWidgets import QApplication, QGraphicsItem, QTabWidget

from cnnviz.gui.widgets.plot_cache import cache_static_items, ignore_activation

from paints import PaintCounter



def _two_pages(qtbot):
    tabs = QTabWidget()
    pages = []
    for name in ("first", "second"):
        page = pg.GraphicsLayoutWidget()
        for col in range(3):
            page.addPlot(row=0, col=col, title=f"{name} {col}").plot([1, 3, 2])
        tabs.addTab(page, name)
        pages.append(page)
    qtbot.addWidget(tabs)
    tabs.resize(800, 500)
    tabs.show()
    qtbot.waitExposed(tabs)
    return tabs, pages


def _paints_after_activation(qtbot, page) -> int:
    """Paints of ``page`` after its scene is told the window became active
    (sent here: whether the platform activates a test's window depends on
    the tests before it)."""
    if page.isActiveWindow():
        # The platform activated the window (as it does when no earlier test's
        # window is left): the scene has counted that activation, and a second
        # one would change nothing. It is taken back first.
        QApplication.sendEvent(page.scene(), QEvent(QEvent.Type.WindowDeactivate))
        qtbot.wait(50)
    counter = PaintCounter()
    page.viewport().installEventFilter(counter)
    QApplication.sendEvent(page.scene(), QEvent(QEvent.Type.WindowActivate))
    qtbot.wait(100)
    page.viewport().removeEventFilter(counter)
    return counter.count


def test_a_shown_page_is_painted_once_without_activation(qtbot):
    tabs, pages = _two_pages(qtbot)
    tabs.setCurrentIndex(1)
    qtbot.wait(100)
    # Without the filter, the scene's activation repaints the whole page.
    assert _paints_after_activation(qtbot, pages[1]) >= 1
    tabs.setCurrentIndex(0)
    qtbot.wait(50)
    assert ignore_activation(tabs) == 2
    assert ignore_activation(tabs) == 2           # a second call adds nothing
    filters = [c for p in pages for c in p.scene().children() if type(c).__name__ == "_ActivationFilter"]
    assert len(filters) == 2
    tabs.setCurrentIndex(1)
    qtbot.wait(100)
    assert _paints_after_activation(qtbot, pages[1]) == 0


def test_axes_and_titles_are_cached(qtbot):
    tabs, pages = _two_pages(qtbot)
    # Per plot: 4 axes, their 4 label texts and the title's text.
    assert cache_static_items(tabs) == 2 * 3 * 9
    axis = pages[0].getItem(0, 0).getAxis("left")
    assert axis.cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache
