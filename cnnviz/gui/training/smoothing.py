"""The smoothed loss of the curves: exactly the trainer's number.

The trainer keeps ``ema = 0.98 ema + 0.02 loss`` from ema = 0 and reports
``ema / (1 - 0.98 ** step)`` (debiased: early on the zero start would drag
it down). The curves compute the same from the history rows, so the curve
and the status line's "smoothed" agree at every batch; an average started
at the first loss instead (as before) read 0.77 where the status read 0.48.
"""

from __future__ import annotations

import numpy as np

DECAY = 0.98     # the trainer's (cnnviz/engine/trainer.py, Trainer._loss_ema)


def smoothed_losses(loss: np.ndarray, step: np.ndarray, ema: float = 0.0
                    ) -> tuple[np.ndarray, float]:
    """(debiased smoothed loss at each row, the raw average after the last row).

    loss, step: history rows (the batch losses and the step each ended);
    ema: the raw average before the first row (0.0 for a run's start)."""
    out = np.empty(len(loss))
    for i, (v, k) in enumerate(zip(np.asarray(loss, float).tolist(),
                                   np.asarray(step).tolist())):
        ema = DECAY * ema + (1 - DECAY) * v
        out[i] = ema / (1 - DECAY ** k) if k > 0 else np.nan
    return out, ema
