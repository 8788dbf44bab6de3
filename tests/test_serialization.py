"""save/load: round trip, one .npz, atomic writes, clear errors naming the file."""

import json
import os
import zipfile

import numpy as np
import pytest

from cnnviz.engine import (AvgPool2D, Conv2D, Flatten, LeakyReLU, Linear, MaxPool2D, ModelFileError,
                           Normalize, ReLU, Sequential, Sigmoid, Tanh, lenet5, lenet5_small, load,
                           save)
from cnnviz.engine import serialization


def odd_net():
    rng = np.random.default_rng(0)
    net = Sequential(Normalize(0.2, 0.7),
                     Conv2D(1, 3, (3, 2), stride=(2, 1), padding=(1, 0), dilation=1, seed=rng),
                     LeakyReLU(0.05), AvgPool2D(2, 1),
                     Conv2D(3, 2, 2, dilation=2, bias=False, seed=rng), Tanh(),
                     MaxPool2D((2, 3), (1, 2)), Flatten(), Linear(16, 5, seed=rng), Sigmoid(),
                     Linear(5, 3, bias=False, seed=rng), ReLU())
    for p in net.parameters():
        p.value[...] = rng.standard_normal(p.value.shape)
    return net


X_ODD = (2, 1, 15, 9)


@pytest.mark.parametrize("make,shape", [(lenet5, (3, 1, 28, 28)), (lenet5_small, (2, 1, 28, 28)),
                                        (odd_net, X_ODD)], ids=["lenet5", "small", "odd"])
def test_round_trip_gives_identical_outputs(tmp_path, make, shape):
    net = make()
    x = np.random.default_rng(1).uniform(0, 1, shape).astype(np.float32)
    path = tmp_path / "model.npz"
    save(net, path, metadata={"epochs": 3, "note": "é"})
    assert os.listdir(tmp_path) == ["model.npz"]            # one file, no temp left
    assert zipfile.is_zipfile(path)
    back = load(path)
    assert [type(l) for l in back.layers] == [type(l) for l in net.layers]
    assert [l.name for l in back.layers] == [l.name for l in net.layers]
    assert [l.config() for l in back.layers] == [l.config() for l in net.layers]
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    for k, v in net.state_dict().items():
        w = back.state_dict()[k]
        assert w.dtype == v.dtype
        np.testing.assert_array_equal(w, v)
    assert back.metadata == {"epochs": 3, "note": "é"}
    assert load(str(path)).num_params == net.num_params            # str paths too


def test_file_is_a_plain_npz_holding_weights_and_architecture(tmp_path):
    path = tmp_path / "m.npz"
    save(lenet5(), path)
    with np.load(path, allow_pickle=False) as z:          # no pickles needed to read it
        names = set(z.files)
        header = json.loads(str(z["header"]))
        w = z["param/conv1.weight"]
    assert w.shape == (6, 1, 5, 5)
    assert {f"param/{k}" for k in lenet5().state_dict()} | {"header"} == names
    assert [a["type"] for a in header["architecture"]][:3] == ["Normalize", "Conv2D", "ReLU"]


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "m.npz"
    save(lenet5(seed=1), path)
    save(lenet5(seed=2), path)
    assert os.listdir(tmp_path) == ["m.npz"]
    np.testing.assert_array_equal(load(path)["conv1"].params["weight"],
                                  lenet5(seed=2)["conv1"].params["weight"])


def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "m.npz"
    save(lenet5(seed=1), path)
    original = path.read_bytes()
    with pytest.raises(TypeError):
        save(lenet5(seed=2), path, metadata={"bad": object()})     # not JSON-able
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["m.npz"]


