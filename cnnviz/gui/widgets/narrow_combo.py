"""Combo boxes that take the width of their column, not of their longest entry."""

from __future__ import annotations

from PyQt6.QtWidgets import QComboBox


def narrow(combo: QComboBox, chars: int = 12) -> QComboBox:
    """A combo box as wide as ``chars`` characters at least; its list still
    shows every entry whole, and the box itself grows with its column."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo
