"""The "Network builder" tab: build a network layer by layer and see, live,
what each layer makes of its input (output shape, parameters, multiply-adds:
the numbers of `cnnviz summary`), and where and why a shape stops working.

Left, the layers one can add; in the middle, the input shape and the table
(one row a layer: select, Delete, Ctrl+Up / Ctrl+Down, drag); right, the
selected layer's fields (a SparseConv2D's connection table as a grid of
boxes, connections.py); under the totals, the network side by side with a
bundled one (compare.py). Ctrl+Z / Ctrl+Shift+Z undo and redo an edit.
The widget is a view of a BuilderModel
(cnnviz/gui/builder/model.py): every edit changes the model, then
``refresh`` redraws the table from ``model.evaluate()``.

"Train this network" and "Step through this network" emit the checked
Architecture; the main window hands it to the Training tab or the Layer
Stepper.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QSignalBlocker, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QKeySequence, QShortcut
from PyQt6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFormLayout, QGroupBox,
                             QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget,
                             QMessageBox, QPushButton, QSpinBox, QSplitter, QTableWidget,
                             QTableWidgetItem, QVBoxLayout, QWidget)

from cnnviz.atomic import save_failure_message
from cnnviz.engine import architecture as A
from cnnviz.engine.jsonfields import FieldError
from cnnviz.gui.builder.compare import CompareBox
from cnnviz.gui.builder.connections import ConnectionTable, table_size
from cnnviz.gui.builder.model import (PALETTE, BuilderModel, editable_fields, field_default,
                                      value_text)
from cnnviz.gui.widgets.banner import Banner

SHORTCUTS = [
    ("Enter / double-click", "Add the layer chosen on the left (after the selected one)"),
    ("Delete", "Remove the selected layer"),
    ("Ctrl+Up / Ctrl+Down", "Move the selected layer up / down"),
    ("Drag a row", "Move a layer"),
    ("Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y)", "Undo / redo an edit (outside a text field)"),
    ("Ctrl+S", "Save the architecture"),
]

COLUMNS = ("layer", "type", "output (C\u00d7H\u00d7W)", "params", "mult-adds")
ERROR_BG = QColor("#fde2e2")
ERROR_FG = QColor("#8b0000")
AFTER_FG = QColor("#a0a0a0")

HELP = {
    "out_channels": "number of output maps (kernels)",
    "kernel_size": "3, or 3x5 (height x width)",
    "stride": "step of the window; 2 or 2x1",
    "padding": "zeros added on each side",
    "dilation": "spacing of the kernel's taps",
    "bias": "",
    "out_features": "number of outputs",
    "init": "initial weights' bound",
    "negative_slope": "slope for x < 0",
    "p": "probability of zeroing a value, in [0, 1)",
    "eps": "added to the variance",
    "momentum": "running statistics' update rate",
    "mean": "(x - mean) / std",
    "std": "(x - mean) / std",
    "connections": "per output map (row), the input maps (columns) it sees",
}


def shape_text(shape) -> str:
    return "\u00d7".join(str(v) for v in shape)


class LayerTable(QTableWidget):
    """The layers, one a row; a row dragged to another place asks the tab
    to move that layer (the tab redraws the table from its model)."""

    row_moved = pyqtSignal(int, int)      # from, to

    def __init__(self):
        super().__init__(0, len(COLUMNS))
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDragEnabled(True)
        self.setDropIndicatorShown(True)

    def dropEvent(self, event) -> None:
        source = self.currentRow()
        target = self.rowAt(int(event.position().y()))
        if target < 0:
            target = self.rowCount() - 1
        event.ignore()                     # the model moves it; the table is redrawn
        if source >= 0 and target != source:
            self.row_moved.emit(source, target)


class NetworkBuilderTab(QWidget):
    SHORTCUTS = SHORTCUTS
    train_requested = pyqtSignal(object)     # a checked Architecture
    step_requested = pyqtSignal(object)
    title_changed = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = BuilderModel()
        self.evaluation = None
        self._editor_fields: dict[str, QWidget] = {}
        self._connection_table = None       # the SparseConv2D table being edited
        self._build()
        self.start_from("lenet5", ask=False)

    # --- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Start from"))
        self.start_box = QComboBox()
        self.start_box.addItem("(choose)", None)
        for name, path in A.bundled().items():
            try:
                title = A.read(path).title
            except A.ArchitectureError:
                continue
            self.start_box.addItem(f"{title}  [{name}]", name)
        self.start_box.addItem("An empty network", "")
        self.start_box.activated.connect(self._start_box_chosen)
        bar.addWidget(self.start_box)
        self.open_button = QPushButton("Open...")
        self.open_button.clicked.connect(self.open_dialog)
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        self.save_as_button = QPushButton("Save as...")
        self.save_as_button.clicked.connect(self.save_as)
        for b in (self.open_button, self.save_button, self.save_as_button):
            bar.addWidget(b)
        bar.addStretch(1)
        self.train_button = QPushButton("Train this network")
        self.train_button.setToolTip("Hand it to the Training tab (its Model: Network builder)")
        self.train_button.clicked.connect(self._train_clicked)
        self.step_button = QPushButton("Step through this network")
        self.step_button.setToolTip("Open it, untrained, in the Layer Stepper")
        self.step_button.clicked.connect(self._step_clicked)
        bar.addWidget(self.train_button)
        bar.addWidget(self.step_button)
        outer.addLayout(bar)
        self.banner = Banner()
        outer.addWidget(self.banner)

        split = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(split, 1)

        # left: the palette
        left = QGroupBox("Add a layer")
        lv = QVBoxLayout(left)
        self.palette = QListWidget()
        for label, _, _ in PALETTE:
            self.palette.addItem(label)
        self.palette.setCurrentRow(0)
        self.palette.itemActivated.connect(lambda _item: self.add_chosen())
        lv.addWidget(self.palette, 1)
        self.add_button = QPushButton("Add after selected")
        self.add_button.clicked.connect(self.add_chosen)
        lv.addWidget(self.add_button)
        split.addWidget(left)

        # middle: input shape, the table, totals, the error
        middle = QWidget()
        mv = QVBoxLayout(middle)
        mv.setContentsMargins(0, 0, 0, 0)
        shape_row = QHBoxLayout()
        shape_row.addWidget(QLabel("Input"))
        self.input_boxes = []
        for label, tip in (("channels", "1 grey, 3 colour"), ("height", ""), ("width", "")):
            box = QSpinBox(minimum=1, maximum=A.MAX_INPUT_SIDE)
            box.setToolTip(f"{label} of the input image{': ' + tip if tip else ''}")
            box.setAccelerated(True)
            box.valueChanged.connect(self._input_edited)
            self.input_boxes.append(box)
            shape_row.addWidget(box)
            shape_row.addWidget(QLabel(label))
        shape_row.addStretch(1)
        self.title_label = QLabel()
        shape_row.addWidget(self.title_label)
        mv.addLayout(shape_row)

        self.table = LayerTable()
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        for i, mode in enumerate((QHeaderView.ResizeMode.ResizeToContents,
                                  QHeaderView.ResizeMode.ResizeToContents,
                                  QHeaderView.ResizeMode.Stretch,
                                  QHeaderView.ResizeMode.ResizeToContents,
                                  QHeaderView.ResizeMode.ResizeToContents)):
            header.setSectionResizeMode(i, mode)
        self.table.currentCellChanged.connect(lambda row, *_: self._show_editor(row))
        self.table.row_moved.connect(self._dragged)
        mv.addWidget(self.table, 1)
        self.total_label = QLabel()
        bold = QFont()
        bold.setBold(True)
        self.total_label.setFont(bold)
        mv.addWidget(self.total_label)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #8b0000;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mv.addWidget(self.error_label)
        self.compare = CompareBox()
        mv.addWidget(self.compare)
        moves = QHBoxLayout()
        self.up_button = QPushButton("Move up")
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button = QPushButton("Move down")
        self.down_button.clicked.connect(lambda: self.move_selected(+1))
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        for b in (self.up_button, self.down_button, self.remove_button):
            moves.addWidget(b)
        moves.addStretch(1)
        mv.addLayout(moves)
        split.addWidget(middle)

        # right: the selected layer's fields
        self.editor = QGroupBox("Layer")
        self.editor_form = QFormLayout(self.editor)
        split.addWidget(self.editor)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setStretchFactor(2, 0)
        split.setSizes([210, 820, 370])

        for keys, slot in ((QKeySequence.StandardKey.Delete, self.remove_selected),
                           ("Ctrl+Up", lambda: self.move_selected(-1)),
                           ("Ctrl+Down", lambda: self.move_selected(+1))):
            shortcut = QShortcut(QKeySequence(keys), self.table)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(slot)
        for keys, slot in (("Ctrl+Z", self.undo), ("Ctrl+Shift+Z", self.redo),
                           ("Ctrl+Y", self.redo)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        save = QShortcut(QKeySequence.StandardKey.Save, self)
        save.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        save.activated.connect(self.save)

    # --- the model to the view ------------------------------------------------------------
    def refresh(self, select: int | None = None) -> None:
        """Redraw the table, totals and message from the model (after every edit)."""
        ev = self.evaluation = self.model.evaluate()
        table = self.table
        rows = len(ev.rows)
        if table.rowCount() != rows:
            table.setRowCount(rows)
        for i, row in enumerate(ev.rows):
            if row.state == "ok":
                texts = (row.name, row.kind, shape_text(row.output_shape), f"{row.params:,}",
                         f"{row.macs:,}")
            elif row.state == "error":
                texts = (row.name, row.kind, "\u2716 " + self._error_cell(ev), "", "")
            else:
                texts = (row.name, row.kind, "", "", "")
            for c, text in enumerate(texts):
                item = table.item(i, c)
                if item is None:
                    item = QTableWidgetItem()
                    if c >= 3:
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                              | Qt.AlignmentFlag.AlignVCenter)
                    table.setItem(i, c, item)
                item.setText(text)
                item.setForeground(QBrush(ERROR_FG if row.state == "error" else
                                          AFTER_FG if row.state == "after" else
                                          table.palette().text().color()))
                item.setBackground(QBrush(ERROR_BG) if row.state == "error" else QBrush())
                item.setToolTip(ev.error if row.state == "error" else
                                "not computed: an earlier layer does not work"
                                if row.state == "after" else "")
        if ev.ok:
            self.total_label.setText(f"total   {ev.total_params:,} parameters   "
                                     f"{ev.total_macs:,} multiply-adds per image")
            self.error_label.setText("")
            self.error_label.hide()
        else:
            upto = (f" (up to {ev.rows[ev.error_index - 1].name})"
                    if ev.error_index else "")
            self.total_label.setText(f"total{upto}   {ev.total_params:,} parameters   "
                                     f"{ev.total_macs:,} multiply-adds" if upto else "")
            self.error_label.setText(ev.error)
            self.error_label.show()
        self.train_button.setEnabled(ev.ok)
        self.step_button.setEnabled(ev.ok)
        self.compare.update_totals(ev)
        self._show_title()
        if select is not None:
            with QSignalBlocker(table):
                table.setCurrentCell(select, 0)
            self._show_editor(select)

    @staticmethod
    def _error_cell(ev) -> str:
        # the layer's name starts the message; the row already says it
        name = ev.rows[ev.error_index].name
        return ev.error.removeprefix(f"{name}: ").removeprefix(f"{name}.")

    def _show_title(self) -> None:
        m = self.model
        where = m.path or (f"{m.name} (not saved)" if m.name else "untitled")
        changed = " \u2022 changed" if m.dirty else ""
        self.title_label.setText(f"<small>{where}{changed}</small>")
        self.title_changed.emit(self.window_title())

    def window_title(self) -> str:
        m = self.model
        what = m.path or m.name or "untitled"
        return f"cnnviz \u2014 Network builder: {what}{' *' if m.dirty else ''}"

    def _show_input(self) -> None:
        for box, v in zip(self.input_boxes, self.model.input_shape):
            with QSignalBlocker(box):
                box.setValue(v)

    def _show_editor(self, row: int) -> None:
        """The selected layer's fields in the editor (emptied when none)."""
        form = self.editor_form
        while form.rowCount():
            form.removeRow(0)
        self._editor_fields = {}
        self._connection_table = None
        if not (0 <= row < len(self.model.layers)):
            self.editor.setTitle("Layer")
            form.addRow(QLabel("Select a layer in the table to edit it."))
            return
        entry = self.model.layers[row]
        shown = self.evaluation.rows[row].name if self.evaluation else entry.name
        self.editor.setTitle(f"Layer {row + 1}: {shown} ({entry.kind})")
        name = QLineEdit(entry.name)
        name.setPlaceholderText(f"{shown} (automatic)")
        name.textEdited.connect(lambda text: self._edited(lambda: self.model.set_name(row, text)))
        form.addRow("name", name)
        self._editor_fields["name"] = name
        for key in editable_fields(entry.kind):
            value = entry.config.get(key)
            if key == "bias":
                box = QCheckBox()
                box.setChecked(value is not False)
                box.toggled.connect(lambda on, k=key: self._edited(
                    lambda: self.model.set_field(row, k, "" if on else "false")))
                widget = box
            elif key == "connections":
                widget = QWidget()
                QVBoxLayout(widget).setContentsMargins(0, 0, 0, 0)
                self._show_connections(widget, row)
            elif key == "init":
                box = QComboBox()
                default = A.linear_default_init(row, len(self.model.layers))
                box.addItem(f"{default} (default{': the last layer' * (default == 'fan_in')})",
                            "")
                box.addItem("fan_in", "fan_in")
                box.addItem("he", "he")
                box.setCurrentIndex(max(box.findData(value if value is not None else ""), 0))
                box.activated.connect(lambda _i, b=box, k=key: self._edited(
                    lambda: self.model.set_field(row, k, b.currentData())))
                widget = box
            else:
                edit = QLineEdit("" if value is None else value_text(value))
                default = field_default(entry.kind, key)
                edit.setPlaceholderText(default if default else "required")
                edit.textEdited.connect(lambda text, k=key: self._edited(
                    lambda: self.model.set_field(row, k, text)))
                widget = edit
            help_text = HELP.get(key, "")
            if help_text:
                widget.setToolTip(help_text)
            form.addRow(key.replace("_", " "), widget)
            self._editor_fields[key] = widget
        note = QLabel(self._input_note(entry.kind))
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        form.addRow(note)

    def _input_channels(self, row: int) -> int | None:
        """The channels that reach layer ``row`` (None: an earlier layer fails)."""
        if row == 0:
            return self.model.input_shape[0]
        rows = self.evaluation.rows if self.evaluation else ()
        if row <= len(rows) and rows[row - 1].state == "ok" and len(rows[row - 1].output_shape) == 3:
            return rows[row - 1].output_shape[0]
        return None

    def _show_connections(self, holder: QWidget, row: int) -> None:
        """The connection table of SparseConv2D ``row`` in ``holder``, redrawn
        when its size changes (out_channels typed, another input)."""
        config = self.model.layers[row].config
        size = table_size(config.get("connections"), config.get("out_channels"),
                          self._input_channels(row))
        old = self._connection_table
        if old is not None and old.parent() is holder and (old.rows, old.columns) == size:
            return
        if old is not None and old.parent() is holder:
            holder.layout().removeWidget(old)
            old.deleteLater()
        table = ConnectionTable(config.get("connections"), config.get("out_channels"),
                                self._input_channels(row))
        table.edited.connect(lambda text: self._edited(
            lambda: self.model.set_field(row, "connections", text)))
        holder.layout().addWidget(table)
        self._connection_table = table

    @staticmethod
    def _input_note(kind: str) -> str:
        key = A._FROM_INPUT.get(kind)
        text = "Empty fields take their default (shown in grey)."
        if key:
            text += f" Its {key.replace('_', ' ')} follows the input that reaches it."
        return text

    def connection_table(self) -> ConnectionTable | None:
        """The shown SparseConv2D's connection table (tests, screenshots)."""
        return self._connection_table

    def editor_field(self, key: str) -> QWidget:
        """The editor's widget for ``key`` of the selected layer (tests, bench)."""
        return self._editor_fields[key]

    # --- edits ----------------------------------------------------------------------------
    def _edited(self, change) -> None:
        """A field edit: the model changes, the table follows; the editor stays
        (it is what the user is typing in)."""
        change()
        row = self.table.currentRow()
        self.refresh()
        if 0 <= row < len(self.model.layers) and self.evaluation:
            entry = self.model.layers[row]
            self.editor.setTitle(f"Layer {row + 1}: {self.evaluation.rows[row].name} "
                                 f"({entry.kind})")
            if "connections" in self._editor_fields:     # its size follows out_channels
                self._show_connections(self._editor_fields["connections"], row)

    def _input_edited(self) -> None:
        self.model.set_input_shape(*(b.value() for b in self.input_boxes))
        self.refresh()

    def selected(self) -> int:
        return self.table.currentRow()

    def add_chosen(self) -> int:
        """Add the palette's chosen layer after the selected one (or at the end)."""
        item = self.palette.currentItem()
        if item is None:
            return -1
        return self.add_layer(item.text())

    def add_layer(self, label: str) -> int:
        at = self.selected()
        index = self.model.add(label, at + 1 if at >= 0 else None)
        self.refresh(select=index)
        return index

    def remove_selected(self) -> None:
        row = self.selected()
        if not (0 <= row < len(self.model.layers)):
            return
        self.model.remove(row)
        self.refresh(select=min(row, len(self.model.layers) - 1))
        self.table.setFocus()

    def move_selected(self, delta: int) -> None:
        row = self.selected()
        if 0 <= row < len(self.model.layers):
            self.refresh(select=self.model.move(row, delta))

    def _dragged(self, source: int, target: int) -> None:
        self.refresh(select=self.model.move_to(source, target))

    def undo(self) -> None:
        """Ctrl+Z: back to before the last edit (add, remove, move, a field, the input)."""
        if self.model.undo():
            self._after_undo()

    def redo(self) -> None:
        """Ctrl+Shift+Z: the edit undone last, again."""
        if self.model.redo():
            self._after_undo()

    def _after_undo(self) -> None:
        self._show_input()
        row = min(max(self.selected(), 0), len(self.model.layers) - 1)
        self.refresh(select=row)

    # --- files ----------------------------------------------------------------------------
    def _show_model(self) -> None:
        self._show_input()
        self.refresh(select=0 if self.model.layers else -1)

    def confirm_discard(self, action: str) -> bool:
        """Before ``action`` replaces unsaved changes: Save / Discard / Cancel.
        False means: do nothing."""
        if not self.model.dirty:
            return True
        what = self.model.path or self.model.name or "The network"
        ev = self.model.evaluate()
        # asked from another tab (closing the window), the reason must be here
        why = ("" if ev.ok else f"\n\nIt cannot be trained yet: {ev.error} "
               f"(saved, it opens again in the builder to be fixed).")
        answer = QMessageBox.question(
            self, "Unsaved network",
            f"{what} has changes that have not been saved. Save them before {action}?{why}",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        return answer != QMessageBox.StandardButton.Save or self.save()

    def confirm_close(self) -> bool:
        """Before the window closes (the main window asks every tab)."""
        return self.confirm_discard("closing")

    def _start_box_chosen(self, index: int) -> None:
        key = self.start_box.itemData(index)
        with QSignalBlocker(self.start_box):
            self.start_box.setCurrentIndex(0)
        if key is not None:
            self.start_from(key)

    def start_from(self, key: str, ask: bool = True) -> bool:
        """A bundled architecture by name ("" an empty network), unsaved."""
        if ask and not self.confirm_discard("starting another network"):
            return False
        if key:
            self.model.load(A.read(A.bundled()[key]))
        else:
            self.model.clear()
        self.compare.loaded(key)
        self.banner.clear()
        self._show_model()
        return True

    def open_dialog(self) -> None:
        from cnnviz.gui.widgets.file_dialogs import ask_open_path

        if not self.confirm_discard("opening another file"):
            return
        path = ask_open_path(self, "Open an architecture", "Architectures (*.json);;"
                                                           "All files (*)")
        if path:
            self.open_path(path, ask=False)

    def open_path(self, path, ask: bool = True) -> bool:
        """Open an architecture file; a file that cannot be used gives a
        one-line message and the current network stays."""
        if ask and not self.confirm_discard("opening another file"):
            return False
        try:
            self.model.open(path)
        except A.ArchitectureError as e:
            self.banner.show_message(f"Cannot open: {e}", "error")
            return False
        self.compare.loaded(Path(path).stem)
        self._show_model()
        if self.evaluation.ok:
            self.banner.clear()
        else:
            self.banner.show_message(f"Opened {path}; it cannot be trained until fixed: "
                                     f"{self.evaluation.error}", "warning")
        return True

    def save(self) -> bool:
        """Save to its file (asks where the first time). True when saved."""
        if not self.model.path:
            return self.save_as()
        return self.save_to(self.model.path)

    def save_as(self) -> bool:
        from cnnviz.gui.widgets.file_dialogs import ask_save_path

        path = ask_save_path(self, "Save the architecture", "Architectures (*.json)",
                             self.model.default_file_name(), ".json")
        return bool(path) and self.save_to(path)

    def save_to(self, path) -> bool:
        """Write the network, finished or not (an unfinished one opens again
        here; the message says it cannot be trained until fixed)."""
        try:
            self.model.save(path)
        except OSError as e:
            self.banner.show_message(save_failure_message(path, e), "error")
            return False
        ev = self.model.evaluate()
        if ev.ok:
            self.banner.show_message(f"Saved {path}", "info")
        else:
            self.banner.show_message(f"Saved {path}; it cannot be trained until fixed: "
                                     f"{ev.error}", "warning")
        self._show_title()
        return True

    # --- hand-offs ------------------------------------------------------------------------
    def _checked(self):
        try:
            return self.model.architecture()
        except FieldError as e:
            self.banner.show_message(f"This network cannot be built: {e}", "error")
            return None

    def _train_clicked(self) -> None:
        arch = self._checked()
        if arch is not None:
            self.train_requested.emit(arch)

    def _step_clicked(self) -> None:
        arch = self._checked()
        if arch is not None:
            self.step_requested.emit(arch)

    def show_message(self, text: str, kind: str = "error") -> None:
        self.banner.show_message(text, kind)
