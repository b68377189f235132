"""Evaluate tab: accuracy, per-class table, confusion-matrix heat map; click a cell (or a most
confused pair) for that cell's images sorted by loss; "Top losses" over the whole set; Export.

Evaluation and export run in TaskWorkers; this tab only presents results (core's Evaluation).
The image list under the matrix, with its thumbnails, is gui.loss_images.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QProgressBar, QPushButton, QSplitter,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from gui.dialogs import show_progress
from gui.heat_map import HeatMap
from gui.loss_images import MAX_THUMBS, LossImages


class EvaluateTab(QWidget):
    evaluated = Signal(object)  # Evaluation
    listed = Signal(str)  # what the image list now shows
    openImage = Signal(str, str)  # image path, model file: show it in the Inference tab

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(True)  # a model file dropped here is the one evaluated
        self.model_file = ""
        self.data_folder: str | None = None
        self.evaluation = None
        self.worker = None
        self.torch_ready = False
        self._build()

    def _build(self) -> None:
        self.model_label = QLabel("No model: train one, or choose a model.pt")
        self.model_button = QPushButton("Model…")
        self.data_button = QPushButton("Data: the run's validation split")
        self.run_button = QPushButton("Evaluate")
        self.cancel_button = QPushButton("Cancel")
        self.export_button = QPushButton("Export…")
        self.progress = QProgressBar()
        self.progress.hide()  # shown while something runs: no stale "stage: 0 / 1"
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.accuracy = QLabel("")
        self.accuracy.setStyleSheet("font-size: 16pt; font-weight: bold")
        self.normalised = QCheckBox("Normalise by true class")
        self.heat = HeatMap()
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["class", "precision", "recall", "F1", "support"])
        self.table.horizontalHeader().setSortIndicator(-1, Qt.AscendingOrder)  # class order
        self.table.setSortingEnabled(True)
        self.pairs = QListWidget()
        self.top_button = QPushButton("Top losses")
        self.images_title = QLabel("")
        self.images = LossImages()
        for b in (self.run_button, self.export_button):
            b.setEnabled(False)
        self.cancel_button.setEnabled(False)
        self._connect()
        self._layout()

    def _connect(self) -> None:
        self.model_button.clicked.connect(self.choose_model)
        self.data_button.clicked.connect(self.choose_data)
        self.run_button.clicked.connect(self.evaluate)
        self.cancel_button.clicked.connect(self.stop)
        self.export_button.clicked.connect(self.choose_export)
        self.normalised.toggled.connect(self._draw_matrix)
        self.heat.cellClicked.connect(lambda t, p: self.show_cell(t, p))
        self.pairs.itemClicked.connect(lambda item: self.show_cell(*item.data(Qt.UserRole)))
        self.top_button.clicked.connect(self.show_top_losses)
        # itemActivated covers a double click (and Enter): connecting itemDoubleClicked too
        # opened every image twice
        self.images.itemActivated.connect(self._open_image)

    def _layout(self) -> None:
        top = QHBoxLayout()
        for w in (self.model_label, self.model_button, self.data_button, self.run_button,
                  self.cancel_button, self.export_button):
            top.addWidget(w)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.accuracy)
        lv.addWidget(self.normalised)
        lv.addWidget(self.heat, 3)
        lv.addWidget(self.table, 2)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addWidget(QLabel("Most confused (true → predicted): click to see the images"))
        rv.addWidget(self.pairs, 1)
        rv.addWidget(self.top_button)
        rv.addWidget(self.images_title)
        rv.addWidget(self.images, 4)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        outer = QVBoxLayout(self)
        outer.addLayout(top)
        outer.addWidget(self.progress)
        outer.addWidget(self.message)
        outer.addWidget(split, 1)

    # --- inputs -----------------------------------------------------------------------------
    def set_torch_ready(self) -> None:
        self.torch_ready = True
        self.set_model(self.model_file)

    def set_model(self, model_file: str) -> None:
        """Use ``model_file``; a saved evaluation beside it is shown at once (another
        model's results never stay on screen)."""
        if (model_file or "") != self.model_file:
            self.clear_results()
        self.model_file = model_file or ""
        self.model_label.setText(Path(model_file).name + f" ({Path(model_file).parent.name})"
                                 if model_file else "No model")
        ready = bool(model_file) and self.torch_ready and self.worker is None
        self.run_button.setEnabled(ready)
        self.export_button.setEnabled(ready)
        if ready:
            self._show_saved()

    def _show_saved(self) -> None:
        from core.errors import TransferLabError
        from core.inference.evaluate import load_evaluation
        from core.runs.evaluations import saved_evaluations

        saved = saved_evaluations(Path(self.model_file).parent)
        if saved:
            try:
                self.show_evaluation(load_evaluation(saved[0]))
                self.message.setText(f"Saved evaluation: {saved[0].name}")
            except TransferLabError as exc:
                self.message.setText(str(exc))

    def clear_results(self, note: str = "") -> None:
        """Nothing of a previous evaluation stays on screen (``note`` says what comes)."""
        self.evaluation = None
        self.accuracy.setText(note)
        self.accuracy.setToolTip("")
        self.table.setRowCount(0)
        self.pairs.clear()
        self.heat.clear_matrix()
        self._list_images([], "")

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if self._dropped_model(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt's name
        path = self._dropped_model(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.set_model(path)

    @staticmethod
    def _dropped_model(mime) -> str | None:
        from core.catalog import MODEL_FILE_SUFFIXES

        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        return next((p for p in paths if p.lower().endswith(MODEL_FILE_SUFFIXES)), None)

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "",
                                              "Model (*.pt *.onnx *.pt2)")
        if path:
            self.set_model(path)

    def choose_data(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled folder (one sub-folder per "
                                                  "class); cancel = the run's validation split")
        self.set_data(folder or None)

    def set_data(self, folder: str | None) -> None:
        """Evaluate on ``folder`` (class sub-folders), or on the run's validation split."""
        self.data_folder = folder
        self.data_button.setText(f"Data: {Path(folder).name}" if folder else
                                 "Data: the run's validation split")

    # --- work -------------------------------------------------------------------------------
    def idle(self) -> bool:
        """No evaluation or export running (one at a time); says so when busy."""
        if self.worker is not None:
            self.message.setText("Busy: wait for the current evaluation or export, or cancel it.")
            return False
        return True

    def evaluate(self) -> None:
        from core.frontends.qt_worker import TaskWorker

        if not self.idle():
            return
        model, data = self.model_file, self.data_folder
        self.clear_results(f"Evaluating {Path(model).parent.name} on "
                           f"{Path(data).name if data else 'its validation split'}…")

        def task(state):
            from core.inference.evaluate import evaluate_model, save_evaluation

            ev = evaluate_model(model, data, state=state)
            save_evaluation(ev, Path(model).parent)
            return ev

        self._start(TaskWorker(task), self._evaluated)

    def choose_export(self) -> None:
        from core.inference.export import FORMATS

        if not self.idle():
            return
        default = str(Path(self.model_file).with_suffix(".onnx"))
        filters = {f"{title} (*{suffix})": fmt for fmt, (suffix, title) in FORMATS.items()}
        path, chosen = QFileDialog.getSaveFileName(self, "Export model", default,
                                                   ";;".join(filters))
        if path:
            fmt = next((f for f, (suffix, _t) in FORMATS.items() if path.endswith(suffix)),
                       None)
            if fmt is None:  # no known suffix: the chosen filter's is added
                fmt = filters.get(chosen, "onnx")
                path += FORMATS[fmt][0]
            if Path(path).resolve() == Path(self.model_file).resolve():
                self.message.setText("Error: choose another file than the model itself.")
                return
            self.export_to(path, fmt)

    def export_to(self, path: str, fmt: str = "onnx") -> None:
        from core.frontends.qt_worker import TaskWorker

        model, lines = self.model_file, []

        def task(state):  # its steps show on the bar and under it; Cancel stops between them
            from core.inference.export import export_model

            export_model(model, fmt, path, log=lines.append, state=state)
            return lines

        self._export_path = path
        self._start(TaskWorker(task), self._exported)

    # Worker signals connect to bound methods, never lambdas: PySide runs a lambda in the
    # emitting (worker) thread, while a method of this QObject is queued into the GUI thread.
    def _start(self, worker, on_done) -> None:
        self.worker = worker
        worker.progress.connect(self._on_progress)
        worker.done.connect(on_done)
        worker.failed.connect(self._failed)
        worker.thread.finished.connect(self._finished)
        for b in (self.run_button, self.export_button):
            b.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.message.setText("Working…")
        self.progress.setFormat("%p%")
        self.progress.setRange(0, 0)
        self.progress.show()
        worker.start()

    def _finished(self) -> None:
        self.worker.thread.wait(1000)  # finished is emitted just before the thread ends
        self.worker = None
        self.cancel_button.setEnabled(False)
        self.progress.hide()
        if self.evaluation is None and self.accuracy.text().startswith("Evaluating"):
            self.accuracy.setText("")  # failed or cancelled: no "Evaluating…" left behind
        for b in (self.run_button, self.export_button):
            b.setEnabled(bool(self.model_file) and self.torch_ready)

    def _on_progress(self, event) -> None:
        """The bar, and the step in words (export: exporting, then verifying on N images)."""
        show_progress(self.progress, event)
        counted = f" {event.done} / {event.total}" if event.total else ""
        self.message.setText(f"{event.stage}…{counted}")

    def _failed(self, message: str) -> None:
        self.message.setText(f"Error: {message}")

    def _exported(self, lines) -> None:
        self.message.setText(f"Exported {self._export_path}. " + " ".join(lines))

    def _evaluated(self, ev) -> None:
        note = f" {ev.split_note}" if ev.split_note else ""  # the data moved since the run
        self.message.setText(f"Evaluated {len(ev.images)} images; saved in the run folder."
                             f"{note}")
        self.show_evaluation(ev)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.message.setText("Cancelled: nothing was saved or written.")

    # --- presenting -------------------------------------------------------------------------
    def show_evaluation(self, ev) -> None:
        from core.inference.evaluate import RUN_VAL
        from core.uncertainty import accuracy_interval, format_accuracy

        self.evaluation = ev
        n = len(ev.images)
        lo, hi = accuracy_interval(ev.accuracy, n)
        self.accuracy.setText(f"accuracy: {format_accuracy(ev.accuracy, n)}  ({n} images, "
                              f"{'validation split' if ev.source == RUN_VAL else ev.source})")
        self.accuracy.setToolTip(f"95% interval {lo:.1f}–{hi:.1f}%: the accuracy on other "
                                 f"images like these may lie anywhere in it (one image here "
                                 f"is {100 / max(n, 1):.1f} points). More images narrow it.")
        self.table.setSortingEnabled(False)
        rows = ev.per_class()
        self.table.setRowCount(len(rows))
        for i, m in enumerate(rows):
            for j, key in enumerate(("class", "precision", "recall", "f1", "support")):
                item = QTableWidgetItem()
                item.setData(Qt.DisplayRole, m[key] if key in ("class", "support")
                             else round(m[key], 3))
                self.table.setItem(i, j, item)
        self.table.setSortingEnabled(True)
        self.pairs.clear()
        for t, p, k in ev.most_confused(20):
            item = QListWidgetItem(f"{t} → {p}: {k}")
            item.setData(Qt.UserRole, (ev.classes.index(t), ev.classes.index(p)))
            self.pairs.addItem(item)
        self._draw_matrix()
        self._list_images([], "")  # "true a → predicted b" was about the previous results
        self.evaluated.emit(ev)

    def _draw_matrix(self) -> None:
        ev = self.evaluation
        if ev is None:
            return
        if self.normalised.isChecked():
            self.heat.show_matrix(ev.normalised(), ev.classes, "{:.2f}")
        else:
            self.heat.show_matrix(ev.confusion, ev.classes, "{:.0f}")

    def show_cell(self, true: int, predicted: int) -> None:
        ev = self.evaluation
        t, p = ev.classes[true], ev.classes[predicted]
        self._list_images(ev.cell(t, p), f"true {t} → predicted {p}")

    def show_top_losses(self) -> None:
        if self.evaluation is not None:
            self._list_images(self.evaluation.top_losses(MAX_THUMBS),
                              "Top losses: wrong and most confident about it")

    def _list_images(self, results, title: str) -> None:
        n = len(results)
        self.images_title.setText(f"{title}: {n} image{'' if n == 1 else 's'}, highest loss "
                                  f"first" if title else "")
        self.images.show_results(results)
        if title:
            self.listed.emit(title)

    def _open_image(self, item) -> None:
        self.openImage.emit(item.data(Qt.UserRole), self.model_file)

    def listed_paths(self) -> list[str]:
        return self.images.paths()
