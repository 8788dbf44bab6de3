"""The Layer Stepper on networks other than 28x28 grey LeNet-5: the original
LeNet-5 of 1998 (sparse C3, trainable subsampling), a colour network with
BatchNorm and Dropout, other input sizes, the bundled architectures and
architecture files. Every gradient a view shows must be the one an
independent engine pass computes; the BatchNorm and Dropout views must be
what NumPy recomputes from the layer's input."""

import copy

import numpy as np
import pytest

from cnnviz.engine import (Conv2D, Flatten, Linear, MaxPool2D, ReLU, Sequential,
                           SoftmaxCrossEntropy, lenet5)
from cnnviz.engine.architecture import bundled, parse, read, write
from cnnviz.engine.normalization import BatchNorm2d
from cnnviz.engine.regularization import Dropout
from cnnviz.gui.stepper.inputs import to_model_input
from cnnviz.gui.stepper.norm_views import batchnorm_view, dropout_view

RTOL, ATOL = 1e-4, 1e-6          # float32: the stepper and the reference run the same ops


@pytest.fixture
def tab(stepper_tab):
    return stepper_tab


def colour_net(seed=0):
    """3-channel conv + BatchNorm (trained-looking running statistics) + ReLU
    + Dropout + max pool + Linear: 32x32 colour in, 10 scores out."""
    rng = np.random.default_rng(seed)
    bn = BatchNorm2d(4, eps=0.05)          # an eps that shows in the numbers
    bn.buffers["running_mean"][:] = rng.normal(0, 0.3, 4)
    bn.buffers["running_var"][:] = rng.uniform(0.2, 2.0, 4)
    bn.params["gamma"][:] = rng.uniform(0.5, 1.5, 4)
    bn.params["beta"][:] = rng.normal(0, 0.2, 4)
    return Sequential(Conv2D(3, 4, 3, seed=seed), bn, ReLU(), Dropout(0.5, seed=7),
                      MaxPool2D(2), Flatten(), Linear(4 * 15 * 15, 10, seed=seed))


def photo(h=50, w=40):
    rng = np.random.default_rng(3)
    return rng.random((h, w, 3), dtype=np.float32)


def reference_pass(model, x, label, training):
    """The whole forward and backward pass of an independent copy, in one go."""
    model.train(training)
    loss = SoftmaxCrossEntropy()
    model.loss = float(loss(model.forward(x), np.array([label])))
    model.backward(loss.backward())
    return model


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=ATOL)


def check_every_view_against(tab, ref):
    """Run backward to the input; at every layer, the panels' δ and dx and the
    Weights tab's gradients are the reference's."""
    s = tab.session
    tab.buttons["run_back"].click()
    assert s.back == 0
    tab.side.setCurrentWidget(tab.weights_tab)
    for i, layer in enumerate(s.model.layers):
        tab.strip.layer_clicked.emit(i)
        assert s.focus == i
        r = ref.trace[i]
        close(tab.panel_a.tensor, r.grad_output)
        if r.grad_input is not None:
            close(tab.panel_b.tensor, r.grad_input)
        keys = list(layer.params)
        specs = tab.weights_tab.specs
        if keys:
            close(specs["dW"].tensor, ref.layers[i].grads[keys[0]])
        if len(keys) > 1:
            close(specs["db"].tensor, ref.layers[i].grads[keys[1]])
    assert s.loss == pytest.approx(ref.loss, rel=1e-5)


# --- LeNet-5 (1998) ------------------------------------------------------------------------

def test_lenet5_1998_steps_to_the_loss_and_back_with_the_engines_gradients(tab):
    assert tab.choose_network("arch:lenet5-1998")
    s = tab.session
    assert s.x.shape == (1, 1, 28, 28)                 # the file's input: pad is its first layer
    assert [l.name for l in s.model.layers][:3] == ["pad", "norm", "C1"]
    ref = copy.deepcopy(s.model)
    tab.buttons["run_forward"].click()
    assert s.loss is not None
    reference_pass(ref, s.x, s.label, training=False)
    close(s.model.trace[-1].output, ref.trace[-1].output)
    check_every_view_against(tab, ref)
    # the sparse C3: its unconnected kernels have zero gradient, as in the engine
    c3 = s.model["C3"]
    tab.strip.layer_clicked.emit(s.model.layers.index(c3))
    dw = tab.weights_tab.specs["dW"].tensor
    assert np.all(dw[~c3.mask] == 0) and np.any(dw[c3.mask] != 0)
    # the step-by-step and im2col views of C3 end in the engine's gradients
    tab.side.setCurrentWidget(tab.backward_tab)
    steps = {st.title.split(":")[0]: st for st in tab.backward_tab.steps}
    close(steps["dW = δ · patchesᵀ"].data[0].reshape(dw.shape), dw)
    close(steps[[k for k in steps if k.startswith("dx = col2im")][0]].data,
          s.model.trace[s.model.layers.index(c3)].grad_input[0])


