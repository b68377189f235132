"""The hyper-parameter form with presets; reads and writes plain dicts of TrainConfig keys."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QSpinBox,
                               QWidget)

from core.config import (BN_POLICIES, HEAD_INITS, OPTIMIZERS, PRECISIONS, PRESETS,
                         SCHEDULERS, TrainConfig)
from core.recipe import describe_rule

CUSTOM = "custom"
PRESET_NOTES = {"seed": "the lesson's recipe, slow on CPU", "fast-cpu": "cached early layers",
                "fast-gpu": "bf16, for one GPU"}
FIELD_LABELS = {"freeze_epochs": "Frozen epochs", "lr": "Learning rate",
                "unfreeze_lr_factor": "LR x at unfreeze", "batch_size": "Batch size",
                "backbone_lr_factor": "LR x below the head",
                "image_size": "Image size (px)", "val_split": "Validation share",
                "limit": "Train images", "bn_policy": "BatchNorm stats", "flip": "Augment",
                "ema": "Weight average", "tta": "Test-time flips",
                "head_init": "New head starts", "fit_data": "Fit to data", "device": "Device",
                "freeze": "Frozen layers"}


def field_label(key: str) -> str:
    return FIELD_LABELS.get(key, key.replace("_", " ").capitalize())


def preset_title(name: str) -> str:
    """Short enough for the form's column; the tooltip has the rest."""
    return f"{name} ({PRESETS[name]['image_size']} px)"


def preset_tooltip(name: str) -> str:
    p = PRESETS[name]
    return (f"{p['model']}, {p['image_size']} px, {p['epochs']} epochs: "
            f"{PRESET_NOTES.get(name, '')}")


DATA_COMBOS = ("device",)  # combos whose value is the item's data, not its text


def _spin(lo, hi, value, step=1) -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setValue(value)
    return w


def _dspin(lo, hi, value, decimals, step) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setDecimals(decimals)
    w.setSingleStep(step)
    w.setValue(value)
    return w


