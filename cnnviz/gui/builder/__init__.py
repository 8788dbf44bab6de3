"""The Network builder tab: build a network layer by layer, see its table live."""

from cnnviz.gui.builder.tab import NetworkBuilderTab

__all__ = ["NetworkBuilderTab"]
