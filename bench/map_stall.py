"""The dataset map with 50,000 points: how long the GUI thread stalls while the user pans,
zooms and hovers.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/map_stall.py [--points 50000] [--seconds 20]
    (or DISPLAY=:95 under Xvfb, to paint through a real X server)

A map of ``--points`` images in 10 classes with 5% of them ringed as findings is shown in
the Review tab's map widget; then, for ``--seconds``, a 16 ms timer pans the view a step,
zooms in or out every 40 steps and moves the pointer over the points (hover: nearest-point
search and the thumbnail request), as a user dragging would, resting 20 steps in every 80
(the points are drawn again, in a worker, once the view rests). A 10 ms probe timer
(bench/ui_stall.py's) records how late each tick fires: the longest gap minus 10 ms is the
worst stall the user could feel. Also timed: drawing the map once (on the GUI thread), and
one lasso selection around a quarter of the points. Goal: longest stall under 50 ms (a
frame at 20 per second); the machine is shared, so figures are pessimistic.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import common  # noqa: F401 - sets sys.path


def fake_report(n: int, classes: int = 10):
    from core.doctor.report import CheckReport, LabelIssue

    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, n).tolist()
    names = [f"class{c}" for c in range(classes)]
    rows = [f"train/{names[c]}/{i:05d}.jpg" for i, c in enumerate(labels)]
    predicted = [c if rng.random() > 0.1 else (c + 1) % classes for c in labels]
    import tempfile

    # files that are not there: hovering asks for their thumbnails like for real ones (the
    # decoding is the worker's, not the GUI thread's), and each comes back empty at once
    r = CheckReport("bench", tempfile.mkdtemp(prefix="tl-map-"), names, {"train": [n // classes] * classes}, rows=rows,
                    labels=labels, splits=["train"] * n, predicted=predicted)
    r.label_issues = [LabelIssue(rows[i], names[labels[i]], names[(labels[i] + 1) % classes],
                                 0.9) for i in rng.choice(n, n // 20, replace=False)]
    return r


def coords_for(labels: list[int]) -> np.ndarray:
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 30, (max(labels) + 1, 2))
    return (centres[np.asarray(labels)] + rng.normal(0, 6, (len(labels), 2))).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QPointF, QTimer
    from PySide6.QtWidgets import QApplication

    from gui.dataset_map import DatasetMap
    from gui.dataset_map_raster import inside
    from ui_stall import Probe, pump

    app = QApplication([])
    report = fake_report(args.points)
    xy = coords_for(report.labels)
    m = DatasetMap()
    m.resize(1200, 800)
    m.show()
    pump(app, lambda: False, 0.5)
    t = time.perf_counter()
    m.set_coords(report, xy)
    app.processEvents()
    draw_ms = 1000 * (time.perf_counter() - t)
    pump(app, lambda: m.image.image is not None, 120)
    first_ms = 1000 * (time.perf_counter() - t)
    probe, steps = Probe(), [0]
    rng = np.random.default_rng(2)

    def step():
        steps[0] += 1
        s = steps[0]
        if s % 80 >= 60:  # a rest of 20 steps after 60: the points are drawn again
            return
        m.view.translateBy(x=0.8 * np.sin(s / 50), y=0.8 * np.cos(s / 70))
        if s % 40 == 0:
            m.view.scaleBy((0.8, 0.8) if (s // 40) % 2 else (1.25, 1.25))
        w, h = m.plot.width(), m.plot.height()
        pos = m.plot.mapToScene(int(rng.uniform(0.2, 0.8) * w), int(rng.uniform(0.2, 0.8) * h))
        m._moved(QPointF(pos))

    timer = QTimer(interval=16)
    timer.timeout.connect(step)
    timer.start()
    pump(app, lambda: False, args.seconds)
    timer.stop()
    print(f"{args.points:,} points ({len(report.label_issues):,} ringed), "
          f"{os.environ['QT_QPA_PLATFORM']} platform, load average {os.getloadavg()[0]:.1f}")
    print(f"showing the map: {draw_ms:.0f} ms on the GUI thread; its first image drawn "
          f"(in a worker) {first_ms:.0f} ms after")
    probe.report(f"pan/zoom/hover for {args.seconds:.0f} s, {steps[0]} steps")
    lo, hi = np.percentile(xy, 25, 0), np.percentile(xy, 75, 0)
    box = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    box = np.repeat(box, 50, 0)  # a lasso path has many vertices
    t = time.perf_counter()
    n = int(inside(xy, box).sum())
    print(f"lasso of {len(box)} vertices around {n:,} points: "
          f"{1000 * (time.perf_counter() - t):.0f} ms")
    m.stop()


if __name__ == "__main__":
    main()
