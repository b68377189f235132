"""Review: a check's findings as thumbnail grids by reason, most likely first, and the
actions that fix them: relabel, remove (into the dataset's quarantine folder), keep, undo and
redo, on one or many selected images, from buttons and the keyboard.

The check and every change run in worker threads (core.doctor, core.review); the journal
behind the changes survives restarts, so undo works after the app was closed. A dataset
that cannot be changed (read-only, an archive, CIFAR) is reviewed read-only, with the reason
on a banner. ``datasetChanged`` tells the window to rescan the Data tab after a change.
"""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMenu,
                               QProgressBar, QPushButton, QSplitter, QTabWidget,
                               QToolButton, QVBoxLayout, QWidget)

from gui import review_entries as E
from gui.review_actions import ReviewActions
from gui.dialogs import show_progress
from gui.layouts import STRETCH, column, row
from gui.review_thumbs import THUMB

MAX_SHOWN = 300  # grid items at once (the most likely first; more appear as these go)


def thumbnail_grid() -> QListWidget:
    """A grid of thumbnails wide enough for a pair side by side, many selectable."""
    grid = QListWidget()
    grid.setViewMode(QListWidget.IconMode)
    grid.setIconSize(QSize(2 * THUMB + 4, THUMB))
    grid.setGridSize(QSize(2 * THUMB + 44, THUMB + 48))
    grid.setSpacing(6)
    grid.setResizeMode(QListWidget.Adjust)
    grid.setMovement(QListWidget.Static)
    grid.setWordWrap(True)
    grid.setSelectionMode(QListWidget.ExtendedSelection)
    return grid


