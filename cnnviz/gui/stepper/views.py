"""What each panel shows for the session's focus layer, as plain data.

No Qt here: a ``MapSpec`` is the tensor (exported as is), the (M, H, W)
maps drawn from it, titles, a header and the colour choice. ``edit`` names
what a table edit changes (lessons): ("input",), ("delta",), ("param", name).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnviz.gui.stepper.explain import as_maps, kernel_mosaic
from cnnviz.gui.stepper.session import BACKWARD, StepperSession

MAX_KERNEL_TILES = 24       # more kernels than this are drawn as one mosaic


@dataclass
class MapSpec:
    tensor: np.ndarray
    maps: np.ndarray
    titles: list[str]
    header: str
    signed: bool | None = None
    edit: tuple | None = None
    layout: str = "maps"        # "maps", "kernels" (o, c) tiles, "mosaic"
    stem: str = ""              # export file name without extension ("conv2_dx")
    mosaic: tuple | None = None     # (kh, kw) when the maps are kernel mosaics
    numbers: bool = False       # a vector: always a table of numbers (fits one)


VECTOR_ROW = 6                  # a parameter vector in rows of at most 6: fits a side tab


def vector_rows(v: np.ndarray) -> np.ndarray:
    """A 1-D vector as (1, rows, w) for a table, w <= VECTOR_ROW, as even rows as
    possible (10 -> 2x5, 16 -> 3x6, 120 -> 20x6); unused cells are NaN (shown blank).
    Value k sits at row k // w, column k % w."""
    n = v.shape[0]
    rows = -(-n // VECTOR_ROW)
    w = -(-n // rows)
    out = np.full(rows * w, np.nan, np.float32)
    out[:n] = v
    return out.reshape(1, rows, w)


def shape_text(t) -> str:
    return str(tuple(int(d) for d in t.shape))


def tensor_spec(t: np.ndarray, header: str, signed: bool | None = None,
                edit: tuple | None = None, stem: str = "") -> MapSpec:
    maps, note = as_maps(t, wrap_points=edit is None)
    titles = [str(i) for i in range(maps.shape[0])] if not note else [note]
    if np.asarray(t).ndim != 4 and not note:
        titles = ["values"]
    return MapSpec(np.array(t), maps, titles, f"{header}: {shape_text(t)}" +
                   (f"  ({note})" if note else ""), signed, edit, stem=stem)


def io_specs(s: StepperSession) -> tuple[MapSpec | None, MapSpec | None, str]:
    """The two main panels and a sentence saying what is shown."""
    i = s.focus
    lesson_edit = s.delta is not None
    if i < 0:
        spec = tensor_spec(s.x, "input", None, ("input",) if lesson_edit else None, "input")
        return spec, None, "The input. Step forward (Right) to run the first layer."
    t = s.model.trace[i]
    update = s.last_update
    if s.update_fresh and update is not None and update.outputs_before is not None:
        lr = f"lr {update.lr:g}"
        a = tensor_spec(update.outputs_before[i], f"{t.name} output BEFORE the update", None,
                        None, f"{t.name}_output_before_update")
        b = tensor_spec(t.output, f"{t.name} output AFTER the update ({lr})", None, None,
                        f"{t.name}_output_after_update")
        return a, b, (f"After one SGD step ({lr}): {t.name}'s output before (top) and after "
                      f"(bottom); the forward pass has rerun with the new weights.")
    if s.phase == BACKWARD and s.back <= i:
        delta_edit = ("delta",) if lesson_edit and i == s.num_layers - 1 else None
        a = tensor_spec(t.grad_output, f"δ = dL/d({t.name} output)", True, delta_edit,
                        f"{t.name}_delta")
        b = (tensor_spec(t.grad_input, f"dx = dL/d({t.name} input)", True, None, f"{t.name}_dx")
             if t.grad_input is not None else None)
        return a, b, f"Backward through {t.name}: δ at its output, the gradient at its input."
    if t.output is None:
        return None, None, f"{t.name} has not run yet."
    edit_in = ("input",) if lesson_edit and i == 0 else None
    a = tensor_spec(t.input, f"{t.name} input", None, edit_in, f"{t.name}_input")
    b = tensor_spec(t.output, f"{t.name} output", None, None, f"{t.name}_output")
    return a, b, f"Forward through {t.name}: its input and its output."


def weight_spec(w: np.ndarray, header: str, signed: bool | None = True,
                edit: tuple | None = None, stem: str = "") -> MapSpec:
    """Conv kernels as one tile per (filter, channel) when few, else one mosaic
    (rows = filters, columns = input channels, grey lines between kernels);
    matrices as one heat map; vectors (biases) as a table of numbers."""
    w = np.asarray(w)
    head = f"{header}: {shape_text(w)}"
    if w.ndim == 4:
        co, ci = w.shape[:2]
        if co * ci <= MAX_KERNEL_TILES:
            maps = np.ascontiguousarray(w.reshape(co * ci, *w.shape[2:]))
            titles = [f"[{o},{c}]" for o in range(co) for c in range(ci)]
            return MapSpec(w.copy(), maps, titles, head, signed, edit, "kernels", stem)
        return MapSpec(w.copy(), kernel_mosaic(w)[None], [f"{co} filters (rows) x {ci} channels"],
                       head, signed, None, "mosaic", stem, tuple(w.shape[2:]))
    if w.ndim == 1:
        maps = vector_rows(w)
        title = ("values" if maps.shape[1] == 1 else
                 f"value k at row k // {maps.shape[2]}, column k % {maps.shape[2]}")
        return MapSpec(w.copy(), maps, [title], head, signed, edit, stem=stem, numbers=True)
    return MapSpec(w.copy(), np.ascontiguousarray(w[None]), ["out x in"], head, signed, edit,
                   stem=stem)


def param_specs(s: StepperSession, focus: int | None = None,
                preview: bool = False) -> dict[str, MapSpec | str]:
    """weight, dW, bias and db, and the last update: a MapSpec each, or the reason
    it is not shown. ``focus``: of that layer instead of the session's;
    ``preview``: the gradients as zeros of their shapes (what a backward visit
    will show, for building its panels ahead) and no update."""
    i = s.focus if focus is None else focus
    if i < 0:
        return {"weight": "The input has no weights."}
    layer = s.model.layers[i]
    if not layer.params:
        return {"weight": f"{layer.name} has no weights."}
    lesson = s.delta is not None
    out: dict[str, MapSpec | str] = {}
    # the first parameter fills the "weight" slot, a second the "bias" slot
    # (BatchNorm2d: gamma and beta; Subsampling2D: its per-map weight and bias)
    keys = list(layer.params)
    w_name = f"{layer.name}.{keys[0]}"
    w = layer.params[keys[0]]
    out["weight"] = weight_spec(w, f"{w_name} (kernels)" if w.ndim == 4 else w_name, True,
                                ("param", w_name) if lesson else None, f"{layer.name}_{keys[0]}")
    have_grads = preview or s.phase == BACKWARD and s.back <= i
    grads = ({k: np.zeros_like(v) for k, v in layer.params.items()} if preview
             else layer.grads)
    d = {"weight": "dW", "bias": "db"}
    dw, db = (d.get(k, f"d{k}") for k in (keys + keys)[:2])
    if have_grads:
        out["dW"] = weight_spec(grads[keys[0]], f"{dw} = dL/d({w_name})",
                                True, None, f"{layer.name}_{dw}")
    else:
        out["dW"] = f"{dw} appears when the backward pass has gone through this layer."
    if len(keys) > 1:
        b_name = f"{layer.name}.{keys[1]}"
        out["bias"] = weight_spec(layer.params[keys[1]], b_name, True,
                                  ("param", b_name) if lesson else None,
                                  f"{layer.name}_{keys[1]}")
        if have_grads:
            out["db"] = weight_spec(grads[keys[1]], f"{db} = dL/d({b_name})", True, None,
                                    f"{layer.name}_{db}")
        else:
            out["db"] = f"{db} appears with {dw}."
    update = None if preview else s.last_update
    if update is not None and w_name in update.before:
        before, after = update.before[w_name], update.after[w_name]
        diff = after - before
        stack = np.stack([before, after, diff])
        names = ["before", "after", "after - before"]
        titles, mosaic = names, None
        if before.ndim == 4 and before.shape[0] * before.shape[1] <= 8:
            # few kernels: one tile each (a mosaic's gutters would read as zeros in a table)
            co, ci = before.shape[:2]
            maps = stack.reshape(3 * co * ci, *before.shape[2:])
            titles = [f"{n} [{o},{c}]" for n in names for o in range(co) for c in range(ci)]
        elif before.ndim == 4:
            maps = np.stack([kernel_mosaic(a) for a in stack])
            mosaic = tuple(before.shape[2:])
        else:
            maps = stack.reshape(3, *before.shape[-2:]) if before.ndim >= 2 else stack[:, None, :]
        out["update"] = MapSpec(stack, np.ascontiguousarray(maps), titles,
                                f"{w_name} around the last update (lr {update.lr:g}): "
                                f"after = before - lr * dW", True, None, "update",
                                f"{layer.name}_weight_update", mosaic)
    else:
        out["update"] = "Apply the update (U) after the backward pass to compare before and after."
    return out
