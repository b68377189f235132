"""The main window's menus (File with recent runs, Edit, View with Ctrl+1…7 for the tabs,
Help with About) and the status bar's undo notice."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QPushButton, QWidget

from gui.settings import forget_recent_runs, recent_runs

NOTICE_MS = 30_000  # the undo notice's time in the status bar (Edit → Undo stays longer)


def _action(parent, text: str, slot, shortcut=None) -> QAction:
    action = QAction(text, parent)
    if shortcut:
        action.setShortcut(shortcut)
    action.triggered.connect(slot)
    return action


def build_menus(window) -> dict[str, QMenu]:
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addAction(_action(window, "Open run folder…", lambda: window.open_run(),
                                "Ctrl+O"))
    recent = file_menu.addMenu("Recent runs")
    recent.aboutToShow.connect(lambda: fill_recent(recent, window))
    fill_recent(recent, window)
    file_menu.addSeparator()
    file_menu.addAction(_action(window, "Save charts as PNG…", window.train_tab.save_charts))
    file_menu.addAction(_action(window, "Export metrics CSV…", window.train_tab.export_csv))
    file_menu.addSeparator()
    file_menu.addAction(_action(window, "Quit", window.close, QKeySequence.StandardKey.Quit))
    edit = bar.addMenu("&Edit")
    edit.addAction(window.undo_notice.action)
    view = bar.addMenu("&View")
    from gui.main_window import TAB_TITLES  # (no cycle at import time: called at run time)

    for i, (key, title) in enumerate(TAB_TITLES, start=1):
        view.addAction(_action(window, f"{title} tab", lambda _=False, k=key:
                               window.select_tab(k), f"Ctrl+{i}"))
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(_action(window, "About TransferLab", lambda: show_about(window)))
    help_menu.addAction(_action(window, "About Qt", lambda: _about_qt(window)))
    return {"file": file_menu, "recent": recent, "edit": edit, "view": view,
            "help": help_menu}


def fill_recent(menu: QMenu, window) -> None:
    """The recent runs, newest first; a folder that is gone shows greyed out."""
    menu.clear()
    runs = recent_runs(window.settings)
    for path in runs:
        action = menu.addAction(f"{Path(path).name}   ({Path(path).parent})")
        action.setData(path)
        action.setEnabled(Path(path).is_dir())
        action.triggered.connect(lambda _=False, p=path: window.open_run(p))
    if not runs:
        menu.addAction("No runs opened yet").setEnabled(False)
        return
    menu.addSeparator()
    menu.addAction("Clear the list").triggered.connect(
        lambda: forget_recent_runs(window.settings))


def show_about(window):
    from gui.about import AboutDialog

    window.about = dialog = AboutDialog(window)
    dialog.open()
    return dialog


def _about_qt(window) -> None:
    from PySide6.QtWidgets import QMessageBox

    QMessageBox.aboutQt(window, "About Qt")


class UndoNotice(QWidget):
    """"The preset replaced your own layer ticks … [Undo]" in the status bar, and the same
    undo in Edit → Undo until something else changes the ticks."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.button = QPushButton("Undo")
        self.button.clicked.connect(self.undo)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.button)
        self.action = QAction("Undo", self)
        self.action.setShortcut(QKeySequence.StandardKey.Undo)
        self.action.triggered.connect(self.undo)
        self._undo: Callable[[], None] | None = None
        self._timer = QTimer(self, singleShot=True, interval=NOTICE_MS)
        self._timer.timeout.connect(self.hide)
        self.retire()

    def offer(self, text: str, undo: Callable[[], None], details: str = "") -> None:
        self._undo = undo
        self.label.setText(text)
        self.setToolTip(details)
        self.action.setText("Undo the preset's layer ticks")
        self.action.setEnabled(True)
        self.show()
        self._timer.start()

    def undo(self) -> None:
        undo, self._undo = self._undo, None
        self.retire()
        if undo is not None:
            undo()

    def retire(self) -> None:
        """Nothing to undo (any more)."""
        self._undo = None
        self.action.setText("Undo")
        self.action.setEnabled(False)
        self.hide()