def test_a_32x32_grey_network_gets_the_digit_padded_by_2(tab):
    net = Sequential(Conv2D(1, 6, 5, seed=0), ReLU(), MaxPool2D(2), Flatten(),
                     Linear(6 * 14 * 14, 10, seed=0))
    digit = tab.session.x.copy()                       # LeNet-5's 28x28 digit
    assert tab.use_model(net, "grey 32x32", (1, 32, 32))
    x = tab.session.x
    assert x.shape == (1, 1, 32, 32)
    np.testing.assert_array_equal(x[0, 0, 2:30, 2:30], digit[0, 0])
    assert x[0, 0, :2].sum() == 0 and x[0, 0, :, 30:].sum() == 0
    assert "padded with 2 pixel(s) of background to 32x32" in tab.banner.label.text()
    tab.digit_spin.setValue(5)                          # another digit: padded too
    assert tab.session.x.shape == (1, 1, 32, 32)
    # found without being told: a model file does not record its input size
    assert tab.use_model(copy.deepcopy(net), "grey, found")
    assert tab.session.x.shape == (1, 1, 32, 32)


# --- a colour network with BatchNorm and Dropout ----------------------------------------

def test_colour_network_every_view_equals_the_engine_in_both_modes(tab, qtbot):
    net = colour_net()
    fresh = copy.deepcopy(net)
    assert tab.use_model(net, "colour net", (3, 32, 32))
    rgb = photo()
    assert tab.set_image(rgb, "photo.png")
    s = tab.session
    np.testing.assert_array_equal(s.x, to_model_input(rgb, (1, 3, 32, 32)))
    assert "colour, resized to 32x32" in tab.banner.label.text()
    assert tab.input_picture.isVisible()               # the colour picture above its channels
    assert tab.input_panel.rendered.titles == ["R (red)", "G (green)", "B (blue)"]
    assert tab.mode_switch.isVisible() and not tab.mode_switch.isChecked()
    assert not s.training                              # evaluation by default
    ref = reference_pass(copy.deepcopy(fresh), s.x, s.label, training=False)
    check_every_view_against(tab, ref)
    # training mode: the picture's own statistics, dropout drops
    tab.buttons["reset"].click()
    tab.mode_switch.click()
    assert s.training
    ref = reference_pass(copy.deepcopy(fresh), s.x, s.label, training=True)
    tab.buttons["run_forward"].click()
    close(s.model.trace[-1].output, ref.trace[-1].output)
    np.testing.assert_array_equal(s.model.layers[3].mask, ref.layers[3].mask)
    check_every_view_against(tab, ref)
    # the colour conv's views: im2col over 3 channels, dx per channel, gradient check
    tab.strip.layer_clicked.emit(0)
    tab.side.setCurrentWidget(tab.backward_tab)
    steps = tab.backward_tab.steps
    col2im = [st for st in steps if st.title.startswith("dx = col2im")][0]
    assert col2im.titles == ["dx[0]", "dx[1]", "dx[2]"]
    close(col2im.data, ref.trace[0].grad_input[0])
    tab.backward_tab.channel_spin.setValue(2)
    sixth = [st for st in tab.backward_tab.steps if st.title.startswith("6.")][0]
    close(sixth.data[0], ref.trace[0].grad_input[0, 2])
    tab.side.setCurrentWidget(tab.check_tab)
    for i in (0, 1, 3):                                # conv, BatchNorm (batch stats), Dropout
        tab.strip.layer_clicked.emit(i)
        tab.check_tab.button.click()
        assert tab.check_tab.result is not None, tab.check_tab.result_label.text()
        assert tab.check_tab.result.max_rel_error < 1e-5, tab.check_tab.result_label.text()
        result = tab.check_tab.result                  # every entry checked: none on a "kink"
        assert result.kinks == 0 and result.checked > 0, result.text()
    # the strip and the summary follow the network
    assert [b.text().split("\n")[0] for b in tab.strip.blocks][:3] == ["input", "conv1", "bn1"]


def test_global_average_pooling_and_zero_padding_step_with_the_engines_gradients(tab):
    from cnnviz.engine.global_pool import GlobalAvgPool2D
    from cnnviz.engine.padding import ZeroPad2D

    net = Sequential(ZeroPad2D(1), Conv2D(3, 6, 3, stride=2, seed=4), ReLU(), GlobalAvgPool2D(),
                     Linear(6, 5, seed=4))
    fresh = copy.deepcopy(net)
    assert tab.use_model(net, "gap net")                    # shape found: 32x32 colour first
    s = tab.session
    assert s.x.shape == (1, 3, 32, 32)
    assert tab.target_spin.maximum() == 4                   # five classes
    ref = reference_pass(fresh, s.x, s.label, training=False)
    check_every_view_against(tab, ref)


