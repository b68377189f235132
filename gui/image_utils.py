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
    """Blend a [0, 1] heat map (numpy, of the photo's height x width: resized to the image's
    own size, a preview's) over ``image`` in a blue-to-red colour scale; cold areas (and the
    margins the model never saw) stay as they are, so the colour marks only where the model
    looked. Safe off the GUI thread."""
    import numpy as np
    from PIL import Image

    base = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = base.width(), base.height()
    if heat.shape != (h, w):
        heat = np.asarray(Image.fromarray(heat.astype(np.float32), mode="F")
                          .resize((w, h), Image.BILINEAR))
    ptr = base.constBits()
    rgb = np.frombuffer(ptr, dtype=np.uint8, count=base.bytesPerLine() * h) \
        .reshape(h, base.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).astype(np.float32)
    t = np.clip(heat, 0, 1)[..., None]
    colour = np.concatenate([np.clip(1.5 - np.abs(4 * t - 3), 0, 1),  # red
                             np.clip(1.5 - np.abs(4 * t - 2), 0, 1),  # green
                             np.clip(1.5 - np.abs(4 * t - 1), 0, 1)], axis=-1) * 255
    a = alpha * np.clip(t * 1.6, 0, 1)
    out = np.ascontiguousarray(((1 - a) * rgb + a * colour).astype(np.uint8))
    return QImage(out.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def decoded_image(path: str, max_side: int) -> QImage:
    """The picture as the model sees it (core's one decoder: turned upright, transparent
    areas on white), at most ``max_side`` px a side; a null QImage when it cannot be read.
    QImage may be made off the GUI thread: call this in a worker for anything but one
    small file."""
    from core.data.images import UnreadableImage, open_rgb

    try:
        img = open_rgb(path, draft=max_side)
    except UnreadableImage:
        return QImage()
    img.thumbnail((max_side, max_side))
    w, h = img.size
    return QImage(img.tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888).copy()
