"""Drive the real window through the data doctor and grab the whole screen at each step:
docs/doctor-*.png. Run under an X server (Xvfb):

    DISPLAY=:95 .venv/bin/python scripts/doctor_tour.py FOLDER

FOLDER is an image folder with mistakes in it, e.g. the planted ants/bees photos that
``bench/check_planted.py photos --keep DIR`` leaves in DIR/hymenoptera-photos (with
TRANSFERLAB_HOME=DIR/home the check reuses that run's features). The tour chooses the
folder on the Data tab, presses Check, shows the label issues and the train/val leakage,
relabels the surest issue with the keyboard (R) and undoes it (Ctrl+Z), then opens the map,
hovers a point and lassoes a cluster. The folder ends as it began.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs"


def main() -> int:
    import numpy as np
    from PySide6.QtCore import QEventLoop, QPointF, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow
    from gui.style import STYLESHEET

    folder = sys.argv[1]
    app = QApplication(["TransferLab"])
    app.setStyle("Fusion")
    app.setStyleSheet(STYLESHEET)
    w = MainWindow()
    w.resize(1400, 900)
    w.move(0, 0)
    w.show()

    def wait(signal=None, ms=600_000, until=None):
        loop = QEventLoop()
        if signal is not None:
            signal.connect(loop.quit)
        timer = QTimer(singleShot=True, interval=ms)
        timer.timeout.connect(loop.quit)
        timer.start()
        if until is not None:
            poll = QTimer(interval=100)
            poll.timeout.connect(lambda: until() and loop.quit())
            poll.start()
        loop.exec()

    def shoot(name):
        wait(ms=600)  # let the paint settle
        app.primaryScreen().grabWindow(0).save(str(DOCS / f"doctor-{name}.png"))
        print(f"docs/doctor-{name}.png", flush=True)

    QTimer.singleShot(0, w.start_loading_torch)
    wait(w.torchReady)
    data, review = w.data_tab, w.review_tab
    data.set_source(folder)
    wait(data.scanned)
    data.table.selectRow(0)
    shoot("1-data")
    QTest.mouseClick(data.check_btn, Qt.LeftButton)
    wait(review.checked)
    wait(until=lambda: "thumbs" not in review.workers, ms=60_000)
    shoot("2-review")
    review.grid.setCurrentRow(0)
    rel = review.shown[0].rel
    w.activateWindow()  # keyboard shortcuts reach the active window (no window manager here)
    review.grid.setFocus()
    wait(ms=300)
    QTest.keyClick(review.grid, Qt.Key_R)
    wait(data.scanned, ms=60_000)
    assert not (Path(folder) / rel).exists(), "R relabelled the image"
    wait(until=lambda: "thumbs" not in review.workers, ms=60_000)
    shoot("3-relabelled")
    QTest.keyClick(review.grid, Qt.Key_Z, Qt.ControlModifier)
    wait(data.scanned, ms=60_000)
    assert (Path(folder) / rel).exists(), "undo put the file back"
    leak = review.reasons.findItems("In train and", Qt.MatchStartsWith)[0]
    review.reasons.setCurrentItem(leak)
    wait(until=lambda: "thumbs" not in review.workers, ms=60_000)
    shoot("4-leakage")
    review.views.setCurrentIndex(1)
    m = review.map
    wait(until=lambda: m.coords is not None)
    rows = m.finding_rows()
    target = m.coords[rows[0] if len(rows) else 0]
    m.view.autoRange()
    wait(ms=300)
    scene = m.view.mapViewToScene(QPointF(float(target[0]), float(target[1])))
    m._moved(scene)
    wait(until=lambda: m.hover_image.isVisible(),
         ms=20_000)
    shoot("5-map")
    labels = np.asarray(review.report.labels)
    xy = m.coords[labels == 0]
    lo, hi = np.percentile(xy, 20, 0), np.percentile(xy, 80, 0)
    m._lassoed(np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]]))
    wait(until=lambda: "thumbs" not in review.workers, ms=60_000)
    shoot("6-lasso")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