def test_a_colour_network_takes_the_kernel_labs_photo(tab):
    rgb = photo(60, 90)
    tab.set_image_source(lambda: (rgb, "cat.png"))
    assert tab.use_model(colour_net(), "colour net", (3, 32, 32))
    np.testing.assert_array_equal(tab.session.x, to_model_input(rgb, (1, 3, 32, 32)))
    assert tab.banner.label.text() == ("cat.png (60x90x3) converted to the model's input: "
                                       "colour, resized to 32x32 (shown on the left). No true "
                                       "label: the target is 7.")
    assert tab.choose_network("lenet5")                 # back to grey: the same photo, grey
    np.testing.assert_array_equal(tab.session.x, to_model_input(rgb, (1, 1, 28, 28)))
    tab.digit_spin.setValue(3)                          # a digit again
    assert tab.input_name == "MNIST test #3"


def test_stepping_never_moves_the_models_buffers_and_masks_repeat(tab):
    net = colour_net()
    before = net.state_dict()
    assert tab.use_model(net, "colour net", (3, 32, 32))
    s = tab.session
    tab.mode_switch.click()
    tab.buttons["run_forward"].click()
    mask = s.model.layers[3].mask.copy()
    tab.buttons["reset"].click()
    tab.buttons["run_forward"].click()
    np.testing.assert_array_equal(s.model.layers[3].mask, mask)     # a replay: the same mask
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    tab.side.setCurrentWidget(tab.norm_tab)
    tab.strip.layer_clicked.emit(3)
    tab.norm_tab.mask_button.click()                   # another draw
    assert not np.array_equal(s.model.layers[3].mask, mask)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_batchnorm_view_is_numpys_recomputation_in_both_modes(tab):
    assert tab.use_model(colour_net(), "colour net", (3, 32, 32))
    tab.set_image(photo(), "photo.png")
    s = tab.session
    bn = s.model.layers[1]
    tab.side.setCurrentWidget(tab.norm_tab)
    for training in (False, True):
        if training:
            tab.mode_switch.click()
        tab.strip.layer_clicked.emit(1)
        x = s.model.trace[1].input[0].astype(np.float64)          # (C, H, W)
        if training:
            mean, var = x.mean(axis=(1, 2)), x.var(axis=(1, 2))
            assert "this one picture's" in tab.norm_tab.message.text()
        else:
            mean = bn.buffers["running_mean"].astype(np.float64)
            var = bn.buffers["running_var"].astype(np.float64)
            assert tab.norm_tab.message.text().startswith("Evaluation mode: the running mean")
        x_hat = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + bn.eps)
        y = bn.params["gamma"][:, None, None] * x_hat + bn.params["beta"][:, None, None]
        v = tab.norm_tab.view
        assert v.mode == ("training" if training else "evaluation")
        close(v.mean, mean)
        close(v.var, var)
        close(v.normalized, x_hat)
        close(v.output, y)
        close(tab.norm_tab.panel_a.tensor[0], x_hat)
        close(tab.norm_tab.panel_b.tensor[0], y)
        table = tab.norm_tab.table
        for row, values in enumerate((mean, var, 1 / np.sqrt(var + bn.eps))):
            shown = [float(table.item(row, c).text()) for c in range(4)]
            np.testing.assert_allclose(shown, values, rtol=1e-3)
        if training:                                  # a batch of one: mean 0, variance 1
            close(x_hat.mean(axis=(1, 2)), np.zeros(4))


def test_dropout_view_is_the_layers_mask_and_evaluation_passes_everything(tab):
    norm_index = tab.side.indexOf(tab.norm_tab)
    assert not tab.side.isTabVisible(norm_index) and not tab.mode_switch.isVisible()   # LeNet-5
    assert tab.use_model(colour_net(), "colour net", (3, 32, 32))
    assert tab.side.isTabVisible(norm_index) and tab.mode_switch.isVisible()
    assert tab.side.tabBar().sizeHint().width() <= tab.side.width()    # every tab title shows
    s = tab.session
    tab.side.setCurrentWidget(tab.norm_tab)
    tab.strip.layer_clicked.emit(3)
    v = tab.norm_tab.view
    assert v.multiplier is None and "passes all 3600 values unchanged" in v.text
    np.testing.assert_array_equal(s.model.trace[3].output, s.model.trace[3].input)
    tab.mode_switch.click()
    tab.strip.layer_clicked.emit(3)
    layer = s.model.layers[3]
    v = tab.norm_tab.view
    expected = layer.mask[0] * np.float32(2.0)        # p = 0.5: kept values times 2
    np.testing.assert_array_equal(v.multiplier, expected)
    np.testing.assert_array_equal(tab.norm_tab.panel_a.tensor[0], expected)
    assert v.dropped == int((~layer.mask).sum()) > 0
    assert f"{v.dropped} of 3600 values dropped" in tab.norm_tab.message.text()
    t = s.model.trace[3]
    close(t.output, t.input * expected[None])
    assert dropout_view(layer).dropped == v.dropped
    assert batchnorm_view(s.model.layers[1]).mode == "training"


