"""Architecture files: a network described in JSON, without weights
(docs/architecture-format.md). `cnnviz summary FILE.json`, `cnnviz train
--arch FILE.json` and the GUI read them; the ready ones ship in
cnnviz/resources/architectures/.

    {"format": "cnnviz-architecture", "version": 1, "name": "LeNet-5",
     "input_shape": [1, 28, 28],
     "layers": [{"type": "Conv2D", "name": "conv1", "out_channels": 6, "kernel_size": 5},
                {"type": "ReLU"}, ...]}

A layer is its "type", an optional "name" and its hyperparameters (the keys
of its class's config, LAYER_CONFIG). The sizes of what a layer receives
(in_channels, in_features, num_features, channels) may be left out: they are
taken from the shape that reaches the layer; given, they must agree with it.

Reading checks everything before a weight is allocated: every field (the
model file's checks, serialization.check_layer_config), the parameter
budget, then the shapes, layer by layer from the input, so an impossible one
is reported at the layer that causes it, with the arithmetic: "pool2: a 2x2
window does not fit a 1x1 map (height: (1 - 2) // 2 + 1 = 0)". Every problem
is one ArchitectureError whose message starts with the file name.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import jsonfields as jf
from . import serialization as ser
from .jsonfields import FieldError, shorten_numbers
from .registry import LAYER_TYPES
from .sequential import Sequential

FORMAT = "cnnviz-architecture"
VERSION = 1
MAX_FILE_BYTES = ser.MAX_HEADER_CHARS
MAX_INPUT_SIDE = 100_000        # pixels, and channels
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "resources" / "architectures"

# hyperparameters a layer may leave out: they are the size of its input
_FROM_INPUT = {"Conv2D": "in_channels", "SparseConv2D": "in_channels", "Linear": "in_features",
               "BatchNorm2d": "num_features", "Subsampling2D": "channels"}
_MAPS_ONLY = {"Conv2D", "SparseConv2D", "MaxPool2D", "AvgPool2D", "BatchNorm2d",
              "Subsampling2D", "GlobalAvgPool2D", "ZeroPad2D"}
_POOLS = {"MaxPool2D", "AvgPool2D", "Subsampling2D"}
_CONVS = {"Conv2D", "SparseConv2D"}


class LayerError(FieldError):
    """A problem of one layer: ``index`` (0-based) and ``name`` say which,
    for a view that marks the layer (the builder)."""

    def __init__(self, message: str, index: int, name: str):
        super().__init__(message)
        self.index, self.name = index, name


class ArchitectureError(ValueError):
    """An architecture file that cannot be used; the message names the file."""

    def __init__(self, message: str):
        super().__init__(shorten_numbers(str(message)))


def linear_default_init(index: int, count: int) -> str:
    """The init a Linear at ``index`` of ``count`` layers takes when its file
    leaves it out: "fan_in" for the one that ends the network (the
    classifier: calm first scores, see Linear), "he" elsewhere."""
    return "fan_in" if index == count - 1 else "he"


@dataclass
class Architecture:
    """A checked architecture: ``input_shape`` is (C, H, W); each layer is
    (type, name, complete config). ``build`` makes a fresh model of it."""

    input_shape: tuple
    layers: list = field(default_factory=list)       # [(type, name, config)]
    name: str = ""
    description: str = ""
    source: str = ""                                  # the file it came from, if any

    @property
    def title(self) -> str:
        return self.name or self.source or "architecture"

    def build(self, seed=0, dtype=np.float32) -> Sequential:
        """The model, seeded: the layers that draw weights take one shared
        generator in order (so the bundled lenet5.json builds exactly
        ``lenet5(seed)``); a Dropout without a seed gets one from it; a
        Linear that ends the network is initialised with init "fan_in"
        unless the file says otherwise."""
        rng = np.random.default_rng(seed)
        layers = []
        for kind, name, config in self.layers:
            cls = LAYER_TYPES[kind]
            args = dict(config)
            accepts = inspect.signature(cls).parameters
            if kind == "Dropout" and args.get("seed") is None:
                args["seed"] = int(rng.integers(2**31))
            elif "seed" in accepts:
                args["seed"] = rng
            if kind == "Linear" and "init" not in args:
                args["init"] = linear_default_init(len(layers), len(self.layers))
            if "dtype" in accepts:
                args["dtype"] = dtype
            layer = cls(**args)
            layer.name = name
            layers.append(layer)
        return Sequential(*layers)

    @property
    def batch_input_shape(self) -> tuple:
        return (1, *self.input_shape)

    def to_dict(self) -> dict:
        d = {"format": FORMAT, "version": VERSION}
        if self.name:
            d["name"] = self.name
        if self.description:
            d["description"] = self.description
        d["input_shape"] = list(self.input_shape)
        # a layer without a name (the builder's) is named by its kind and count when read
        d["layers"] = [{"type": kind, **({"name": name} if name else {}), **config}
                       for kind, name, config in self.layers]
        return d


def from_model(model: Sequential, input_shape, name: str = "") -> Architecture:
    """The architecture of a model (input_shape (C, H, W))."""
    return Architecture(tuple(input_shape), [(type(l).__name__, l.name, l.config())
                                             for l in model.layers], name)


def to_text(arch: Architecture) -> str:
    """The file's JSON, one layer a line (easy to read, edit and diff)."""
    d = arch.to_dict()
    lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in d.items()
             if k != "layers"]
    layers = [f"    {json.dumps(layer, ensure_ascii=False)}" for layer in d["layers"]]
    return "{\n" + "\n".join(lines) + '\n  "layers": [\n' + ",\n".join(layers) + "\n  ]\n}\n"


