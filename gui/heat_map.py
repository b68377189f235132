"""The Evaluate tab's confusion matrix as a clickable heat map."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal

from gui.plot_style import follow_palette, pg


class HeatMap(pg.GraphicsLayoutWidget):
    """Confusion matrix as an image: x = predicted, y = true (first class at the top)."""

    cellClicked = Signal(int, int)  # true, predicted

    def __init__(self):
        follow_palette()
        super().__init__()
        self.plot = self.addPlot()
        self.plot.invertY(True)
        self.plot.setLabel("bottom", "predicted")
        self.plot.setLabel("left", "true")
        self.plot.setMouseEnabled(False, False)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.scene().sigMouseClicked.connect(self._clicked)
        self.plot.addItem(self.image)
        self.labels: list[pg.TextItem] = []
        self.clear_matrix()

    def clear_matrix(self) -> None:
        """No matrix: no meaningless numbers on the axes."""
        self.image.clear()
        for item in self.labels:
            self.plot.removeItem(item)
        self.labels = []
        for axis in ("bottom", "left"):
            self.plot.hideAxis(axis)

    def show_matrix(self, matrix, classes: list[str], fmt: str) -> None:
        m = np.asarray(matrix, dtype=float)
        self.image.setImage(m.T, levels=(0, max(m.max(), 1e-9)))
        ticks = [(i + 0.5, c) for i, c in enumerate(classes)]
        for axis in ("bottom", "left"):
            self.plot.showAxis(axis)
            self.plot.getAxis(axis).setTicks([ticks])
        for item in self.labels:
            self.plot.removeItem(item)
        self.labels = []
        if len(classes) <= 20:
            for (t, p), v in np.ndenumerate(m):
                dark_cell = v < 0.6 * m.max()  # viridis: dark at the bottom, yellow on top
                text = pg.TextItem(fmt.format(v), color="w" if dark_cell else "k",
                                   anchor=(0.5, 0.5))
                text.setPos(p + 0.5, t + 0.5)
                self.plot.addItem(text)
                self.labels.append(text)
        self.plot.autoRange(padding=0)

    def _clicked(self, event) -> None:
        if self.image.image is None or event.button() != Qt.LeftButton:
            return
        pos = self.image.mapFromScene(event.scenePos())
        n_pred, n_true = self.image.image.shape[:2]
        if 0 <= pos.x() < n_pred and 0 <= pos.y() < n_true:
            self.cellClicked.emit(int(pos.y()), int(pos.x()))
