"""The conv layer's weights: a bank of filters, each with one sub-kernel per input
channel and one bias, edited one 2-D kernel at a time in a KernelEditor.

Holds weights (F, C, kh, kw) and bias (F,). A filter is either "same kernel
for all channels" (editing writes every channel) or per-channel (pick the
channel, edit its sub-kernel). All filters share one kernel size, as in a
real conv layer: resizing one resizes all, keeping their centres.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel,
                             QListWidget, QPushButton, QVBoxLayout, QWidget)

from cnnviz.engine import kernels as presets
from cnnviz.gui.kernel_lab.pipeline import channel_names
from cnnviz.gui.widgets.kernel_editor import KernelEditor, resize_kernel

MAX_FILTERS = 8
EXAMPLE_BANK = ("Sobel x", "Sobel y", "blur")


class FilterBank(QWidget):
    changed = pyqtSignal()
    depthwise_loaded = pyqtSignal(bool)   # a loaded bank file says how its maps are made

    def __init__(self, parent=None, channels: int = 3):
        super().__init__(parent)
        self.channels = channels
        self.weights = np.repeat(presets.sobel_x()[None, None], channels, axis=1)
        self.bias = np.zeros(1, np.float32)
        self.names = ["Sobel x"]
        self.same_for_all = [True]
        self.channel_kernel_names: list[list[str]] = [[""] * channels]   # "" = the filter's name
        self._current = 0
        self._build()
        self._show_filter(0)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        row = QHBoxLayout()
        self.filter_list = QListWidget()
        self.filter_list.setMaximumHeight(84)
        self.filter_list.setToolTip("Each filter gives its own output map")
        self.filter_list.currentRowChanged.connect(self._on_filter_selected)
        row.addWidget(self.filter_list, 1)
        buttons = QVBoxLayout()
        self.add_button = QPushButton("Add filter")
        self.add_button.setToolTip("Add a filter to the bank (one more output map)")
        self.add_button.clicked.connect(lambda: self.add_filter())
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(lambda: self.remove_filter(self._current))
        self.example_button = QPushButton("Sobel x, y, blur")
        self.example_button.setToolTip("Load a bank of three filters: Sobel x, Sobel y and blur")
        self.example_button.clicked.connect(lambda: self.load_bank_presets(EXAMPLE_BANK))
        for b in (self.add_button, self.remove_button, self.example_button):
            buttons.addWidget(b)
        row.addLayout(buttons)
        layout.addLayout(row)

        channel_row = QHBoxLayout()
        self.same_box = QCheckBox("Same for all channels")
        self.same_box.setToolTip("Unchecked: each input channel has its own sub-kernel; the "
                                 "per-channel results are summed into one map")
        self.same_box.toggled.connect(self._on_same_toggled)
        channel_row.addWidget(self.same_box)
        self.channel_box = QComboBox()
        self.channel_box.setToolTip("The input channel whose sub-kernel is being edited")
        self.channel_box.currentIndexChanged.connect(lambda _: self._load_editor())
        channel_row.addWidget(self.channel_box)
        channel_row.addStretch(1)
        layout.addLayout(channel_row)

        bias_row = channel_row   # bias on the same row: one bias per filter
        bias_row.addWidget(QLabel("Bias"))
        self.bias_spin = QDoubleSpinBox(decimals=3, minimum=-1000, maximum=1000, singleStep=0.1)
        self.bias_spin.setToolTip("Added once to the filter's sum (one bias per filter)")
        self.bias_spin.valueChanged.connect(self._on_bias)
        bias_row.addWidget(self.bias_spin)

        self.editor = KernelEditor(kernel=self.weights[0, 0])
        self.editor.kernel_changed.connect(self._on_kernel_edited)
        self.editor.bank_loaded.connect(self._on_bank_loaded)
        layout.addWidget(self.editor)
        self._refresh_list()
        self._refresh_channels()

    # --- public API ------------------------------------------------------------------------
    @property
    def filter_count(self) -> int:
        return self.weights.shape[0]

    @property
    def current_filter(self) -> int:
        return self._current

    def set_channels(self, channels: int) -> None:
        """Follow the input's channel count; per-channel kernels keep channel 0 for new ones."""
        if channels == self.channels:
            return
        idx = np.minimum(np.arange(channels), self.channels - 1)
        self.weights = self.weights[:, idx].copy()
        self.channel_kernel_names = [[row[i] for i in idx] for row in self.channel_kernel_names]
        self.channels = channels
        self._refresh_channels()
        self._load_editor()
        self.changed.emit()

    def set_bank(self, weights: np.ndarray, bias: np.ndarray, names: list[str]) -> None:
        """weights (F, C', kh, kw); a C' different from the input's is repeated/cut."""
        weights = np.asarray(weights, np.float32)
        idx = np.minimum(np.arange(self.channels), weights.shape[1] - 1)
        self.weights = weights[:, idx].copy()
        self.bias = np.asarray(bias, np.float32).copy()
        self.names = list(names)
        self.same_for_all = [bool(np.all(w == w[:1])) for w in self.weights]
        self.channel_kernel_names = [[""] * self.channels for _ in self.names]
        self._refresh_list()
        self._show_filter(0)
        self.changed.emit()

    def load_bank_presets(self, names) -> None:
        kernels = [presets.preset(n) for n in names]
        shape = tuple(max(k.shape[i] for k in kernels) for i in range(2))
        weights = np.stack([np.repeat(resize_kernel(k, shape)[None], self.channels, axis=0)
                            for k in kernels])
        self.set_bank(weights, np.zeros(len(names), np.float32), list(names))

    def add_filter(self, name: str = "identity") -> None:
        if self.filter_count >= MAX_FILTERS:
            return
        kernel = resize_kernel(presets.identity(), self.weights.shape[2:])
        new = np.repeat(kernel[None, None], self.channels, axis=1)
        self.weights = np.concatenate([self.weights, new])
        self.bias = np.append(self.bias, np.float32(0))
        self.names.append(name)
        self.same_for_all.append(True)
        self.channel_kernel_names.append([""] * self.channels)
        self._refresh_list()
        self._show_filter(self.filter_count - 1)
        self.changed.emit()

    def remove_filter(self, index: int) -> None:
        if self.filter_count <= 1:
            return
        keep = [i for i in range(self.filter_count) if i != index]
        self.weights, self.bias = self.weights[keep], self.bias[keep]
        self.names = [self.names[i] for i in keep]
        self.same_for_all = [self.same_for_all[i] for i in keep]
        self.channel_kernel_names = [self.channel_kernel_names[i] for i in keep]
        self._refresh_list()
        self._show_filter(min(index, self.filter_count - 1))
        self.changed.emit()

    def select_filter(self, index: int) -> None:
        self._show_filter(index)

    def select_channel(self, channel: int) -> None:
        """Edit one channel's sub-kernel (switches the filter to per-channel kernels)."""
        self.same_box.setChecked(False)
        self.channel_box.setCurrentIndex(channel)

    # --- internals ---------------------------------------------------------------------------
    def _refresh_list(self) -> None:
        self.filter_list.blockSignals(True)
        self.filter_list.clear()
        for i, name in enumerate(self.names):
            self.filter_list.addItem(f"{i + 1}. {name}")
        self.filter_list.blockSignals(False)
        self.remove_button.setEnabled(self.filter_count > 1)
        self.add_button.setEnabled(self.filter_count < MAX_FILTERS)

    def _refresh_channels(self) -> None:
        self.channel_box.blockSignals(True)
        self.channel_box.clear()
        self.channel_box.addItems([f"channel {n}" for n in channel_names(self.channels)])
        self.channel_box.blockSignals(False)
        single = self.channels == 1
        self.same_box.setEnabled(not single)
        self.channel_box.setEnabled(not single and not self.same_for_all[self._current])

    def _show_filter(self, index: int) -> None:
        self._current = index
        self.filter_list.blockSignals(True)
        self.filter_list.setCurrentRow(index)
        self.filter_list.blockSignals(False)
        self.same_box.blockSignals(True)
        self.same_box.setChecked(self.same_for_all[index])
        self.same_box.blockSignals(False)
        self.bias_spin.blockSignals(True)
        self.bias_spin.setValue(float(self.bias[index]))
        self.bias_spin.blockSignals(False)
        self._refresh_channels()
        self._load_editor()

    def _edited_channel(self) -> int:
        return 0 if self.same_for_all[self._current] else max(self.channel_box.currentIndex(), 0)

    def _rename(self, f: int, name: str) -> None:
        if name != self.names[f]:
            self.names[f] = name
            self.filter_list.item(f).setText(f"{f + 1}. {name}")

    def _load_editor(self) -> None:
        f, c = self._current, self._edited_channel()
        self.editor.set_kernel(self.weights[f, c], emit=False)
        own = "" if self.same_for_all[f] else self.channel_kernel_names[f][c]
        self.editor.show_preset_name(own or self.names[f])

    def _on_bank_loaded(self, bank: dict) -> None:
        """Load... of a saved bank: the whole bank comes back, not its first sub-kernel."""
        self.set_bank(bank["weights"][:MAX_FILTERS], bank["bias"][:MAX_FILTERS],
                      bank["names"][:MAX_FILTERS])
        self.depthwise_loaded.emit(bank["depthwise"])

    def _on_filter_selected(self, row: int) -> None:
        if 0 <= row < self.filter_count:
            self._show_filter(row)

    def _on_same_toggled(self, same: bool) -> None:
        f = self._current
        self.same_for_all[f] = same
        self.channel_box.setEnabled(not same and self.channels > 1)
        if same:   # every channel takes the kernel shown now
            self.weights[f, :] = self.weights[f, self._edited_channel_before_same()]
            self.channel_kernel_names[f] = [""] * self.channels
            self.changed.emit()
        else:      # until edited, every channel's kernel is the filter's
            self.channel_kernel_names[f] = [self.names[f]] * self.channels
        self._load_editor()

    def _edited_channel_before_same(self) -> int:
        return max(self.channel_box.currentIndex(), 0)

    def _on_bias(self, value: float) -> None:
        self.bias[self._current] = value
        self.changed.emit()

    def _on_kernel_edited(self, kernel: np.ndarray) -> None:
        if kernel.shape != self.weights.shape[2:]:
            resized = np.zeros(self.weights.shape[:2] + kernel.shape, np.float32)
            for f in range(self.filter_count):
                for c in range(self.channels):
                    resized[f, c] = resize_kernel(self.weights[f, c], kernel.shape)
            self.weights = resized
        f = self._current
        chosen = self.editor.preset_name
        if not self.same_for_all[f]:
            c = self._edited_channel()
            self.weights[f, c] = kernel
            own = self.channel_kernel_names[f]
            own[c] = chosen or (own[c] if own[c].endswith(" (edited)") or not own[c]
                                else f"{own[c]} (edited)")
            # the filter is named after its channels' kernels, not after the last one edited
            kinds = list(dict.fromkeys(n or self.names[f] for n in own))
            self._rename(f, kinds[0] if len(kinds) == 1 else " / ".join(kinds))
            self.changed.emit()
            return
        self.weights[f, :] = kernel
        name = chosen or (self.names[f] if self.names[f].endswith(" (edited)")
                          else f"{self.names[f]} (edited)")
        if name != self.names[f]:
            self.names[f] = name
            self.filter_list.item(f).setText(f"{f + 1}. {name}")
        self.changed.emit()
