"""Inference tab (its own issue): drop images, see predictions."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class InferenceTab(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        label = QLabel("Prediction on your own images comes here. For now use:\n"
                       "python main.py predict RUN/model.pt photo.jpg")
        label.setAlignment(Qt.AlignCenter)
        QVBoxLayout(self).addWidget(label)
