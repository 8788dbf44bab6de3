"""The stepper's side tabs: weights and their gradients, the backward pass
step by step, editing a kernel in place, saliency, the gradient check.

Each tab has ``show_session(session)``; the stepper calls it only for the
visible tab, so a step never pays for views nobody looks at.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy,
                             QSpinBox, QStackedWidget, QVBoxLayout, QWidget)

from cnnviz.data.classes import numbered
from cnnviz.engine import AvgPool2D, Conv2D, MaxPool2D
from cnnviz.gui.stepper.explain import (conv_backward_im2col_steps, conv_backward_steps,
                                        conv_im2col_steps, pool_backward_steps)
from cnnviz.gui.stepper.class_names import class_text
from cnnviz.gui.stepper.layer_kernel_editor import LayerKernelEditor
from cnnviz.gui.stepper.session import BACKWARD, StepperSession
from cnnviz.gui.stepper.tensor_panel import TensorPanel, file_stem
from cnnviz.gui.stepper.views import MapSpec, param_specs

def _scroll(inner: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    # why always on: a page whose panels grow past the height (dW shown on a
    # backward step) brought its scroll bar in and took its width away, which
    # re-fitted every panel and grid on it (4 views resized, 10-18 ms a step)
    area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
    area.setWidget(inner)
    return area


class _PanelStack(QWidget):
    """TensorPanels one under the other, created on demand and reused. Each
    takes the height its content needs at the stack's width (``fit``), so the
    one scroll area around the stack reaches every map and table cell."""

    hover_text = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.layout_ = QVBoxLayout()
        self.layout_.setSpacing(6)
        outer.addLayout(self.layout_)
        outer.addStretch(1)           # spare height below the panels, not between them
        self.panels: list[TensorPanel] = []
        self.notes: list[QLabel] = []
        self.prefer_numbers = False

    def reset_numbers(self, on: bool) -> None:
        self.prefer_numbers = on
        for panel in self.panels:
            panel.reset_numbers(on)

    def panel(self, k: int, role: str = "") -> TensorPanel:
        """Panel k, for ``role`` (what it shows: "dW", a step's kind): a panel
        taking a new role starts with Numbers as the stack prefers, not as its
        previous role left it."""
        while len(self.panels) <= k:
            n = len(self.panels)
            panel = TensorPanel(f"panel {n}", fit=True)
            # at the stack's width from the start (its layout sets it only when
            # shown): a panel filled at Qt's default width built its grid for
            # that width, then again for the real one (conv1's first visit: 2 x 6 tiles)
            panel.resize(self.width(), panel.height())
            panel.hover_text.connect(self.hover_text)
            note = QLabel()
            note.setWordWrap(True)
            note.setStyleSheet("color: #555;")
            note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            self.layout_.addWidget(panel)
            self.layout_.addWidget(note)
            # hidden until asked for: panel k asked first also makes the panels
            # before it, and one never filled showed as an empty "panel 1"
            panel.hide()
            note.hide()
            self.panels.append(panel)
            self.notes.append(note)
        panel = self.panels[k]
        if getattr(panel, "role", None) != role:
            panel.role = role
            panel.reset_numbers(self.prefer_numbers)
        panel.prefer_numbers = self.prefer_numbers
        panel.show()
        self.notes[k].show()
        return panel

    def hide_from(self, k: int) -> None:
        for panel, note in zip(self.panels[k:], self.notes[k:]):
            panel.hide()
            note.hide()


class WeightsTab(QWidget):
    """Kernels (or the matrix), dW, bias, db and the last update of the focus layer.

    Why one page of panels per layer (and parameter shapes): stepping from
    conv1 to fc1 and back made one shared stack of panels change roles,
    shapes, grids and heights at every step, and a relayout and repaint of
    the whole side tab with them (10-20 ms of GUI-thread CPU a step). Each
    layer's page is built and fitted once; a step shows it and refills
    only what changed (forward steps change no weight: nothing is redrawn)."""

    cell_edited = pyqtSignal(str, tuple, float)     # parameter name, index, value
    hover_text = pyqtSignal(str)
    ORDER = ("weight", "dW", "bias", "db", "update")

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.pages = QStackedWidget()
        layout.addWidget(self.pages, 1)
        self._pages: dict[tuple, _PanelStack] = {}
        self._prefer_numbers = False
        self.stack = self._page(())          # no layer: an empty page
        self.specs: dict[str, MapSpec] = {}

    def _page(self, key: tuple) -> _PanelStack:
        stack = self._pages.get(key)
        if stack is None:
            stack = self._pages[key] = _PanelStack()
            stack.prefer_numbers = self._prefer_numbers
            stack.hover_text.connect(self.hover_text)
            current = self.pages.currentWidget()
            self.pages.addWidget(_scroll(stack))
            if current is not None:     # every page is as wide as the shown one (see panel())
                stack.resize(current.widget().width(), stack.height())
        return stack

    @staticmethod
    def _key(layer, specs) -> tuple:
        """A page per layer and parameter shapes (a layer edited to other shapes gets another)."""
        return () if layer is None or not specs else (
            layer.name, tuple((k, np.shape(p)) for k, p in layer.params.items()))

    def prepare_layer(self, s: StepperSession, i: int, grads: bool = False) -> bool:
        """Build layer i's page ahead of its first visit (while the learner
        looks at something else): its panels, grids and tables at this tab's
        width, filled with its weights (a forward visit's) or, with ``grads``,
        zero gradients of their shapes (a backward visit's), so a visit only
        refills them. Panels that exist are left as they are. True if any was built."""
        specs = {k: v for k, v in param_specs(s, focus=i, preview=True).items()
                 if isinstance(v, MapSpec) and (k in ("dW", "db")) == grads}
        key = self._key(s.model.layers[i], specs)
        if not key or not self.isVisible():
            return False
        stack = self._page(key)
        todo = {k: v for k, v in specs.items() if self.ORDER.index(k) >= len(stack.panels)
                or stack.panels[self.ORDER.index(k)].rendered is None}
        self._fill(stack, todo, hide_others=False)
        return bool(todo)

    def set_prefer_numbers(self, on: bool) -> None:
        """A new network: the pages of the old one go (their layers are gone)."""
        self._prefer_numbers = on
        for key, stack in list(self._pages.items()):
            if key:
                scroll = stack.parentWidget().parentWidget()
                self.pages.removeWidget(scroll)
                scroll.deleteLater()
                del self._pages[key]
        # the empty page until show_session picks this network's: the stack
        # shown may have been one of the pages just deleted (another side tab
        # was showing at the switch, so no show_session moved it)
        self.stack = self._pages[()]
        self.pages.setCurrentWidget(self.stack.parentWidget().parentWidget())
        self.specs = {}
        self.stack.reset_numbers(on)

    def panel_for(self, key: str) -> TensorPanel | None:
        if key not in self.specs:
            return None
        return self.stack.panels[self.ORDER.index(key)]

    def show_session(self, s: StepperSession) -> None:
        specs = param_specs(s)
        self.specs = {k: v for k, v in specs.items() if isinstance(v, MapSpec)}
        self.message.setText("  ".join(v for v in specs.values() if isinstance(v, str)))
        layer = s.model.layers[s.focus] if s.focus >= 0 else None
        self.stack = stack = self._page(self._key(layer, self.specs))
        self._fill(stack, self.specs)
        page = stack.parentWidget().parentWidget()          # stack -> viewport -> scroll area
        if self.pages.currentWidget() is not page:
            self.pages.setCurrentWidget(page)

    def _fill(self, stack: _PanelStack, specs: dict, hide_others: bool = True) -> None:
        # each parameter keeps its own panel (index in ORDER), so dW appearing
        # after a backward step does not shift bias into another panel
        for k, name in enumerate(self.ORDER):
            spec = specs.get(name)
            if spec is None:
                if hide_others and k < len(stack.panels):
                    stack.panels[k].hide()
                    stack.notes[k].hide()
                continue
            panel = stack.panel(k, name)
            panel.title = spec.header.split(":")[0]
            panel.show_maps(spec.tensor, spec.maps, spec.titles, spec.header, spec.signed,
                            editable=spec.edit is not None, shared_scale=name != "update",
                            stem=spec.stem, mosaic=spec.mosaic, numbers=spec.numbers)
            if getattr(panel, "edit_spec", None) is not spec:
                try:
                    panel.cell_edited.disconnect()
                except TypeError:
                    pass
                if spec.edit is not None:
                    panel.cell_edited.connect(
                        lambda m, r, c, v, sp=spec: self._edited(sp, m, r, c, v))
                panel.edit_spec = spec
            if stack.notes[k].text():
                stack.notes[k].setText("")

    def _edited(self, spec: MapSpec, m: int, r: int, c: int, v: float) -> None:
        name = spec.edit[1]
        t = spec.tensor
        if t.ndim == 4:
            o, ch = divmod(m, t.shape[1])
            index = (o, ch, r, c)
        elif t.ndim == 1:
            index = (r * spec.maps.shape[-1] + c,)       # see views.vector_rows
        else:
            index = (r, c)
        self.cell_edited.emit(name, index, v)


class BackwardTab(QWidget):
    """For a conv layer: dx and dW built step by step for the chosen filter and
    channel, and the im2col form; for pooling: the routing of δ."""

    selection_changed = pyqtSignal()
    hover_text = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Filter (output channel)"))
        self.filter_spin = QSpinBox()
        row.addWidget(self.filter_spin)
        row.addWidget(QLabel("Input channel"))
        self.channel_spin = QSpinBox()
        row.addWidget(self.channel_spin)
        row.addStretch(1)
        layout.addLayout(row)
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.stack = _PanelStack()
        self.stack.hover_text.connect(self.hover_text)
        layout.addWidget(_scroll(self.stack), 1)
        self.filter_spin.valueChanged.connect(lambda _: self.selection_changed.emit())
        self.channel_spin.valueChanged.connect(lambda _: self.selection_changed.emit())
        self.steps = []

    def set_prefer_numbers(self, on: bool) -> None:
        self.stack.reset_numbers(on)

    def reset_selection(self) -> None:
        """A new network: filter 0, channel 0 (the old numbers may not exist)."""
        for spin in (self.filter_spin, self.channel_spin):
            spin.blockSignals(True)
            spin.setValue(0)
            spin.blockSignals(False)

    def _limit(self, spin: QSpinBox, n: int) -> None:
        spin.blockSignals(True)
        spin.setMaximum(max(0, n - 1))
        spin.blockSignals(False)

    def show_session(self, s: StepperSession) -> None:
        i = s.focus
        layer = s.model.layers[i] if i >= 0 else None
        went_back = s.phase == BACKWARD and i >= 0 and s.back <= i
        steps, message = [], ""
        if isinstance(layer, Conv2D) and layer.last_input is not None:
            self._limit(self.filter_spin, layer.out_channels)
            self._limit(self.channel_spin, layer.in_channels)
            if went_back and layer.dilation == (1, 1):
                steps += conv_backward_steps(layer, s.model.trace[i].grad_output,
                                             self.filter_spin.value(), self.channel_spin.value())
                message = (f"{layer.name}, filter {self.filter_spin.value()}, input channel "
                           f"{self.channel_spin.value()}: dx by dilating, padding and "
                           f"correlating with the rotated kernel; dW by correlating the input "
                           f"with δ. Then the same layer as matrix products (im2col): the "
                           f"forward W · patches, then dW = δ · patchesᵀ and dx = "
                           f"col2im(Wᵀ · δ).")
            else:
                message = (f"Step backward through {layer.name} to see dx and dW built step by "
                           f"step. Its forward pass as one matrix product (im2col):")
            steps += conv_im2col_steps(layer)
            if went_back:
                steps += conv_backward_im2col_steps(layer, s.model.trace[i].grad_output)
        elif isinstance(layer, (MaxPool2D, AvgPool2D)) and went_back:
            c = layer.last_input.shape[1]
            self._limit(self.channel_spin, c)
            steps = pool_backward_steps(layer, s.model.trace[i].grad_output,
                                        min(self.channel_spin.value(), c - 1))
            message = (f"{layer.name}, channel {self.channel_spin.value()}: "
                       + ("δ follows the argmax mask." if isinstance(layer, MaxPool2D)
                          else "δ is split evenly over each window."))
        elif layer is None:
            message = "Step to a conv or pooling layer."
        else:
            message = (f"{layer.name} ({type(layer).__name__}): the step-by-step view covers "
                       f"conv layers and, once stepped backward, pooling layers. The main "
                       f"panels show its δ and input gradient.")
        self.message.setText(message)
        self.steps = steps
        kind = f"{type(layer).__name__}, {'backward' if went_back else 'forward'}"
        for k, step in enumerate(steps):
            panel = self.stack.panel(k, f"{kind} step {k}")
            panel.title = step.title
            panel.show_maps(step.data, step.data, step.titles, step.title, step.signed,
                            stem=f"{layer.name}_{file_stem(step.title.split('. ', 1)[-1])}")
            self.stack.notes[k].setText(step.note)
        self.stack.hide_from(len(steps))


class EditTab(QWidget):
    """Edit one kernel of the current network in place (typed or a preset)."""

    kernel_edited = pyqtSignal(str, tuple, object)   # "conv1.weight", (o, c), kernel
    reset_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Layer"))
        self.layer_box = QComboBox()
        row.addWidget(self.layer_box)
        row.addWidget(QLabel("Filter"))
        self.filter_spin = QSpinBox()
        row.addWidget(self.filter_spin)
        row.addWidget(QLabel("Channel"))
        self.channel_spin = QSpinBox()
        row.addWidget(self.channel_spin)
        row.addStretch(1)
        layout.addLayout(row)
        self.info = QLabel("Every change re-runs the forward pass: the maps below this layer, "
                           "the loss and the prediction follow at once.")
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        self.editor = LayerKernelEditor()
        layout.addWidget(self.editor)
        self.reset_button = QPushButton("Reset to the loaded weights")
        self.reset_button.setToolTip("Undo every kernel edit and update")
        layout.addWidget(self.reset_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        self.session: StepperSession | None = None
        self.layer_box.currentIndexChanged.connect(lambda _: self._load())
        self.filter_spin.valueChanged.connect(lambda _: self._load())
        self.channel_spin.valueChanged.connect(lambda _: self._load())
        self.editor.kernel_changed.connect(self._on_kernel)
        self.reset_button.clicked.connect(self.reset_requested)

    def set_session(self, s: StepperSession) -> None:
        self.session = s
        for spin in (self.filter_spin, self.channel_spin):      # a new network: filter 0
            spin.blockSignals(True)
            spin.setValue(0)
            spin.blockSignals(False)
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        for layer in s.model.layers:
            if isinstance(layer, Conv2D):
                self.layer_box.addItem(layer.name)
        self.layer_box.blockSignals(False)
        has = self.layer_box.count() > 0
        self.setEnabled(has)
        self.info.setText("Every change re-runs the forward pass: the maps after this layer, the "
                          "loss and the prediction follow at once." if has else
                          "This network has no conv layer to edit.")
        self._load()

    def layer(self) -> Conv2D | None:
        if self.session is None or not self.layer_box.count():
            return None
        return self.session.model[self.layer_box.currentText()]

    def select(self, layer_name: str, o: int, c: int) -> None:
        self.layer_box.setCurrentText(layer_name)
        self.filter_spin.setValue(o)
        self.channel_spin.setValue(c)

    def _load(self) -> None:
        layer = self.layer()
        if layer is None:
            return
        for spin, n in ((self.filter_spin, layer.out_channels),
                        (self.channel_spin, layer.in_channels)):
            spin.blockSignals(True)
            spin.setMaximum(n - 1)
            spin.blockSignals(False)
        self.editor.lock(layer.kernel_size)
        w = np.array(layer.params["weight"][self.filter_spin.value(), self.channel_spin.value()],
                     np.float32)
        if not np.array_equal(self.editor.kernel(), w):      # keeps the preset's name shown
            self.editor.set_kernel(w, emit=False)

    def show_session(self, s: StepperSession) -> None:
        self._load()       # picks up updates and resets

    def _on_kernel(self, kernel: np.ndarray) -> None:
        layer = self.layer()
        if layer is None:
            return
        self.kernel_edited.emit(f"{layer.name}.weight",
                                (self.filter_spin.value(), self.channel_spin.value()), kernel)


class SaliencyTab(QWidget):
    class_changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Class"))
        self.class_box = QComboBox()
        self.set_class_names(numbered(10))
        self.class_box.setToolTip("Whose score the gradient is taken of")
        row.addWidget(self.class_box)
        row.addStretch(1)
        layout.addLayout(row)
        self.info = QLabel()
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        self.panel = TensorPanel("saliency", max_columns=2)
        layout.addWidget(self.panel, 1)
        self.class_box.currentIndexChanged.connect(lambda _: self.class_changed.emit())
        self.saliency = None

    def set_class_names(self, names) -> None:
        """One entry per class of the network ("3 ship"), after "target"; the
        class chosen stays chosen if the network has it."""
        chosen = self.class_box.currentData()
        blocked = self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItem("target", None)
        for k in range(len(names)):
            self.class_box.addItem(class_text(names, k), k)
        self.class_box.setCurrentIndex(0 if chosen is None or chosen >= len(names) else chosen + 1)
        self.class_box.blockSignals(blocked)
        self.names = tuple(names)

    def show_session(self, s: StepperSession) -> None:
        if s.delta is not None:
            self.panel.set_empty("lessons have no class scores")
            self.info.setText("Saliency needs a classifier: choose LeNet-5 or a model file.")
            return
        chosen = self.class_box.currentData()
        cls = s.label if chosen is None else int(chosen)
        self.saliency = s.saliency(cls)
        maps = np.stack([np.ascontiguousarray(s.x[0].sum(axis=0)), self.saliency])
        named = class_text(self.names, cls, 100)
        self.panel.show_maps(self.saliency, maps, ["input", f"d score[{cls}] / d input"],
                             f"saliency of class {named}: {self.saliency.shape}", None,
                             shared_scale=False)
        self.info.setText(f"Red pixels raise the score of class {named} when brightened, blue "
                          f"ones lower it (the gradient of the whole network at this input).")


class CheckTab(QWidget):
    run_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.button = QPushButton("Check the current layer's gradients")
        self.button.setToolTip("Centered finite differences in float64 on the current layer "
                               "and its current input, compared with backward()")
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignLeft)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.result_label)
        layout.addStretch(1)
        self.button.clicked.connect(self.run_requested)
        self.result = None

    def show_session(self, s: StepperSession) -> None:
        name = "the input" if s.focus < 0 else s.model.layers[s.focus].name
        self.button.setText(f"Check {name}'s gradients")
        self.button.setEnabled(s.focus >= 0)

    def show_result(self, text: str, result=None) -> None:
        self.result = result
        self.result_label.setText(text)
