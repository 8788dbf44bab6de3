"""A Layer Stepper grid keeps its tiles' geometry when only titles change
(#13 point 6): pyqtgraph sized a title to its text, so a ReLU map titled
"5 (all 0)", or a hovered value in every title, re-laid out the whole grid
and resized each of its 16 views by a fraction of a pixel, about 10 ms a
step at relu2. And the side tab's pages keep their scroll bar, so a panel
appearing on a backward step does not narrow the page and re-fit every grid
on it."""

import numpy as np
from PyQt6.QtCore import QEvent, QObject, Qt
from PyQt6.QtWidgets import QApplication, QScrollArea

from cnnviz.gui.stepper.map_grid import StepperMapGrid
from cnnviz.gui.widgets.rendered_maps import render_maps


class ResizeCounter(QObject):
    def __init__(self):
        super().__init__()
        self.count = 0

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.GraphicsSceneResize:
            self.count += 1
        return False


def test_longer_titles_leave_the_tiles_where_they_are(qtbot):
    grid = StepperMapGrid(max_columns=4, show_bars=False)
    qtbot.addWidget(grid)
    grid.resize(530, 300)
    grid.show()
    qtbot.waitExposed(grid)
    maps = np.random.default_rng(0).normal(size=(16, 10, 10)).astype(np.float32)
    grid.set_rendered(render_maps(maps, [str(i) for i in range(16)]))
    qtbot.wait(50)
    QApplication.processEvents()
    before = [t.view.sceneBoundingRect() for t in grid.tiles]
    counter = ResizeCounter()
    for tile in grid.tiles:
        tile.view.installEventFilter(counter)
    maps[5] = 0.0        # a map of one value: its title says so
    grid.set_rendered(render_maps(maps, [str(i) for i in range(16)]))
    assert grid.tiles[5].title.text == "5 (all 0)"
    x, y = grid.pixel_centre(3, 4)
    grid.show_values_at(x, y)          # every title gets "[3, 4] = value"
    assert "[3, 4] =" in grid.tiles[0].title.text
    qtbot.wait(50)
    QApplication.processEvents()
    assert counter.count == 0, f"{counter.count} views resized by a title change"
    assert [t.view.sceneBoundingRect() for t in grid.tiles] == before


def test_the_side_tabs_pages_keep_their_scroll_bar(stepper_tab, qtbot):
    stepper_tab.resize(1400, 880)
    qtbot.wait(100)
    pages = stepper_tab.weights_tab.pages
    areas = [pages.widget(i) for i in range(pages.count())]
    assert areas and all(isinstance(a, QScrollArea) for a in areas)
    assert all(a.verticalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOn
               for a in areas)
