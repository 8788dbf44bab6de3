"""What the stepper can be fed: networks (built in, from a model file, an
architecture file, the lessons, one built in code) and inputs (MNIST digits,
any picture converted to the network's input: grey or colour, its size).

A network's input shape is known when it comes with one (an architecture
file, ``use_model(..., input_shape=)``); a model file does not record it, so
it is found: the channels from the first layer that needs a count, the size
the first square side (28 and 32 first) that ends the network in class scores.

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
from cnnviz.engine.summary import MAX_SIDE, MIN_SIDE, first_channels, stated_input_shape
from cnnviz.engine.summary import find_input_shape as find_engine_input_shape

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


GREY, COLOUR = 1, 3                 # the channel counts a picture can be given as


def picture_kind(channels: int) -> str:
    return {GREY: "grey", COLOUR: "colour"}.get(channels, f"{channels}-channel")


def shape_text(shape) -> str:
    """(1, 3, 32, 32) -> "32x32 colour"."""
    return f"{shape[2]}x{shape[3]} {picture_kind(shape[1])}"


def find_input_shape(model: Sequential, source: str) -> tuple:
    """(1, C, H, W) for a network that does not say its input: the engine's
    search (summary.find_input_shape), checked for the stepper."""
    found = find_engine_input_shape(model)
    if found is not None:
        return check_model(model, source, found)       # grey or colour?
    check_model(model, source, (1, first_channels(model) or GREY, 28, 28))  # says why at 28x28
    raise StepperInputError(f"{source}: no square input from {MIN_SIDE}x{MIN_SIDE} to "
                            f"{MAX_SIDE}x{MAX_SIDE} makes it end in class scores")


def check_model(model: Sequential, source: str, input_shape=None) -> tuple:
    """The stepper feeds one grey or colour picture and needs class scores out.
    Returns the input shape (1, C, H, W) it will feed (found when not given)."""
    if not model.layers:
        raise StepperInputError(f"{source} has no layers")
    if input_shape is None:
        return find_input_shape(model, source)
    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or shape[1] not in (GREY, COLOUR):
        raise StepperInputError(f"{source} takes input of shape {shape[1:]}; the stepper feeds "
                                f"grey (1 channel) or colour (3 channel) pictures")
    try:
        rows = summary(model, shape).rows
    except ValueError as e:
        raise StepperInputError(f"{source} does not take a {shape_text(shape)} image: {e}") \
            from None
    out = rows[-1].output_shape
    if len(out) != 2:
        raise StepperInputError(f"{source} ends in maps of shape {out}, not class scores "
                                f"(N, classes): it needs a Flatten and a Linear layer at the end")
    return shape


def builtin_model(key: str, seed: int = 0) -> Sequential:
    """An untrained model of the engine's zoo ("lenet5", "small"), or the
    bundled trained LeNet-5 (TRAINED_KEY)."""
    if key == TRAINED_KEY:
        return load_model(TRAINED_FILE)[0]
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


def load_model(path) -> tuple[Sequential, tuple]:
    """A model file or checkpoint, and the input shape (1, C, H, W) it takes:
    the file's metadata "input_shape" when it has one, else found."""
    try:
        model = load(path)
        metadata = read_header(path).get("metadata", {})
    except ModelFileError as e:
        raise StepperInputError(str(e)) from None
    return model, check_model(model, str(path), stated_input_shape(metadata))


def architecture_model(path, seed: int = 0) -> tuple[Sequential, tuple, str]:
    """A fresh model of an architecture file, its input shape and its title."""
    from cnnviz.engine.architecture import ArchitectureError, read

    try:
        arch = read(path)
        model = arch.build(seed=seed)
    except (ArchitectureError, ValueError) as e:
        raise StepperInputError(str(e)) from None
    shape = check_model(model, arch.title, arch.batch_input_shape)
    return model, shape, f"{arch.title} (untrained, seed {seed})"


def _as_hwc(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or image.size == 0:
        raise StepperInputError(f"an image must be (H, W) grey or (H, W, 3) colour, "
                                f"got shape {image.shape}")
    return image


def to_model_input(image: np.ndarray, shape=INPUT_SHAPE) -> np.ndarray:
    """Any (H, W) grey or (H, W, 3) RGB float image in [0, 1] -> ``shape``
    (1, C, H, W) float32, the way the model sees it: resized to (H, W); for a
    grey network converted to grey (BT.601 luma), for a colour network a grey
    picture repeated in the three channels."""
    image = _as_hwc(image)
    c, size = shape[1], tuple(shape[2:])
    if c == GREY:
        small = resize(to_grey(image), size)[None]
    else:
        small = resize(image, size)
        small = (np.repeat(small[None], COLOUR, axis=0) if small.ndim == 2
                 else small.transpose(2, 0, 1))
    return np.ascontiguousarray(np.clip(small, 0, 1)[None], dtype=np.float32)


def conversion_text(image_shape, shape) -> str:
    """What to_model_input did, for the banner: "grey, resized to 28x28"."""
    colour_in = len(image_shape) == 3 and image_shape[2] == 3
    size = f"resized to {shape[2]}x{shape[3]}"
    if shape[1] == GREY:
        return f"grey, {size}" if colour_in else size
    return f"colour, {size}" if colour_in else f"the grey picture in all 3 channels, {size}"


MAX_PAD = 4          # per side: a 28x28 digit is padded (as LeNet-5 1998's 32x32), not stretched


def fit_digit(x: np.ndarray, shape) -> tuple[np.ndarray, str]:
    """An MNIST digit (1, 1, 28, 28) for a network taking ``shape``, and how
    it was made to fit ("" when it already did): padded with background
    (0) by up to MAX_PAD per side, as LeCun et al. fed 32x32; resized
    otherwise; repeated in 3 channels for a colour network."""
    h, w = x.shape[2:]
    th, tw = shape[2:]
    note = ""
    if (th, tw) != (h, w):
        dh, dw = th - h, tw - w
        if 0 <= dh <= 2 * MAX_PAD and 0 <= dw <= 2 * MAX_PAD:
            x = np.pad(x, ((0, 0), (0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))
            note = f"padded with {dh // 2} pixel(s) of background to {th}x{tw}"
        else:
            x = np.clip(resize(x[0, 0], (th, tw)), 0, 1)[None, None]
            note = f"resized to {th}x{tw}"
    if shape[1] == COLOUR:
        x = np.repeat(x, COLOUR, axis=1)
        note = ", ".join(filter(None, [note, "the grey digit in all 3 channels"]))
    return np.ascontiguousarray(x, dtype=np.float32), note
