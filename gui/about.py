"""Help → About: the version, the libraries TransferLab runs on with their licences, and the
notice Qt's LGPL asks for (with Qt's own About box one click away).

The library list is requirements.txt's (the one home of the runtime dependencies), read with
the installed versions and licences from each package's metadata, in a worker: scanning
package metadata is not a GUI-thread job.
"""
from __future__ import annotations

import re
import sys

from PySide6 import __version__ as PYSIDE_VERSION
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLabel, QMessageBox,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from gui.resources import resource_path

REQUIREMENTS = "requirements.txt"
RELEASE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==")


def app_version() -> str:
    """core/version.py's version when it is there, else the installed package's, else a
    word that says it is a source checkout."""
    try:
        from core import version as v  # noqa: PLC0415 - optional module

        found = getattr(v, "__version__", None) or getattr(v, "VERSION", None)
        if found:
            return str(found)
    except ImportError:
        pass
    from importlib import metadata

    try:
        return metadata.version("transferlab")
    except metadata.PackageNotFoundError:
        return "development version"


def requirement_names(text: str) -> list[str]:
    """The pinned packages of a requirements file."""
    return [m.group(1) for line in text.splitlines() if (m := RELEASE.match(line))]


def licence_of(meta) -> str:
    """A package's licence in a few words, from its metadata (the SPDX expression, a short
    License field, or the classifier)."""
    expression = meta.get("License-Expression")
    if expression:
        return expression
    field = (meta.get("License") or "").strip()
    if field and len(field) <= 80 and "\n" not in field and field.upper() != "UNKNOWN":
        return field
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License ::"):
            return classifier.rsplit("::", 1)[-1].strip()
    return "see the package's licence file"


def libraries(requirements: str | None = None) -> list[tuple[str, str, str]]:
    """(package, installed version, licence) for each runtime requirement."""
    from importlib import metadata

    path = resource_path("..") / REQUIREMENTS if requirements is None else None
    try:
        text = requirements if requirements is not None else path.resolve().read_text()
    except OSError:
        return []
    out = []
    for name in requirement_names(text):
        try:
            meta = metadata.metadata(name)
        except metadata.PackageNotFoundError:
            out.append((name, "not installed", ""))
            continue
        out.append((name, meta["Version"], licence_of(meta)))
    return out


def qt_notice() -> str:
    return (f"TransferLab's window is made with Qt {qVersion()} through PySide6 "
            f"{PYSIDE_VERSION} (Qt for Python), used under the GNU Lesser General Public "
            f"License version 3 (LGPL-3.0). You may replace the Qt and PySide6 libraries this "
            f"program uses with your own, modified build of them; their source code is at "
            f"<a href='https://code.qt.io'>code.qt.io</a> and the licence at "
            f"<a href='https://www.gnu.org/licenses/lgpl-3.0.html'>gnu.org/licenses/"
            f"lgpl-3.0</a>. “About Qt” shows Qt's own notice.")


class AboutDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("About TransferLab")
        self.resize(620, 560)
        head = QLabel(f"<h2>TransferLab {app_version()}</h2>Transfer learning of image "
                      f"classifiers: a desktop app and a command line.<br>Python "
                      f"{sys.version.split()[0]}, Qt {qVersion()}, PySide6 {PYSIDE_VERSION}.")
        head.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Library", "Version", "Licence"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        notice = QLabel(qt_notice())
        notice.setWordWrap(True)
        notice.setOpenExternalLinks(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        about_qt = QPushButton("About Qt")
        buttons.addButton(about_qt, QDialogButtonBox.ButtonRole.HelpRole)
        about_qt.clicked.connect(lambda: QMessageBox.aboutQt(self, "About Qt"))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addWidget(QLabel("Libraries it runs on (installed versions):"))
        layout.addWidget(self.table, 1)
        layout.addWidget(notice)
        layout.addWidget(buttons)
        self._load()

    def _load(self) -> None:
        from core.frontends.qt_worker import TaskWorker

        self.worker = TaskWorker(lambda _state: libraries())
        self.worker.done.connect(self.show_libraries)
        self.worker.start()

    def show_libraries(self, rows) -> None:
        if not rows:  # a build without requirements.txt beside it
            rows = [("(the list comes from requirements.txt, which this copy lacks)", "", "")]
        self.table.setRowCount(len(rows))
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value)  # a long licence expression is cut in its cell
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)

    def done(self, result: int) -> None:  # noqa: A003 - QDialog's name
        self.worker.stop()
        super().done(result)
