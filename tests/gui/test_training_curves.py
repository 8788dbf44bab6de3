"""The Training tab's curves after a short real run (2 epochs on a 2,000-image
subset): the momentum curve, legends that cover no data, and an exported
PNG that is what the screen shows."""

import numpy as np
import pytest
from PyQt6.QtCore import QPointF
from PyQt6.QtGui import QImage
from PyQt6.QtWidgets import QMessageBox

from dialogs import Answer
from test_training_tab import make_tab, subset_dir, wait_state   # noqa: F401 (fixtures)


@pytest.fixture
def finished_run(qtbot, make_tab):     # noqa: F811
    """A run that changed its momentum from 0.9 to 0.5 after 10 batches."""
    tab = make_tab(epochs=2)
    tab.setup.limit.setValue(1000)
    tab.setup.momentum.setValue(0.9)
    tab.start()
    qtbot.waitUntil(lambda: tab.trainer.step >= 10, timeout=20_000)
    tab.setup.momentum.setValue(0.5)
    wait_state(qtbot, tab, "finished", timeout=60_000)
    tab.views.setCurrentIndex(0)
    tab._on_frame(force=True)
    qtbot.wait(50)
    return tab


def drawn_points(curve, vb):
    """Scene positions of a curve's points that lie inside its view box."""
    x, y = curve.getData()          # as displayed (log10 on a log axis)
    if x is None:
        return []
    inside = vb.sceneBoundingRect()
    points = [vb.mapViewToScene(QPointF(float(a), float(b)))
              for a, b in zip(x, y) if np.isfinite(a) and np.isfinite(b)]
    return [p for p in points if inside.contains(p)]


def test_a_momentum_change_shows_on_its_curve_and_in_the_csv(qtbot, finished_run, tmp_path):
    tab = finished_run
    x, y = tab.curves.c_momentum.getData()
    assert len(x) == tab.trainer.step
    assert y[0] == 0.9 and y[-1] == 0.5 and set(np.round(y, 6)) == {0.9, 0.5}
    assert tab.curves.momentum_plot.isVisible()
    tab.export_csv(tmp_path / "h.csv")     # written once the training thread has ended
    qtbot.waitUntil((tmp_path / "h.csv").exists, timeout=10_000)
    header, *rows = (tmp_path / "h.csv").read_text().splitlines()
    column = header.split(",").index("momentum")
    assert {float(r.split(",")[column]) for r in rows} == {0.9, 0.5}


def test_no_legend_covers_a_plotted_point(qtbot, finished_run):
    """Each legend's scene rectangle against every drawn point of the
    visible curves (loss, accuracy, learning rate, momentum); the run spans
    the whole x axis, so a legend in a corner of a plot would cover some."""
    curves = finished_run.curves
    legends = {p.titleLabel.text: p.legend for p in curves.plots if p.legend is not None}
    assert len(legends) == 2 and all(lg.isVisible() and lg.items for lg in legends.values())
    for plot in (curves.loss_plot, curves.acc_plot, curves.lr_plot, curves.momentum_plot):
        for curve in plot.listDataItems():
            points = drawn_points(curve, plot.vb)
            assert points, f"no point of '{curve.name()}' drawn"
            for owner, legend in legends.items():
                rect = legend.sceneBoundingRect()
                covered = [p for p in points if rect.contains(p)]
                assert not covered, (f"the legend of '{owner}' covers {len(covered)} points "
                                     f"of '{curve.name()}'")


def test_legend_entries_wrap_to_the_plots_width(qtbot):
    """Long overlay labels: fewer columns, the legend no wider than its plot."""
    from cnnviz.gui.training.curves import CurvesPanel
    panel = CurvesPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    panel.add_batches(np.arange(1, 50) * 64.0, {"smoothed_loss": np.linspace(2, 0.3, 49)})
    for i in range(3):
        panel.freeze_run(f"run {i + 1}: sgd lr 0.05 m 0.9 bs 64; lr 0.05 -> 0.001 at 12k")
    qtbot.wait(50)
    legend = panel.loss_plot.legend
    assert legend.columnCount < 4
    assert legend.sceneBoundingRect().width() <= panel.loss_plot.sceneBoundingRect().width() + 1


def screen_pixels(widget) -> QImage:
    """What the screen shows of ``widget`` (the window's backing store)."""
    window = widget.window()
    top_left = widget.mapTo(window, widget.rect().topLeft())
    return window.screen().grabWindow(window.winId(), top_left.x(), top_left.y(),
                                      widget.width(), widget.height()).toImage()


def as_array(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, :image.width() * 4].reshape(image.height(), image.width(), 4)[..., :3].copy()


def assert_same_picture(png, shown: QImage) -> None:
    saved = QImage(str(png))
    assert (saved.width(), saved.height()) == (shown.width(), shown.height())
    a, b = as_array(saved).astype(int), as_array(shown).astype(int)
    differ = np.mean(np.abs(a - b).max(axis=2) > 40)
    assert differ < 0.002, f"{differ:.2%} of the pixels differ"


def test_the_exported_png_is_what_the_screen_shows(qtbot, finished_run, tmp_path):
    tab = finished_run
    tab.export_curves_png(tmp_path / "curves.png")
    assert_same_picture(tmp_path / "curves.png", screen_pixels(tab.curves))
    # exported from another page after the window grew: the curves as the
    # Curves page now shows them, not at the size they were last shown
    tab.views.setCurrentWidget(tab.evaluation)
    tab.resize(1500, 950)
    qtbot.wait(100)
    tab.export_curves_png(tmp_path / "other-page.png")
    tab.views.setCurrentIndex(0)
    tab._on_frame(force=True)
    qtbot.wait(100)
    assert_same_picture(tmp_path / "other-page.png", screen_pixels(tab.curves))


def test_the_gradient_norms_legend_lies_outside_their_plot(qtbot, finished_run):
    """Weights & gradients: the five layers' legend sits above the norms'
    view box, so a run that spans the x axis runs under no legend."""
    view = finished_run.weights_view
    finished_run.views.setCurrentWidget(view)
    finished_run._on_frame(force=True)
    qtbot.wait(50)
    legend, box = view.norm_plot.legend, view.norm_plot.vb.sceneBoundingRect()
    assert legend.isVisible() and len(legend.items) == len(view.norms) >= 5
    assert not legend.sceneBoundingRect().intersects(box)
    # and it widens nothing: the ratio plot beside it stays in the window
    assert view.ratio_plot.sceneBoundingRect().right() <= view.viewport().width()
