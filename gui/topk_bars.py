"""Top-k classes as horizontal probability bars."""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QWidget

from gui.style import mix

ROW = 24


class TopKBars(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.items: list[tuple[str, float]] = []
        self.setMinimumWidth(260)

    def set_items(self, items: list[tuple[str, float]]) -> None:
        self.items = list(items)
        self.setMinimumHeight(ROW * max(1, len(self.items)) + 4)
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(320, ROW * max(1, len(self.items)) + 4)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        track = mix(self.palette().color(QPalette.ColorRole.Base), text, 0.12)
        label_w = min(180, self.width() // 2)
        bar_w = self.width() - label_w - 60
        for i, (name, prob) in enumerate(self.items):
            y = 2 + i * ROW
            p.setPen(text)
            p.drawText(QRectF(0, y, label_w - 6, ROW), Qt.AlignRight | Qt.AlignVCenter, name)
            p.setPen(Qt.NoPen)
            p.setBrush(track)
            p.drawRoundedRect(QRectF(label_w, y + 5, bar_w, ROW - 10), 3, 3)
            p.setBrush(QColor("#2563eb" if i == 0 else "#7fa3ef"))
            p.drawRoundedRect(QRectF(label_w, y + 5, max(2.0, bar_w * prob), ROW - 10), 3, 3)
            p.setPen(text)
            p.drawText(QRectF(label_w + bar_w + 4, y, 56, ROW), Qt.AlignLeft | Qt.AlignVCenter,
                       f"{100 * prob:.1f}%")
        p.end()
