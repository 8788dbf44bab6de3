"""The main window: one tab per job, menus, status bar, drag-and-drop, saved state.

Other tabs join with ``window.add_tab(widget, "Training")``; a tab that has a
``shutdown()`` method gets it called when the window closes (stop workers
there), and ``save_state(settings)`` / ``restore_state(settings)`` if present.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings, Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (QLabel, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout,
                             QWidget)

from cnnviz import __version__
from cnnviz.gui.settings import app_settings
from cnnviz.gui.widgets.plot_cache import ignore_activation
from cnnviz.gui.widgets.png_export import save_widget_png

log = logging.getLogger(__name__)

SHORTCUTS = [
    ("Ctrl+O", "Open an image"),
    ("Ctrl+M", "Open an MNIST digit"),
    ("Ctrl+E", "Export the view as PNG"),
    ("Ctrl+Shift+K", "Export the kernel bank as JSON"),
    ("Ctrl+0", "Reset zoom"),
    ("Ctrl+Tab", "Next tab"),
    ("Ctrl+Q", "Quit"),
    ("Mouse wheel / drag", "Zoom / pan any map (all stages follow)"),
    ("Click a map pixel", "Receptive field and arithmetic"),
    ("Right-click a map", "Export that map as PNG or .npy"),
]


class MainWindow(QMainWindow):
    def __init__(self, load_default_input: bool = True):
        super().__init__()
        self.setWindowTitle("cnnviz")
        self._lab_title = "cnnviz"
        self.setAcceptDrops(True)
        self.settings = app_settings()
        self.closed_cleanly = False       # set by closeEvent: every thread stopped, settings synced
        self.exits_on_close = False       # the process ends when it closes (run_gui sets it)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)

        from cnnviz.gui.kernel_lab.lab import KernelLab

        self.kernel_lab = KernelLab()
        self.add_tab(self.kernel_lab, "Kernel Lab")
        self._build_status_bar()
        self._build_menus()
        self.kernel_lab.input_changed.connect(self._on_input_changed)
        self.kernel_lab.hover_text.connect(self.value_label.setText)
        self.kernel_lab.set_training_source(self.training_model_copy)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self._restore()
        if load_default_input:
            # after the window is up: the first photo pulls in OpenCV
            QTimer.singleShot(0, self._load_default_input)

    # --- tabs ----------------------------------------------------------------------------
    def add_tab(self, widget: QWidget, title: str) -> int:
        index = self.tabs.addTab(widget, title)
        ignore_activation(widget)       # a tab switch paints its plots once, not thrice
        if hasattr(widget, "restore_state") and hasattr(self, "settings"):
            widget.restore_state(self.settings)
        return index

    def add_lazy_tab(self, factory, title: str) -> int:
        """A tab whose widget is built by ``factory()`` the first time it is shown,
        so start-up does not pay for tabs the user has not opened yet."""
        return self.add_tab(LazyTab(factory, self.settings), title)

    def add_standard_tabs(self) -> None:
        """The Layer Stepper, Training and Network builder tabs, built on first visit."""
        def stepper():
            from cnnviz.gui.stepper.tab import StepperTab
            tab = StepperTab()
            tab.set_image_source(self._kernel_lab_picture)
            tab.set_training_source(self.training_model_copy, self._why_no_training_model)
            tab.title_changed.connect(lambda text, t=tab: self._on_tab_title(t, text))
            QTimer.singleShot(0, lambda t=tab: self._on_tab_title(t, t.window_title()))
            return tab

        def training():
            from cnnviz.gui.training.tab import TrainingTab
            tab = TrainingTab()
            # the Training tab's "Open in Layer Stepper" button, once it has one
            if hasattr(tab, "open_in_stepper_requested"):
                tab.open_in_stepper_requested.connect(self.open_training_model_in_stepper)
            return tab

        def builder():
            from cnnviz.gui.builder import NetworkBuilderTab
            tab = NetworkBuilderTab()
            tab.train_requested.connect(self.train_architecture)
            tab.step_requested.connect(self.step_architecture)
            tab.title_changed.connect(lambda text, t=tab: self._on_tab_title(t, text))
            return tab

        self.add_lazy_tab(stepper, "Layer Stepper")
        self.add_lazy_tab(training, "Training")
        self.add_lazy_tab(builder, "Network builder")

    # --- the Network builder's network in the Training tab and the Layer Stepper ------------
    def train_architecture(self, arch) -> None:
        """"Train this network": the Training tab shown, its model the built network."""
        training = self._inner_tab("Training", build=True)
        if training is not None:
            training.use_architecture(arch)

    def step_architecture(self, arch) -> bool:
        """"Step through this network": the Layer Stepper shown, stepping the
        built network (untrained, weights from seed 0). A network the Stepper
        cannot step leaves the builder shown with the Stepper's message."""
        builder = self._inner_tab("Network builder")
        model = arch.build(seed=0)
        stepper = self._inner_tab("Layer Stepper", build=True)
        if stepper is None:
            return False
        if stepper.use_model(model, arch.title):
            return True
        self._inner_tab("Network builder", build=True)
        if builder is not None:
            builder.show_message(f"The Layer Stepper cannot step it: "
                                 f"{stepper.banner.label.text().removeprefix('Cannot use this model: ')}")
        return False

    # --- the Training tab's model in the Layer Stepper --------------------------------------
    def _inner_tab(self, title: str, build: bool = False):
        """A standard tab's widget by its title; None if it is not built yet
        (``build``: switch to it, which builds it)."""
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i) == title:
                if build:
                    self.tabs.setCurrentIndex(i)
                widget = self.tabs.widget(i)
                return getattr(widget, "inner", widget)
        return None

    def _builder(self):
        """The Network builder, shown (built on first use)."""
        return self._inner_tab("Network builder", build=True)

    def _training_trainer(self):
        training = self._inner_tab("Training")
        return None if training is None else getattr(training, "trainer", None)

    def _why_no_training_model(self) -> str | None:
        if self._training_trainer() is None:
            return "No training run yet: start one in the Training tab."
        return None

    def training_model_copy(self):
        """(a copy of the Training tab's model now, a title saying so), or a
        sentence why not. The copy is taken between two batches, under the
        trainer's model lock; a wait longer than 0.1 s (the test set being
        evaluated) is not made, the GUI never freezes: the answer is then a
        NotYet sentence and the stepper asks again."""
        from cnnviz.gui.stepper.inputs import NotYet, weights_copy

        why = self._why_no_training_model()
        if why:
            return why
        trainer = self._training_trainer()
        if not trainer.model_lock.acquire(timeout=0.1):
            return NotYet("The Training tab is evaluating the test set.")
        try:
            model = weights_copy(trainer.model)
            step, seen, epoch = _settled_progress(trainer)
        finally:
            trainer.model_lock.release()
        # what its outputs mean: the run's dataset's classes ("cat", "dog", ...)
        model.metadata = {"class_names": list(self._inner_tab("Training").run_class_names())}
        epochs = trainer.config.epochs
        return model, (f"Model from Training at step {step:,} ({seen:,} images, "
                       f"epoch {max(epoch, 1)} of {epochs})")

    def open_training_model_in_stepper(self) -> bool:
        """The Training tab's "Open in Layer Stepper": the Layer Stepper shown,
        stepping through a copy of the model as it is now."""
        stepper = self._inner_tab("Layer Stepper", build=True)
        return stepper is not None and stepper.take_training_model()

    def _kernel_lab_picture(self):
        image = self.kernel_lab.image
        return None if image is None else (image.pixels, image.name)

    # --- chrome --------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.input_status = QLabel("no input")
        self.value_label = QLabel("")
        self.value_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar.addWidget(self.input_status)
        bar.addWidget(self.value_label, 1)

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        lab = self.kernel_lab
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action(file_menu, "&Open image...", lab.open_image_dialog,
                                        QKeySequence.StandardKey.Open)
        self.samples_menu = file_menu.addMenu("&Samples")
        self.samples_menu.aboutToShow.connect(self._fill_samples_menu)
        self._action(file_menu, "Open &MNIST digit...", lab.open_mnist_dialog, "Ctrl+M")
        file_menu.addSeparator()
        self._action(file_menu, "&Export view as PNG...", self.export_view_dialog, "Ctrl+E")
        self._action(file_menu, "Export &kernel as JSON...", self.export_kernel_dialog,
                     "Ctrl+Shift+K")
        file_menu.addSeparator()
        # the Network builder's files (its Ctrl+S saves too, when it is showing)
        self.open_architecture_action = self._action(
            file_menu, "Open a&rchitecture...", lambda: self._builder().open_dialog())
        self.save_architecture_action = self._action(
            file_menu, "Save architecture...", lambda: self._builder().save())
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        view_menu = self.menuBar().addMenu("&View")
        self._action(view_menu, "&Reset zoom", lab.reset_zoom, "Ctrl+0")
        self.shared_scale_action = QAction("&Shared colour scale", self, checkable=True,
                                           checked=True)
        self.shared_scale_action.toggled.connect(
            lambda on: lab.scale_box.setCurrentIndex(0 if on else 1))
        lab.scale_box.currentIndexChanged.connect(
            lambda i: self.shared_scale_action.setChecked(i == 0))
        view_menu.addAction(self.shared_scale_action)
        self.grey_action = QAction("&Grey input", self, checkable=True)
        self.grey_action.toggled.connect(lambda on: lab.colour_box.setCurrentIndex(1 if on else 0))
        lab.colour_box.currentIndexChanged.connect(lambda i: self.grey_action.setChecked(i == 1))
        view_menu.addAction(self.grey_action)
        view_menu.addSeparator()
        self._action(view_menu, "Next &tab", self._next_tab, "Ctrl+Tab")

        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(help_menu, "&About cnnviz", self.show_about)

    def _fill_samples_menu(self) -> None:
        if self.samples_menu.actions():
            return
        lab = self.kernel_lab
        if not hasattr(lab, "samples"):
            lab.fill_samples()
        self._action(self.samples_menu, "Seed example: 80x80 RGB, Sobel x, ReLU, 2x2 max pool",
                     lab.load_seed_example)
        self.samples_menu.addSeparator()
        for name in lab.samples:
            self._action(self.samples_menu, name, lambda n=name: lab.open_sample(n))

    def _current_inner(self) -> QWidget:
        """The current tab's own widget (a lazy tab's, once built)."""
        widget = self.tabs.currentWidget()
        return getattr(widget, "inner", None) or widget

    def _on_tab_changed(self, _index: int) -> None:
        # the input and the value under the cursor describe the Kernel Lab only
        on_lab = self.tabs.currentWidget() is self.kernel_lab
        self.input_status.setVisible(on_lab)
        self.value_label.setVisible(on_lab)
        inner = self._current_inner()
        # a tab that says what it shows titles the window; others: the Lab's picture
        self.setWindowTitle(inner.window_title() if hasattr(inner, "window_title")
                            else self._lab_title)

    def _on_tab_title(self, tab: QWidget, text: str) -> None:
        if self._current_inner() is tab:
            self.setWindowTitle(text)

    def _next_tab(self) -> None:
        self.tabs.setCurrentIndex((self.tabs.currentIndex() + 1) % self.tabs.count())

    def _on_input_changed(self, name: str, shape: tuple) -> None:
        self.input_status.setText(f"{name}  {shape}")
        self._lab_title = f"cnnviz \u2014 {name}"
        if self._current_inner() is self.kernel_lab:
            self.setWindowTitle(self._lab_title)

    def _load_default_input(self) -> None:
        try:
            self.kernel_lab.fill_samples()
            if "chelsea" in self.kernel_lab.samples:
                self.kernel_lab.open_sample("chelsea")
        except Exception:   # no bundled photos: start empty rather than not at all
            log.exception("could not load the default sample")

    # --- dialogs -------------------------------------------------------------------------
    def export_view_dialog(self) -> None:
        from cnnviz.gui.widgets.file_dialogs import ask_save_path

        inner = self._current_inner()
        name = inner.export_file_name() if hasattr(inner, "export_file_name") else "kernel_lab.png"
        path = ask_save_path(self, "Export view as PNG", "PNG image (*.png)", name, ".png")
        if path:
            try:
                save_widget_png(self.tabs.currentWidget(), path)
            except OSError as exc:
                QMessageBox.warning(self, "Export failed", str(exc))

    def export_kernel_dialog(self) -> None:
        from cnnviz.gui.widgets.file_dialogs import ask_save_path

        path = ask_save_path(self, "Export kernel bank as JSON", "Kernel JSON (*.json)",
                             "kernels.json", ".json")
        if path:
            try:
                self.kernel_lab.export_kernel_json(path)
            except OSError as exc:
                QMessageBox.warning(self, "Export failed", str(exc))

    def shortcuts(self) -> tuple[str, list]:
        """The current tab's keys (a tab may list its own as SHORTCUTS)."""
        inner = self._current_inner()
        if hasattr(inner, "SHORTCUTS"):
            return self.tabs.tabText(self.tabs.currentIndex()), inner.SHORTCUTS
        return "Kernel Lab", SHORTCUTS

    def show_shortcuts(self) -> None:
        where, keys = self.shortcuts()
        rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in keys)
        QMessageBox.information(self, f"Keyboard shortcuts: {where}",
                                f"<table cellpadding='3'>{rows}</table>")

    def show_about(self) -> None:
        QMessageBox.about(
            self, "About cnnviz",
            f"<b>cnnviz {__version__}</b><p>See how a convolutional network works: kernels, "
            f"feature maps, the forward and backward pass, training.</p><p>Every number comes "
            f"from cnnviz's own pure-NumPy engine.</p>")

    # --- drag and drop -------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.tabs.setCurrentWidget(self.kernel_lab)
            self.kernel_lab.open_path(files[0])

    # --- state ---------------------------------------------------------------------------
    def _restore(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)

    def closeEvent(self, event) -> None:
        tabs = [self.tabs.widget(i) for i in range(self.tabs.count())]
        # A tab with unsaved work (a trained model) asks first; Cancel keeps
        # the window open with everything running. (Not again for a window
        # already closed.)
        for tab in tabs if self.isVisible() else []:
            if hasattr(tab, "confirm_close") and not tab.confirm_close():
                event.ignore()
                return
        self.settings.setValue("window/geometry", self.saveGeometry())
        stopped = True
        for tab in tabs:
            if hasattr(tab, "save_state"):
                tab.save_state(self.settings)
            if hasattr(tab, "shutdown"):
                # None: joined, no timeout
                stopped = self._shutdown(tab, self.exits_on_close) is not False and stopped
        self.settings.sync()
        # the process may end without the interpreter's teardown (cnnviz.fast_exit)
        self.closed_cleanly = stopped and self.settings.status() == QSettings.Status.NoError
        if self.exits_on_close and not self.closed_cleanly:
            for tab in tabs:       # the normal exit follows: no thread may be left to it
                if hasattr(tab, "shutdown"):
                    tab.shutdown()
        super().closeEvent(event)

    @staticmethod
    def _shutdown(tab, for_exit: bool):
        """A tab's shutdown; ``for_exit``: the process ends next (the Training
        tab then need not wait for a batch in flight)."""
        inner = getattr(tab, "inner", tab)
        if for_exit and getattr(inner, "SHUTDOWN_FOR_EXIT", False):
            return inner.shutdown(for_exit=True)
        return tab.shutdown()


