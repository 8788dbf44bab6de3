"""Where the Layer Stepper stands: plain Python, no Qt, so it is testable alone.

A session holds a network, one input and either a target label (the loss
gives the gradient at the output) or a given upstream δ (the lessons). It
walks the engine's ``Sequential.forward_layer`` / ``backward_layer`` one
layer at a time and records its position:

- forward phase: ``done`` layers have run (0 = only the input exists);
- backward phase (entered once the forward pass reached the end): layers
  ``back .. L-1`` have been back-propagated (``back == L``: only the
  gradient at the output exists).

Mode: evaluation by default (``training`` False): BatchNorm2d uses its
running statistics and Dropout passes everything, as ``predict`` does. In
training mode BatchNorm2d normalises with this one picture's statistics and
Dropout drops. Either way the session never moves the model's buffers: each
layer runs on the buffers it was loaded with (running statistics, Dropout's
mask counter) and gets them back after its step, so a replay draws the same
dropout mask and stepping is not training; ``new_dropout_masks`` draws others.

Every action has a ``why_not_*`` twin returning None when the action is
possible, else the sentence the GUI puts in the disabled button's tooltip.
All numbers come from the engine; the session only decides what runs when.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from cnnviz.engine import SGD, SoftmaxCrossEntropy
from cnnviz.engine.sequential import Sequential

FORWARD, BACKWARD = "forward", "backward"


@dataclass
class UpdateRecord:
    """Copies taken around one SGD step, per parameter name (``conv1.weight``),
    and the forward pass before it: each layer's output and the loss."""

    lr: float
    before: dict
    after: dict
    grad: dict
    outputs_before: list | None = None
    loss_before: float | None = None


