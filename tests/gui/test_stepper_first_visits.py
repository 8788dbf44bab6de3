"""A layer's first visit in the Layer Stepper only fills widgets (issue #13
point 6): while the learner looks at a new network, the tab builds every map
grid, Weights page, table and gradient panel its steps will show
(cnnviz/gui/stepper/warmup.py). Counted, not timed: after the warm-up, a
whole forward and backward pass creates no pyqtgraph view, grid or panel."""

from PyQt6.QtWidgets import QTableWidget

from cnnviz.engine import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential
from cnnviz.gui.stepper.tensor_panel import TensorPanel
from cnnviz.gui.widgets.feature_map_grid import FeatureMapGrid


def built(tab):
    """Map grids (each built with its pyqtgraph tiles), panels and number tables."""
    return (len(tab.findChildren(FeatureMapGrid)), len(tab.findChildren(TensorPanel)),
            len(tab.findChildren(QTableWidget)))


def full_pass(tab):
    s = tab.session
    for _ in range(s.num_layers):
        tab.buttons["forward"].click()
    for _ in range(s.num_layers):
        tab.buttons["back"].click()


def test_after_the_warm_up_no_step_builds_a_widget(stepper_tab, qtbot):
    tab = stepper_tab
    assert tab.side.currentWidget() is tab.weights_tab
    qtbot.waitUntil(lambda: tab.warmup.pending == 0, timeout=30_000)   # LeNet-5, trained
    # the main panels' grids are laid out at the panel's size already (a
    # grid's first show used to resize and lay out every tile)
    for panel in (tab.panel_a, tab.panel_b):
        assert len(panel.grids) >= 3                      # 1, 6 and 16 maps
        assert {(g.width(), g.height()) for g in panel.grids.values()} == {
            (panel.stack.width(), panel.stack.height())}
    before = built(tab)
    full_pass(tab)
    assert built(tab) == before
    # another network: its own warm-up, then the same
    net = Sequential(Conv2D(1, 5, 5, seed=0), ReLU(), MaxPool2D(2), Conv2D(5, 7, 3, seed=1),
                     ReLU(), Flatten(), Linear(7 * 10 * 10, 4, seed=2))
    assert tab.use_model(net, "five and seven maps")
    qtbot.waitUntil(lambda: tab.warmup.pending == 0, timeout=30_000)
    before = built(tab)
    full_pass(tab)
    assert built(tab) == before


def test_the_warm_up_waits_for_the_switch_to_be_drawn_and_a_new_network_replaces_it(
        stepper_tab, qtbot):
    tab = stepper_tab
    assert tab.choose_network("small")
    assert tab.warmup.pending > 0           # nothing built before the switch returned
    assert tab.choose_network("lenet5")
    pending = tab.warmup.pending
    assert tab.choose_network("lenet5")     # the queue is replaced, not added to
    assert tab.warmup.pending == pending
    tab.warmup.run_all()
    assert tab.warmup.pending == 0


def test_a_hidden_tab_builds_nothing_until_it_is_shown_again(stepper_tab, qtbot):
    """A closed window's tab, being deleted, built pyqtgraph items in later
    event loops (a deleted axis was painted: the interpreter crashed)."""
    tab = stepper_tab
    assert tab.choose_network("lenet5")
    pending = tab.warmup.pending
    tab.hide()
    qtbot.wait(300)
    assert tab.warmup.pending == pending
    tab.show()
    qtbot.waitUntil(lambda: tab.warmup.pending == 0, timeout=30_000)
