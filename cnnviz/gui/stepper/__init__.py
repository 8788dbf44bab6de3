"""The Layer Stepper: forward and backward through a CNN, one layer at a time."""

from cnnviz.gui.stepper.tab import StepperTab

__all__ = ["StepperTab"]
