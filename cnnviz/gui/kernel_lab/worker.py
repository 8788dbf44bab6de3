"""Compute the lab's pipeline off the GUI thread, newest request wins.

``PipelineRunner`` owns a QThread with a ``PipelineWorker`` moved into it.
Small requests (a few milliseconds) run at once on the GUI thread instead:
the hop to the worker and back would cost more than it saves.
``submit()`` never blocks: if the worker is busy, the request replaces any
request still waiting (older edits are dropped, they would be stale anyway),
and it is sent as soon as the running one finishes. Results come back with
their maps already colour-mapped, so the GUI thread only swaps images.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from PyQt6.QtCore import QCoreApplication, QObject, QThread, pyqtSignal, pyqtSlot

from cnnviz.gui.kernel_lab.fast_render import display_step, render_fast
from cnnviz.gui.kernel_lab.filter_conv import conv_threads, opencv_single_threaded
from cnnviz.gui.kernel_lab.pipeline import (LayerConfig, PipelineError, PipelineResult,
                                            finite_stages, overflow_note, run_pipeline)
from cnnviz.gui.widgets.rendered_maps import RenderedMaps, render_maps

log = logging.getLogger(__name__)

# Up to this many multiply-adds (a 3x3x3 filter on 512x512 is 7M, ~2 ms) a request
# runs at once on the GUI thread; larger ones go to the worker thread.
INLINE_MULTIPLY_ADDS = 12_000_000


@dataclass(frozen=True)
class Request:
    image: np.ndarray          # (C, H, W) float32
    config: LayerConfig
    shared_scale: bool
    rgb_input: bool            # show a 3-channel input as one colour image
    submitted: float           # perf_counter() at the edit, for latency figures
    # per stage name, input pixels per screen pixel in its views (none: colour every
    # pixel): big maps are coloured at the density they are seen at (display_step)
    density: dict = field(default_factory=dict)


@dataclass
class Output:
    request: Request
    result: PipelineResult
    rendered: list[RenderedMaps]   # one per stage
    compute_seconds: float
    overflow: str = ""             # pipeline.overflow_note's sentence, found off the GUI thread


# Past this many map pixels the maps are colour-mapped in parallel threads
# (OpenCV and NumPy release the interpreter lock); below it a hop costs more.
PARALLEL_RENDER_PIXELS = 1_000_000


def compute(request: Request) -> Output:
    """The whole job: the pipeline, then colour-mapping (any thread; OpenCV's
    for the maps, fast_render; the input keeps render_maps, cached)."""
    start = time.perf_counter()
    with opencv_single_threaded():      # the lab's threads split the work
        return _compute(request, start)


def _compute(request: Request, start: float) -> Output:
    result = run_pipeline(request.image, request.config)

    big = sum(s.tensor.size for s in result.stages[1:]) >= PARALLEL_RENDER_PIXELS
    colour = conv_threads().map if big else None     # each map's colours in a thread
    finite = finite_stages(result)                    # once, for the colours and the note
    rendered = [_render_input(request, result.stages[0])]
    rendered += [render_fast(stage.maps, stage.map_labels, shared_scale=request.shared_scale,
                             colour=colour, finite=ok, step=stage_step(request, stage))
                 for stage, ok in zip(result.stages[1:], finite)]
    return Output(request, result, rendered, time.perf_counter() - start,
                  overflow_note(result, finite))


def stage_step(request: Request, stage) -> int:
    """The step a stage's maps are coloured at, from the views' density."""
    density = request.density.get(stage.name, 0.0)
    if density <= 0:
        return 1
    return display_step(density / max(stage.rows.scale, stage.cols.scale))


_input_cache: list = []   # [(image array, rgb flag, RenderedMaps)]: kernel edits reuse it


def _render_input(request: Request, stage) -> RenderedMaps:
    rgb = request.rgb_input and stage.maps.shape[0] == 3
    if _input_cache and _input_cache[0][0] is request.image and _input_cache[0][1] == rgb:
        return _input_cache[0][2]
    rendered = render_maps(stage.maps, stage.map_labels, rgb=rgb, signed=False, shared_scale=True)
    _input_cache[:] = [(request.image, rgb, rendered)]   # holds the array: its id stays unique
    return rendered


def run_request(request: Request) -> tuple[Output | None, str]:
    """(output, "") or (None, a message for the user); never raises."""
    try:
        return compute(request), ""
    except PipelineError as exc:
        return None, str(exc)
    except MemoryError:
        return None, ("Out of memory: this image is too large for these settings. "
                      "Downscale it or increase the stride.")
    except Exception as exc:   # a bug: report it in the window, log the traceback
        log.exception("Kernel Lab computation failed")
        return None, f"Unexpected error ({type(exc).__name__}: {exc}); details are in the log."


def multiply_adds(request: Request) -> int:
    """Rough cost of a request: one multiply-add per weight per output pixel."""
    c, h, w = request.image.shape
    f, ci, kh, kw = request.config.weights.shape
    sh, sw = request.config.stride
    return (f * ci * kh * kw) * (h // sh) * (w // sw) * (c if request.config.depthwise else 1)


class PipelineWorker(QObject):
    finished = pyqtSignal(object)         # Output
    failed = pyqtSignal(object, str)      # Request, message for the user

    @pyqtSlot(object)
    def run(self, request: Request) -> None:
        output, message = run_request(request)
        if output is not None:
            self.finished.emit(output)
        else:
            self.failed.emit(request, message)


class PipelineRunner(QObject):
    finished = pyqtSignal(object)
    failed = pyqtSignal(object, str)
    _start = pyqtSignal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("kernel-lab-worker")
        self._worker = PipelineWorker()
        self._worker.moveToThread(self._thread)
        self._start.connect(self._worker.run)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._busy = False
        self._pending: Request | None = None
        self.dropped = 0          # requests replaced before they ran (for the benchmark)
        self._thread.start()
        app = QCoreApplication.instance()
        if app is not None:   # safety net when no window calls stop() on close
            app.aboutToQuit.connect(self.stop)

    @property
    def busy(self) -> bool:
        return self._busy or self._pending is not None

    def submit(self, request: Request) -> None:
        if self._busy:
            if self._pending is not None:
                self.dropped += 1
            self._pending = request
            return
        if multiply_adds(request) <= INLINE_MULTIPLY_ADDS:
            # a few milliseconds of work: a thread hop would cost more than it saves
            output, message = run_request(request)
            if output is not None:
                self.finished.emit(output)
            else:
                self.failed.emit(request, message)
            return
        self._busy = True
        self._start.emit(request)

    def _next(self) -> bool:
        """Run the waiting request; False when it already ran inline (its result is
        out): the finished one is then older than what is shown and must not replace it."""
        self._busy = False
        if self._pending is not None:
            request, self._pending = self._pending, None
            self.submit(request)
            return self._busy
        return True

    def _on_finished(self, output: Output) -> None:
        if self._next():   # start the newest waiting edit first, then draw this result
            self.finished.emit(output)

    def _on_failed(self, request: Request, message: str) -> None:
        if self._next():
            self.failed.emit(request, message)

    def stop(self) -> None:
        """Finish the running job, drop the waiting one, join the thread."""
        self._pending = None
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait()
