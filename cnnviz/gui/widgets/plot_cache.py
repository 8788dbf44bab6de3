"""Cheaper repaints of pyqtgraph views.

``cache_static_items``: pyqtgraph replays an axis's recorded QPicture
(ticks, labels, grid lines) at every repaint, and text is the costly part
of it: a page of four plots spent ~10 ms per repaint there. With Qt's
device-coordinate cache, an axis or a title is rendered once into a pixmap
and blitted after that; any change (a new range, new text) calls update(),
which invalidates the cache.

``ignore_activation``: a QGraphicsView that is shown (a page switch) sends
its scene a WindowActivate, and the whole scene was then repainted once or
twice more right after its first paint (measured: a switch to the Weights
page took three full paints, 18-26 ms; the Curves page three, 39-56 ms). Our
plots look the same active or not, so the scenes are kept out of it: one
paint per switch (Weights 7-8 ms, Curves 18-20 ms).
"""

from __future__ import annotations

import pyqtgraph as pg
from PyQt6.QtCore import QEvent, QObject
from PyQt6.QtWidgets import QGraphicsItem, QGraphicsTextItem, QGraphicsView, QWidget

CACHED_TYPES = (pg.AxisItem, QGraphicsTextItem)


def cache_static_items(root: QWidget) -> int:
    """Set the cache on every axis and text item in the graphics views
    under ``root`` (call again after adding plots). Returns how many."""
    count = 0
    views = [root] if isinstance(root, QGraphicsView) else []
    for view in views + root.findChildren(QGraphicsView):
        for item in view.scene().items():
            if isinstance(item, CACHED_TYPES):
                item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
                count += 1
    return count


class _ActivationFilter(QObject):
    SWALLOWED = (QEvent.Type.WindowActivate, QEvent.Type.WindowDeactivate)

    def eventFilter(self, obj, event) -> bool:
        return event.type() in self.SWALLOWED


def ignore_activation(root: QWidget) -> int:
    """Keep window (de)activation away from the scenes of the graphics
    views under ``root`` (again: no effect). Returns how many scenes."""
    views = [root] if isinstance(root, QGraphicsView) else []
    views += root.findChildren(QGraphicsView)
    scenes = {id(v.scene()): v.scene() for v in views}.values()
    for scene in scenes:
        # One filter per scene, parented to it: it lives as long as the scene.
        if scene.findChild(_ActivationFilter) is None:
            scene.installEventFilter(_ActivationFilter(scene))
    return len(scenes)
