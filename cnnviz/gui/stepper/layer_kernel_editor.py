"""The Kernel Lab's KernelEditor, locked to the size of a network's kernel.

A network's kernel cannot change size in place, so the size spin boxes are
hidden and every preset is built at the layer's size (fixed 3x3 presets sit
centred in zeros, which filters the same). Subclassed here rather than edited
in cnnviz/gui/widgets, which belongs to the Kernel Lab.
"""

from __future__ import annotations

import numpy as np

from cnnviz.engine import kernels as presets
from cnnviz.gui.widgets.kernel_editor import KernelEditor, resize_kernel


class LayerKernelEditor(KernelEditor):
    def __init__(self, parent=None, shape=(5, 5)):
        self.locked_shape = tuple(shape)
        super().__init__(parent, np.zeros(self.locked_shape, np.float32))
        for spin in (self.rows_spin, self.cols_spin):
            spin.setEnabled(False)
            spin.setToolTip("A network's kernel keeps its size")

    def lock(self, shape) -> None:
        self.locked_shape = tuple(shape)

    def set_kernel(self, kernel: np.ndarray, emit: bool = True) -> None:
        kernel = np.asarray(kernel, np.float32)
        if kernel.ndim == 2 and kernel.shape != self.locked_shape:
            kernel = resize_kernel(kernel, self.locked_shape)
        super().set_kernel(kernel, emit)

    def apply_preset(self, name: str) -> None:
        params = {}
        if name == "Gaussian":
            params["sigma"] = self.sigma_spin.value()
        if name == "random":
            params["seed"] = next(self._random_seeds)
        try:
            kernel = presets.preset(name, self.locked_shape, **params)
        except ValueError as exc:            # e.g. a 3x3 preset into an even-sized kernel
            self._report_problem(f"{name}: {exc}")
            return
        self.set_kernel(kernel, emit=False)
        self._show_sigma(name == "Gaussian")
        self.preset_box.setCurrentIndex(max(self.preset_box.findText(name), 0))
        self.kernel_changed.emit(self.kernel())
