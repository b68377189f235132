"""The Evaluate tab's image list: the images of one confusion cell (or the top losses), a
thumbnail each, highest loss first. Thumbnails are decoded in a worker with core's decoder
(what the model sees, transparent areas on white); a newer list cancels the older one's.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from gui.image_utils import decoded_image

THUMB = 72
MAX_THUMBS = 200  # a cell with more images lists the highest-loss ones


class LossImages(QListWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.thumbs = None  # the worker decoding the listed images' thumbnails
        self.setViewMode(QListWidget.IconMode)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setResizeMode(QListWidget.Adjust)
        self.setGridSize(QSize(THUMB + 110, THUMB + 48))
        self.setWordWrap(True)

    def show_results(self, results) -> None:
        """``results``: core.inference.evaluate's per-image results, highest loss first."""
        self.clear()
        for r in results[:MAX_THUMBS]:
            item = QListWidgetItem(f"{Path(r.path).name}\n"
                                   f"{r.predicted} {r.p_predicted:.2f} · {r.true} {r.p_true:.2f}")
            item.setData(Qt.UserRole, r.path)
            item.setToolTip(f"{r.path}\nloss {r.loss:.3f}")
            self.addItem(item)
        self._load_thumbnails([r.path for r in results[:MAX_THUMBS]])

    def paths(self) -> list[str]:
        return [self.item(i).data(Qt.UserRole) for i in range(self.count())]

    def _load_thumbnails(self, paths: list[str]) -> None:
        """Decoded in a worker: 200 photos would hold the window for seconds."""
        from core.frontends.qt_worker import PartialTaskWorker

        if self.thumbs is not None:
            self.thumbs.stop()
            self.thumbs = None
        if not paths:
            return

        def task(state):
            for start in range(0, len(paths), 8):
                state.check()
                w.emit_partial([(start + i, decoded_image(p, THUMB))
                                for i, p in enumerate(paths[start:start + 8])])

        self.thumbs = w = PartialTaskWorker(task)
        w.partial.connect(self._thumbnails_ready)
        w.start()

    def _thumbnails_ready(self, batch) -> None:  # a bound method: runs in the GUI thread
        for row, image in batch:
            item = self.item(row)
            if item is not None and not image.isNull():
                pixmap = QPixmap.fromImage(image)
                if max(image.width(), image.height()) < THUMB:  # CIFAR's 32 px: pixelated
                    pixmap = pixmap.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation)
                item.setIcon(QIcon(pixmap))
