"""The hyper-parameter form with presets; reads and writes plain dicts of TrainConfig keys.

Ranges, defaults, choices and tooltips come from the settings' one description in core
(core.config.OPTIONS), so the form accepts exactly what a run accepts; this module only lays
the widgets out (which settings, in what order, labels, step sizes).
"""
from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QSpinBox, QWidget)

from core.config import DEFAULTS, OPTIONS, PRESETS, freeze_plan, help_text, value_type
from core.recipe import FIT_KEYS, REASONS

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
                "freeze": "Frozen layers", "skip_easy": "Skip learned images"}
# The form's settings, in order (the Model tab sets model, weights and freeze).
FORM_KEYS = ("epochs", "freeze_epochs", "lr", "unfreeze_lr_factor", "backbone_lr_factor",
             "weight_decay", "optimizer", "scheduler", "batch_size", "image_size", "val_split",
             "limit", "flip", "label_smoothing", "ema", "tta", "skip_easy", "head_init",
             "fit_data", "bn_policy", "seed", "device", "precision")
CHECK_TEXTS = {"flip": "random horizontal flips", "tta": "image + its mirror",
               "fit_data": "small folders: measured"}
STEPS = {"batch_size": 8, "image_size": 16, "limit": 500, "lr": 1e-4, "weight_decay": 0.01,
         "unfreeze_lr_factor": 0.05, "backbone_lr_factor": 0.05, "val_split": 0.05,
         "label_smoothing": 0.05, "ema": 0.001, "skip_easy": 0.1}
ZERO_TEXTS = {"ema": "off", "skip_easy": "off"}  # what a 0 means, shown in its place
INT_MAX = 2**31 - 1  # a QSpinBox's largest value: "no upper limit"
FLOAT_MAX = 1e6  # a FloatSpin's, likewise
FLOAT_TICK = 1e-12  # the nearest a FloatSpin's end comes to an open end of core's range
DECIMALS = 17  # QDoubleSpinBox rounds to these: enough to keep any setting's value exactly
DATA_COMBOS = ("device",)  # combos whose value is the item's data, not its text
PLAN_KEYS = ("epochs", "freeze_epochs", "unfreeze_lr_factor")  # the plan sentence reads these


def field_label(key: str) -> str:
    return FIELD_LABELS.get(key, key.replace("_", " ").capitalize())


def tooltip(key: str) -> str:
    """The setting's help from core, other settings named by their labels (rich text, so Qt
    wraps it)."""
    text = help_text(key, refer=lambda other: f"'{field_label(other)}'")
    return f"<p>{html.escape(text[:1].upper() + text[1:], quote=False)}</p>"


def preset_title(name: str) -> str:
    """Short enough for the form's column; the tooltip has the rest. A preset fitted to the
    data names no figure that fitting may change (what runs is in the fields after Start)."""
    p = PRESETS[name]
    return f"{name} (fitted to the data)" if p.get("fit_data") else \
        f"{name} ({p['image_size']} px)"


def preset_tooltip(name: str) -> str:
    p = PRESETS[name]
    fitted = (" Fitted to the data at Start: a small folder may train at another size, for "
              "more epochs, with more images validating; the fields then show what runs."
              if p.get("fit_data") else "")
    return (f"{p['model']}, {p['image_size']} px, {p['epochs']} epochs: "
            f"{PRESET_NOTES.get(name, '')}.{fitted}")


def fitted_note(e, kept: dict) -> str:
    """The note under Start for a RecipeFitted event: what fitting changed and why, what
    stayed as the user set it (``kept``: {setting: value}) and how to keep a value."""
    why = REASONS.get(e.reason, e.reason)
    if e.trial is not None:
        why += f": {e.trial.describe()}"
    rows = "".join(f"<br>{field_label(key)}: {old} → <b>{new}</b>"
                   for key, old, new in e.changes)
    shown = ". The fields show what this run uses:" if rows else "."
    kept = ", ".join(f"{field_label(key)} {value}" for key, value in kept.items())
    kept = f"<br>Kept as you set them: {kept}." if kept else ""
    keep = ("<br>Untick <i>Fit to data</i>, or set a field yourself, to train with your own "
            "values." if rows else "")
    return f"<b>Fitted to the data</b> ({why}){shown}{rows}{kept}{keep}"


def widget_range(key: str) -> tuple[float, float]:
    """The spin box's ends: core's range, an open end moved to the nearest value the widget
    holds, no end = the widget's largest; a setting that may be None (e.g. the image limit)
    gets one value below the range, shown as what None means."""
    rng, (kind, nullable) = OPTIONS[key].range, value_type(key)
    tick = 1 if kind is int else FLOAT_TICK
    top = INT_MAX if kind is int else FLOAT_MAX
    lo = rng.low + tick * rng.low_open - tick * nullable
    hi = top if rng.high is None else rng.high - tick * rng.high_open
    return lo, hi


