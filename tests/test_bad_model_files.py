"""A corpus of bad model files, generated here, each run through the real
loader and the real command line: one ModelFileError naming the file and the
field, never another exception; `cnnviz summary` / `cnnviz eval` exit 1 with
one line "cnnviz: error: ...", no traceback, no "allow_pickle". Files that
declare sizes far beyond memory are refused from their declarations, in a
child process whose peak memory is measured."""

import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cnnviz.engine import ModelFileError, lenet5, load, save
from cnnviz.engine.registry import LAYER_TYPES
from cnnviz.engine.serialization import (LAYER_CONFIG, MAX_LAYERS, MAX_PARAMS, architecture,
                                         declared_params)

ROOT = Path(__file__).resolve().parent.parent


# ---- writing files ------------------------------------------------------------------
def lenet_header(**changes) -> dict:
    h = {"format": "cnnviz-model", "version": 1, "architecture": architecture(lenet5()),
         "metadata": {}}
    h.update(changes)
    return h


def lenet_arrays() -> dict:
    return {f"param/{k}": v for k, v in lenet5(seed=0).state_dict().items()}


def write_npz(path, header, arrays=None):
    """An npz as np.savez writes it: header (a dict is dumped as JSON) and arrays."""
    text = header if isinstance(header, str) else json.dumps(header)
    np.savez(path, header=np.array(text), **(lenet_arrays() if arrays is None else arrays))
    return path


def with_layer(i, **changes) -> dict:
    arch = architecture(lenet5())
    arch[i] = {**arch[i], **changes}
    return lenet_header(architecture=arch)


def with_config(i, **changes) -> dict:
    arch = architecture(lenet5())
    arch[i]["config"].update(changes)
    return lenet_header(architecture=arch)


def npy_bytes(array) -> bytes:
    import io
    f = io.BytesIO()
    np.save(f, array)
    return f.getvalue()


def write_zip(path, members):
    """A zip by hand: members are (name, bytes) stored, or (name, Bomb)
    deflated with the sizes it declares."""
    out, central = bytearray(), bytearray()
    for name, data in members:
        fname = name.encode()
        if isinstance(data, Bomb):
            method, crc, csize, usize, payload = 8, data.crc, len(data.stream), data.size, data.stream
        else:
            method, crc, csize, usize, payload = 0, zlib.crc32(data), len(data), len(data), data
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, csize, usize,
                           len(fname), 0) + fname + payload
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                               csize, usize, len(fname), 0, 0, 0, 0, 0, offset) + fname
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central),
                       len(out), 0)
    Path(path).write_bytes(bytes(out + central + eocd))
    return path


class Bomb:
    """A real deflate stream of a .npy of ``n`` float32 zeros: about 1 kB per
    MB, so 3 GB fit in a 3 MB file (repeated full-flush blocks, built in 0.5 s).
    Its .npy header declares ``shape`` (default (n,)); the zip entry declares
    ``declared`` bytes (default: all of them) with the CRC of those bytes."""

    CHUNK = 1 << 24

    def __init__(self, n, shape=None, declared=None):
        head = _npy_header(shape or (n,))
        total = len(head) + 4 * n
        self.size = total if declared is None else declared
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        parts = [c.compress(head + bytes(self.CHUNK - len(head))) + c.flush(zlib.Z_FULL_FLUSH)]
        block = c.compress(bytes(self.CHUNK)) + c.flush(zlib.Z_FULL_FLUSH)
        again = c.compress(bytes(self.CHUNK)) + c.flush(zlib.Z_FULL_FLUSH)
        assert block == again
        full, rest = divmod(total - 3 * self.CHUNK, self.CHUNK)
        parts += [block, again] + [block] * full
        parts.append(c.compress(bytes(rest)) + c.flush())
        self.stream = b"".join(parts)
        if self.size <= self.CHUNK:
            self.crc = zlib.crc32(head + bytes(self.size - len(head)))
        else:
            crc = zlib.crc32(head + bytes(self.CHUNK - len(head)))
            zeros = bytes(self.CHUNK)
            for _ in range(2 + full):
                crc = zlib.crc32(zeros, crc)
            self.crc = zlib.crc32(bytes(rest), crc)


def _npy_header(shape, descr="<f4") -> bytes:
    d = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    total = 10 + len(d) + 1
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d) + 1 + (-total % 64)) + d + \
        b" " * (-total % 64) + b"\n"


# ---- the corpus: name -> make(dir) -> (path, what the message must say) ----------
CASES = {}