def write(path, arch: Architecture) -> None:
    from ..atomic import atomic_write_text
    atomic_write_text(path, to_text(arch))


# --------------------------------------------------------------------------
# reading
def bundled() -> dict[str, Path]:
    """The ready architectures: name (file stem) -> path."""
    return {p.stem: p for p in sorted(BUNDLED_DIR.glob("*.json"))}


def read(path) -> Architecture:
    """The checked architecture in a file (ArchitectureError otherwise)."""
    return _read(path, parse)


def read_draft(path) -> Architecture:
    """The architecture in a file as written, for the builder to show and
    fix: refused (ArchitectureError) only if it is not an architecture file
    at all (not JSON, no layers list, an unknown layer type or field); a
    layer whose shape or values cannot work is kept as it is, unchecked."""
    return _read(path, parse_draft)


def _read(path, parser) -> Architecture:
    path = Path(path)
    if path.is_dir():
        raise ArchitectureError(f"{path}: is a folder, not an architecture file (.json)")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ArchitectureError(f"{path}: no such file") from None
    except OSError as e:
        raise ArchitectureError(f"{path}: cannot be read ({e.strerror or e})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ArchitectureError(f"{path}: larger than {MAX_FILE_BYTES:,} bytes; not an "
                                f"architecture file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArchitectureError(f"{path}: not a text file (not UTF-8); an architecture file "
                                f"is JSON") from None
    try:
        return parser(jf.parse(text, "file"), source=str(path))
    except FieldError as e:
        raise ArchitectureError(f"{path}: {e}") from None


def parse(doc, source: str = "") -> Architecture:
    """The checked architecture of a parsed JSON document; FieldError
    naming the field or the layer otherwise."""
    input_shape, layers, title, description = _document(doc)
    if not layers:
        raise FieldError("layers: no layers")
    checked = [(step.kind, step.name, step.config) for step in check_layers(input_shape, layers)]
    return Architecture(input_shape, checked, title, description, source)


def parse_draft(doc, source: str = "") -> Architecture:
    """The layers of a parsed JSON document as written (their fields not
    checked: ``check_layers`` says later which one fails and why); FieldError
    only for what no layer list can be made of."""
    input_shape, layers, title, description = _document(doc)
    draft = []
    for i, entry in enumerate(layers):
        where = f"layers[{i}]"
        kind = _layer_type(entry, where)
        name = jf.text(entry.get("name", ""), f"{where}.name")
        config = {k: v for k, v in entry.items() if k not in ("type", "name")}
        jf.obj(config, name or where, allowed=ser.LAYER_CONFIG[kind][0])
        draft.append((kind, name, config))
    return Architecture(input_shape, draft, title, description, source)


