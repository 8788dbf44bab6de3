"""Draw the static parts of pyqtgraph plots from cached pixmaps.

pyqtgraph replays an axis's recorded QPicture (ticks, labels, grid lines)
at every repaint, and text is the costly part of it: a page of four plots
spent ~10 ms per repaint there. With Qt's device-coordinate cache, an axis
or a title is rendered once into a pixmap and blitted after that; any
change (a new range, new text) calls update(), which invalidates the cache.
"""

from __future__ import annotations

import pyqtgraph as pg
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
