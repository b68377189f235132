"""Inference tab: drop images (files, folders, the clipboard), see what the model thinks and
where it looked. Prediction and Grad-CAM run in worker threads; the table fills batch by batch
so a thousand dropped images never freeze the window."""
from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar,
                               QPushButton, QSpinBox, QSplitter, QVBoxLayout, QWidget)

from core.catalog import MODEL_FILE_SUFFIXES, MODELS
from gui.cam_view import CamControls
from gui.dialogs import (open_dir, open_files, save_with_dialog, show_error,
                         show_info, show_progress)
from gui.image_utils import decoded_image, heat_overlay
from gui.inference_models import TRAINED, ModelChoice, imagenet_entry_text
from gui.prediction_table import TRUE_COL, prediction_view
from gui.topk_bars import TopKBars

PREVIEW = 360
class InferenceTab(ModelChoice, QWidget):
    modelLoaded = Signal(str)  # a description of the model now in use
    predictionsDone = Signal(int)  # how many files were processed

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.torch_ready = False
        self.lm = None  # core.inference.predict.LoadedModel
        self.trained_model_file: str | None = None
        self._lm_text, self._lm_key, self._loading_imagenet = "", None, None
        self._view_job = None  # (prediction, class) whose picture the preview shows
        self.predictions, self.skipped = [], []
        self._queued: list[str] = []  # paths added while a batch was being predicted
        self.workers = {}  # role -> TaskWorker, at most one each
        self._build_widgets()
        self._build_layout()
        QShortcut(QKeySequence.Paste, self, activated=self.paste)

    # --- layout -----------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.source = QComboBox()
        self.source.addItem("Model from the last training run", TRAINED)
        for m in MODELS:
            self.source.addItem(imagenet_entry_text(m), m.name)
        # the first network whose weights come with the app (Lite0): it works offline
        self.source.setCurrentIndex(self.source.findData(
            next(m.name for m in MODELS if m.offline_weights)))
        self.source.activated.connect(lambda _: self.load_selected_model())
        self.load_file_btn = QPushButton("Load model file…")
        self.load_file_btn.clicked.connect(self.choose_model_file)
        self.model_label = QLabel("No model loaded yet.")
        self.open_btn = QPushButton("Open images…")
        self.open_btn.clicked.connect(self.choose_images)
        self.open_dir_btn = QPushButton("Open folder…")
        self.open_dir_btn.setToolTip("Every image in a folder and its sub-folders; in a "
                                     "folder per class, the folder's name is the true class")
        self.open_dir_btn.clicked.connect(self.choose_folder)
        self.export_btn = QPushButton("Export CSV…")
        self.export_btn.clicked.connect(self.export_csv)
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.clicked.connect(self.clear)
        self.topk = QSpinBox(minimum=1, maximum=10, value=5, prefix="top-")
        self.progress = QProgressBar()
        self.progress.hide()
        self.table_model, self.proxy, self.table = prediction_view(self)
        self.table.setColumnHidden(TRUE_COL, True)  # until a photo comes from a class folder
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self.show_selected())
        self.hint = QLabel("Drop photos or folders here — or paste an image (Ctrl+V).")
        self.hint.setAlignment(Qt.AlignCenter)
        self.hint.setObjectName("dropHint")
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignCenter)
        self.preview.setMinimumSize(PREVIEW, PREVIEW)
        self.bars = TopKBars()
        self.ood_note = QLabel()  # "unlike the training images" (core.inference.ood)
        self.ood_note.setWordWrap(True)
        self.ood_note.setStyleSheet("color: #9a3412; font-weight: bold")
        self.ood_note.hide()
        self.cam = CamControls()
        self.cam_box = self.cam.box
        self.cam.changed.connect(self.show_selected)
        self.skipped_view = QPlainTextEdit(readOnly=True)
        self.skipped_view.setMaximumHeight(80)
        self.skipped_view.setPlaceholderText("Files that could not be read are listed here.")

    def _build_layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.source, 1)
        top.addWidget(self.load_file_btn)
        actions = QHBoxLayout()
        for w in (self.open_btn, self.open_dir_btn, self.topk, self.export_btn,
                  self.clear_btn):
            actions.addWidget(w)
        actions.addWidget(self.progress, 1)
        actions.addStretch(1)
        left = QVBoxLayout()
        left.addWidget(self.hint)
        left.addWidget(self.table, 1)
        left.addWidget(QLabel("Skipped"))
        left.addWidget(self.skipped_view)
        left_w = QWidget()
        left_w.setLayout(left)
        right = QVBoxLayout()
        right.addWidget(self.preview, 1)
        right.addWidget(self.cam)
        right.addWidget(self.ood_note)
        right.addWidget(self.bars)
        right_w = QWidget()
        right_w.setLayout(right)
        split = QSplitter()
        split.addWidget(left_w)
        split.addWidget(right_w)
        split.setSizes([620, 420])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.model_label)
        layout.addLayout(actions)
        layout.addWidget(split, 1)

    # --- images -----------------------------------------------------------------------------
    def choose_images(self) -> None:
        if self.lm is None:  # (and PyTorch, which core.data imports, may still be loading)
            self.predict([])
            return
        from core.data.images import file_dialog_filter

        paths = open_files(self, "Open images", f"{file_dialog_filter()};;All files (*)")
        if paths:
            self.predict(paths)

    def choose_folder(self) -> None:
        """Every image of a folder (sub-folders too): a labelled folder shows each photo's
        true class beside the prediction."""
        if self.lm is None:
            self.predict([])
            return
        folder = open_dir(self, "Open a folder of images")
        if folder:
            self.predict([folder])

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        event.acceptProposedAction()
        self.handle_drop(paths, mime.imageData() if mime.hasImage() else None)

    def handle_drop(self, paths: list[str], image=None) -> None:
        """A dropped model file loads as the model; everything else is predicted."""
        models = [p for p in paths if p.lower().endswith(MODEL_FILE_SUFFIXES)]
        if models:
            self.load_model_file(models[0])
        others = [p for p in paths if not p.lower().endswith(MODEL_FILE_SUFFIXES)]
        if image is not None and not others:
            others = [self._save_clipboard_image(image)]
        if others:
            self.predict(others)

    def paste(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            self.predict([self._save_clipboard_image(mime.imageData())])
        elif mime is not None and mime.hasUrls():
            self.handle_drop([u.toLocalFile() for u in mime.urls() if u.isLocalFile()])

    def _save_clipboard_image(self, image) -> str:
        path = Path(tempfile.mkdtemp(prefix="transferlab-paste-")) / "pasted image.png"
        image.save(str(path), "PNG")
        return str(path)

    def predict(self, paths: list[str], replace: bool = False) -> None:
        """Add ``paths``' predictions to the table (Clear empties it); ``replace`` redoes the
        table (a new model). Paths given while a batch runs wait for it."""
        if self.lm is None:
            show_info(self, "No model yet", "Choose or load a model first (it may still be "
                      "loading).")
            return
        if replace:
            self.clear()
        elif "predict" in self.workers:
            self._queued += paths
            return
        from core.inference.predict import predict_paths

        lm, k = self.lm, self.topk.value()
        w = self._start("predict", None, self._predicted)
        w.fn = lambda state: predict_paths(lm, paths, k, 16, state,
                                           on_results=w.emit_partial, thumb_size=48)
        w.partial.connect(self._batch_ready)
        w.progress.connect(self._on_progress)
        w.failed.connect(self._predict_failed)
        self.progress.setRange(0, 0)
        self.progress.show()
        w.start()

    def _on_progress(self, event) -> None:
        show_progress(self.progress, event)

    def _batch_ready(self, predictions) -> None:
        self.table_model.append(predictions)
        self.table.setColumnHidden(TRUE_COL, not any(self.table_model.truth))
        new_skipped = [p for p in predictions if p.error]
        if new_skipped:
            self.skipped += new_skipped
            self.skipped_view.appendPlainText(
                "\n".join(f"{Path(p.path).name}: {p.error}" for p in new_skipped))
        self.hint.setVisible(self.table_model.rowCount() == 0 and not self.skipped)
        if self.table.currentIndex().row() < 0 and self.table_model.rowCount():
            self.table.selectRow(0)

    def _predicted(self, predictions) -> None:
        self.predictions += predictions
        self.workers.pop("predict", None)
        self.progress.hide()
        self.predictionsDone.emit(len(predictions))
        if self._queued:
            queued, self._queued = self._queued, []
            self.predict(queued)

    def clear(self) -> None:
        self._stop("predict")
        self.progress.hide()  # the stopped batch never reports: no "Predicting: 0 / 1" left
        self._queued = []
        self.table_model.clear()
        self.table.setColumnHidden(TRUE_COL, True)
        self.predictions, self.skipped = [], []
        self.skipped_view.clear()
        self.preview.clear()
        self.bars.set_items([])
        self.ood_note.hide()
        self._stop("view")
        self._view_job = None
        self.cam.stopped()
        self.hint.show()

    def select_path(self, path: str) -> bool:
        """Select the table's row of ``path`` (the latest one, if it is there twice): the
        preview and the Grad-CAM follow the selection."""
        rows = [i for i, p in enumerate(self.table_model.rows) if Path(p.path) == Path(path)]
        if not rows:
            return False
        row = self.proxy.mapFromSource(self.table_model.index(rows[-1], 0)).row()
        if self.table.currentIndex().row() == row:
            self.show_selected()  # already current: no currentRowChanged to redraw it
        self.table.selectRow(row)
        return True

    def has_path(self, path: str) -> bool:
        return any(Path(p.path) == Path(path) for p in self.table_model.rows)

    # --- details and Grad-CAM ---------------------------------------------------------------
    def selected(self):
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.table_model.rows[self.proxy.mapToSource(index).row()]

    def show_selected(self) -> None:
        """The selected photo as the model sees it (decoded in a worker by core's decoder),
        then, ticked, its Grad-CAM over it."""
        p = self.selected()
        if p is None:
            return
        self.bars.set_items(p.topk)
        from core.inference.predictions import unfamiliar_note

        self.ood_note.setText(unfamiliar_note(p.ood_score))
        self.ood_note.setVisible(p.unfamiliar)
        cam = self.cam.enabled() and self.lm is not None and bool(p.topk)
        lm, path = self.lm, p.path
        cls = name = top1 = None
        if cam:
            cls, name, top1 = self.cam.target(p, lm.classes)
            self.cam.computing(name)
        else:
            self.cam.stopped()
        job = self._view_job = (path, cls, name, top1, p.topk[0][0] if p.topk else "")

        def task(state):
            image = decoded_image(path, 2 * PREVIEW)
            w.emit_partial((job, image))
            if not cam or image.isNull():
                return job, None
            from core.inference.explain import gradcam

            heat = gradcam(lm, path, cls)
            state.check()
            return job, (heat, heat_overlay(image, heat))

        w = self._start("view", None, self._cam_ready)
        w.fn = task
        w.partial.connect(self._preview_ready)
        w.failed.connect(self._cam_failed)
        w.start()

    # Worker signals connect to bound methods, never lambdas: PySide runs a lambda in the
    # emitting (worker) thread, while a method of this QObject is queued into the GUI thread.
    def _preview_ready(self, result) -> None:
        job, image = result
        if job is self._view_job:  # else a photo no longer selected
            self._show_image(image, job[0])

    def _cam_ready(self, result) -> None:
        job, cam = result
        self.workers.pop("view", None)
        if job is not self._view_job or cam is None:  # a map for a photo no longer selected
            return
        path, _cls, name, top1, predicted = job
        heat, overlay = cam
        self._show_image(overlay, path)
        self.cam.shown(heat, name, top1, predicted)

    def _cam_failed(self, message: str) -> None:
        self.cam.stopped("Grad-CAM failed: " + message)
        show_error(self, "Grad-CAM failed", message)

    def _worker_failed(self, _message: str) -> None:
        self.progress.hide()

    def _predict_failed(self, message: str) -> None:
        self.workers.pop("predict", None)
        self._queued = []
        show_error(self, "Prediction failed", message)

    def _show_image(self, image, path: str = "") -> None:
        if image.isNull():
            self.preview.setText("(cannot display this image)")
            return
        self.preview.setPixmap(QPixmap.fromImage(image).scaled(
            PREVIEW, PREVIEW, Qt.KeepAspectRatio, Qt.SmoothTransformation))

    # --- export and workers -----------------------------------------------------------------
    def export_csv(self) -> None:
        from core.inference.predict import write_predictions_csv

        if not self.predictions:
            show_info(self, "Nothing to export", "Predict some images first.")
            return
        save_with_dialog(self, "Export predictions", "predictions.csv", "CSV (*.csv)",
                         lambda path: write_predictions_csv(path, self.predictions))

    def _start(self, role: str, fn, on_done):
        from core.frontends.qt_worker import PartialTaskWorker

        self._stop(role)
        self.workers[role] = w = PartialTaskWorker(fn)
        w.done.connect(on_done)
        w.failed.connect(self._worker_failed)
        if fn is not None:
            w.start()
        return w

    def _stop(self, role: str) -> None:
        w = self.workers.pop(role, None)
        if w is not None:
            w.stop()

    def shutdown(self) -> None:
        for role in list(self.workers):
            self._stop(role)