def _settled_progress(trainer) -> tuple[int, int, int]:
    """(step, images seen, epoch under way) that the weights belong to. Called
    under the model lock: the trainer counts a batch just after releasing the
    lock, so a batch whose update is in the weights may not be counted yet;
    the count settles within microseconds (the next batch then waits for the
    lock), so read until two reads 2 ms apart agree (at most 50 ms)."""
    def read():
        return (trainer.step, trainer.samples_seen,
                trainer.epoch + (1 if trainer.batch else 0))
    now = read()
    for _ in range(25):
        time.sleep(0.002)
        now, before = read(), now
        if now == before:
            break
    return now


class LazyTab(QWidget):
    """Holds a tab's real widget, built on the first showEvent; forwards the
    window's shutdown / save_state calls to it once it exists."""

    def __init__(self, factory, settings):
        super().__init__()
        self._factory = factory
        self._settings = settings
        self.inner: QWidget | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    def showEvent(self, event) -> None:
        if self.inner is None:
            self.inner = self._factory()
            ignore_activation(self.inner)
            self.layout().addWidget(self.inner)
            if hasattr(self.inner, "restore_state"):
                self.inner.restore_state(self._settings)
        super().showEvent(event)

    def save_state(self, settings) -> None:
        if self.inner is not None and hasattr(self.inner, "save_state"):
            self.inner.save_state(settings)

    def shutdown(self) -> bool | None:
        if self.inner is not None and hasattr(self.inner, "shutdown"):
            return self.inner.shutdown()
        return True

    def confirm_close(self) -> bool:
        if self.inner is not None and hasattr(self.inner, "confirm_close"):
            return self.inner.confirm_close()
        return True


def open_file_path(window: MainWindow, path: str) -> None:
    """Open ``path`` in the Kernel Lab (the CLI's ``cnnviz image.png``)."""
    window.kernel_lab.open_path(Path(path))
