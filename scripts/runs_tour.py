"""Drive the real window through the after-training actions of the Runs tab and grab the whole
screen at each step (dialogs included): docs/runs-*.png. Run under an X server (Xvfb):

    DISPLAY=:99 .venv/bin/python scripts/runs_tour.py RUNS_FOLDER

RUNS_FOLDER holds runs made beforehand (e.g. by `main.py train --out RUNS_FOLDER/NAME`); the
tour selects the first two, renames one, asks to delete one (and cancels), resumes a
stopped one (or the newest with more epochs), evaluates and exports the best one.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tour import Tour  # noqa: E402 - after the path


def main() -> int:
    from PySide6.QtCore import QItemSelectionModel, QTimer
    from PySide6.QtWidgets import QDialog

    root = sys.argv[1]
    tour = Tour("runs")
    app, w, wait, shoot = tour.app, tour.window, tour.wait, tour.shoot

    def select(names):
        view = w.runs_view
        sel = view.table.selectionModel()
        sel.clearSelection()
        for i in range(view.proxy.rowCount()):
            if view.proxy.index(i, 0).data() in names:
                sel.select(view.proxy.index(i, 0), QItemSelectionModel.Select
                           | QItemSelectionModel.Rows)

    tour.load_torch()
    w.select_tab("runs")
    view = w.runs_view
    view.set_roots([root])
    wait(view.listed)
    runs = sorted(view.runs, key=lambda r: r.date)
    select([r.name for r in runs[:2]])
    shoot("1-compare")

    select([runs[0].name])
    view.rename()
    view._dialog.setTextValue("baseline 128 px")
    shoot("2-rename")
    view._dialog.accept()
    wait(view.listed)

    select([runs[-1].name])
    view.delete()
    shoot("3-delete-confirm")
    view._confirm.reject()

    stopped = next((r for r in runs if r.status == "stopped"), runs[-1])
    select([stopped.name])
    view.actions["resume"].click()
    more = getattr(w, "_more", None)
    if more is not None and more.isVisible():
        shoot("4-resume-more-epochs")
        more.accept()
    wait(w.train_tab.runFinished, ms=600_000)
    shoot("5-resumed-one-history")

    w.select_tab("runs")
    view.refresh()
    wait(view.listed)
    best = max((r for r in view.runs if r.best_val_acc is not None),
               key=lambda r: r.best_val_acc)
    select([best.name])
    view.actions["evaluate"].click()
    wait(w.evaluate_tab.evaluated, ms=600_000)
    shoot("6-evaluated")

    out = Path(tempfile.mkdtemp(prefix="tl-export-")) / "model.onnx"

    def fill_dialog():
        dialog = app.activeModalWidget()
        if isinstance(dialog, QDialog):
            shoot("7-export-dialog")
            dialog.selectFile(str(out))
            dialog.accept()
        else:
            QTimer.singleShot(200, fill_dialog)

    QTimer.singleShot(500, fill_dialog)
    view.actions["export"].click()  # a modal file dialog: fill_dialog answers it
    wait(until=lambda: w.evaluate_tab.worker is None and "Exported" in
         w.evaluate_tab.message.text(), ms=300_000)
    shoot("8-exported")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
