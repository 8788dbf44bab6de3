"""The Layer Stepper's prediction names the classes of its dataset (issue #11 point 7)."""

import numpy as np

from cnnviz.data.idx import write_idx
from cnnviz.data.mnist import load_mnist
from cnnviz.gui.stepper import StepperTab

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_the_stepper_prediction_uses_the_datasets_class_names(qtbot, tmp_path):
    test = load_mnist(split="test")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test.images[:50])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", test.labels[:50])
    (tmp_path / "classes.txt").write_text("\n".join(NAMES) + "\n")
    tab = StepperTab(mnist_dir=tmp_path)
    qtbot.addWidget(tab)
    tab.buttons["run_forward"].click()
    assert tab.session.forward_complete
    probs = tab.chart.probs
    pred, target = int(np.argmax(probs)), int(test.labels[tab.digit_spin.value()])
    text = tab.chart.label.text()
    assert f"prediction <b>{pred} {NAMES[pred]}</b>" in text
    assert f"target {target} {NAMES[target]}," in text
    ticks = [t[1] for t in tab.chart.plot.getAxis("bottom")._tickLevels[0]]
    assert ticks[:3] == ["zero", "one", "two"] and ticks[7] == "seven"
