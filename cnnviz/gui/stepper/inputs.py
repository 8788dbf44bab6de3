"""What the stepper can be fed: networks (built in, from a file, the lessons)
and inputs (MNIST digits, any picture converted to the model's 28x28 grey).

Every failure is a ``StepperInputError`` with a sentence for the user.
"""

from __future__ import annotations

import numpy as np

from cnnviz.data.images import resize, to_grey
from cnnviz.data.paths import RESOURCES_DIR
from cnnviz.engine import ModelFileError, load, summary
from cnnviz.engine.serialization import architecture, build, read_header
from cnnviz.engine.models import INPUT_SHAPE, MODELS
from cnnviz.engine.sequential import Sequential

# the LeNet-5 trained by `cnnviz train` that ships with the package (PROVENANCE.md)
TRAINED_KEY = "trained"
TRAINED_FILE = RESOURCES_DIR / "models" / "lenet5-mnist.npz"
UNTRAINED_TITLES = {"lenet5": "LeNet-5 (untrained, seed 0)",
                    "small": "LeNet-5 small (untrained, seed 0)"}


class StepperInputError(ValueError):
    """Something the stepper cannot use; the message is shown as is."""


class NotYet(str):
    """Why a model cannot be had right now, for a moment only (the Training tab
    evaluating the test set): the stepper says so and asks again."""


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
    """An untrained model of the engine's zoo ("lenet5", "small"), or the
    bundled trained LeNet-5 (TRAINED_KEY)."""
    if key == TRAINED_KEY:
        return load_model(TRAINED_FILE)
    return MODELS[key](seed=seed)


def trained_title(metadata: dict) -> str:
    """"LeNet-5 (trained, 99.34% on MNIST)", from the file's own metadata."""
    accuracy = metadata.get("test_accuracy")
    if not isinstance(accuracy, (int, float)):
        return "LeNet-5 (trained, accuracy not recorded)"
    dataset = str(metadata.get("dataset", "MNIST")).removeprefix("bundled ")
    return f"LeNet-5 (trained, {100 * accuracy:.2f}% on {dataset})"


def builtin_titles() -> tuple[dict[str, str], str | None]:
    """The Network box's built-in entries, key -> title, the trained model
    first, and why the trained one cannot be used (None when it can)."""
    try:
        title = trained_title(read_header(TRAINED_FILE).get("metadata", {}))
        problem = None
    except ModelFileError as e:
        title, problem = "LeNet-5 (trained): not available", f"The bundled model: {e}"
    return {TRAINED_KEY: title, **UNTRAINED_TITLES}, problem


def weights_copy(model: Sequential) -> Sequential:
    """The same network with its own copy of the weights (and none of the
    original's forward caches): what a save and a load would give."""
    copy = build(architecture(model)).astype(model.dtype)
    copy.load_state_dict(model.state_dict())
    return copy


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