def _document(doc):
    """(input_shape, the layers' JSON entries, name, description) of a
    document, its top-level fields checked."""
    jf.obj(doc, "file")
    if "format" in doc and doc["format"] != FORMAT:
        if doc["format"] == ser.FORMAT:
            raise FieldError("format: a saved model's header, not an architecture file; "
                             "give the model file (.npz) itself")
        jf.text(doc["format"], "format", (FORMAT,))
    for key, what in (("input_shape", "the input's [channels, height, width], e.g. [1, 28, 28]"),
                      ("layers", "the list of layers")):
        if key not in doc:
            raise FieldError(f"{key}: missing ({what})")
    jf.obj(doc, "file", allowed=("format", "version", "name", "description", "input_shape",
                                 "layers"))
    version = jf.whole(doc.get("version", VERSION), "version", 1)
    if version > VERSION:
        raise FieldError(f"version: made by a newer cnnviz (file version {version}, this one "
                         f"reads {VERSION})")
    title = jf.text(doc.get("name", ""), "name")
    description = jf.text(doc.get("description", ""), "description")
    input_shape = _input_shape(doc["input_shape"])
    layers = jf.array(doc["layers"], "layers")
    if len(layers) > ser.MAX_LAYERS:
        raise FieldError(f"layers: {len(layers):,} layers; cnnviz opens models of up to "
                         f"{ser.MAX_LAYERS:,} layers")
    return input_shape, layers, title, description


@dataclass(frozen=True)
class CheckedLayer:
    """One layer as ``check_layers`` found it: its complete config and the
    shapes (batch first) it takes and gives."""

    kind: str
    name: str
    config: dict
    input_shape: tuple
    output_shape: tuple


def check_layers(input_shape, layers):
    """Check the layers (parsed JSON entries) in order from an input of
    ``input_shape`` (C, H, W), yielding a CheckedLayer for each that fits;
    the first that does not raises LayerError (its index, its name), after
    the layers before it were yielded: the builder shows those."""
    shape, total, counts, seen = (1, *input_shape), 0, Counter(), {}
    for i, entry in enumerate(layers):
        try:
            kind, name = _type_and_name(entry, f"layers[{i}]")
        except FieldError as e:
            raise LayerError(str(e), i, "") from None
        if not name:        # the name Sequential gives: kind and count (conv1, relu1, ...)
            counts[LAYER_TYPES[kind].kind] += 1
            name = f"{LAYER_TYPES[kind].kind}{counts[LAYER_TYPES[kind].kind]}"
        if name in seen:
            raise LayerError(f"layers[{i}].name: two layers are named {name!r} "
                             f"(layers {seen[name] + 1} and {i + 1})", i, name)
        seen[name] = i
        try:
            config, out, n = _check_layer(i, entry, kind, name, shape)
        except FieldError as e:
            raise LayerError(str(e), i, name) from None
        total += n
        if total > ser.MAX_PARAMS:
            raise LayerError(f"{name}: the layers up to here declare {total:,} parameters; "
                             f"{ser._BUDGET}", i, name)
        yield CheckedLayer(kind, name, config, shape, out)
        shape = out


def _check_layer(i, entry, kind, name, shape):
    """(complete config, output shape, parameters) of layer i, or FieldError."""
    config = {k: v for k, v in entry.items() if k not in ("type", "name")}
    jf.obj(config, name, allowed=ser.LAYER_CONFIG[kind][0])     # a typo before "missing"
    config = _with_input_sizes(kind, name, config, shape)
    config = ser.check_layer_config(kind, config, name)
    # the shape first: reading down the layers, a kernel larger than its map
    # is the first thing wrong, before the parameters that kernel would take
    out = output_shape(kind, name, config, shape)
    spec = ser.LayerSpec(kind, name, config, ser.declared_params(kind, config))
    ser._check_budget(spec, f"layer {i + 1}")
    return config, out, spec.num_params


def _input_shape(v) -> tuple:
    what = "[channels, height, width], e.g. [1, 28, 28]"
    if not isinstance(v, list) or len(v) != 3:
        raise FieldError(f"input_shape: expected {what}, got {jf.describe(v)}")
    return tuple(jf.whole(x, f"input_shape[{i}]", 1, MAX_INPUT_SIDE) for i, x in enumerate(v))


def _layer_type(entry, where) -> str:
    jf.obj(entry, where, required=("type",))
    kind = jf.text(entry["type"], f"{where}.type")
    if kind not in LAYER_TYPES:
        raise FieldError(f"{where}.type: unknown layer type {json.dumps(kind[:40])} "
                         f"(known: {', '.join(LAYER_TYPES)})")
    return kind


