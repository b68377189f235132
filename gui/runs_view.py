"""Runs view: every run in the runs folder (and folders the user adds), sortable and
filterable; select two or more to overlay their curves and see the settings that differ.
A selected run can be opened, resumed, evaluated, exported (the main window does those),
renamed (a label: the folder keeps its name) or deleted after a confirmation.

Listing reads files, so it runs in a TaskWorker; the summaries come from core.runs.listing.
The comparison pane (curves, differing settings) is gui.run_compare.
"""
from __future__ import annotations

from pathlib import Path

from gui.layouts import STRETCH, column, row
from gui.run_compare import RunComparison, change_text
from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QInputDialog,
                               QLabel, QLineEdit, QMenu, QMessageBox, QPushButton, QSplitter,
                               QTableView, QVBoxLayout, QWidget)

COLUMNS = ("run", "date", "model", "data", "epochs", "best val acc", "wall time", "status",
           "lr", "batch", "image size", "freeze")


class RunsView(QWidget):
    listed = Signal(int)  # number of runs shown
    compared = Signal(list)  # the selected runs' names
    openRequested = Signal(str)  # a run folder to reopen (double click, Open)
    resumeRequested = Signal(str)  # continue the run from its checkpoint
    evaluateRequested = Signal(str)  # evaluate its model.pt on its validation split
    exportRequested = Signal(str)  # export its model.pt

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(True)  # a run folder (or a folder of runs) dropped here is listed
        self.roots: list[str] = []
        self.runs = []
        self.freeze_changes: dict[str, list[dict]] = {}  # run path -> its live changes
        self._select: set[str] = set()  # run paths to select once listed (kept, dropped)
        self.worker = None
        self._again = False
        self.model = QStandardItemModel(0, len(COLUMNS))
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.proxy = QSortFilterProxyModel()
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseInsensitive)
        self.proxy.setSortRole(Qt.UserRole)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda i: self.openRequested.emit(self._run_at(i).path))
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter (model, data, status, …)")
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.add_button = QPushButton("Add folder…")
        self.add_button.clicked.connect(self.choose_folder)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.actions = {}
        for key, text, slot in (
                ("open", "Open", lambda: self.openRequested.emit(self.current().path)),
                ("resume", "Resume", lambda: self.resumeRequested.emit(self.current().path)),
                ("evaluate", "Evaluate",
                 lambda: self.evaluateRequested.emit(self.current().path)),
                ("export", "Export…", lambda: self.exportRequested.emit(self.current().path)),
                ("rename", "Rename…", self.rename), ("delete", "Delete…", self.delete)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            button.setEnabled(False)
            self.actions[key] = button
        self.table.setContextMenuPolicy(Qt.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.comparison = RunComparison()
        self._layout()

    def _layout(self) -> None:
        bar = QHBoxLayout()
        for w in (self.filter, self.refresh_button, self.add_button):
            bar.addWidget(w)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.comparison)
        actions = row(*self.actions.values(), STRETCH)
        split.insertWidget(0, column((self.table, 1), actions))
        v = QVBoxLayout(self)
        v.addLayout(bar)
        v.addWidget(self.message)
        v.addWidget(split, 1)

    # --- listing ----------------------------------------------------------------------------
    def set_roots(self, roots: list[str]) -> None:
        self.roots = list(dict.fromkeys(roots))
        self.refresh()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of runs (or one run)")
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        """List ``folder`` too (a run, or a folder of runs) beside what is listed now; a run
        is selected once listed."""
        from core.paths import runs_dir

        self._select = {str(Path(folder))}
        self.set_roots((self.roots or [str(runs_dir())]) + [str(Path(folder))])

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if any(Path(u.toLocalFile()).is_dir() for u in event.mimeData().urls()
               if u.isLocalFile()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        folders = [u.toLocalFile() for u in event.mimeData().urls()
                   if u.isLocalFile() and Path(u.toLocalFile()).is_dir()]
        if folders:
            event.acceptProposedAction()
            for folder in folders:
                self.add_folder(folder)

    def refresh(self) -> None:
        from core.frontends.qt_worker import TaskWorker

        if self.worker is not None:  # list again when this listing ends (it may predate a
            self._again = True  # rename or a deletion)
            return
        self._again = False
        roots = list(self.roots)

        def task(state):
            from core.runs.listing import list_runs
            from core.paths import runs_dir
            from core.runs import read_freeze_changes

            runs = list_runs(roots or [str(runs_dir())], state)
            return runs, {r.path: read_freeze_changes(r.path) or [] for r in runs}

        self.worker = TaskWorker(task)
        self.worker.done.connect(self.show_runs)
        self.worker.failed.connect(self._failed)  # a bound method: queued into this thread
        self.worker.thread.finished.connect(self._finished)
        self.message.setText("Reading runs…")
        self.worker.start()

    def _failed(self, message: str) -> None:
        self.message.setText(f"Error: {message}")

    def _finished(self) -> None:
        self.worker.thread.wait(1000)
        self.worker = None
        if self._again:
            self.refresh()

    def stop(self) -> None:
        self._again = False
        if self.worker is not None:
            self.worker.stop()

    def show_runs(self, listing) -> None:
        runs, self.freeze_changes = listing
        keep = {r.path for r in self.selected_runs()} | self._select  # a rename keeps it
        self._select = set()
        self.runs = list(runs)
        self.model.setRowCount(0)
        for i, r in enumerate(self.runs):
            values = (r.name, r.date, r.model, r.data, f"{r.epochs}/{r.planned_epochs}",
                      "" if r.best_val_acc is None else f"{r.best_val_acc:.2f}%",
                      _duration(r.wall_s), r.status, r.config.get("lr"),
                      r.config.get("batch_size"), r.config.get("image_size"),
                      freeze_text(r.config.get("freeze"), self.live_changes(r)))
            keys = (r.name, r.date, r.model, r.data, r.epochs, r.best_val_acc or -1.0,
                    r.wall_s, r.status, r.config.get("lr") or 0, r.config.get("batch_size") or 0,
                    r.config.get("image_size") or 0, str(r.config.get("freeze")))
            row = []
            for value, key in zip(values, keys):
                item = QStandardItem("" if value is None else str(value))
                item.setData(key, Qt.UserRole)
                item.setEditable(False)
                row.append(item)
            row[0].setData(i, Qt.UserRole + 1)
            row[0].setToolTip(r.path)
            if r.status_message:
                row[7].setToolTip(r.status_message)
            if self.live_changes(r):
                row[11].setToolTip("\n".join(change_text(c) for c in self.live_changes(r)))
            self.model.appendRow(row)
        self.table.resizeColumnsToContents()
        self._update_actions([])
        self._reselect(keep)
        note = getattr(self, "deleted_note", "")
        self.deleted_note = ""
        n = len(self.runs)
        self.message.setText(f"{n} run{'' if n == 1 else 's'}" + (f". {note}" if note else ""))
        self.listed.emit(len(self.runs))

    def _reselect(self, paths: set[str]) -> None:
        """Select again the runs that were selected before a new listing."""
        from PySide6.QtCore import QItemSelection, QItemSelectionModel

        selection = QItemSelection()
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if self._run_at(index).path in paths:
                selection.select(index, index)
        if not selection.isEmpty():
            self.table.selectionModel().select(
                selection, QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)

    def live_changes(self, run) -> list[dict]:
        """The freeze changes the user made during ``run`` (a tick, a preset while
        training), from its freeze_changes.json."""
        from core.events import USER

        return [c for c in self.freeze_changes.get(run.path, []) if c.get("reason") == USER]

    def _run_at(self, proxy_index):
        source = self.proxy.mapToSource(proxy_index)
        return self.runs[self.model.item(source.row(), 0).data(Qt.UserRole + 1)]

    # --- comparing --------------------------------------------------------------------------
    def selected_runs(self):
        rows = self.table.selectionModel().selectedRows()
        return [self._run_at(i) for i in sorted(rows, key=lambda i: i.row())]

    def current(self):
        """The one selected run (the actions that take one)."""
        runs = self.selected_runs()
        return runs[0] if len(runs) == 1 else None

    def _selection_changed(self, *_):
        runs = self.selected_runs()
        self._update_actions(runs)
        self.compare(runs)

    def _update_actions(self, runs) -> None:
        one = runs[0] if len(runs) == 1 else None
        checkpoint = one is not None and one.has_checkpoint
        model = one is not None and one.has_model
        live = any(r.status == "running" for r in runs)
        enabled = {"open": one is not None, "rename": one is not None,
                   "resume": checkpoint and not live, "evaluate": model, "export": model,
                   "delete": bool(runs) and not live}
        tips = {"resume": "Continue from its checkpoint" if checkpoint else
                "No checkpoint.pt to continue from" if one else "Select one run",
                "delete": "A running run cannot be deleted" if live else
                "Delete the selected runs' files"}
        for key, button in self.actions.items():
            button.setEnabled(enabled[key])
            if key in tips:
                button.setToolTip(tips[key])

    def _context_menu(self, pos) -> None:
        menu = QMenu(self)
        for button in self.actions.values():
            action = menu.addAction(button.text())
            action.setEnabled(button.isEnabled())
            action.triggered.connect(button.click)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    # --- rename and delete ------------------------------------------------------------------
    def rename(self) -> None:
        run = self.current()
        if run is None:
            return
        self._dialog = dialog = QInputDialog(self)
        dialog.setWindowTitle("Rename run")
        dialog.setLabelText(f"A name for {run.path}\n(the folder keeps its name; empty: use "
                            f"the folder's)")
        dialog.setTextValue(run.name)
        dialog.textValueSelected.connect(lambda text, path=run.path: self.set_label(path, text))
        dialog.open()  # not exec(): the event loop keeps running

    def set_label(self, run_dir: str, label: str) -> None:
        from core.errors import TransferLabError
        from core.runs import set_label

        try:
            set_label(run_dir, label)
        except TransferLabError as exc:
            self.message.setText(f"Error: {exc}")
            return
        self.refresh()

    def delete(self) -> None:
        runs = self.selected_runs()
        if not runs:
            return
        names = "\n".join(f"  {r.name}  ({r.path})" for r in runs[:10])
        more = f"\n  … and {len(runs) - 10} more" if len(runs) > 10 else ""
        self._confirm = box = QMessageBox(
            QMessageBox.Warning, "Delete runs",
            f"Delete {len(runs)} run{'s' if len(runs) > 1 else ''}?\n\n{names}{more}\n\n"
            f"Their checkpoints, models, metrics and evaluations are deleted; other files in "
            f"their folders are kept.", QMessageBox.Yes | QMessageBox.Cancel, self)
        box.setDefaultButton(QMessageBox.Cancel)
        box.finished.connect(lambda _r, paths=[r.path for r in runs]: self._delete_confirmed(
            paths))
        box.open()

    def _delete_confirmed(self, paths: list[str]) -> None:
        box, self._confirm = self._confirm, None
        if box is None or box.standardButton(box.clickedButton()) != QMessageBox.Yes:
            return
        self.delete_runs(paths)

    def delete_runs(self, paths: list[str]) -> None:
        from core.errors import TransferLabError
        from core.runs.store import delete_run

        notes = []
        for path in paths:
            try:
                kept = delete_run(path)
            except TransferLabError as exc:
                notes.append(str(exc))
                continue
            if kept:
                notes.append(f"Deleted the run in {path}; kept {len(kept)} other "
                             f"file{'s' if len(kept) > 1 else ''} there ({', '.join(kept[:3])}).")
        self.refresh()
        self.deleted_note = " ".join(notes)

    def compare(self, runs) -> None:
        """Overlays the runs' curves and lists the settings that differ between them (and the
        data's review state, the speed choices)."""
        self.comparison.show_runs(runs, self.live_changes)
        self.compared.emit([r.name for r in runs])


def freeze_text(spec, changes: list[dict]) -> str:
    """The freeze column: the planned spec, and how many times the user changed it live."""
    if not changes:
        return "" if spec is None else str(spec)
    return f"{spec}, then {len(changes)} live change{'s' if len(changes) > 1 else ''}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
