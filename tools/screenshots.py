"""Screenshots of the real main window, as a user sees it, for the README.

    xvfb-run -s "-screen 0 1400x900x24" python tools/screenshots.py docs/screenshots
    xvfb-run -s "-screen 0 1920x1080x24" python tools/screenshots.py docs/screenshots/1920x1080 1920x1080

Runs the same window `cnnviz` opens (1400x900) on the current display, drives
it through a short tour and saves what the screen shows (QScreen.grabWindow:
the X server's pixels, not an off-screen render):

  kernel_lab.png        the Kernel Lab on the bundled cat photo, Sobel x
  stepper_forward.png   the Layer Stepper after a forward step through conv1
  stepper_backward.png  ... and a backward step through conv2, shown step by step
  builder.png           the Network builder on the original LeNet-5 (1998), C3 selected
  builder_error.png     ... a 12x12 input: conv C5's 5x5 kernel does not fit, at its row
  training_*.png        live training of LeNet-5 on the full MNIST: curves,
                        feature and gradient maps, weights, evaluation (a
                        confusion-matrix cell clicked), a drawn digit

    ... python tools/screenshots.py docs/screenshots 1400x900 --builder-only   # the builder's two
"""

from __future__ import annotations

import sys

from tour import Tour, run  # tools/tour.py


def tour_main(tour: Tour, options: list[str]) -> int:
    from PyQt6.QtWidgets import QSplitter

    settle, shoot, open_tab = tour.settle, tour.shoot, tour.open_tab

    # Kernel Lab: the default input (the cat) with Sobel x, as it opens.
    settle(1.5)
    shoot("kernel_lab.png")

    # Network builder: the original LeNet-5, C3 (the sparse table) selected;
    # then an input too small for it, the error at its layer.
    builder = open_tab("Network builder")
    builder.start_from("lenet5-1998", ask=False)
    builder.table.setCurrentCell(6, 0)
    shoot("builder.png")
    builder.input_boxes[1].setValue(12)
    builder.input_boxes[2].setValue(12)
    shoot("builder_error.png")
    builder.start_from("lenet5-1998", ask=False)     # unchanged again: closing asks nothing
    if "--builder-only" in options:
        tour.end(0)

    # Layer Stepper: forward through conv1, then backward through conv2.
    stepper = open_tab("Layer Stepper")
    settle(0.5)
    stepper.buttons["reset"].click()
    stepper.strip.blocks[2].click()
    stepper.side.setCurrentWidget(stepper.weights_tab)
    shoot("stepper_forward.png")
    stepper.buttons["run_forward"].click()
    while stepper.session.focus != 4 or stepper.session.phase != "backward":
        stepper.buttons["back"].click()
    stepper.findChildren(QSplitter)[0].setSizes([250, 470, 680])
    stepper.side.setCurrentWidget(stepper.backward_tab)
    stepper.backward_tab.filter_spin.setValue(3)
    shoot("stepper_backward.png")

    # Training: full MNIST with the defaults; pictures during the second epoch.
    training = open_tab("Training")
    training.start()
    while training.trainer.epoch < 1 or training.trainer.batch < 300:
        settle(0.2)
    for index, name in enumerate(["curves", "maps", "weights", "evaluation"]):
        training.views.setCurrentIndex(index)
        settle(0.8)
        shoot(f"training_{name}.png")
    training.evaluation.show_cell(4, 9)          # true 4, predicted 9
    shoot("training_confusion_cell.png")
    training.views.setCurrentWidget(training.digit)
    training.digit.canvas.draw_stroke([(100, 60), (180, 60), (120, 230)])   # a 7
    shoot("training_draw.png")
    tour.end(0 if training.shutdown(2.0) else 1)      # the thread stopped; no question asked


if __name__ == "__main__":
    sys.exit(run(tour_main))
