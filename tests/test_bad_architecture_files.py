"""A corpus of bad architecture files (.json), generated here, each through
the real reader and the real command line (`cnnviz summary FILE`, `cnnviz
train --arch FILE`): one ArchitectureError / one line "cnnviz: error: FILE:
..." naming the layer and what is wrong, exit status 1, never a traceback.
Impossible shapes are reported at the layer that causes them, with the
arithmetic."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cnnviz.engine import architecture
from cnnviz.engine.architecture import ArchitectureError

ROOT = Path(__file__).resolve().parent.parent


def doc(layers, input_shape=(1, 28, 28), **top):
    return {"format": "cnnviz-architecture", "version": 1, "input_shape": list(input_shape),
            "layers": layers, **top}


def conv(**kw):
    return {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, **kw}


# name -> (file contents: a dict (dumped as JSON) or bytes, the exact message after "FILE: ")
CASES = {
    "unknown_type": (doc([{"type": "Conv3D", "out_channels": 4}]),
                     'layers[0].type: unknown layer type "Conv3D" (known: Conv2D, Linear, '
                     'MaxPool2D, AvgPool2D, ReLU, LeakyReLU, Sigmoid, Tanh, Flatten, Normalize, '
                     'BatchNorm2d, Dropout, GlobalAvgPool2D, ZeroPad2D, Subsampling2D, '
                     'SparseConv2D)'),
    "missing_field": (doc([{"type": "Conv2D", "name": "c1", "kernel_size": 3}]),
                      "c1.out_channels: missing"),
    "negative_kernel": (doc([conv(kernel_size=-3)]),
                        "conv1.kernel_size: expected a whole number in [1, 1,024], got -3"),
    "negative_padding": (doc([conv(padding=[1, -1])]),
                         "conv1.padding[1]: expected a whole number in [0, 1,024], got -1"),
    "fractional_channels": (doc([conv(out_channels=4.5)]),
                            "conv1.out_channels: expected a whole number in [1, 50,000,000], "
                            "got 4.5"),
    "string_stride": (doc([{"type": "MaxPool2D", "kernel_size": 2, "stride": "2"}]),
                      'pool1.stride: expected a whole number in [1, 1,024], got the string "2"'),
    "typo_in_a_field": (doc([{"type": "MaxPool2D", "kernal_size": 2}]),
                        'pool1: unknown field "kernal_size" (known: kernel_size, stride)'),
    "pool_too_big": (doc([conv(kernel_size=5), {"type": "MaxPool2D", "kernel_size": 2},
                          {"type": "MaxPool2D", "kernel_size": 2},
                          {"type": "MaxPool2D", "name": "pool3", "kernel_size": 2}],
                         input_shape=(1, 8, 8)),
                     "pool3: a 2x2 window does not fit a 1x1 map (height: (1 - 2) // 2 + 1 = 0)"),
    "kernel_too_big": (doc([conv(), conv(kernel_size=[3, 7], stride=2)], input_shape=(1, 8, 8)),
                       "conv2: a 3x7 kernel does not fit a 6x6 map (width: (6 - 7) // 2 + 1 = 0)"),
    "dilated_kernel_too_big": (doc([conv(kernel_size=3, dilation=4, padding=1)],
                                   input_shape=(1, 6, 9)),
                               "conv1: a 3x3 kernel with dilation 4 (spanning 9x9) does not fit "
                               "a 6x9 map padded by 1 (8x11) (height: (6 + 2*1 - 4*(3 - 1) - 1)"
                               " // 1 + 1 = 0)"),
    "linear_on_maps": (doc([conv(), {"type": "Linear", "out_features": 10}]),
                       "fc1: Linear needs a vector, but its input is 4 maps of 26x26; put a "
                       "Flatten (or a GlobalAvgPool2D) before it"),
    "conv_on_a_vector": (doc([{"type": "Flatten"}, conv()]),
                         "conv1: Conv2D needs maps (channels, height, width), but its input is a "
                         "vector of 784 values"),
    "channels_disagree": (doc([conv(), conv(in_channels=3)]),
                          "conv2.in_channels: 3, but its input has 4 channels (4 maps of 26x26); "
                          "leave in_channels out to take it from the input"),
    "features_disagree": (doc([{"type": "Flatten"}, {"type": "Linear", "in_features": 700,
                                                     "out_features": 10}]),
                          "fc1.in_features: 700, but its input has 784 values (a vector of 784 "
                          "values); leave in_features out to take it from the input"),
    "batch_norm_disagrees": (doc([conv(), {"type": "BatchNorm2d", "num_features": 6}]),
                             "bn1.num_features: 6, but its input has 4 channels (4 maps of "
                             "26x26); leave num_features out to take it from the input"),
    "dropout_of_one": (doc([{"type": "Dropout", "p": 1}]),
                       "dropout1.p: expected a number in [0, 1), got 1.0"),
    "sparse_table_out_of_range": (doc([{"type": "SparseConv2D", "name": "C3", "out_channels": 2,
                                        "kernel_size": 3, "connections": [[0], [0, 1]]}]),
                                  "C3.connections[1]: 1 is not an input map (0 to 0)"),
    "sparse_table_short": (doc([{"type": "SparseConv2D", "name": "C3", "out_channels": 3,
                                 "kernel_size": 3, "connections": [[0], [0]]}]),
                           "C3.connections: 2 lists, but out_channels is 3 (one list of input "
                           "maps per output map)"),
    "two_layers_one_name": (doc([{"type": "ReLU", "name": "a"}, {"type": "Tanh", "name": "a"}]),
                            "layers[1].name: two layers are named 'a' (layers 1 and 2)"),
    "over_the_budget": (doc([{"type": "Flatten"}, {"type": "Linear", "out_features": 100_000}]),
                        "layer 2 (Linear 'fc1', weights 100,000 x 784) declares 78,500,000 "
                        "parameters (314 MB as float32); cnnviz opens models of up to "
                        "50,000,000 parameters (200 MB as float32)"),
    "input_shape_of_two": (doc([{"type": "ReLU"}], input_shape=(28, 28)),
                           "input_shape: expected [channels, height, width], e.g. [1, 28, 28], "
                           "got a list of 2 items"),
    "input_shape_zero": (doc([{"type": "ReLU"}], input_shape=(1, 0, 28)),
                         "input_shape[1]: expected a whole number in [1, 100,000], got 0"),
    "no_input_shape": ({"layers": [{"type": "ReLU"}]},
                       "input_shape: missing (the input's [channels, height, width], e.g. "
                       "[1, 28, 28])"),
    "no_layers": (doc([]), "layers: no layers"),
    "layer_not_an_object": (doc(["Conv2D"]), 'layers[0]: expected an object, got the string '
                                             '"Conv2D"'),
    "a_model_header": ({"format": "cnnviz-model", "version": 1, "architecture": []},
                       "format: a saved model's header, not an architecture file; give the "
                       "model file (.npz) itself"),
    "newer_version": (doc([{"type": "ReLU"}], version=2),
                      "version: made by a newer cnnviz (file version 2, this one reads 1)"),
    "not_json": (b'{"input_shape": [1, 28, 28], "layers": [',
                 "file: not valid JSON (Expecting value: line 1 column 41 (char 40))"),
    "not_text": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a text file (not UTF-8); an "
                                                       "architecture file is JSON"),
    "a_list": (b"[1, 2]", "file: expected an object, got a list of 2 items"),
    "an_empty_list": (b"[]", "file: expected an object, got an empty list"),
    "too_big": (b" " * (architecture.MAX_FILE_BYTES + 1),
                "larger than 1,000,000 bytes; not an architecture file"),
}


def write(tmp_path, name, contents) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_bytes(contents if isinstance(contents, bytes) else json.dumps(contents).encode())
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_reader_refuses_with_one_message_naming_the_file_and_layer(tmp_path, name):
    contents, expected = CASES[name]
    path = write(tmp_path, name, contents)
    with pytest.raises(ArchitectureError) as info:
        architecture.read(path)
    assert str(info.value) == f"{path}: {expected}"


def test_a_folder_and_a_missing_file(tmp_path):
    with pytest.raises(ArchitectureError, match="is a folder, not an architecture file"):
        architecture.read(tmp_path)
    with pytest.raises(ArchitectureError, match="no such file"):
        architecture.read(tmp_path / "nope.json")


def run_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cnnviz", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=env, cwd=ROOT)


def test_command_line_gives_one_line_for_every_bad_file(tmp_path):
    """`cnnviz summary FILE` and `cnnviz train --arch FILE` on every file of the corpus."""
    jobs = []
    for name, (contents, expected) in CASES.items():
        path = write(tmp_path, name, contents)
        jobs += [(name, path, expected, ("summary", path)),
                 (name, path, expected, ("train", "--arch", path, "--epochs", "1"))]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda job: (job, run_cli(*job[3])), jobs))
    problems = []
    for (name, path, expected, argv), r in results:
        want = f"cnnviz: error: {path}: {expected}"
        if not (r.returncode == 1 and r.stderr.splitlines() == [want] and r.stdout == ""):
            problems.append(f"{name} ({argv[0]}): exit {r.returncode}, stderr {r.stderr[-600:]!r}")
    assert not problems, "\n".join(problems)


def test_a_layer_problem_says_which_layer_for_the_builder():
    """parse() (what the builder calls on each edit) marks the layer at fault."""
    example = CASES["pool_too_big"][0]
    with pytest.raises(architecture.LayerError) as info:
        architecture.parse(example)
    assert (info.value.index, info.value.name) == (3, "pool3")
    with pytest.raises(architecture.LayerError) as info:
        architecture.parse(CASES["channels_disagree"][0])
    assert (info.value.index, info.value.name) == (1, "conv2")
    with pytest.raises(architecture.LayerError) as info:
        architecture.parse(CASES["unknown_type"][0])
    assert info.value.index == 0
