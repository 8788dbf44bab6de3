"""The Network builder's model alone (no Qt): edits, per-layer evaluation up
to the first layer that fails, the file it writes."""

import pytest

from cnnviz.engine import architecture as A
from cnnviz.engine import summary
from cnnviz.gui.builder.model import BuilderModel, parse_value, value_text


@pytest.mark.parametrize("text, value", [
    ("3", 3), ("3x5", [3, 5]), (" 2 X 1 ", [2, 1]), ("0.5", 0.5), ("1e-5", 1e-5),
    ("true", True), ("[[0, 1], [2]]", [[0, 1], [2]]), ("", None), ("  ", None),
    ("two", "two"), ("3x", "3x"),
])
def test_typed_text_becomes_the_json_value(text, value):
    assert parse_value(text) == value


@pytest.mark.parametrize("value", [3, [3, 5], 0.5, True, [[0, 1], [2]]])
def test_a_value_shown_reads_back_the_same(value):
    assert parse_value(value_text(value)) == value


def model_of(key):
    m = BuilderModel()
    m.load(A.read(A.bundled()[key]))
    return m


def summary_of(arch):
    return summary(arch.build(), arch.batch_input_shape)


@pytest.mark.parametrize("key", sorted(A.bundled()))
def test_each_bundled_file_written_back_builds_the_same_network(key, tmp_path):
    m = model_of(key)
    path = tmp_path / f"{key}.json"
    m.save(path)
    assert str(summary_of(A.read(path))) == str(summary_of(A.read(A.bundled()[key])))
    rows = m.evaluate().rows
    assert [(r.name, r.kind, r.output_shape, r.params, r.macs) for r in rows] == [
        (r.name, r.kind, r.output_shape[1:], r.params, r.macs)
        for r in summary_of(A.read(path)).rows]


def test_a_layer_inserted_before_a_conv_leaves_its_input_size_to_the_shape():
    m = model_of("lenet5")
    m.add("1x1 conv", 2)             # after conv1 (6 maps): 8 maps reach conv2 now
    ev = m.evaluate()
    assert ev.ok
    conv2 = next(r for r in ev.rows if r.name == "conv2")
    assert conv2.params == 16 * 8 * 5 * 5 + 16
    assert m.layers[2].kind == "Conv2D" and "in_channels" not in m.layers[2].config
    # named by its kind and the first free count: the file's conv1 and conv2 are taken
    assert m.layers[2].name == "conv3" and [r.name for r in ev.rows][1:4] == [
        "conv1", "conv3", "relu1"]


def test_evaluation_stops_at_the_first_layer_that_fails_and_keeps_those_before():
    m = model_of("lenet5")
    m.set_field(1, "kernel_size", "33")          # conv1: 33x33 on 28x28 padded to 32x32
    ev = m.evaluate()
    assert ev.error_index == 1 and [r.state for r in ev.rows][:3] == ["ok", "error", "after"]
    assert ev.error == ("conv1: a 33x33 kernel does not fit a 28x28 map padded by 2 (32x32) "
                        "(height: (28 + 2*2 - 33) // 1 + 1 = 0)")
    assert ev.rows[0].output_shape == (1, 28, 28) and ev.total_params == 0
    assert all(r.state == "after" for r in ev.rows[2:])
    # two layers of one name: the second is the one at fault, the first keeps its numbers
    m.set_field(1, "kernel_size", "5")
    m.set_name(4, "conv1")
    ev = m.evaluate()
    assert ev.error_index == 4 and ev.rows[1].params == 156
    assert ev.error == "layers[4].name: two layers are named 'conv1' (layers 2 and 5)"


def test_changed_is_what_differs_from_the_file():
    m = model_of("lenet5")
    assert not m.dirty
    m.set_field(1, "out_channels", "7")
    assert m.dirty
    m.set_field(1, "out_channels", "6")
    assert not m.dirty
    i = m.move(3, -1)
    assert i == 2 and m.dirty
    m.move(2, +1)
    assert not m.dirty
    assert m.move(0, -1) == 0 and m.move(12, +1) == 12       # the ends stay


def test_an_emptied_field_takes_its_default():
    m = model_of("lenet5")
    assert m.layers[1].config["padding"] == 2
    m.set_field(1, "padding", "")
    assert "padding" not in m.layers[1].config
    assert m.evaluate().rows[1].output_shape == (6, 24, 24)      # padding 0, the default
    m.set_field(1, "padding", " 1 ")
    assert m.evaluate().rows[1].output_shape == (6, 26, 26)
