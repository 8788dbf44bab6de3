"""The Kernel Lab tab: load a picture, edit a conv layer, watch
input -> conv -> activation -> pool recompute as you type.

Controls on the left; on the right one FeatureMapGrid per stage, all placed in
input coordinates so zoom and pan follow each other, and under them the
arithmetic of the clicked pixel. The numbers come from cnnviz.engine via
``pipeline.run_pipeline``, computed by a worker thread (newest edit wins).
"""

from __future__ import annotations

import html
import logging
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QByteArray, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                             QProgressBar, QPushButton, QScrollArea, QSplitter, QVBoxLayout,
                             QWidget)

from cnnviz.atomic import atomic_write_text
from cnnviz.gui.kernel_lab import input_loader
from cnnviz.gui.kernel_lab.arithmetic import explain_conv, explain_pool
from cnnviz.gui.kernel_lab.arithmetic_panel import ArithmeticPanel, fmt
from cnnviz.gui.kernel_lab.filter_bank import FilterBank
from cnnviz.gui.kernel_lab.image_loader import ImageLoader
from cnnviz.gui.kernel_lab.input_loader import InputImage
from cnnviz.gui.kernel_lab.layer_controls import LayerControls
from cnnviz.gui.kernel_lab.network_kernels import NetworkKernelsButton, NoKernels, for_picture
from cnnviz.gui.kernel_lab.pipeline import ACTIVATION_LABELS, LayerConfig
from cnnviz.gui.kernel_lab.fast_render import recolour
from cnnviz.gui.kernel_lab.filter_conv import conv_threads
from cnnviz.gui.kernel_lab.worker import Output, PipelineRunner, Request, stage_step
from cnnviz.gui.widgets import theme
from cnnviz.gui.widgets.banner import Banner
from cnnviz.gui.widgets.feature_map_grid import FeatureMapGrid
from cnnviz.gui.widgets.kernel_json import bank_to_json
from cnnviz.gui.widgets.png_export import save_widget_png
from cnnviz.gui.widgets.view_link import ViewLink

log = logging.getLogger(__name__)

STAGES = ("input", "conv", "activation", "pool")
SEED_EXAMPLE_SIZE = (80, 80)
HOVER_VALUES = 2        # values per stage in the status line (all of them are in the titles)
MIN_TILE_HEIGHT = 110   # px a row of maps keeps (title + a readable map); more rows scroll
SHARPEN_DELAY_MS = 60   # after the last zoom or resize, big maps are coloured finer if needed


def _full_or_too_large(path: Path):
    """The loader thread's job for a plain open: the image, or its (h, w) if too large."""
    from cnnviz.data.images import ImageTooLargeError

    try:
        return input_loader.load_full(path)
    except ImageTooLargeError as exc:
        return tuple(exc.size)


