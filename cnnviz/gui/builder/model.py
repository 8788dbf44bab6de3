"""The network builder's model: an input shape and a list of layers, as an
architecture file writes them (docs/architecture-format.md), and what they
make, layer by layer. Plain Python, no Qt: the builder's widget is a view of
it, and the tests drive it alone too.

A layer's fields are kept as the file holds them, the size of its input left
out (``in_channels`` etc. follow the shape that reaches it, so inserting a
layer before a conv does not break it). ``evaluate`` checks the layers with
the architecture reader's own checks (architecture.check_layers) and takes
each row's numbers from the engine's summary_row on the real layer: the
table shows exactly what ``cnnviz summary`` prints.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cnnviz.engine import architecture as A
from cnnviz.engine import serialization as ser
from cnnviz.engine.jsonfields import FieldError
from cnnviz.engine.registry import LAYER_TYPES
from cnnviz.engine.summary import summary_row

# what the "Add a layer" list offers: (label, type, the new layer's fields)
PALETTE = [
    ("Conv2D", "Conv2D", {"out_channels": 8, "kernel_size": 3}),
    ("1x1 conv", "Conv2D", {"out_channels": 8, "kernel_size": 1}),
    ("Max pooling", "MaxPool2D", {"kernel_size": 2}),
    ("Average pooling", "AvgPool2D", {"kernel_size": 2}),
    ("ReLU", "ReLU", {}),
    ("LeakyReLU", "LeakyReLU", {"negative_slope": 0.01}),
    ("Sigmoid", "Sigmoid", {}),
    ("Tanh", "Tanh", {}),
    ("Flatten", "Flatten", {}),
    ("Linear", "Linear", {"out_features": 10}),
    ("Dropout", "Dropout", {"p": 0.5}),
    ("BatchNorm", "BatchNorm2d", {}),
    ("Global average pooling", "GlobalAvgPool2D", {}),
    ("Zero padding", "ZeroPad2D", {"padding": 2}),
    ("Subsampling (1998)", "Subsampling2D", {"kernel_size": 2}),
    ("Normalize", "Normalize", {"mean": 0.1307, "std": 0.3081}),
]

# the fields a user edits: every config key but the input's size (it follows
# the shape) and a Dropout's seed (the run's seed decides it unless a file sets it)
_HIDDEN = {"seed"}


def editable_fields(kind: str) -> list[str]:
    keys = list(ser.LAYER_CONFIG[kind][0])
    return [k for k in keys if k != A._FROM_INPUT.get(kind) and k not in _HIDDEN]


def field_default(kind: str, key: str) -> str:
    """The default a left-out field takes, as text ("" if it must be given)."""
    if key in ser.LAYER_CONFIG[kind][1]:
        return ""
    if key == "stride" and kind in ("MaxPool2D", "AvgPool2D", "Subsampling2D"):
        return "= kernel size"
    param = inspect.signature(LAYER_TYPES[kind]).parameters.get(key)
    if param is None or param.default is inspect.Parameter.empty or param.default is None:
        return ""
    return value_text(param.default)


def value_text(v) -> str:
    """A field's value as the editor shows it: 3, 3x5, 0.5, true."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(
            isinstance(x, int) and not isinstance(x, bool) for x in v):
        return f"{v[0]}x{v[1]}"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


_PAIR = re.compile(r"^\s*(-?\d+)\s*[xX\u00d7,]\s*(-?\d+)\s*$")


def parse_value(text: str):
    """The JSON value of what was typed: 3 -> 3, 3x5 -> [3, 5], 0.5 -> 0.5,
    true/false, JSON; anything else stays text (the layer's checks then say
    what was expected). None: the field is left out (its default)."""
    t = text.strip()
    if not t:
        return None
    m = _PAIR.match(t)
    if m:
        return [int(m.group(1)), int(m.group(2))]
    if re.fullmatch(r"-?\d+", t):
        return int(t)
    try:
        return json.loads(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


@dataclass
class LayerEntry:
    kind: str
    name: str = ""                              # "" = named by kind and count (conv1, ...)
    config: dict = field(default_factory=dict)  # the file's fields, input size left out

    def to_json(self) -> dict:
        return {"type": self.kind, **({"name": self.name} if self.name else {}), **self.config}


@dataclass(frozen=True)
class Row:
    """One layer in the table: ``state`` "ok" (with its numbers), "error"
    (the layer the network stops at; ``message`` says why) or "after"."""

    name: str
    kind: str
    state: str
    output_shape: tuple | None = None   # (C, H, W) or (features,): summary's, batch left out
    params: int = 0
    macs: int = 0


@dataclass(frozen=True)
class Evaluation:
    input_shape: tuple
    rows: tuple
    error: str | None = None            # the first problem, one line, naming the layer
    error_index: int | None = None      # its row (None: the input shape or no layers)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows if r.state == "ok")

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows if r.state == "ok")


