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


def shape_text(t) -> str:
    return str(tuple(int(d) for d in t.shape))


def tensor_spec(t: np.ndarray, header: str, signed: bool | None = None,
                edit: tuple | None = None) -> MapSpec:
    maps, note = as_maps(t)
    titles = [str(i) for i in range(maps.shape[0])] if np.asarray(t).ndim == 4 else [note or "values"]
    return MapSpec(np.array(t), maps, titles, f"{header}: {shape_text(t)}" +
                   (f"  ({note})" if note else ""), signed, edit)


def io_specs(s: StepperSession) -> tuple[MapSpec | None, MapSpec | None, str]:
    """The two main panels and a sentence saying what is shown."""
    i = s.focus
    lesson_edit = s.delta is not None
    if i < 0:
        spec = tensor_spec(s.x, "input", None, ("input",) if lesson_edit else None)
        return spec, None, "The input. Step forward (Right) to run the first layer."
    t = s.model.trace[i]
    if s.phase == BACKWARD and s.back <= i:
        delta_edit = ("delta",) if lesson_edit and i == s.num_layers - 1 else None
        a = tensor_spec(t.grad_output, f"δ = dL/d({t.name} output)", True, delta_edit)
        b = (tensor_spec(t.grad_input, f"dL/d({t.name} input)", True)
             if t.grad_input is not None else None)
        return a, b, f"Backward through {t.name}: δ at its output, the gradient at its input."
    if t.output is None:
        return None, None, f"{t.name} has not run yet."
    edit_in = ("input",) if lesson_edit and i == 0 else None
    a = tensor_spec(t.input, f"{t.name} input", None, edit_in)
    b = tensor_spec(t.output, f"{t.name} output", None)
    return a, b, f"Forward through {t.name}: its input and its output."


def weight_spec(w: np.ndarray, header: str, signed: bool | None = True,
                edit: tuple | None = None) -> MapSpec:
    """Conv kernels as one tile per (filter, channel) when few, else one mosaic
    (rows = filters, columns = input channels); matrices as one heat map."""
    w = np.asarray(w)
    head = f"{header}: {shape_text(w)}"
    if w.ndim == 4:
        co, ci = w.shape[:2]
        if co * ci <= MAX_KERNEL_TILES:
            maps = np.ascontiguousarray(w.reshape(co * ci, *w.shape[2:]))
            titles = [f"[{o},{c}]" for o in range(co) for c in range(ci)]
            return MapSpec(w.copy(), maps, titles, head, signed, edit, "kernels")
        return MapSpec(w.copy(), kernel_mosaic(w)[None], [f"{co} filters (rows) x {ci} channels"],
                       head, signed, None, "mosaic")
    if w.ndim == 1:
        return MapSpec(w.copy(), np.ascontiguousarray(w[None, None]), ["values"], head, signed, edit)
    return MapSpec(w.copy(), np.ascontiguousarray(w[None]), ["out x in"], head, signed, edit)


def param_specs(s: StepperSession) -> dict[str, MapSpec | str]:
    """weight, dW, bias and db, and the last update: a MapSpec each, or the reason
    it is not shown."""
    i = s.focus
    if i < 0:
        return {"weight": "The input has no weights."}
    layer = s.model.layers[i]
    if not layer.params:
        return {"weight": f"{layer.name} has no weights."}
    lesson = s.delta is not None
    out: dict[str, MapSpec | str] = {}
    w_name = f"{layer.name}.weight"
    out["weight"] = weight_spec(layer.params["weight"], f"{w_name} (kernels)" if
                                layer.params["weight"].ndim == 4 else w_name, True,
                                ("param", w_name) if lesson else None)
    have_grads = s.phase == BACKWARD and s.back <= i
    if have_grads:
        out["dW"] = weight_spec(layer.grads["weight"], f"dW = dL/d({w_name})", True)
    else:
        out["dW"] = "dW appears when the backward pass has gone through this layer."
    if "bias" in layer.params:
        b_name = f"{layer.name}.bias"
        out["bias"] = weight_spec(layer.params["bias"], b_name, True,
                                  ("param", b_name) if lesson else None)
        if have_grads:
            out["db"] = weight_spec(layer.grads["bias"], f"db = dL/d({b_name})", True)
        else:
            out["db"] = "db appears with dW."
    update = s.last_update
    if update is not None and w_name in update.before:
        before, after = update.before[w_name], update.after[w_name]
        diff = after - before
        stack = np.stack([before, after, diff])
        names = ["before", "after", "after - before"]
        titles = names
        if before.ndim == 4 and before.shape[0] * before.shape[1] <= 8:
            # few kernels: one tile each (a mosaic's gutters would read as zeros in a table)
            co, ci = before.shape[:2]
            maps = stack.reshape(3 * co * ci, *before.shape[2:])
            titles = [f"{n} [{o},{c}]" for n in names for o in range(co) for c in range(ci)]
        elif before.ndim == 4:
            maps = np.stack([kernel_mosaic(a) for a in stack])
        else:
            maps = stack.reshape(3, *before.shape[-2:]) if before.ndim >= 2 else stack[:, None, :]
        out["update"] = MapSpec(stack, np.ascontiguousarray(maps), titles,
                                f"{w_name} around the last update (lr {update.lr:g}): "
                                f"after = before - lr * dW", True, None, "update")
    else:
        out["update"] = "Apply the update (U) after the backward pass to compare before and after."
    return out
