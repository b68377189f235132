"""A newcomer's walk through the six tabs (issue 24), grabbing the whole screen at each step:
Data (split and its uncertainty, the class browser's validation marks), Model (the list's
parameter figures, a preset over hand-set ticks with its Undo), Train (the ETA of the phase,
a Pause in the last epoch), Evaluate (accuracy ±, a double-clicked top loss shown in the
Inference tab with its Grad-CAM), Inference (a labelled folder's true classes, a transparent
PNG), Runs (same settings, freeze changes, rename), Help > About. Run under an X server:

    DISPLAY=:93 .venv/bin/python scripts/walkthrough_tour.py DATA TEST_FOLDER OUT_DIR [--dark]

DATA: a folder of class sub-folders (no val/); TEST_FOLDER: labelled photos (class
sub-folders named like DATA's) and loose images; OUT_DIR gets NN-name.png. The run uses
EfficientNet-Lite0, whose ImageNet weights ship with TransferLab (no network needed).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class Tour:
    def __init__(self, app, window, out: Path):
        self.app, self.w, self.out, self.n = app, window, out, 0

    @staticmethod
    def wait(signal=None, ms=120_000, until=None) -> None:
        from tour import wait  # (scripts/tour.py)

        wait(signal, ms, until)

    def shoot(self, name: str) -> None:
        from tour import grab_screen

        self.n += 1
        grab_screen(self.app, self.out / f"{self.n:02d}-{name}.png")


def main() -> int:
    from PySide6.QtCore import QItemSelectionModel, Qt
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow
    from gui.style import STYLESHEET, dark_palette

    data, test, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-tour-"))
    app = QApplication(["TransferLab"])
    app.setStyle("Fusion")
    if "--dark" in sys.argv:
        app.setPalette(dark_palette())
    app.setStyleSheet(STYLESHEET)
    w = MainWindow()
    w.resize(1400, 900)
    w.move(0, 0)
    w.show()
    t = Tour(app, w, out)
    w.start_loading_torch()
    t.wait(w.torchReady)

    # --- Data: the table's split, its uncertainty, the browser's validation marks ----------
    form = w.train_tab.form
    form.preset.setCurrentIndex(form.preset.findData("fast-cpu"))
    form.set_values({"val_split": 0.1, "epochs": 4, "image_size": 128})
    w.select_tab("data")
    w.data_tab.set_source(data)
    t.wait(w.data_tab.scanned)
    t.wait(ms=1500)
    t.shoot("data-split-and-uncertainty")
    browser = w.data_tab.browse_class(0)
    browser.move(420, 120)
    t.wait(until=lambda: bool(browser.files))
    t.wait(ms=2500)  # thumbnails
    t.shoot("class-browser-validation-marked")
    browser.close()

    # --- Model: the list, hand-set ticks replaced by a preset, Undo -------------------------
    mt = w.model_tab
    w.select_tab("model")
    mt.set_model("mobilenet_v2", "imagenet")
    t.wait(until=lambda: mt.panel.arch == "mobilenet_v2" and mt.structure_worker is None)
    mt.combo.showPopup()
    t.shoot("model-list-params-and-downloads")
    mt.combo.hidePopup()
    qt = mt.panel.model
    qt.setData(qt.index_of("features.17"), Qt.CheckState.Unchecked.value,
               Qt.ItemDataRole.CheckStateRole)
    form.preset.setCurrentIndex(form.preset.findData("seed"))
    form.preset.setCurrentIndex(form.preset.findData("fast-cpu"))
    form.set_values({"epochs": 4, "image_size": 128})
    t.wait(until=lambda: mt.panel.arch == "efficientnet_lite0" and mt.structure_worker is None)
    t.shoot("preset-replaced-hand-ticks-undo-offered")
    w.undo_notice.undo()
    t.wait(until=lambda: mt.panel.arch == "mobilenet_v2" and mt.structure_worker is None)
    t.shoot("undo-restored-the-ticks")
    mt.set_model("efficientnet_lite0", "imagenet")  # the network whose weights are here
    mt.set_freeze_spec("early,depthwise:5")
    t.wait(until=lambda: mt.panel.arch == "efficientnet_lite0" and mt.structure_worker is None)

    # --- Train: the phase's ETA, Pause in the last epoch ----------------------------------
    tab = w.train_tab
    w.select_tab("train")
    tab.start()
    t.wait(until=lambda: "ETA" in tab.status.text(), ms=600_000)
    t.shoot("train-eta-of-this-phase")
    def epochs() -> int:  # the run's own count (fitting to the data may change the form's)
        return tab.progress.maximum() // max(tab.batches_per_epoch, 1)

    t.wait(until=lambda: len(tab.history) >= 2 and "ETA" in tab.status.text(), ms=900_000)
    t.shoot("train-eta-later-epoch")
    t.wait(until=lambda: len(tab.history) >= epochs() - 1 or not tab.running, ms=900_000)
    tab.toggle_pause()  # in the last epoch
    t.wait(until=lambda: tab.status.text().startswith("Paused") or not tab.running, ms=60_000)
    t.shoot("paused-in-the-last-epoch")
    if tab.running:
        tab.toggle_pause()
    t.wait(tab.runFinished, until=lambda: not tab.running, ms=600_000)
    t.wait(until=lambda: not tab.running)
    t.shoot("train-finished-accuracy-uncertainty")

    # --- Evaluate: accuracy ±, a double-clicked top loss ----------------------------------
    ev = w.evaluate_tab
    w.select_tab("evaluate")
    ev.evaluate()
    t.wait(ev.evaluated, until=lambda: ev.evaluation is not None)
    t.wait(until=lambda: ev.worker is None)
    ev.show_top_losses()
    if ev.images.count() == 0 and ev.evaluation.images:
        ev.show_cell(0, 0)
    t.shoot("evaluate-accuracy-plus-minus")
    if ev.images.count():
        item = ev.images.item(0)
        ev.images.itemActivated.emit(item)
        inf = w.inference_tab
        t.wait(until=lambda: inf.selected() is not None and
               inf.cam.status.text().startswith("Grad-CAM for"), ms=300_000)
        t.shoot("top-loss-opened-once-with-its-gradcam")

    # --- Inference: a labelled folder, a transparent PNG ----------------------------------
    inf = w.inference_tab
    w.select_tab("inference")
    inf.cam_box.setChecked(False)
    inf.clear()
    inf.predict([str(test)])
    t.wait(inf.predictionsDone, ms=180_000)
    wrong = [r for r in range(len(inf.table_model.rows)) if inf.table_model.wrong(r)]
    if wrong:
        inf.select_path(inf.table_model.rows[wrong[0]].path)
    t.shoot("inference-folder-true-classes")
    logo = next(test.glob("*.png"), None)
    if logo is not None:
        inf.select_path(str(logo))
        t.wait(ms=2000)
        t.shoot("transparent-png-on-white")

    # --- Runs: same settings, rename keeps the selection -----------------------------------
    w.select_tab("runs")
    rv = w.runs_view
    rv.refresh()
    t.wait(rv.listed)
    if rv.runs:
        import shutil

        first = Path(rv.runs[0].path)
        twin = first.with_name(first.name + "-twin")
        if not twin.exists():
            shutil.copytree(first, twin)
        rv.refresh()
        t.wait(rv.listed)
        rv.table.selectAll()
        t.shoot("runs-same-settings")
        rv.table.selectionModel().select(rv.proxy.index(0, 0),
                                         QItemSelectionModel.ClearAndSelect
                                         | QItemSelectionModel.Rows)
        rv.set_label(rv.current().path, "first try")
        t.wait(rv.listed)
        t.shoot("renamed-still-selected")

    # --- Help > About ------------------------------------------------------------------------
    from gui.window_menus import show_about

    dialog = show_about(w)
    dialog.move(300, 120)
    t.wait(until=lambda: dialog.table.rowCount() > 0)
    t.shoot("help-about")
    dialog.close()
    w.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
