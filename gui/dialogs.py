"""Message boxes that do not block the event loop (``open()``, not ``exec()``).

A training run keeps updating behind an error dialog, and tests can find the dialog among
the window's children instead of patching Qt.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def _show(parent: QWidget, icon, title: str, text: str) -> QMessageBox:
    box = QMessageBox(icon, title, text, QMessageBox.Ok, parent)
    box.setObjectName("transferlab-message")
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.open()
    return box


def show_error(parent: QWidget, title: str, text: str) -> QMessageBox:
    return _show(parent, QMessageBox.Critical, title, text)


def show_info(parent: QWidget, title: str, text: str) -> QMessageBox:
    return _show(parent, QMessageBox.Information, title, text)