class ReviewTab(ReviewActions, QWidget):
    datasetChanged = Signal(str)  # the files of this source changed
    openImage = Signal(str, str)  # (image file, the check's model file or "")
    checked = Signal(object)  # core.doctor.report.CheckReport
    settledMessage = Signal(str)  # an interrupted change was settled on opening a dataset

    def __init__(self, parent=None):
        super().__init__(parent)
        self.report = self.session = self.map = None
        self.source, self.model_file, self.reason = "", "", E.LABEL
        self.entries: dict[str, list[E.Entry]] = {}
        self.visible: dict[str, list[E.Entry]] = {}
        self.shown: list[E.Entry] = []
        self.thumbs: dict[tuple[str, str], object] = {}
        self.workers: dict[str, object] = {}
        self._build()
        self._shortcuts()

    # --- layout -------------------------------------------------------------------------
    def _build(self) -> None:
        self.headline = QLabel("Press <b>Check</b> on the Data tab to look for images in the "
                               "wrong class, duplicates, outliers and unreadable files.")
        self.headline.setWordWrap(True)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("QLabel { background: #fff4ce; color: #4a3b00; "
                                  "padding: 6px; border-radius: 3px; }")
        self.banner.hide()
        self.progress, self.cancel_btn = QProgressBar(), QPushButton("Cancel")
        self.progress.hide()
        self.cancel_btn.hide()
        self.cancel_btn.clicked.connect(self.cancel_check)
        self.reasons = QListWidget()
        self.reasons.currentRowChanged.connect(self._reason_chosen)
        self.help = QLabel()
        self.help.setWordWrap(True)
        self.grid = thumbnail_grid()
        self.grid.itemSelectionChanged.connect(self._update_buttons)
        self.grid.itemDoubleClicked.connect(self._open_item)
        self.relabel_btn = QPushButton("Relabel as suggested  (R)")
        self.relabel_btn.clicked.connect(self.relabel_suggested)
        self.relabel_to = QToolButton()
        self.relabel_to.setText("Relabel as…")
        self.relabel_to.setPopupMode(QToolButton.InstantPopup)
        self.relabel_to.setMenu(QMenu(self.relabel_to))
        self.remove_btn = QPushButton("Remove  (Del)")
        self.remove_btn.clicked.connect(self.remove_selected)
        self.keep_btn = QPushButton("Keep  (K)")
        self.keep_btn.clicked.connect(self.keep_selected)
        self.undo_btn, self.redo_btn = QPushButton("Undo"), QPushButton("Redo")
        self.undo_btn.clicked.connect(self.undo)
        self.redo_btn.clicked.connect(self.redo)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self._arrange()
        self._update_buttons()

    def _arrange(self) -> None:
        actions = row(self.relabel_btn, self.relabel_to, self.remove_btn, self.keep_btn,
                      STRETCH, self.undo_btn, self.redo_btn)
        right = column(self.help, (self.grid, 1), actions, self.status)
        split = QSplitter()
        split.addWidget(self.reasons)
        split.addWidget(right)
        split.setSizes([230, 900])
        self.views = QTabWidget()
        self.views.addTab(split, "Findings")
        self.map_host = QWidget()
        QVBoxLayout(self.map_host)
        self.views.addTab(self.map_host, "Map")
        self.views.currentChanged.connect(self._view_chosen)
        top = QHBoxLayout()
        top.addWidget(self.progress, 1)
        top.addWidget(self.cancel_btn)
        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addWidget(self.banner)
        layout.addLayout(top)
        layout.addWidget(self.views, 1)

    def _shortcuts(self) -> None:
        keys = [("R", self.relabel_suggested), (QKeySequence.Delete, self.remove_selected),
                ("K", self.keep_selected), (QKeySequence.Undo, self.undo),
                (QKeySequence.Redo, self.redo), ("Ctrl+Y", self.redo)]
        keys += [(str(n), lambda n=n: self.relabel_as_index(n - 1)) for n in range(1, 10)]
        for key, slot in keys:
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)

    # --- checking -----------------------------------------------------------------------
    def settle(self, source: str) -> None:
        """A dataset was chosen (at start, too): a change a crash interrupted is finished
        or put back first, and the Data tab counts again if files moved."""
        from core.review.session import settle_pending

        self._start("settle", lambda _s: (source, settle_pending(source)), self._settled,
                    lambda _m: None)

    def _settled(self, result) -> None:
        self.workers.pop("settle", None)
        source, message = result
        if message:
            self.status.setText(message)
            self.datasetChanged.emit(source)
            self.settledMessage.emit(message)

    def start_check(self, source: str, model_file: str = "") -> None:
        from core.doctor.check import check_for_review

        self.cancel_check()
        self.source, self.model_file = source, model_file
        self.headline.setText(f"Checking {source}…")
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_btn.show()
        self._start("check", lambda state: check_for_review(source, model_file or None, state),
                    self._checked, self._check_failed, progress=True)

    def cancel_check(self) -> None:
        for role in ("check", "thumbs"):
            w = self.workers.pop(role, None)
            if w is not None:
                w.stop()
        self.progress.hide()
        self.cancel_btn.hide()

    def _check_failed(self, message: str) -> None:
        self.cancel_check()
        self.headline.setText(f"<span style='color:#b00020'>{message}</span>")

    def _checked(self, result) -> None:
        self.workers.pop("check", None)
        self.progress.hide()
        self.cancel_btn.hide()
        report, session = result
        if self.session is not None:
            self.session.close()
        self.report, self.session = report, session
        self.entries = E.entries_from(report)
        self.thumbs.clear()
        network = report.info.get("network", "")
        self.model_file = network[4:] if network.startswith("run:") else ""
        if self.model_file:
            self.status.setText(f"Features and predictions from the run "
                                f"{self.model_file} (trained on this dataset).")
        elif report.label_advice():
            self.status.setText(report.label_advice())
        why = report.editable or (session.read_only if session else "")
        self.banner.setText(f"Reviewed read-only: {why}." if why else "")
        self.banner.setVisible(bool(why))
        if session is not None and session.recovered:
            self.status.setText(session.recovered)
        menu = self.relabel_to.menu()
        menu.clear()
        for n, name in enumerate(report.classes):
            act = menu.addAction(f"{name}" + (f"  ({n + 1})" if n < 9 else ""))
            act.triggered.connect(lambda _=False, n=n: self.relabel_as_index(n))
        self.refresh()
        if self.map is not None:
            self.map.set_report(report)
        self.checked.emit(report)

    # --- showing ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Recount what is left to review and show the current reason again."""
        moved = E.moved_files(self.session.state.done) if self.session else set()
        kept = self.session.kept if self.session else set()
        self.visible = {k: [e for e in v if not E.handled(e, moved, kept)]
                        for k, v in self.entries.items()}
        done = sum(len(v) - len(self.visible[k]) for k, v in self.entries.items()
                   if k != E.SELECTION)
        if self.report is not None:
            self.headline.setText(f"<b>{self.report.headline()}</b>"
                                  + (f" &nbsp; {done} reviewed." if done else ""))
        self.reasons.blockSignals(True)
        self.reasons.clear()
        val = self.report.info.get("val_name", "val") if self.report else "val"
        for kind, title in E.TITLES.items():
            n = len(self.visible.get(kind, []))
            if n or kind in (E.LABEL, E.LEAKAGE):
                item = QListWidgetItem(f"{title.format(val=val)}  ({n})")
                item.setData(Qt.UserRole, kind)
                self.reasons.addItem(item)
        kinds = [self.reasons.item(i).data(Qt.UserRole) for i in range(self.reasons.count())]
        self.reasons.setCurrentRow(kinds.index(self.reason) if self.reason in kinds else 0)
        self.reasons.blockSignals(False)
        self._show(kinds[self.reasons.currentRow()] if kinds else E.LABEL)

    def _reason_chosen(self, row: int) -> None:
        if row >= 0:
            self._show(self.reasons.item(row).data(Qt.UserRole))

    def _show(self, kind: str) -> None:
        current = max(0, self.grid.currentRow())
        self.reason = kind
        entries = self.visible.get(kind, [])
        self.shown = entries[:MAX_SHOWN]
        more = (f" Showing the {MAX_SHOWN} most likely of {len(entries)}."
                if len(entries) > MAX_SHOWN else "")
        flags = [f.message for f in self.report.set_flags] if self.report and kind == E.SET \
            else []
        self.help.setText(" ".join([E.HELP[kind], *flags]) + more)
        self.grid.clear()
        for entry in self.shown:
            item = QListWidgetItem(entry.caption)
            item.setToolTip(f"{entry.rel}" + (f"\nsame as {entry.other}" if entry.other else "")
                            + (f"\nscore {entry.score:.2f}" if entry.score else ""))
            image = self.thumbs.get((entry.rel, entry.other))
            if image is not None and not image.isNull():
                item.setIcon(QIcon(QPixmap.fromImage(image)))
            self.grid.addItem(item)
        if self.shown:
            self.grid.setCurrentRow(min(current, len(self.shown) - 1))
        self._load_thumbs()
        self._update_buttons()

    def _load_thumbs(self) -> None:
        from gui.review_thumbs import thumbnails_task

        todo = [(e.rel, e.other) for e in self.shown if (e.rel, e.other) not in self.thumbs]
        if not todo or self.report is None:
            return
        source, root = self.report.source, self.report.root
        self._start("thumbs", lambda state: thumbnails_task(source, root, todo, state),
                    self._thumbs_ready, lambda _m: None)

    def _thumbs_ready(self, images: dict) -> None:
        self.workers.pop("thumbs", None)
        self.thumbs.update(images)
        for row, entry in enumerate(self.shown):
            image = images.get((entry.rel, entry.other))
            item = self.grid.item(row)
            if image is not None and item is not None:
                if image.isNull():
                    item.setText(item.text() + "\n(unreadable)")
                else:
                    item.setIcon(QIcon(QPixmap.fromImage(image)))

    def _open_item(self, item) -> None:
        entry = self.shown[self.grid.row(item)]
        if self.report is not None and self.report.root:
            self.openImage.emit(self.report.abspath(entry.rel), self.model_file)

    # --- the map ------------------------------------------------------------------------
    def _view_chosen(self, index: int) -> None:
        if index != 1 or self.map is not None:
            return
        from gui.dataset_map import DatasetMap

        self.map = DatasetMap()
        self.map_host.layout().addWidget(self.map)
        self.map.selected.connect(self.review_selection)
        self.map.clicked.connect(self._map_clicked)
        if self.report is not None:
            self.map.set_report(self.report)

    def review_selection(self, rows: list[int]) -> None:
        """Points chosen on the map, listed under "Selected on the map" for the actions."""
        if self.report is None:
            return
        self.entries[E.SELECTION] = E.selection_entries(self.report, rows)
        self.reason = E.SELECTION
        self.refresh()
        self.grid.selectAll()
        self.views.setCurrentIndex(0)

    def _map_clicked(self, row: int) -> None:
        if self.report is not None and self.report.root:
            self.openImage.emit(self.report.abspath(self.report.rows[row]), self.model_file)

    # --- workers ------------------------------------------------------------------------
    def _start(self, role: str, fn, on_done, on_failed, progress: bool = False) -> None:
        from core.frontends.qt_worker import TaskWorker

        old = self.workers.pop(role, None)
        if old is not None:
            old.stop()
        self.workers[role] = w = TaskWorker(fn)
        w.done.connect(on_done)
        w.failed.connect(on_failed)
        if progress:
            w.progress.connect(self._on_progress)
        w.start()

    def _on_progress(self, event) -> None:
        show_progress(self.progress, event)
        self.headline.setText(f"Checking {self.source}: {event.stage}…")

    def shutdown(self) -> None:
        self.cancel_check()
        if self.map is not None:
            self.map.stop()
        if self.session is not None and "act" not in self.workers:
            self.session.close()
