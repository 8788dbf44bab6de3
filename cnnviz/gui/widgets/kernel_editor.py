"""A kernel as a grid of number cells, with presets, a heat image and tools.

    editor = KernelEditor()
    editor.kernel_changed.connect(lambda k: ...)   # (kh, kw) float32, always valid
    editor.apply_preset("Sobel x")
    editor.set_kernel(np.eye(3))

Every keystroke in a cell that leaves a finite number updates the kernel and
emits ``kernel_changed``. A cell holding anything else turns red with a tooltip
saying why, ``problem_changed`` carries the message, and the cell's last valid
value stays in use.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import (QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel,
                             QLineEdit, QMessageBox, QPushButton, QSpinBox,
                             QVBoxLayout, QWidget)

from cnnviz.atomic import atomic_write_text, save_failure_message
from cnnviz.engine import kernels as presets
from cnnviz.gui.widgets.colormaps import colorize, scale_for
from cnnviz.gui.widgets.kernel_json import (KernelFileError, bank_from_json,
                                            is_bank_json, is_incomplete_number,
                                            kernel_from_json, kernel_to_json, parse_cell,
                                            read_kernel_text)

INVALID_STYLE = "QLineEdit { background: #ffb3b3; border: 1px solid #d00000; }"
HEAT_SIZE = 88
MIN_CELL_WIDTH = 34
CELL_PADDING = 12   # the line edit's frame and inner margin (QLineEdit's 2 px + frame + caret)


def cell_text(value: float) -> str:
    text = f"{value:.4g}"
    return "0" if text == "-0" else text


class KernelEditor(QWidget):
    kernel_changed = pyqtSignal(object)
    problem_changed = pyqtSignal(str)
    bank_loaded = pyqtSignal(object)     # dict from bank_from_json: a whole bank's file

    def __init__(self, parent=None, kernel: np.ndarray | None = None):
        super().__init__(parent)
        self._kernel = np.asarray(kernel if kernel is not None else presets.identity(),
                                  np.float32).copy()
        self._cells: list[list[QLineEdit]] = []
        self._invalid: dict[tuple[int, int], str] = {}
        self._random_seeds = itertools.count(1)
        self._build()
        self._rebuild_cells()

    # --- layout -----------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)

        top = QHBoxLayout()
        top.addWidget(QLabel("Preset"))
        self.preset_box = QComboBox()
        self.preset_box.addItem("choose...")
        self.preset_box.addItems(list(presets.PRESETS))
        self.preset_box.setToolTip("Load a classic kernel into the grid")
        self.preset_box.textActivated.connect(self._on_preset_chosen)
        top.addWidget(self.preset_box, 1)
        self.sigma_label = QLabel("\u03c3")
        self.sigma_spin = QDoubleSpinBox(decimals=2, minimum=0.1, maximum=10.0, singleStep=0.1,
                                         value=1.0)
        self.sigma_spin.setToolTip("Standard deviation of the Gaussian, in pixels")
        self.sigma_spin.valueChanged.connect(lambda _: self._reapply_gaussian())
        top.addWidget(self.sigma_label)
        top.addWidget(self.sigma_spin)
        self._show_sigma(False)
        size_row = top   # one row: preset, sigma, size
        size_row.addSpacing(6)
        size_row.addWidget(QLabel("Size"))
        self.rows_spin = QSpinBox(minimum=1, maximum=presets.MAX_SIDE, value=self._kernel.shape[0])
        self.cols_spin = QSpinBox(minimum=1, maximum=presets.MAX_SIDE, value=self._kernel.shape[1])
        self.rows_spin.setToolTip("Kernel height (rows)")
        self.cols_spin.setToolTip("Kernel width (columns)")
        self.rows_spin.valueChanged.connect(self._on_size_spin)
        self.cols_spin.valueChanged.connect(self._on_size_spin)
        size_row.addWidget(self.rows_spin)
        size_row.addWidget(QLabel("\u00d7"))
        size_row.addWidget(self.cols_spin)
        outer.addLayout(top)

        middle = QHBoxLayout()
        self.grid_host = QWidget()
        self.grid_layout = QGridLayout(self.grid_host)
        self.grid_layout.setContentsMargins(0, 0, 0, 0)
        self.grid_layout.setSpacing(2)
        middle.addWidget(self.grid_host, 0, Qt.AlignmentFlag.AlignTop)
        middle.addStretch(1)
        self.heat = QLabel()
        self.heat.setFixedSize(HEAT_SIZE, HEAT_SIZE)
        self.heat.setToolTip("The kernel as an image: red positive, blue negative, white 0")
        middle.addWidget(self.heat, 0, Qt.AlignmentFlag.AlignTop)
        outer.addLayout(middle)

        tools = QGridLayout()
        tools.setSpacing(3)
        buttons = [
            ("Normalize", "Scale so the weights sum to 1", self.normalize),
            ("Rotate 180\u00b0", "Flip both axes: the kernel the backward pass correlates with",
             self.rotate180),
            ("Transpose", "Swap rows and columns (Sobel x <-> Sobel y)", self.transpose),
            ("Zero", "Set every weight to 0", self.zero),
            ("Save...", "Save this kernel as JSON", self.save_dialog),
            ("Load...", "Load a kernel from JSON", self.load_dialog),
        ]
        self.buttons: dict[str, QPushButton] = {}
        for i, (label, tip, slot) in enumerate(buttons):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, s=slot: s())
            tools.addWidget(button, i // 3, i % 3)
            self.buttons[label] = button
        outer.addLayout(tools)

        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #b00000;")
        self.problem_label.hide()
        outer.addWidget(self.problem_label)

    def _show_sigma(self, visible: bool) -> None:
        self.sigma_label.setVisible(visible)
        self.sigma_spin.setVisible(visible)

    def _rebuild_cells(self) -> None:
        for row in self._cells:
            for cell in row:
                self.grid_layout.removeWidget(cell)
                cell.hide()          # gone now, not at the next event loop turn
                cell.deleteLater()
        kh, kw = self._kernel.shape
        self._cells = []
        for r in range(kh):
            row = []
            for c in range(kw):
                cell = QLineEdit()
                cell.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                cell.setAccessibleName(f"kernel cell {r},{c}")
                cell.textEdited.connect(lambda text, r=r, c=c: self._on_cell_edited(r, c, text))
                cell.editingFinished.connect(lambda r=r, c=c: self._on_cell_left(r, c))
                self.grid_layout.addWidget(cell, r, c)
                row.append(cell)
            self._cells.append(row)
        self._invalid.clear()
        self._refresh_cells()

    def _refresh_cells(self) -> None:
        for r, row in enumerate(self._cells):
            for c, cell in enumerate(row):
                cell.setText(cell_text(float(self._kernel[r, c])))
                cell.setStyleSheet("")
                cell.setToolTip("")
        self._fit_cells()
        self._invalid.clear()
        self._report_problem()
        self._draw_heat()

    def _text_room(self, cell: QLineEdit) -> int:
        """Pixels a cell's frame and margins take from its width."""
        margins = cell.textMargins()
        return margins.left() + margins.right() + CELL_PADDING

    def _fit_cells(self) -> None:
        """One width for all cells, wide enough for the widest number: a value is
        shown whole (0.02393, 1.965e-05), never cut to "2393" or "65e-05"."""
        if not self._cells:
            return
        metrics = self._cells[0][0].fontMetrics()
        widest = max(metrics.horizontalAdvance(cell.text()) for row in self._cells for cell in row)
        width = max(MIN_CELL_WIDTH, widest + self._text_room(self._cells[0][0]))
        for row in self._cells:
            for cell in row:
                cell.setFixedWidth(width)

    def _widen_for(self, cell: QLineEdit, text: str) -> None:
        """While typing: widen the cells if the typed text no longer fits (cheap check)."""
        need = cell.fontMetrics().horizontalAdvance(text) + self._text_room(cell)
        if need > cell.width():
            for row in self._cells:
                for other in row:
                    other.setFixedWidth(need)

    def _draw_heat(self) -> None:
        rgba = np.ascontiguousarray(colorize(self._kernel, scale_for(self._kernel, signed=True)))
        h, w = rgba.shape[:2]
        image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        side = HEAT_SIZE
        pix = QPixmap.fromImage(image).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.FastTransformation)
        self.heat.setPixmap(pix)

    # --- public API ----------------------------------------------------------------------
    @property
    def preset_name(self) -> str:
        """The preset the kernel came from, "" once it was edited."""
        name = self.preset_box.currentText()
        return name if name in presets.PRESETS else ""

    def kernel(self) -> np.ndarray:
        """The kernel in use (the last valid value of every cell)."""
        return self._kernel.copy()

    def cell(self, row: int, col: int) -> QLineEdit:
        return self._cells[row][col]

    @property
    def problems(self) -> dict[tuple[int, int], str]:
        return dict(self._invalid)

    def set_kernel(self, kernel: np.ndarray, emit: bool = True) -> None:
        kernel = np.asarray(kernel, np.float32)
        if kernel.ndim != 2 or not np.isfinite(kernel).all():
            raise ValueError(f"a kernel must be a finite 2-D array, got shape {kernel.shape}")
        resized = kernel.shape != self._kernel.shape
        self._kernel = kernel.copy()
        self.preset_box.setCurrentIndex(0)   # apply_preset names it again afterwards
        self._show_sigma(False)
        for spin, value in ((self.rows_spin, kernel.shape[0]), (self.cols_spin, kernel.shape[1])):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        if resized:
            self._rebuild_cells()
        else:
            self._refresh_cells()
        if emit:
            self.kernel_changed.emit(self.kernel())

    def apply_preset(self, name: str) -> None:
        """Sized presets come at least at their own default size (Gaussian 5x5) and keep
        a larger current size; fixed ones switch to their own 3x3."""
        shape = None
        if name in presets.SIZED_PRESETS:
            default = presets.preset(name).shape
            shape = tuple(max(a, b) for a, b in zip(self._kernel.shape, default))
        params = {}
        if name == "Gaussian":
            params["sigma"] = self.sigma_spin.value()
        if name == "random":
            params["seed"] = next(self._random_seeds)
        self.set_kernel(presets.preset(name, shape, **params), emit=False)
        self._show_sigma(name == "Gaussian")
        self.preset_box.setCurrentIndex(max(self.preset_box.findText(name), 0))
        self.kernel_changed.emit(self.kernel())   # after the name is shown: listeners read it

    def show_preset_name(self, name: str) -> None:
        """Name the kernel's preset in the menu without changing the kernel."""
        self.preset_box.setCurrentIndex(max(self.preset_box.findText(name), 0))
        self._show_sigma(False)

    def normalize(self) -> None:
        total = float(self._kernel.sum())
        if abs(total) < 1e-12:
            self._report_problem("The weights sum to 0 (an edge detector?), so they cannot be "
                                 "scaled to sum 1.")
            return
        self.set_kernel(self._kernel / total)

    def rotate180(self) -> None:
        self.set_kernel(self._kernel[::-1, ::-1])

    def transpose(self) -> None:
        self.set_kernel(self._kernel.T)

    def zero(self) -> None:
        self.set_kernel(np.zeros_like(self._kernel))

    def save_json(self, path: str | Path) -> None:
        """Atomic: on any failure (a full disk...) the file already there stays whole."""
        atomic_write_text(path, kernel_to_json(self._kernel))

    def load_json(self, path: str | Path) -> None:
        """Raises KernelFileError (or OSError) with a message fit for the user. A bank
        file goes whole to ``bank_loaded`` when something listens (the filter bank)."""
        text = read_kernel_text(path)
        if is_bank_json(text) and self.receivers(self.bank_loaded) > 0:
            self.bank_loaded.emit(bank_from_json(text))
            return
        self.set_kernel(kernel_from_json(text))

    def save_dialog(self) -> None:
        from cnnviz.gui.widgets.file_dialogs import ask_save_path

        path = ask_save_path(self, "Save kernel", "Kernel JSON (*.json)", "kernel.json", ".json")
        if path:
            try:
                self.save_json(path)
            except OSError as exc:
                QMessageBox.warning(self, "Save failed", save_failure_message(path, exc))

    def load_dialog(self) -> None:
        from cnnviz.gui.widgets.file_dialogs import ask_open_path

        path = ask_open_path(self, "Load kernel", "Kernel JSON (*.json);;All files (*)")
        if path:
            try:
                self.load_json(path)
            except (OSError, KernelFileError) as exc:
                QMessageBox.warning(self, "Cannot load kernel",
                                    f"{Path(path).name} is not a usable kernel:\n{exc}")

    # --- reactions ---------------------------------------------------------------------
    def _on_preset_chosen(self, name: str) -> None:
        if name in presets.PRESETS:
            self.apply_preset(name)

    def _reapply_gaussian(self) -> None:
        if self.preset_box.currentText() == "Gaussian":
            self.apply_preset("Gaussian")

    def _on_size_spin(self) -> None:
        """Resize keeping the centre: crop or pad with zeros around the old kernel."""
        kh, kw = self.rows_spin.value(), self.cols_spin.value()
        self.set_kernel(resize_kernel(self._kernel, (kh, kw)))

    def _on_cell_edited(self, row: int, col: int, text: str) -> None:
        cell = self._cells[row][col]
        self._widen_for(cell, text)
        try:
            value = parse_cell(text)
        except ValueError as exc:
            if is_incomplete_number(text):   # "-", "1e", ".": still being typed, no error yet
                self._clear_invalid(row, col)
                return
            self._mark_invalid(row, col, exc)
            return
        if (row, col) in self._invalid:
            del self._invalid[(row, col)]
            cell.setStyleSheet("")
            cell.setToolTip("")
            self._report_problem()
        self._kernel[row, col] = value
        self.preset_box.setCurrentIndex(0)
        self._draw_heat()
        self.kernel_changed.emit(self.kernel())

    def _on_cell_left(self, row: int, col: int) -> None:
        """Leaving a cell (Enter, Tab, a click elsewhere): an unfinished number is now an error."""
        if row >= len(self._cells) or col >= len(self._cells[row]):
            return
        try:
            parse_cell(self._cells[row][col].text())
        except ValueError as exc:
            self._mark_invalid(row, col, exc)

    def _mark_invalid(self, row: int, col: int, exc: ValueError) -> None:
        cell = self._cells[row][col]
        message = (f"Cell ({row}, {col}): {exc}. The last valid value "
                   f"{cell_text(float(self._kernel[row, col]))} stays in use.")
        self._invalid[(row, col)] = message
        cell.setStyleSheet(INVALID_STYLE)
        cell.setToolTip(message)
        self._report_problem()

    def _clear_invalid(self, row: int, col: int) -> None:
        if (row, col) in self._invalid:
            del self._invalid[(row, col)]
            self._cells[row][col].setStyleSheet("")
            self._cells[row][col].setToolTip("")
            self._report_problem()

    def _report_problem(self, extra: str = "") -> None:
        message = extra or next(iter(self._invalid.values()), "")
        if len(self._invalid) > 1 and not extra:
            message += f" ({len(self._invalid)} cells need fixing.)"
        self.problem_label.setText(message)
        self.problem_label.setVisible(bool(message))
        self.problem_changed.emit(message)


def resize_kernel(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Centre-crop or zero-pad ``kernel`` to ``shape``."""
    out = np.zeros(shape, np.float32)
    kh, kw = kernel.shape
    h, w = shape
    src_r, dst_r = max(0, (kh - h) // 2), max(0, (h - kh) // 2)
    src_c, dst_c = max(0, (kw - w) // 2), max(0, (w - kw) // 2)
    n_r, n_c = min(kh, h), min(kw, w)
    out[dst_r:dst_r + n_r, dst_c:dst_c + n_c] = kernel[src_r:src_r + n_r, src_c:src_c + n_c]
    return out
