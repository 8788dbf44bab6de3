"""What the Kernel Lab computes: input -> conv -> activation -> pool.

No Qt, so it runs in the worker thread and in tests without a display. The
conv maps come from OpenCV's filter2D (``filter_conv``: no im2col matrix, so a
2048x2048 photo fits), equal to the engine's ``conv2d`` within float32
rounding; activation and pooling are the engine's arithmetic applied one map
at a time (``map_stages``), by the thread that has just computed that map. This
module arranges the calls and records, for each stage, how its pixels sit on
the input, so the views can zoom and pan together in input coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnviz.engine import functional as F
from cnnviz.gui.kernel_lab.filter_conv import all_finite, conv2d_maps, working_bytes
from cnnviz.gui.kernel_lab.map_stages import activate_into, pool_into

ACTIVATIONS = ("none", "relu", "leaky_relu", "sigmoid", "tanh")
ACTIVATION_LABELS = {"none": "none", "relu": "ReLU", "leaky_relu": "LeakyReLU",
                     "sigmoid": "Sigmoid", "tanh": "Tanh"}
POOLS = ("none", "max", "avg")

# refuse (with a message) a layer whose maps would need more than this, rather
# than let the machine swap or the process be killed
MEMORY_BUDGET_BYTES = 3 * 1024 ** 3


class PipelineError(ValueError):
    """A setting the layer cannot compute; ``stage`` says which ("conv", "pool", ...)."""

    def __init__(self, stage: str, message: str):
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


@dataclass(frozen=True)
class LayerConfig:
    """One conv layer as the lab shows it.

    weights: (F, C, kh, kw) float32: F filters, one sub-kernel per input channel.
    bias: (F,) float32. depthwise: each channel is convolved on its own with its
    sub-kernel (F*C maps) instead of summed into one map per filter.
    """

    weights: np.ndarray
    bias: np.ndarray
    depthwise: bool = False
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    activation: str = "none"
    pool: str = "none"
    pool_size: tuple[int, int] = (2, 2)
    pool_stride: tuple[int, int] = (2, 2)
    names: tuple[str, ...] = ()             # one per filter, for the map titles
    # per filter, one name per input channel when its sub-kernels differ (else empty)
    channel_kernel_names: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self):
        # ints are accepted for the spatial settings, stored as (rows, cols) pairs
        for name in ("stride", "padding", "dilation", "pool_size", "pool_stride"):
            object.__setattr__(self, name, F.pair(getattr(self, name), name))

    @property
    def kernel_size(self) -> tuple[int, int]:
        return tuple(self.weights.shape[2:])


@dataclass(frozen=True)
class AxisMap:
    """Stage pixel u (its left/top edge) sits at input coordinate ``scale * u + offset``."""

    scale: float = 1.0
    offset: float = 0.0

    def then(self, inner: "AxisMap") -> "AxisMap":
        """This map applied to coordinates already mapped by ``inner`` (a later stage)."""
        return AxisMap(self.scale * inner.scale, self.scale * inner.offset + self.offset)


def window_axis_map(kernel: int, stride: int, padding: int = 0, dilation: int = 1) -> AxisMap:
    """Output pixel centres land on the centres of their windows in the layer's input."""
    centre = -padding + dilation * (kernel - 1) / 2 + 0.5
    return AxisMap(float(stride), centre - stride / 2)


@dataclass
class Stage:
    name: str                   # "input", "conv", "activation", "pool"
    title: str                  # header shown above the maps, e.g. "conv: (1, 1, 78, 78)"
    tensor: np.ndarray          # (1, M, H, W) C-contiguous float32
    map_labels: list[str]
    rows: AxisMap = field(default_factory=AxisMap)
    cols: AxisMap = field(default_factory=AxisMap)

    @property
    def maps(self) -> np.ndarray:
        return self.tensor[0]


@dataclass
class PipelineResult:
    stages: list[Stage]
    config: LayerConfig
    error: PipelineError | None = None      # set when a later stage could not run

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def channel_names(c: int) -> list[str]:
    return ["grey"] if c == 1 else (["R", "G", "B"] if c == 3 else [f"ch{i}" for i in range(c)])


def conv_map_labels(config: LayerConfig, channels: int) -> list[str]:
    f = config.weights.shape[0]
    filters = [config.names[i] if i < len(config.names) else f"filter {i + 1}" for i in range(f)]
    if not config.depthwise:
        return filters
    names = channel_names(channels)

    def kernel_name(i: int, c: int) -> str:   # each channel's map is named after its own kernel
        own = config.channel_kernel_names
        if i < len(own) and c < len(own[i]) and own[i][c]:
            return own[i][c]
        return filters[i]

    return [f"{kernel_name(i, c)} \u00b7 {names[c]}" for i in range(f) for c in range(channels)]


def depthwise_indices(config: LayerConfig, channels: int, map_index: int) -> tuple[int, list[int]]:
    """(filter, input channels) that produced a conv map."""
    if config.depthwise:
        return map_index // channels, [map_index % channels]
    return map_index, list(range(channels))


