"""Training curves: loss, accuracy, learning rate, momentum and throughput.

The panel keeps its own decimated copies of the per-batch values (they come
with the snapshots) so a long run costs flat memory and flat redraw time.
It only redraws when ``redraw()`` is called (by the tab's frame timer) and
something changed. Earlier runs can be frozen as faint overlays so two
settings can be compared on the same axes.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from cnnviz.gui.training.legend import StripLegend
from cnnviz.gui.training.series import DecimatedSeries
from cnnviz.gui.widgets import theme

BATCH = "#9fb7d9"
SMOOTH = "#1f4e9c"
TRAIN = "#d9822b"
TEST = "#c0392b"
GHOSTS = ["#7f7f7f", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]

BATCH_KEYS = ("loss", "smoothed_loss", "accuracy", "lr", "momentum", "samples_per_sec")
EPOCH_KEYS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")


def ghost_colour(n: int) -> str:
    """The n-th overlay's colour: the five chosen ones, then hues a golden
    angle apart (never the same twice)."""
    if n < len(GHOSTS):
        return GHOSTS[n]
    hue = (0.1 + (n - len(GHOSTS)) * 0.6180339887) % 1.0
    return pg.hsvColor(hue, 0.75, 0.75).name()


class CurvesPanel(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None, capacity: int = 2000):
        super().__init__(parent)
        self.setBackground(theme.BACKGROUND)
        self.batch = {k: DecimatedSeries(capacity) for k in BATCH_KEYS}
        self.epoch = {k: ([], []) for k in EPOCH_KEYS}
        self.samples_per_epoch = 1
        self.x_in_epochs = False
        self._dirty = False
        self._epoch_drawn = None      # what the epoch curves and overlays show
        self.ghosts: list[dict] = []

        pen = lambda c, w=1, **kw: pg.mkPen(c, width=w, **kw)   # noqa: E731
        # row 0: the legends of the plots below them (outside their data: legend.py)
        self.loss_plot = self._plot(1, 0, "loss (cross-entropy, log scale)", log_y=True)
        self.acc_plot = self._plot(1, 1, "accuracy (%)")
        for col, plot in enumerate((self.loss_plot, self.acc_plot)):
            self.addItem(StripLegend(plot, labelTextColor=theme.FOREGROUND), row=0, col=col)
        # the learning rate over the momentum (SGD) / beta1 (Adam), x-aligned
        rates = self.addLayout(row=2, col=0)
        rates.setSpacing(0)
        self.lr_plot = self._plot(0, 0, "learning rate (log scale)", log_y=True, into=rates)
        self.momentum_plot = self._plot(1, 0, "momentum (SGD) / beta1 (Adam)", into=rates)
        rates.layout.setRowStretchFactor(0, 3)
        rates.layout.setRowStretchFactor(1, 2)
        self.speed_plot = self._plot(2, 1, "samples / s")

        self.c_loss = self.loss_plot.plot(pen=pen(BATCH), name="batch")
        self.c_smooth = self.loss_plot.plot(pen=pen(SMOOTH, 2), name="smoothed")
        sym = dict(symbol="o", symbolSize=6)
        self.c_train_loss = self.loss_plot.plot(pen=pen(TRAIN, 2), symbolBrush=TRAIN,
                                                symbolPen=None, name="train (epoch)", **sym)
        self.c_test_loss = self.loss_plot.plot(pen=pen(TEST, 2), symbolBrush=TEST,
                                               symbolPen=None, name="test (epoch)", **sym)
        self.c_acc = self.acc_plot.plot(pen=pen(BATCH), name="batch")
        self.c_train_acc = self.acc_plot.plot(pen=pen(TRAIN, 2), symbolBrush=TRAIN,
                                              symbolPen=None, name="train (epoch)", **sym)
        self.c_test_acc = self.acc_plot.plot(pen=pen(TEST, 2), symbolBrush=TEST,
                                             symbolPen=None, name="test (epoch)", **sym)
        self.c_lr = self.lr_plot.plot(pen=pen(SMOOTH, 2))
        self.c_momentum = self.momentum_plot.plot(pen=pen(SMOOTH, 2))
        self.c_speed = self.speed_plot.plot(pen=pen(SMOOTH))
        for p in self.plots:
            p.setClipToView(True)
        # Fixed ranges where they are known: an axis whose range changes is
        # re-drawn (ticks, labels) at every repaint, the costliest part of it.
        self.loss_plot.setYRange(-3, 1, padding=0)      # log10: 0.001 .. 10
        self.acc_plot.setYRange(0, 100, padding=0.02)
        self.momentum_plot.setYRange(0, 1, padding=0.05)   # momentum is in [0, 1)
        self.total_samples = 0
        self._update_axis_labels()

    @property
    def plots(self) -> tuple[pg.PlotItem, ...]:
        return (self.loss_plot, self.acc_plot, self.lr_plot, self.momentum_plot,
                self.speed_plot)

    def _plot(self, row, col, title, log_y=False, into=None) -> pg.PlotItem:
        p = (into or self).addPlot(row=row, col=col, title=title)
        p.titleLabel.setAttr("color", theme.FOREGROUND)
        # Horizontal grid lines only: grids are drawn into the axes' pictures,
        # and replaying those pictures is most of a repaint's cost.
        p.showGrid(x=False, y=True, alpha=0.25)
        p.setLogMode(False, log_y)
        # A fixed axis width: otherwise every change in the tick labels' width
        # (the range moves fast early in a run) re-lays out the whole panel,
        # which cost ~70 ms per frame here.
        p.getAxis("left").setWidth(48)
        for side in ("left", "bottom"):
            p.getAxis(side).setTextPen(theme.FOREGROUND)
            p.getAxis(side).setPen(theme.FRAME)
        return p

    # --- data ----------------------------------------------------------------------
    def reset(self) -> None:
        for s in self.batch.values():
            s.clear()
        self.epoch = {k: ([], []) for k in EPOCH_KEYS}
        self._epoch_drawn = None
        self._dirty = True

    def add_batches(self, samples: np.ndarray, values: dict) -> None:
        """Per-batch values at ``samples`` seen; keys from BATCH_KEYS
        (accuracy as a fraction)."""
        if len(samples) == 0:
            return
        lr = values.get("lr")
        if lr is not None and len(lr) and getattr(self, "_lr_range", None):
            lo, hi = np.log10(np.min(lr)), np.log10(np.max(lr))
            if hi > self._lr_range[1] or lo < self._lr_range[0] - 1:
                self.set_lr_range(10 ** max(hi, self._lr_range[1] - 0.2))
                self._lr_range = (min(self._lr_range[0], lo), self._lr_range[1])
                self.lr_plot.setYRange(*self._lr_range, padding=0)
        for k in BATCH_KEYS:
            if k in values:
                v = np.asarray(values[k], np.float64)
                if k == "accuracy":
                    v = v * 100
                self.batch[k].extend(samples, v)
        self._dirty = True

    def add_epoch(self, samples: float, values: dict) -> None:
        for k in EPOCH_KEYS:
            v = values.get(k)
            if v is not None and np.isfinite(v):
                xs, ys = self.epoch[k]
                xs.append(float(samples))
                ys.append(float(v) * (100 if "accuracy" in k else 1))
        self._dirty = True

    def set_run_length(self, total_samples: int) -> None:
        """The x axes span the whole run from the start: progress fills them
        from the left, and they never need re-drawing as the run advances."""
        self.total_samples = int(total_samples)
        self._set_x_range()

    def set_lr_range(self, lr: float) -> None:
        """Fix the learning-rate axis around ``lr`` (the schedule goes from it
        down to about 1/300 of it); widened when a rate outside is seen."""
        top = np.log10(lr)
        self._lr_range = (top - 2.5, top + 0.2)
        self.lr_plot.setYRange(*self._lr_range, padding=0)

    def _set_x_range(self) -> None:
        if self.total_samples <= 0:
            return
        f = 1.0 / self.samples_per_epoch if self.x_in_epochs else 1.0
        for p in self.plots:
            p.setXRange(0, self.total_samples * f, padding=0.01)

    def set_x_in_epochs(self, on: bool) -> None:
        self.x_in_epochs = bool(on)
        self._update_axis_labels()
        self._set_x_range()
        self._dirty = True
        self.redraw()

    def _update_axis_labels(self) -> None:
        label = "epochs" if self.x_in_epochs else "samples seen"
        for p in self.plots:
            if p is not self.lr_plot:       # the momentum plot's axis is the lr plot's
                p.setLabel("bottom", label, color=theme.FOREGROUND)

    # --- overlays ----------------------------------------------------------------------
    def freeze_run(self, label: str) -> None:
        """Keep the current run as a faint overlay, then start empty."""
        colour = ghost_colour(len(self.ghosts))
        style = pg.mkPen(colour, width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine)
        s = self.batch["smoothed_loss"]
        ghost = {"label": label, "items": []}
        data = [(self.loss_plot, s.x.copy(), s.y.copy()),
                (self.acc_plot, *map(np.array, self.epoch["test_accuracy"]))]
        for plot, x, y in data:
            if len(x):
                item = plot.plot(pen=style, name=f"{label}")
                item._raw = (x, y)
                ghost["items"].append(item)
        self.ghosts.append(ghost)
        self.reset()

    def clear_overlays(self) -> None:
        for g in self.ghosts:
            for item in g["items"]:
                for plot in (self.loss_plot, self.acc_plot):
                    if item in plot.items:
                        plot.removeItem(item)       # PlotItem's: its legend entry too
        self.ghosts = []
        self._dirty = True

    # --- drawing --------------------------------------------------------------------
    def redraw(self, force: bool = False) -> bool:
        if not (self._dirty or force):
            return False
        f = 1.0 / self.samples_per_epoch if self.x_in_epochs else 1.0
        b = self.batch
        self.c_loss.setData(b["loss"].x * f, _positive(b["loss"].y))
        self.c_smooth.setData(b["smoothed_loss"].x * f, _positive(b["smoothed_loss"].y))
        self.c_acc.setData(b["accuracy"].x * f, b["accuracy"].y)
        self.c_lr.setData(b["lr"].x * f, _positive(b["lr"].y))
        self.c_momentum.setData(b["momentum"].x * f, b["momentum"].y)
        self.c_speed.setData(b["samples_per_sec"].x * f, b["samples_per_sec"].y)
        self._fit_speed_range(b["samples_per_sec"].y)
        # The epoch points and the overlays change a few times a run: set
        # again only then (re-setting symbols re-renders them at the next paint).
        drawn = (f, tuple(len(self.epoch[k][0]) for k in EPOCH_KEYS), len(self.ghosts))
        if force or drawn != self._epoch_drawn:
            self._epoch_drawn = drawn
            for curve, key in ((self.c_train_loss, "train_loss"),
                               (self.c_test_loss, "test_loss"),
                               (self.c_train_acc, "train_accuracy"),
                               (self.c_test_acc, "test_accuracy")):
                xs, ys = self.epoch[key]
                y = np.asarray(ys)
                curve.setData(np.asarray(xs) * f, _positive(y) if "loss" in key else y)
            for g in self.ghosts:
                for item in g["items"]:
                    x, y = item._raw
                    item.setData(x * f, _positive(y) if item.getViewBox() is
                                 self.loss_plot.vb else y)
        self._dirty = False
        return True

    def _fit_speed_range(self, speeds: np.ndarray) -> None:
        """The samples/s axis from 0 to a round number above the data, set
        here and changed only when the data outgrow it or shrink to a third
        of it: auto-range would run while the panel paints, change the range
        almost every time, and ask for a second paint of the whole panel."""
        finite = speeds[np.isfinite(speeds)] if len(speeds) else speeds
        if not len(finite):
            return
        top = float(finite.max())
        current = getattr(self, "_speed_top", None)
        if current is None or top > current or top < current / 3:
            step = 10 ** np.floor(np.log10(max(top, 1.0))) / 5
            self._speed_top = float(np.ceil(top * 1.1 / step) * step)
            self.speed_plot.setYRange(0, self._speed_top, padding=0)

    def point_count(self) -> int:
        """Points currently drawn (to check that long runs stay light)."""
        return sum(s.n for s in self.batch.values())


def _positive(y: np.ndarray) -> np.ndarray:
    """Log axes cannot show 0 or non-finite values: mask them as NaN gaps."""
    y = np.asarray(y, np.float64)
    bad = ~(np.isfinite(y) & (y > 0))
    if bad.any():
        y = y.copy()
        y[bad] = np.nan
    return y
