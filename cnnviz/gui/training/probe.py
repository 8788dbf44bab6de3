"""What the GUI shows from inside the network, gathered in the training thread.

``Probe`` is the trainer's ``probe(trainer) -> dict``: the trainer calls it
at each snapshot, between batches, in the training thread, so reading the
model there is safe. Everything it returns is a copy. It must stay cheap:
the training thread pays for it (and the GIL is shared with the GUI), so the
monitored sample's forward and backward pass runs on a private "shadow" copy
of the model (one sample: about a millisecond) and never disturbs the
trainer's own traces or gradients.

Returned keys:
    weights       {param name: array}: a copy of every parameter (the drawing
                  canvas predicts with it)
    step          the trainer's step count
    maps          [(layer name, activation, gradient)] for the monitored
                  sample, arrays without the batch axis
                  (maps, sample_* and hist come at most every heavy_interval s)
    sample_probs  (classes,) softmax of the monitored sample
    sample_label  the monitored sample's label (the one these maps are of)
    sample_input  the monitored image: (H, W) grey, (C, H, W) in colour
    conv1         (weights, weight gradients of the last batch) of the first conv
    grad_norms    {layer: ||dL/dW||} of the last batch (weights and bias together)
    update_ratios {layer: ||W_now - W_prev|| / ||W_now|| per step since the last probe}
    hist          {layer: counts}: weight histogram on fixed bins (``hist_edges``);
                  weights beyond the bins are counted in the end bins
    hist_outside  {layer: (below, above)}: how many weights lie beyond the bins
"""

from __future__ import annotations

import threading
import time

import numpy as np

from cnnviz.engine.layers import Conv2D, Flatten, Linear, Normalize, ReLU
from cnnviz.engine.losses import SoftmaxCrossEntropy
from cnnviz.engine.serialization import architecture, build

HIST_BINS = 48


def shown_layers(model) -> list[int]:
    """Indices of the layers whose maps are worth a look: every layer except
    the input normalisation and the flatten, and the ReLUs after a fully
    connected layer (a vector with its negatives cut adds little)."""
    out = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, (Normalize, Flatten)):
            continue
        if isinstance(layer, ReLU) and i and isinstance(model.layers[i - 1], Linear):
            continue
        out.append(i)
    return out


class Probe:
    def __init__(self, model, sample: np.ndarray, label: int, heavy_interval: float = 0.25):
        self.shadow = build(architecture(model))
        # The monitored sample as the model sees it when it predicts: BatchNorm
        # with its running statistics, no Dropout (as Sequential.predict).
        self.shadow.eval()
        self.loss_fn = SoftmaxCrossEntropy()
        self.param_layers = [l.name for l in model.layers if l.params]
        self.shown = shown_layers(model)
        self._lock = threading.Lock()
        self._pass_lock = threading.Lock()    # the shadow model: one pass at a time
        self.set_sample(sample, label)
        self._prev: dict[str, np.ndarray] | None = None
        self._prev_step = None
        self.hist_edges: dict[str, np.ndarray] = {}
        # The sample pass and the histograms cost a few ms each: at most
        # every ``heavy_interval`` s (a few times a second is plenty to watch
        # maps change) instead of at every snapshot.
        self.heavy_interval = heavy_interval
        self._last_heavy = -np.inf
        self._force = True

    def set_sample(self, sample: np.ndarray, label: int) -> None:
        """Choose the monitored sample (any thread): float in [0, 1], (H, W)
        grey or (C, H, W)."""
        sample = np.asarray(sample)
        channels = sample.shape[0] if sample.ndim == 3 else 1
        with self._lock:
            self._sample = np.ascontiguousarray(sample, np.float32).reshape(
                1, channels, *sample.shape[-2:])
            self._label = np.array([int(label)])
            self._force = True

    def __call__(self, trainer) -> dict:
        model = trainer.model
        weights = model.state_dict()
        out = {"weights": weights, "step": trainer.step}
        now = time.perf_counter()
        heavy = self._force or now - self._last_heavy >= self.heavy_interval
        out.update(self._layer_stats(model, weights, trainer.step, heavy))
        conv = next((l for l in model.layers if isinstance(l, Conv2D)), None)
        if conv is not None:
            g = conv.grads.get("weight")
            out["conv1"] = (weights[f"{conv.name}.weight"],
                            None if g is None else g.copy())
        if heavy:
            self._last_heavy, self._force = now, False
            out.update(self.sample_pass(weights))
        return out

    def _layer_stats(self, model, weights, step, with_hist: bool) -> dict:
        norms, ratios, hist, outside = {}, {}, {}, {}
        steps = None if self._prev is None else step - self._prev_step
        for layer in model.layers:
            if not layer.params:
                continue
            keys = [f"{layer.name}.{k}" for k in layer.params]
            if layer.grads:
                norms[layer.name] = float(np.sqrt(sum(float(np.vdot(g, g))
                                                      for g in layer.grads.values())))
            w_norm = np.sqrt(sum(float(np.vdot(weights[k], weights[k])) for k in keys))
            if steps:
                d = np.sqrt(sum(float(np.sum((weights[k] - self._prev[k]) ** 2)) for k in keys))
                ratios[layer.name] = float(d / max(w_norm, 1e-12) / steps)
            if not with_hist:
                continue
            main = "weight" if "weight" in layer.params else next(iter(layer.params))
            w = weights[f"{layer.name}.{main}"]     # a BatchNorm's: its scale, gamma
            edges = self.hist_edges.get(layer.name)
            if edges is None:
                # Fixed bins chosen once (twice the initial range) so the
                # histograms of one layer line up over time.
                m = 2.0 * float(np.abs(w).max() or 1.0)
                edges = self.hist_edges[layer.name] = np.linspace(-m, m, HIST_BINS + 1)
            # Uniform bins: an index computation and a bincount, several
            # times cheaper than np.histogram; outliers land in the end bins.
            idx = ((w.ravel() - edges[0]) * (HIST_BINS / (edges[-1] - edges[0]))).astype(np.int64)
            outside[layer.name] = (int(np.count_nonzero(idx < 0)),
                                   int(np.count_nonzero(idx >= HIST_BINS)))
            np.clip(idx, 0, HIST_BINS - 1, out=idx)
            hist[layer.name] = np.bincount(idx, minlength=HIST_BINS)
        if steps != 0:
            self._prev, self._prev_step = weights, step
        out = {"grad_norms": norms, "update_ratios": ratios}
        if with_hist:
            out.update(hist=hist, hist_edges=dict(self.hist_edges), hist_outside=outside)
        return out

    def sample_pass(self, weights) -> dict:
        """maps, sample_probs, sample_label, sample_loss, sample_input of the
        monitored sample under ``weights`` (any thread; one pass at a time)."""
        with self._pass_lock:
            return self._sample_pass(weights)

    def _sample_pass(self, weights) -> dict:
        with self._lock:
            x, y = self._sample, self._label
        m = self.shadow
        m.load_state_dict(weights)
        logits = m.forward(x)
        loss = self.loss_fn(logits, y)
        m.backward(self.loss_fn.backward(), need_input_grad=True)
        maps = []
        for i in self.shown:
            t = m.trace[i]
            maps.append((t.name, np.ascontiguousarray(t.output[0]),
                         np.ascontiguousarray(t.grad_output[0])))
        return {"maps": maps, "sample_probs": self.loss_fn.probs[0].copy(),
                "sample_loss": float(loss), "sample_label": int(y[0]),
                "sample_input": np.ascontiguousarray(x[0, 0] if x.shape[1] == 1 else x[0])}