# --- choosing networks --------------------------------------------------------------------

def test_network_box_offers_the_bundled_architectures_and_files(tab, tmp_path):
    box = tab.network_box
    items = [box.itemText(i) for i in range(box.count())]
    for stem in bundled():
        assert f"{stem} (architecture, untrained)" in items
    assert "Architecture file (.json)..." in items and "Model file..." in items
    assert not tab.choose_network("arch:bottleneck-3x3")
    assert tab.banner.label.text() == (
        "Cannot use this architecture: 1x1 bottleneck: without (3x3 conv only) takes input of "
        "shape (256, 100, 100); the stepper feeds grey (1 channel) or colour (3 channel) pictures")
    assert tab.session.model.layers[1].name == "conv1"          # LeNet-5 still loaded
    doc = read(bundled()["lenet5"]).to_dict()
    doc["input_shape"], doc["name"] = [3, 28, 28], "colour LeNet-5"
    doc["layers"][1].pop("in_channels", None)
    path = tmp_path / "colour-lenet.json"
    write(path, parse(doc, str(path)))
    assert tab.load_architecture_file(path)
    assert tab.session.x.shape == (1, 3, 28, 28)
    assert box.currentText() == "colour-lenet.json"
    assert "the grey digit in all 3 channels" in tab.banner.label.text()
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "cnnviz-architecture", "version": 1, "input_shape": [1, 28, 28], '
                   '"layers": [{"type": "MaxPool2D", "name": "pool9", "kernel_size": 64}]}')
    assert not tab.load_architecture_file(bad)
    text = tab.banner.label.text()
    assert text.startswith("Cannot use this architecture: ") and "bad.json" in text
    assert "pool9" in text
    assert tab.session.x.shape == (1, 3, 28, 28)                # the good one still loaded


def test_use_model_keeps_its_signature_for_the_builder(tab):
    assert tab.use_model(lenet5(seed=1), "built")              # (model, name), as before
    assert tab.source == "built" and tab.session.x.shape == (1, 1, 28, 28)
    box = tab.network_box
    assert box.currentText() == "built"                        # named in the Network box
    tab.session.model.layers[1].params["weight"][:] = 0         # changed while stepped
    assert tab.choose_network("lenet5")
    box.setCurrentIndex(box.findText("built"))                  # chosen again: as given
    box.activated.emit(box.currentIndex())
    assert tab.source == "built" and box.currentText() == "built"
    assert np.any(tab.session.model.layers[1].params["weight"] != 0)
    assert not tab.use_model(Sequential(Conv2D(2, 2, 3), ReLU(), Flatten(), Linear(2 * 26 * 26, 3)),
                             "two channels")
    assert ("takes input of shape (2, 28, 28); the stepper feeds grey (1 channel) or colour "
            "(3 channel) pictures") in tab.banner.label.text()


def test_many_1x1_maps_read_as_one_wrapped_map(tab):
    """C5 of the 1998 LeNet-5 gives 120 maps of 1x1: one map of 10x12 (as
    a vector), not 120 one-pixel tiles (building those, 240 view boxes with
    pyqtgraph's menus, took 2.3 s of a switch)."""
    assert tab.choose_network("arch:lenet5-1998")
    s = tab.session
    tab.buttons["run_forward"].click()
    c5 = [l.name for l in s.model.layers].index("C5")
    tab.strip.layer_clicked.emit(c5)
    panel = tab.panel_b
    assert "120 maps of 1x1 wrapped 10x12" in panel.header.text()
    grid = panel.grid
    assert len(grid.tiles) == 1
    np.testing.assert_array_equal(grid.rendered.data[0].ravel(),
                                  s.model.trace[c5].output[0].ravel())
    biggest = max(len(g.tiles) for p in (tab.panel_a, tab.panel_b) for g in p.grids.values())
    assert biggest <= 16
    assert [a.text() for a in grid.tiles[0].menu.actions() if a.text()] == [
        "Reset zoom", "Export map as PNG...", "Export map as .npy..."]
