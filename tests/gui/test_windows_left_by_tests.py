"""The suite's own hygiene (tests/conftest.py): a window a test leaves behind
is deleted through Qt when that test ends, not by Python's cyclic collector
in some later test, where pyqtgraph items emptied by the collector were
called back by the window's C++ destructor ("'LabelItem' object has no
attribute '_sizeHint'" failing whichever test was running).

The two tests run in this order (pytest keeps a file's order)."""

import gc

import pyqtgraph as pg
from PyQt6 import sip

_left = []      # a strong reference, to look at the window after its test


def test_a_test_leaves_a_closed_plot_window_in_a_reference_cycle(qtbot):
    w = pg.GraphicsLayoutWidget()
    w.addPlot(row=0, col=0, title="a title: a LabelItem")
    w.ci.addLabel("a label", row=1, col=0)
    w.cycle = w                   # as pyqtgraph's own connections make one
    w.show()
    qtbot.waitExposed(w)
    w.close()
    _left.append(w)


def test_the_window_was_deleted_by_qt_when_its_test_ended(qtbot):
    (w,) = _left
    assert sip.isdeleted(w), "the last test's window is still alive"
    _left.clear()
    del w
    gc.collect()                  # nothing left for the collector to call back into
    qtbot.wait(10)
