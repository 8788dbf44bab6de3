"""A Layer Stepper step repaints each view once, with its final geometry
(#13 point 6): before, a step's layout requests, pyqtgraph's auto-range and
each scene's queued update each led to a paint of their own, so the 16-map
layers painted their grids 3-4 times (200-350 ms a step). And tables of a
shape shown before are reused, not rebuilt. Counts, not timings: the
timings are bench/stepper.py's."""

import numpy as np
import pytest
from PyQt6.QtWidgets import QTableWidget

from paints import PaintCounter



@pytest.fixture
def tab(stepper_tab, qtbot):
    stepper_tab.resize(1400, 880)
    # what steps show is built while idle (warmup.py): counted steps start after it
    qtbot.waitUntil(lambda: stepper_tab.warmup.pending == 0, timeout=30_000)
    qtbot.wait(100)
    return stepper_tab


# relu2 and pool2 follow conv2, whose step first shows the 16-map grid (a
# widget shown anew gets a paint of its own on show)
@pytest.mark.parametrize("layer", ["relu2", "pool2"])
def test_a_forward_step_paints_the_16_map_grid_once(tab, qtbot, layer):
    names = [l.name for l in tab.session.model.layers]
    for _ in range(names.index(layer)):
        tab.buttons["forward"].click()
    qtbot.wait(150)
    grid = tab.panel_b.grids[(16, True)]      # built while idle, before the step
    counter = PaintCounter()
    grid.viewport().installEventFilter(counter)
    tab.buttons["forward"].click()
    qtbot.wait(150)                           # every deferred or queued paint has come
    assert tab.session.model.layers[tab.session.focus].name == layer
    assert tab.panel_b.grid is grid and grid.isVisible()
    assert counter.count == 1, f"the output grid painted {counter.count} times in one step"


def test_tables_of_a_shape_shown_before_are_reused(tab, qtbot):
    bias = lambda: tab.weights_tab.panel_for("bias")        # noqa: E731
    tab.buttons["forward"].click()                          # norm1: no weights
    tab.buttons["forward"].click()                          # conv1: 6 biases
    first = list(bias().tables.tables)
    assert len(first) == 1 and bias().showing_numbers
    for _ in range(3):
        tab.buttons["forward"].click()                      # relu1, pool1, conv2 (16)
    assert bias().tables.tables[0] is not first[0]
    tab.buttons["reset"].click()
    tab.buttons["forward"].click()
    tab.buttons["forward"].click()                          # conv1 again
    assert bias().tables.tables == first                    # the same widgets, refilled
    assert bias().tables.texts(0)[0][0] == f"{float(tab.session.model.layers[1].params['bias'][0]):.4g}"
    shown = [t for t in bias().tables.findChildren(QTableWidget) if t.isVisible()]
    assert shown == first                                   # the other shapes' are hidden


def test_every_grid_paints_at_most_once_a_step_forward_and_backward(tab, qtbot):
    """Every map grid of the window (main panels, side tab), at every step of a
    forward and a backward pass, conv2 included: its step shows the 16-map
    grid anew, which used to paint it a second time (an UpdateLater of its
    own), as did each pyqtgraph scene's queued pass (a window repaint each)."""
    from cnnviz.gui.stepper.map_grid import StepperMapGrid

    counters = {}

    def watch():
        for grid in tab.findChildren(StepperMapGrid):
            if id(grid) not in counters:
                counters[id(grid)] = counter = PaintCounter()
                grid.viewport().installEventFilter(counter)
                counter.grid = grid

    s = tab.session
    steps = ["forward"] * s.num_layers + ["back"] * s.num_layers
    for _ in range(2):                      # the first pass builds what it has not prepared
        worst = []
        for direction in steps:
            watch()
            for counter in counters.values():
                counter.count = 0
            tab.buttons[direction].click()
            qtbot.wait(120)                 # every deferred or queued paint has come
            layer = s.model.layers[s.focus].name if s.focus >= 0 else "input"
            worst += [(c.count, f"{direction} {layer}") for c in counters.values()]
        tab.buttons["reset"].click()
        qtbot.wait(100)
    names = {label for _, label in worst}
    assert {"forward conv2", "back conv2", "forward relu2"} <= names
    assert max(worst)[0] == 1, f"a grid painted {max(worst)[0]} times at {max(worst)[1]}"


def test_the_weights_tab_keeps_each_layers_panels(tab, qtbot):
    """Back at a layer, its Weights page is the one built there before: the
    same panels and grids, not another layer's refitted."""
    names = [l.name for l in tab.session.model.layers]
    tab.session.goto(names.index("conv1"))
    tab.refresh()
    page = tab.weights_tab.stack
    kernels = tab.weights_tab.panel_for("weight")
    grid = kernels.grid
    tab.session.goto(names.index("fc1"))
    tab.refresh()
    assert tab.weights_tab.stack is not page and tab.weights_tab.panel_for("weight") is not kernels
    assert not page.isVisible()
    tab.session.goto(names.index("conv1"))
    tab.refresh()
    assert tab.weights_tab.stack is page and page.isVisible()
    assert tab.weights_tab.panel_for("weight") is kernels and kernels.grid is grid
    np.testing.assert_array_equal(kernels.tensor, tab.session.model.layers[names.index("conv1")]
                                  .params["weight"])


def test_every_step_paints_the_window_once(tab, qtbot):
    """One paint of the window a step, at every layer of a forward and a
    backward pass: the Weights page's widgets and the rich-text line above the
    strip asked for a repaint of their own during or after the step's one
    paint (UpdateLater events), which painted the side page a second time
    10-15 ms later, the step's last repaint."""
    counter = PaintCounter()
    tab.installEventFilter(counter)
    s = tab.session
    steps = ["forward"] * s.num_layers + ["back"] * s.num_layers
    for _ in range(2):                      # the first pass builds what it has not prepared
        painted = []
        for direction in steps:
            counter.count = 0
            tab.buttons[direction].click()
            qtbot.wait(120)                 # every deferred or queued paint has come
            layer = s.model.layers[s.focus].name if s.focus >= 0 else "input"
            painted.append((counter.count, f"{direction} {layer}"))
        tab.buttons["reset"].click()
        qtbot.wait(100)
    assert [p for p in painted if p[0] != 1] == [], "steps that painted the window 0 or 2+ times"
