"""Screenshots of colour networks in the real main window (1400x900 by default).

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1400x900x24" python tools/screenshots_colour.py docs/screenshots

  stepper_colour.png      a colour conv net (conv, BatchNorm, ReLU, Dropout, pool,
                          conv, ReLU, pool, Linear) on the Kernel Lab's cat photo,
                          after a forward step through conv1: the picture, its R, G,
                          B channels and the 8x3 kernels
  stepper_batchnorm.png   ... at its BatchNorm layer in training mode: the one
                          picture's statistics, the normalised and output maps
  stepper_dropout.png     ... at its Dropout layer: the mask
  kernel_lab_network.png  the bundled trained LeNet-5's first layer on the cat,
                          in the Kernel Lab (the photo made grey)

The colour network is untrained (seed 0): these show what the views are,
not what a trained colour network learned.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def colour_net():
    from cnnviz.engine import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential
    from cnnviz.engine.normalization import BatchNorm2d
    from cnnviz.engine.regularization import Dropout

    return Sequential(Conv2D(3, 8, 3, padding=1, seed=0), BatchNorm2d(8), ReLU(),
                      Dropout(0.25, seed=1), MaxPool2D(2), Conv2D(8, 16, 3, padding=1, seed=0),
                      ReLU(), MaxPool2D(2), Flatten(), Linear(16 * 8 * 8, 10, seed=0))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/screenshots")
    width, height = (int(v) for v in (argv[1] if len(argv) > 1 else "1400x900").split("x"))
    out.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("DISPLAY"):
        print("no DISPLAY: run under xvfb-run (see the docstring)", file=sys.stderr)
        return 2
    os.environ.setdefault("CNNVIZ_SETTINGS_DIR", tempfile.mkdtemp())

    from PyQt6.QtWidgets import QApplication

    from cnnviz.gui.app import configure_pyqtgraph
    from cnnviz.gui.main_window import MainWindow
    from cnnviz.gui.stepper.inputs import TRAINED_FILE

    app = QApplication(sys.argv[:1])
    configure_pyqtgraph()
    window = MainWindow(load_default_input=True)
    window.add_standard_tabs()
    window.resize(width, height)
    window.move(0, 0)
    window.show()

    def settle(seconds=0.3):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    def shoot(name):
        settle(0.4)
        pixmap = app.primaryScreen().grabWindow(window.winId())
        pixmap.save(str(out / name))
        print(out / name)

    def open_tab(title):
        index = next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == title)
        window.tabs.setCurrentIndex(index)
        settle(0.5)
        return window.tabs.widget(index).inner

    settle(1.5)                                   # the cat photo in the Kernel Lab
    lab = window.kernel_lab
    lab.network_button.use_file(TRAINED_FILE)
    settle(1.5)
    shoot("kernel_lab_network.png")

    stepper = open_tab("Layer Stepper")
    stepper.use_model(colour_net(), "colour net (untrained, seed 0)", (3, 32, 32))
    settle(0.3)
    stepper.strip.layer_clicked.emit(0)
    stepper.side.setCurrentWidget(stepper.weights_tab)
    shoot("stepper_colour.png")

    stepper.mode_switch.click()                   # training mode: batch statistics, dropout
    stepper.strip.layer_clicked.emit(1)
    stepper.side.setCurrentWidget(stepper.norm_tab)
    shoot("stepper_batchnorm.png")
    stepper.strip.layer_clicked.emit(3)
    shoot("stepper_dropout.png")

    # Training: the bundled colour network on coloured MNIST (6,000 images an
    # epoch, so an epoch ends and the evaluation has its confusion matrix)
    from cnnviz.engine import architecture
    training = open_tab("Training")
    training.setup.dataset.set_choice("colored-mnist")
    training.setup.set_arch_file(str(architecture.bundled()["colour-cnn"]))
    training.setup.limit.setValue(6000)
    training.setup.epochs.setValue(3)
    key = training.setup.settings().dataset
    while not training.session.has_data(key):
        settle(0.2)
    training.start()
    while training.trainer.epoch < 1 or training.trainer.batch < 30:
        settle(0.2)
    for index, name in ((1, "maps"), (3, "evaluation")):
        training.views.setCurrentIndex(index)
        settle(0.8)
        shoot(f"training_colour_{name}.png")
    code = 0 if training.shutdown(2.0) else 1
    # every file is written: end before the window's teardown (and its
    # question about the unsaved trained model)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
