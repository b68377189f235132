"""uint8 image tensors/arrays to Qt pixmaps (the GUI side of the decoded datasets)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap


def chw_to_pixmap(chw, size: int) -> QPixmap:
    """A (3,H,W) uint8 tensor to a ``size`` px pixmap (pixelated when enlarged, like CIFAR)."""
    arr = chw.permute(1, 2, 0).contiguous().numpy()
    h, w, _ = arr.shape
    image = QImage(arr.data, w, h, 3 * w, QImage.Format_RGB888).copy()
    mode = Qt.FastTransformation if w < size else Qt.SmoothTransformation
    return QPixmap.fromImage(image).scaled(size, size, Qt.KeepAspectRatio, mode)
