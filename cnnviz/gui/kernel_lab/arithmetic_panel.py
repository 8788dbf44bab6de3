"""Shows the arithmetic of one clicked pixel as tables: patch, kernel, products,
then the sum, the bias and the engine's value beside it."""

from __future__ import annotations

import html

import numpy as np
from PyQt6.QtWidgets import QTextBrowser

from cnnviz.gui.kernel_lab.arithmetic import ConvArithmetic, PoolArithmetic

PAD_BG = "#e6d9f5"
WINNER_BG = "#b9f0b9"
HINT = ("Click a pixel of the conv or activation maps to see the arithmetic behind it; "
        "click a pooled pixel to see its window.")


def fmt(v: float) -> str:
    text = f"{v:.4g}"
    return "0" if text == "-0" else text


def _table(values: np.ndarray, title: str, backgrounds: np.ndarray | None = None,
           row_labels=None, col_labels=None) -> str:
    cells = []
    if col_labels is not None:
        cells.append("<tr><td></td>" + "".join(
            f"<td align='center'><small>{c}</small></td>" for c in col_labels) + "</tr>")
    for r in range(values.shape[0]):
        row = f"<td><small>{row_labels[r]}</small></td>" if row_labels is not None else ""
        for c in range(values.shape[1]):
            bg = backgrounds[r, c] if backgrounds is not None else ""
            style = f" bgcolor='{bg}'" if bg else ""
            row += f"<td align='right'{style}>{fmt(values[r, c])}</td>"
        cells.append(f"<tr>{row}</tr>")
    return (f"<td valign='top'><b>{title}</b><table border='1' cellspacing='0' cellpadding='2'>"
            + "".join(cells) + "</table></td>")


class ArithmeticPanel(QTextBrowser):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.current: ConvArithmetic | PoolArithmetic | None = None
        self.show_hint()

    def show_hint(self) -> None:
        self.current = None
        self.setHtml(f"<p style='color:#555'>{HINT}</p>")

    def show_conv(self, a: ConvArithmetic, map_title: str) -> None:
        self.current = a
        backgrounds = np.where(a.is_padding, PAD_BG, "")
        parts = [f"<p><b>{html.escape(map_title)}</b>, pixel (row {a.row}, col {a.col}): "
                 f"receptive field rows {a.input_rows[0]}..{a.input_rows[-1]}, "
                 f"cols {a.input_cols[0]}..{a.input_cols[-1]} of the input"
                 + (" (<span style='background:%s'>shaded</span> cells are zero padding)"
                    % PAD_BG if a.is_padding.any() else "") + "</p>"]
        for k, name in enumerate(a.channel_names):
            parts.append(
                f"<table cellspacing='6'><tr><td valign='middle'><b>{name}</b></td>"
                + _table(a.patch[k], "input patch", backgrounds, a.input_rows, a.input_cols)
                + "<td valign='middle'>\u00d7</td>"
                + _table(a.kernel[k], "kernel")
                + "<td valign='middle'>=</td>"
                + _table(a.products[k], "products", backgrounds)
                + f"<td valign='middle'>\u03a3 = <b>{fmt(a.channel_sums[k])}</b></td>"
                + "</tr></table>")
        sums = " + ".join(fmt(s) for s in a.channel_sums)
        agree = all(abs(v - a.engine_value) <= 1e-4 * max(1.0, abs(a.engine_value))
                    for v in (a.total, a.map_value))
        mark = ("<span style='color:#007000'>\u2713 equal</span>" if agree
                else "<span style='color:#b00000'>\u2717 differs</span>")
        # the result first, the per-channel tables after it
        parts.insert(1,
            f"<p style='font-size:11pt'>sum of products {sums} + bias {fmt(a.bias)} = "
            f"<b>{a.total:.6g}</b> &nbsp; | &nbsp; map value: <b>{a.map_value:.6g}</b>"
            f" &nbsp; | &nbsp; the engine's conv2d here: <b>{a.engine_value:.6g}</b> {mark}</p>")
        self.setHtml("".join(parts))

    def show_pool(self, a: PoolArithmetic, map_title: str) -> None:
        self.current = a
        backgrounds = None
        if a.winner is not None:
            backgrounds = np.full(a.window.shape, "", dtype=object)
            backgrounds[a.winner] = WINNER_BG
        what = "max" if a.kind == "max" else "mean"
        how = (f"max = <b>{fmt(a.result)}</b> (the shaded cell wins; the backward pass routes "
               f"the gradient to it)" if a.kind == "max" else
               f"mean = {fmt(a.window.sum())} / {a.window.size} = <b>{fmt(a.result)}</b>")
        self.setHtml(
            f"<p><b>{html.escape(map_title)}</b>, pooled pixel (row {a.row}, col {a.col}): "
            f"{what} over rows {a.window_rows[0]}..{a.window_rows[-1]}, cols "
            f"{a.window_cols[0]}..{a.window_cols[-1]} of the map before pooling</p>"
            f"<table><tr>{_table(a.window, 'window', backgrounds, a.window_rows, a.window_cols)}"
            f"</tr></table><p style='font-size:11pt'>{how} &nbsp; | &nbsp; engine's value: "
            f"<b>{a.map_value:.6g}</b></p>")