def case(name, expect):
    def register(make):
        CASES[name] = (make, expect)
        return make
    return register


@case("missing", "no such file")
def _(d):
    return d / "nope.npz"


@case("folder", "is a folder")
def _(d):
    (d / "dir.npz").mkdir()
    return d / "dir.npz"


@case("empty", "an empty file (0 bytes)")
def _(d):
    (d / "m.npz").write_bytes(b"")
    return d / "m.npz"


@case("text", "a text file, not a cnnviz model")
def _(d):
    (d / "m.npz").write_text("not a model\n" * 20)
    return d / "m.npz"


@case("single-npy", "a single NumPy array (.npy)")
def _(d):
    np.save(d / "m.npy", np.arange(3))
    return d / "m.npy"


@case("pickle", "a Python pickle")
def _(d):
    (d / "m.npz").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    return d / "m.npz"


@case("object-array", "param/conv1.weight: holds Python objects (a pickle)")
def _(d):
    arrays = lenet_arrays()
    arrays["param/conv1.weight"] = np.array([{"a": 1}], dtype=object)
    return write_npz(d / "m.npz", lenet_header(), arrays)


@case("truncated", "damaged zip archive")
def _(d):
    save(lenet5(), d / "m.npz")
    data = (d / "m.npz").read_bytes()
    (d / "m.npz").write_bytes(data[:len(data) // 2])
    return d / "m.npz"


@case("bad-crc", "damaged")
def _(d):
    save(lenet5(), d / "m.npz")
    data = bytearray((d / "m.npz").read_bytes())
    mid = len(data) // 3
    data[mid:mid + 64] = b"\xff" * 64
    (d / "m.npz").write_bytes(bytes(data))
    return d / "m.npz"


@case("foreign-npz", "unexpected member 'a.npy'")
def _(d):
    np.savez(d / "m.npz", a=np.arange(3))
    return d / "m.npz"


@case("no-header", "no header")
def _(d):
    np.savez(d / "m.npz", **lenet_arrays())
    return d / "m.npz"


@case("header-not-json", "header: not valid JSON")
def _(d):
    return write_npz(d / "m.npz", "not json {")


@case("header-json-array", "not a cnnviz model (.npz) (no \"format\"")
def _(d):
    return write_npz(d / "m.npz", "[1, 2, 3]")


@case("header-not-a-string", "header: expected one string")
def _(d):
    np.savez(d / "m.npz", header=np.arange(4), **lenet_arrays())
    return d / "m.npz"


@case("header-too-long", "header.npy declares")
def _(d):
    return write_npz(d / "m.npz", lenet_header(metadata={"pad": "x" * 1_500_000}))


@case("newer-version", "header.version: made by a newer cnnviz (file version 99")
def _(d):
    return write_npz(d / "m.npz", lenet_header(version=99))


@case("version-abc", 'header.version: expected a whole number >= 1, got the string "abc"')
def _(d):
    return write_npz(d / "m.npz", lenet_header(version="abc"))


@case("version-5000-digits", "header.version: expected a whole number >= 1, got a 5,000-digit")
def _(d):
    text = json.dumps(lenet_header()).replace('"version": 1', '"version": ' + "9" * 5000)
    return write_npz(d / "m.npz", text)


@case("nested-json", "header: JSON nested too deeply")
def _(d):
    text = json.dumps(lenet_header(metadata=None)).replace("null", "[" * 100_000 + "]" * 100_000)
    return write_npz(d / "m.npz", text)


@case("architecture-not-a-list", "header.architecture: expected a list, got an object")
def _(d):
    return write_npz(d / "m.npz", lenet_header(architecture={"type": "Linear"}))


@case("architecture-empty", "header.architecture: no layers")
def _(d):
    return write_npz(d / "m.npz", lenet_header(architecture=[]), {})


@case("too-many-layers", f"header.architecture: 5,000 layers; cnnviz opens models of up to "
                         f"{MAX_LAYERS:,} layers")
def _(d):
    arch = [{"type": "ReLU", "name": f"r{i}", "config": {}} for i in range(5000)]
    return write_npz(d / "m.npz", lenet_header(architecture=arch), {})


@case("layer-not-an-object", "header.architecture[2]: expected an object, got the string")
def _(d):
    return write_npz(d / "m.npz", with_layer_value(2, "ReLU"))


def with_layer_value(i, value):
    h = lenet_header()
    h["architecture"][i] = value
    return h


@case("unknown-layer", 'header.architecture[2].type: unknown layer type "Bogus"')
def _(d):
    return write_npz(d / "m.npz", with_layer(2, type="Bogus"))


@case("unknown-spec-field", 'header.architecture[2]: unknown field "activation"')
def _(d):
    return write_npz(d / "m.npz", with_layer(2, activation="relu"))


@case("config-not-an-object", "header.architecture[1].config: expected an object, got a list")
def _(d):
    return write_npz(d / "m.npz", with_layer(1, config=[1, 6, 5]))


@case("unknown-config-key", 'header.architecture[1].config: unknown field "groups"')
def _(d):
    return write_npz(d / "m.npz", with_config(1, groups=2))


@case("missing-config-key", "header.architecture[1].config.kernel_size: missing")
def _(d):
    h = lenet_header()
    del h["architecture"][1]["config"]["kernel_size"]
    return write_npz(d / "m.npz", h)


@case("kernel-size-abc", 'header.architecture[1].config.kernel_size: expected a whole number '
                         'in [1, 1,024], got the string "abc"')
def _(d):
    return write_npz(d / "m.npz", with_config(1, kernel_size="abc"))


@case("kernel-size-zero", "header.architecture[1].config.kernel_size[0]: expected a whole "
                          "number in [1, 1,024], got 0")
def _(d):
    return write_npz(d / "m.npz", with_config(1, kernel_size=[0, 5]))


@case("negative-channels", "header.architecture[1].config.out_channels: expected a whole number "
                           "in [1, 50,000,000], got -6")
def _(d):
    return write_npz(d / "m.npz", with_config(1, out_channels=-6))


@case("float-features", "config.in_features: expected a whole number in [1, 50,000,000], got 400.0")
def _(d):
    i = [a["type"] for a in architecture(lenet5())].index("Linear")
    return write_npz(d / "m.npz", with_config(i, in_features=400.0))


@case("bias-string", 'config.bias: expected true or false, got the string "yes"')
def _(d):
    return write_npz(d / "m.npz", with_config(1, bias="yes"))


@case("normalize-std-zero", "header.architecture[0].config.std: expected a non-zero number")
def _(d):
    return write_npz(d / "m.npz", with_config(0, std=0))


@case("layer-name-not-a-string", "header.architecture[2].name: expected a string, got 7")
def _(d):
    return write_npz(d / "m.npz", with_layer(2, name=7))


@case("duplicate-names", "header.architecture: two layers are named 'conv1'")
def _(d):
    return write_npz(d / "m.npz", with_layer(4, name="conv1"))


def lenet1998_file(d, **changes):
    """The original LeNet-5 with C3's config changed (its weights as saved)."""
    from cnnviz.engine import lenet5_1998
    from cnnviz.engine.serialization import state_members
    net = lenet5_1998()
    arch = architecture(net)
    arch[6]["config"].update(changes)
    return write_npz(d / "m.npz", lenet_header(architecture=arch), state_members(net))


@case("sparse-table-out-of-range", "header.architecture[6].config.connections[15]: 6 is not "
                                   "an input map (0 to 5)")
def _(d):
    return lenet1998_file(d, connections=[[0, 1, 2]] * 15 + [[0, 6]])


@case("sparse-table-too-short", "header.architecture[6].config.connections: 2 lists, but "
                                "out_channels is 16")
def _(d):
    return lenet1998_file(d, connections=[[0], [1]])


@case("batch-norm-without-running-statistics", "buffer/bn1.running_var: missing (the "
                                               "architecture declares it, shape (6,))")
def _(d):
    from cnnviz.engine import BatchNorm2d, Conv2D, Sequential
    from cnnviz.engine.serialization import state_members
    net = Sequential(Conv2D(1, 6, 5), BatchNorm2d(6))
    members = state_members(net)
    del members["buffer/bn1.running_var"]
    return write_npz(d / "m.npz", lenet_header(architecture=architecture(net)), members)


@case("metadata-not-an-object", "header.metadata: expected an object, got a list")
def _(d):
    return write_npz(d / "m.npz", lenet_header(metadata=[1]))


@case("huge-linear", "declares 3,600,060,000 parameters (14.4 GB as float32); cnnviz opens "
                     f"models of up to {MAX_PARAMS:,} parameters (200 MB as float32)")
def _(d):
    arch = [{"type": "Flatten", "name": "flat", "config": {}},
            {"type": "Linear", "name": "fc1", "config": {"in_features": 60000,
                                                         "out_features": 60000, "bias": True}}]
    return write_npz(d / "m.npz", lenet_header(architecture=arch), {})


@case("huge-in-all", "header.architecture: declares 60,010,000 parameters in all (240 MB as float32)")
def _(d):
    arch = [{"type": "Flatten", "name": "flat", "config": {}}] + [
        {"type": "Linear", "name": f"fc{i}", "config": {"in_features": 6000,
                                                        "out_features": 1000}}
        for i in range(10)]
    return write_npz(d / "m.npz", lenet_header(architecture=arch), {})


@case("bomb-unexpected-name", "unexpected member 'evil.npy'")
def _(d):
    return write_zip(d / "m.npz", [("header.npy", npy_bytes(np.array(json.dumps(lenet_header())))),
                                   ("evil.npy", bomb())])


@case("bomb-as-weights", "member param/fc1.weight.npy declares 3,000,000,128 bytes (3 GB) "
                         "uncompressed; at most 400.1 MB are allowed for it")
def _(d):
    members = [("header.npy", npy_bytes(np.array(json.dumps(lenet_header()))))]
    members += [(f"{k}.npy", npy_bytes(v)) for k, v in lenet_arrays().items()
                if k != "param/fc1.weight"]
    return write_zip(d / "m.npz", members + [("param/fc1.weight.npy", bomb())])


def bomb_under_declared(d):
    """fc1.weight's entry declares the 192,128 bytes its .npy needs, with
    their CRC, but its deflate stream goes on to 3 GB: the zip entry is what
    it declares (zeros), and nothing past it is inflated."""
    members = [("header.npy", npy_bytes(np.array(json.dumps(lenet_header()))))]
    members += [(f"{k}.npy", npy_bytes(v)) for k, v in lenet_arrays().items()
                if k != "param/fc1.weight"]
    lie = Bomb(750_000_000, shape=(120, 400), declared=len(_npy_header((120, 400))) + 4 * 48000)
    return write_zip(d / "m.npz", members + [("param/fc1.weight.npy", lie)])


@case("npy-header-lies", "param/fc1.weight: the array header declares shape (100000, 100000)")
def _(d):
    members = [("header.npy", npy_bytes(np.array(json.dumps(lenet_header()))))]
    for k, v in lenet_arrays().items():
        data = npy_bytes(v)
        if k == "param/fc1.weight":
            data = _npy_header((100000, 100000)) + data[len(_npy_header(v.shape)):]
        members.append((f"{k}.npy", data))
    return write_zip(d / "m.npz", members)


@case("weights-trailing-data", "param/conv1.weight: data continue past the declared shape "
                               "(6, 1, 5, 5)")
def _(d):
    members = [("header.npy", npy_bytes(np.array(json.dumps(lenet_header()))))]
    members += [(f"{k}.npy", npy_bytes(v) + (b"\0" * 8 if k == "param/conv1.weight" else b""))
                for k, v in lenet_arrays().items()]
    return write_zip(d / "m.npz", members)


@case("weights-missing", "param/fc3.bias: missing (the architecture declares it, shape (10,))")
def _(d):
    arrays = lenet_arrays()
    del arrays["param/fc3.bias"]
    return write_npz(d / "m.npz", lenet_header(), arrays)


@case("weights-extra", "param/fc4.weight: not a parameter of this architecture")
def _(d):
    return write_npz(d / "m.npz", lenet_header(),
                     {**lenet_arrays(), "param/fc4.weight": np.zeros((2, 2), np.float32)})


@case("weights-wrong-shape", "param/conv1.weight: shape (6, 1, 3, 3), but the architecture "
                             "declares (6, 1, 5, 5)")
def _(d):
    arrays = lenet_arrays()
    arrays["param/conv1.weight"] = np.zeros((6, 1, 3, 3), np.float32)
    return write_npz(d / "m.npz", lenet_header(), arrays)


def _dtype_case(name, values, expect):
    @case(f"weights-{name}", expect)
    def _(d):
        arrays = lenet_arrays()
        arrays["param/conv2.weight"] = values(arrays["param/conv2.weight"])
        return write_npz(d / "m.npz", lenet_header(), arrays)


_dtype_case("str", lambda w: w.astype(str), "param/conv2.weight: strings (dtype <U")
_dtype_case("int", lambda w: (w * 100).astype(np.int64), "param/conv2.weight: integers (dtype "
            "int64); weights must be float16, float32 or float64")
_dtype_case("bool", lambda w: w > 0, "param/conv2.weight: booleans (dtype bool)")
_dtype_case("complex", lambda w: w.astype(np.complex64), "param/conv2.weight: complex numbers "
            "(dtype complex64)")
_dtype_case("longdouble", lambda w: w.astype(np.longdouble), "param/conv2.weight: floats of an "
            "unsupported width")


# cases that load, and must then be refused by the command line in one line
CLI_ONLY = {
    # the file says it takes 28x28 images (as `cnnviz train --save` records);
    # without that, summary finds the size it takes (test_cli_model_shapes.py)
    "kernel-larger-than-the-image": (
        lambda d: write_npz(d / "m.npz", {**with_config(1, kernel_size=40),
                                          "metadata": {"input_shape": [1, 28, 28]}}, {
            **lenet_arrays(), "param/conv1.weight": np.zeros((6, 1, 40, 40), np.float32)}),
        "cannot take"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_load_refuses_with_one_message_naming_the_file_and_field(tmp_path, name):
    make, expect = CASES[name]
    path = make(tmp_path)
    with pytest.raises(ModelFileError) as info:
        load(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    assert expect in msg, msg
    assert "\n" not in msg and "allow_pickle" not in msg and len(msg) < 400, msg


def test_the_corpus_covers_every_class():
    assert len(CASES) >= 45


def run_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cnnviz", *map(str, args)], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT)


# where `cnnviz eval` says it otherwise: the input the model's layers take
# against the data's (a square side found from the layers)
EVAL_SAYS = {"kernel-larger-than-the-image":
             "the model expects 1x63x63 inputs; the bundled MNIST gives 1x28x28"}


def test_command_line_gives_one_line_for_every_bad_file(tmp_path):
    """`cnnviz summary FILE` and `cnnviz eval FILE` on every file of the corpus."""
    jobs = []
    for name, (make, expect) in {**CASES, **CLI_ONLY}.items():
        d = tmp_path / name
        d.mkdir()
        path = make(d)
        jobs += [(name, command, path, EVAL_SAYS.get(name, expect) if command == "eval"
                  else expect) for command in ("summary", "eval")]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda job: (job, run_cli(job[1], job[2])), jobs))
    problems = []
    for (name, command, path, expect), r in results:
        lines = r.stderr.splitlines()
        ok = (r.returncode == 1 and len(lines) == 1 and lines[0].startswith("cnnviz: error: ")
              and expect in lines[0] and str(path) in lines[0]
              and "Traceback" not in r.stderr and "allow_pickle" not in r.stderr + r.stdout)
        if not ok:
            problems.append(f"{name} ({command}): exit {r.returncode}, stderr {r.stderr[-600:]!r}")
    assert not problems, "\n".join(problems)


# ---- files that load, with a note -----------------------------------------------------
def test_float16_and_float64_weights_are_converted_with_a_note(tmp_path):
    arrays = lenet_arrays()
    arrays["param/conv1.weight"] = arrays["param/conv1.weight"].astype(np.float16)
    arrays["param/fc1.weight"] = arrays["param/fc1.weight"].astype(np.float64)
    path = write_npz(tmp_path / "mixed.npz", lenet_header(), arrays)
    model = load(path)
    assert model.dtype == np.float32
    assert {p.value.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    np.testing.assert_array_equal(model["conv1"].params["weight"],
                                  arrays["param/conv1.weight"].astype(np.float32))
    assert model.load_notes == [
        f"{path}: weight conv1.weight stored as float16, converted exactly to float32",
        f"{path}: weight fc1.weight stored as float64, converted rounded to float32"]


def test_an_all_float64_model_stays_float64_without_a_note(tmp_path):
    net = lenet5().astype(np.float64)
    save(net, tmp_path / "m64.npz")
    back = load(tmp_path / "m64.npz")
    assert back.dtype == np.float64 and back.load_notes == []
    assert load_plain(tmp_path).load_notes == []


def load_plain(tmp_path):
    save(lenet5(), tmp_path / "m.npz")
    return load(tmp_path / "m.npz")


def test_big_endian_float32_weights_load_as_native(tmp_path):
    arrays = {k: v.astype(">f4") for k, v in lenet_arrays().items()}
    model = load(write_npz(tmp_path / "be.npz", lenet_header(), arrays))
    assert model.dtype == np.float32 and model.load_notes == []
    np.testing.assert_array_equal(model["fc1"].params["weight"], arrays["param/fc1.weight"])


def test_nan_weights_load_with_a_note_and_the_command_line_does_not_crash(tmp_path):
    arrays = lenet_arrays()
    arrays["param/fc2.weight"][0, :3] = [np.nan, np.inf, -np.inf]
    path = write_npz(tmp_path / "nan.npz", lenet_header(), arrays)
    model = load(path)
    assert model.load_notes == [f"{path}: NaN or infinite weights in fc2.weight (3): the "
                                f"model's outputs will not be numbers"]
    r = run_cli("summary", path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.splitlines() == [f"cnnviz: warning: {model.load_notes[0]}"]   # said, not silent


# ---- the schema matches the layers -----------------------------------------------------
def test_every_layer_type_has_a_schema_that_declares_its_real_parameters():
    assert set(LAYER_CONFIG) == set(LAYER_TYPES)
    samples = {"Conv2D": {"in_channels": 3, "out_channels": 4, "kernel_size": [2, 3]},
               "Linear": {"in_features": 5, "out_features": 2},
               "MaxPool2D": {"kernel_size": 2}, "AvgPool2D": {"kernel_size": [2, 1]},
               "BatchNorm2d": {"num_features": 3}, "ZeroPad2D": {"padding": [1, 2]},
               "Subsampling2D": {"channels": 4},
               "SparseConv2D": {"in_channels": 3, "out_channels": 2, "kernel_size": 3,
                                "connections": [[0, 2], [1]]}}
    for name, cls in LAYER_TYPES.items():
        for bias in (True, False):
            config = dict(samples.get(name, {}))
            if "bias" in LAYER_CONFIG[name][0]:
                config["bias"] = bias
            layer = cls(**config)
            assert declared_params(name, config) == {k: v.shape for k, v in layer.params.items()}
            allowed, required = LAYER_CONFIG[name]
            assert set(layer.config()) <= set(allowed) and set(required) <= set(layer.config())


# ---- bounded memory ---------------------------------------------------------------------
_BOMB = {}


def bomb():
    """3,000,000,128 bytes of .npy (750 M float32 zeros) in a 2.9 MB deflate stream."""
    if "b" not in _BOMB:
        _BOMB["b"] = Bomb(750_000_000)
    return _BOMB["b"]


def test_the_bomb_is_real(tmp_path):
    """The generated member really inflates to what it declares (first and last MB)."""
    path = write_zip(tmp_path / "b.zip", [("x.npy", bomb())])
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("x.npy")
        assert info.file_size == 3_000_000_128 and path.stat().st_size < 4_000_000
        with z.open(info) as f:
            head = f.read(1 << 20)
    assert head.startswith(b"\x93NUMPY") and b"(750000000,)" in head[:128]
    assert set(head[128:]) == {0}


PEAK_CODE = """
import re, sys, time
from cnnviz.engine import load, ModelFileError
t = time.perf_counter()
try:
    if sys.argv[1] == "--at-rest":
        outcome = "nothing loaded"
    else:
        outcome = "loaded, fc1 all zero: %s" % (load(sys.argv[1])["fc1"].params["weight"] == 0).all()
except ModelFileError as e:
    outcome = str(e)
status = open('/proc/self/status').read()
print(int(re.search(r'VmHWM:\\s*(\\d+) kB', status).group(1)) // 1024,
      round(time.perf_counter() - t, 3), outcome)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("name", ["huge-linear", "huge-in-all", "bomb-as-weights",
                                  "bomb-unexpected-name", "npy-header-lies", "too-many-layers",
                                  "bomb-under-declared"])
def test_declared_sizes_are_refused_before_allocating(tmp_path, name):
    """In a fresh process, whose peak memory (VmHWM, not ru_maxrss, which
    Linux carries over from the forking parent) says whether it allocated."""
    make, expect = CASES.get(name) or (bomb_under_declared, "loaded, fc1 all zero: True")
    path = make(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    baseline = subprocess.run([sys.executable, "-c", PEAK_CODE, "--at-rest"], capture_output=True,
                              text=True, env=env, timeout=60)
    r = subprocess.run([sys.executable, "-c", PEAK_CODE, str(path)], capture_output=True,
                       text=True, timeout=60, env=env)
    peak_mb, seconds, outcome = r.stdout.split(" ", 2)
    base_mb = int(baseline.stdout.split()[0])
    print(f"{name}: peak {peak_mb} MB (python + numpy alone: {base_mb} MB), {seconds} s")
    assert expect in outcome
    assert int(peak_mb) < base_mb + 60, f"peak {peak_mb} MB against {base_mb} MB at rest"
