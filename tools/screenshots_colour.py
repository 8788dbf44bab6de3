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
  training_colour_*.png   the bundled colour-cnn training on coloured MNIST (6,000
                          images an epoch): its maps, and its evaluation after epoch 1

The colour network is untrained (seed 0): these show what the views are,
not what a trained colour network learned.
"""

from __future__ import annotations

import sys

from tour import Tour, run  # tools/tour.py


def colour_net():
    from cnnviz.engine import Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential
    from cnnviz.engine.normalization import BatchNorm2d
    from cnnviz.engine.regularization import Dropout

    return Sequential(Conv2D(3, 8, 3, padding=1, seed=0), BatchNorm2d(8), ReLU(),
                      Dropout(0.25, seed=1), MaxPool2D(2), Conv2D(8, 16, 3, padding=1, seed=0),
                      ReLU(), MaxPool2D(2), Flatten(), Linear(16 * 8 * 8, 10, seed=0))


def tour_main(tour: Tour, options: list[str]) -> int:
    from cnnviz.engine import architecture
    from cnnviz.gui.stepper.inputs import TRAINED_FILE

    settle, shoot, open_tab, window = tour.settle, tour.shoot, tour.open_tab, tour.window

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
    training = open_tab("Training")
    training.setup.dataset.set_choice("colored-mnist")
    training.setup.set_model_file(str(architecture.bundled()["colour-cnn"]))
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
    tour.end(0 if training.shutdown(2.0) else 1)


if __name__ == "__main__":
    sys.exit(run(tour_main))
