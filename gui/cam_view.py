"""The Inference tab's Grad-CAM controls: which class the map explains, and what it shows.

By default the map follows each photo's own top-1 class; picking a class in the list pins it
(until the model changes). The status line says which class a map is for, that one is being
computed, and why a map is blank (the model sees nothing in the photo for that class).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QProgressBar,
                               QVBoxLayout, QWidget)

TOP1 = "each photo's top-1 class"
EMPTY_BELOW = 1e-3  # a map whose hottest point is below this shows nothing


class CamControls(QWidget):
    changed = Signal()  # the tick or the class changed: redraw the selected photo

    def __init__(self, parent=None):
        super().__init__(parent)
        self.box = QCheckBox("Show Grad-CAM for")
        self.combo = QComboBox()
        self.combo.addItem(TOP1, -1)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(80)
        self.busy.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        # room for the longest caption (3 lines) at all times: a caption that wrapped to a
        # second line used to push the controls ~15 px, and clicks missed them
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.status.setFixedHeight(3 * self.status.fontMetrics().lineSpacing() + 4)
        self.box.toggled.connect(lambda _: self.changed.emit())
        self.combo.activated.connect(lambda _: self.changed.emit())
        row = QHBoxLayout()
        row.addWidget(self.box)
        row.addWidget(self.combo, 1)
        row.addWidget(self.busy)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)

    def set_classes(self, classes: list[str]) -> None:
        """A new model: its classes, and back to following each photo's top-1."""
        self.combo.clear()
        self.combo.addItem(TOP1, -1)
        for i, name in enumerate(classes):
            self.combo.addItem(name, i)
        self.combo.setCurrentIndex(0)
        self.status.clear()

    def enabled(self) -> bool:
        return self.box.isChecked()

    def target(self, prediction, classes: list[str]) -> tuple[int, str, bool]:
        """(class index, class name, follows top-1) for the map of ``prediction``."""
        picked = self.combo.currentData()
        if picked is None or picked < 0:
            name = prediction.topk[0][0]
            return classes.index(name), name, True
        return picked, classes[picked], False

    def computing(self, name: str) -> None:
        self.busy.show()
        self.status.setText(f"Computing Grad-CAM for “{name}”…")

    def shown(self, heat, name: str, top1: bool, predicted: str) -> None:
        self.busy.hide()
        which = "its top-1 class" if top1 else "the class picked above"
        if float(heat.max()) < EMPTY_BELOW:
            self.status.setText(
                f"Grad-CAM for “{name}” is empty: nothing in this photo raises the model's "
                f"score for “{name}” (it predicts “{predicted}”). Choose {TOP1!r} or "
                f"another class.")
        else:
            self.status.setText(f"Grad-CAM for “{name}” ({which}): red marks where the "
                                f"model looked.")

    def stopped(self, message: str = "") -> None:
        self.busy.hide()
        self.status.setText(message)
