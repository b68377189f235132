"""The dataset map's points drawn into an RGBA image, with numpy, off the GUI thread.

Fifty thousand scatter items cost the GUI thread tens of milliseconds on every paint while
the user pans; one image costs almost nothing. So the map shows an image of the points,
drawn in a worker for the visible area and a margin around it; panning moves the image, and
a new one is drawn once the view rests (bench/map_stall.py measures both ways). No Qt here.
"""
from __future__ import annotations

import numpy as np

POINT = 2  # radius of a point, in pixels
RING = 5  # radius of the ring around a finding
MARGIN = 0.5  # drawn beyond the visible area on each side, as a share of its size


def _offsets(radius: int, ring: bool) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    dx, dy = np.meshgrid(r, r)
    d = np.hypot(dx, dy)
    keep = (np.abs(d - radius) < 0.6) if ring else (d <= radius + 0.3)
    return np.stack([dx[keep], dy[keep]], 1)


DISC, CIRCLE = _offsets(POINT, False), _offsets(RING, True)


def expanded(rect: tuple[float, float, float, float], margin: float = MARGIN):
    """(x0, y0, x1, y1) grown by ``margin`` of its size on every side."""
    x0, y0, x1, y1 = rect
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    return x0 - mx, y0 - my, x1 + mx, y1 + my


def render(xy: np.ndarray, rgb: np.ndarray, ringed: np.ndarray, ring_rgb, rect,
           size: tuple[int, int]) -> np.ndarray:
    """(height, width, 4) uint8: row 0 is ``rect``'s lowest y (the map's y grows upwards,
    as an image item places it). ``rgb``: (N, 3) uint8 per point; ``ringed``: which points
    get a ring (drawn over the points)."""
    w, h = size
    x0, y0, x1, y1 = rect
    img = np.zeros((h, w, 4), np.uint8)
    px = np.floor((xy[:, 0] - x0) / max(x1 - x0, 1e-12) * w).astype(np.int64)
    py = np.floor((xy[:, 1] - y0) / max(y1 - y0, 1e-12) * h).astype(np.int64)
    near = (px > -RING - 1) & (px < w + RING + 1) & (py > -RING - 1) & (py < h + RING + 1)
    order = np.nonzero(near)[0]
    order = order[np.random.default_rng(0).permutation(len(order))]  # no class always on top
    _stamp(img, px[order], py[order], rgb[order], DISC)
    rings = order[ringed[order]]
    colour = np.broadcast_to(np.asarray(ring_rgb, np.uint8), (len(rings), 3))
    _stamp(img, px[rings], py[rings], colour, CIRCLE)
    return img


def _stamp(img: np.ndarray, px, py, rgb, offsets) -> None:
    h, w = img.shape[:2]
    for dx, dy in offsets:
        x, y = px + dx, py + dy
        ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        img[y[ok], x[ok], :3] = rgb[ok]
        img[y[ok], x[ok], 3] = 255


def inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which of ``points`` (N, 2) lie inside ``polygon`` (M, 2): even-odd ray casting,
    vectorised over the points within the polygon's bounding box."""
    result = np.zeros(len(points), bool)
    lo, hi = polygon.min(0), polygon.max(0)
    box = np.nonzero(np.all((points >= lo) & (points <= hi), 1))[0]
    x, y = points[box, 0], points[box, 1]
    hit = np.zeros(len(box), bool)
    j = len(polygon) - 1
    for i in range(len(polygon)):
        (xi, yi), (xj, yj) = polygon[i], polygon[j]
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = (xj - xi) * (y - yi) / (yj - yi) + xi
        hit ^= crosses & (x < at)
        j = i
    result[box] = hit
    return result