class KernelLab(QWidget):
    computed = pyqtSignal(object)            # Output, after its maps are drawn
    input_changed = pyqtSignal(str, tuple)   # name, shape the layer computes on (1, C, H, W)
    hover_text = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image: InputImage | None = None
        self.output: Output | None = None
        self.last_latency = 0.0                       # edit -> maps drawn, seconds
        self._selection: tuple[str, int, int, int] | None = None
        self._input_shape = None
        self._shown: list[str] = []
        self._pending_label = None    # (chw, label html, name, shape) until its maps are drawn
        self._colour_choice = True    # the user's RGB/grey choice for colour pictures
        self._syncing_colour = False
        self.runner = PipelineRunner(self)
        self.runner.finished.connect(self._on_output)
        self.runner.failed.connect(self._on_failed)
        self.loader = ImageLoader(self)       # decodes files off the GUI thread
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        self._loading: tuple[int, Path, bool] | None = None   # ticket, path, ask if large
        self.link = ViewLink()
        # a zoom that shows more map pixels than a coarsely coloured map holds
        # colours it finer (once the zoom has paused: not at every drag event)
        self._sharpen_timer = QTimer(self, singleShot=True, interval=SHARPEN_DELAY_MS)
        self._sharpen_timer.timeout.connect(self.sharpen)
        self._build()

    # --- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("kernel_lab_splitter")
        root = QHBoxLayout(self)
        root.setContentsMargins(2, 2, 2, 2)
        root.addWidget(self.splitter)

        controls = QWidget()
        column = QVBoxLayout(controls)
        column.setContentsMargins(4, 4, 4, 4)
        column.addWidget(self._input_group())
        filters = QGroupBox("Filters (conv weights)")
        self.bank = FilterBank(channels=3)
        filters_layout = QVBoxLayout(filters)
        filters_layout.addWidget(self.bank)
        self.network_button = NetworkKernelsButton()
        self.network_button.chosen.connect(self.use_network_kernels)
        self.network_button.failed.connect(
            lambda m: self.input_banner.show_message(html.escape(m, quote=False), "error"))
        filters_layout.addWidget(self.network_button)
        column.addWidget(filters)
        layer = QGroupBox("Layer")
        self.layer = LayerControls()
        QVBoxLayout(layer).addWidget(self.layer)
        column.addWidget(layer)
        column.addWidget(self._view_group())
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        # wide kernels (7+ columns) make the panel wider than its share: scroll, never clip
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setMinimumWidth(min(controls.sizeHint().width() + 24, 520))
        self.controls = controls
        self.controls_scroll = scroll
        self.splitter.addWidget(scroll)
        # a handle the user can see and grab, not an unmarked 4-px gap
        self.splitter.setHandleWidth(8)
        self.splitter.setStyleSheet(
            "QSplitter#kernel_lab_splitter::handle { background: #c8c8c8; "
            "border-left: 1px solid #a0a0a0; border-right: 1px solid #a0a0a0; }")

        right = QSplitter(Qt.Orientation.Vertical)
        right.setObjectName("kernel_lab_right_splitter")
        self.right_splitter = right
        pipeline = QWidget()
        pipeline_layout = QVBoxLayout(pipeline)
        pipeline_layout.setContentsMargins(0, 0, 0, 0)
        self.input_banner = Banner()
        self.compute_banner = Banner()
        busy_row = QHBoxLayout()
        self.busy_label = QLabel("Computing the maps…")
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)          # no known length: a moving busy bar
        self.busy_bar.setMaximumHeight(12)
        self.busy_bar.setTextVisible(False)
        busy_row.addWidget(self.busy_label)
        busy_row.addWidget(self.busy_bar, 1)
        for widget in (self.busy_label, self.busy_bar):
            # its line stays reserved while hidden: showing it for an edit on the
            # worker thread would otherwise move the maps and repaint every grid twice
            policy = widget.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            widget.setSizePolicy(policy)
        self._show_busy(False)
        pipeline_layout.addLayout(busy_row)
        pipeline_layout.addWidget(self.input_banner)
        pipeline_layout.addWidget(self.compute_banner)
        # stages read in Z order: input | conv, then activation | pool
        maps_host = QWidget()
        self.maps_layout = QGridLayout(maps_host)
        self.maps_layout.setContentsMargins(0, 0, 0, 0)
        self.maps_layout.setSpacing(2)
        self.grids: dict[str, FeatureMapGrid] = {}
        for i, name in enumerate(STAGES):
            grid = FeatureMapGrid(max_columns=1 if name == "input" else 3,
                                  min_tile_height=MIN_TILE_HEIGHT)
            grid.setObjectName(f"{name}_grid")
            grid.tile_clicked.connect(lambda t, r, c, n=name: self.click(n, t, r, c))
            grid.hovered.connect(self._on_hover)
            grid.hover_left.connect(self._on_hover_left)
            self.grids[name] = grid
            self.maps_layout.addWidget(grid, i // 2, i % 2)
        for k in range(2):
            self.maps_layout.setRowStretch(k, 1)
            self.maps_layout.setColumnStretch(k, 1)
        # 12 maps need more rows than fit: the stages scroll instead of squeezing or clipping
        self.maps_scroll = QScrollArea()
        self.maps_scroll.setObjectName("kernel_lab_maps_scroll")
        self.maps_scroll.setWidget(maps_host)
        self.maps_scroll.setWidgetResizable(True)
        self.maps_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.maps_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        pipeline_layout.addWidget(self.maps_scroll, 1)
        self.pipeline_view = pipeline
        right.addWidget(pipeline)
        self.arithmetic = ArithmeticPanel()
        right.addWidget(self.arithmetic)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setSizes([640, 200])
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)

        self.bank.changed.connect(self.recompute)
        self.bank.depthwise_loaded.connect(
            lambda on: self.layer.set_choice(self.layer.mode_box, "depthwise" if on else "sum"))
        self.layer.changed.connect(self.recompute)

    def _input_group(self) -> QGroupBox:
        group = QGroupBox("Input")
        layout = QVBoxLayout(group)
        self.input_label = QLabel("no image")
        self.input_label.setWordWrap(True)
        layout.addWidget(self.input_label)
        row = QHBoxLayout()
        self.open_button = QPushButton("Open image...")
        self.open_button.clicked.connect(self.open_image_dialog)
        self.sample_box = QComboBox()
        self.sample_box.setToolTip("Bundled photos")
        self.sample_box.textActivated.connect(self._on_sample_chosen)
        self.mnist_button = QPushButton("MNIST...")
        self.mnist_button.setToolTip("Pick a handwritten digit from MNIST")
        self.mnist_button.clicked.connect(self.open_mnist_dialog)
        row.addWidget(self.open_button)
        row.addWidget(self.sample_box, 1)
        row.addWidget(self.mnist_button)
        layout.addLayout(row)
        colour_row = QHBoxLayout()
        colour_row.addWidget(QLabel("Use as"))
        self.colour_box = QComboBox()
        self.colour_box.addItem("RGB (3 channels)", True)
        self.colour_box.addItem("Grey (1 channel)", False)
        self.colour_box.currentIndexChanged.connect(lambda _: self._on_colour_mode())
        colour_row.addWidget(self.colour_box, 1)
        layout.addLayout(colour_row)
        return group

    def _view_group(self) -> QGroupBox:
        group = QGroupBox("View")
        row = QHBoxLayout(group)
        self.scale_box = QComboBox()
        self.scale_box.addItem("Shared colour scale", True)
        self.scale_box.addItem("Per-map colour scale", False)
        self.scale_box.setToolTip("One scale for all maps of a stage, or one per map")
        self.scale_box.currentIndexChanged.connect(lambda _: self.recompute())
        reset = QPushButton("Reset zoom")
        reset.setToolTip("Show the whole input in every stage")
        reset.clicked.connect(self.reset_zoom)
        row.addWidget(self.scale_box, 1)
        row.addWidget(reset)
        return group

    def fill_samples(self) -> None:
        """List the bundled photos (deferred: it imports OpenCV's side of the data module)."""
        from cnnviz.data.images import sample_images

        self.samples = sample_images()
        self.sample_box.clear()
        self.sample_box.addItem("Samples...")
        self.sample_box.addItems(list(self.samples))

    # --- input -------------------------------------------------------------------------
    @property
    def colour(self) -> bool:
        return bool(self.colour_box.currentData())

    def set_input(self, image: InputImage) -> None:
        self.image = image
        self.input_banner.clear()
        if image.warnings:
            self.input_banner.show_message(
                "<br>".join(html.escape(w) for w in image.warnings)
                + ". The picture is shown as decoded.", "warning")
        self._selection = None
        self.arithmetic.show_hint()
        # a grey picture is used as grey and the box says so; a colour one gets the
        # user's last choice back
        self._syncing_colour = True
        self.colour_box.setCurrentIndex(0 if image.is_colour and self._colour_choice else 1)
        self._syncing_colour = False
        x = input_loader.as_chw(image, self.colour)
        self._chw = x                  # computed once per input, not per edit
        self._input_shape = None       # forces a zoom reset when the maps arrive
        self.bank.set_channels(x.shape[0])
        size = f"{image.original_size[1]} x {image.original_size[0]}"
        note = f" (downscaled from {size})" if image.downscaled else ""
        # the name and shape are shown with the first maps of this input, not before:
        # a big photo's maps take seconds and the old ones stay up meanwhile
        self._pending_label = (x, f"<b>{html.escape(image.name)}</b> {(1, *x.shape)}{note}",
                               image.name, (1, *x.shape))
        self.colour_box.setEnabled(image.is_colour)
        self.recompute()

    def open_path(self, path: str | Path) -> None:
        """Open an image file; problems and size questions go to the input banner.

        The header is read here (a few kilobytes); the decode runs on the loader
        thread and its result arrives in _on_loaded.
        """
        from cnnviz.data.images import ImageLoadError

        path = Path(path)
        try:
            size = input_loader.header_size(path)
        except ImageLoadError as exc:
            self._load_failed(path, str(exc))
            return
        except Exception as exc:  # still a message, not a crash
            log.exception("reading the header of %s failed", path)
            self._load_failed(path, f"{type(exc).__name__}: {exc}")
            return
        if input_loader.needs_question(size):
            self._offer_downscale(path, size)
            return
        self._start_loading(path, lambda: _full_or_too_large(path), ask_if_large=True)

    def _start_loading(self, path: Path, job, ask_if_large: bool = False, what: str = "") -> None:
        ticket = self.loader.submit(job)
        self._loading = (ticket, path, ask_if_large)
        self.input_banner.show_message(
            f"Loading <b>{html.escape(path.name)}</b>{what}… The current input stays "
            f"until it is ready.", "info", [("Cancel", self.cancel_loading)])

    def cancel_loading(self) -> None:
        self.loader.cancel()
        self._loading = None
        self.input_banner.clear()

    @property
    def loading(self) -> bool:
        return self._loading is not None

    def _on_loaded(self, ticket: int, image: InputImage) -> None:
        if self._loading is None or self._loading[0] != ticket:
            return
        _, path, ask_if_large = self._loading
        self._loading = None
        if isinstance(image, tuple):   # past the pixel limit, size unknown from the header
            self._offer_downscale(path, image)
            return
        if ask_if_large and input_loader.needs_question(image.pixels.shape[:2]):
            self._offer_downscale(path, tuple(image.pixels.shape[:2]), image)
            return
        self.set_input(image)

    def _on_load_failed(self, ticket: int, message: str) -> None:
        if self._loading is None or self._loading[0] != ticket:
            return
        _, path, _ = self._loading
        self._loading = None
        self._load_failed(path, message)

    def _load_failed(self, path: Path, reason: str) -> None:
        self.input_banner.show_message(
            f"Could not open <b>{html.escape(path.name)}</b>: {html.escape(reason)}. "
            f"The current input stays.", "error")

    def _offer_downscale(self, path: Path, size, loaded: InputImage | None = None) -> None:
        h, w = size
        th, tw = input_loader.downscaled_size(size)
        actions = [(f"Downscale to {tw} x {th}", lambda: self._load_downscaled(path, size, loaded))]
        extra = ""
        if input_loader.can_keep_full_size(size):
            actions.append(("Keep full size", lambda: self._load_full_anyway(path, loaded)))
        else:
            extra = " It is too large to load at full size."
        self.input_banner.show_message(
            f"<b>{html.escape(path.name)}</b> is {w} x {h} pixels, more than "
            f"{input_loader.MAX_SIDE} px on a side.{extra} Downscale it for the lab?",
            "warning", actions)

    def _load_downscaled(self, path: Path, size, loaded: InputImage | None) -> None:
        if loaded is not None:   # already in memory: a resize, quick
            self.set_input(input_loader.downscale_pixels(loaded))
            return
        th, tw = input_loader.downscaled_size(size)
        self._start_loading(path, lambda: input_loader.load_downscaled(path, size),
                            what=f" ({size[1]} x {size[0]}, downscaling to {tw} x {th})")

    def _load_full_anyway(self, path: Path, loaded: InputImage | None) -> None:
        if loaded is not None:
            self.set_input(loaded)
            return
        self._start_loading(path, lambda: input_loader.load_full(path))

    def open_sample(self, name: str) -> None:
        if not hasattr(self, "samples"):
            self.fill_samples()
        self.open_path(self.samples[name])

    def open_digit(self, digit: np.ndarray, label: int, split: str, index: int) -> None:
        self.set_input(input_loader.mnist_input(digit, label, split, index))

    def load_seed_example(self, sample: str = "chelsea") -> None:
        """CNN-NOTES' example: an 80x80 RGB photo, 3-channel Sobel x, ReLU, 2x2 max pool."""
        from cnnviz.data.images import resize

        if not hasattr(self, "samples"):
            self.fill_samples()
        photo = input_loader.load_full(self.samples[sample])
        pixels = resize(photo.pixels, SEED_EXAMPLE_SIZE)
        self.colour_box.setCurrentIndex(0)
        self.bank.load_bank_presets(["Sobel x"])
        self.layer.blockSignals(True)
        for spins, value in ((self.layer.stride, 1), (self.layer.padding, 0),
                             (self.layer.dilation, 1), (self.layer.pool_size, 2),
                             (self.layer.pool_stride, 2)):
            for spin in spins:
                spin.setValue(value)
        self.layer.set_choice(self.layer.mode_box, "sum")
        self.layer.set_choice(self.layer.activation_box, "relu")
        self.layer.set_choice(self.layer.pool_box, "max")
        self.layer.blockSignals(False)
        self.set_input(InputImage(pixels, f"{sample} 80x80", photo.original_size))

    def open_image_dialog(self) -> None:
        from cnnviz.gui.widgets.file_dialogs import IMAGE_FILTER, ask_open_path

        path = ask_open_path(self, "Open image", IMAGE_FILTER)
        if path:
            self.open_path(path)

    def open_mnist_dialog(self) -> None:
        from cnnviz.gui.widgets.mnist_browser import MnistDialog

        try:
            dialog = MnistDialog(self)
        except Exception as exc:   # missing or damaged dataset files
            log.exception("MNIST browser failed to open")
            self.input_banner.show_message(f"Could not load MNIST: {exc}", "error")
            return
        dialog.browser.digit_chosen.connect(self.open_digit)
        dialog.exec()

    def _on_sample_chosen(self, name: str) -> None:
        if name in getattr(self, "samples", {}):
            self.open_sample(name)
        self.sample_box.setCurrentIndex(0)

    def _on_colour_mode(self) -> None:
        if self._syncing_colour:
            return
        if self.image is None or self.image.is_colour:
            self._colour_choice = self.colour
        if self.image is not None:
            self.set_input(self.image)

    # --- a network's first layer ----------------------------------------------------------
    def set_training_source(self, take) -> None:
        """``take() -> (model, title) or a sentence``: the Training tab's model."""
        self.network_button.set_training_source(take)

    def use_network_kernels(self, k) -> bool:
        """A network's first conv layer (network_kernels.NetworkKernels) in the
        bank, with its stride, padding and dilation, on the current picture
        (made grey for a grey network's kernels; said in the banner)."""
        if self.image is None:
            self.input_banner.show_message("Open a picture first: the kernels run on it.",
                                           "warning")
            return False
        try:
            weights, colour, fit = for_picture(k, self.image.is_colour)
        except NoKernels as e:
            self.input_banner.show_message(str(e), "error")
            return False
        if self.image.is_colour and colour != self.colour:
            self._colour_choice = colour
            self.set_input(self.image)          # as grey or colour, before the bank
        self.bank.set_bank(weights, k.bias, k.names)
        controls = self.layer
        for spins, pair in ((controls.stride, k.stride), (controls.padding, k.padding),
                            (controls.dilation, k.dilation)):
            for spin, v in zip(spins, pair):
                spin.setValue(int(v))
        controls.set_choice(controls.mode_box, "sum")
        f, c, kh, kw = k.weights.shape
        text = (f"{k.source}: {k.layer}'s {f} filters of {c} channel(s), {kh}x{kw}, stride "
                f"{k.stride[0]}, padding {k.padding[0]}, in the bank."
                + "".join(f" {t}." for t in [fit, *k.notes] if t))
        self.input_banner.show_message(html.escape(text, quote=False), "info")
        return True

    # --- computing -------------------------------------------------------------------------
    def config(self) -> LayerConfig:
        v = self.layer.values()
        own = tuple(tuple(names) if not same else ()
                    for names, same in zip(self.bank.channel_kernel_names, self.bank.same_for_all))
        return LayerConfig(weights=self.bank.weights.copy(), bias=self.bank.bias.copy(),
                           names=tuple(self.bank.names), channel_kernel_names=own, **v)

    def recompute(self) -> None:
        if self.image is None:
            return
        request = Request(self._chw, self.config(),
                          shared_scale=bool(self.scale_box.currentData()),
                          rgb_input=True, submitted=time.perf_counter(),
                          density=self.densities())
        self.runner.submit(request)
        self._show_busy(self.runner.busy)   # on the worker thread: say so until it is drawn

    def densities(self) -> dict[str, float]:
        """Per shown stage, input pixels per screen pixel in its tiles (view
        coordinates are input pixels), for colouring big maps at the size seen."""
        out = {}
        for name, grid in self.grids.items():
            if grid.tiles and grid.isVisible():
                view = grid.tiles[0].view
                screen = view.width() * grid.devicePixelRatioF()
                if screen >= 1:
                    out[name] = view.viewRect().width() / screen
        return out

    def sharpen(self) -> None:
        """Colour a coarsely coloured stage finer where a zoom (or a larger
        tile) now shows more of its pixels than its images hold."""
        if self.output is None:
            return
        request = Request(self.output.request.image, self.output.request.config,
                          self.output.request.shared_scale, True, 0.0, self.densities())
        for name, grid in self.grids.items():
            stage, rendered = self.output.result.stage(name), grid.rendered
            if stage is None or rendered is None or rendered.step == 1:
                continue
            step = stage_step(request, stage)
            if step < rendered.step:
                grid.set_rendered(recolour(rendered, step, conv_threads().map),
                                  header=grid.header.text, origin=grid.origin,
                                  pixel_size=grid.pixel_size)

    @property
    def busy(self) -> bool:
        """A file is being decoded or maps are being computed."""
        return self.loading or self.loader.busy or self.runner.busy

    def _show_busy(self, busy: bool) -> None:
        self.busy_bar.setVisible(busy)
        self.busy_label.setVisible(busy)

    def _on_failed(self, request: Request, message: str) -> None:
        self._show_busy(self.runner.busy)
        self.compute_banner.show_message(
            f"Cannot compute this layer: {message}. The maps show the last settings that "
            f"worked.", "error")
        self.last_latency = time.perf_counter() - request.submitted

    def _on_output(self, output: Output) -> None:
        result = output.result
        self.output = output
        shown = [name for name in STAGES if result.stage(name) is not None]
        rebuilt = False
        for stage, rendered in zip(result.stages, output.rendered):
            grid = self.grids[stage.name]
            origin = (stage.cols.offset, stage.rows.offset)
            pixel_size = (stage.cols.scale, stage.rows.scale)
            if (grid.rendered is rendered and grid.origin == origin
                    and grid.pixel_size == pixel_size and grid.header.text == stage.title):
                continue     # the same input image (cached): setting it again repaints the grid
            rebuilt |= grid.set_rendered(rendered, header=stage.title, origin=origin,
                                         pixel_size=pixel_size)
        if shown != self._shown:
            self._place_grids(shown)
            self._shown, rebuilt = shown, True
        overflow = output.overflow
        if result.error is not None:
            self.compute_banner.show_message(
                f"Cannot pool: {result.error.message}. Change the window or stride.", "error")
        elif overflow:
            self.compute_banner.show_message(overflow, "warning")
        else:
            self.compute_banner.clear()
        if rebuilt:
            self.link.set_views([v for name in shown for v in self.grids[name].views])
            for name in shown:      # one tile per grid: the grid's tiles move together
                self.grids[name].views[0].sigRangeChanged.connect(lambda *_: self._sharpen_timer.start())
        pending = self._pending_label
        if pending is not None and output.request.image is pending[0]:
            self._pending_label = None
            self.input_label.setText(pending[1])
            self.input_changed.emit(pending[2], pending[3])
            self.hover_text.emit("")     # the old input's values are gone with its maps
        self._show_busy(self.runner.busy)
        shape = result.stages[0].tensor.shape
        if shape != self._input_shape:
            self._input_shape = shape
            self.reset_zoom()
        elif rebuilt:   # new tiles start fitted to their maps: show the user's region
            self.link.sync_from(self.grids["input"].views[0])
        self._refresh_selection()
        self.last_latency = time.perf_counter() - output.request.submitted
        self.computed.emit(output)

    def _place_grids(self, visible: list[str]) -> None:
        """Visible stages in Z order, two a row; a lone last stage spans the row, so
        a hidden stage gives its space to the others."""
        for name, grid in self.grids.items():
            self.maps_layout.removeWidget(grid)
            grid.setVisible(name in visible)
        rows = (len(visible) + 1) // 2
        for i, name in enumerate(visible):
            span = 2 if i == len(visible) - 1 and i % 2 == 0 else 1
            self.maps_layout.addWidget(self.grids[name], i // 2, i % 2, 1, span)
        for k in range(2):
            self.maps_layout.setRowStretch(k, 1 if k < rows else 0)

    def reset_zoom(self) -> None:
        grid = self.grids["input"]
        if grid.tiles:
            grid.reset_view()
            self.link.sync_from(grid.views[0])

    # --- hover and click ------------------------------------------------------------------
    def _on_hover(self, x: float, y: float) -> None:
        parts = []
        for name, grid in self.grids.items():
            if grid.isVisible() and grid.rendered is not None:
                grid.show_values_at(x, y)    # every tile's title gets its value
                parts.append(self._hover_part(name, grid, x, y))
        self.hover_text.emit("  |  ".join(p for p in parts if p))

    def _hover_part(self, name: str, grid: FeatureMapGrid, x: float, y: float) -> str:
        """One stage's piece of the status line, short enough that the line fits: the
        pixel and up to HOVER_VALUES values, whole; the rest are in the map titles."""
        pixel = grid.view_to_pixel(x, y)
        if pixel is None:
            return ""
        stage = grid.header.text.split(":")[0].split(" (")[0]   # "conv", not "conv (depthwise)"
        count = 1 if grid.rendered.rgb else len(grid.tiles)
        values = [grid.value_text(i, *pixel) for i in range(min(count, HOVER_VALUES))]
        more = f" +{count - HOVER_VALUES} more" if count > HOVER_VALUES else ""
        return f"{stage} [{pixel[0]}, {pixel[1]}] {', '.join(values)}{more}"

    def _on_hover_left(self) -> None:
        for grid in self.grids.values():
            if grid.rendered is not None:
                grid.show_values_at(float("nan"), float("nan"))

    def click(self, stage: str, tile: int, row: int, col: int) -> None:
        """What a left click on a map pixel does; also the tests' entry point."""
        if stage == "input" or self.output is None:
            return
        self._selection = (stage, tile, row, col)
        self._refresh_selection()

    def _refresh_selection(self) -> None:
        for grid in self.grids.values():
            grid.clear_overlays()
        if self._selection is None or self.output is None:
            return
        stage, tile, row, col = self._selection
        result = self.output.result
        st = result.stage(stage)
        if st is None or tile >= st.maps.shape[0] or row >= st.maps.shape[1] or \
                col >= st.maps.shape[2]:
            self._selection = None
            self.arithmetic.show_hint()
            return
        selected = pg.mkPen(theme.SELECTED, width=2)
        if stage == "pool":
            a = explain_pool(result, tile, row, col)
            source = "activation" if result.stage("activation") else "conv"
            grid = self.grids[source]
            cells = [(r, c) for r in a.window_rows for c in a.window_cols]
            grid.mark_cells(tile, cells, pg.mkPen(theme.RECEPTIVE_FIELD, width=2))
            if a.winner is not None:
                grid.mark_cells(tile, [(a.window_rows[a.winner[0]], a.window_cols[a.winner[1]])],
                                selected, pg.mkBrush(0, 192, 0, 90))
            self.grids["pool"].mark_cells(tile, [(row, col)], selected)
            self.arithmetic.show_pool(a, f"{st.title.split(':')[0]} \u00b7 {st.map_labels[tile]}")
            self._fit_arithmetic()
            return
        a = explain_conv(result, tile, row, col)
        inside = [(r, c) for i, r in enumerate(a.input_rows) for j, c in enumerate(a.input_cols)
                  if not a.is_padding[i, j]]
        padded = [(r, c) for i, r in enumerate(a.input_rows) for j, c in enumerate(a.input_cols)
                  if a.is_padding[i, j]]
        input_grid = self.grids["input"]
        input_tile = 0 if len(input_grid.tiles) == 1 else (
            tile % len(input_grid.tiles) if result.config.depthwise else 0)
        if inside:
            input_grid.mark_cells(input_tile, inside, pg.mkPen(theme.RECEPTIVE_FIELD, width=2))
        if padded:
            input_grid.mark_cells(input_tile, padded,
                                  pg.mkPen(theme.PADDING, width=2, style=Qt.PenStyle.DashLine),
                                  pg.mkBrush(138, 43, 226, 60))
        for name in ("conv", "activation"):
            if result.stage(name) is not None:
                self.grids[name].mark_cells(tile, [(row, col)], selected)
        title = f"conv \u00b7 {result.stage('conv').map_labels[tile]}"
        self.arithmetic.show_conv(a, title)
        act = result.stage("activation")
        if stage == "activation" and act is not None:
            label = ACTIVATION_LABELS[result.config.activation]
            self.arithmetic.append(
                f"<p style='font-size:11pt'>then {label}({fmt(a.map_value)}) = "
                f"<b>{fmt(float(act.maps[tile, row, col]))}</b></p>")
        self._fit_arithmetic()

    def _fit_arithmetic(self) -> None:
        """Give the arithmetic pane the height its tables need (every channel's, up to
        two thirds of the column), taken from the maps, which scroll."""
        panel = self.arithmetic
        doc = panel.document()
        doc.setTextWidth(panel.viewport().width())
        need = int(np.ceil(doc.size().height())) + 2 * panel.frameWidth() + 2
        sizes = self.right_splitter.sizes()
        total = sum(sizes)
        need = min(need, total * 2 // 3)
        if total and sizes[1] < need:
            self.right_splitter.setSizes([total - need, need])

    # --- export and state --------------------------------------------------------------------
    def export_view_png(self, path: str | Path) -> None:
        save_widget_png(self, path)

    def kernel_json(self) -> str:
        return bank_to_json(self.bank.weights, self.bank.bias, self.bank.names,
                            self.layer.depthwise)

    def export_kernel_json(self, path: str | Path) -> None:
        atomic_write_text(path, self.kernel_json())

    def save_state(self, settings) -> None:
        settings.setValue("kernel_lab/splitter", self.splitter.saveState())
        settings.setValue("kernel_lab/right_splitter", self.right_splitter.saveState())

    def restore_state(self, settings) -> None:
        for key, splitter in (("kernel_lab/splitter", self.splitter),
                              ("kernel_lab/right_splitter", self.right_splitter)):
            state = settings.value(key)
            if isinstance(state, QByteArray):
                splitter.restoreState(state)

    def shutdown(self) -> None:
        self.loader.stop()
        self.runner.stop()