class FloatSpin(QDoubleSpinBox):
    """A number shown as written ("0.0003", "1e-05", "0.9995") and kept exactly; a plain
    QDoubleSpinBox shows a fixed number of decimals and rounds the value to them."""

    def __init__(self):
        super().__init__()
        self.setDecimals(DECIMALS)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt's name
        return f"{value:.10g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        try:
            inside = self.minimum() <= float(text) <= self.maximum()
        except ValueError:
            inside = False
        return (QValidator.Acceptable if inside else QValidator.Intermediate), text, pos


def make_widget(key: str) -> QWidget:
    """A widget for one setting, with core's range or choices, default and help."""
    kind, _ = value_type(key)
    option, default = OPTIONS[key], DEFAULTS[key]
    if kind is bool:
        w = QCheckBox(CHECK_TEXTS.get(key, ""))
        w.setChecked(default)
    elif key in DATA_COMBOS:
        w = QComboBox()
        w.addItem(f"{default} (looking for GPUs…)", default)
    elif option.choices:
        w = QComboBox()
        w.addItems(list(option.choices))
        w.setCurrentText(default)
    else:
        w = QSpinBox() if kind is int else FloatSpin()
        w.setRange(*widget_range(key))
        w.setSingleStep(STEPS.get(key, 1 if kind is int else 0.01))
        w.setSpecialValueText(option.none_means or ZERO_TEXTS.get(key, ""))
        w.setValue(w.minimum() if default is None else default)
    w.setToolTip(tooltip(key))
    return w


class TrainForm(QWidget):
    """``by_hand``: the settings the user edited since the last preset (values set by a
    preset, a reopened run or fitting are not edits); ``fit_keep()`` is what fitting to the
    data must leave as the user set it. ``freeze_spec`` tells the plan sentence what the
    frozen phase freezes (the Model tab's ticks)."""

    presetApplied = Signal(dict)  # the preset's values, including model/weights
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.by_hand: set[str] = set()
        self.freeze_spec = lambda: DEFAULTS["freeze"]
        self.plan = QLabel(wordWrap=True)  # the freeze plan in words (core.config.freeze_plan)
        self.plan.setContentsMargins(0, 0, 0, 4)
        self.preset = QComboBox()
        self.preset.addItem("custom", CUSTOM)
        for name in PRESETS:
            self.preset.addItem(preset_title(name), name)
            self.preset.setItemData(self.preset.count() - 1, preset_tooltip(name),
                                    Qt.ToolTipRole)
        self.fields = {key: make_widget(key) for key in FORM_KEYS}
        form = QFormLayout(self)
        form.addRow("Preset", self.preset)
        for key, w in self.fields.items():
            form.addRow(field_label(key), w)
            signal = getattr(w, "valueChanged", None) or getattr(w, "currentIndexChanged", None) \
                or w.toggled
            signal.connect(lambda *_, k=key: self._edited(k))
            if key in PLAN_KEYS:
                signal.connect(self.update_plan)
            if key == "freeze_epochs":
                form.addRow(self.plan)  # the form's whole width, under the epochs it explains
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        self._applying = False
        self.update_plan()

    def update_plan(self) -> None:
        v = self.values()
        self.plan.setText(freeze_plan(v["epochs"], v["freeze_epochs"], self.freeze_spec(),
                                      v["unfreeze_lr_factor"]))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.update_plan()  # the Model tab's ticks may have changed meanwhile
        super().showEvent(event)

    def fit_keep(self) -> frozenset[str]:
        """The settings fitting to the data may change that the user set by hand."""
        return frozenset(self.by_hand & set(FIT_KEYS))

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

    def _edited(self, key: str) -> None:
        if not self._applying:
            self.by_hand.add(key)
            self.preset.setCurrentIndex(0)  # any edit makes it a custom recipe
            self.changed.emit()

    def _preset_chosen(self) -> None:
        name = self.preset.currentData()
        if name and name != CUSTOM:
            self.by_hand.clear()
            self.set_values(PRESETS[name])
            self.presetApplied.emit(dict(PRESETS[name]))
            self.update_plan()  # with the preset's freeze, now in the Model tab

    def values(self) -> dict:
        out = {}
        for key, w in self.fields.items():
            if isinstance(w, QCheckBox):
                out[key] = w.isChecked()
            elif key in DATA_COMBOS:
                out[key] = w.currentData()
            elif isinstance(w, QComboBox):
                out[key] = w.currentText()
            elif OPTIONS[key].none_means and w.value() == w.minimum():
                out[key] = None
            else:
                out[key] = w.value()
        return out

    def set_values(self, values: dict) -> None:
        """Values that do not come from the user's hand (a preset, a reopened run, fitting):
        the fields they set are no longer edits."""
        self.by_hand -= set(values)
        self._applying = True
        try:
            for key, value in values.items():
                w = self.fields.get(key)
                if w is None or value is None and not OPTIONS[key].none_means:
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
                    w.setValue(w.minimum() if value is None else value)
        finally:
            self._applying = False

    def set_enabled(self, enabled: bool) -> None:
        self.preset.setEnabled(enabled)
        for w in self.fields.values():
            w.setEnabled(enabled)
