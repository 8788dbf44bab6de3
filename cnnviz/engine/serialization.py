"""One .npz per model: the weights plus the architecture as JSON, so a saved
model reopens without code. Writes are atomic (temporary file, then rename)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_open
from .layers import LAYER_TYPES
from .sequential import Sequential

FORMAT = "cnnviz-model"
VERSION = 1


class ModelFileError(ValueError):
    """A model file that cannot be read; the message names the file."""


def architecture(model: Sequential) -> list[dict]:
    return [{"type": type(l).__name__, "name": l.name, "config": l.config()}
            for l in model.layers]


def build(arch: list[dict]) -> Sequential:
    """Rebuild a model (fresh weights) from ``architecture(model)``."""
    layers = []
    for spec in arch:
        cls = LAYER_TYPES.get(spec["type"])
        if cls is None:
            raise ValueError(f"unknown layer type {spec['type']!r}")
        layer = cls(**spec.get("config", {}))
        layer.name = spec.get("name", "")
        layers.append(layer)
    return Sequential(*layers)


def atomic_savez(path, arrays: dict, extra: dict | None = None):
    """np.savez to a temporary file beside ``path``, fsync, then rename, so a
    crash never leaves a half-written file under the real name."""
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays, **(extra or {}))


def save(model: Sequential, path, metadata: dict | None = None):
    """Save weights and architecture (plus optional JSON-able metadata)."""
    header = {"format": FORMAT, "version": VERSION, "architecture": architecture(model),
              "metadata": metadata or {}}
    arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
    atomic_savez(path, arrays, {"header": np.array(json.dumps(header))})


def read_header(path) -> dict:
    return _open(path)[0]


def load(path) -> Sequential:
    """Load a model saved by ``save``; ModelFileError names the file and
    says what is wrong (missing, not a zip, truncated, foreign, mismatched)."""
    header, arrays = _open(path)
    try:
        model = build(header["architecture"])
        state = {k[len("param/"):]: v for k, v in arrays.items()}
        if state:  # keep the saved precision (float64 models stay float64)
            model.astype(next(iter(state.values())).dtype)
        model.load_state_dict(state)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ModelFileError(f"{path}: the weights do not fit the architecture ({e})") from None
    model.metadata = header.get("metadata", {})
    return model


def _open(path):
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path}: a single NumPy array, not a cnnviz model (.npz)")
        with loaded as z:
            if "header" not in z.files:
                raise ModelFileError(f"{path}: not a cnnviz model (no header; "
                                     f"it holds {', '.join(z.files[:5]) or 'nothing'})")
            header = json.loads(str(z["header"]))
            arrays = {k: z[k] for k in z.files if k.startswith("param/")}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError) as e:
        raise ModelFileError(f"{path}: not a cnnviz model file, or truncated ({e})") from None
    except (ValueError, OSError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: cannot be read as a cnnviz model ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a cnnviz model file (no cnnviz header)")
    if header.get("version", 0) > VERSION:
        raise ModelFileError(f"{path}: made by a newer cnnviz (file version "
                             f"{header['version']}, this one reads {VERSION})")
    return header, arrays
