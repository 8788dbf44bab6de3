"""One .npz per model: the weights plus the architecture as JSON, so a saved
model reopens without code. Writes are atomic (temporary file, then rename).

Reading trusts nothing in the file (see ``npz_archive`` for the archive
itself). The header is checked field by field; the architecture's declared
parameter count is computed from its configs, and refused above the budget,
before any layer is built; each weight array's shape and dtype are checked
from its .npy header before its data are read. Every problem is one
ModelFileError whose message names the file and the field.

Budget: a model of at most MAX_PARAMS = 50,000,000 parameters (200 MB as
float32, 400 MB as float64) and MAX_LAYERS = 1,000 layers; a header of at most
MAX_HEADER_CHARS = 1,000,000 characters. LeNet-5 has 61,706 parameters.

Weights must be float16, float32 or float64. The model is float64 when every
array is float64 (a gradient-check model stays exact), float32 otherwise;
arrays of another float type are converted, and NaN or infinite weights are
kept (a diverged model can be looked at): both leave a sentence in
``model.load_notes`` (a list of str, each naming the file) for the program
to show. Strings, ints, bools, complex numbers and objects are refused.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_open
from . import jsonfields as jf
from .jsonfields import FieldError, shorten_numbers
from .registry import LAYER_TYPES
from .npz_archive import NpyHeader, NpzArchive, NpzError, fmt_bytes
from .sequential import Sequential

FORMAT = "cnnviz-model"
VERSION = 1

MAX_PARAMS = 50_000_000
MAX_LAYERS = 1_000
MAX_HEADER_CHARS = 1_000_000
MAX_WINDOW = 1_024             # largest kernel, stride, padding or dilation, in pixels
MAX_HISTORY_ROWS = 10_000_000  # training-history rows in a checkpoint (a run of 10 M batches)
MAX_NAME_CHARS = 64
KIND = "a cnnviz model (.npz)"


class ModelFileError(ValueError):
    """A model file that cannot be read; the message names the file. Numbers
    of over 50 digits in it are shortened (see jsonfields.shorten_numbers)."""

    def __init__(self, message: str):
        super().__init__(shorten_numbers(str(message)))


# --------------------------------------------------------------------------
# writing
def architecture(model: Sequential) -> list[dict]:
    return [{"type": type(l).__name__, "name": l.name, "config": l.config()}
            for l in model.layers]


def atomic_savez(path, arrays: dict, extra: dict | None = None):
    """np.savez to a temporary file beside ``path``, fsync, then rename, so a
    crash never leaves a half-written file under the real name."""
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays, **(extra or {}))


def save(model: Sequential, path, metadata: dict | None = None):
    """Save weights and architecture (plus optional JSON-able metadata)."""
    header = {"format": FORMAT, "version": VERSION, "architecture": architecture(model),
              "metadata": metadata or {}}
    atomic_savez(path, state_members(model), {"header": np.array(json.dumps(header))})


def state_members(model: Sequential, state: dict | None = None) -> dict[str, np.ndarray]:
    """The archive members of a model's state (``state`` defaults to
    ``model.state_dict()``): "param/<name>" for each trained parameter,
    "buffer/<name>" for each buffer (BatchNorm2d's running statistics)."""
    state = model.state_dict() if state is None else state
    buffers = {b.name for b in model.buffers()}
    return {f"{'buffer' if k in buffers else 'param'}/{k}": v for k, v in state.items()}


# --------------------------------------------------------------------------
# the architecture: checked, and its size known, before anything is built
def _count(v, field):
    return jf.whole(v, field, 1, MAX_PARAMS)


def _window(lo):
    def check(v, field):
        if isinstance(v, list):
            if len(v) != 2:
                raise FieldError(f"{field}: expected a whole number or a pair [h, w], "
                                 f"got {jf.describe(v)}")
            return [jf.whole(x, f"{field}[{i}]", lo, MAX_WINDOW) for i, x in enumerate(v)]
        return jf.whole(v, field, lo, MAX_WINDOW)
    return check


def _finite(v, field):
    return jf.number(v, field)


def _nonzero(v, field):
    if jf.number(v, field) == 0:
        raise FieldError(f"{field}: expected a non-zero number, got 0")
    return v


def _optional_window(v, field):
    return None if v is None else _window(1)(v, field)


def _positive(v, field):
    return jf.number(v, field, 0, lo_open=True)


def _momentum(v, field):
    return jf.number(v, field, 0, 1)


def _probability(v, field):
    return jf.number(v, field, 0, 1, hi_open=True)


def _seed(v, field):
    return jf.optional(jf.whole, v, field, 0, 2**63 - 1, "2**63 - 1")


def _connections(v, field):
    """A list (one per output map) of lists of input-map indices; their
    range is checked against in_channels by _check_sparse."""
    jf.array(v, field, MAX_WINDOW * MAX_WINDOW)
    for o, seen in enumerate(v):
        jf.array(seen, f"{field}[{o}]", MAX_WINDOW * MAX_WINDOW)
        if not seen:
            raise FieldError(f"{field}[{o}]: output map {o} sees no input map")
        for i, c in enumerate(seen):
            jf.whole(c, f"{field}[{o}][{i}]", 0, MAX_PARAMS)
    return v


# layer type -> {config key: check}, and the keys a file must give
LAYER_CONFIG = {
    "Conv2D": ({"in_channels": _count, "out_channels": _count, "kernel_size": _window(1),
                "stride": _window(1), "padding": _window(0), "dilation": _window(1),
                "bias": jf.flag}, ("in_channels", "out_channels", "kernel_size")),
    "Linear": ({"in_features": _count, "out_features": _count, "bias": jf.flag,
                "init": lambda v, field: jf.text(v, field, ("he", "fan_in"))},
               ("in_features", "out_features")),
    "MaxPool2D": ({"kernel_size": _window(1), "stride": _optional_window}, ("kernel_size",)),
    "AvgPool2D": ({"kernel_size": _window(1), "stride": _optional_window}, ("kernel_size",)),
    "ReLU": ({}, ()), "Sigmoid": ({}, ()), "Tanh": ({}, ()), "Flatten": ({}, ()),
    "LeakyReLU": ({"negative_slope": _finite}, ()),
    "Normalize": ({"mean": _finite, "std": _nonzero}, ()),
    "BatchNorm2d": ({"num_features": _count, "eps": _positive, "momentum": _momentum},
                    ("num_features",)),
    "Dropout": ({"p": _probability, "seed": _seed}, ()),
    "GlobalAvgPool2D": ({}, ()),
    "ZeroPad2D": ({"padding": _window(0)}, ("padding",)),
    "Subsampling2D": ({"channels": _count, "kernel_size": _window(1),
                       "stride": _optional_window}, ("channels",)),
    "SparseConv2D": ({"in_channels": _count, "out_channels": _count, "kernel_size": _window(1),
                      "connections": _connections, "stride": _window(1), "padding": _window(0),
                      "dilation": _window(1), "bias": jf.flag},
                     ("in_channels", "out_channels", "kernel_size", "connections")),
}


def _check_sparse(config, where):
    """SparseConv2D: one list per output map, each naming input maps that exist, once."""
    from .sparse_conv import connection_mask
    conn, out = config["connections"], config["out_channels"]
    if len(conn) != out:
        raise FieldError(f"{where}.connections: {len(conn)} lists, but out_channels is {out} "
                         f"(one list of input maps per output map)")
    try:
        connection_mask(conn, config["in_channels"])
    except ValueError as e:
        raise FieldError(f"{where}.{e}") from None


# checks that involve several fields of one layer, run after the fields'
CROSS_CHECKS = {"SparseConv2D": _check_sparse}


def check_layer_config(kind: str, config, where: str) -> dict:
    """The checked config of a layer of type ``kind`` (FieldError naming
    ``where``.key otherwise)."""
    checks, required = LAYER_CONFIG[kind]
    config = jf.obj(config, where, allowed=checks, required=required)
    config = {k: checks[k](v, f"{where}.{k}") for k, v in config.items()}
    if kind in CROSS_CHECKS:
        CROSS_CHECKS[kind](config, where)
    return config


def _pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


def declared_params(layer_type: str, config: dict) -> dict[str, tuple]:
    """Parameter shapes a checked layer config declares (the layer classes
    make exactly these: tests/test_bad_model_files.py checks it)."""
    bias = config.get("bias", True)
    if layer_type in ("Conv2D", "SparseConv2D"):
        out = config["out_channels"]
        shapes = {"weight": (out, config["in_channels"], *_pair(config["kernel_size"]))}
    elif layer_type == "Linear":
        out = config["out_features"]
        shapes = {"weight": (out, config["in_features"])}
    elif layer_type == "BatchNorm2d":
        return {"gamma": (config["num_features"],), "beta": (config["num_features"],)}
    elif layer_type == "Subsampling2D":
        return {"weight": (config["channels"],), "bias": (config["channels"],)}
    else:
        return {}
    if bias:
        shapes["bias"] = (out,)
    return shapes


@dataclass
class LayerSpec:
    type: str
    name: str
    config: dict
    params: dict            # param key -> shape

    @property
    def num_params(self) -> int:
        return sum(int(np.prod(s, dtype=object)) for s in self.params.values())


_BUDGET = (f"cnnviz opens models of up to {MAX_PARAMS:,} parameters "
           f"({fmt_bytes(4 * MAX_PARAMS)} as float32)")


def check_architecture(arch, field: str = "architecture") -> list[LayerSpec]:
    """The checked layer specs of an architecture (FieldError naming the
    field otherwise), within MAX_LAYERS and MAX_PARAMS."""
    jf.array(arch, field)
    if not arch:
        raise FieldError(f"{field}: no layers")
    if len(arch) > MAX_LAYERS:
        raise FieldError(f"{field}: {len(arch):,} layers; cnnviz opens models of up to "
                         f"{MAX_LAYERS:,} layers")
    specs = []
    for i, spec in enumerate(arch):
        where = f"{field}[{i}]"
        jf.obj(spec, where, allowed=("type", "name", "config"), required=("type",))
        kind = jf.text(spec["type"], f"{where}.type")
        if kind not in LAYER_CONFIG:
            raise FieldError(f"{where}.type: unknown layer type {json.dumps(kind[:40])} "
                             f"(known: {', '.join(LAYER_CONFIG)})")
        name = jf.text(spec.get("name", ""), f"{where}.name")
        if len(name) > MAX_NAME_CHARS or not name.isprintable():
            raise FieldError(f"{where}.name: expected a printable name of at most "
                             f"{MAX_NAME_CHARS} characters, got {jf.describe(name)}")
        config = check_layer_config(kind, spec.get("config", {}), f"{where}.config")
        specs.append(LayerSpec(kind, name, config, declared_params(kind, config)))
        _check_budget(specs[-1], where)
    total = sum(s.num_params for s in specs)
    if total > MAX_PARAMS:
        raise FieldError(f"{field}: declares {total:,} parameters in all "
                         f"({fmt_bytes(4 * total)} as float32); {_BUDGET}")
    return specs


def _check_budget(spec: LayerSpec, where: str):
    n = spec.num_params
    if n > MAX_PARAMS:
        shape = " x ".join(f"{d:,}" for d in spec.params["weight"])
        raise FieldError(f"{where} ({spec.type} {spec.name!r}, weights {shape}) declares "
                         f"{n:,} parameters ({fmt_bytes(4 * n)} as float32); {_BUDGET}")


def _construct(specs: list[LayerSpec], field: str = "architecture") -> Sequential:
    layers = []
    for spec in specs:
        layer = LAYER_TYPES[spec.type](**spec.config)
        layer.name = spec.name
        layers.append(layer)
    try:
        return Sequential(*layers)
    except ValueError as e:         # two layers with one name
        raise FieldError(f"{field}: {e}") from None


def build(arch: list[dict]) -> Sequential:
    """Rebuild a model (fresh weights) from ``architecture(model)``; FieldError
    (a ValueError) naming the field if the description is not a valid one."""
    return _construct(check_architecture(arch))


# --------------------------------------------------------------------------
# reading
def _member_limit(name: str) -> int | None:
    """Largest uncompressed size allowed for a member, None for a name that
    has no place in a cnnviz model or checkpoint."""
    slack = 64 * 1024                   # the .npy header
    if name in ("header", "trainer"):
        return 4 * MAX_HEADER_CHARS + slack   # numpy stores a str as UTF-32
    if name.startswith(("param/", "buffer/", "opt/", "average/")):
        return 8 * MAX_PARAMS + slack
    if name.startswith("history/"):
        return 8 * MAX_HISTORY_ROWS + slack
    return None


@contextmanager
def open_archive(path, error=ModelFileError):
    """A checked NpzArchive of a model or checkpoint file. Any problem met
    inside the block (NpzError, FieldError, OSError) leaves it as one
    ``error`` whose message starts with the file name."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a folder, not {KIND}")
    if not path.is_file():
        raise error(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    try:
        with NpzArchive(path, KIND, _member_limit) as archive:
            yield archive
    except (NpzError, FieldError) as e:
        raise error(f"{path}: {e}") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror or e})") from None


def read_header(path) -> dict:
    """The checked header of a model file."""
    with open_archive(path) as archive:
        return _header(archive)[0]


def _header(archive: NpzArchive) -> tuple[dict, list[LayerSpec]]:
    if "header" not in archive:
        raise NpzError(f"not {KIND}: no header (it holds "
                       f"{', '.join(archive.names[:5]) or 'nothing'})")
    header = jf.parse(archive.text("header", MAX_HEADER_CHARS), "header")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FieldError(f"header: not {KIND} (no \"format\": \"{FORMAT}\")")
    jf.obj(header, "header", allowed=("format", "version", "architecture", "metadata"),
           required=("version", "architecture"))
    version = jf.whole(header["version"], "header.version", 1)
    if version > VERSION:
        raise FieldError(f"header.version: made by a newer cnnviz (file version {version}, "
                         f"this one reads {VERSION})")
    specs = check_architecture(header["architecture"], "header.architecture")
    metadata = jf.obj(header.get("metadata", {}), "header.metadata")
    jf.find_huge_int(metadata, "header.metadata")
    return header, specs


@dataclass
class ModelContents:
    model: Sequential
    file_dtypes: dict        # param name -> dtype stored in the file
    nonfinite: dict          # param name -> count of NaN / inf values (only those with some)


def read_model(archive: NpzArchive) -> ModelContents:
    """The model in an open archive (NpzError / FieldError otherwise)."""
    header, specs = _header(archive)
    # a spec may leave a name empty (Sequential names it): build first (within
    # the budget, checked above), so the parameter names are known
    model = _construct(specs, "header.architecture")
    declared = {f"param/{p.name}": p.value.shape for p in model.parameters()}
    declared.update({f"buffer/{b.name}": b.value.shape for b in model.buffers()})
    stored = {n for n in archive.names if n.startswith(("param/", "buffer/"))}
    for member in sorted(stored - set(declared)):
        kind = "a parameter" if member.startswith("param/") else "a buffer"
        names = [n.split("/", 1)[1] for n in declared if n.startswith(member.split("/")[0] + "/")]
        raise NpzError(f"{member}: not {kind} of this architecture "
                       f"(it has {', '.join(names) or 'none'})")
    for member in declared:
        if member not in stored:
            raise NpzError(f"{member}: missing (the architecture declares it, "
                           f"shape {declared[member]})")
    heads = {member: _check_weight_header(archive, member, shape)
             for member, shape in declared.items()}
    dtypes = {h.dtype.newbyteorder("=") for m, h in heads.items() if m.startswith("param/")}
    dtype = np.dtype(np.float64) if dtypes == {np.dtype(np.float64)} else np.dtype(np.float32)
    model.astype(dtype)
    targets = {f"param/{p.name}": p for p in model.parameters()}
    targets.update({f"buffer/{b.name}": b for b in model.buffers()})
    nonfinite = {}
    for member in declared:
        values = archive.read(member)
        bad = values.size - int(np.count_nonzero(np.isfinite(values)))
        name = member.split("/", 1)[1]
        if bad:
            nonfinite[name] = bad
        targets[member].value[...] = values
    heads = {m.split("/", 1)[1]: h for m, h in heads.items()}
    model.metadata = header.get("metadata", {})
    model.load_notes = _notes(archive.path, heads, dtype, nonfinite)
    return ModelContents(model, {n: h.dtype for n, h in heads.items()}, nonfinite)


def _check_weight_header(archive, member, shape) -> NpyHeader:
    head = archive.header(member)
    kind = head.dtype
    if not (kind.kind == "f" and kind.itemsize in (2, 4, 8)):
        what = {"U": "strings", "S": "bytes", "i": "integers", "u": "integers", "b": "booleans",
                "c": "complex numbers", "V": "raw records", "M": "dates", "m": "time spans",
                "f": "floats of an unsupported width"}.get(kind.kind, "values")
        raise NpzError(f"{member}: {what} (dtype {kind if kind.names is None else 'structured'}); "
                       f"{'weights' if member.startswith('param/') else 'buffers'} must be "
                       f"float16, float32 or float64")
    if head.shape != tuple(shape):
        raise NpzError(f"{member}: shape {head.shape}, but the architecture declares "
                       f"{tuple(shape)}")
    return head


def _notes(path, heads: dict[str, NpyHeader], dtype, nonfinite) -> list[str]:
    notes = []
    converted: dict[str, list[str]] = {}
    for name, head in heads.items():
        if head.dtype.newbyteorder("=") != dtype:
            converted.setdefault(str(head.dtype.newbyteorder("=")), []).append(name)
    for stored, names in converted.items():
        how = "rounded" if np.dtype(stored).itemsize > dtype.itemsize else "exactly"
        notes.append(f"{path}: {_list(names)} stored as {stored}, converted {how} to {dtype}")
    if nonfinite:
        counts = ", ".join(f"{n} ({c:,})" for n, c in list(nonfinite.items())[:4])
        notes.append(f"{path}: NaN or infinite weights in {counts}"
                     f"{', ...' if len(nonfinite) > 4 else ''}: the model's outputs will not be "
                     f"numbers")
    return notes


def _list(names: list[str]) -> str:
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return f"weights {shown}" if len(names) > 1 else f"weight {shown}"


def load(path) -> Sequential:
    """Load a model saved by ``save`` (or a checkpoint). ModelFileError names
    the file and says what is wrong; ``model.load_notes`` lists what was
    converted on the way (see the module docstring)."""
    with open_archive(path) as archive:
        return read_model(archive).model