class BuilderModel:
    def __init__(self):
        self.input_shape: tuple = (1, 28, 28)
        self.layers: list[LayerEntry] = []
        self.name = ""
        self.description = ""
        self.path: str | None = None        # the file it was opened from or saved to
        self._layer_cache: dict = {}        # (type, config) -> the engine layer of last evaluate
        self._saved = self.snapshot()
        # undo / redo: the documents before each edit (typing in one field is one edit)
        self._undo: list[str] = []
        self._redo: list[str] = []
        self._last_edit = None

    # --- the document -------------------------------------------------------------------
    def doc(self) -> dict:
        d = {"format": A.FORMAT, "version": A.VERSION}
        if self.name:
            d["name"] = self.name
        if self.description:
            d["description"] = self.description
        d["input_shape"] = list(self.input_shape)
        d["layers"] = [entry.to_json() for entry in self.layers]
        return d

    def snapshot(self) -> str:
        return json.dumps(self.doc(), sort_keys=True)

    @property
    def dirty(self) -> bool:
        """Changed since it was opened, started or saved."""
        return self.snapshot() != self._saved

    def mark_saved(self) -> None:
        self._saved = self.snapshot()

    def load(self, arch: A.Architecture, path: str | None = None) -> None:
        """Show a checked architecture (read from ``path``, or a bundled
        one: no path, Save asks where)."""
        self.input_shape = tuple(arch.input_shape)
        self.layers = [LayerEntry(kind, name, self._file_fields(kind, config))
                       for kind, name, config in arch.layers]
        self.name, self.description = arch.name, arch.description
        self.path = path
        self.mark_saved()
        self._forget_edits()

    @staticmethod
    def _file_fields(kind: str, config: dict) -> dict:
        # the reader filled the input's size in; the builder lets it follow the shape
        return {k: v for k, v in config.items() if k != A._FROM_INPUT.get(kind)}

    def clear(self) -> None:
        self.layers, self.name, self.description, self.path = [], "", "", None
        self.mark_saved()
        self._forget_edits()

    # --- undo -----------------------------------------------------------------------------
    def _forget_edits(self) -> None:
        self._undo, self._redo, self._last_edit = [], [], None

    def _remember(self, edit=None) -> None:
        """Called before each edit: the document as it was, unless ``edit``
        (a field, the input) is the one edited last (typing "128" is one edit)."""
        if edit is not None and edit == self._last_edit:
            return
        self._undo.append(self.snapshot())
        del self._undo[:-500]
        self._redo.clear()
        self._last_edit = edit

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        """Back to before the last edit; False if there is none."""
        return self._step(self._undo, self._redo)

    def redo(self) -> bool:
        return self._step(self._redo, self._undo)

    def _step(self, source: list, target: list) -> bool:
        if not source:
            return False
        target.append(self.snapshot())
        doc = json.loads(source.pop())
        self.input_shape = tuple(doc["input_shape"])
        self.layers = [LayerEntry(e.pop("type"), e.pop("name", ""), e) for e in doc["layers"]]
        self._last_edit = None
        return True

    # --- edits --------------------------------------------------------------------------
    def add(self, label: str, index: int | None = None) -> int:
        """A layer of the palette entry ``label`` at ``index`` (default: the
        end); returns where it went."""
        _, kind, config = next(p for p in PALETTE if p[0] == label)
        self._remember()
        index = len(self.layers) if index is None else max(0, min(index, len(self.layers)))
        # a name of its own (kind and the first free count): the automatic
        # one counts unnamed layers only, and would repeat a file's "conv1"
        taken = {self._shown_name(i) for i in range(len(self.layers))}
        short = LAYER_TYPES[kind].kind
        name = next(f"{short}{n}" for n in range(1, len(taken) + 2) if f"{short}{n}" not in taken)
        self.layers.insert(index, LayerEntry(kind, name, dict(config)))
        return index

    def remove(self, index: int) -> None:
        self._remember()
        del self.layers[index]

    def move(self, index: int, delta: int) -> int:
        """Move a layer up (-1) or down (+1); returns its new index."""
        to = index + delta
        return self.move_to(index, to)

    def move_to(self, index: int, to: int) -> int:
        """Move a layer to row ``to`` (a row dragged); returns where it is."""
        if not (0 <= index < len(self.layers) and 0 <= to < len(self.layers)) or to == index:
            return index
        self._remember()
        self.layers.insert(to, self.layers.pop(index))
        return to

    def set_field(self, index: int, key: str, text: str) -> None:
        """A field as typed; empty text leaves it out (its default)."""
        value = parse_value(text)
        self._remember(("field", index, key))
        config = self.layers[index].config
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value

    def set_name(self, index: int, text: str) -> None:
        self._remember(("name", index))
        self.layers[index].name = text.strip()

    def set_input_shape(self, channels: int, height: int, width: int) -> None:
        shape = (int(channels), int(height), int(width))
        if shape == self.input_shape:
            return
        self._remember(("input",))
        self.input_shape = (int(channels), int(height), int(width))

    # --- what it makes ------------------------------------------------------------------
    def evaluate(self) -> Evaluation:
        """Every layer's output shape, parameters and multiply-adds up to the
        first that cannot work; that one carries the message, the rest are
        "after"."""
        rows, cache = [], {}
        try:
            for step in A.check_layers(self.input_shape, [e.to_json() for e in self.layers]):
                key = (step.kind, json.dumps(step.config, sort_keys=True))
                layer = self._layer_cache.get(key) or cache.get(key)
                if layer is None:
                    layer = LAYER_TYPES[step.kind](**step.config)
                cache[key] = layer
                layer.name = step.name
                r = summary_row(layer, step.input_shape)
                rows.append(Row(step.name, step.kind, "ok", r.output_shape[1:], r.params,
                                r.macs))
        except A.LayerError as e:
            i = e.index
            rows.append(Row(e.name or self._shown_name(i), self.layers[i].kind, "error"))
            rows += [Row(self._shown_name(j), self.layers[j].kind, "after")
                     for j in range(i + 1, len(self.layers))]
            self._layer_cache = cache
            return Evaluation(self.input_shape, tuple(rows), A.shorten_numbers(str(e)), i)
        except (ValueError, TypeError) as e:     # a layer that refuses a checked config
            i = len(rows)
            rows.append(Row(self._shown_name(i), self.layers[i].kind, "error"))
            rows += [Row(self._shown_name(j), self.layers[j].kind, "after")
                     for j in range(i + 1, len(self.layers))]
            self._layer_cache = cache
            return Evaluation(self.input_shape, tuple(rows), f"{rows[i].name}: {e}", i)
        self._layer_cache = cache
        if not self.layers:
            return Evaluation(self.input_shape, (), "No layers yet: add one from the list "
                                                    "on the left.", None)
        return Evaluation(self.input_shape, tuple(rows))

    def _shown_name(self, index: int) -> str:
        """The layer's name, or the one it gets when read (kind and count)."""
        entry = self.layers[index]
        if entry.name:
            return entry.name
        kind = LAYER_TYPES[entry.kind].kind
        count = sum(1 for e in self.layers[:index + 1]
                    if not e.name and LAYER_TYPES[e.kind].kind == kind)
        return f"{kind}{count}"

    def architecture(self) -> A.Architecture:
        """The checked architecture; FieldError (one line, naming the layer) if
        it cannot be built."""
        arch = A.parse(self.doc(), source=self.path or "")
        return arch

    def text(self) -> str:
        """The file's text: the layers as the builder keeps them (the input's
        size left out). A network that cannot be built yet is written too (work
        in progress: the builder opens it again; `cnnviz summary` and `train
        --arch` say which layer is wrong)."""
        layers = [(e.kind, e.name, e.config) for e in self.layers]
        return A.to_text(A.Architecture(self.input_shape, layers, self.name, self.description))

    def save(self, path) -> None:
        """Write the file atomically (OSError if it cannot be written)."""
        from cnnviz.atomic import atomic_write_text
        atomic_write_text(path, self.text())
        self.path = str(path)
        self.mark_saved()

    def open(self, path) -> None:
        """Read an architecture file, as written: a layer that cannot work
        is shown where it is, to be fixed here (``evaluate`` says why). A file
        that is no architecture (not JSON, an unknown layer type or field):
        ArchitectureError (one line, naming the file), and the current
        network stays as it was."""
        self.load(A.read_draft(path), str(Path(path)))

    def default_file_name(self) -> str:
        """The name Save offers: the file's, or the network's made a safe
        file name (no / \\ : * ? " < > | or control characters)."""
        if self.path:
            return Path(self.path).name
        stem = re.sub(r'[\\/:*?"<>|\x00-\x1f\x7f]+', " ", self.name)
        stem = " ".join(stem.split()).strip(" .")[:100].strip(" .") or "network"
        return stem.removesuffix(".json") + ".json"


__all__ = ["BuilderModel", "Evaluation", "FieldError", "LayerEntry", "PALETTE", "Row",
           "editable_fields", "field_default", "parse_value", "value_text"]
