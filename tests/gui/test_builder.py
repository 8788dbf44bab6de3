"""The Network builder tab (pytest-qt, offscreen, real widgets): the table
shows the numbers of `cnnviz summary` through adds, removals, moves and
edits by keyboard and mouse; an impossible shape at its row; save / open
with real files; the hand-offs to the Training tab and the Layer Stepper."""

import json

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QFileDialog, QMessageBox

from cnnviz.engine import architecture as A
from cnnviz.engine import summary
from cnnviz.gui.builder import NetworkBuilderTab
from cnnviz.gui.builder.tab import AFTER_FG, ERROR_FG

from dialogs import Answer


@pytest.fixture
def builder(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIZ_SETTINGS_DIR", str(tmp_path / "settings"))
    tab = NetworkBuilderTab()
    qtbot.addWidget(tab)
    tab.resize(1400, 860)
    tab.show()
    qtbot.waitExposed(tab)
    return tab


@pytest.fixture
def window(main_window):
    return main_window


def open_tab(window, title):
    index = next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == title)
    window.tabs.setCurrentIndex(index)
    return window.tabs.widget(index).inner


def cells(tab, row):
    return [tab.table.item(row, c).text() for c in range(tab.table.columnCount())]


def assert_table_is_the_summary(tab):
    """Every row of the table against the engine's summary of the network
    built from what the builder holds (the numbers `cnnviz summary` prints)."""
    arch = tab.model.architecture()
    table = summary(arch.build(), arch.batch_input_shape)
    assert tab.table.rowCount() == len(table.rows)
    for i, row in enumerate(table.rows):
        assert cells(tab, i) == [row.name, row.kind, "\u00d7".join(map(str, row.output_shape[1:])),
                                 f"{row.params:,}", f"{row.macs:,}"]
    assert tab.total_label.text() == (f"total   {table.total_params:,} parameters   "
                                      f"{table.total_macs:,} multiply-adds per image")
    assert not tab.error_label.isVisible()
    return table


@pytest.mark.parametrize("key", sorted(A.bundled()))
def test_every_bundled_architecture_shows_the_summary_numbers(builder, key):
    assert builder.start_from(key, ask=False)
    table = assert_table_is_the_summary(builder)
    # and the figures the notes give (the others: the summary's, checked above)
    expected = {"lenet5": (61_706, 416_520), "lenet5-1998": (60_850, None),
                "bottleneck-3x3": (None, 5_898_240_000), "bottleneck-1x1": (None, 1_638_400_000)}
    params, macs = expected.get(key, (None, None))
    assert params is None or table.total_params == params
    assert macs is None or table.total_macs == macs


def select_palette(tab, label):
    items = tab.palette.findItems(label, Qt.MatchFlag.MatchExactly)
    tab.palette.setCurrentItem(items[0])


