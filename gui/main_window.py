"""The main window: seven tabs, a status bar, menus, settings and a clean shutdown."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget

from core.catalog import MODELS
from gui.data_tab import DataTab
from gui.dialogs import show_error
from gui.inference_tab import InferenceTab
from gui.model_tab import ModelTab
from gui.review_tab import ReviewTab
from gui.run_actions import RunActions
from gui.settings import add_recent_run, load_json, open_settings, save_json
from gui.train_tab import TrainTab
from gui.window_menus import UndoNotice, build_menus

# (key, title): the tabs in order; Ctrl+1…7 go to them
TAB_TITLES = (("data", "Data"), ("model", "Model"), ("train", "Train"),
              ("inference", "Inference"), ("evaluate", "Evaluate"), ("runs", "Runs"),
              ("review", "Review"))
TABS = tuple(key for key, _ in TAB_TITLES)


def tab_title(key: str) -> str:
    """"1  Data": the number is the tab's Ctrl+ shortcut."""
    return f"{TABS.index(key) + 1}  {dict(TAB_TITLES)[key]}"


class MainWindow(RunActions, QMainWindow):
    torchReady = Signal()
    torchFailed = Signal(str)

    def __init__(self):
        super().__init__()
        self.setWindowTitle("TransferLab")
        self.setMinimumSize(1000, 700)
        self.resize(1280, 820)
        self.torch_ready = False
        self.loader = None
        self.tabs = QTabWidget()
        self.data_tab = DataTab(lambda: self.train_tab.form.values()["image_size"],
                                lambda: (self.train_tab.form.values()["val_split"],
                                         self.train_tab.form.values()["seed"]))
        self.model_tab = ModelTab()
        self.train_tab = TrainTab(self.build_config)
        self.train_tab.keep_provider = self.fit_keep
        self.train_tab.explain = self._explain_failure
        self.inference_tab = InferenceTab()
        # Evaluate and Runs draw with pyqtgraph (~0.8 s to import): made once it has loaded
        # in the background with PyTorch, placeholders until then (first paint stays quick)
        self.evaluate_tab = self.runs_view = None
        self.review_tab = ReviewTab()  # (the data doctor: torch loads when a check runs)
        pages = {"data": self.data_tab, "model": self.model_tab, "train": self.train_tab,
                 "inference": self.inference_tab, "review": self.review_tab}
        for key, title in TAB_TITLES:
            page = pages.get(key)
            if page is None:
                page = QLabel("Available once PyTorch has loaded…")
                page.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.tabs.addTab(page, tab_title(key))
        self._connect_review()
        self.setCentralWidget(self.tabs)
        self.undo_notice = UndoNotice(self)
        self.statusBar().addPermanentWidget(self.undo_notice)  # no message hides or covers it
        self.loading_label = QLabel(
            "Loading PyTorch… meanwhile you can choose the data, the network and the recipe")
        self.statusBar().addPermanentWidget(self.loading_label)
        self.train_tab.form.presetApplied.connect(self._preset_applied)
        self.train_tab.form.freeze_spec = lambda: self.model_tab.freeze_spec
        self.train_tab.recipeFitted.connect(self._recipe_fitted)
        self.train_tab.trainingActive.connect(self._training_active)
        self.train_tab.runFinished.connect(self._run_finished)
        self.train_tab.phaseChanged.connect(self.model_tab.mirror)
        self.data_tab.scanned.connect(self._data_scanned)
        self.train_tab.form.changed.connect(self._form_changed)
        self.model_tab.panel.specChanged.connect(lambda _spec: self.undo_notice.retire())
        # ticks edited by hand change the plan sentence (the Model tab stores them first)
        self.model_tab.panel.specChanged.connect(
            lambda _spec: self.train_tab.form.update_plan())
        self.settings = open_settings()
        self.menus = build_menus(self)
        self.restore_settings()

    def _form_changed(self) -> None:
        self.model_tab.set_shape_inputs(image_size=self.train_tab.form.values()["image_size"])
        self.data_tab.split_changed()

    # --- torch loading ----------------------------------------------------------------------
    def start_loading_torch(self) -> None:
        """Import torch and the engine off the GUI thread (≈3.5 s here)."""
        from core.frontends.qt_worker import TaskWorker

        def load(_state):
            import core.models  # noqa: F401 - torch, torchvision
            import core.training.trainer  # noqa: F401
            import core.inference.predict  # noqa: F401
            import timm  # noqa: F401 - EfficientNet-Lite0; its imports would stall a run's start
            import pyqtgraph  # noqa: F401 - the charts' library (~0.8 s), kept off first paint
            from core.training.device import available_devices

            return available_devices()

        self.loader = TaskWorker(load)
        self.loader.done.connect(self._torch_loaded)
        self.loader.failed.connect(self._torch_failed)
        self.loader.start()

    def _torch_failed(self, message: str) -> None:
        self.loading_label.setText("PyTorch failed to load")
        show_error(self, "PyTorch failed to load", message)
        self.torchFailed.emit(message)

    def _torch_loaded(self, devices) -> None:
        import gc

        # Move the ~1M objects torch's import created out of the collector's sight: a full
        # collection in the worker holds the GIL and would freeze this thread for ~0.1-0.3 s.
        gc.collect()
        gc.freeze()
        self.torch_ready = True
        from gui.app import T0  # (the process's start: gui.app is imported first)

        self.torch_ready_after_s = time.perf_counter() - T0
        self.loading_label.setText("PyTorch ready")
        self.data_tab.set_torch_ready()
        if not self.settings.contains("model") and self.model_tab.prefer_offline_model():
            name = {m.name: m.title for m in MODELS}[self.model_tab.model_name()]
            self.statusBar().showMessage(
                f"Model: {name}, whose ImageNet weights are on this computer (the other "
                f"networks' weights download once, when first used).", 15_000)
        self.model_tab.set_torch_ready()
        self.inference_tab.set_torch_ready()
        self._make_late_tabs()
        self.evaluate_tab.set_torch_ready()
        self.runs_view.refresh()
        self.train_tab.set_ready(True)
        self.train_tab.form.set_devices(devices)
        self.torchReady.emit()

    # --- config -----------------------------------------------------------------------------
    def build_config(self):
        from core.config import TrainConfig
        from core.download import offline
        from core.errors import TransferLabError

        if not self.data_tab.source:
            raise TransferLabError("Choose a dataset on the Data tab first.")
        missing = self.model_tab.weights_missing()
        if missing and offline():
            raise TransferLabError(missing)
        values = dict(self.train_tab.form.values(), model=self.model_tab.model_name(),
                      weights=self.model_tab.weights(), data=self.data_tab.source,
                      freeze=self.model_tab.freeze_spec)
        return TrainConfig(**values)

    def fit_keep(self) -> frozenset[str]:
        """What fitting to the data leaves as the user set it: the form's own edits, and the
        frozen layers when ticked by hand."""
        return self.train_tab.form.fit_keep() | (
            {"freeze"} if self.model_tab.ticked_by_hand else set())

    def _recipe_fitted(self, fitted: dict) -> None:
        """The run freezes what fitting chose: the Model tab shows it once the run ends (it
        mirrors the live state meanwhile)."""
        if "freeze" in fitted:
            self.model_tab.freeze_spec, self.model_tab.ticked_by_hand = fitted["freeze"], False

    def _data_scanned(self, ds) -> None:
        self.model_tab.set_shape_inputs(num_classes=len(ds.classes))
        # the Train tab's validation share is used only when the data is split by it
        self.train_tab.set_data(None if ds.val_share is not None else ds.val_source)

    def _explain_failure(self, message: str) -> str:
        """A run that failed for want of ImageNet weights gets GUI advice, not CLI flags
        (the engine's full message stays in the log)."""
        missing = self.model_tab.weights_missing() if self.torch_ready else None
        return f"{missing}\n\n(The full message is in the log.)" if missing else message

    def _preset_applied(self, values: dict) -> None:
        """A preset's network and freeze plan go to the Model tab; ticks the user set by hand
        are replaced only with a notice that can undo it."""
        before = self.model_tab.choice()
        if "freeze" in values:
            self.model_tab.set_freeze_spec(values["freeze"])
        if "model" in values:
            self.model_tab.set_model(values["model"], values.get("weights"))
        _model, _weights, spec, by_hand = before
        if by_hand and spec != self.model_tab.freeze_spec:
            self.statusBar().clearMessage()
            self.undo_notice.offer(
                "The preset replaced your own layer ticks.",
                lambda: self.model_tab.restore(before),
                f"Your ticks froze: {spec}\nThe preset's plan freezes: "
                f"{self.model_tab.freeze_spec}\nUndo brings back your network and ticks.")

    def _training_active(self, active: bool) -> None:
        self.data_tab.setEnabled(not active)
        self.model_tab.combo.setEnabled(not active)
        self.model_tab.attach_worker(self.train_tab.worker if active else None)

    def _make_late_tabs(self) -> None:
        from gui.evaluate_tab import EvaluateTab
        from gui.runs_view import RunsView

        self.evaluate_tab, self.runs_view = EvaluateTab(), RunsView()
        current = self.tabs.currentIndex()
        for key, page in (("evaluate", self.evaluate_tab), ("runs", self.runs_view)):
            index = TABS.index(key)
            self.tabs.removeTab(index)
            self.tabs.insertTab(index, page, tab_title(key))
        self.tabs.setCurrentIndex(current)
        self.runs_view.openRequested.connect(self.open_run)
        self.runs_view.resumeRequested.connect(self.resume_run)
        self.runs_view.evaluateRequested.connect(self.evaluate_run)
        self.runs_view.exportRequested.connect(self.export_run)
        self.evaluate_tab.openImage.connect(self.open_in_inference)

    def _run_finished(self, result) -> None:
        from core.runs import RunPaths

        if result.run_dir:
            add_recent_run(self.settings, result.run_dir)
        model_file = RunPaths(result.run_dir).model
        if model_file.exists():
            self.inference_tab.set_trained_model(str(model_file))
            self.evaluate_tab.set_model(str(model_file))
        self.runs_view.refresh()  # (a run needs PyTorch: both tabs exist by now)

    def open_in_inference(self, path: str, model_file: str) -> None:
        """An image clicked on the Evaluate tab: predicted with that model (once: an image
        already in the table is selected again), selected, with its Grad-CAM."""
        tab = self.inference_tab

        def show() -> None:
            tab.select_path(path)
            tab.cam_box.setChecked(True)

        def predicted(_n) -> None:
            if tab.has_path(path):  # (an earlier batch, e.g. the table redone for the model)
                tab.predictionsDone.disconnect(predicted)
                show()

        def ours() -> bool:
            return tab.lm is not None and Path(tab.lm.source) == Path(model_file)

        def loaded(_text=None) -> None:
            if _text is not None:
                if not ours():  # another model finished loading first: keep waiting
                    return
                tab.modelLoaded.disconnect(loaded)
            if tab.has_path(path) and "predict" not in tab.workers:
                show()
                return
            tab.predictionsDone.connect(predicted)
            if not tab.has_path(path):
                tab.predict([path])

        if ours():
            loaded()
        else:
            tab.modelLoaded.connect(loaded)
            tab.set_trained_model(model_file)
        self.select_tab("inference")

    def _connect_review(self) -> None:
        """The data doctor: Check on the Data tab, findings and the map in the Review tab."""
        self.data_tab.checkRequested.connect(self.check_data)
        self.review_tab.datasetChanged.connect(
            lambda source: self.data_tab.scan() if source == self.data_tab.source else None)
        self.review_tab.openImage.connect(self.open_image)
        self.data_tab.sourceChanged.connect(self.review_tab.settle)
        self.review_tab.settledMessage.connect(lambda m: self.statusBar().showMessage(m, 15_000))

    def check_data(self, source: str) -> None:
        """Check ``source``; the run trained in this session counts when it trained on it
        (its features, and its predictions on the images it did not train on)."""
        self.review_tab.start_check(source, self.inference_tab.trained_model_file or "")
        self.select_tab("review")

    def open_image(self, path: str, model_file: str) -> None:
        """An image from the Review or its map, in the Inference tab with its Grad-CAM: by
        the check's model when it used a run's, else by the model the tab has."""
        tab = self.inference_tab
        if not model_file and tab.lm is None:
            self.select_tab("inference")
            tab.predict([path])  # says that a model is needed first
            return
        self.open_in_inference(path, model_file or tab.lm.source)

    def select_tab(self, name: str) -> None:
        self.tabs.setCurrentIndex(TABS.index(name))

    # --- settings and closing ---------------------------------------------------------------
    def restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        form = self.train_tab.form
        form.set_values(load_json(s, "hyperparameters", {}))
        form.by_hand = set(load_json(s, "handEdited", [])) & set(form.fields)  # the user's
        self.model_tab.set_model(s.value("model", "mobilenet_v2"), s.value("weights", "imagenet"))
        self.model_tab.freeze_spec = s.value("freeze", "backbone")
        self.model_tab.ticked_by_hand = s.value("freezeByHand", "false") == "true"
        source = s.value("data", "")
        if source:
            self.data_tab.source = source
            self.data_tab.set_source(source)

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        save_json(s, "hyperparameters", self.train_tab.form.values())
        save_json(s, "handEdited", sorted(self.train_tab.form.by_hand))
        s.setValue("freeze", self.model_tab.freeze_spec)
        s.setValue("freezeByHand", "true" if self.model_tab.ticked_by_hand else "false")
        s.setValue("model", self.model_tab.model_name())
        s.setValue("weights", self.model_tab.weights())
        s.setValue("data", self.data_tab.source)
        s.sync()

    def closeEvent(self, event) -> None:
        training = self.train_tab.running and not self.train_tab.worker.state.cancelled
        if training:
            answer = QMessageBox.question(
                self, "Training is running",
                "Stop training and quit? The last finished epoch's checkpoint stays on disk.")
            if answer != QMessageBox.Yes:
                event.ignore()
                return
        self.save_settings()
        self.hide()  # the window goes at once; the tasks end behind it
        self.shutdown()
        event.accept()

    def shutdown(self) -> bool:
        """Cancel every task and wait for their threads: the one wait on the GUI thread, at
        exit, bounded. Training stops after its current batch (the last finished epoch's
        checkpoint stays); scans, downloads and predictions stop at their next check."""
        from core.frontends.qt_worker import shutdown_all

        self.train_tab.shutdown()
        self.data_tab.cancel_scan()
        self.review_tab.shutdown()
        self.inference_tab.shutdown()
        if self.evaluate_tab is not None:
            self.evaluate_tab.stop()
            self.runs_view.stop()
        self.model_tab.cancel_build()
        return shutdown_all()
