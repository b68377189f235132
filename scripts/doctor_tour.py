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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tour import Tour  # noqa: E402 - after the path


def main() -> int:
    import numpy as np
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    folder = sys.argv[1]
    tour = Tour("doctor")
    w, wait, shoot = tour.window, tour.wait, tour.shoot
    tour.load_torch()
    data, review = w.data_tab, w.review_tab
    data.set_source(folder)
    wait(data.scanned)
    data.table.selectRow(0)
    shoot("1-data")
    QTest.mouseClick(data.check_btn, Qt.LeftButton)
    wait(review.checked, ms=900_000)
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
    wait(until=lambda: m.coords is not None, ms=600_000)
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
