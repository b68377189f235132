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


def heat_overlay(image: QImage, heat, alpha: float = 0.6) -> QImage:
    """Blend a [0, 1] heat map (numpy, the image's height x width) over ``image`` in a
    blue-to-red colour scale; cold areas (and the margins the model never saw) stay as they
    are, so the colour marks only where the model looked."""
    import numpy as np

    h, w = heat.shape
    base = image.convertToFormat(QImage.Format_RGB888).scaled(w, h)
    ptr = base.constBits()
    rgb = np.frombuffer(ptr, dtype=np.uint8, count=base.bytesPerLine() * h) \
        .reshape(h, base.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).astype(np.float32)
    t = heat[..., None]
    colour = np.concatenate([np.clip(1.5 - np.abs(4 * t - 3), 0, 1),  # red
                             np.clip(1.5 - np.abs(4 * t - 2), 0, 1),  # green
                             np.clip(1.5 - np.abs(4 * t - 1), 0, 1)], axis=-1) * 255
    a = alpha * np.clip(t * 1.6, 0, 1)
    out = np.ascontiguousarray(((1 - a) * rgb + a * colour).astype(np.uint8))
    return QImage(out.data, w, h, 3 * w, QImage.Format_RGB888).copy()
