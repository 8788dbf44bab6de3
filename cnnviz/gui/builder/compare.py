"""The builder's side-by-side comparison: the network being built next to a
bundled one, their parameters and multiply-adds in two columns and how many
times fewer one needs. Loading one of a bundled pair (the 1x1 bottleneck of
CNN-NOTES.md: bottleneck-3x3 / bottleneck-1x1) puts its partner beside it.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout

from cnnviz.engine import architecture as A
from cnnviz.gui.builder.model import BuilderModel, Evaluation

# bundled architectures written to be read side by side
PARTNERS = {"bottleneck-3x3": "bottleneck-1x1", "bottleneck-1x1": "bottleneck-3x3"}


def totals(key: str) -> tuple[str, Evaluation]:
    """(title, evaluation) of a bundled architecture."""
    model = BuilderModel()
    model.load(A.read(A.bundled()[key]))
    return model.name or key, model.evaluate()


def ratio_text(mine: int, theirs: int, what: str) -> str:
    """"3.6 times fewer multiply-adds" (this network against the other)."""
    if mine == theirs:
        return f"the same {what}"
    if min(mine, theirs) == 0:
        return ""
    if mine < theirs:
        return f"{theirs / mine:.1f} times fewer {what}"
    return f"{mine / theirs:.1f} times more {what}"


class CompareBox(QGroupBox):
    def __init__(self, parent=None):
        super().__init__("Side by side", parent)
        lay = QVBoxLayout(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Compare with"))
        self.choice = QComboBox()
        self.choice.addItem("(nothing)", None)
        for key in A.bundled():
            self.choice.addItem(key, key)
        self.choice.activated.connect(lambda _i: self.update_totals(self._mine))
        bar.addWidget(self.choice)
        bar.addStretch(1)
        lay.addLayout(bar)
        self.grid = QGridLayout()
        lay.addLayout(self.grid)
        self.cells: dict[tuple[int, int], QLabel] = {}
        for r in range(3):
            for c in range(3):
                label = QLabel()
                if c:
                    label.setAlignment(Qt.AlignmentFlag.AlignRight)
                label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                self.grid.addWidget(label, r, c)
                self.cells[r, c] = label
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setMinimumWidth(100)
        lay.addWidget(self.summary)
        self._mine: Evaluation | None = None
        self._cache: dict[str, tuple[str, Evaluation]] = {}

    def loaded(self, key: str | None) -> None:
        """A network was started or opened (``key``: its bundled name, if one):
        its partner, if it has one, is put beside it."""
        partner = PARTNERS.get(key or "")
        if partner:
            self.choice.setCurrentIndex(self.choice.findData(partner))

    def other(self) -> str | None:
        return self.choice.currentData()

    def update_totals(self, mine: Evaluation | None) -> None:
        """Redraw with this network's evaluation (after every edit)."""
        self._mine = mine
        key = self.other()
        for label in self.cells.values():
            label.setText("")
            label.setVisible(key is not None)     # nothing chosen: the box is one line
        self.summary.setText("")
        self.summary.setVisible(key is not None)
        if key is None or mine is None:
            return
        if key not in self._cache:
            self._cache[key] = totals(key)
        title, theirs = self._cache[key]
        rows = (("", "this network", title), ("parameters", None, None),
                ("multiply-adds", None, None))
        values = ((mine.total_params, theirs.total_params), (mine.total_macs, theirs.total_macs))
        for r, (head, a, b) in enumerate(rows):
            self.cells[r, 0].setText(head)
            if r == 0:
                self.cells[r, 1].setText(f"<b>{a}</b>")
                self.cells[r, 2].setText(f"<b>{b}</b>")
            else:
                x, y = values[r - 1]
                self.cells[r, 1].setText(f"{x:,}" if mine.ok else "\u2014")
                self.cells[r, 2].setText(f"{y:,}")
        if mine.ok:
            parts = [t for t in (ratio_text(mine.total_macs, theirs.total_macs, "multiply-adds"),
                                 ratio_text(mine.total_params, theirs.total_params, "parameters"))
                     if t]
            self.summary.setText(f"This network: {', '.join(parts)} than {key}.")
        else:
            self.summary.setText("This network cannot be built yet: nothing to compare.")
