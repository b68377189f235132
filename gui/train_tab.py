"""Train tab: hyper-parameters, Start/Pause/Stop, progress, the log and live charts.

It only forwards: the TrainingWorker runs core's Trainer in a QThread, and this tab turns the
worker's plain-data events into chart points and log lines.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QFrame, QGroupBox, QHBoxLayout, QLabel,
                               QPlainTextEdit, QProgressBar, QPushButton, QScrollArea, QSplitter,
                               QVBoxLayout, QWidget)

from core.frontends.console import eta_text
from core.events import epoch_line
from gui.chart_marks import change_marker
from gui.checkpoint_offer import CheckpointOffer
from gui.dialogs import save_with_dialog, show_error, show_info, show_progress
from gui.elided_label import ElidedLabel
from gui.train_form import TrainForm, fitted_note, tooltip


PAUSED_NOTE = " · paused (after the current batch)"


class TrainTab(CheckpointOffer, QWidget):
    runFinished = Signal(object)  # FitEnd
    trainingActive = Signal(bool)
    phaseChanged = Signal(object)  # PhaseChanged, for the layer tree
    recipeFitted = Signal(dict)  # {setting: value the run uses} that fitting changed

    def __init__(self, config_provider: Callable[[], object], parent=None):
        super().__init__(parent)
        self.config_provider = config_provider
        # turns an engine error into GUI words (the main window knows what the user chose)
        self.explain: Callable[[str], str] = lambda message: message
        # the settings fitting to the data leaves as the user set them (the window adds the
        # Model tab's hand-set ticks); ``kept``: those of the run in progress, with values
        self.keep_provider: Callable[[], frozenset[str]] = lambda: self.form.fit_keep()
        self.kept: dict = {}
        self.worker = None
        self.history: list[dict] = []
        self.last_run_dir: str | None = None
        self.batches_per_epoch = 1
        self.n_val = 0  # the run's validation images (RunStarted)
        self._last_epoch = None  # the run's last EpochEnd, once it has come
        self._ready, self.data_chosen, self.val_source = False, False, None
        self.form = TrainForm()
        self.start_btn = QPushButton("Start training")
        self.start_btn.setObjectName("primary")
        self.pause_btn = QPushButton("Pause")
        self.stop_btn = QPushButton("Stop")
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.status = ElidedLabel("Waiting for PyTorch to load…")
        self.fit_note = QLabel(wordWrap=True)  # what fitting to the data changed (RecipeFitted)
        self.fit_note.setObjectName("note")
        self.fit_note.hide()
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setFont(QFont("monospace", 9))
        self.log_view.setMaximumBlockCount(5000)
        self._charts = None  # made on first use: pyqtgraph takes ~0.8 s to import
        self.chart_host = QWidget()
        self.chart_placeholder = QLabel("Charts appear here once PyTorch has loaded.")
        self.chart_placeholder.setAlignment(Qt.AlignCenter)
        QVBoxLayout(self.chart_host).addWidget(self.chart_placeholder)
        self._build_layout()
        self.form.changed.connect(self.fit_note.hide)  # the note spoke of other values
        self.form.presetApplied.connect(self.fit_note.hide)
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.toggle_pause)
        self.stop_btn.clicked.connect(self.stop)
        self.set_ready(False)

    def _build_layout(self) -> None:
        controls = QHBoxLayout()
        for b in (self.start_btn, self.pause_btn, self.stop_btn):
            controls.addWidget(b)
        left = QVBoxLayout()
        box = QGroupBox("Recipe")
        QVBoxLayout(box).addWidget(self.form)
        recipe = QScrollArea(widgetResizable=True, frameShape=QFrame.NoFrame)
        recipe.setWidget(box)  # a low window (or a long note below) scrolls the form
        recipe.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        left.addWidget(recipe, 1)
        left.addLayout(controls)
        left.addWidget(self.fit_note)
        left_w = QWidget()
        left_w.setLayout(left)
        left_w.setMaximumWidth(400)
        save_png = QPushButton("Save charts…")
        save_csv = QPushButton("Export metrics CSV…")
        save_png.clicked.connect(self.save_charts)
        save_csv.clicked.connect(self.export_csv)
        self.checkpoint_btn = QPushButton()
        self.checkpoint_btn.hide()
        self.checkpoint_btn.clicked.connect(self.delete_checkpoint)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        for b in (save_png, save_csv, self.checkpoint_btn):
            bar.addWidget(b)
        right_split = QSplitter(Qt.Vertical)
        right_split.addWidget(self.chart_host)
        right_split.addWidget(self.log_view)
        right_split.setSizes([460, 160])
        right = QVBoxLayout()
        right.addLayout(bar)
        right.addWidget(self.status)
        right.addWidget(right_split, 1)
        main = QHBoxLayout(self)
        main.addWidget(left_w)
        main.addLayout(right, 1)

    @property
    def charts(self):
        """The charts, made on first use (once PyTorch is ready, the loader has imported
        pyqtgraph in the background, so this is quick)."""
        if self._charts is None:
            from gui.charts import ChartsView

            self._charts = ChartsView()
            self.chart_placeholder.hide()
            self.chart_host.layout().addWidget(self._charts)
        return self._charts

    # --- state ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.thread.isRunning()

    def set_ready(self, ready: bool) -> None:
        """Enable Start once PyTorch is loaded and no run is active."""
        self._ready = ready
        if ready:
            self.charts  # noqa: B018 - build them now, before a run needs them
        self.start_btn.setEnabled(ready and not self.running)
        self.pause_btn.setEnabled(self.running)
        self.stop_btn.setEnabled(self.running)
        self.form.set_enabled(not self.running)
        if self.val_source and not self.running:  # the data brings its own validation set
            self.form.fields["val_split"].setEnabled(False)
        if ready and self.worker is None and not self.history:
            self.status.setText("Ready: press Start." if self.data_chosen else
                                "Ready. Choose data on the Data tab, then press Start.")

    def set_data(self, val_source: str | None) -> None:
        """A dataset was chosen; ``val_source`` names its own validation set (a val/ folder,
        CIFAR's test split) or is None when the validation share splits the training images."""
        self.data_chosen, self.val_source = True, val_source
        field = self.form.fields["val_split"]
        field.setToolTip(f"Not used: the data has its own validation set ({val_source})."
                         if val_source else tooltip("val_split"))
        field.setEnabled(not val_source and not self.running)
        self.set_ready(self._ready)

    # --- actions --------------------------------------------------------------------------
    def start(self) -> None:
        from core.errors import TransferLabError
        from core.frontends.qt_worker import TrainingWorker

        try:
            config = self.config_provider()
            config.validate()
        except TransferLabError as exc:
            show_error(self, "Cannot start training", str(exc))
            return
        keep = self.keep_provider() if config.fit_data else frozenset()
        self.charts.clear()
        self.history = []
        self.log_view.clear()
        self.kept = {key: getattr(config, key) for key in sorted(keep)}
        self._launch(TrainingWorker(config, keep=keep))

    def resume(self, run_dir: str, config, history: list[dict], batches: list[dict] = (),
               changes: list[dict] | None = None) -> None:
        """Continue ``run_dir`` from its checkpoint: the charts and the log start with the
        epochs it has, and the new ones extend them (one history, as metrics.csv keeps it)."""
        from core.frontends.qt_worker import TrainingWorker

        if self.running:
            show_error(self, "Cannot resume", "A training run is in progress: stop it first.")
            return
        self.show_run(run_dir, history, batches, changes)
        self.append_log(f"Resuming: epochs {len(history) + 1}–{config.epochs}.")
        self.kept = {}
        self._launch(TrainingWorker(config, run_dir, resume=True))

    def _launch(self, w) -> None:
        self._last_epoch = None
        self.checkpoint_btn.hide()
        self.fit_note.hide()
        self.worker = w
        w.progress.connect(self._on_progress)
        w.runStarted.connect(self._on_run_started)
        w.batchEnd.connect(self._on_batch)
        w.epochEnd.connect(self._on_epoch)
        w.phaseChanged.connect(self._on_phase)
        w.recipeFitted.connect(self._on_recipe_fitted)
        w.log.connect(self.append_log)
        w.done.connect(self._on_done)
        w.failed.connect(self._on_failed)
        w.thread.finished.connect(self._on_thread_finished)
        self.status.setText("Preparing data and model…")
        self.progress.setRange(0, 0)
        w.start()
        self.pause_btn.setText("Pause")
        self.set_ready(True)
        self.trainingActive.emit(True)

    def toggle_pause(self) -> None:
        if not self.running:
            return
        if self.worker.state.paused:
            self.worker.resume_training()
            self.pause_btn.setText("Pause")
            self.append_log("Resumed.")
            self.status.setText(self.status.text().replace(PAUSED_NOTE, ""))
        else:
            self.worker.pause()
            self.pause_btn.setText("Resume")
            self.append_log("Paused (takes effect after the current batch).")
            if self._last_epoch is not None:  # all epochs ended: it holds before the end
                self._show_paused_after_last_epoch(self._last_epoch)
            else:
                self.status.setText(self.status.text() + PAUSED_NOTE)

    def stop(self) -> None:
        if self.running:
            self.append_log("Stopping after the current batch…")
            self.worker.state.cancel()

    def shutdown(self) -> None:
        """Cancel and detach a running worker; it stops after the current batch (the window's
        shutdown waits, bounded, for every thread at exit)."""
        if self.worker is not None:
            self.worker.stop()

    # --- worker events ----------------------------------------------------------------------
    def append_log(self, message: str) -> None:
        self.log_view.appendPlainText(message)

    def _on_progress(self, event) -> None:
        show_progress(self.progress, event)
        self.status.setText(f"{event.stage}…")

    def _on_run_started(self, event) -> None:
        self.last_run_dir = event.run_dir
        self.batches_per_epoch = event.batches_per_epoch
        self.n_val = event.n_val
        self.progress.setFormat("%p%")  # preparation showed "stage: done / total"
        self.progress.setRange(0, event.epochs * event.batches_per_epoch)
        self.progress.setValue(event.start_epoch * event.batches_per_epoch)
        self.charts.set_epochs(event.epochs)
        # the preparation's last stage ("Matching classes to ImageNet…") is over
        paused = self.worker is not None and self.worker.state.paused
        self.status.setText(f"Epoch {event.start_epoch + 1}/{event.epochs}: training the first "
                            f"batch…" + (PAUSED_NOTE if paused else ""))
        self.append_log(f"Run folder: {event.run_dir}")

    def _on_recipe_fitted(self, e) -> None:
        """Fitting changed some of the form's values: the fields show what the run uses, the
        note what changed and why."""
        fitted = {key: new for key, _old, new in e.changes}
        self.form.set_values(fitted)
        self.recipeFitted.emit(fitted)
        self.fit_note.setText(fitted_note(e, self.kept))
        self.fit_note.show()

    def _on_batch(self, e) -> None:
        self.charts.add_batch(e.epoch, e.batch, e.batches, e.loss, e.lr)
        self.progress.setValue((e.epoch - 1) * e.batches + e.batch)
        paused = PAUSED_NOTE if self.worker and self.worker.state.paused else ""
        self.status.setText(f"Epoch {e.epoch}/{e.epochs} · batch {e.batch}/{e.batches} · "
                            f"loss {e.loss:.4f} · {e.images_per_s:.0f} img/s · "
                            f"{eta_text(e)}{paused}")

    def _on_epoch(self, e) -> None:
        from core.runs import history_row

        row = history_row(e)
        self.history.append(row)
        self.charts.add_epoch(row)
        if e.epoch == e.epochs:
            self._last_epoch = e
            if self.worker is not None and self.worker.state.paused:
                self._show_paused_after_last_epoch(e)

    def _show_paused_after_last_epoch(self, e) -> None:
        self.status.setText(f"Paused after the last epoch ({e.epoch}/{e.epochs}, saved): "
                            f"Resume or Stop ends the run.")

    def _on_phase(self, e) -> None:
        marker = change_marker(e.reason, e.epoch, e.batch, self.batches_per_epoch)
        if marker:
            self.charts.add_marker(*marker)
        self.phaseChanged.emit(e)

    def _on_done(self, result) -> None:
        from core.runs import RunPaths

        if self.worker is not None and self.worker.state.paused:  # clicked as the run ended
            self.append_log("The run had already ended when Pause was clicked.")
        self._progress_idle(result.status == "finished")
        best = f" Best validation accuracy {self._accuracy(result.best_val_acc)}." \
            if result.best_val_acc is not None else ""
        text = {"finished": "Training finished.", "stopped": "Training stopped.",
                "failed": "Training failed."}[result.status]
        model = RunPaths(result.run_dir or "").model
        saved = f" Model: {model}" if result.run_dir and model.exists() else ""
        self.status.setText(f"{text}{best}{saved}")
        self.append_log(f"{text}{best}")
        if result.status == "failed":
            self.append_log(f"Error: {result.message}")
            show_error(self, "Training failed", self.explain(result.message))
        elif self._offer_checkpoint():
            self.append_log(f"{self.checkpoint_btn.toolTip()} “{self.checkpoint_btn.text()}” "
                            f"reclaims the space.")
        self.runFinished.emit(result)

    def _accuracy(self, accuracy: float) -> str:
        """``93.75% ± 10.8`` (the 95% uncertainty on this run's validation images)."""
        from core.uncertainty import format_accuracy

        return format_accuracy(accuracy, self.n_val) if self.n_val else f"{accuracy:.2f}%"

    def _on_failed(self, message: str) -> None:
        self._progress_idle(False)
        self.status.setText("Training could not run.")
        self.append_log(f"Error: {message}")
        show_error(self, "Training failed", self.explain(message))

    def _progress_idle(self, full: bool) -> None:
        """No stale "stage: 0 / 1" once a run has ended."""
        self.progress.setFormat("%p%")
        self.progress.setRange(0, 1)
        if full:
            self.progress.setValue(1)
        else:
            self.progress.reset()

    def _on_thread_finished(self) -> None:
        self.pause_btn.setText("Pause")
        self.set_ready(True)
        self.trainingActive.emit(False)

    # --- files ------------------------------------------------------------------------------
    def show_run(self, run_dir: str, history: list[dict], batches: list[dict] = (),
                 changes: list[dict] | None = None) -> None:
        """A finished run: charts, the epoch lines and its recorded freeze changes."""
        self.history = list(history)
        self.last_run_dir = run_dir
        self.fit_note.hide()  # said of another run (the opened one's log keeps its own)
        self.charts.load_history(history, batches, changes)
        self.progress.setFormat("%p%")
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if history else 0)
        self.log_view.clear()
        self.append_log(f"Run folder: {run_dir}")
        pending = list(changes or [])
        for r in history:
            while pending and pending[0]["epoch"] <= r["epoch"]:
                self.append_log(change_line(pending.pop(0)))
            self.append_log(epoch_line(r["epoch"], r["train_loss"], r["train_acc"], r["val_acc"])
                            + f" ({r['phase']}, lr {r['lr']:g})")
        for c in pending:
            self.append_log(change_line(c))
        self._offer_checkpoint()
        last = history[-1] if history else None
        if last:
            self.status.setText(f"Run {run_dir}: {len(history)} epochs, last val acc "
                                f"{last['val_acc']:.2f}%")

    def save_charts(self) -> None:
        from core.errors import TransferLabError

        def write(path: str) -> None:
            if not self.charts.save_png(path):
                raise TransferLabError(f"Could not write {path}.")

        save_with_dialog(self, "Save charts", "charts.png", "PNG (*.png)", write)

    def export_csv(self) -> None:
        from core.runs import METRICS_FILE, write_metrics_csv

        if not self.history:
            show_info(self, "Nothing to export", "No epoch has finished yet.")
            return
        save_with_dialog(self, "Export metrics", METRICS_FILE, "CSV (*.csv)",
                         lambda path: write_metrics_csv(path, self.history))


def change_line(change: dict) -> str:
    """A recorded freeze change as a log line of a reopened run."""
    return (f"Epoch {change['epoch']}, after batch {change['batch']}: {change['message']} "
            f"(frozen: {change['spec']})")
