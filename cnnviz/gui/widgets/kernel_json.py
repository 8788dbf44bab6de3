"""Kernels to and from JSON (pure Python + NumPy).

A single kernel::

    {"format": "cnnviz-kernel", "version": 1, "kernel": [[-1, 0, 1], ...]}

A bank (a whole conv layer, weights (F, C, kh, kw))::

    {"format": "cnnviz-kernel-bank", "version": 1, "weights": [...], "bias": [...],
     "names": ["Sobel x", ...], "depthwise": false}

Loading accepts either, and also a bare 2-D list of numbers. Anything else
(bad JSON, a 5000-digit number, 100,000 levels of nesting, ragged rows,
strings, non-finite or float32-overflowing numbers, a file too large to be a
kernel) raises KernelFileError with one sentence saying what is wrong.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from cnnviz.engine.kernels import MAX_SIDE


FLOAT32_MAX = float(np.finfo(np.float32).max)

# The largest bank the lab edits (8 filters x 3 channels x 11 x 11) is ~100 KB as JSON.
MAX_FILE_BYTES = 1_000_000


class KernelFileError(ValueError):
    """The text is not a kernel cnnviz can use; the message says why."""


def kernel_to_json(kernel: np.ndarray) -> str:
    return json.dumps({"format": "cnnviz-kernel", "version": 1,
                       "kernel": np.asarray(kernel, dtype=float).tolist()}, indent=1)


def _checked(array, what: str, ndim: int) -> np.ndarray:
    if _has_non_number(array):
        raise KernelFileError(f"{what} must hold only numbers (found text, true/false or null)")
    depth, first = 0, array
    while isinstance(first, list) and first:
        depth, first = depth + 1, first[0]
    if depth > ndim:   # numpy would list every axis, or refuse past 64 of them
        raise KernelFileError(f"{what} must have {ndim} dimensions, got lists nested {depth} deep")
    try:
        out = np.array(array, dtype=np.float64)
    except OverflowError:   # an integer past float64's 1.8e308
        raise KernelFileError(f"{what} holds a value that is not a finite float32 number") from None
    except (TypeError, ValueError):
        raise KernelFileError(f"{what} must be a rectangular grid of numbers") from None
    if out.ndim != ndim:
        raise KernelFileError(f"{what} must have {ndim} dimensions, got shape {out.shape}")
    if not np.isfinite(out).all() or (np.abs(out) > FLOAT32_MAX).any():
        raise KernelFileError(f"{what} holds a value that is not a finite float32 number")
    if ndim >= 2:
        kh, kw = out.shape[-2:]
        if not (1 <= kh <= MAX_SIDE and 1 <= kw <= MAX_SIDE):
            raise KernelFileError(f"kernels must be 1x1 to {MAX_SIDE}x{MAX_SIDE}, got {kh}x{kw}")
    return out.astype(np.float32)


def _has_non_number(value) -> bool:
    """True if a nested list holds anything but int/float (bool is an int to numpy: refuse it)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            return True
    return False


def _parse(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise KernelFileError(f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:   # json recurses once per nesting level
        raise KernelFileError("the JSON is nested too deeply (a kernel is a few levels of "
                              "lists)") from None
    except ValueError as exc:   # Python refuses to read integers of more than 4300 digits
        if "digits" in str(exc):
            raise KernelFileError("a number in it has thousands of digits; kernel values are "
                                  "float32, at most 3.4e38") from None
        raise KernelFileError(f"not valid JSON ({exc})") from None


def read_kernel_text(path: str | Path) -> str:
    """A kernel file's text, read at most MAX_FILE_BYTES; KernelFileError (or OSError) if not."""
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise KernelFileError(f"the file is larger than {MAX_FILE_BYTES // 1000} KB, far more "
                              f"than any kernel needs")
    if not data.strip():
        raise KernelFileError("the file is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise KernelFileError("the file is not text (is it really a kernel JSON?)") from None


def kernel_from_json(text: str) -> np.ndarray:
    """(kh, kw) float32 from a kernel file; a bank file gives its first sub-kernel."""
    data = _parse(text)
    if isinstance(data, dict) and "weights" in data:
        return bank_from_json(text)["weights"][0, 0]
    if isinstance(data, dict):
        if "kernel" not in data:
            raise KernelFileError('a kernel file needs a "kernel" entry')
        data = data["kernel"]
    return _checked(data, "the kernel", 2)


def is_bank_json(text: str) -> bool:
    """A whole bank's file (what "Export kernel bank" writes), not a single kernel's."""
    data = _parse(text)
    return isinstance(data, dict) and "weights" in data


def bank_to_json(weights: np.ndarray, bias: np.ndarray, names: list[str],
                 depthwise: bool) -> str:
    return json.dumps({"format": "cnnviz-kernel-bank", "version": 1,
                       "weights": np.asarray(weights, dtype=float).tolist(),
                       "bias": np.asarray(bias, dtype=float).tolist(),
                       "names": list(names), "depthwise": bool(depthwise)}, indent=1)


def bank_from_json(text: str) -> dict:
    """{"weights": (F, C, kh, kw), "bias": (F,), "names": [...], "depthwise": bool}.
    A single-kernel file becomes a bank of one filter with one channel."""
    data = _parse(text)
    if not (isinstance(data, dict) and "weights" in data):
        k = kernel_from_json(text)
        return {"weights": k[None, None], "bias": np.zeros(1, np.float32),
                "names": ["filter 1"], "depthwise": False}
    weights = _checked(data["weights"], "the weights", 4)
    f = weights.shape[0]
    bias = _checked(data.get("bias", [0.0] * f), "the bias", 1)
    if bias.shape != (f,):
        raise KernelFileError(f"{f} filters need {f} biases, got {bias.shape[0]}")
    names = data.get("names") or [f"filter {i + 1}" for i in range(f)]
    if not isinstance(names, list) or len(names) != f or not all(isinstance(n, str) for n in names):
        raise KernelFileError(f'"names" must list {f} strings')
    depthwise = data.get("depthwise", False)
    if not isinstance(depthwise, bool):
        raise KernelFileError(f'"depthwise" must be true or false, got {json.dumps(depthwise)[:40]}')
    return {"weights": weights, "bias": bias, "names": names, "depthwise": depthwise}


def parse_cell(text: str) -> float:
    """A cell's number: ``0.5``, ``-2``, ``1e-3`` or a fraction ``1/9``.
    Raises ValueError with a message for anything that is not a finite number."""
    s = text.strip()
    if not s:
        raise ValueError("the cell is empty")
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(s)
    except ZeroDivisionError:
        raise ValueError(f"'{s}' divides by zero") from None
    except ValueError:
        raise ValueError(f"'{s}' is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"'{s}' is not a finite number")
    if abs(value) > FLOAT32_MAX:   # the engine computes in float32: it would become inf
        raise ValueError(f"'{s}' is too large (float32 holds up to 3.4e38)")
    return value


# a number still being typed: "-", "1e", "-.", "1e-", "1/" (and the empty cell)
_INCOMPLETE = re.compile(r"^[+-]?(\d*\.?\d*)([eE][+-]?)?$|^[+-]?\d*\.?\d*/[+-]?$")


def is_incomplete_number(text: str) -> bool:
    """True for a prefix of a number the user is still typing, which is no error yet."""
    s = text.strip()
    if not s:
        return True
    try:
        parse_cell(s)
        return False
    except ValueError:
        return bool(_INCOMPLETE.match(s))
