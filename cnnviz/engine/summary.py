"""Architecture table: per layer its output shape, parameters, multiply-adds."""

from __future__ import annotations

from dataclasses import dataclass

from .sequential import Sequential


@dataclass(frozen=True)
class SummaryRow:
    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int


@dataclass(frozen=True)
class Summary:
    input_shape: tuple
    rows: tuple[SummaryRow, ...]

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def __str__(self):
        head = ("layer", "type", "output shape", "params", "mult-adds")
        body = [(r.name, r.kind, str(r.output_shape), f"{r.params:,}", f"{r.macs:,}")
                for r in self.rows]
        foot = ("total", "", "", f"{self.total_params:,}", f"{self.total_macs:,}")
        table = [head, *body, foot]
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        right = {3, 4}

        def fmt(row):
            return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(row, widths))).rstrip()

        rule = "-" * len(fmt(head))
        lines = [f"input {self.input_shape}", fmt(head), rule, *map(fmt, body), rule, fmt(foot)]
        return "\n".join(lines)


def summary(model: Sequential, input_shape) -> Summary:
    """Shapes are propagated without running the model; a layer that cannot
    take its input raises ValueError naming it."""
    shape, rows = tuple(input_shape), []
    for layer in model.layers:
        rows.append(summary_row(layer, shape))
        shape = rows[-1].output_shape
    return Summary(tuple(input_shape), tuple(rows))


def summary_row(layer, input_shape) -> SummaryRow:
    """One layer's row for an input of ``input_shape`` (batch first): the
    GUI builder's table uses it too, so both show the same numbers."""
    try:
        out = tuple(layer.output_shape(input_shape))
    except ValueError as e:
        raise ValueError(f"{layer.name}: {e}") from None
    return SummaryRow(layer.name, type(layer).__name__, out, layer.num_params,
                      layer.macs(tuple(input_shape)))


MIN_SIDE, MAX_SIDE = 4, 256      # the square input sides find_input_shape tries


def first_channels(model: Sequential) -> int | None:
    """The channel count the first layer that needs one asks for (None: no
    such layer before the first Linear, e.g. Flatten first)."""
    for layer in model.layers:
        for attr in ("in_channels", "num_features", "channels"):
            if isinstance(getattr(layer, attr, None), int):
                return getattr(layer, attr)
        if hasattr(layer, "in_features"):
            return None
    return None


def ends_in_scores(model: Sequential, shape) -> bool:
    """Does the model turn a batch of ``shape`` (1, C, H, W) into class scores?"""
    try:
        rows = summary(model, shape).rows
    except ValueError:
        return False
    return bool(rows) and len(rows[-1].output_shape) == 2


def find_input_shape(model: Sequential) -> tuple | None:
    """(1, C, H, W) for a network that does not say its input (an older
    model file): C from the first layer that needs a count (none: 1, then
    3), H = W the first side that ends it in class scores, 28 (MNIST) and
    32 (CIFAR-10) tried first; None if no side from MIN_SIDE to MAX_SIDE does."""
    given = first_channels(model)
    for c in (given,) if given else (1, 3):
        first = (32, 28) if c == 3 else (28, 32)
        for side in (*first, *range(MIN_SIDE, MAX_SIDE + 1)):
            if ends_in_scores(model, (1, c, side, side)):
                return (1, c, side, side)
    return None


def stated_input_shape(metadata) -> tuple | None:
    """(1, C, H, W) from a model file's metadata "input_shape" ([C, H, W] or
    [N, C, H, W], written by `cnnviz train --save` since it records it), or
    None if it has none or a malformed one."""
    given = metadata.get("input_shape") if isinstance(metadata, dict) else None
    if not (isinstance(given, (list, tuple)) and len(given) in (3, 4)
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in given)):
        return None
    return (1, *given[-3:])
