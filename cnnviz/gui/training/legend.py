"""A plot's legend laid out above it, never over its data.

pyqtgraph's own legend floats in a corner of the view box, where a curve
that reaches that corner runs under it (the loss legend hid the end of the
loss curves and the last epoch points). This one is an item of the panel's
grid, in its own row above the plot: outside the view box whatever the
data. It lays its entries out in as many columns as fit the plot's width
(4 for the standard entries, fewer when long overlay labels come), so it
never widens the plot; more entries make it taller, the plot shorter.

It is the plot's ``legend``: ``PlotItem.plot(name=...)`` adds an entry and
``PlotItem.removeItem`` takes it away, as with pyqtgraph's.
"""

from __future__ import annotations

import pyqtgraph as pg
from PyQt6.QtWidgets import QSizePolicy

MAX_COLUMNS = 4
SAMPLE_WIDTH = 20       # pyqtgraph's ItemSample is 20 px wide
SPACING = 5             # between a legend's cells (horSpacing)


class StripLegend(pg.LegendItem):
    def __init__(self, plot: pg.PlotItem, max_columns: int = MAX_COLUMNS, **kwargs):
        super().__init__(offset=None, colCount=max_columns, horSpacing=SPACING, **kwargs)
        self.max_columns = max_columns
        self.plot = plot
        plot.legend = self
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        plot.geometryChanged.connect(self.updateSize)

    def _entry_widths(self) -> list[float]:
        return [SAMPLE_WIDTH + 2 * SPACING + label.preferredWidth() for _, label in self.items]

    def columns_that_fit(self, width: float) -> int:
        """The most columns (at most max_columns) whose entries fit ``width``;
        entry i goes to column i % columns, as LegendItem lays them out."""
        widths = self._entry_widths()
        for columns in range(min(self.max_columns, max(len(widths), 1)), 1, -1):
            if sum(max(widths[c::columns]) for c in range(columns)) <= width:
                return columns
        return 1

    def updateSize(self) -> None:
        """Not LegendItem's (it sets its geometry, which the grid owns): pick
        the columns for the plot's width, then let the grid re-lay it out."""
        width = self.plot.width()
        if width > 0:
            columns = self.columns_that_fit(width)
            if columns != self.columnCount:
                self.setColumnCount(columns)       # calls updateSize again: same count
                return
        self.layout.invalidate()
        self.updateGeometry()
