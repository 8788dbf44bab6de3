"""The Training tab: live training of LeNet-5 on MNIST (issue 6).

``TrainingTab`` is imported on first use, so that the Qt-free parts
(``session``, ``probe``) can be imported without Qt."""

__all__ = ["TrainingTab"]


def __getattr__(name):
    if name == "TrainingTab":
        from cnnviz.gui.training.tab import TrainingTab
        return TrainingTab
    raise AttributeError(name)
