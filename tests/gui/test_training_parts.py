"""The Training tab's pure-NumPy parts: MNIST preprocessing of a drawing,
decimated curve series, confusion matrix and galleries, the probe."""

import numpy as np
import pyqtgraph as pg
import pytest

from cnnviz.data.mnist import load_mnist
from cnnviz.engine import lenet5
from cnnviz.engine.trainer import TrainConfig, Trainer
from cnnviz.gui.training.evaluation import (cell_indices, confusion_matrix,
                                            most_confidently_wrong)
from cnnviz.gui.training.preprocess import centre_of_mass, mnist_preprocess
from cnnviz.gui.training.probe import Probe
from cnnviz.gui.training.series import DecimatedSeries


def test_preprocess_scales_bounding_box_into_20x20_and_centres_mass():
    ink = np.zeros((280, 280), np.float32)
    ink[30:250, 100:140] = 1.0          # a tall bar, off-centre: 220 x 40
    out = mnist_preprocess(ink)
    assert out.shape == (28, 28) and out.dtype == np.float32
    rows = np.flatnonzero(out.any(axis=1))
    cols = np.flatnonzero(out.any(axis=0))
    assert len(rows) == 20                      # the long side becomes 20
    assert len(cols) == 4                       # 40 * 20/220 = 3.6 -> 4, aspect kept
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_preprocess_of_a_real_digit_stays_close_to_it():
    # MNIST digits were made this way, so the round trip of a digit drawn
    # ten times larger gives the digit back (same box, same centring).
    for digit in load_mnist(split="test").images[:50].astype(np.float32) / 255:
        big = np.kron(digit, np.ones((10, 10), np.float32))
        err = np.abs(mnist_preprocess(big) - digit)
        assert err.max() < 0.05 and err.mean() < 1e-3   # only the faintest edge pixels
    assert mnist_preprocess(np.zeros((280, 280))).max() == 0


def test_decimated_series_stays_within_capacity_and_keeps_true_averages():
    s = DecimatedSeries(capacity=100)
    x = np.arange(10_000, dtype=float)
    s.extend(x[:37], 3 * x[:37])
    for i in range(37, 10_000, 250):
        s.extend(x[i:i + 250], 3 * x[i:i + 250])
    assert s.n <= 100 and s.total == 10_000
    assert np.allclose(s.y, 3 * s.x)                 # means of equal spans of a line
    assert np.all(np.diff(s.x) == s.stride)           # evenly spaced, in order
    assert s.x[0] == pytest.approx((s.stride - 1) / 2)


