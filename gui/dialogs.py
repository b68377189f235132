"""Message boxes that do not block the event loop (``open()``, not ``exec()``).

A training run keeps updating behind an error dialog, and tests can find the dialog among
the window's children instead of patching Qt.
"""
from __future__ import annotations

from pathlib import Path

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

    path, _ = QFileDialog.getSaveFileName(parent, title, str(Path(last_dir()) / default_name),
                                          file_filter)
    if not path:
        return
    remember_dir(path)
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


# --- file dialogs that start where the user last was ---------------------------------------
LAST_DIR_KEY = "dialogs/lastDir"


def last_dir() -> str:
    """The folder of the last file or folder chosen in any dialog (the home folder at first)."""
    from gui.settings import open_settings

    saved = open_settings().value(LAST_DIR_KEY)
    return saved if saved and Path(saved).is_dir() else str(Path.home())


def remember_dir(path: str) -> None:
    from gui.settings import open_settings

    p = Path(path)
    open_settings().setValue(LAST_DIR_KEY, str(p if p.is_dir() else p.parent))


def open_file(parent: QWidget, title: str, file_filter: str) -> str:
    from PySide6.QtWidgets import QFileDialog

    path, _ = QFileDialog.getOpenFileName(parent, title, last_dir(), file_filter)
    if path:
        remember_dir(path)
    return path


def open_files(parent: QWidget, title: str, file_filter: str) -> list[str]:
    from PySide6.QtWidgets import QFileDialog

    paths, _ = QFileDialog.getOpenFileNames(parent, title, last_dir(), file_filter)
    if paths:
        remember_dir(paths[0])
    return paths


def open_dir(parent: QWidget, title: str) -> str:
    from PySide6.QtWidgets import QFileDialog

    path = QFileDialog.getExistingDirectory(parent, title, last_dir())
    if path:
        remember_dir(path)
    return path
