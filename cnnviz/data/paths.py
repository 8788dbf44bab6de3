"""Where the bundled data lives.

Resources sit inside the package (cnnviz/resources/) so that a plain
`pip install .` ships them next to the code.
"""

from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent.parent / "resources"
MNIST_DIR = RESOURCES_DIR / "mnist"
IMAGES_DIR = RESOURCES_DIR / "images"
