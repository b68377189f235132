"""The dataset map's drawing and lasso geometry (gui.dataset_map_raster: numpy, no Qt)."""
from __future__ import annotations

import numpy as np

from gui.dataset_map_raster import RING, expanded, inside, render


def test_points_land_where_the_view_puts_them_rings_on_top():
    xy = np.array([[0.0, 0.0], [9.0, 1.0], [5.0, 5.0]], np.float32)
    rgb = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    ringed = np.array([False, False, True])
    img = render(xy, rgb, ringed, (9, 9, 9), (0, 0, 10, 10), (100, 50))
    assert img.shape == (50, 100, 4)
    assert tuple(img[0, 0]) == (255, 0, 0, 255)  # row 0 is the lowest y (the map's y grows up)
    assert tuple(img[5, 90, :3]) == (0, 255, 0)
    assert tuple(img[25, 50, :3]) == (0, 0, 255)  # the point itself
    assert tuple(img[25, 50 + RING, :3]) == (9, 9, 9)  # its ring
    assert img[40, 10, 3] == 0  # nothing drawn elsewhere
    assert expanded((0, 0, 10, 20), 0.5) == (-5, -10, 15, 30)


def test_the_lasso_keeps_what_is_inside_the_path():
    rng = np.random.default_rng(0)
    points = rng.uniform(-2, 2, (5000, 2))
    square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    got = inside(points, square)
    assert np.array_equal(got, np.all(np.abs(points) < 1, 1))
    l_shape = np.array([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2]], float)
    got = inside(points, l_shape)
    want = (points[:, 0] > 0) & (points[:, 1] > 0) & ((points[:, 0] < 1) | (points[:, 1] < 1))
    assert np.array_equal(got, want)
