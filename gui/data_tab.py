"""Data tab: choose CIFAR or a folder (dialog or drop), see classes, counts and samples.

Scanning runs core's ``summarize`` in a worker thread (progress shown, cancellable): it lists
the files to count them and decodes only the samples shown. Training decodes the images once,
on its own; the tab never holds a decoded copy of the dataset.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QGridLayout, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QScrollArea, QSplitter, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from core.catalog import ARCHIVE_SUFFIXES, DATASETS
from gui.dialogs import open_dir, show_progress
from gui.image_utils import chw_to_pixmap
from gui.style import error_colour

SAMPLES_PER_CLASS = 8
MAX_CLASSES_SHOWN = 20
THUMB = 56


class DataTab(QWidget):
    sourceChanged = Signal(str)
    scanned = Signal(object)  # core.data.summary.DataSummary
    checkRequested = Signal(str)  # the source to check for wrong labels, duplicates, outliers

    def __init__(self, image_size_provider=lambda: 224, split_provider=lambda: (0.1, 0),
                 parent=None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.image_size_provider = image_size_provider
        # (validation share, seed): the Train form's, so the counts are the run's
        self.split_provider = split_provider
        self._split = None  # the (share, seed) of the summary shown
        self.worker = None
        self.dataset = None  # the last DataSummary shown
        self.torch_ready = False
        self.combo = QComboBox()
        for key, title in DATASETS:
            self.combo.addItem(title, key)
        self.combo.addItem("Image folder or archive…", "folder")
        self.combo.setPlaceholderText("Choose a dataset…")
        self.combo.setCurrentIndex(-1)  # nothing chosen yet: the placeholder shows
        self.folder_btn = QPushButton("Choose folder…")
        self.cancel_btn = QPushButton("Cancel")
        self.path_label = QLabel("Drop a folder here: one sub-folder per class.")
        self.path_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.progress = QProgressBar()
        self.progress.hide()
        self.cancel_btn.hide()
        self.summary = QLabel("Choose a dataset above: CIFAR-10 or CIFAR-100 (downloaded once), "
                              "or a folder of your own images — one sub-folder per class.")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Class", "Train", "Validation"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setToolTip("Double-click a class to browse all its images")
        self.table.cellDoubleClicked.connect(lambda row, _col: self.browse_class(row))
        self.browse_btn = QPushButton("Browse all images of the selected class…")
        self.browse_btn.setEnabled(False)
        self.browse_btn.clicked.connect(lambda: self.browse_class(self.table.currentRow()))
        self.browser = None
        self.check_btn = QPushButton("Check for problems…")
        self.check_btn.setToolTip("Find images in the wrong class, duplicates (photos in both "
                                  "train and validation), outliers and unreadable files; fix "
                                  "them in the Review tab")
        self.check_btn.setEnabled(False)
        self.check_btn.clicked.connect(lambda: self.checkRequested.emit(self.source))
        self.skipped = QPlainTextEdit(readOnly=True)
        self.skipped.setPlaceholderText("Unreadable files will be listed here.")
        self.skipped.setMaximumHeight(90)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setSpacing(3)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_host)
        self._build_layout(scroll)
        self._sample_timer = QTimer(self, interval=0)
        self._sample_timer.timeout.connect(self._next_sample_row)
        self._sample_summary, self._sample_rows = None, iter(())
        self.source = ""
        self.combo.activated.connect(self._combo_chosen)
        self.folder_btn.clicked.connect(self.choose_folder)
        self.cancel_btn.clicked.connect(self.cancel_scan)

    def _build_layout(self, scroll) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Dataset"))
        top.addWidget(self.combo, 1)
        top.addWidget(self.folder_btn)
        left = QVBoxLayout()
        left.addWidget(self.summary)
        left.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.browse_btn, 1)
        buttons.addWidget(self.check_btn)
        left.addLayout(buttons)
        left.addWidget(QLabel("Skipped files"))
        left.addWidget(self.skipped)
        left_w = QWidget()
        left_w.setLayout(left)
        samples = QGroupBox("Samples")
        QVBoxLayout(samples).addWidget(scroll)
        split = QSplitter()
        split.addWidget(left_w)
        split.addWidget(samples)
        split.setSizes([330, 670])
        prog = QHBoxLayout()
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.cancel_btn)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.path_label)
        layout.addLayout(prog)
        layout.addWidget(split, 1)

    # --- choosing ---------------------------------------------------------------------------
    def _combo_chosen(self) -> None:
        key = self.combo.currentData()
        if key == "folder":
            self.choose_folder()
        else:
            self.set_source(key)

    def choose_folder(self) -> None:
        path = open_dir(self, "Choose an image folder")
        if path:
            self.set_source(path)

    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        path = Path(event.mimeData().urls()[0].toLocalFile())
        if path.is_dir() or path.name.endswith(ARCHIVE_SUFFIXES):
            self.set_source(str(path))
            event.acceptProposedAction()
        else:
            self.summary.setText(f"<b>{path.name}</b> is not a folder: drop a folder with one "
                                 "sub-folder per class.")

    def set_source(self, source: str) -> None:
        self.source = source
        known = [self.combo.itemData(i) for i in range(self.combo.count())]
        self.combo.setCurrentIndex(known.index(source) if source in known
                                   else self.combo.count() - 1)
        self.path_label.setText(source if source not in known else "")
        self.sourceChanged.emit(source)
        self.scan()

    # --- scanning ---------------------------------------------------------------------------
    def set_torch_ready(self) -> None:
        self.torch_ready = True
        if self.source:
            self.scan()

    def scan(self) -> None:
        if not self.torch_ready or not self.source:
            return
        from core.data.summary import summarize
        from core.frontends.qt_worker import TaskWorker

        self.cancel_scan()
        source = self.source
        self._split = val_split, seed = self.split_provider()
        self.worker = w = TaskWorker(lambda state: summarize(
            source, THUMB, SAMPLES_PER_CLASS, MAX_CLASSES_SHOWN, val_split, seed, state=state))
        w.progress.connect(self._on_progress)
        w.done.connect(self._on_done)
        w.failed.connect(self._on_failed)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_btn.show()
        self.summary.setText("Scanning…")
        w.start()

    def split_changed(self) -> None:
        """The Train form's validation share or seed changed: the counts follow, when the
        data is split (a folder with its own val/ folder, or CIFAR, is not)."""
        if self.dataset is not None and self.dataset.val_share is not None \
                and self.split_provider() != self._split:
            self.scan()

    def cancel_scan(self) -> None:
        """Cancel and detach the scan: it ends on its own and what it finds is dropped."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        self.progress.hide()
        self.cancel_btn.hide()

    def _on_progress(self, event) -> None:
        show_progress(self.progress, event)
        self.summary.setText(f"{event.stage}…")

    def _on_failed(self, message: str) -> None:
        self.worker = None
        self.progress.hide()
        self.cancel_btn.hide()
        self.dataset = None
        self.check_btn.setEnabled(False)
        self.table.setRowCount(0)
        self._clear_grid()
        self.summary.setText(f"<span style='color:{error_colour()}'>{message}</span>")

    def _on_done(self, summary) -> None:
        self.worker = None
        self.progress.hide()
        self.cancel_btn.hide()
        self.dataset = summary
        self.summary.setText(summary.headline() + validation_note(summary))
        self.table.setRowCount(len(summary.classes))
        for row, name in enumerate(summary.classes):
            values = (name, summary.train_counts[row], summary.val_counts[row])
            for col, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                if col:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(row, col, item)
        self.skipped.setPlainText("\n".join(f"{p}: {why}" for p, why in summary.skipped))
        self._show_samples(summary)
        self.browse_btn.setEnabled(self._is_folder())
        self.check_btn.setEnabled(True)
        self.scanned.emit(summary)

    # --- browsing a class -------------------------------------------------------------------
    def _is_folder(self) -> bool:
        return bool(self.source) and self.source not in {key for key, _ in DATASETS}

    def browse_class(self, row: int):
        """Every image file of the class in ``row`` (folder datasets: CIFAR has no files)."""
        ds = self.dataset
        if row < 0 or not self._is_folder() or ds is None or row >= len(ds.classes):
            return None
        from gui.class_browser import ClassBrowser

        if self.browser is not None:
            self.browser.close()
        self.browser = ClassBrowser(self.source, ds.classes[row], self, ds.val_files,
                                    frozenset(path for path, _ in ds.skipped))
        self.browser.show()
        return self.browser

    def _clear_grid(self) -> None:
        self._sample_timer.stop()
        for row in range(self.grid.rowCount()):
            self.grid.setRowStretch(row, 0)
        while self.grid.count():
            self.grid.takeAt(0).widget().deleteLater()

    def _show_samples(self, summary) -> None:
        """The sample grid, one class row per turn of the event loop: 20 rows of 8
        thumbnails at once held the window for a noticeable moment."""
        self._clear_grid()
        self._sample_rows = iter(list(enumerate(summary.classes[:MAX_CLASSES_SHOWN])))
        self._sample_summary = summary
        self.grid.setColumnStretch(SAMPLES_PER_CLASS + 1, 1)
        self.grid.setRowStretch(min(len(summary.classes), MAX_CLASSES_SHOWN), 1)  # rows at top
        self._sample_timer.start()

    def _next_sample_row(self) -> None:
        summary = self._sample_summary
        row_name = next(self._sample_rows, None) if summary is self.dataset else None
        if row_name is None:
            self._sample_timer.stop()
            return
        row, name = row_name
        title = QLabel(name)
        title.setMinimumWidth(90)
        self.grid.addWidget(title, row, 0)
        for col, image in enumerate(summary.samples.get(row, []), start=1):
            cell = QLabel()
            cell.setPixmap(chw_to_pixmap(image, THUMB))
            self.grid.addWidget(cell, row, col)

def validation_note(summary) -> str:
    """How far a validation accuracy measured on this data can be trusted: each image's
    weight in it, and the 95% interval of a typical 90%."""
    from core.uncertainty import accuracy_interval

    n = sum(summary.val_counts)
    if not n:
        return ""
    lo, hi = accuracy_interval(90.0, n)
    return (f"<br>Validation: {n:,} images, so each is {100 / n:.2g} points of accuracy; "
            f"a 90% measured on them means {lo:.0f}–{hi:.0f}%.")