def test_build_a_network_by_keyboard_and_clicks(qtbot, builder):
    builder.start_from("", ask=False)
    assert builder.table.rowCount() == 0 and "No layers yet" in builder.error_label.text()
    # add by Enter in the list, and by the button: each goes after the selected layer
    for label in ("Conv2D", "ReLU", "Max pooling", "Flatten", "Linear"):
        select_palette(builder, label)
        builder.palette.setFocus()
        qtbot.keyClick(builder.palette, Qt.Key.Key_Return)
    select_palette(builder, "BatchNorm")
    builder.table.setCurrentCell(0, 0)
    qtbot.mouseClick(builder.add_button, Qt.MouseButton.LeftButton)
    assert [builder.table.item(i, 1).text() for i in range(6)] == [
        "Conv2D", "BatchNorm2d", "ReLU", "MaxPool2D", "Flatten", "Linear"]
    assert builder.selected() == 1
    assert_table_is_the_summary(builder)

    # edit conv1 in the editor: out channels 8 -> 12, kernel 3 -> 5x3, padding 1
    builder.table.setCurrentCell(0, 0)
    out = builder.editor_field("out_channels")
    out.selectAll()
    qtbot.keyClicks(out, "12")
    assert builder.model.layers[0].config["out_channels"] == 12
    kernel = builder.editor_field("kernel_size")
    kernel.selectAll()
    qtbot.keyClicks(kernel, "5x3")
    qtbot.keyClicks(builder.editor_field("padding"), "1")
    table = assert_table_is_the_summary(builder)
    assert table.rows[0].output_shape == (1, 12, 26, 28)
    assert cells(builder, 0)[2:] == ["12\u00d726\u00d728", f"{12 * (5 * 3 + 1):,}",
                                     f"{12 * 26 * 28 * 5 * 3:,}"]
    # BatchNorm's channels follow the conv's: 12 maps, 24 parameters
    assert cells(builder, 1)[3] == "24"

    # Ctrl+Down moves the selected layer, Ctrl+Up back; Delete removes it
    builder.table.setFocus()
    builder.table.setCurrentCell(1, 0)
    qtbot.keyClick(builder.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert [builder.table.item(i, 1).text() for i in range(3)] == ["Conv2D", "ReLU",
                                                                   "BatchNorm2d"]
    assert builder.selected() == 2
    assert_table_is_the_summary(builder)
    qtbot.keyClick(builder.table, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert builder.table.item(1, 1).text() == "BatchNorm2d"
    qtbot.keyClick(builder.table, Qt.Key.Key_Delete)
    assert [builder.table.item(i, 1).text() for i in range(builder.table.rowCount())] == [
        "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Linear"]
    assert_table_is_the_summary(builder)
    # the buttons do the same
    builder.table.setCurrentCell(4, 0)
    qtbot.mouseClick(builder.up_button, Qt.MouseButton.LeftButton)
    assert builder.table.item(3, 1).text() == "Linear"
    assert "Linear needs a vector" in builder.error_label.text()
    qtbot.mouseClick(builder.down_button, Qt.MouseButton.LeftButton)
    builder.table.setCurrentCell(1, 0)
    qtbot.mouseClick(builder.remove_button, Qt.MouseButton.LeftButton)
    assert builder.table.rowCount() == 4
    assert_table_is_the_summary(builder)

    # the input shape: 3 colour channels of 32x32
    for box, value in zip(builder.input_boxes, (3, 32, 32)):
        box.setValue(value)
    table = assert_table_is_the_summary(builder)
    assert table.input_shape == (1, 3, 32, 32)
    assert builder.model.dirty and builder.window_title().endswith(" *")


def test_an_impossible_shape_shows_at_its_layer_with_the_arithmetic(qtbot, builder):
    builder.start_from("lenet5", ask=False)
    # conv1 (5x5, padding 0): 12 -> 8, pool1 -> 4, conv2's 5x5 does not fit
    builder.table.setCurrentCell(1, 0)
    padding = builder.editor_field("padding")
    assert padding.text() == "2"
    padding.selectAll()
    qtbot.keyClicks(padding, "0")
    builder.input_boxes[1].setValue(12)
    builder.input_boxes[2].setValue(12)
    rows = builder.evaluation.rows
    bad = [r.name for r in rows].index("conv2")
    text = "a 5x5 kernel does not fit a 4x4 map (height: (4 - 5) // 1 + 1 = 0)"
    assert builder.table.item(bad, 2).text() == "\u2716 " + text
    assert builder.error_label.text() == f"conv2: {text}"
    assert builder.table.item(bad, 2).foreground().color() == ERROR_FG
    for i in range(bad + 1, builder.table.rowCount()):        # the layers after it: greyed
        assert builder.table.item(i, 2).text() == ""
        assert builder.table.item(i, 0).foreground().color() == AFTER_FG
    for i in range(bad):                                      # before it: numbers
        assert builder.table.item(i, 3).text() != ""
    assert not builder.train_button.isEnabled() and not builder.step_button.isEnabled()
    assert builder.total_label.text().startswith("total (up to pool1)")

    # the example: a 2x2 pooling window on a 1x1 map
    builder.start_from("", ask=False)
    for box, value in zip(builder.input_boxes, (1, 4, 4)):
        box.setValue(value)
    for label in ("Max pooling", "Max pooling", "Max pooling"):
        select_palette(builder, label)
        builder.add_chosen()
    assert builder.error_label.text() == ("pool3: a 2x2 window does not fit a 1x1 map "
                                          "(height: (1 - 2) // 2 + 1 = 0)")
    assert builder.evaluation.error_index == 2
    assert builder.table.item(2, 2).text().startswith("\u2716 a 2x2 window does not fit")
    # a field typed wrong is the layer's message too
    builder.table.setCurrentCell(0, 0)
    kernel = builder.editor_field("kernel_size")
    kernel.selectAll()
    qtbot.keyClicks(kernel, "two")
    assert builder.evaluation.error_index == 0
    assert builder.error_label.text().startswith("pool1.kernel_size: ")


def test_save_and_open_round_trip_with_a_real_file(qtbot, builder, tmp_path):
    builder.start_from("lenet5", ask=False)
    builder.table.setCurrentCell(1, 0)
    out = builder.editor_field("out_channels")
    out.selectAll()
    qtbot.keyClicks(out, "10")
    select_palette(builder, "Dropout")
    builder.table.setCurrentCell(9, 0)
    builder.add_chosen()
    shown = [cells(builder, i) for i in range(builder.table.rowCount())]
    path = tmp_path / "mine.json"
    assert builder.model.dirty
    assert builder.save_to(str(path))
    assert not builder.model.dirty and builder.model.path == str(path)
    # the file is the documented format, read by the CLI's reader
    arch = A.read(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "cnnviz-architecture" and doc["input_shape"] == [1, 28, 28]
    assert "in_channels" not in doc["layers"][1]           # it follows the input
    assert [layer["type"] for layer in doc["layers"]][10] == "Dropout"
    assert str(summary(arch.build(), arch.batch_input_shape)) == str(
        summary(builder.model.architecture().build(), arch.batch_input_shape))
    # a second builder opens it and shows the same table
    other = NetworkBuilderTab()
    qtbot.addWidget(other)
    assert other.open_path(str(path), ask=False)
    assert [cells(other, i) for i in range(other.table.rowCount())] == shown
    assert not other.model.dirty
    assert_table_is_the_summary(other)


@pytest.mark.parametrize("content, expected", [
    ("{ \"layers\": [", "not valid JSON"),
    (json.dumps({"input_shape": [1, 28, 28], "layers": [{"type": "Conv3D", "kernel_size": 3}]}),
     "layers[0].type: unknown layer type \"Conv3D\""),
    (json.dumps({"input_shape": [1, 28, 28], "layers": [{"type": "Conv2D", "kernal_size": 3}]}),
     "kernal_size"),
    ("\xff\xfe binary", "not a text file"),
])
def test_a_bad_file_gives_one_line_and_keeps_the_network(qtbot, builder, tmp_path, content,
                                                         expected):
    builder.start_from("lenet5-1998", ask=False)
    before = [cells(builder, i) for i in range(builder.table.rowCount())]
    layers = list(builder.model.layers)
    path = tmp_path / "bad.json"
    if content.startswith("\xff"):
        path.write_bytes(b"\xff\xfe binary")
    else:
        path.write_text(content)
    assert not builder.open_path(str(path), ask=False)
    message = builder.banner.label.text()
    assert message.startswith(f"Cannot open: {path}: ") and "\n" not in message
    assert expected in message
    assert builder.model.layers == layers
    assert [cells(builder, i) for i in range(builder.table.rowCount())] == before


def test_unsaved_changes_are_asked_about(qtbot, builder, tmp_path, monkeypatch):
    builder.start_from("lenet5", ask=False)
    path = tmp_path / "other.json"
    A.write(path, A.read(A.bundled()["bottleneck-1x1"]))
    assert not builder.model.dirty
    assert builder.open_path(str(path))                       # nothing to lose: no question
    builder.start_from("lenet5", ask=False)
    builder.remove_selected()
    cancel = Answer(QMessageBox.StandardButton.Cancel)
    assert not builder.open_path(str(path))
    cancel.stop()
    assert cancel.asked and "not been saved" in cancel.asked[0]
    assert builder.table.rowCount() == 12 and builder.model.dirty
    discard = Answer(QMessageBox.StandardButton.Discard)
    assert builder.start_from("bottleneck-3x3")
    discard.stop()
    assert discard.asked and builder.table.rowCount() == 1
    # Save writes first, asking where (a bundled network has no file yet)
    builder.input_boxes[0].setValue(128)
    saved_to = tmp_path / "saved.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *args: (str(saved_to), "")))
    save = Answer(QMessageBox.StandardButton.Save)
    assert builder.confirm_close()
    save.stop()
    assert save.asked and A.read(saved_to).input_shape == (128, 100, 100)
    assert not builder.model.dirty and builder.confirm_close()      # saved: no question
    # a network that cannot be built yet: the question says why; saved, it is
    # work in progress the builder opens again, and the message says so
    builder.remove_selected()
    save = Answer(QMessageBox.StandardButton.Save)
    assert builder.confirm_close()
    save.stop()
    assert "It cannot be trained yet: No layers yet" in save.asked[0]
    assert builder.banner.label.text() == (f"Saved {saved_to}; it cannot be trained until "
                                           f"fixed: No layers yet: add one from the list on "
                                           f"the left.")
    assert builder.open_path(str(saved_to), ask=False) and builder.table.rowCount() == 0
    assert builder.model.input_shape == (128, 100, 100)


def test_a_file_with_an_impossible_shape_opens_with_the_layer_marked(qtbot, builder,
                                                                       tmp_path):
    # hand-edited: pool2 gets a 1x1 map; it opens, to be fixed here
    doc = A.read(A.bundled()["lenet5"]).to_dict()
    doc["input_shape"] = [1, 10, 10]
    for layer in doc["layers"]:
        layer.pop("in_channels", None), layer.pop("in_features", None)
    path = tmp_path / "hand-edited.json"
    path.write_text(json.dumps(doc))
    assert builder.open_path(str(path), ask=False)
    bad = builder.evaluation.error_index
    assert builder.evaluation.rows[bad].name == "pool2"
    assert builder.error_label.text().startswith("pool2: a 2x2 window does not fit a 1x1 map")
    assert builder.banner.label.text() == (f"Opened {path}; it cannot be trained until fixed: "
                                           f"{builder.error_label.text()}")
    assert builder.table.item(bad, 2).foreground().color() == ERROR_FG
    assert not builder.train_button.isEnabled()
    # fixed in the builder (the input back to 28x28), it is the bundled network
    builder.input_boxes[1].setValue(28)
    builder.input_boxes[2].setValue(28)
    assert_table_is_the_summary(builder)
    # a layer's wrong value opens too, marked at that layer
    doc["input_shape"] = [1, 28, 28]
    doc["layers"][1]["kernel_size"] = "five"
    path.write_text(json.dumps(doc))
    assert builder.open_path(str(path), ask=False)
    assert builder.evaluation.error_index == 1
    assert builder.error_label.text().startswith("conv1.kernel_size: ")


def test_save_offers_a_safe_file_name_and_kernel_too_big_is_a_shape_error(qtbot, builder,
                                                                          monkeypatch):
    builder.start_from("bottleneck-1x1", ask=False)
    offered = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda _parent, _title, name, *rest: (offered.append(name)
                                                                           or ("", ""))))
    assert not builder.save()
    assert offered and offered[0].endswith("1x1 bottleneck with (1x1 conv to 64 maps "
                                           "first).json")
    # a 200x200 kernel on the 100x100 map: the shape, not the 50M-parameter budget
    builder.table.setCurrentCell(1, 0)
    kernel = builder.editor_field("kernel_size")
    kernel.selectAll()
    qtbot.keyClicks(kernel, "200")
    assert builder.error_label.text() == (
        "conv3x3: a 200x200 kernel does not fit a 100x100 map padded by 1 (102x102) "
        "(height: (100 + 2*1 - 200) // 1 + 1 = -97)")


def test_the_init_shown_as_default_is_the_one_the_engine_uses(qtbot, builder):
    builder.start_from("lenet5-1998", ask=False)
    arch = builder.model.architecture()
    model = arch.build()
    last = len(builder.model.layers) - 1
    for row in (last, last - 2):                   # output (last), F6 (not last)
        assert builder.model.layers[row].kind == "Linear"
        assert "init" not in builder.model.layers[row].config
        builder.table.setCurrentCell(row, 0)
        shown = builder.editor_field("init").currentText()
        # the weights the engine draws: uniform within the bound of the init shown
        layer = model.layers[row]
        bound = layer.INIT_BOUNDS[shown.split()[0]](layer.in_features)
        assert 0.9 * bound < abs(layer.params["weight"]).max() <= bound, (row, shown)
    assert builder.editor_field("init").currentText() == "he (default)"
    builder.table.setCurrentCell(last, 0)
    assert builder.editor_field("init").currentText() == "fan_in (default: the last layer)"


def test_the_main_window_asks_before_closing_an_unsaved_network(qtbot, window):
    builder = open_tab(window, "Network builder")
    builder.remove_selected()
    cancel = Answer(QMessageBox.StandardButton.Cancel)
    assert not window.close()
    cancel.stop()
    assert cancel.asked and "not been saved" in cancel.asked[0] and window.isVisible()
    assert "cannot be trained" not in cancel.asked[0]
    # closed from another tab with a network that cannot work: the question says why
    builder.input_boxes[1].setValue(4)
    window.tabs.setCurrentIndex(0)
    cancel = Answer(QMessageBox.StandardButton.Cancel)
    assert not window.close()
    cancel.stop()
    assert "It cannot be trained yet: conv2: a 5x5 kernel does not fit" in cancel.asked[0]
    discard = Answer(QMessageBox.StandardButton.Discard)
    assert window.close()
    discard.stop()


def test_a_row_dragged_moves_its_layer(qtbot, builder):
    from PyQt6.QtCore import QMimeData, QPointF
    from PyQt6.QtGui import QDropEvent

    builder.start_from("lenet5", ask=False)
    builder.table.setCurrentCell(3, 0)                       # pool1
    target = builder.table.visualItemRect(builder.table.item(1, 0)).center()   # onto conv1
    event = QDropEvent(QPointF(target), Qt.DropAction.MoveAction, QMimeData(),
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    builder.table.dropEvent(event)
    assert [builder.table.item(i, 0).text() for i in range(4)] == ["norm1", "pool1", "conv1",
                                                                  "relu1"]
    assert builder.selected() == 1
    assert_table_is_the_summary(builder)


def test_the_connection_table_is_a_grid_of_boxes_edited_and_checked(qtbot, builder):
    from cnnviz.engine.sparse_conv import LENET5_C3_CONNECTIONS

    builder.start_from("lenet5-1998", ask=False)
    c3 = [r.name for r in builder.evaluation.rows].index("C3")
    builder.table.setCurrentCell(c3, 0)
    grid = builder.connection_table()
    qtbot.waitUntil(lambda: grid.boxes[15][5].isVisibleTo(builder))
    assert (grid.rows, grid.columns) == (16, 6)          # 16 output maps, S2's 6 maps
    # the paper's table, every box readable and shown
    for o, seen in enumerate(LENET5_C3_CONNECTIONS):
        assert [c for c in range(6) if grid.boxes[o][c].isChecked()] == sorted(seen)
        for box in grid.boxes[o]:
            assert box.isVisibleTo(builder) and box.width() >= 12
    params = builder.evaluation.total_params
    # a click: output map 0 sees input map 5 too (25 weights more)
    qtbot.mouseClick(grid.boxes[0][5], Qt.MouseButton.LeftButton)
    assert builder.model.layers[c3].config["connections"][0] == [0, 1, 2, 5]
    assert builder.evaluation.ok and builder.evaluation.total_params == params + 25
    assert builder.model.dirty
    # every box of output map 3 off: the model's check says which map sees nothing
    for c in (3, 4, 5):
        qtbot.mouseClick(grid.boxes[3][c], Qt.MouseButton.LeftButton)
    assert builder.error_label.text() == "C3.connections[3]: output map 3 sees no input map"
    assert builder.evaluation.error_index == c3 and not builder.train_button.isEnabled()
    qtbot.mouseClick(grid.boxes[3][4], Qt.MouseButton.LeftButton)
    assert builder.evaluation.ok
    # out_channels typed: the grid follows, a new map is to be given its inputs
    out = builder.editor_field("out_channels")
    out.selectAll()
    qtbot.keyClicks(out, "17")
    grid = builder.connection_table()
    assert (grid.rows, grid.columns) == (17, 6)
    assert builder.error_label.text() == ("C3.connections: 16 lists, but out_channels is 17 "
                                          "(one list of input maps per output map)")
    qtbot.mouseClick(grid.boxes[16][2], Qt.MouseButton.LeftButton)
    assert builder.model.layers[c3].config["connections"][16] == [2]
    assert builder.evaluation.ok
    # saved and read back by the CLI's reader: the table as edited
    assert A.parse(builder.model.doc()).layers[c3][2]["connections"][0] == [0, 1, 2, 5]


def test_a_connection_table_too_large_for_boxes_is_a_text_field_a_line_a_map(qtbot):
    from cnnviz.gui.builder.connections import MAX_ROWS, ConnectionTable

    rows = MAX_ROWS + 6
    table = ConnectionTable([[0, 1]] * rows, rows, 6)
    qtbot.addWidget(table)
    assert table.text is not None and not table.boxes
    assert table.text.toPlainText().splitlines() == ["[0, 1]"] * rows
    sent = []
    table.edited.connect(sent.append)
    table.text.setPlainText("[0]\n[1, 2]")
    assert sent[-1] == "[[0], [1, 2]]"
    table.text.setPlainText("[[0], [3]]")                 # the file's form on one line
    assert sent[-1] == "[[0], [3]]"
    table.text.setPlainText("[0, 1\n[2]")                 # not JSON: passed on for the check
    assert sent[-1] == "[0, 1\n[2]"


def test_the_bottleneck_pair_is_shown_side_by_side(qtbot, builder):
    builder.start_from("bottleneck-1x1", ask=False)
    box = builder.compare
    assert box.other() == "bottleneck-3x3" and box.isVisible()
    cell = lambda r, c: box.cells[r, c].text()        # noqa: E731
    assert (cell(2, 0), cell(2, 1), cell(2, 2)) == ("multiply-adds", "1,638,400,000",
                                                    "5,898,240,000")
    assert (cell(1, 1), cell(1, 2)) == ("164,160", "590,080")
    assert box.summary.text() == ("This network: 3.6 times fewer multiply-adds, 3.6 times "
                                  "fewer parameters than bottleneck-3x3.")
    # the other of the pair: its partner beside it
    builder.start_from("bottleneck-3x3", ask=False)
    assert box.other() == "bottleneck-1x1"
    assert (cell(2, 1), cell(2, 2)) == ("5,898,240,000", "1,638,400,000")
    assert box.summary.text().startswith("This network: 3.6 times more multiply-adds")
    # an edit here: the numbers follow (64 -> 32 output maps halves the 3x3 conv)
    builder.table.setCurrentCell(0, 0)
    out = builder.editor_field("out_channels")
    out.selectAll()
    qtbot.keyClicks(out, "128")
    assert cell(2, 1) == "2,949,120,000"
    # any bundled network can be chosen; a network that cannot be built has no totals
    box.choice.setCurrentIndex(box.choice.findData("lenet5"))
    box.choice.activated.emit(box.choice.currentIndex())
    assert cell(1, 2) == "61,706"
    kernel = builder.editor_field("kernel_size")      # larger than the 100x100 map
    kernel.selectAll()
    qtbot.keyClicks(kernel, "200")
    assert cell(2, 1) == "\u2014"
    assert box.summary.text() == "This network cannot be built yet: nothing to compare."


def test_undo_and_redo_every_kind_of_edit_by_keyboard(qtbot, builder):
    builder.start_from("lenet5", ask=False)
    first = builder.model.snapshot()
    assert not builder.model.can_undo
    states = [first]

    def edit_done():
        assert builder.model.snapshot() != states[-1]
        states.append(builder.model.snapshot())

    builder.table.setCurrentCell(1, 0)
    out = builder.editor_field("out_channels")           # typing "10" is one edit
    out.selectAll()
    qtbot.keyClicks(out, "10")
    edit_done()
    builder.input_boxes[1].setValue(32)                  # the input
    edit_done()
    select_palette(builder, "Dropout")                   # add
    builder.table.setCurrentCell(3, 0)
    builder.add_chosen()
    edit_done()
    builder.table.setFocus()
    builder.table.setCurrentCell(2, 0)
    qtbot.keyClick(builder.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)   # move
    edit_done()
    qtbot.keyClick(builder.table, Qt.Key.Key_Delete)     # remove
    edit_done()
    # Ctrl+Z back through each, Ctrl+Shift+Z forward again: the table follows
    for state in reversed(states[:-1]):
        qtbot.keyClick(builder.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert builder.model.snapshot() == state
        assert builder.table.rowCount() == len(builder.model.layers)
    assert not builder.model.dirty and not builder.model.can_undo
    assert [b.value() for b in builder.input_boxes] == [1, 28, 28]
    assert_table_is_the_summary(builder)
    for state in states[1:]:
        qtbot.keyClick(builder.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
                       | Qt.KeyboardModifier.ShiftModifier)
        assert builder.model.snapshot() == state
    assert builder.input_boxes[1].value() == 32 and builder.model.dirty
    # a new edit after an undo drops what could be redone
    qtbot.keyClick(builder.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    builder.input_boxes[2].setValue(30)
    assert not builder.model.can_redo


def test_the_file_menu_opens_and_saves_architectures(qtbot, window, tmp_path, monkeypatch):
    path = tmp_path / "from-menu.json"
    A.write(path, A.read(A.bundled()["bottleneck-3x3"]))
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args, **kw: (str(path), "")))
    window.tabs.setCurrentIndex(0)                       # from the Kernel Lab
    window.open_architecture_action.trigger()
    builder = window.tabs.currentWidget().inner
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Network builder"
    assert builder.model.path == str(path) and builder.table.rowCount() == 1
    builder.input_boxes[0].setValue(128)
    window.tabs.setCurrentIndex(0)
    window.save_architecture_action.trigger()
    assert A.read(path).input_shape == (128, 100, 100) and not builder.model.dirty
