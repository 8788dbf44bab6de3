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
