"""What BatchNorm2d and Dropout do to the picture being stepped, and the
training / evaluation switch they answer to.

``batchnorm_view`` and ``dropout_view`` are plain data read from the layer
after its forward step (the statistics it used, x_hat, its mask), so the
tests compare them with a NumPy recomputation; ``NormTab`` draws them;
``ModeSwitch`` is the check box that puts the session in training mode.

Why evaluation mode by default: in the Stepper the batch is one picture.
BatchNorm's batch statistics would then be that picture's own mean and
variance over its H x W positions: every map comes out with mean 0 and
variance 1 whatever the picture, which hides what the layer learned and is
not what a trained network computes at test time. Evaluation mode uses the
running statistics learned in training, as ``predict`` does. Training mode
is one click away, labelled as the one picture's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                             QSizePolicy, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from cnnviz.engine.normalization import BatchNorm2d
from cnnviz.engine.regularization import Dropout
from cnnviz.gui.stepper.explain import as_maps
from cnnviz.gui.stepper.session import StepperSession
from cnnviz.gui.stepper.tensor_panel import TensorPanel

MAX_TABLE_CHANNELS = 64          # a statistics table wider than this is cut (said)


@dataclass
class BatchNormView:
    mode: str                    # "training" or "evaluation"
    mean: np.ndarray             # (C,) the statistics used
    var: np.ndarray
    inv_std: np.ndarray          # 1 / sqrt(var + eps)
    gamma: np.ndarray
    beta: np.ndarray
    normalized: np.ndarray       # (C, H, W) x_hat of sample 0
    output: np.ndarray           # (C, H, W) gamma * x_hat + beta
    text: str


def batchnorm_view(layer: BatchNorm2d) -> BatchNormView | None:
    """None until the layer has run."""
    if layer.normalized is None:
        return None
    mean = np.asarray(layer.used_mean, np.float64)
    var = np.asarray(layer.used_var, np.float64)
    c = layer.num_features
    h, w = layer.normalized.shape[2:]
    if layer.training:
        text = (f"Training mode: the statistics are this one picture's, per channel over its "
                f"{h}x{w} = {h * w} positions (in training a batch of pictures gives them). "
                f"Every normalised map then has mean 0 and variance 1, whatever the picture.")
    else:
        text = ("Evaluation mode: the running mean and variance learned in training (the same "
                "for every picture), as the trained network uses them at test time.")
    text += (f" x_hat = (x - mean) / sqrt(var + {layer.eps:g}), then y = gamma * x_hat + beta: "
             f"{c} channel(s), one mean, variance, gamma and beta each.")
    return BatchNormView("training" if layer.training else "evaluation", mean, var,
                         1.0 / np.sqrt(var + layer.eps), np.array(layer.params["gamma"]),
                         np.array(layer.params["beta"]), np.array(layer.normalized[0]),
                         np.array(layer.last_output[0]), text)


@dataclass
class DropoutView:
    mode: str
    multiplier: np.ndarray | None    # sample 0: 0 where dropped, 1/(1-p) where kept
    dropped: int
    total: int
    text: str


def dropout_view(layer: Dropout) -> DropoutView | None:
    if layer.last_input is None:
        return None
    total = int(np.prod(layer.last_input.shape[1:]))
    if layer.mask is None:
        why = ("Evaluation mode" if not layer.training else f"p = {layer.p:g}")
        return DropoutView("evaluation" if not layer.training else "training", None, 0, total,
                           f"{why}: Dropout passes all {total} values unchanged (no mask, no "
                           f"scaling): the output is the input.")
    kept = layer.mask[0]
    multiplier = kept.astype(np.float32) * np.float32(layer.scale)
    dropped = int(kept.size - np.count_nonzero(kept))
    text = (f"Training mode, p = {layer.p:g}: {dropped} of {total} values dropped "
            f"({100 * dropped / total:.0f}%). The kept ones are multiplied by 1/(1-p) = "
            f"{layer.scale:.4g}, so each value's expected size is what evaluation (no dropout) "
            f"gives. The backward pass routes δ through the same mask and scale. "
            f"New mask: draw another.")
    return DropoutView("training", multiplier, dropped, total, text)


def _maps(a: np.ndarray) -> np.ndarray:
    """(C, H, W) as is, a vector (F,) as one row."""
    a = np.ascontiguousarray(a, np.float32)
    return a if a.ndim == 3 else a.reshape(1, 1, -1)


class ModeSwitch(QCheckBox):
    """Training mode on / off for the whole network (shown when it matters)."""

    def __init__(self, parent=None):
        super().__init__("Training mode", parent)
        self.base_tip = ("Off (default): evaluation mode, BatchNorm uses its running statistics "
                         "and Dropout passes everything, as at test time. On: BatchNorm uses "
                         "this picture's own statistics and Dropout drops values.")
        self.setToolTip(self.base_tip)

    def show_session(self, s: StepperSession) -> None:
        self.setVisible(s.has_mode)
        self.blockSignals(True)
        self.setChecked(s.training)
        self.blockSignals(False)
        why = s.why_not_training()
        self.setEnabled(why is None or s.training)
        self.setToolTip(self.base_tip if why is None else f"{self.base_tip} Not possible: {why}")


class NormTab(QWidget):
    """The focus layer's insides when it is a BatchNorm2d or a Dropout."""

    new_masks = pyqtSignal()
    hover_text = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        row = QHBoxLayout()
        self.mask_button = QPushButton("New mask")
        self.mask_button.setToolTip("Draw other dropout masks (training mode) and run again")
        self.mask_button.clicked.connect(self.new_masks)
        row.addWidget(self.mask_button)
        row.addStretch(1)
        layout.addLayout(row)
        # the table and the maps scroll together; each panel takes the height it needs
        inner = QWidget()
        column = QVBoxLayout(inner)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(8)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        column.addWidget(self.table)
        self.panel_a = TensorPanel("normalized", max_columns=4, fit=True)
        self.panel_b = TensorPanel("output", max_columns=4, fit=True)
        for panel in (self.panel_a, self.panel_b):
            panel.hover_text.connect(self.hover_text)
            column.addWidget(panel)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(inner)
        layout.addWidget(scroll, 1)
        self.view = None

    def show_session(self, s: StepperSession) -> None:
        layer = s.model.layers[s.focus] if s.focus >= 0 else None
        self.mask_button.setVisible(isinstance(layer, Dropout))
        self.mask_button.setEnabled(s.training)
        if isinstance(layer, BatchNorm2d):
            self.view = batchnorm_view(layer)
            self._show_batchnorm(layer)
        elif isinstance(layer, Dropout):
            self.view = dropout_view(layer)
            self._show_dropout(layer)
        else:
            self.view = None
            names = [l.name for l in s.model.layers if isinstance(l, (BatchNorm2d, Dropout))]
            self.message.setText(
                "Step to a BatchNorm or Dropout layer" + (f" ({', '.join(names)})" if names
                                                          else " (this network has none)")
                + " to see its statistics, normalised maps or mask.")
            self._clear()

    def _clear(self) -> None:
        self.table.hide()
        for panel in (self.panel_a, self.panel_b):
            panel.hide()

    def _show_batchnorm(self, layer: BatchNorm2d) -> None:
        v = self.view
        if v is None:
            self.message.setText(f"{layer.name} has not run yet: step forward to it.")
            self._clear()
            return
        self.message.setText(v.text)
        rows = (("mean", v.mean), ("var", v.var), ("1/sqrt(var+eps)", v.inv_std),
                ("gamma", v.gamma), ("beta", v.beta))
        c = min(len(v.mean), MAX_TABLE_CHANNELS)
        self.table.setRowCount(len(rows))
        self.table.setColumnCount(c)
        self.table.setVerticalHeaderLabels([r[0] for r in rows])
        self.table.setHorizontalHeaderLabels([f"ch {k}" for k in range(c)])
        for r, (_, values) in enumerate(rows):
            for k in range(c):
                self.table.setItem(r, k, QTableWidgetItem(f"{float(values[k]):.4g}"))
        self.table.resizeColumnsToContents()
        bar = self.table.horizontalScrollBar().sizeHint().height()
        self.table.setFixedHeight(self.table.horizontalHeader().height()
                                  + sum(self.table.rowHeight(r) for r in range(len(rows)))
                                  + bar + 4)
        self.table.setToolTip(f"{v.mode} statistics per channel"
                              + (f" (first {c} of {len(v.mean)})" if c < len(v.mean) else ""))
        self.table.show()
        titles = [f"ch {k}" for k in range(v.normalized.shape[0])]
        self.panel_a.show_maps(v.normalized[None], _maps(v.normalized), titles,
                               f"x_hat = (x - mean) / sqrt(var + eps), {v.mode} statistics",
                               True, stem=f"{layer.name}_normalized")
        self.panel_b.show_maps(v.output[None], _maps(v.output), titles,
                               "y = gamma * x_hat + beta (the layer's output)", None,
                               stem=f"{layer.name}_output")
        self.panel_a.show()
        self.panel_b.show()

    def _show_dropout(self, layer: Dropout) -> None:
        v = self.view
        self.table.hide()
        self.panel_b.hide()
        if v is None:
            self.message.setText(f"{layer.name} has not run yet: step forward to it.")
            self.panel_a.hide()
            return
        self.message.setText(v.text)
        if v.multiplier is None:
            self.panel_a.hide()
            return
        m = v.multiplier
        # laid out as the main panels lay out this tensor: a vector after
        # Flatten wrapped into a square (as one 1xF row it was a hairline)
        maps, note = as_maps(m[None])
        titles = ([note] if note else [f"ch {k}" for k in range(m.shape[0])] if m.ndim == 3
                  else ["units"])
        self.panel_a.show_maps(m[None], maps, titles,
                               f"mask x scale: 0 = dropped, {layer.scale:.4g} = kept "
                               f"({v.dropped} of {v.total} dropped)", None,
                               stem=f"{layer.name}_mask")
        self.panel_a.show()
