"""The Inference tab's model list: the last run's model, model files, plain ImageNet networks
(marked when their weights still need a download), each entry found again by its data."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from core.catalog import MODEL_FILE_SUFFIXES, MODELS
from gui.dialogs import open_file, show_error

TRAINED = "trained"
FILE = "file:"  # the Model list's entries for model files: FILE + path
NEEDS_DOWNLOAD = Qt.ItemDataRole.UserRole + 1  # an ImageNet entry whose weights are not here


def imagenet_entry_text(entry, needs_download: bool = False) -> str:
    return f"ImageNet {entry.title} (1000 classes)" + \
        (" — not downloaded yet" if needs_download else "")


class ModelChoice:
    """The model half of the Inference tab (a mixin: it uses the tab's widgets and workers)."""

    # --- models -----------------------------------------------------------------------------
    def set_torch_ready(self) -> None:
        from core.models import get_spec
        from core.models.weights import imagenet_weights_ready

        self.torch_ready = True
        for m in MODELS:  # say which need a download, before a try
            i = self.source.findData(m.name)
            missing = not imagenet_weights_ready(get_spec(m.name))
            self.source.setItemText(i, imagenet_entry_text(m, missing))
            self.source.setItemData(i, missing, NEEDS_DOWNLOAD)
        if self.lm is None:
            self.load_selected_model()

    def set_trained_model(self, model_file: str) -> None:
        """A run finished: offer (and switch to) its model."""
        self.trained_model_file = model_file
        self.source.setCurrentIndex(0)
        if self.torch_ready:
            self.load_model_file(model_file)

    def load_selected_model(self) -> None:
        key = self.source.currentData()
        if key.startswith(FILE):
            self.load_model_file(key[len(FILE):])
            return
        if key == TRAINED:
            if self.trained_model_file:
                self.load_model_file(self.trained_model_file)
            else:
                self.model_label.setText("No training run has finished in this session yet: "
                                         "train one, or load a model file.")
            return
        from core.inference.predict import load_imagenet_model

        self._load(lambda state: load_imagenet_model(
            key, state.download_progress("Downloading weights")), imagenet=key)

    def choose_model_file(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in MODEL_FILE_SUFFIXES)
        path = open_file(self, "Load a trained model", f"TransferLab model ({patterns});;All (*)")
        if path:
            self.load_model_file(path)

    def load_model_file(self, path: str) -> None:
        """Load a model.pt (or an exported .onnx / .pt2); the Model list shows it (the last
        run's, or a file entry)."""
        from core.inference.exported import load_classifier

        if path == self.trained_model_file:
            self.source.setCurrentIndex(0)
        else:
            i = self.source.findData(FILE + path)
            if i < 0:
                i = 1
                self.source.insertItem(i, f"Model file: {Path(path).name}", FILE + path)
                self.source.setItemData(i, path, Qt.ToolTipRole)
            self.source.setCurrentIndex(i)
        self._load(lambda _state: load_classifier(path))

    def _load(self, fn, imagenet: str | None = None) -> None:
        self.model_label.setText("Loading the model…")
        self._loading_imagenet = imagenet
        w = self._start("model", fn, self._model_loaded)
        w.failed.connect(self._model_failed)

    def _model_failed(self, message: str) -> None:
        """The previous model (if any) stays in use, and the label says so."""
        from core.models import get_spec
        from core.models.weights import imagenet_weights_ready

        key = self._loading_imagenet
        if key and not imagenet_weights_ready(get_spec(key)):
            message = (f"The ImageNet weights for {key} are not on this computer and could "
                       f"not be downloaded. Connect to the internet and choose it again, or "
                       f"use EfficientNet-Lite0 (its weights come with TransferLab), or "
                       f"“Load model file…”.")
        still = f" Still using: {self._lm_text}" if self.lm is not None else ""
        if self.lm is not None:  # the list shows the model in use again
            self.source.setCurrentIndex(max(0, self.source.findData(self._lm_key)))
        self.model_label.setText(f"Could not load that model.{still}" if still
                                 else "No model loaded.")
        show_error(self, "Cannot load the model", message)

    def _model_loaded(self, lm) -> None:
        self.lm = lm
        pre = lm.preprocessing
        text = (f"{lm.source}: {getattr(lm, 'arch', lm.kind)}, {len(lm.classes)} classes, "
                f"input {pre.image_size} px")
        self.model_label.setText(text)
        self._lm_text, self._lm_key = text, self.source.currentData()
        self.cam.set_classes(lm.classes)
        self.table_model.set_classes(lm.classes)
        gradients = hasattr(lm, "net")  # an exported .onnx / .pt2 gives no gradients
        self.cam_box.setEnabled(gradients)
        if not gradients:
            self.cam_box.setChecked(False)
        self.cam_box.setToolTip("" if gradients else "Grad-CAM needs the PyTorch model "
                                "(model.pt): an exported file gives no gradients.")
        self.modelLoaded.emit(text)
        if self.predictions:  # re-run what is on screen with the new model
            self.predict([p.path for p in self.predictions], replace=True)
