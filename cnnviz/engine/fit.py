"""Does a network fit a dataset? The checks and their words, one place for
every front end (the Training tab; the CLI's checks say the same).

Shapes are (C, H, W) without the batch. ``input_mismatch`` words a network
whose input is not the data's images; ``output_fit`` a network whose output
is not one score per class of the data: fewer outputs than classes, or maps
instead of a vector, are refused; more outputs than classes train (those
outputs are never the answer) with a warning.
"""

from __future__ import annotations

from .summary import summary


def shape_text(shape) -> str:
    """(1, 28, 28) -> "1x28x28"."""
    return "x".join(str(int(v)) for v in shape)


def input_mismatch(takes, gives) -> str | None:
    """"the network takes 1x28x28, the dataset gives 3x32x32", or None if
    they are the same (``takes`` None: the network does not say; no check)."""
    if takes is None or tuple(takes) == tuple(gives):
        return None
    return f"the network takes {shape_text(takes)}, the dataset gives {shape_text(gives)}"


def output_shape(model, image_shape) -> tuple:
    """The model's output for one image of ``image_shape`` (C, H, W), batch
    left out; ValueError naming the layer that cannot take its input."""
    return tuple(summary(model, (1, *image_shape)).rows[-1].output_shape[1:]) \
        if model.layers else tuple(image_shape)


def output_fit(out_shape, classes: int) -> tuple[str | None, str | None]:
    """(refusal, warning) for a network whose output for one image is
    ``out_shape`` on data of ``classes`` classes (labels 0 to classes-1)."""
    out_shape = tuple(int(v) for v in out_shape)
    if len(out_shape) != 1:
        return (f"the network's output is {_maps_text(out_shape)}, not one score per class: "
                f"end it with Flatten and Linear", None)
    n = out_shape[0]
    if n < classes:
        return (f"the network has {n} output{'s' * (n != 1)}, the data {classes} classes: "
                f"it needs one output per class (end it with a Linear layer of {classes} "
                f"outputs)", None)
    if n > classes:
        unused = (f"output {classes} is" if n == classes + 1 else
                  f"outputs {classes}-{n - 1} are")
        return None, (f"the network has {n} outputs, the data {classes} "
                      f"class{'es' * (classes != 1)}: {unused} never the answer")
    return None, None


def _maps_text(shape: tuple) -> str:
    """(16, 5, 5) -> "16x5x5 maps"; (8, 3) -> "8x3 values"."""
    return f"{shape_text(shape)} {'maps' if len(shape) == 3 else 'values'}"