class StepperSession:
    def __init__(self, model: Sequential, x: np.ndarray, label: int | None = None,
                 delta: np.ndarray | None = None, lr: float = 0.01, name: str = "",
                 training: bool = False):
        if label is None and delta is None:
            raise ValueError("a session needs a target label or an upstream δ")
        self.model = model
        self.name = name
        # a network without weights (a pooling lesson) keeps the input's dtype
        self.dtype = model.dtype if model.parameters() else np.asarray(x).dtype
        self.x = np.ascontiguousarray(x, dtype=self.dtype)
        self.label = label
        self.delta = None if delta is None else np.ascontiguousarray(delta, dtype=self.dtype)
        self.lr = float(lr)
        self.loss_fn = SoftmaxCrossEntropy()
        self.original_state = model.state_dict()      # "reset to the trained values"
        self.last_update: UpdateRecord | None = None
        self.mask_draw = 0              # Dropout: which mask after the loaded one
        self.training = bool(training) and self.why_not_training() is None
        model.train(self.training)
        self._restart()

    # --- position ------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.model.layers)

    def _restart(self):
        self.update_fresh = False       # True right after apply_update, until the next action
        self.phase = FORWARD
        self.done = 0
        self.back = self.num_layers
        self.loss: float | None = None
        self.probs: np.ndarray | None = None
        self.output_grad: np.ndarray | None = None
        self.focus = -1                 # layer shown; -1 = the input

    @property
    def current(self) -> int:
        """The layer the last step went through (-1: none yet)."""
        if self.phase == FORWARD:
            return self.done - 1
        return self.back if self.back < self.num_layers else self.num_layers - 1

    @property
    def forward_complete(self) -> bool:
        return self.phase == BACKWARD or self.done == self.num_layers

    @property
    def uses_loss(self) -> bool:
        return self.delta is None

    def _value(self, i) -> np.ndarray:
        return self.x if i == 0 else self.model.trace[i - 1].output

    # --- why an action is not possible (None = possible) -------------------------------
    def why_not_forward(self) -> str | None:
        if self.phase == BACKWARD:
            return "The backward pass has begun: apply the update (U) or reset (R) to run forward again."
        if self.done == self.num_layers and self.focus >= self.done - 1:
            return "The forward pass has reached the end; step backward (Left) now."
        return None

    def why_not_backward(self) -> str | None:
        if not self.forward_complete:
            return (f"Backward needs the gradient at the output: run the forward pass to the end "
                    f"first ({self.num_layers - self.done} layer(s) to go).")
        if self.back == 0:
            return "The backward pass has reached the input; apply the update (U) or reset (R)."
        return None

    def why_not_update(self) -> str | None:
        if not self.model.parameters():
            return "This network has no weights to update."
        first = self.model.first_param_index()
        if self.phase != BACKWARD or self.back > first:
            return (f"The update needs every weight's gradient: step backward through "
                    f"{self.model.layers[first].name} first.")
        return None

    # --- actions ---------------------------------------------------------------------------
    def why_not_training(self) -> str | None:
        """Training mode needs more than one value per channel at each BatchNorm2d."""
        from cnnviz.engine.normalization import BatchNorm2d
        from cnnviz.engine.summary import summary

        try:
            rows = summary(self.model, self.x.shape).rows
        except ValueError as e:
            return str(e)
        shape = tuple(self.x.shape)
        for layer, row in zip(self.model.layers, rows):
            if isinstance(layer, BatchNorm2d) and shape[0] * shape[2] * shape[3] < 2:
                return (f"{layer.name} sees 1x1 maps: one picture gives it one value per "
                        f"channel, no batch statistics")
            shape = row.output_shape
        return None

    @property
    def has_mode(self) -> bool:
        """True when the network has a layer that acts differently in training."""
        from cnnviz.engine.normalization import BatchNorm2d
        from cnnviz.engine.regularization import Dropout

        return any(isinstance(l, (BatchNorm2d, Dropout)) for l in self.model.layers)

    def set_training(self, on: bool) -> bool:
        """Training or evaluation mode, then replay; False when training is refused."""
        if on and self.why_not_training():
            return False
        self.training = bool(on)
        self.model.train(self.training)
        self.replay()
        return True

    def new_dropout_masks(self):
        """Draw the next masks (training mode) and replay."""
        self.mask_draw += 1
        self.replay()

    def _run_layer(self, i: int, x: np.ndarray):
        """forward_layer on the loaded buffers (plus the chosen mask draw), given back after."""
        layer = self.model.layers[i]
        buffers = getattr(layer, "buffers", {})
        for key, value in buffers.items():
            value[...] = self.original_state[f"{layer.name}.{key}"]
            if key == "draws":
                value += self.mask_draw
        self.model.forward_layer(i, x)
        for key, value in buffers.items():
            value[...] = self.original_state[f"{layer.name}.{key}"]

    def step_forward(self) -> bool:
        """The next layer; after a replay (an edit, the mode, a new input) the
        pass has already run past the focus, and a step shows the next layer."""
        if self.why_not_forward():
            return False
        self.update_fresh = False
        if self.focus < self.done - 1:
            self.focus += 1
            return True
        self._run_layer(self.done, self._value(self.done))
        self.done += 1
        if self.done == self.num_layers:
            self._at_output()
        self.focus = self.done - 1
        return True

    def _at_output(self):
        out = self.model.trace[-1].output
        if self.uses_loss:
            if out.ndim != 2:
                raise ValueError(f"the network's output {tuple(out.shape)} is not class scores")
            self.loss = self.loss_fn(out, np.array([self.label]))
            self.probs = self.loss_fn.probs[0].copy()
            self.output_grad = self.loss_fn.backward()
        else:
            self.output_grad = self.delta

    def step_backward(self) -> bool:
        if self.why_not_backward():
            return False
        self.update_fresh = False
        if self.phase == FORWARD:
            self.phase, self.back = BACKWARD, self.num_layers
        i = self.back - 1
        g = self.output_grad if i == self.num_layers - 1 else self.model.trace[i + 1].grad_input
        self.model.backward_layer(i, g)
        self.back = i
        self.focus = i
        return True

    def run_forward(self):
        while self.step_forward():
            pass

    def run_backward(self):
        """To the input; the focus then rests on the first layer with weights
        (its dW and the step-by-step views), not on a weightless first layer
        such as LeNet-5's input normalisation."""
        self.run_forward()
        while self.step_backward():
            pass
        if self.model.parameters():
            self.focus = self.model.first_param_index()

    def apply_update(self, lr: float | None = None) -> bool:
        """One SGD step with the engine's optimizer, then the forward pass runs
        again with the new weights, so every output and the loss shown are the
        updated ones; the outputs and loss before the step are kept in
        ``last_update`` and ``update_fresh`` says they are worth comparing
        (until the next action)."""
        if self.why_not_update():
            return False
        if lr is not None:
            self.lr = float(lr)
        params = self.model.parameters()
        before = {p.name: p.value.copy() for p in params}
        grad = {p.name: p.grad.copy() for p in params}
        outputs = [np.array(t.output, copy=True) for t in self.model.trace]
        loss_before = self.loss
        SGD(params, lr=self.lr).step()
        after = {p.name: p.value.copy() for p in params}
        self.last_update = UpdateRecord(self.lr, before, after, grad, outputs, loss_before)
        focus = self.focus
        self._restart()
        self.run_forward()
        self.focus = focus
        self.update_fresh = True
        return True

    def reset(self):
        """Back to the input, keeping the weights (use reset_weights for those)."""
        self._restart()

    def goto(self, layer: int):
        """Jump to a layer (a click on the strip). A layer already passed in the
        current direction is only shown; forward, the pass runs on until
        ``layer`` has run; backward, it steps back until ``layer`` is passed."""
        layer = max(-1, min(layer, self.num_layers - 1))
        self.update_fresh = self.update_fresh and layer >= 0   # a comparison for any layer
        if self.phase == FORWARD:
            while self.done - 1 < layer and self.step_forward():
                pass
        else:
            layer = max(layer, 0)
            while self.back > layer and self.step_backward():
                pass
        self.focus = layer

    def replay(self):
        """Rerun to the same place after an edit; the forward pass always runs to
        the end so the loss and the prediction follow the edit at once (forward,
        the steps from the focus on then only show the layers already run)."""
        phase, back, focus = self.phase, self.back, self.focus
        self._restart()
        self.run_forward()
        if phase == BACKWARD:
            while self.back > back and self.step_backward():
                pass
        self.focus = focus

    # --- edits -------------------------------------------------------------------------------
    def set_param_cells(self, name: str, index: tuple, values: np.ndarray):
        """Write ``values`` into parameter ``name`` (``conv1.weight``) at ``index``
        (e.g. (filter, channel)), then replay."""
        param = {p.name: p for p in self.model.parameters()}[name]
        param.value[index] = values
        self.replay()

    def reset_weights(self):
        self.model.load_state_dict(self.original_state)
        self.last_update = None
        self.replay()

    def set_input(self, x: np.ndarray, label: int | None = None):
        self.x = np.ascontiguousarray(x, dtype=self.dtype)
        if label is not None:
            self.label = int(label)
        self.replay()

    def set_label(self, label: int):
        self.label = int(label)
        self.replay()

    # --- derived results (engine computations on a copy, the trace stays) ---------------
    @property
    def prediction(self) -> int | None:
        if self.probs is None:
            return None
        return int(np.argmax(self.probs))

    def saliency(self, cls: int) -> np.ndarray:
        """d(score of ``cls``)/d(input), (H, W) summed over input channels: which
        pixels move the class score. Runs on a copy so the stepped trace stays."""
        model = copy.deepcopy(self.model)
        for b in model.buffers():          # the same dropout masks as the stepped pass
            if b.key == "draws":
                b.value[...] += self.mask_draw
        scores = model.forward(self.x)
        seed = np.zeros_like(scores)
        seed[0, cls] = 1
        dx = model.backward(seed)
        return np.ascontiguousarray(dx[0].sum(axis=0))
