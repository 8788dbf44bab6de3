"""Keep several view boxes showing the same region of a shared coordinate system.

pyqtgraph's own setXLink/setYLink lines views up by their screen position,
which misaligns side-by-side views of different heights; here every view simply
shows the region the user just zoomed or panned to (aspect ratios kept).
"""

from __future__ import annotations

import pyqtgraph as pg


class ViewLink:
    def __init__(self):
        self._views: list[pg.ViewBox] = []
        self._syncing = False
        self._slots: list = []

    def set_views(self, views: list[pg.ViewBox]) -> None:
        for view, slot in self._slots:
            try:
                view.sigRangeChangedManually.disconnect(slot)
            except (TypeError, RuntimeError):
                pass  # the view went away with its grid
        self._views = list(views)
        self._slots = []
        for view in self._views:
            slot = (lambda *_, v=view: self._on_manual_change(v))
            view.sigRangeChangedManually.connect(slot)
            self._slots.append((view, slot))

    def _on_manual_change(self, view: pg.ViewBox) -> None:
        if not self._syncing:
            self.sync_from(view)

    def sync_from(self, source: pg.ViewBox | None) -> None:
        """Show ``source``'s region (the first view's when None) in every view."""
        views = self._views
        if not views:
            return
        source = source or views[0]
        rect = source.viewRect()
        self._syncing = True
        try:
            for view in views:
                if view is not source:
                    view.setRange(rect=rect, padding=0)
        finally:
            self._syncing = False
