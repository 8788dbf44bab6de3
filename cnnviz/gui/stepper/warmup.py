"""Build what a network's steps will show while the learner looks at it, one
small piece per turn of the event loop, so that a layer's first visit only
fills widgets that exist.

Why: a first visit built its pyqtgraph tiles, tables and the Weights tab's
page for the layer (conv1: 131-239 ms of GUI-thread CPU against 20-30 ms for a
warm step). Built here instead, a piece at a time (one layer's page, one map
layout), a key pressed meanwhile waits for one piece at most, and a network
switch is drawn before any of it runs.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from PyQt6.QtCore import QEvent, QObject, QTimer

from cnnviz.engine.summary import summary
from cnnviz.gui.stepper.explain import as_maps

FIRST_DELAY_MS = 30      # after the switch's own paint
BETWEEN_MS = 0           # then one piece per turn of the event loop


class IdleWarmup(QObject):
    """Runs queued jobs one per timer tick while its widget is shown (paused
    while it is hidden: a closed window's tab must not build widgets in
    later event loops, as it is being deleted); ``start`` replaces the queue
    (a new network's pieces, the old network's are no use any more)."""

    def __init__(self, widget):
        super().__init__(widget)
        self._widget = widget
        self._jobs: deque = deque()
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self._run_one)
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Hide:
            self._timer.stop()
        elif event.type() == QEvent.Type.Show and self._jobs:
            self._timer.start(FIRST_DELAY_MS)
        return False

    def start(self, jobs) -> None:
        self._jobs = deque(jobs)
        if self._widget.isVisible():
            self._timer.start(FIRST_DELAY_MS)

    def stop(self) -> None:
        self._jobs.clear()
        self._timer.stop()

    @property
    def pending(self) -> int:
        return len(self._jobs)

    def run_all(self) -> None:
        """Every queued job now (tests, benches)."""
        self._timer.stop()
        while self._jobs:
            self._jobs.popleft()()

    def _run_one(self) -> None:
        if not self._widget.isVisible():
            return                      # resumed by the next Show
        if self._jobs:
            self._jobs.popleft()()
        if self._jobs:
            self._timer.start(BETWEEN_MS)


def network_pieces(session, panels, weights_tab) -> list:
    """The pieces for ``session``'s network, in the order a forward pass needs
    them: each layer's map grids in the main ``panels`` (input, output; ~100 ms
    for 16 maps) and its Weights page; then the gradients' panels, last layer
    first, as the backward pass goes."""
    pieces, planned = [], set()
    shape = tuple(session.x.shape)
    layers = session.model.layers
    for i, row in enumerate(summary(session.model, shape).rows):
        for panel, tensor in zip(panels, (shape, row.output_shape)):
            maps = as_maps(np.zeros(tensor, np.float32))[0].shape
            if (panel, maps) not in planned:
                planned.add((panel, maps))
                pieces.append(lambda p=panel, m=maps: p.prepare(m[0], m[1:]))
        shape = tuple(row.output_shape)
        if layers[i].params:
            pieces.append(lambda i=i: weights_tab.prepare_layer(session, i))
    pieces += [lambda i=i: weights_tab.prepare_layer(session, i, grads=True)
               for i in reversed(range(len(layers))) if layers[i].params]
    return pieces
