"""cnnviz/engine/fit.py: a network against a dataset's images and classes, in words."""

from cnnviz.engine.fit import input_mismatch, output_fit, output_shape
from cnnviz.engine.layers import Conv2D, Flatten, Linear, ReLU
from cnnviz.engine.models import lenet5
from cnnviz.engine.sequential import Sequential


def test_input_mismatch_says_both_shapes():
    assert input_mismatch((1, 28, 28), (3, 32, 32)) == \
        "the network takes 1x28x28, the dataset gives 3x32x32"
    assert input_mismatch((1, 28, 28), (1, 28, 28)) is None
    assert input_mismatch(None, (3, 32, 32)) is None


def test_output_fit_refuses_too_few_outputs_and_maps_and_warns_of_unused_ones():
    assert output_fit((10,), 10) == (None, None)
    refused, warning = output_fit((2,), 3)
    assert warning is None and refused.startswith("the network has 2 outputs, the data 3 classes")
    assert output_fit((10,), 3) == (
        None, "the network has 10 outputs, the data 3 classes: outputs 3-9 are never the answer")
    assert output_fit((4,), 3)[1].endswith("output 3 is never the answer")
    assert output_fit((16, 5, 5), 10) == (
        "the network's output is 16x5x5 maps, not one score per class: end it with Flatten "
        "and Linear", None)


def test_output_shape_of_real_networks():
    assert output_shape(lenet5(seed=0), (1, 28, 28)) == (10,)
    maps = Sequential(Conv2D(3, 16, 3, seed=0), ReLU())
    assert output_shape(maps, (3, 7, 7)) == (16, 5, 5)
    assert output_shape(Sequential(Flatten(), Linear(12, 3, seed=0)), (3, 2, 2)) == (3,)
