"""Inside the network, live: maps of the monitored sample, conv1's kernels,
gradient norms, update-to-weight ratios and weight histograms over time.

Everything here is fed from a snapshot's ``extra`` (the Probe's copies) on
the GUI thread, and drawn only when the tab's frame timer asks.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from cnnviz.gui.training.legend import StripLegend
from cnnviz.gui.training.mosaic import MosaicView
from cnnviz.gui.training.series import DecimatedSeries
from cnnviz.gui.widgets import theme

HIST_PER_ROW = 6        # weight histograms side by side before a second row
LAYER_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#17becf"]


def _shape(a: np.ndarray) -> str:
    return str((1,) + tuple(a.shape))


class MapsView(pg.GraphicsLayoutWidget):
    """Columns: the input, then each shown layer; row 1 its activation for
    the monitored sample, row 2 the gradient of the loss with respect to it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground(theme.BACKGROUND)
        self.ci.setSpacing(2)
        self.columns: list[tuple[MosaicView, MosaicView]] = []
        self.input_view: MosaicView | None = None
        self._names = None
        self._pending = None
        self._needs_width = False
        self.caption = ""

    def set_maps(self, sample: np.ndarray, maps: list, caption: str) -> None:
        names = [m[0] for m in maps]
        if names != self._names:
            self.clear()
            self.input_view = MosaicView(self.ci, 0, 0)
            self.input_view.view.setMaximumWidth(150)
            self.ci.addLabel("top: activations<br>(grey: >= 0;<br>blue-white-red:<br>signed, "
                             "white = 0)<br><br>bottom: gradients<br>of the loss",
                             row=2, col=0, rowspan=2, color=theme.FOREGROUND,
                             size=theme.TITLE_SIZE)
            self.columns = [(MosaicView(self.ci, 0, j + 1), MosaicView(self.ci, 2, j + 1))
                            for j in range(len(names))]
            self._names = names
            self._needs_width = True
        self.caption = caption          # what the input is said to be (read by tests)
        sample = np.asarray(sample)
        if sample.ndim == 3 and sample.shape[0] == 3:
            self.input_view.show_colour(sample, f"{caption}<br>colour; R, G, B")
        else:
            self.input_view.show(sample, caption, signed=False)
        for (act_view, grad_view), (name, act, grad) in zip(self.columns, maps):
            act_view.show(act, f"{name}<br>{_shape(act)}")
            grad_view.show(grad, f"∂L/∂{name}", signed=True)
        if self._needs_width:
            self._needs_width = False
            self._fit_width()

    def _fit_width(self) -> None:
        """At least as wide as the columns' titles need: a network with many
        layers is then scrolled to (the page holds this view in a scroll
        area), never drawn past the right edge."""
        hint = self.ci.layout.effectiveSizeHint(pg.QtCore.Qt.SizeHint.MinimumSize)
        self.setMinimumWidth(int(np.ceil(hint.width())) + 2 * self.frameWidth() + 4)


class HistoryImage:
    """A layer's weight histogram over time: one column per probe (log
    counts) in a preallocated (bins, capacity) buffer; when it is full, every
    other column is dropped. ``samples`` is the run's progress at the last
    column: the image spans 0..samples on the page's samples-seen axis."""

    def __init__(self, capacity: int = 240):
        self.capacity = capacity
        self.count = 0
        self.samples = 0
        self.edges: np.ndarray | None = None
        self._buffer: np.ndarray | None = None

    def clear(self) -> None:
        self.count = 0
        self.samples = 0

    def add(self, counts: np.ndarray, edges: np.ndarray, samples: int) -> None:
        if self._buffer is None or self._buffer.shape[0] != len(counts):
            self._buffer = np.zeros((len(counts), self.capacity), np.float32)
            self.count = 0
        if self.count == self.capacity:
            kept = self._buffer[:, ::2].copy()
            self._buffer[:, :kept.shape[1]] = kept
            self.count = kept.shape[1]
        self.edges = edges
        self._buffer[:, self.count] = np.log1p(np.asarray(counts, np.float32))
        self.count += 1
        self.samples = samples

    def image(self) -> np.ndarray:
        """(bins, columns); row 0 is the most negative bin (drawn at the bottom
        of a plot whose y axis points up)."""
        return self._buffer[:, :self.count]

    def rgba(self) -> np.ndarray:
        """The image as (bins, columns, 4) uint8, darker for more weights.
        RGBA, not a look-up table on the ImageItem: an indexed image is
        converted at every paint (1.7 ms a paint for the seven of them)."""
        img = self.image()
        top = max(float(img.max()), 1e-6)
        idx = np.multiply(img, np.float32(255.0 / top)).astype(np.uint8)
        return _INV_GREY_U32[idx].view(np.uint8).reshape(img.shape + (4,))