class TrainForm(QWidget):
    presetApplied = Signal(dict)  # the preset's values, including model/weights
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        d = TrainConfig()
        self.preset = QComboBox()
        self.preset.addItem("custom", CUSTOM)
        for name in PRESETS:
            self.preset.addItem(preset_title(name), name)
            self.preset.setItemData(self.preset.count() - 1, preset_tooltip(name),
                                    Qt.ToolTipRole)
        self.fields = {
            "epochs": _spin(1, 500, d.epochs),
            "freeze_epochs": _spin(0, 500, d.freeze_epochs),
            "lr": _dspin(1e-6, 10.0, d.lr, 6, 1e-4),
            "unfreeze_lr_factor": _dspin(0.0001, 10.0, d.unfreeze_lr_factor, 4, 0.05),
            "backbone_lr_factor": _dspin(0.0001, 10.0, d.backbone_lr_factor, 4, 0.05),
            "weight_decay": _dspin(0.0, 1.0, d.weight_decay, 4, 0.01),
            "optimizer": self._combo(OPTIMIZERS, d.optimizer),
            "scheduler": self._combo(SCHEDULERS, d.scheduler),
            "batch_size": _spin(1, 1024, d.batch_size, 8),
            "image_size": _spin(32, 512, d.image_size, 16),
            "val_split": _dspin(0.01, 0.9, d.val_split, 2, 0.05),
            "limit": _spin(0, 10_000_000, 0, 500),
            "flip": QCheckBox("random horizontal flips"),
            "label_smoothing": _dspin(0.0, 0.99, d.label_smoothing, 2, 0.05),
            "ema": _dspin(0.0, 0.9999, d.ema, 4, 0.001),
            "tta": QCheckBox("image + its mirror"),
            "head_init": self._combo(HEAD_INITS, d.head_init),
            "fit_data": QCheckBox("small folders: measured"),
            "bn_policy": self._combo(BN_POLICIES, d.bn_policy),
            "seed": _spin(0, 2**31 - 1, d.seed),
            "device": self._device_combo(),
            "precision": self._combo(PRECISIONS, d.precision),
        }
        self.fields["limit"].setSpecialValueText("all images")
        self.fields["bn_policy"].setToolTip(
            "frozen-eval: frozen BatchNorm keeps its ImageNet statistics\n"
            "eval: every BatchNorm keeps them, also after unfreezing\n"
            "train: every BatchNorm updates them (the lesson's behaviour)")
        self.fields["ema"].setSpecialValueText("off")
        self.fields["ema"].setToolTip("Decay of an average of the weights that validation and "
                                      "model.pt use (e.g. 0.998); off = the raw weights")
        self.fields["tta"].setToolTip("Validation, predictions, evaluations and exports average "
                                      "the network's output on each image and its mirror image")
        self.fields["head_init"].setToolTip(
            "random: a fresh layer\nimagenet: each class starts as the ImageNet class its "
            "training images look most like (ants -> 'ant')")
        self.fields["fit_data"].setToolTip(describe_rule()[0].upper() + describe_rule()[1:]
                                           + " (the log says what changed and why)")
        self.fields["precision"].setToolTip(
            "auto: bf16 on GPUs that support it, full 32-bit floats elsewhere\n"
            "16-mixed: fp16 with loss scaling (GPUs only)")
        form = QFormLayout(self)
        form.addRow("Preset", self.preset)
        for key, w in self.fields.items():
            form.addRow(field_label(key), w)
            signal = getattr(w, "valueChanged", None) or getattr(w, "currentIndexChanged", None) \
                or w.toggled
            signal.connect(self._edited)
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        self._applying = False

    @staticmethod
    def _combo(items, value) -> QComboBox:
        w = QComboBox()
        w.addItems(list(items))
        w.setCurrentText(value)
        return w

    @staticmethod
    def _device_combo() -> QComboBox:
        w = QComboBox()
        w.addItem("auto (looking for GPUs…)", "auto")
        w.setToolTip("auto picks a CUDA GPU, then Apple's MPS, then the CPU")
        return w

    def set_devices(self, found: list[tuple[str, str]]) -> None:
        """What PyTorch found, best first: [(value, description)], e.g. ("cuda:0",
        "CUDA: NVIDIA H200") or ("cpu", "CPU, 2 threads")."""
        combo = self.fields["device"]
        chosen = combo.currentData()
        self._applying = True
        try:
            combo.clear()
            combo.addItem(f"auto — {found[0][1]}" if found else "auto", "auto")
            for value, text in found:
                combo.addItem(text, value)
            index = combo.findData(chosen)
            combo.setCurrentIndex(max(index, 0))
        finally:
            self._applying = False

    def _edited(self) -> None:
        if not self._applying:
            self.preset.setCurrentIndex(0)  # any edit makes it a custom recipe
            self.changed.emit()

    def _preset_chosen(self) -> None:
        name = self.preset.currentData()
        if name and name != CUSTOM:
            self.set_values(PRESETS[name])
            self.presetApplied.emit(dict(PRESETS[name]))

    def values(self) -> dict:
        out = {}
        for key, w in self.fields.items():
            if isinstance(w, QCheckBox):
                out[key] = w.isChecked()
            elif key in DATA_COMBOS:
                out[key] = w.currentData()
            elif isinstance(w, QComboBox):
                out[key] = w.currentText()
            else:
                out[key] = w.value()
        out["limit"] = out["limit"] or None
        return out

    def set_values(self, values: dict) -> None:
        self._applying = True
        try:
            for key, value in values.items():
                w = self.fields.get(key)
                if w is None or value is None and key != "limit":
                    continue
                if isinstance(w, QCheckBox):
                    w.setChecked(bool(value))
                elif key in DATA_COMBOS:
                    if w.findData(value) < 0:  # e.g. a run made on a GPU this computer lacks
                        w.addItem(f"{value} (not found here)", value)
                    w.setCurrentIndex(w.findData(value))
                elif isinstance(w, QComboBox):
                    w.setCurrentText(str(value))
                else:
                    w.setValue(value or 0)
        finally:
            self._applying = False

    def set_enabled(self, enabled: bool) -> None:
        self.preset.setEnabled(enabled)
        for w in self.fields.values():
            w.setEnabled(enabled)
