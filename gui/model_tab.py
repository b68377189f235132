"""Model tab: architecture and weights, the preprocessing they imply, and the layer tree."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QRadioButton,
                               QSizePolicy, QVBoxLayout, QWidget)

from core.catalog import MODELS
from gui.dialogs import open_file
from gui.layer_panel import LayerPanel


READY_ROLE = Qt.ItemDataRole.UserRole + 1  # a network's ImageNet weights are on disk


def model_item_text(entry, classes: int, ready: bool | None) -> str:
    """A network's list entry, from the catalog's data: its parameters with a head for the
    data's classes (the figure the tree's summary counts), whether its weights need a
    download (None: not known before PyTorch has loaded)."""
    parts = [f"{entry.params(classes) / 1e6:.2f}M params"]
    if entry.note:
        parts.append(entry.note)
    if ready is False:
        parts.append("ImageNet weights download once")
    return f"{entry.title} — {', '.join(parts)}"


class ModelTab(QWidget):
    modelChanged = Signal(str, str)  # model name, weights
    treeBuilt = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.torch_ready = False
        self.combo = QComboBox()
        for m in MODELS:
            self.combo.addItem(m.title, m.name)
        self.w_imagenet = QRadioButton("ImageNet-pretrained")
        self.w_none = QRadioButton("Random initialisation (from scratch)")
        self.w_file = QRadioButton("From a file:")
        self.w_imagenet.setChecked(True)
        self.group = QButtonGroup(self)
        for b in (self.w_imagenet, self.w_none, self.w_file):
            self.group.addButton(b)
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("a state-dict .pth/.pt file")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.choose_file)
        file_row = QHBoxLayout()
        file_row.addWidget(self.w_file)
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(browse)
        self.info = QLabel("Input size and normalisation appear once PyTorch has loaded.")
        self.info.setWordWrap(True)
        box = QGroupBox("Network")
        box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)  # the tree
        form = QFormLayout(box)                                                       # grows
        form.addRow("Architecture", self.combo)
        weights = QVBoxLayout()
        weights.addWidget(self.w_imagenet)
        weights.addWidget(self.w_none)
        weights.addLayout(file_row)
        form.addRow("Weights", weights)
        form.addRow("Preprocessing", self.info)
        self.tree_box = QGroupBox("Layers — tick what the frozen phase keeps fixed")
        self.panel = LayerPanel()
        QVBoxLayout(self.tree_box).addWidget(self.panel)
        self.freeze_spec = "backbone"  # what the run's frozen epochs freeze
        self.ticked_by_hand = False  # freeze_spec came from the user's own ticks
        self.live_spec = None  # what a running training reported frozen last
        self.num_classes = 10  # a placeholder head until the Data tab reports its classes
        self.classes_known = False
        self._show_head_size()
        self.show_model_titles()
        self.image_size = 224
        self.structure_worker = None
        self.panel.specChanged.connect(self._spec_edited)
        self._rebuild_timer = QTimer(self, singleShot=True, interval=250)
        self._rebuild_timer.timeout.connect(self.rebuild_tree)
        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addWidget(self.tree_box, 1)
        self.combo.currentIndexChanged.connect(self._changed)
        self.group.buttonToggled.connect(lambda *_: self._changed())
        self.file_edit.editingFinished.connect(self._changed)

    def choose_file(self) -> None:
        path = open_file(self, "Choose a weights file",
                         "PyTorch weights (*.pt *.pth *.bin);;All (*)")
        if path:
            self.file_edit.setText(path)
            self.w_file.setChecked(True)
            self._changed()

    def model_name(self) -> str:
        return self.combo.currentData()

    def weights(self) -> str:
        if self.w_none.isChecked():
            return "none"
        if self.w_file.isChecked():
            return self.file_edit.text().strip() or "imagenet"
        return "imagenet"

    def set_model(self, name: str, weights: str | None = None) -> None:
        i = self.combo.findData(name)
        if i >= 0:
            self.combo.setCurrentIndex(i)
        if weights == "none":
            self.w_none.setChecked(True)
        elif weights and weights != "imagenet":
            self.file_edit.setText(weights)
            self.w_file.setChecked(True)
        elif weights == "imagenet":
            self.w_imagenet.setChecked(True)

    def weights_missing(self) -> str | None:
        """GUI words for ImageNet weights that are not on this computer; None when ready."""
        from core.models import get_spec
        from core.models.weights import imagenet_weights_ready

        spec = get_spec(self.model_name())
        if self.weights() != "imagenet" or imagenet_weights_ready(spec):
            return None
        name = get_spec(self.model_name()).title
        return (f"The ImageNet weights for {name} are not on this "
                f"computer yet. Connect to the internet (they download once when training "
                f"starts), or on the Model tab choose “From a file”, “Random "
                f"initialisation”, or EfficientNet-Lite0 (its weights come with TransferLab).")

    def prefer_offline_model(self) -> bool:
        """First run: when the chosen network's ImageNet weights would need a download, start
        with one whose weights are here (EfficientNet-Lite0's ship with TransferLab)."""
        from core.models import get_spec
        from core.models.weights import imagenet_weights_ready

        if self.weights_missing() is None:
            return False
        ready = [m.name for m in MODELS if imagenet_weights_ready(get_spec(m.name))]
        if ready:
            self.set_model(ready[0])
        return bool(ready)

    def set_torch_ready(self) -> None:
        self.torch_ready = True
        self._changed()

    def show_model_titles(self) -> None:
        """Each network's entry from the catalog: its parameters with this data's head, and
        (once PyTorch has loaded: a file check) whether its weights need a download."""
        ready = None
        if self.torch_ready:
            from core.models import get_spec
            from core.models.weights import imagenet_weights_ready

            ready = {m.name: imagenet_weights_ready(get_spec(m.name)) for m in MODELS}
        for i, entry in enumerate(MODELS):
            flag = None if ready is None else ready[entry.name]
            self.combo.setItemText(i, model_item_text(entry, self.num_classes, flag))
            self.combo.setItemData(i, flag, READY_ROLE)
            self.combo.setItemData(
                i, f"{entry.params(self.num_classes):,} parameters with a head for "
                   f"{self.num_classes} classes ({entry.features} x {self.num_classes} weights "
                   f"+ {self.num_classes} biases)", Qt.ItemDataRole.ToolTipRole)

    def _changed(self) -> None:
        self.modelChanged.emit(self.model_name(), self.weights())
        if self.torch_ready:
            self.cancel_build()  # what it would show is already out of date
            self._show_busy()
            self._show_weights_status()
            self.show_model_titles()  # (a run may have downloaded some weights since)
            self._rebuild_timer.start()

    # --- the layer tree ---------------------------------------------------------------------
    def set_shape_inputs(self, num_classes: int | None = None, image_size: int | None = None):
        """The head size and input size shown in the tree (from the Data and Train tabs)."""
        changed = (num_classes or self.num_classes, image_size or self.image_size) != \
            (self.num_classes, self.image_size)
        self.num_classes = num_classes or self.num_classes
        self.classes_known = self.classes_known or bool(num_classes)
        self._show_head_size()
        self.show_model_titles()
        self.image_size = image_size or self.image_size
        if changed and self.torch_ready:
            self._rebuild_timer.start()

    def _show_head_size(self) -> None:
        head = (f"the head has {self.num_classes} outputs, one per class of the data"
                if self.classes_known else
                f"the head's size comes from the data: {self.num_classes} outputs shown "
                f"until a dataset is chosen")
        self.tree_box.setTitle(f"Layers — tick what the frozen phase keeps fixed ({head})")

    def rebuild_tree(self) -> None:
        """Build a structure-only copy (no weights) of the network in a worker thread;
        the previous build, if still running, is cancelled and its result ignored."""
        from core.frontends.qt_worker import TaskWorker

        self.cancel_build()
        self._show_busy()
        name, n, size, spec = self.model_name(), self.num_classes, self.image_size, \
            self.freeze_spec

        def build(state):
            import torch

            from core.errors import TransferLabError
            from core.models.layers import LayerTree, output_shapes
            from core.models import build_model, head_path

            # On the meta device (thread-local): shapes and parameter counts without
            # allocating or initialising weights, 5-20x faster, so a build holds the GIL
            # (and slows the GUI thread) for far less time.
            with torch.device("meta"):
                model, pre, _ = build_model(name, "none", n)
                state.check()  # superseded by another switch: stop here
                shapes = output_shapes(model, size)
            tree, head = LayerTree(model), head_path(model)
            try:  # the plan's ticks, set here rather than on the GUI thread
                tree.apply_spec(spec, head, name)
                applied = spec
            except TransferLabError:
                applied = None  # another network's layers: _tree_built starts over
            return tree, shapes, head, name, pre, applied

        self.structure_worker = w = TaskWorker(build)
        w.done.connect(self._tree_built)
        w.failed.connect(self._tree_failed)
        w.start()

    def cancel_build(self) -> None:
        """Detach the running build (it ends on its own; its result is dropped)."""
        if self.structure_worker is not None:
            self.structure_worker.stop()
            self.structure_worker = None

    def _show_busy(self) -> None:
        """While a build runs the old tree is out of date: show it greyed, not editable."""
        self.tree_box.setEnabled(False)
        self.panel.summary.setText(f"Building {self.combo.currentText()}…")

    def _tree_failed(self, message: str) -> None:  # a bound method: runs in the GUI thread
        self.structure_worker = None
        self.tree_box.setEnabled(True)
        self.panel.summary.setText(message)

    def _tree_built(self, result) -> None:
        from core.errors import TransferLabError

        self.structure_worker = None
        tree, shapes, head, arch, pre, applied = result
        if arch != self.model_name():  # a build for a network no longer chosen (queued
            return                     # before its worker was replaced): a newer one comes
        live = self.live_spec if self.panel.forward_to is not None else None
        try:
            if live:  # a run goes on: what it reported, not the plan
                tree.apply_spec(live, head, arch)
            elif applied != self.freeze_spec:  # the plan changed while the build ran
                tree.apply_spec(self.freeze_spec, head, arch)
        except TransferLabError:  # a spec naming another architecture's layers: start over
            self.freeze_spec, self.ticked_by_hand = "backbone", False
            tree.apply_spec(self.freeze_spec, head, arch)
        self.panel.set_tree(tree, shapes, head, arch)
        self.tree_box.setEnabled(True)
        self._show_preprocessing(pre)
        self.treeBuilt.emit()

    def set_freeze_spec(self, spec: str, by_hand: bool = False) -> None:
        """A preset's (or a reopened run's) freeze plan, e.g. 'early'; shown once the tree is
        (re)built."""
        from core.errors import TransferLabError

        self.freeze_spec, self.ticked_by_hand = spec, by_hand
        if self.panel.tree is not None:
            try:
                self.panel.tree.apply_spec(spec, self.panel.head, self.panel.arch)
            except TransferLabError:  # another network's layers: its tree, once built, shows it
                pass

    def choice(self) -> tuple[str, str, str, bool]:
        """What the tab holds: (model, weights, freeze spec, ticked by hand), to restore."""
        return self.model_name(), self.weights(), self.freeze_spec, self.ticked_by_hand

    def restore(self, choice: tuple[str, str, str, bool]) -> None:
        model, weights, spec, by_hand = choice
        self.set_freeze_spec(spec, by_hand)
        self.set_model(model, weights)

    def _spec_edited(self, spec: str) -> None:
        self.freeze_spec, self.ticked_by_hand = spec, True

    def attach_worker(self, worker) -> None:
        """During a run, edits go to the worker; the tree mirrors what it reports back."""
        self.live_spec = None
        if worker is None:
            self.panel.detach()
            if self.panel.tree is not None:  # back to showing the plan for the next run
                self.set_freeze_spec(self.freeze_spec, self.ticked_by_hand)
            return
        self.panel.attach(lambda spec, path, flag: (
            worker.apply_freeze(spec) if spec else worker.set_trainable(path, flag)),
            lambda: worker.state.paused)

    def mirror(self, event) -> None:
        """Show the trainer's reported state (PhaseChanged) on the structure copy; while the
        copy is still being built for the run's network, the report waits for it."""
        from core.events import USER

        self.live_spec = event.frozen_spec
        if self.panel.arch == self.model_name() and self.structure_worker is None:
            self.panel.reported(event.frozen_spec, event.reason == USER)
        elif event.reason == USER:
            self.panel.pending = max(0, self.panel.pending - 1)

    def _show_weights_status(self) -> None:
        """Whether the ImageNet weights are here, at once (cheap: a file check); the input
        size and normalisation follow when the build worker has found them."""
        from core.models import get_spec
        from core.models.weights import imagenet_weights_status

        self.info.setText(f"Input size and normalisation: finding them…\n"
                          f"{imagenet_weights_status(get_spec(self.model_name()))}")

    def _show_preprocessing(self, pre) -> None:
        """``pre``: the network's ImageNet preprocessing (its weights' config), found by the
        build worker."""
        from core.models import get_spec
        from core.models.weights import imagenet_weights_status

        spec = get_spec(self.model_name())
        mean = ", ".join(f"{v:.3f}" for v in pre.mean)
        std = ", ".join(f"{v:.3f}" for v in pre.std)
        self.info.setText(
            f"ImageNet input {pre.image_size} px (shorter side resized to {pre.resize_size}, "
            f"{pre.interpolation}, centre crop); mean ({mean}), std ({std}), as the weights' "
            f"own config says. Training resizes (with that filter) to the Train tab's "
            f"image size and saves this with the model.\n{imagenet_weights_status(spec)}")
