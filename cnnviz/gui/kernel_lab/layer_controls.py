"""Conv layer settings: channel mode, stride / padding / dilation per axis,
activation and pooling. Emits ``changed`` on every edit."""

from __future__ import annotations

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QComboBox, QFormLayout, QGridLayout, QLabel, QSpinBox, QWidget

from cnnviz.gui.kernel_lab.pipeline import ACTIVATION_LABELS

MODES = {"sum": "Sum channels: one map per filter", "depthwise": "Depthwise: one map per channel"}
POOL_LABELS = {"none": "none", "max": "max", "avg": "average"}


def _spin(minimum: int, maximum: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox(minimum=minimum, maximum=maximum, value=value)
    spin.setToolTip(tip)
    return spin


class LayerControls(QWidget):
    changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)

        self.mode_box = QComboBox()
        for key, label in MODES.items():
            self.mode_box.addItem(label, key)
        self.mode_box.setToolTip("A CNN filter sums its per-channel results into ONE map; "
                                 "depthwise keeps one map per input channel")
        form.addRow("Channels", self.mode_box)

        grid = QGridLayout()
        grid.setSpacing(3)
        grid.addWidget(QLabel("rows"), 0, 1)
        grid.addWidget(QLabel("cols"), 0, 2)
        self.stride = (_spin(1, 64, 1, "Stride along rows"), _spin(1, 64, 1, "Stride along columns"))
        self.padding = (_spin(0, 64, 0, "Zero padding above and below"),
                        _spin(0, 64, 0, "Zero padding left and right"))
        self.dilation = (_spin(1, 32, 1, "Dilation along rows: gap between kernel taps"),
                         _spin(1, 32, 1, "Dilation along columns"))
        for r, (label, pair) in enumerate((("Stride", self.stride), ("Padding", self.padding),
                                           ("Dilation", self.dilation)), start=1):
            grid.addWidget(QLabel(label), r, 0)
            grid.addWidget(pair[0], r, 1)
            grid.addWidget(pair[1], r, 2)
        form.addRow(grid)

        self.activation_box = QComboBox()
        for key, label in ACTIVATION_LABELS.items():
            self.activation_box.addItem(label, key)
        form.addRow("Activation", self.activation_box)

        self.pool_box = QComboBox()
        for key, label in POOL_LABELS.items():
            self.pool_box.addItem(label, key)
        form.addRow("Pooling", self.pool_box)
        pool_grid = QGridLayout()
        pool_grid.setSpacing(3)
        self.pool_size = (_spin(1, 16, 2, "Pooling window height"),
                          _spin(1, 16, 2, "Pooling window width"))
        self.pool_stride = (_spin(1, 16, 2, "Pooling stride along rows"),
                            _spin(1, 16, 2, "Pooling stride along columns"))
        pool_grid.addWidget(QLabel("Window"), 0, 0)
        pool_grid.addWidget(self.pool_size[0], 0, 1)
        pool_grid.addWidget(self.pool_size[1], 0, 2)
        pool_grid.addWidget(QLabel("Stride"), 1, 0)
        pool_grid.addWidget(self.pool_stride[0], 1, 1)
        pool_grid.addWidget(self.pool_stride[1], 1, 2)
        form.addRow(pool_grid)

        for box in (self.mode_box, self.activation_box, self.pool_box):
            box.currentIndexChanged.connect(lambda _: self._emit())
        for spin in (*self.stride, *self.padding, *self.dilation, *self.pool_size,
                     *self.pool_stride):
            spin.valueChanged.connect(lambda _: self._emit())
        # start with the whole pipeline on show: conv -> ReLU -> 2x2 max pool
        self.set_choice(self.activation_box, "relu")
        self.set_choice(self.pool_box, "max")
        self._sync_pool_enabled()

    def _emit(self) -> None:
        self._sync_pool_enabled()
        self.changed.emit()

    def _sync_pool_enabled(self) -> None:
        on = self.pool != "none"
        for spin in (*self.pool_size, *self.pool_stride):
            spin.setEnabled(on)

    # --- values -----------------------------------------------------------------------------
    @property
    def depthwise(self) -> bool:
        return self.mode_box.currentData() == "depthwise"

    @property
    def activation(self) -> str:
        return self.activation_box.currentData()

    @property
    def pool(self) -> str:
        return self.pool_box.currentData()

    def values(self) -> dict:
        pair = lambda spins: (spins[0].value(), spins[1].value())  # noqa: E731
        return {"depthwise": self.depthwise, "stride": pair(self.stride),
                "padding": pair(self.padding), "dilation": pair(self.dilation),
                "activation": self.activation, "pool": self.pool,
                "pool_size": pair(self.pool_size), "pool_stride": pair(self.pool_stride)}

    def set_choice(self, box: QComboBox, key: str) -> None:
        index = box.findData(key)
        if index < 0:
            raise ValueError(f"no choice {key!r}")
        box.setCurrentIndex(index)
