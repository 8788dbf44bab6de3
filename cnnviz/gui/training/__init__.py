"""The Training tab: live training of LeNet-5 on MNIST (issue 6)."""

from cnnviz.gui.training.tab import TrainingTab

__all__ = ["TrainingTab"]