def _contiguous(t: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(t, dtype=np.float32)


def memory_needed(x_shape, config: LayerConfig) -> int:
    """Bytes the layer's stages take beyond the input: the conv's working set,
    then an activation copy and a colour image of each full-size stage (the
    pooled stage and its image are a quarter of that or less, counted once)."""
    conv = working_bytes(x_shape, config.weights.shape, config.stride, config.padding,
                         config.dilation, config.depthwise)
    _, c, _, _ = x_shape
    f = config.weights.shape[0]
    _, _, ho, wo = F.conv2d_output_shape(x_shape, (f, c) + config.kernel_size, config.stride,
                                         config.padding, config.dilation)
    maps = 4 * (f * c if config.depthwise else f) * ho * wo    # one full-size stage
    return conv + 4 * maps   # activation, two colour images, pooling and its image


def check_memory(x_shape, config: LayerConfig) -> None:
    """Refuse a layer whose maps would not fit, with the figure in the message."""
    try:
        need = memory_needed(x_shape, config)
    except ValueError:
        return  # the conv itself reports it
    if need > MEMORY_BUDGET_BYTES:
        _, _, h, w = x_shape
        raise PipelineError("conv", f"this layer needs about {need / 1024 ** 3:.1f} GB of memory "
                                    f"for a {h}x{w} input, more than the "
                                    f"{MEMORY_BUDGET_BYTES / 1024 ** 3:.1f} GB the lab allows; "
                                    f"downscale the image, use a larger stride or fewer filters")


def run_pipeline(image: np.ndarray, config: LayerConfig) -> PipelineResult:
    """image: (C, H, W) float32. Raises PipelineError if the conv cannot run; a
    pooling that does not fit keeps the earlier stages and sets ``error``.

    Each conv map is activated and pooled by the thread that computed it, into
    maps allocated here once (map_stages: the engine's arithmetic, per map)."""
    x = _contiguous(image)[None]
    c = x.shape[1]
    stages = [Stage("input", f"input: {x.shape}", x, channel_names(c))]
    check_memory(x.shape, config)
    (kh, kw), s, p, d = config.kernel_size, config.stride, config.padding, config.dilation
    try:
        if config.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {config.activation!r}; "
                             f"choose one of {ACTIVATIONS}")
        maps = (config.weights.shape[0] * (c if config.depthwise else 1),)
        _, _, ho, wo = F.conv2d_output_shape(x.shape, config.weights.shape, s, p, d)
    except ValueError as exc:
        raise PipelineError("conv", str(exc)) from None
    act = (np.empty((1,) + maps + (ho, wo), np.float32) if config.activation != "none"
           else None)
    pooled, pool_error = None, None
    if config.pool != "none":
        try:
            if config.pool not in POOLS:
                raise ValueError(f"unknown pooling {config.pool!r}; choose one of {POOLS}")
            _, _, pho, pwo = F.pool2d_output_shape((1,) + maps + (ho, wo), config.pool_size,
                                                  config.pool_stride)
            pooled = np.empty((1,) + maps + (pho, pwo), np.float32)
        except ValueError as exc:
            pool_error = PipelineError("pool", str(exc))

    def after(m: int, conv_map: np.ndarray) -> None:
        src = conv_map
        if act is not None:
            activate_into(conv_map, config.activation, act[0, m])
            src = act[0, m]
        if pooled is not None:
            pool_into(src, config.pool, config.pool_size, config.pool_stride, pooled[0, m])

    try:
        conv = conv2d_maps(x, config.weights, config.bias, s, p, d, config.depthwise,
                           after=after if act is not None or pooled is not None else None)
    except ValueError as exc:
        raise PipelineError("conv", str(exc)) from None
    rows = window_axis_map(kh, s[0], p[0], d[0])
    cols = window_axis_map(kw, s[1], p[1], d[1])
    labels = conv_map_labels(config, c)
    mode = " (depthwise)" if config.depthwise else ""
    stages.append(Stage("conv", f"conv{mode}: {conv.shape}", conv, labels, rows, cols))
    if act is not None:
        name = ACTIVATION_LABELS[config.activation]
        stages.append(Stage("activation", f"{name}: {act.shape}", act, labels, rows, cols))
    result = PipelineResult(stages, config, pool_error)
    if pooled is not None:
        prow = rows.then(window_axis_map(config.pool_size[0], config.pool_stride[0]))
        pcol = cols.then(window_axis_map(config.pool_size[1], config.pool_stride[1]))
        kind = "max pool" if config.pool == "max" else "avg pool"
        stages.append(Stage("pool", f"{kind}: {pooled.shape}", pooled, labels, prow, pcol))
    return result


FLOAT32_MAX = float(np.finfo(np.float32).max)


def finite_stages(result: PipelineResult) -> list[bool]:
    """For each stage after the input: no inf or NaN in it. Checked on the conv
    (one summing pass); a finite conv gives finite activations (ReLU and
    LeakyReLU shrink values, sigmoid and tanh are bounded) and finite max
    pools, so only an average pool (whose sum may overflow) is checked again."""
    flags, previous = [], True
    for stage in result.stages[1:]:
        derived = previous and (stage.name == "activation" or
                                (stage.name == "pool" and result.config.pool == "max"))
        previous = derived or all_finite(stage.tensor)
        flags.append(previous)
    return flags


def overflow_note(result: PipelineResult, finite: list[bool] | None = None) -> str:
    """A sentence for the user when a stage holds inf or NaN (float32 overflowed), else "".

    The input is finite in [0, 1] and kernel cells are finite float32, so a
    non-finite map value means a product or a sum went past float32's 3.4e38.
    """
    if finite is None:
        finite = finite_stages(result)
    for stage, ok in zip(result.stages[1:], finite):   # the first stage that overflows
        if ok:
            continue
        n = stage.tensor.size - int(np.count_nonzero(np.isfinite(stage.tensor)))
        if n:
            break
    else:
        return ""
    w, b = result.config.weights, result.config.bias
    largest = max(float(np.abs(w).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    inputs = float(np.abs(result.stages[0].tensor).max(initial=0.0))
    return (f"The maps overflow float32: kernel values up to {largest:.3g} on inputs up to "
            f"{inputs:.3g} give sums beyond {FLOAT32_MAX:.3g}, so {n:,} of {stage.tensor.size:,} "
            f"{stage.name} values are "
            f"infinite or NaN (drawn at the ends of the colour scale, NaN in magenta). "
            f"Use smaller kernel values.")
