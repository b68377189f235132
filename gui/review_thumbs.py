"""Thumbnails for the Review view and the dataset map, made off the GUI thread.

Pixels come from the project's one decoder (core.data.images.open_rgb: EXIF rotation,
transparency on white, 16-bit images, the size limits); only the shrinking and the QImage
happen here. QImage (unlike QPixmap) may be made in a worker thread.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter

THUMB = 112


def thumbnail(path: str, size: int = THUMB) -> QImage:
    """``path`` shrunk to fit ``size`` x ``size`` (a null QImage when it cannot be read)."""
    from core.data.images import UnreadableImage, open_rgb

    try:
        img = open_rgb(path)
    except UnreadableImage:
        return QImage()
    img.thumbnail((size, size))  # the decoded pixels, made smaller (keeps the aspect ratio)
    data = img.tobytes()
    w, h = img.size
    return QImage(data, w, h, 3 * w, QImage.Format_RGB888).copy()


def array_thumbnail(array, size: int = THUMB) -> QImage:
    """An (H, W, 3) uint8 array (CIFAR's images are arrays, not files), enlarged pixelated."""
    import numpy as np

    arr = np.ascontiguousarray(array)
    h, w, _ = arr.shape
    image = QImage(arr.data, w, h, 3 * w, QImage.Format_RGB888).copy()
    return image.scaled(size, size, Qt.KeepAspectRatio, Qt.FastTransformation)


def side_by_side(left: QImage, right: QImage, size: int = THUMB) -> QImage:
    """Two thumbnails in one (a duplicate pair: the copy that stays, then the other)."""
    out = QImage(2 * size + 4, size, QImage.Format_ARGB32_Premultiplied)
    out.fill(Qt.transparent)
    painter = QPainter(out)
    for x, image in ((0, left), (size + 4, right)):
        if not image.isNull():
            img = image.scaled(size, size, Qt.KeepAspectRatio, Qt.SmoothTransformation)
            painter.drawImage(x + (size - img.width()) // 2, (size - img.height()) // 2, img)
    painter.end()
    return out


_arrays: dict[str, object] = {}  # built-in datasets' pixels, loaded once, in a worker


def entry_image(source: str, root: str, rel: str, size: int = THUMB) -> QImage:
    """The thumbnail of ``rel`` of a check's dataset: a file under ``root``, or one of a
    built-in dataset's images (``root`` empty; rel "train/00012")."""
    import os

    if root:
        return thumbnail(os.path.join(root, *rel.split("/")), size)
    if source not in _arrays:
        from core.doctor.items import list_items

        _arrays[source] = list_items(source).arrays
    split, index = rel.split("/")
    return array_thumbnail(_arrays[source][split][int(index)], size)


def thumbnails_task(source: str, root: str, todo: list[tuple[str, str]], state) -> dict:
    """{(rel, other): QImage} for the Review grid; a pair (``other`` set) side by side."""
    out = {}
    for n, (rel, other) in enumerate(todo):
        if n % 8 == 0:
            state.check()
        image = entry_image(source, root, rel)
        if other:
            image = side_by_side(entry_image(source, root, other), image)
        out[(rel, other)] = image
    return out