def test_confusion_matrix_and_galleries():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[.9, .1, 0], [.2, .7, .1], [.1, .8, .1], [.05, .05, .9],
                      [0, .4, .6], [.3, 0, .7]], np.float32)
    cm = confusion_matrix(labels, probs.argmax(1), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert most_confidently_wrong(labels, probs).tolist() == [3, 1]
    assert cell_indices(labels, probs, 2, 2).tolist() == [5, 4]


def test_probe_copies_and_leaves_the_trainers_gradients_alone():
    train, test = load_mnist(split="train"), load_mnist(split="test")
    model = lenet5(seed=0)
    probe = Probe(model, test.images[3] / np.float32(255), int(test.labels[3]),
                  heavy_interval=0)
    trainer = Trainer(model, (train.images, train.labels), None,
                      TrainConfig(epochs=1, limit=256, snapshot_every=2), probe=probe)
    snaps = list(trainer.run())
    ex = snaps[-1].extra
    assert set(ex["grad_norms"]) == {"conv1", "conv2", "fc1", "fc2", "fc3"}
    assert all(v > 0 for v in ex["update_ratios"].values())
    names = [m[0] for m in ex["maps"]]
    assert names[:3] == ["conv1", "relu1", "pool1"] and names[-1] == "fc3"
    conv1_act, conv1_grad = ex["maps"][0][1:]
    assert conv1_act.shape == conv1_grad.shape == (6, 28, 28)
    assert ex["sample_probs"].sum() == pytest.approx(1, abs=1e-5)
    assert sum(ex["hist"]["conv1"]) == 150
    # Copies: changing the model afterwards does not change what was handed out.
    w = ex["weights"]["conv1.weight"]
    before = w.copy()
    model["conv1"].params["weight"] += 1
    assert np.array_equal(w, before)
    # The sample pass ran on the shadow model: the trainer's model kept the
    # gradient of its last batch (64 samples), not of the one sample.
    g = model["conv1"].grads["weight"]
    assert ex["conv1"][1] is not g and np.array_equal(ex["conv1"][1], g)


def test_history_image_keeps_every_other_column_when_full_and_draws_rgba():
    from cnnviz.gui.training.inside import HistoryImage
    h = HistoryImage(capacity=4)
    edges = np.linspace(-1, 1, 4)
    for k in range(5):                        # columns 0..3 fill it; column 4 halves it
        h.add(np.array([k, 0, 2 * k]), edges, samples=100 * (k + 1))
    np.testing.assert_allclose(np.expm1(h.image()), [[0, 2, 4], [0, 0, 0], [0, 4, 8]], atol=1e-5)
    assert h.count == 3 and h.samples == 500
    rgba = h.rgba()
    assert rgba.shape == (3, 3, 4) and rgba.dtype == np.uint8
    assert rgba[2, 2, 0] == rgba.min() and rgba[1, 0, 0] == rgba.max()   # darker: more weights
    h.clear()
    assert h.count == 0 and h.samples == 0


def test_overlays_have_distinct_colours_and_clear_takes_their_legend_entries(qtbot):
    from cnnviz.gui.training.curves import CurvesPanel
    panel = CurvesPanel()
    qtbot.addWidget(panel)

    def legend(plot):
        return [label.text for _, label in plot.legend.items]

    before = legend(panel.loss_plot), legend(panel.acc_plot)
    for run in range(8):
        panel.add_batches(np.array([10.0, 20.0]), {"loss": [2.0, 1.0], "smoothed_loss": [2.0, 1.5]})
        panel.add_epoch(20.0, {"test_accuracy": 0.5})
        panel.freeze_run(f"run {run + 1}")
    colours = [g["items"][0].opts["pen"].color().name() for g in panel.ghosts]
    assert len(set(colours)) == 8
    assert legend(panel.loss_plot)[-1] == "run 8" and len(legend(panel.acc_plot)) == 3 + 8
    panel.clear_overlays()
    assert (legend(panel.loss_plot), legend(panel.acc_plot)) == before
    assert not [i for i in panel.loss_plot.items if getattr(i, "_raw", None) is not None]


def test_weights_beyond_a_histograms_range_are_counted_and_said(qtbot):
    from cnnviz.gui.training.inside import WeightsView
    train, test = load_mnist(split="train"), load_mnist(split="test")
    model = lenet5(seed=0)
    probe = Probe(model, test.images[0] / np.float32(255), int(test.labels[0]), heavy_interval=0)
    trainer = Trainer(model, (train.images[:64], train.labels[:64]), None,
                      TrainConfig(epochs=1, limit=64, batch_size=32))
    first = probe(trainer)
    assert first["hist_outside"]["fc1"] == (0, 0)        # the range: twice the initial one
    hi = float(first["hist_edges"]["fc1"][-1])
    w = model["fc1"].params["weight"]
    w.ravel()[:3] = 5 * hi                                # three weights beyond the top
    w.ravel()[3] = -5 * hi                                # one below the bottom
    ex = probe(trainer)
    assert ex["hist_outside"]["fc1"] == (1, 3)
    assert ex["hist"]["fc1"].sum() == w.size             # still counted, in the end bins
    view = WeightsView()
    qtbot.addWidget(view)
    view.prepare(["conv1", "conv2", "fc1", "fc2", "fc3"])
    view.add(0, first)
    view.add(64, ex)
    view.redraw()
    assert "3 above, 1 below" in view.hist_titles["fc1"]
    assert (f"3 above {hi:.3g} and 1 below {-hi:.3g} are counted in the end row"
            in view.hist_items["fc1"][0].toolTip())
    assert "above" not in view.hist_titles["conv1"]
    assert "counted" not in view.hist_items["conv1"][0].toolTip()


def test_the_weights_page_fits_its_window_at_1400x900(qtbot):
    """Every plot, histogram and mosaic of the Weights page lies inside the
    page at the size the Training tab gives it in a 1400x900 window (about
    1,000 x 680 px), with titles saying weights beyond the ranges: the
    ratio plot and the last histograms were cut off at the right."""
    from cnnviz.gui.training.inside import WeightsView
    train, test = load_mnist(split="train"), load_mnist(split="test")
    model = lenet5(seed=0)
    probe = Probe(model, test.images[0] / np.float32(255), int(test.labels[0]), heavy_interval=0)
    trainer = Trainer(model, (train.images[:64], train.labels[:64]), None,
                      TrainConfig(epochs=1, limit=64, batch_size=32))
    first = probe(trainer)
    for layer in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        w = model[layer].params["weight"]
        w.ravel()[:1500] = 50.0                           # thousands beyond every range
        w.ravel()[1500:2000] = -50.0
    ex = probe(trainer)
    view = WeightsView()
    qtbot.addWidget(view)
    view.resize(1000, 680)
    view.show()
    qtbot.waitExposed(view)
    view.prepare(["conv1", "conv2", "fc1", "fc2", "fc3"])
    view.add(0, first)
    view.add(64, ex)
    view.redraw()
    qtbot.wait(50)
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    items = [view.norm_plot, view.ratio_plot, view.kernels.view, view.kernel_grads.view,
             *(plot for plot, _ in view.hist_items.values())]
    for item in items:
        r = item.sceneBoundingRect()
        assert r.width() >= 60 and visible.contains(r), (item, r, visible)
    hist_widths = [plot.sceneBoundingRect().width() for plot, _ in view.hist_items.values()]
    assert max(hist_widths) < 1.6 * min(hist_widths)      # the five share the row
    for name in ("conv1", "fc1"):
        assert "beyond" in view.hist_items[name][0].toolTip() or "above" in \
            view.hist_items[name][0].toolTip()


def _probe_extras(model, image):
    """Two probes of ``model`` (the second after its weights moved far out)."""
    probe = Probe(model, image, 0, heavy_interval=0)
    x = np.repeat(image[None], 64, axis=0)
    trainer = Trainer(model, (x, np.zeros(64, np.int64)), None,
                      TrainConfig(epochs=1, limit=64, batch_size=32))
    first = probe(trainer)
    for name in probe.param_layers:
        w = next(iter(model[name].params.values()))     # BatchNorm's: gamma
        w.ravel()[:w.size // 3] = 50.0
    return probe.param_layers, first, probe(trainer)


def test_the_weights_page_names_the_layers_of_the_network_trained(qtbot):
    """LeNet-5, then the bundled colour CNN (BatchNorm after its convolutions,
    two Linear layers): one histogram and one legend entry per parametric
    layer of the network being trained, none of the previous one's (no
    "fc3"), no two plots overlapping, all inside the page at 1400x900."""
    from cnnviz.engine import architecture
    from cnnviz.gui.training.inside import WeightsView
    view = WeightsView()
    qtbot.addWidget(view)
    view.resize(1000, 680)
    view.show()
    qtbot.waitExposed(view)
    grey = load_mnist(split="test").images[0] / np.float32(255)
    colour_cnn = architecture.read(architecture.bundled()["colour-cnn"]).build(0)
    from cnnviz.engine.layers import Conv2D, Flatten, Linear, ReLU
    from cnnviz.engine.sequential import Sequential
    eight = Sequential(*[layer for i in range(4) for layer in (Conv2D(1 if i == 0 else 4, 4, 3,
                                                                      seed=i), ReLU())],
                       Flatten(), Linear(4 * 20 * 20, 10, seed=0),
                       *[Linear(10, 10, seed=i) for i in range(3)])
    for model, image in ((lenet5(seed=0), grey),
                         (colour_cnn, np.stack([grey] * 3)),
                         (eight, grey)):              # eight histograms: in two rows
        layers, first, ex = _probe_extras(model, image)
        view.reset()
        view.prepare(layers)
        view.add(0, first)
        view.add(64, ex)
        view.redraw()
        qtbot.wait(50)
        assert list(view.hist_items) == layers
        legend = [label.text for _, label in view.norm_plot.legend.items]
        assert legend == layers
        plots = [plot for plot, _ in view.hist_items.values()]
        assert all(p.scene() is view.scene() for p in plots)
        visible = view.mapToScene(view.viewport().rect()).boundingRect()
        rects = [p.sceneBoundingRect() for p in plots]
        for r in rects:
            assert r.width() >= 60 and r.height() >= 60 and visible.contains(r), (r, visible)
        for i, a in enumerate(rects):
            for b in rects[i + 1:]:
                assert not a.intersects(b), (a, b)
        in_scene = [i for i in view.scene().items() if isinstance(i, pg.PlotItem)]
        assert len(in_scene) == 2 + len(layers)      # the two curve plots, the histograms
        if model is colour_cnn:
            assert "fc3" not in layers and "bn1" in layers


def test_the_most_wrong_gallery_says_so_when_no_test_image_is_wrong(qtbot):
    """All right: "No test image is wrong", not "The 0 most confidently
    wrong test images"; one wrong: not "The 1 ... images"."""
    from cnnviz.gui.training.evaluation import EvaluationPanel
    panel = EvaluationPanel()
    qtbot.addWidget(panel)
    images = np.zeros((4, 8, 8), np.uint8)
    labels = np.array([0, 1, 2, 1])
    probs = np.eye(3, dtype=np.float32)[labels] * 0.8 + 0.2 / 3
    panel.set_results(images, labels, probs)
    assert panel.gallery.title.text().startswith("No test image is wrong: all 4 are")
    assert len(panel.gallery.indices) == 0
    probs[3] = [0.1, 0.2, 0.7]
    panel.set_results(images, labels, probs)
    assert panel.gallery.title.text().startswith("The only wrong test image (")
    assert panel.gallery.indices.tolist() == [3]