class WeightsView(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground(theme.BACKGROUND)
        # row 0: the norms' legend above their plot, never over the curves (legend.py)
        kernels = self.ci.addLayout(row=1, col=0)
        self.kernels = MosaicView(kernels, 0, 0)
        self.kernel_grads = MosaicView(kernels, 2, 0)
        self.norm_plot = self._plot(1, 1, "gradient norm per layer (log)")
        # two columns: five names in four would make this column the widest
        self.ci.addItem(StripLegend(self.norm_plot, max_columns=2,
                                    labelTextColor=theme.FOREGROUND), row=0, col=1)
        self.ratio_plot = self._plot(1, 2, "update / weight ratio per step (log)")
        # A common rule of thumb: about 1e-3 is healthy; far above, too fast.
        self.ratio_plot.addItem(pg.InfiniteLine(pos=-3, angle=0, pen=pg.mkPen(
            theme.FRAME, style=pg.QtCore.Qt.PenStyle.DashLine)))
        for col in range(3):            # the three columns share the page's width
            self.ci.layout.setColumnStretchFactor(col, 1)
        self.hist_layout = self.ci.addLayout(row=2, col=0, colspan=3)
        self.hist_layout.addLabel("weight histograms over time (x: samples seen, as above; "
                                  "y: weight value; darker: more weights)", row=0, col=0, colspan=8,
                                  color=theme.FOREGROUND, size=theme.TITLE_SIZE)
        self.norms: dict[str, DecimatedSeries] = {}
        self.ratios: dict[str, DecimatedSeries] = {}
        self.curves: dict[str, tuple] = {}
        self.hists: dict[str, HistoryImage] = {}
        self.outside: dict[str, tuple[int, int]] = {}    # weights beyond each histogram
        self.hist_titles: dict[str, str] = {}
        self.hist_items: dict[str, tuple] = {}
        self._decades: dict[pg.PlotItem, tuple[int, int]] = {}
        self._hist_ranges: dict[str, tuple[float, float]] = {}
        self._run_length = 1
        self._layers: list[str] = []      # the parametric layers shown, in order
        self._dirty = False

    def _plot(self, row, col, title) -> pg.PlotItem:
        p = self.ci.addPlot(row=row, col=col, title=title)
        p.titleLabel.setAttr("color", theme.FOREGROUND)
        p.setLogMode(False, True)
        # Horizontal grid lines only: grids are drawn into the axes' pictures,
        # and replaying those is most of a repaint's cost.
        p.showGrid(x=False, y=True, alpha=0.25)
        p.setLabel("bottom", "samples seen", color=theme.FOREGROUND)
        # A fixed axis width: otherwise every change in the tick labels' width
        # (the range moves fast early in a run) re-lays out the whole panel,
        # which cost ~70 ms per frame here.
        p.getAxis("left").setWidth(48)
        for side in ("left", "bottom"):
            p.getAxis(side).setTextPen(theme.FOREGROUND)
        return p

    def reset(self) -> None:
        for s in (*self.norms.values(), *self.ratios.values()):
            s.clear()
        for h in self.hists.values():
            h.clear()
        self._decades.clear()
        self._hist_ranges.clear()
        self.outside.clear()
        self._dirty = True

    # Fixed ranges, as in the curves panel: an axis whose range changes is
    # re-drawn (ticks, labels) at every repaint, which made this page's
    # repaint cost up to 45 ms.
    def set_run_length(self, total_samples: int) -> None:
        """The x axes span the whole run from the start (the histograms'
        too: they fill from the left as the run goes)."""
        self._run_length = max(int(total_samples), 1)
        for p in (self.norm_plot, self.ratio_plot):
            p.setXRange(0, self._run_length, padding=0.01)
        for view, _ in self.hist_items.values():
            view.setXRange(0, self._run_length, padding=0)

    def _fit_decades(self, plot: pg.PlotItem, series: list) -> None:
        """Widen the (log) y range in whole decades, only when data leave it."""
        logs = [np.log10(s.y[s.y > 0]) for s in series]
        logs = [v for v in logs if len(v)]
        if not logs:
            return
        lo = int(np.floor(min(float(v.min()) for v in logs)))
        hi = int(np.ceil(max(float(v.max()) for v in logs)))
        # At least three decades, widened downwards: with fewer, pyqtgraph
        # labels every minor tick and the labels run into each other.
        lo = min(lo, hi - 3)
        old = self._decades.get(plot)
        if old is None or lo < old[0] or hi > old[1]:
            new = (lo, hi) if old is None else (min(lo, old[0]), max(hi, old[1]))
            self._decades[plot] = new
            plot.setYRange(*new, padding=0)

    def prepare(self, layers: list[str]) -> None:
        """Create the curves and histogram plots of every parametric layer
        now: building a plot costs ~14 ms, a stall if done mid-run. Another
        network's layers replace the previous ones (legend and histograms
        name the layers of the network being trained, nothing else)."""
        layers = list(layers)
        if layers != self._layers:
            self._forget_layers()
            self._layers = layers
        for name in layers:
            self._series(name)
            self._hist_item(name)

    def _forget_layers(self) -> None:
        """Drop every layer's curves, legend entries, histograms and their plots."""
        for c_norm, c_ratio in self.curves.values():
            self.norm_plot.removeItem(c_norm)         # its legend entry too
            self.ratio_plot.removeItem(c_ratio)
        for view, _ in self.hist_items.values():
            self.hist_layout.removeItem(view)
            view.deleteLater()
        for table in (self.norms, self.ratios, self.curves, self.hists, self.outside,
                      self.hist_titles, self.hist_items, self._hist_ranges):
            table.clear()
        self._decades.clear()
        self._dirty = True

    def add(self, samples: int, extra: dict) -> None:
        for name, v in extra.get("grad_norms", {}).items():
            self._series(name)[0].extend(samples, v)
        for name, v in extra.get("update_ratios", {}).items():
            self._series(name)[1].extend(samples, v)
        edges = extra.get("hist_edges", {})
        for name, counts in extra.get("hist", {}).items():
            self.hists.setdefault(name, HistoryImage()).add(counts, edges[name], samples)
        self.outside.update(extra.get("hist_outside", {}))
        if "conv1" in extra:
            self._conv1 = extra["conv1"]
        self._dirty = True

    def _series(self, name):
        if name not in self.norms:
            colour = LAYER_COLOURS[len(self.norms) % len(LAYER_COLOURS)]
            self.norms[name] = DecimatedSeries(1000)
            self.ratios[name] = DecimatedSeries(1000)
            self.curves[name] = (self.norm_plot.plot(pen=pg.mkPen(colour, width=1.5), name=name),
                                 self.ratio_plot.plot(pen=pg.mkPen(colour, width=1.5)))
        return self.norms[name], self.ratios[name]

    def redraw(self) -> bool:
        if not self._dirty:
            return False
        for name, (c_norm, c_ratio) in self.curves.items():
            for curve, s in ((c_norm, self.norms[name]), (c_ratio, self.ratios[name])):
                y = s.y
                ok = y > 0
                curve.setData(s.x[ok], y[ok])
        self._fit_decades(self.norm_plot, list(self.norms.values()))
        self._fit_decades(self.ratio_plot, list(self.ratios.values()))
        conv1 = getattr(self, "_conv1", None)
        if conv1 is not None:
            w, g = conv1
            if w.shape[1] == 3:     # a colour input: each kernel as one colour picture
                self.kernels.show_colour_kernels(w, f"conv1 kernels {w.shape}<br>(grey = 0)")
            else:
                self.kernels.show(w[:, 0] if w.shape[1] == 1 else w.reshape(-1, *w.shape[2:]),
                                  f"conv1 kernels {w.shape}", signed=True)
            if g is not None and g.shape[1] == 3:     # drawn as the kernels: one tile each
                self.kernel_grads.show_colour_kernels(g, "their gradients ∂L/∂W<br>(grey = 0)")
            elif g is not None:
                self.kernel_grads.show(g[:, 0] if g.shape[1] == 1
                                       else g.reshape(-1, *g.shape[2:]),
                                       "their gradients ∂L/∂W", signed=True)
        for name, h in self.hists.items():
            view, item = self._hist_item(name)
            if not h.count:
                item.clear()            # a new run, nothing probed yet
                continue
            item.setImage(h.rgba(), autoLevels=False, levels=(0, 255))
            lo, hi = float(h.edges[0]), float(h.edges[-1])
            outside = self.outside.get(name, (0, 0))
            title = hist_title(name, lo, hi, *outside)
            if self.hist_titles.get(name) != title:     # a re-layout: only on a change
                self.hist_titles[name] = title
                view.setTitle(title, color=theme.FOREGROUND, size=theme.TITLE_SIZE)
            view.setToolTip(hist_tooltip(name, lo, hi, *outside))
            item.setRect(pg.QtCore.QRectF(0, lo, max(h.samples, 1), hi - lo))
            # Fixed ranges, set here only when they change: a range change
            # re-lays out the axis (and auto-range would run mid-paint).
            if self._hist_ranges.get(name) != (lo, hi):
                self._hist_ranges[name] = (lo, hi)
                view.setYRange(lo, hi, padding=0)
        self._dirty = False
        return True

    def _hist_item(self, name: str) -> tuple:
        if name not in self.hist_items:
            if name not in self._layers:        # fed before prepare(): placed after the rest
                self._layers.append(name)
            i, n = self._layers.index(name), len(self._layers)
            # up to HIST_PER_ROW side by side, more in two rows: each stays wide enough to read
            per_row = n if n <= HIST_PER_ROW else -(-n // 2)
            row, column = 1 + i // per_row, i % per_row
            view = self.hist_layout.addPlot(row=row, col=column,
                                            title=hist_title(name, 0, 0, 0, 0))
            # the histograms share the row equally, whatever their titles say
            view.setPreferredWidth(80)
            self.hist_layout.layout.setColumnStretchFactor(column, 1)
            view.titleLabel.setAttr("color", theme.FOREGROUND)
            view.hideAxis("bottom")
            view.getAxis("left").setTextPen(theme.FOREGROUND)
            view.setMouseEnabled(False, False)
            view.setXRange(0, self._run_length, padding=0)
            view.getViewBox().setBorder(pg.mkPen(theme.FRAME))   # the whole run's extent
            item = pg.ImageItem(axisOrder="row-major")
            view.addItem(item)
            self.hist_items[name] = (view, item)
        return self.hist_items[name]


def hist_title(name: str, lo: float, hi: float, below: int, above: int) -> str:
    """A histogram's title: its name and, on a second line (a blank one when
    there is nothing to say, so the five plots stay aligned), how many
    weights lie beyond its range, counted in its top or bottom row. Short, so
    five histograms share a 1,000 px row; ``hist_tooltip`` says it in full."""
    beyond = [f"{above:,} above" if above else "", f"{below:,} below" if below else ""]
    beyond = ", ".join(b for b in beyond if b)
    second = f"<span style='color:#c0392b'>{beyond}</span>" if beyond else "&nbsp;"
    return f"{name}<br>{second}"


def hist_tooltip(name: str, lo: float, hi: float, below: int, above: int) -> str:
    """The histogram's range and what lies beyond it, in a sentence."""
    text = f"{name}: weights from {lo:.3g} to {hi:.3g}, darker where there are more."
    beyond = [f"{above:,} above {hi:.3g}" if above else "",
              f"{below:,} below {lo:.3g}" if below else ""]
    beyond = [b for b in beyond if b]
    if beyond:
        text += f" {' and '.join(beyond)} are counted in the end row."
    return text


_INV_GREY = np.stack([np.linspace(255, 20, 256)] * 3 + [np.full(256, 255)], axis=1).astype(np.uint8)
_INV_GREY_U32 = _INV_GREY.view(np.uint32).reshape(256)     # one look-up per pixel