def _type_and_name(entry, where) -> tuple[str, str]:
    kind = _layer_type(entry, where)
    name = jf.text(entry.get("name", ""), f"{where}.name")
    if len(name) > ser.MAX_NAME_CHARS or not name.isprintable():
        raise FieldError(f"{where}.name: expected a printable name of at most "
                         f"{ser.MAX_NAME_CHARS} characters, got {jf.describe(name)}")
    return kind, name


def _shape_text(shape) -> str:
    if len(shape) == 4:
        return f"{shape[1]} map{'s' * (shape[1] != 1)} of {shape[2]}x{shape[3]}"
    return f"a vector of {shape[1]:,} values"


def _with_input_sizes(kind, name, config, shape) -> dict:
    """The config with the size of the layer's input filled in (if left
    out), after checking the input has the form the layer takes."""
    if kind in _MAPS_ONLY and len(shape) != 4:
        raise FieldError(f"{name}: {kind} needs maps (channels, height, width), but its input "
                         f"is {_shape_text(shape)}")
    if kind == "Linear" and len(shape) != 2:
        raise FieldError(f"{name}: Linear needs a vector, but its input is {_shape_text(shape)}; "
                         f"put a Flatten (or a GlobalAvgPool2D) before it")
    key = _FROM_INPUT.get(kind)
    if key is None:
        return config
    size = shape[1]
    if key not in config:
        return {key: size, **config}
    given = config[key]
    if isinstance(given, int) and not isinstance(given, bool) and given >= 1 and given != size:
        unit = "values" if kind == "Linear" else "channels"
        raise FieldError(f"{name}.{key}: {given:,}, but its input has {size:,} {unit} "
                         f"({_shape_text(shape)}); leave {key} out to take it from the input")
    return config


def output_shape(kind, name, config, shape) -> tuple:
    """The shape a checked layer config makes of ``shape`` (batch first), or
    FieldError at the layer with the arithmetic of what does not fit."""
    if kind in _CONVS or kind in _POOLS:
        signature = inspect.signature(LAYER_TYPES[kind]).parameters
        defaults = {key: v.default for key, v in signature.items()}
        k = ser._pair(config.get("kernel_size", defaults["kernel_size"]))
        if kind in _CONVS:
            s, p, d = (ser._pair(config.get(key, defaults[key]))
                       for key in ("stride", "padding", "dilation"))
        else:
            s = k if config.get("stride") is None else ser._pair(config["stride"])
            p, d = (0, 0), (1, 1)
        sizes = []
        for axis, label in ((0, "height"), (1, "width")):
            n = shape[2 + axis]
            out = (n + 2 * p[axis] - d[axis] * (k[axis] - 1) - 1) // s[axis] + 1
            sizes.append(out)
            if out < 1:
                raise FieldError(f"{name}: {_misfit(kind, k, p, d, shape)} "
                                 f"({label}: {_arithmetic(n, k[axis], s[axis], p[axis], d[axis])}"
                                 f" = {out})")
        c = config["out_channels"] if kind in _CONVS else shape[1]
        return (shape[0], c, *sizes)
    if kind == "Linear":
        return (shape[0], config["out_features"])
    try:        # the other layers are cheap to make: ask the layer itself
        return tuple(LAYER_TYPES[kind](**config).output_shape(shape))
    except ValueError as e:
        raise FieldError(f"{name}: {e}") from None


def _misfit(kind, k, p, d, shape) -> str:
    h, w = shape[2:]
    if kind in _POOLS:
        return f"a {k[0]}x{k[1]} window does not fit a {h}x{w} map"
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    kernel = f"a {k[0]}x{k[1]} kernel"
    if d != (1, 1):
        kernel += f" with dilation {_pair_text(d)} (spanning {span[0]}x{span[1]})"
    where = f"a {h}x{w} map"
    if p != (0, 0):
        where += f" padded by {_pair_text(p)} ({h + 2 * p[0]}x{w + 2 * p[1]})"
    return f"{kernel} does not fit {where}"


def _pair_text(v) -> str:
    return str(v[0]) if v[0] == v[1] else f"{v[0]}x{v[1]}"


def _arithmetic(n, k, s, p, d) -> str:
    """The output-size formula of CNN-NOTES.md with the numbers in:
    (H + 2*pad - dil*(k - 1) - 1) // stride + 1, or (H + 2*pad - k) // stride + 1."""
    pad = f" + 2*{p}" if p else ""
    span = f" - {d}*({k} - 1) - 1" if d != 1 else f" - {k}"
    return f"({n}{pad}{span}) // {s} + 1"
