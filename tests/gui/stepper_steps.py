"""What the Layer Stepper tests do and read the way a learner does."""


def click(tab, name):
    """Press one of the tab's step buttons, which must be enabled (its tooltip says why not)."""
    button = tab.buttons[name]
    assert button.isEnabled(), button.toolTip()
    button.click()


def where_text(tab) -> str:
    """The line above the strip, as read: "LeNet-5: forward, at conv1"."""
    return f"{tab.where.text()} {tab.where_layer.text()}"
