"""The Layer Stepper tab: a network, one input, forward and backward one layer
at a time. The state lives in ``StepperSession``; this widget only draws it
and turns clicks and keys into session calls.

    tab = StepperTab()                       # standalone, parent=None is fine
    window.add_tab(tab, "Layer Stepper")
    tab.set_image(rgb_or_grey_float, "camera")   # the Kernel Lab's image
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QEvent, QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QKeySequence, QShortcut
from PyQt6.QtWidgets import (QAbstractSpinBox, QDoubleSpinBox, QHBoxLayout, QLabel,
                             QMessageBox, QPushButton, QSpinBox, QSplitter, QTabWidget,
                             QVBoxLayout, QWidget)

from cnnviz.engine.architecture import bundled
from cnnviz.engine.lessons import LESSONS
from cnnviz.engine.models import INPUT_SHAPE
from cnnviz.engine.summary import summary
from cnnviz.gui.stepper.class_names import ClassSpin, network_class_names
from cnnviz.gui.stepper.colour_input import ColourPicture, channel_titles
from cnnviz.gui.stepper.inputs import (COLOUR, TRAINED_KEY, NotYet, StepperInputError,
                                       architecture_model, builtin_model, builtin_titles,
                                       check_model, conversion_text, fit_digit, load_model,
                                       shape_text, to_model_input)
from cnnviz.gui.stepper.network_box import ARCH_PREFIX, TRAINING_TIP, NetworkBox
from cnnviz.gui.stepper.norm_views import ModeSwitch, NormTab
from cnnviz.gui.stepper.probs_chart import ProbabilityChart
from cnnviz.gui.stepper.session import BACKWARD, FORWARD, StepperSession
from cnnviz.gui.stepper.settle import register_page, settle_layout
from cnnviz.gui.stepper.side_tabs import (BackwardTab, CheckTab, EditTab, SaliencyTab,
                                          WeightsTab)
from cnnviz.gui.stepper.strip import ArchitectureStrip
from cnnviz.gui.stepper.tensor_panel import TensorPanel
from cnnviz.gui.stepper.views import io_specs
from cnnviz.gui.stepper.warmup import IdleWarmup, network_pieces
from cnnviz.gui.widgets.banner import Banner

pg.setConfigOptions(imageAxisOrder="row-major")

RETRY_MS, RETRY_FOR_MS = 200, 30_000    # asking the Training tab again while it is busy
DEFAULT_LR = 0.01
CODE_KEY = "code"           # the Network box key of a network given by use_model

# the keys the tab answers, for F1 (the main window lists them on this tab)
SHORTCUTS = [
    ("Right", "Forward one layer"),
    ("Left", "Backward one layer"),
    ("U", "Apply the SGD update (learning rate: lr)"),
    ("R", "Reset to the input (the weights are kept)"),
    ("Ctrl+E", "Export this tab as PNG"),
    ("Ctrl+Tab", "Next tab"),
    ("Click a block of the strip", "Step to that layer (Summary table: every layer's numbers)"),
    ("Hover a map", "Its value in the status line below the panels"),
    ("Double-click a table cell", "Edit it (lessons); the lesson re-runs"),
    ("Right-click a map", "Export that map as PNG or .npy, reset its zoom"),
    ("F1", "This list"),
]
STEP_KEYS = {Qt.Key.Key_Right: "forward", Qt.Key.Key_Left: "back", Qt.Key.Key_U: "update",
             Qt.Key.Key_R: "reset"}


class _StepKeys(QObject):
    """Left/Right/U/R step even while a spin box has the focus (a spin box
    would take them as cursor moves or typed letters)."""

    def __init__(self, tab: "StepperTab"):
        super().__init__(tab)
        self.tab = tab

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride) and (
                event.key() in STEP_KEYS
                and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):
            if kind == QEvent.Type.KeyPress:
                self.tab.press_step_key(event.key())
            event.accept()
            return True
        return False


class StepperTab(QWidget):
    SHORTCUTS = SHORTCUTS
    title_changed = pyqtSignal(str)        # what the window title should say on this tab

    def __init__(self, parent=None, mnist_dir=None):
        super().__init__(parent)
        self.mnist_dir = mnist_dir
        self.session: StepperSession | None = None
        self.source = ""                  # what the network is ("LeNet-5", a path, a lesson)
        self.input_name = ""
        self.true_label: int | None = None
        self._mnist = None
        self._titles, self._trained_problem = builtin_titles()
        self._current_key = TRAINED_KEY
        self._training_source = None      # set_training_source(): the Training tab's model
        self._training_retry = QTimer(self, singleShot=True, interval=RETRY_MS)
        self._training_retry.timeout.connect(lambda: self.take_training_model(retrying=True))
        self._retry_until = 0.0
        self._mnist_problem = ""
        self.lesson = None
        self._own_tooltips = {}
        self._model_lr = DEFAULT_LR       # the lr last used with a model (lessons bring theirs)
        self._image_note = ""             # the picture conversion, said again on a target change
        self._picture = None              # (pixels, name) of the picture fed, for another network
        self._input_note = ""             # how the digit was made to fit the network, if it was
        self.warmup = IdleWarmup(self)     # builds what steps will show, while idle
        self._build()
        self._connect()
        # the trained LeNet-5 by default, so a digit is recognised as it should be
        self.choose_network("lenet5" if self._trained_problem else TRAINED_KEY)
        if self._trained_problem:
            self.banner.show_message(f"{self._trained_problem}; the untrained LeNet-5 is "
                                     f"shown instead.", "warning")

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.setSpacing(4)

        top = QHBoxLayout()
        top.addWidget(QLabel("Network"))
        self.network_box = NetworkBox()
        self._architectures = bundled()
        self.network_box.fill(self._titles, self._trained_problem, LESSONS, self._architectures)
        top.addWidget(self.network_box)
        top.addSpacing(8)
        top.addWidget(QLabel("MNIST test #"))
        self.digit_spin = QSpinBox(minimum=0, maximum=9999)
        self.digit_spin.setToolTip("Which test digit to feed (its label becomes the target)")
        top.addWidget(self.digit_spin)
        self.browse_button = QPushButton("Browse...")
        self.browse_button.setToolTip("Pick a digit in the MNIST browser")
        top.addWidget(self.browse_button)
        self.image_button = QPushButton("Image...")
        self.image_button.setToolTip("Feed any picture, converted to the network's input "
                                     "(its size; grey or colour)")
        top.addWidget(self.image_button)
        self.lab_button = QPushButton("From Kernel Lab")
        self.lab_button.setToolTip("Feed the Kernel Lab's current picture, converted to the "
                                   "network's input (its size; grey or colour)")
        self.lab_button.setVisible(False)          # until set_image_source() gives a source
        top.addWidget(self.lab_button)
        self._image_source = None
        top.addWidget(QLabel("Target"))
        self.target_spin = ClassSpin()
        self.target_spin.setToolTip("The class the loss is computed against (default: the "
                                    "digit's true label)")
        top.addWidget(self.target_spin)
        top.addWidget(QLabel("lr"))
        self.lr_spin = QDoubleSpinBox(decimals=4, minimum=0.0001, maximum=10.0, singleStep=0.01,
                                      value=DEFAULT_LR)
        self.lr_spin.setToolTip("Learning rate of the SGD update (U)")
        top.addWidget(self.lr_spin)
        top.addStretch(1)
        self.export_button = QPushButton("Export view...")
        self.export_button.setToolTip("Save this whole tab as a PNG image")
        top.addWidget(self.export_button)
        outer.addLayout(top)

        steps = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for key, label, tip in (
                ("back", "\u25c0 Backward one", "Back-propagate through one layer (Left)"),
                ("forward", "Forward one \u25b6", "Run the next layer (Right)"),
                ("run_back", "\u25c0\u25c0 Run backward", "Back-propagate to the input"),
                ("run_forward", "Run forward \u25b6\u25b6", "Run every remaining layer"),
                ("update", "Apply update (U)", "One SGD step with the learning rate (U)"),
                ("reset", "Reset (R)", "Back to the input; weights are kept (R)"),
                ("reset_weights", "Reset weights", "Restore the weights the network was "
                                                   "loaded with")):
            button = QPushButton(label)
            button.setProperty("base_tip", tip)
            button.setToolTip(tip)
            steps.addWidget(button)
            self.buttons[key] = button
        self.mode_switch = ModeSwitch()
        steps.addWidget(self.mode_switch)
        steps.addStretch(1)
        # "LeNet-5: forward, at" and the layer's name in bold: two plain-text
        # labels, not one rich-text label, which lays its text out during its
        # first paint after a change and asks for a repaint from inside it (a
        # second paint of the window after every step)
        self.where = QLabel(textFormat=Qt.TextFormat.PlainText)
        self.where.setStyleSheet("color: #333;")
        self.where_layer = QLabel(textFormat=Qt.TextFormat.PlainText)
        self.where_layer.setStyleSheet("color: #333; font-weight: bold;")
        steps.addWidget(self.where)
        steps.addWidget(self.where_layer)
        outer.addLayout(steps)

        self.banner = Banner()
        self._loader = None                # decodes opened images off the GUI thread, when first used
        self._loading_name = ""
        outer.addWidget(self.banner)
        self.strip = ArchitectureStrip()
        outer.addWidget(self.strip)

        body = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.input_picture = ColourPicture()
        left_layout.addWidget(self.input_picture)
        self.input_panel = TensorPanel("input seen by the model", max_columns=1)
        self.input_panel.setMinimumHeight(200)
        left_layout.addWidget(self.input_panel, 3)
        self.chart = ProbabilityChart()
        left_layout.addWidget(self.chart, 2)
        self.lesson_text = QLabel()
        self.lesson_text.setWordWrap(True)
        left_layout.addWidget(self.lesson_text)
        left.setMinimumWidth(240)
        body.addWidget(left)

        middle = QSplitter(Qt.Orientation.Vertical)
        self.panel_a = TensorPanel("layer input", max_columns=4)
        self.panel_b = TensorPanel("layer output", max_columns=4)
        middle.addWidget(self.panel_a)
        middle.addWidget(self.panel_b)
        body.addWidget(middle)

        self.side = QTabWidget()
        self.weights_tab = WeightsTab()
        self.backward_tab = BackwardTab()
        self.edit_tab = EditTab()
        self.saliency_tab = SaliencyTab()
        self.check_tab = CheckTab()
        self.norm_tab = NormTab()
        for widget, title in ((self.weights_tab, "Weights"),
                              (self.backward_tab, "Backward steps"),
                              (self.edit_tab, "Edit kernel"),
                              (self.saliency_tab, "Saliency"),
                              (self.check_tab, "Gradient check"),
                              (self.norm_tab, "BN / Dropout")):
            self.side.addTab(widget, title)
            register_page(widget)
        body.addWidget(self.side)
        body.setStretchFactor(0, 0)
        body.setStretchFactor(1, 3)
        body.setStretchFactor(2, 3)
        body.setSizes([270, 540, 590])
        outer.addWidget(body, 1)

        self.status = QLabel(" ")
        self.status.setStyleSheet("color: #444;")
        outer.addWidget(self.status)

    def _connect(self) -> None:
        b = self.buttons
        b["forward"].clicked.connect(lambda: self._act(lambda s: s.step_forward()))
        b["back"].clicked.connect(lambda: self._act(lambda s: s.step_backward()))
        b["run_forward"].clicked.connect(lambda: self._act(lambda s: s.run_forward()))
        b["run_back"].clicked.connect(lambda: self._act(lambda s: s.run_backward()))
        b["update"].clicked.connect(self.apply_update)
        b["reset"].clicked.connect(lambda: self._act(lambda s: s.reset()))
        b["reset_weights"].clicked.connect(self.reset_weights)
        for key in STEP_KEYS:
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda k=key: self.press_step_key(k))
        self._step_keys = _StepKeys(self)
        for spin in self.findChildren(QAbstractSpinBox):
            spin.installEventFilter(self._step_keys)
        self.network_box.activated.connect(self._on_network_chosen)
        self.network_box.about_to_pop_up.connect(self._update_training_item)
        self.digit_spin.valueChanged.connect(self.choose_digit)
        self.browse_button.clicked.connect(self._browse_mnist)
        self.image_button.clicked.connect(self._open_image_dialog)
        self.lab_button.clicked.connect(self._use_source_image)
        self.target_spin.valueChanged.connect(self._on_target)
        self.lr_spin.valueChanged.connect(self._on_lr)
        self.export_button.clicked.connect(self._export_view_dialog)
        self.strip.layer_clicked.connect(lambda i: self._act(lambda s: s.goto(i)))
        self.side.currentChanged.connect(lambda _: self._refresh_side())
        for panel in (self.input_panel, self.panel_a, self.panel_b):
            panel.hover_text.connect(self.status.setText)
            panel.cell_edited.connect(lambda m, r, c, v, p=panel: self._on_cell_edited(p, m, r, c, v))
        self.weights_tab.cell_edited.connect(self._on_param_cell_edited)
        self.weights_tab.hover_text.connect(self.status.setText)
        self.backward_tab.hover_text.connect(self.status.setText)
        self.edit_tab.kernel_edited.connect(self._on_kernel_edited)
        self.edit_tab.reset_requested.connect(self.reset_weights)
        self.backward_tab.selection_changed.connect(self._refresh_side)
        self.saliency_tab.class_changed.connect(self._refresh_side)
        self.check_tab.run_requested.connect(self._run_gradcheck)
        self.norm_tab.hover_text.connect(self.status.setText)
        self.norm_tab.new_masks.connect(lambda: self._act(lambda s: s.new_dropout_masks()))
        self.mode_switch.toggled.connect(
            lambda on: self._act(lambda s: s.set_training(on)))

    def press_step_key(self, key) -> None:
        button = self.buttons[STEP_KEYS[key]]
        if button.isEnabled():
            button.click()

    def _on_lr(self, value: float) -> None:
        if self.session is not None:
            self.session.lr = float(value)
        if self.lesson is None:
            self._model_lr = float(value)

    # ------------------------------------------------------------------ choosing
    def choose_network(self, key: str) -> bool:
        """A built-in model ("trained", "lenet5", "small") or a lesson key ("ex1" ...);
        False (and a message in the banner) when it cannot be used."""
        if key.startswith(ARCH_PREFIX):
            return self.load_architecture_file(self._architectures[key[len(ARCH_PREFIX):]],
                                               key=key)
        if key in LESSONS:
            lesson = LESSONS[key]
            self._start(StepperSession(lesson.build(), lesson.input_array(),
                                       delta=lesson.delta_array(), lr=lesson.lr,
                                       name=lesson.title), lesson.title, lesson=lesson)
        else:
            try:
                model = builtin_model(key)
            except StepperInputError as e:
                self._select_box(self._current_key)
                self.banner.show_message(f"Cannot use {self._titles[key]}: {e}", "error")
                return False
            self._start_model(model, self._titles[key])
        self._current_key = key
        self._select_box(key)
        return True

    def load_architecture_file(self, path, key: str | None = None) -> bool:
        """A fresh model of an architecture file (seed 0); False (and a message
        in the banner) when it cannot be stepped."""
        try:
            model, shape, title = architecture_model(path)
        except StepperInputError as e:
            self._select_box(self._current_key)
            self.banner.show_message(f"Cannot use this architecture: {e}", "error")
            return False
        self._start_model(model, title, shape)
        if key is not None:
            self._current_key = key
            self._select_box(key)
        else:
            self._current_key = str(path)
            self._show_file_in_box(Path(path))
        return True

    def load_model_file(self, path) -> bool:
        """False (and a message in the banner) when the file cannot be used."""
        try:
            model, shape = load_model(path)
        except StepperInputError as e:
            self._select_box(self._current_key)
            self.banner.show_message(f"Cannot use this model: {e}", "error")
            return False
        self._start_model(model, Path(path).name, shape)
        self._source_is_file = True          # "digits.v2.npz" -> "digits.v2" in export names
        self._current_key = str(path)
        self._show_file_in_box(Path(path))
        notes = getattr(model, "load_notes", [])     # converted or NaN weights: said, not silent
        if notes:
            self.banner.show_message(" ".join(notes), "warning")
        return True

    def _show_file_in_box(self, path: Path) -> None:
        """The loaded file by name in the Network box (one entry, above
        "Model file...", which stays the way to open another)."""
        self.network_box.show_entry(path.name, ("loaded", str(path)), str(path))

    # ------------------------------------------------------------------ the Training tab's model
    def set_training_source(self, take, why_not) -> None:
        """Offer "Model from Training" in the Network box. ``take() -> (model,
        title) or a sentence`` gives a copy of the Training tab's current weights
        (or why there is none); ``why_not() -> sentence or None`` says, before
        the list opens, whether there is one."""
        self._training_source = (take, why_not)
        self.network_box.add_training_item(len(self._titles))
        self._update_training_item()

    def _update_training_item(self) -> None:
        row = self.network_box.training_row()
        if row < 0:
            return
        why = self._training_source[1]()
        self.network_box.set_item_enabled(row, why is None, TRAINING_TIP if why is None else why)

    def take_training_model(self, retrying: bool = False) -> bool:
        """Step through a copy of the Training tab's model as it is now (what
        "Model from Training" and the Training tab's "Open in Layer Stepper"
        do); False, with the reason in the banner, when there is none. While
        the Training tab is busy for a moment the tab says so and asks again
        every 200 ms (for 30 s at most); choosing another network cancels that."""
        if not retrying:
            self._retry_until = time.monotonic() + RETRY_FOR_MS / 1000
        self._training_retry.stop()
        got = self._training_source[0]() if self._training_source else (
            "No Training tab to take a model from.")
        if isinstance(got, NotYet) and time.monotonic() < self._retry_until:
            self.banner.show_message(f"{got} Waiting for it...", "info")
            self._training_retry.start()
            return False
        if isinstance(got, str):
            self._select_box(self._current_key)
            self.banner.show_message(got, "warning")
            return False
        return self.use_training_model(*got)

    def use_training_model(self, model, title: str) -> bool:
        """``use_model`` for a copy of the Training tab's model: the Network box
        then shows "Model from Training", the title says which moment it is."""
        if not self._use_model(model, title):
            self._select_box(self._current_key)
            return False
        self._current_key = "training"
        if self.network_box.training_row() >= 0:
            self.network_box.setCurrentIndex(self.network_box.training_row())
        return True

    def use_model(self, model, name: str, input_shape=None) -> bool:
        """Any Sequential built in code (the builder's), stepped on a grey or
        colour picture of ``input_shape`` ((C, H, W) or (1, C, H, W); found
        from the layers when not given); refused with a message unless it ends
        in class scores."""
        if not self._use_model(model, name, input_shape):
            return False
        self._code_model = (model, name, tuple(self.session.x.shape), model.state_dict())
        self._current_key = CODE_KEY
        self.network_box.show_entry(name, ("code", CODE_KEY),
                                    f"{name}: a network given by another tab")
        return True

    def _use_model(self, model, name: str, input_shape=None) -> bool:
        try:
            shape = check_model(model, name, input_shape)
        except StepperInputError as e:
            self.banner.show_message(f"Cannot use this model: {e}", "error")
            return False
        self._start_model(model, name, shape)
        return True

    def _use_code_model_again(self) -> None:
        """The network last given by use_model, chosen again in the box: its weights as given."""
        model, name, shape, state = self._code_model
        model.load_state_dict(state)
        self._start_model(model, name, shape)
        self._current_key = CODE_KEY

    def _start_model(self, model, name: str, shape=INPUT_SHAPE) -> None:
        """Keep the current input and target when the new network takes the
        same shape; else feed the picture again, converted (a colour network
        with only a digit so far takes the Kernel Lab's photo when there is
        one), or the chosen MNIST digit made to fit."""
        old = self.session
        shape = tuple(shape)
        if old is not None and old.delta is None and tuple(old.x.shape) == shape:
            x, label = old.x, old.label
        else:
            if self._picture is None and shape[1] == COLOUR and self._image_source is not None:
                self._picture = self._image_source()
            x, label = self._fresh_input(shape)
        self._start(StepperSession(model, x, label=label, lr=self._model_lr, name=name), name)

    def _fresh_input(self, shape) -> tuple[np.ndarray, int]:
        """The picture fed (converted to ``shape``), else the chosen MNIST digit fitted to it."""
        if self._picture is not None:
            pixels, name = self._picture
            self.input_name = name
            self._image_note = (f"{name} ({'x'.join(str(d) for d in np.shape(pixels))}) "
                                f"converted to the model's input: "
                                f"{conversion_text(np.shape(pixels), shape)} (shown on the "
                                f"left). No true label: the target is")
            return to_model_input(pixels, shape), self.target_spin.value()
        try:
            x, self.true_label = self._mnist_digit(self.digit_spin.value())
            self.input_name = f"MNIST test #{self.digit_spin.value()}"
            x, how = fit_digit(x, shape)
            self._input_note = (f"{self.input_name} {how} for this network's "
                                f"{shape_text(shape)} input." if how else "")
        except (OSError, ValueError) as e:
            x, self.true_label = np.zeros(shape, np.float32), 0
            self.input_name = "blank (MNIST missing)"
            self._mnist_problem = f"MNIST could not be read, a blank image is used: {e}"
        return x, self.true_label

    def _start(self, session: StepperSession, source: str, lesson=None) -> None:
        self.session, self.source, self.lesson = session, source, lesson
        self._source_is_file = False
        self.banner.clear()
        if lesson is not None:
            self._image_note = self._input_note = ""
        if self._image_note:
            self._show_image_note()
        elif self._input_note:
            self.banner.show_message(self._input_note, "info")
        if self._mnist_problem:
            self.banner.show_message(self._mnist_problem, "warning")
            self._mnist_problem = ""
        try:
            table = summary(session.model, session.x.shape)
            self.strip.set_summary(table, session.model.layers)
            if lesson is None:            # the target among this network's classes, named
                classes = table.rows[-1].output_shape[1]
                self._show_classes(session.model, classes)
                session.label = min(session.label, classes - 1)
        except ValueError as e:
            self.banner.show_message(str(e), "error")
        # a new network starts clean: Numbers as this kind starts, filter 0,
        # no gradient-check result of another network
        for panel in (self.input_panel, self.panel_a, self.panel_b):
            panel.reset_numbers(lesson is not None)
        self.weights_tab.set_prefer_numbers(lesson is not None)
        self.backward_tab.set_prefer_numbers(lesson is not None)
        self.backward_tab.reset_selection()
        for w in (self.digit_spin, self.browse_button, self.image_button, self.lab_button,
                  self.target_spin):
            own = self._own_tooltips.setdefault(w, w.toolTip())
            w.setEnabled(lesson is None)
            w.setToolTip(own if lesson is None else
                         "A lesson brings its own input and upstream δ; edit the cells instead")
        self.lr_spin.blockSignals(True)
        self.lr_spin.setValue(session.lr)
        self.lr_spin.blockSignals(False)
        if lesson is None:
            self.target_spin.blockSignals(True)
            self.target_spin.setValue(session.label)
            self.target_spin.blockSignals(False)
        self.lesson_text.setText(lesson.description if lesson else "")
        self.chart.plot.setVisible(lesson is None)      # a lesson has no class scores
        reset = self.buttons["reset_weights"]
        reset.setText("Reset lesson" if lesson else "Reset weights")
        reset.setProperty("base_tip", "Restore the lesson's input, weights and δ" if lesson
                          else "Restore the weights the network was loaded with")
        self.edit_tab.set_session(session)
        # the BatchNorm / Dropout tab only for a network that has one (the tabs fit then)
        self.side.setTabVisible(self.side.indexOf(self.norm_tab), session.has_mode)
        self.refresh()
        self.warmup.start(network_pieces(session, (self.panel_a, self.panel_b),
                                         self.weights_tab))

    def _show_classes(self, model, classes: int) -> None:
        """The network's class names in the Target box, the chart and the Saliency tab."""
        fed_digit = self._mnist is not None and self._picture is None
        data_names = self._mnist.class_names if fed_digit else ()
        names, problem = network_class_names(model, classes, data_names)
        self.target_spin.set_names(names)
        self.chart.set_class_names(names)
        self.saliency_tab.set_class_names(names)
        if problem:
            self.banner.show_message(f"{self.source}: {problem}.", "warning")

    def _select_box(self, key: str) -> None:
        self.network_box.select(key)

    def _on_network_chosen(self, index: int) -> None:
        self._training_retry.stop()            # another choice wins over a pending one
        kind, key = self.network_box.itemData(index)
        if kind == "training":
            self.take_training_model()         # again: the newest weights
            return
        if kind == "code":
            if key != self._current_key:
                self._use_code_model_again()
            return
        if kind == "loaded":
            if key != self._current_key:
                (self.load_architecture_file if key.lower().endswith(".json")
                 else self.load_model_file)(key)
            return
        if kind in ("file", "arch_file"):
            from cnnviz.gui.widgets.file_dialogs import ask_open_path

            path = (ask_open_path(self, "Open cnnviz model", "cnnviz model or checkpoint "
                                  "(*.npz);;All files (*)") if kind == "file" else
                    ask_open_path(self, "Open architecture file", "cnnviz architecture "
                                  "(*.json);;All files (*)"))
            if not path:
                self._select_box(self._current_key)
            elif kind == "file":
                self.load_model_file(path)
            else:
                self.load_architecture_file(path)
            return
        self.choose_network(key)

    def _mnist_digit(self, index: int) -> tuple[np.ndarray, int]:
        if self._mnist is None:
            from cnnviz.data.mnist import load_mnist

            self._mnist = load_mnist(self.mnist_dir, split="test")
        image = self._mnist.images[index]
        return (image[None, None] / np.float32(255)).astype(np.float32), int(self._mnist.labels[index])

    def choose_digit(self, index: int) -> None:
        if self.session is None or self.session.delta is not None:
            return
        try:
            x, label = self._mnist_digit(index)
        except (OSError, ValueError) as e:
            self.banner.show_message(f"MNIST could not be read: {e}", "error")
            return
        self.input_name = f"MNIST test #{index}"
        self._picture = None
        x, how = fit_digit(x, self.session.x.shape)
        self._input_note = (f"{self.input_name} {how} for this network's "
                            f"{shape_text(self.session.x.shape)} input." if how else "")
        self._set_input(x, label)
        if self._input_note:
            self.banner.show_message(self._input_note, "info")

    def _set_input(self, x: np.ndarray, label: int | None) -> None:
        # what the banner said was about the previous input
        self.banner.clear()
        self._image_note = ""
        self.true_label = label
        if label is not None:
            self.target_spin.blockSignals(True)
            self.target_spin.setValue(label)
            self.target_spin.blockSignals(False)
        self.session.set_input(x, self.target_spin.value())
        self.refresh()

    def set_image_source(self, source) -> None:
        """``source() -> (pixels, name) or None``: the Kernel Lab's current
        picture, fed by the "From Kernel Lab" button."""
        self._image_source = source
        self.lab_button.setVisible(source is not None)

    def _use_source_image(self) -> None:
        current = self._image_source() if self._image_source is not None else None
        if current is None:
            self.banner.show_message("The Kernel Lab has no picture yet: open one there first.",
                                     "warning")
            return
        self.set_image(*current)

    def set_image(self, image: np.ndarray, name: str = "image") -> bool:
        """The Kernel Lab's current picture (float (H, W) or (H, W, 3) in [0, 1]),
        converted to the network's input (its size, grey or colour); the
        conversion is shown and said."""
        if self.session is None or self.session.delta is not None:
            self.banner.show_message("A lesson has its own input: choose LeNet-5 or a model "
                                     "file to feed a picture.", "warning")
            return False
        target = self.session.x.shape
        try:
            x = to_model_input(image, target)
        except StepperInputError as e:
            self.banner.show_message(f"Cannot use {name}: {e}", "error")
            return False
        shape = "x".join(str(d) for d in np.shape(image))
        self.input_name = name
        self._picture = (image, name)
        self._input_note = ""
        self._set_input(x, None)
        self._image_note = (f"{name} ({shape}) converted to the model's input: "
                            f"{conversion_text(np.shape(image), target)} (shown on the left). "
                            f"No true label: the target is")
        self._show_image_note()
        return True

    def _show_image_note(self) -> None:
        self.banner.show_message(f"{self._image_note} {self.target_spin.value()}.", "info")

    def _browse_mnist(self) -> None:
        from cnnviz.gui.widgets.mnist_browser import MnistDialog

        dialog = MnistDialog(self, self.mnist_dir)
        dialog.browser.split_box.setCurrentText("test")
        dialog.browser.index_spin.setValue(self.digit_spin.value())
        if dialog.exec():
            index = dialog.browser.index_spin.value()
            if index == self.digit_spin.value():
                self.choose_digit(index)       # no valueChanged: apply it anyway
            else:
                self.digit_spin.setValue(index)

    def _open_image_dialog(self) -> None:
        from cnnviz.gui.widgets.file_dialogs import IMAGE_FILTER, ask_open_path

        path = ask_open_path(self, "Open image", IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_image(self, path) -> None:
        """Decode ``path`` on the loader thread (a big photo takes seconds; the
        window stays live), then feed it; a newer request replaces this one."""
        from cnnviz.data.images import read_image
        from cnnviz.gui.kernel_lab.image_loader import ImageLoader

        if self._loader is None:
            self._loader = ImageLoader(self)
            self._loader.loaded.connect(self._on_image_loaded)
            self._loader.failed.connect(self._on_image_failed)
        name = Path(path).name
        self._loading_name = name
        self._loader.submit(lambda: read_image(path, downscale=True))
        self.banner.show_message(f"Loading {name}...", "info")

    def _on_image_loaded(self, _ticket, loaded) -> None:
        if self.set_image(loaded.pixels, self._loading_name) and loaded.warnings:
            self.banner.show_message(" ".join(loaded.warnings), "warning")

    def _on_image_failed(self, _ticket, message: str) -> None:
        self.banner.show_message(f"Cannot open {self._loading_name}: {message}", "error")

    def shutdown(self, timeout: float = 1.0) -> bool:
        """Stop the image loader (its running decode finishes first); True: no thread left."""
        self.warmup.stop()
        if self._loader is not None:
            self._loader.stop()
        return True

    def _on_target(self, value: int) -> None:
        if self.session is not None and self.session.delta is None:
            self.session.set_label(value)
            if self._image_note:
                self._show_image_note()
            self.refresh()

    # ------------------------------------------------------------------ actions
    def _act(self, action) -> None:
        if self.session is None:
            return
        action(self.session)
        self.refresh()

    def reset_weights(self) -> None:
        """Back to the loaded weights; a lesson also gets its input and δ back."""
        if self.lesson is not None:
            self.choose_network(self.lesson.key)
        else:
            self._act(lambda s: s.reset_weights())

    def apply_update(self) -> None:
        self._act(lambda s: s.apply_update(self.lr_spin.value()))
        self.side.setCurrentWidget(self.weights_tab)

    def _on_cell_edited(self, panel: TensorPanel, m: int, r: int, c: int, value: float) -> None:
        s = self.session
        edit = panel.edit_target
        if edit is None:
            return
        if edit[0] == "input":
            s.x[0, m, r, c] = value
        elif edit[0] == "delta":
            s.delta[(0, m, r, c) if s.delta.ndim == 4 else (0, c)] = value
        s.replay()
        self.refresh()

    def _on_param_cell_edited(self, name: str, index: tuple, value: float) -> None:
        self.session.set_param_cells(name, index, value)
        self.refresh()

    def _on_kernel_edited(self, name: str, index: tuple, kernel: np.ndarray) -> None:
        self.session.set_param_cells(name, index, kernel)
        self.refresh()

    def _run_gradcheck(self) -> None:
        from cnnviz.gui.stepper.gradcheck import check_layer

        s = self.session
        i = s.focus
        if i < 0 or s.model.trace[i].input is None:
            self.check_tab.show_result("Step to a layer first: the check runs the current "
                                       "layer on its current input.")
            return
        t = s.model.trace[i]
        upstream = t.grad_output if (s.phase == BACKWARD and s.back <= i) else None
        result = check_layer(t.layer, t.input, upstream)
        self.check_tab.show_result(result.text(), result)

    # ------------------------------------------------------------------ drawing
    def refresh(self) -> None:
        s = self.session
        self._update_buttons()
        self.check_tab.show_result("")       # a result is about the state it was run on
        reached = (set(range(s.done)) if s.phase == FORWARD
                   else set(range(s.back, s.num_layers)))
        self.strip.set_position(s.focus, s.phase, reached)
        name = "input" if s.focus < 0 else s.model.layers[s.focus].name
        self.where.setText(f"{self.source}: {s.phase}, at")
        self.where_layer.setText(name)
        channels = s.x.shape[1]
        name = "lesson input" if s.delta is not None else (self.input_name or "input")
        self.input_picture.show_input(s.x)
        self.input_panel.show_maps(s.x, np.ascontiguousarray(s.x[0]),
                                   channel_titles(channels, name),
                                   f"input {s.x.shape[2]}x{s.x.shape[3]}"
                                   + (f" ({name})" if channels > 1 else ""), None,
                                   editable=s.delta is not None)
        self.input_panel.edit_target = ("input",) if s.delta is not None else None
        a, b, sentence = io_specs(s)
        # an empty panel's title says what will be there (not "A" or "B")
        what = "the first layer's" if s.focus < 0 else s.model.layers[s.focus].name
        self.panel_a.title = f"{what} input: not run yet"
        self.panel_b.title = f"{what} output: not run yet"
        self._show(self.panel_a, a, "")
        self._show(self.panel_b, b, sentence if b is None else "")
        self.status.setText(sentence)
        update = s.last_update if s.update_fresh else None
        if s.delta is not None:
            self.chart.clear("Lesson: the upstream δ is given at the output (no loss)."
                             if s.forward_complete else "Lesson: run forward to the end, then "
                             "step backward from the given δ.")
        elif s.probs is not None:
            self.chart.set_result(s.probs, s.loss, s.label,
                                  None if update is None else update.loss_before)
        else:
            self.chart.clear("Loss and softmax appear when the forward pass reaches the end.")
        self._refresh_side()
        self.title_changed.emit(self.window_title())
        settle_layout(self)      # one repaint with the final geometry, not one per change

    def window_title(self) -> str:
        """What the window title says while this tab is shown."""
        s = self.session
        what = "lesson input" if s is not None and s.delta is not None else (
            self.input_name or "input")
        return f"Layer Stepper \u2014 {self.source}, {what}"

    def export_file_name(self) -> str:
        """A default name for Export view / Ctrl+E: the network, the layer, the direction."""
        from cnnviz.gui.stepper.tensor_panel import file_stem

        s = self.session
        layer = "input" if s.focus < 0 else s.model.layers[s.focus].name
        name = Path(self.source).stem if self._source_is_file else self.source
        return f"stepper_{file_stem(name)}_{layer}_{s.phase}.png"

    @staticmethod
    def _show(panel: TensorPanel, spec, message: str) -> None:
        if spec is None:
            panel.set_empty(message)
            panel.edit_target = None
            return
        panel.show_maps(spec.tensor, spec.maps, spec.titles, spec.header, spec.signed,
                        editable=spec.edit is not None, stem=spec.stem, mosaic=spec.mosaic,
                        numbers=spec.numbers)
        panel.edit_target = spec.edit

    def _update_buttons(self) -> None:
        s = self.session
        self.mode_switch.show_session(s)
        reasons = {
            "forward": s.why_not_forward(),
            "run_forward": s.why_not_forward(),
            "back": s.why_not_backward(),
            "run_back": (None if s.why_not_backward() is None or s.phase == FORWARD and
                         s.why_not_forward() is None else s.why_not_backward()),
            "update": s.why_not_update(),
            "reset": None,
            "reset_weights": None,
        }
        if s.phase == BACKWARD and s.back == 0:
            reasons["run_back"] = "The backward pass has reached the input."
        for key, button in self.buttons.items():
            why = reasons[key]
            button.setEnabled(why is None)
            base = button.property("base_tip")
            button.setToolTip(base if why is None else f"{base}. Not now: {why}")

    def _refresh_side(self) -> None:
        s = self.session
        if s is None:
            return
        current = self.side.currentWidget()
        if current is self.weights_tab:
            self.weights_tab.show_session(s)
        elif current is self.backward_tab:
            self.backward_tab.show_session(s)
        elif current is self.saliency_tab:
            self.saliency_tab.show_session(s)
        elif current is self.check_tab:
            self.check_tab.show_session(s)
        elif current is self.edit_tab:
            self.edit_tab.show_session(s)
        elif current is self.norm_tab:
            self.norm_tab.show_session(s)

    # ------------------------------------------------------------------ export
    def export_view(self, path) -> None:
        from cnnviz.gui.widgets.png_export import save_widget_png
        save_widget_png(self, path)

    def _export_view_dialog(self) -> None:
        from cnnviz.gui.widgets.file_dialogs import ask_save_path

        path = ask_save_path(self, "Export view as PNG", "PNG image (*.png)",
                             self.export_file_name(), ".png")
        if path:
            try:
                self.export_view(path)
            except OSError as e:
                QMessageBox.warning(self, "Export failed", str(e))
