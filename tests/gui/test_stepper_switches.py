"""The Layer Stepper after several changes in a row (pytest-qt, offscreen):
switching networks with any side tab showing, ticking Training mode or
changing the digit in the middle of stepping; the tab stays usable and what
it says matches what it does."""

import pytest

@pytest.fixture
def tab(stepper_tab):
    return stepper_tab


def click(tab, name):
    button = tab.buttons[name]
    assert button.isEnabled(), button.toolTip()
    button.click()


def test_switching_network_twice_from_another_side_tab(tab, qtbot):
    """The tester's sequence: conv1 on Weights, then Saliency, then two switches."""
    tab.choose_network("trained")
    click(tab, "forward")
    click(tab, "forward")
    tab.side.setCurrentWidget(tab.weights_tab)
    tab.side.setCurrentWidget(tab.saliency_tab)
    assert tab.choose_network("lenet5")
    qtbot.wait(10)                 # the event loop runs, as between two clicks
    assert tab.choose_network("small")
    assert tab.source == tab._titles["small"]
    tab.side.setCurrentWidget(tab.weights_tab)
    click(tab, "forward")
    click(tab, "forward")
    assert tab.weights_tab.specs                 # the small net's conv1 weights are shown
    panel = tab.weights_tab.panel_for("weight")
    assert panel.isVisible()
    assert tab.session.model.layers[tab.session.focus].name in panel.header.text()


@pytest.mark.parametrize("first, second", [("backward_tab", "weights_tab"),
                                           ("weights_tab", "check_tab"),
                                           ("edit_tab", "saliency_tab")])
def test_switches_with_side_tabs_in_any_order(tab, qtbot, first, second):
    """Weights seen on the old network, then another side tab (or none), two
    or three switches with the event loop running between them."""
    click(tab, "forward")
    click(tab, "forward")
    tab.side.setCurrentWidget(tab.weights_tab)
    for key, side in (("lenet5", first), ("small", second), ("trained", second),
                      ("lenet5", first)):
        tab.side.setCurrentWidget(getattr(tab, side))
        assert tab.choose_network(key)
        assert tab.source == tab._titles[key]
        qtbot.wait(10)
    tab.side.setCurrentWidget(tab.weights_tab)
    click(tab, "run_back")
    assert tab.weights_tab.panel_for("dW").isVisible()
