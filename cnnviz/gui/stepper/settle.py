"""Settle a step's layout before anything is painted: one repaint per step.

A step changes texts, tables and maps in many widgets. Left to the event
loop, each change posts its own layout request, and Qt paints between them:
a panel painted at one size, then again after its scroll bar appeared, a
pyqtgraph view painted before its auto-range ran and again after, each
scene's queued update a repaint of its own (the 16-map layers painted their
grids 3-4 times a step, 200-350 ms). Running the posted layout requests now,
letting every pyqtgraph scene fix its view ranges, and then the scenes'
queued updates, leaves one paint with the final geometry.
"""

from __future__ import annotations

import weakref

from PyQt6 import sip
from PyQt6.QtCore import QEvent
from PyQt6.QtWidgets import QApplication, QWidget

ROUNDS = 4    # a layout can resize a child that asks for a layout of its own

_views = weakref.WeakSet()     # the stepper's pyqtgraph views (findChildren cost ~5 ms)


def register_view(view) -> None:
    """A pyqtgraph GraphicsView whose scene ``settle_layout`` prepares."""
    _views.add(view)


def settle_layout(root: QWidget) -> None:
    app = QApplication.instance()
    if app is None or not root.isVisible():
        return
    for _ in range(ROUNDS):
        app.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    window = root.window()
    scenes = []
    for view in list(_views):
        if sip.isdeleted(view):          # its window was closed; the wrapper outlived it
            _views.discard(view)
        elif view.isVisible() and view.window() is window:
            scenes.append(view.scene())
            view.scene().prepareForPaint()     # ViewBox auto-range and transforms, now
    app.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    # the scenes' queued dirty-item passes, so their views are marked dirty
    # before the window's one repaint rather than one repaint each after it
    for scene in scenes:
        app.sendPostedEvents(scene, QEvent.Type.MetaCall)
