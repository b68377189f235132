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


def save_with_dialog(parent: QWidget, title: str, default_name: str, file_filter: str,
                     write) -> None:
    """Ask where to save, call ``write(path)``; a user-facing error becomes a dialog."""
    from PySide6.QtWidgets import QFileDialog

    from core.errors import TransferLabError

    path, _ = QFileDialog.getSaveFileName(parent, title, default_name, file_filter)
    if not path:
        return
    try:
        write(path)
    except TransferLabError as exc:
        show_error(parent, "Could not save", str(exc))


def show_progress(bar, event) -> None:
    """A core ProgressEvent on a QProgressBar: counted when the total is known, busy if not."""
    if event.total:
        bar.setRange(0, event.total)
        bar.setValue(event.done)
        bar.setFormat(f"{event.stage}: %v / %m")
    else:
        bar.setRange(0, 0)