def test_crash_in_the_middle_of_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save(lenet5(seed=1), path)
    original = path.read_bytes()

    def half_then_crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(serialization.np, "savez", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        save(lenet5(seed=2), path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["m.npz"]
    load(path)


def _assert_model_file_error(path):
    with pytest.raises(ModelFileError) as info:
        load(path)
    assert str(path) in str(info.value) or os.path.basename(str(path)) in str(info.value)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_missing_file(tmp_path):
    msg = _assert_model_file_error(tmp_path / "nope.npz")
    assert "no such file" in msg


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    _assert_model_file_error(path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("this is not a model\n" * 20)
    _assert_model_file_error(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.npz"
    save(lenet5(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _assert_model_file_error(path)
    path.write_bytes(data[:-10])
    _assert_model_file_error(path)


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.npz"
    save(lenet5(), path)
    data = bytearray(path.read_bytes())
    mid = len(data) // 3
    data[mid:mid + 64] = b"\xff" * 64           # inside the weights: the CRC no longer matches
    path.write_bytes(bytes(data))
    _assert_model_file_error(path)


def test_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, a=np.arange(3), b=np.zeros((2, 2)))
    msg = _assert_model_file_error(path)
    assert "not a cnnviz model" in msg


def test_plain_npy_file(tmp_path):
    """np.load returns an ndarray (no context manager) for a .npy file."""
    np.save(tmp_path / "single.npy", np.arange(3))
    _assert_model_file_error(tmp_path / "single.npy")


@pytest.mark.parametrize("header", [
    "not json {",
    json.dumps({"format": "something-else", "version": 1, "architecture": []}),
    json.dumps({"format": "cnnviz-model", "version": 999, "architecture": []}),
    json.dumps({"format": "cnnviz-model", "version": 1,
                "architecture": [{"type": "Bogus", "name": "x", "config": {}}]}),
    json.dumps({"format": "cnnviz-model", "version": 1,
                "architecture": [{"type": "Linear", "name": "fc1",
                                  "config": {"in_features": 3, "out_features": 2, "bias": True}}]}),
    json.dumps([1, 2, 3]),
    json.dumps(7),
], ids=["not-json", "other-format", "newer-version", "unknown-layer", "weights-missing",
        "json-list", "json-number"])
def test_npz_with_a_bad_header(tmp_path, header):
    path = tmp_path / "weird.npz"
    np.savez(path, header=np.array(header))
    _assert_model_file_error(path)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path = tmp_path / "m.npz"
    save(lenet5(), path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["param/conv1.weight"] = np.zeros((6, 1, 3, 3), np.float32)
    np.savez(path, **arrays)
    msg = _assert_model_file_error(path)
    assert "conv1.weight" in msg


def test_round_trip_of_a_float64_model_keeps_float64(tmp_path):
    """A gradient-check (float64) model must not come back silently rounded to float32."""
    net = odd_net().astype(np.float64)
    rng = np.random.default_rng(5)
    for p in net.parameters():
        p.value[...] = rng.standard_normal(p.value.shape)       # not representable in float32
    save(net, tmp_path / "m64.npz")
    back = load(tmp_path / "m64.npz")
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v, err_msg=k)
    x = rng.uniform(0, 1, X_ODD)
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


# ---- the layers of issue 14: their configs, and BatchNorm2d's running statistics ------------
def modern_net():
    from cnnviz.engine import (BatchNorm2d, Dropout, GlobalAvgPool2D, SparseConv2D, Subsampling2D,
                               ZeroPad2D)
    rng = np.random.default_rng(0)
    return Sequential(ZeroPad2D((1, 2)), Conv2D(1, 4, 3, seed=rng), BatchNorm2d(4, momentum=0.3),
                      ReLU(), Subsampling2D(4, 2), SparseConv2D(4, 3, 2, [[0, 1], [2], [3, 0, 1]],
                                                                seed=rng),
                      BatchNorm2d(3, eps=1e-3), Dropout(0.3, seed=5), GlobalAvgPool2D(),
                      Linear(3, 2, seed=rng))


def test_round_trip_of_the_new_layers_keeps_the_running_statistics(tmp_path):
    net = modern_net()
    rng = np.random.default_rng(1)
    for _ in range(3):                       # training passes move the running statistics
        net.forward(rng.uniform(0, 1, (4, 1, 9, 8)).astype(np.float32))
    assert not np.allclose(net["bn1"].buffers["running_var"], 1)
    path = tmp_path / "modern.npz"
    save(net, path)
    with np.load(path, allow_pickle=False) as z:
        assert {"buffer/bn1.running_mean", "buffer/bn1.running_var", "buffer/bn2.running_var",
                "param/bn1.gamma", "param/conv2.weight"} <= set(z.files)
        assert "param/bn1.running_mean" not in z.files
    back = load(path)
    assert [l.config() for l in back.layers] == [l.config() for l in net.layers]
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v, err_msg=k)
    x = rng.uniform(0, 1, (2, 1, 9, 8)).astype(np.float32)
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    back.eval()
    net.eval()
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


def test_a_model_file_without_its_running_statistics_is_refused(tmp_path):
    net = modern_net()
    path = tmp_path / "m.npz"
    header = json.dumps({"format": "cnnviz-model", "version": 1,
                         "architecture": serialization.architecture(net), "metadata": {}})
    members = serialization.state_members(net)
    np.savez(path, header=np.array(header),
             **{k: v for k, v in members.items() if k != "buffer/bn2.running_var"})
    with pytest.raises(ModelFileError, match=r"buffer/bn2.running_var: missing \(the "
                                             r"architecture declares it, shape \(3,\)\)"):
        load(path)
    members["buffer/bn2.running_var"] = np.ones(4, np.float32)
    np.savez(path, header=np.array(header), **members)
    with pytest.raises(ModelFileError, match=r"buffer/bn2.running_var: shape \(4,\), but the "
                                             r"architecture declares \(3,\)"):
        load(path)
    members["buffer/bn2.running_var"] = np.ones(3, np.int32)
    np.savez(path, header=np.array(header), **members)
    with pytest.raises(ModelFileError, match="buffers must be float16, float32 or float64"):
        load(path)
    members["buffer/bn9.running_var"] = np.ones(3, np.float32)
    members["buffer/bn2.running_var"] = np.ones(3, np.float32)
    np.savez(path, header=np.array(header), **members)
    with pytest.raises(ModelFileError, match=r"m.npz: buffer/bn9.running_var: not a buffer of "
                                             r"this architecture \(it has bn1.running_mean"):
        load(path)


def test_a_checkpoint_keeps_the_running_statistics(tmp_path):
    from cnnviz.engine.trainer import Trainer, TrainConfig, load_checkpoint
    from cnnviz.engine import BatchNorm2d, GlobalAvgPool2D
    rng = np.random.default_rng(2)
    images, labels = rng.integers(0, 256, (64, 8, 8), dtype=np.uint8), rng.integers(0, 3, 64)
    net = Sequential(Conv2D(1, 4, 3, seed=0), BatchNorm2d(4), ReLU(), GlobalAvgPool2D(),
                     Linear(4, 3, seed=1))
    trainer = Trainer(net, (images, labels), None, TrainConfig(epochs=1, batch_size=16,
                                                                warmup_steps=0, workers=1))
    list(trainer.run())
    path = tmp_path / "ck.npz"
    trainer.save_checkpoint(path)
    model, state = load_checkpoint(path)
    np.testing.assert_array_equal(model["bn1"].buffers["running_mean"],
                                  net["bn1"].buffers["running_mean"])
    assert "bn1.running_var" in state["model"]
    resumed = Trainer.from_checkpoint(path, (images, labels))
    np.testing.assert_array_equal(resumed.model["bn1"].buffers["running_var"],
                                  net["bn1"].buffers["running_var"])
