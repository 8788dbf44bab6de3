"""What the stepper can be fed: networks (built in, from a file, the lessons)
and inputs (MNIST digits, any picture converted to the model's 28x28 grey).

Every failure is a ``StepperInputError`` with a sentence for the user.
"""

from __future__ import annotations

import numpy as np

from cnnviz.data.images import resize, to_grey
from cnnviz.engine import ModelFileError, load, summary
from cnnviz.engine.models import INPUT_SHAPE, MODELS
from cnnviz.engine.sequential import Sequential

MODEL_TITLES = {"lenet5": "LeNet-5", "small": "LeNet-5 small"}


class StepperInputError(ValueError):
    """Something the stepper cannot use; the message is shown as is."""


def check_model(model: Sequential, source: str) -> None:
    """The stepper feeds (1, 1, 28, 28) grey images and needs class scores out."""
    try:
        rows = summary(model, INPUT_SHAPE).rows
    except ValueError as e:
        raise StepperInputError(f"{source} does not take a 28x28 grey image: {e}") from None
    if not rows:
        raise StepperInputError(f"{source} has no layers")
    out = rows[-1].output_shape
    if len(out) != 2:
        raise StepperInputError(f"{source} ends in maps of shape {out}, not class scores "
                                f"(N, classes): it needs a Flatten and a Linear layer at the end")


def builtin_model(key: str, seed: int = 0) -> Sequential:
    return MODELS[key](seed=seed)


def load_model(path) -> Sequential:
    try:
        model = load(path)
    except ModelFileError as e:
        raise StepperInputError(str(e)) from None
    check_model(model, str(path))
    return model


def to_model_input(image: np.ndarray) -> np.ndarray:
    """Any (H, W) grey or (H, W, 3) RGB float image in [0, 1] -> (1, 1, 28, 28)
    float32, the way the model sees it: grey (BT.601 luma), resized to 28x28."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or image.size == 0:
        raise StepperInputError(f"an image must be (H, W) grey or (H, W, 3) colour, "
                                f"got shape {image.shape}")
    grey = to_grey(image)
    small = resize(grey, INPUT_SHAPE[2:])
    return np.ascontiguousarray(np.clip(small, 0, 1)[None, None], dtype=np.float32)
