"""Settle a step's layout before anything is painted: one repaint per step.

A step changes texts, tables and maps in many widgets. Left to the event
loop, each change posts its own layout request, and Qt paints between them:
a panel painted at one size, then again after its scroll bar appeared, a
pyqtgraph view painted before its auto-range ran and again after (the
16-map layers painted their grids 3-4 times a step, 200-350 ms).

So: run the posted layout requests now, let every pyqtgraph scene fix its
view ranges, run the scenes' queued dirty-item passes, and only then paint,
once, from here. Two Qt behaviours shape this (Qt 6.11, xcb and offscreen):
- a scene's queued dirty-item pass ends in a synchronous UpdateRequest to
  the window, so passing the scenes one after another painted the window
  once per scene. While the passes run, the window's UpdateRequests are held
  back (the dirty regions stay with Qt's repaint manager) and one
  UpdateRequest afterwards paints them all;
- widgets a step changes (a view shown anew, a grid of another map count,
  the Weights page's panels) have UpdateLater events posted for them, a
  second repaint of their own after the window's; they are delivered
  before that one paint, so they join it.
Hidden views' scenes are passed too: their queued passes, left to the event
loop, repainted the window once more after the step.
"""

from __future__ import annotations

import weakref

from PyQt6 import sip
from PyQt6.QtCore import QEvent, QObject
from PyQt6.QtWidgets import QApplication, QWidget

ROUNDS = 4    # a layout can resize a child that asks for a layout of its own

_views = weakref.WeakSet()     # the stepper's pyqtgraph views (findChildren cost ~5 ms)
_pages = weakref.WeakSet()     # side pages whose widgets' UpdateLater events join the paint


def register_view(view) -> None:
    """A pyqtgraph GraphicsView whose scene ``settle_layout`` prepares."""
    _views.add(view)


def register_page(page: QWidget) -> None:
    """A page (a side tab) whose widgets' UpdateLater events ``settle_layout``
    delivers before its one paint, while it is shown."""
    _pages.add(page)


def _shown_widgets(top: QWidget):
    """top and its visible descendants (a page keeps hidden tables and grids
    for later steps: findChildren, which lists them all, cost 7 ms a step)."""
    stack = [top]
    while stack:
        widget = stack.pop()
        yield widget
        stack.extend(c for c in widget.children()
                     if isinstance(c, QWidget) and not c.isHidden())


def _shown_pages(window: QWidget) -> list:
    pages = []
    for page in list(_pages):
        if sip.isdeleted(page):
            _pages.discard(page)
        elif page.window() is window and page.isVisible():
            pages.append(page)
    return pages


class _HoldPaints(QObject):
    """Swallows UpdateRequest events to one window while installed; notes that one came."""

    def __init__(self):
        super().__init__()
        self.held = False

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.UpdateRequest:
            self.held = True
            return True
        return False



def settle_layout(root: QWidget) -> None:
    app = QApplication.instance()
    if app is None or not root.isVisible():
        return
    for _ in range(ROUNDS):
        app.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    window = root.window()
    views = []
    for view in list(_views):
        if sip.isdeleted(view):          # its window was closed; the wrapper outlived it
            _views.discard(view)
        elif view.window() is window:
            views.append(view)
    # the scenes' queued dirty-item passes, with the window's paint held back
    # until all have run (see the module's docstring). Twice: a pass can lay
    # out a view shown anew, which moves its ViewBoxes again; fixed during
    # the paint, that move would post another repaint (an UpdateLater).
    hold = _HoldPaints()
    window.installEventFilter(hold)
    try:
        for _ in range(2):
            for view in views:
                if view.isVisible():
                    view.scene().prepareForPaint()   # ViewBox auto-range and transforms, now
            app.sendPostedEvents(None, QEvent.Type.LayoutRequest)
            for view in views:
                app.sendPostedEvents(view.scene(), QEvent.Type.MetaCall)
        # Widgets changed by this step have UpdateLater events posted for them
        # (a view shown anew and its viewport; every widget of the shown side
        # page: the labels, check boxes and scroll areas of its panels). Left
        # to the event loop, which delivers them at low priority after
        # everything else, they repainted the side page a second time 10-15
        # ms after the window's one paint. Delivered now, they join it. Only
        # this window's: another window's, being torn down, must not be asked
        # to paint (its items may be gone; delivering every UpdateLater was
        # followed by a crash in a test's teardown in 3 of 10 runs).
        for view in views:
            app.sendPostedEvents(view, QEvent.Type.UpdateLater)
            app.sendPostedEvents(view.viewport(), QEvent.Type.UpdateLater)
        for page in _shown_pages(window):
            for widget in _shown_widgets(page):
                app.sendPostedEvents(widget, QEvent.Type.UpdateLater)
    finally:
        window.removeEventFilter(hold)
    if hold.held:
        # the repaint manager thinks a request is on its way: deliver one, now
        app.sendEvent(window, QEvent(QEvent.Type.UpdateRequest))
