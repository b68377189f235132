"""The dataset as a map: one point per image, placed by core.doctor.embedding, coloured by
class (or by whether the out-of-sample prediction agrees with the given class), findings
ringed. Hovering shows the image, a click opens it in the Inference tab, and the lasso
(drag with *Lasso* on) selects points for the Review actions.

The points are an image drawn in a worker (gui.dataset_map_raster), shown in a pyqtgraph
view: panning 50,000 points moves one image (bench/map_stall.py measures the GUI thread's
longest stall). The map itself is computed in a worker; hover thumbnails are decoded in one
too, the newest request winning.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainterPath, QPalette, QPixmap
from PySide6.QtWidgets import (QComboBox, QFrame, QGraphicsPathItem, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QVBoxLayout, QWidget)

from gui.dataset_map_raster import MARGIN, expanded, inside, render
from gui.dialogs import show_progress

LEGEND_POINT = 8
RENDER_REST_MS = 100  # the points are drawn again once the view rests this long
HOVER_PX = 8  # how near the pointer must be to a point, in screen pixels
HOVER_REST_MS = 120  # the thumbnail is asked for once the pointer rests on a point
MAX_LASSO = 200  # vertices kept of a lasso path
LASSO = QColor(220, 30, 30)


def palette(n: int) -> list[QColor]:
    return [pg.intColor(i, hues=max(n, 1), values=1, maxValue=230, minValue=150)
            for i in range(n)]


class LassoViewBox(pg.ViewBox):
    """A ViewBox that, in lasso mode, draws a free-hand path instead of panning."""

    lassoDone = Signal(object)  # (M, 2) numpy polygon in data coordinates

    def __init__(self):
        super().__init__()
        self.lasso = False
        self._path: list[QPointF] = []
        self._item = QGraphicsPathItem()
        self._item.setPen(pg.mkPen(LASSO, width=1.5, style=Qt.DashLine))
        self.addItem(self._item, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 - Qt's name
        if not self.lasso or ev.button() != Qt.LeftButton:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        self._path.append(self.mapToView(ev.pos()))
        path = QPainterPath(self._path[0])
        for p in self._path[1:]:
            path.lineTo(p)
        self._item.setPath(path)
        if ev.isFinish():
            points = np.array([(p.x(), p.y()) for p in self._path])
            self._path = []
            self._item.setPath(QPainterPath())
            if len(points) >= 3:
                step = max(1, len(points) // MAX_LASSO)
                self.lassoDone.emit(points[::step])


class DatasetMap(QWidget):
    selected = Signal(list)  # rows (indices into report.rows) chosen with the lasso
    clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.report, self.coords = None, None
        self.workers: dict[str, object] = {}
        self.view = LassoViewBox()
        self.plot = pg.PlotWidget(viewBox=self.view)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setAspectLocked(True)
        self.legend = self.plot.addLegend(offset=(8, 8))
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self._rgb = self._ringed = None
        self._render_timer = QTimer(self, singleShot=True, interval=RENDER_REST_MS)
        self._render_timer.timeout.connect(self._render)
        self.view.sigRangeChanged.connect(lambda *_: self._render_timer.start())
        self._controls()
        self.hover = QFrame(self.plot)
        self.hover.setFrameShape(QFrame.Box)
        self.hover.setAutoFillBackground(True)
        self.hover_image, self.hover_text = QLabel(), QLabel()
        box = QVBoxLayout(self.hover)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(self.hover_image)
        box.addWidget(self.hover_text)
        self.hover.hide()
        self._hover_row = -1
        self._hover_timer = QTimer(self, singleShot=True, interval=HOVER_REST_MS)
        self._hover_timer.timeout.connect(self._request_thumb)
        self.view.lassoDone.connect(self._lassoed)
        self.plot.scene().sigMouseMoved.connect(self._moved)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        top = QHBoxLayout()
        for w in (self.colour, self.lasso_btn):
            top.addWidget(w)
        top.addWidget(self.note, 1)
        top.addWidget(self.progress)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.plot, 1)

    def _controls(self) -> None:
        self.colour = QComboBox()
        self.colour.addItems(["Colour by class", "Colour by correct / wrong"])
        self.colour.currentIndexChanged.connect(lambda _i: self._draw())
        self.lasso_btn = QPushButton("Lasso")
        self.lasso_btn.setCheckable(True)
        self.lasso_btn.setToolTip("Drag around points to select them for the Review actions")
        self.lasso_btn.toggled.connect(self._lasso_toggled)
        self.note = QLabel("The map appears after a check.")
        self.progress = QProgressBar()
        self.progress.hide()

    # --- data ---------------------------------------------------------------------------
    def set_report(self, report) -> None:
        from core.doctor.embedding import cached_embed

        self.report, self.coords = report, None
        self._clear()
        if report.map_input is None or not len(report.rows):
            return
        self.note.setText(f"Drawing the map of {len(report.rows):,} images…")
        self.progress.setRange(0, 0)
        self.progress.show()
        x = report.map_input
        self._start("embed", lambda state: cached_embed(x, state), self._embedded)

    def set_coords(self, report, coords: np.ndarray) -> None:
        """Show ``coords`` (N, 2) for ``report`` at once (the benchmark, tests)."""
        self.report, self.coords = report, np.asarray(coords, np.float32)
        self._draw()

    def _embedded(self, coords) -> None:
        self.workers.pop("embed", None)
        self.progress.hide()
        self.coords = coords
        self._draw()

    def _clear(self) -> None:
        self.legend.clear()
        self.image.clear()

    def _groups(self):
        """(name, colour, row mask) per colour."""
        r = self.report
        labels = np.asarray(r.labels)
        if self.colour.currentIndex() == 1 and r.predicted:
            right = np.asarray(r.predicted) == labels
            return [("predicted as given", QColor(150, 150, 150), right),
                    ("predicted otherwise", QColor(230, 120, 0), ~right)]
        return [(name, colour, labels == c)
                for c, (name, colour) in enumerate(zip(r.classes, palette(len(r.classes))))]

    def _draw(self) -> None:
        """New points or colours: the legend, each point's colour, the view, the image."""
        if self.report is None or self.coords is None:
            return
        self._clear()
        xy = self.coords
        self._rgb = np.zeros((len(xy), 3), np.uint8)
        show_legend = len(self.report.classes) <= 20 or self.colour.currentIndex() == 1
        for name, colour, mask in self._groups():
            self._rgb[mask] = (colour.red(), colour.green(), colour.blue())
            if show_legend:
                self.legend.addItem(pg.ScatterPlotItem(size=LEGEND_POINT, pen=None,
                                                       brush=pg.mkBrush(colour)), name)
        marked = self.finding_rows()
        self._ringed = np.zeros(len(xy), bool)
        self._ringed[marked] = True
        lo, hi = xy.min(0).astype(float), xy.max(0).astype(float)
        self.view.setRange(xRange=(lo[0], hi[0]), yRange=(lo[1], hi[1]), padding=0.05)
        self._render()
        self.note.setText(f"{len(xy):,} images; {len(marked)} with findings (ringed). Hover "
                          f"to see one, click to open it in the Inference tab.")

    def _render(self) -> None:
        """Draw the visible area and a margin around it, in a worker."""
        if self.coords is None or self._rgb is None:
            return
        (x0, x1), (y0, y1) = self.view.viewRange()
        rect = expanded((x0, y0, x1, y1))
        scale = (1 + 2 * MARGIN) * self.devicePixelRatioF()
        size = (max(1, int(self.view.width() * scale)), max(1, int(self.view.height() * scale)))
        ring = self.palette().color(QPalette.WindowText)  # apart from every class colour
        args = (self.coords, self._rgb, self._ringed, (ring.red(), ring.green(), ring.blue()))
        self._start("render", lambda _s: (rect, render(*args, rect, size)), self._rendered)

    def _rendered(self, result) -> None:
        self.workers.pop("render", None)
        (x0, y0, x1, y1), img = result
        self.image.setImage(img, autoLevels=False)
        self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))

    def finding_rows(self) -> np.ndarray:
        r = self.report
        rels = {i.rel for i in r.label_issues} | {o.rel for o in r.outliers} \
            | {d.b for d in r.duplicates} | {d.a for d in r.duplicates}
        return np.array([i for i, rel in enumerate(r.rows) if rel in rels], dtype=np.int64)

    # --- pointer ------------------------------------------------------------------------
    def nearest(self, scene_pos) -> int:
        """The row of the point under ``scene_pos`` (within HOVER_PX), or -1."""
        if self.coords is None or not len(self.coords):
            return -1
        p = self.view.mapSceneToView(scene_pos)
        px, py = self.view.viewPixelSize()
        d = ((self.coords[:, 0] - p.x()) / px) ** 2 + ((self.coords[:, 1] - p.y()) / py) ** 2
        row = int(d.argmin())
        return row if d[row] <= HOVER_PX ** 2 else -1

    def _moved(self, scene_pos) -> None:
        if self.view.lasso:
            return
        row = self.nearest(scene_pos)
        if row < 0:
            self.hover.hide()
            self._hover_row = -1
            return
        pos = self.plot.mapFromScene(scene_pos)
        self.hover.move(pos.x() + 14, pos.y() + 14)
        if row != self._hover_row:
            self._hover_row = row
            self._show_hover(row)

    def _show_hover(self, row: int) -> None:
        r = self.report
        rel, label = r.rows[row], r.classes[r.labels[row]]
        guess = r.classes[r.predicted[row]] if r.predicted else label
        text = f"{rel}\n{label}" + (f" (looks like {guess})" if guess != label else "")
        self.hover_text.setText(text)
        self.hover_image.clear()
        self.hover_image.hide()
        self.hover.adjustSize()
        self.hover.show()
        self._hover_timer.start()

    def _request_thumb(self) -> None:
        from gui.review_thumbs import entry_image

        r, row = self.report, self._hover_row
        if row < 0 or r is None:
            return
        rel = r.rows[row]
        self._start("hover", lambda _s: (row, entry_image(r.source, r.root, rel, 128)),
                    self._hover_ready)

    def _hover_ready(self, result) -> None:
        self.workers.pop("hover", None)
        row, image = result
        if row != self._hover_row or image.isNull():
            return
        self.hover_image.setPixmap(QPixmap.fromImage(image))
        self.hover_image.show()
        self.hover.adjustSize()

    def _clicked(self, ev) -> None:
        if self.view.lasso or ev.button() != Qt.LeftButton:
            return
        row = self.nearest(ev.scenePos())
        if row >= 0:
            self.clicked.emit(row)

    def _lasso_toggled(self, on: bool) -> None:
        self.view.lasso = on
        self.view.setMouseEnabled(True, True)
        self.hover.hide()

    def _lassoed(self, polygon: np.ndarray) -> None:
        if self.coords is None:
            return
        rows = np.nonzero(inside(self.coords, polygon))[0].tolist()
        self.lasso_btn.setChecked(False)
        if rows:
            self.selected.emit(rows)

    # --- workers ------------------------------------------------------------------------
    def _start(self, role: str, fn, on_done) -> None:
        from core.frontends.qt_worker import TaskWorker

        old = self.workers.pop(role, None)
        if old is not None:
            old.stop()
        self.workers[role] = w = TaskWorker(fn)
        w.done.connect(on_done)
        w.failed.connect(lambda m: self.note.setText(m))
        if role == "embed":
            w.progress.connect(lambda e: show_progress(self.progress, e))
        w.start()

    def stop(self) -> None:
        for w in self.workers.values():
            w.stop()
        self.workers.clear()
