"""The trained LeNet-5 that ships with the package is what its provenance
file says: the same bytes, the same settings, and at least 99% on MNIST."""

import hashlib
import re
from importlib import resources

from cnnviz.data import load_mnist
from cnnviz.engine import load
from cnnviz.engine.trainer import evaluate_model

MODELS = resources.files("cnnviz") / "resources" / "models"


def test_bundled_lenet5_matches_its_provenance_and_reaches_99_percent():
    path = MODELS / "lenet5-mnist.npz"
    provenance = (MODELS / "PROVENANCE.md").read_text(encoding="utf-8")
    md5 = re.search(r"MD5 of the file: ([0-9a-f]{32})", provenance).group(1)
    assert hashlib.md5(path.read_bytes()).hexdigest() == md5
    model = load(path)
    meta = model.metadata
    assert meta["model"] == "lenet5" and meta["config"]["seed"] == 0
    assert meta["epochs_done"] == 5 and f"{100 * meta['test_accuracy']:.2f}%" in provenance
    test = load_mnist(split="test")
    _, accuracy, _, _ = evaluate_model(model, test.images, test.labels)
    assert accuracy >= 0.99
    assert abs(accuracy - meta["test_accuracy"]) < 0.002   # another CPU's rounding, not another model
