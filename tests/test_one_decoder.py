"""One decoder and one lister (issue 20, item 1): every path that lists or checks files
(prediction of any format, the streamed training scan, the Data tab's scan) uses
core.data.images, with its extension list and its reasons."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.data.images import header_problem, list_images, open_rgb
from core.progress import TaskState
from tests.conftest import make_image, png_bomb


@pytest.fixture
def messy(tmp_path):
    """Files a folder of photos collects beside its JPEGs."""
    root = tmp_path / "photos"
    make_image(root / "a.jpg", (200, 30, 30))
    make_image(root / "B.JPG", (30, 200, 30))  # upper-case extension: an image
    make_image(root / "sub" / "c.webp", (30, 30, 200), fmt="WEBP")
    Image.new("RGB", (16, 16)).save(root / "scan.ppm")  # Pillow reads it; not our list
    make_image(root / ".hidden.jpg", (9, 9, 9))
    make_image(root / "__MACOSX" / "a.jpg", (9, 9, 9))
    (root / "notes.txt").write_text("shopping list")
    Image.new("RGB", (4, 4)).save(root / "tiny.png")
    png_bomb(root / "bomb.png", 20_000, 20_000)
    return root


def test_folders_are_listed_by_the_projects_extensions(messy):
    names = [p.relative_to(messy).as_posix() for p in list_images([messy])]
    assert names == ["B.JPG", "a.jpg", "bomb.png", "sub/c.webp", "tiny.png"]
    # a file named explicitly is tried whatever its name (and skipped with its reason)
    assert list_images([messy / "notes.txt"]) == [messy / "notes.txt"]


def test_header_checks_give_the_decoders_reasons(messy):
    for name in ("notes.txt", "tiny.png", "bomb.png"):
        with pytest.raises(Exception) as decoded:
            open_rgb(messy / name)
        assert header_problem(messy / name) == str(decoded.value)
    assert header_problem(messy / "a.jpg") == ""
    assert "too small" in header_problem(messy / "tiny.png")
    assert "too large" in header_problem(messy / "bomb.png")


def test_the_streamed_scan_and_the_data_tabs_scan_skip_as_decoding_does(messy, monkeypatch):
    """A 4 x 4 image or a bomb passed the streamed training scan, then failed (or was
    trained on black) when decoded; the Data tab counted them as readable."""
    from core.data.streaming import stream_files
    from core.data.summary import _readable

    files = [(p, 0) for p in list_images([messy]) if p.suffix != ".txt"]
    split = stream_files(files, 16, TaskState())
    skipped = dict(split.skipped)
    assert set(skipped) == {str(messy / "tiny.png"), str(messy / "bomb.png")}
    for path, why in skipped.items():
        assert why == header_problem(path)
    assert len(split.labels) == 3
    scanned: list = []
    assert len(_readable(files, scanned, TaskState())) == 3
    assert dict(scanned) == skipped


def test_transparency_and_16_bit_reach_every_format_alike(tmp_path):
    """The pixels any model sees of an RGBA or 16-bit file come from the one decoder:
    white behind transparency, 16-bit levels scaled, EXIF turned upright."""
    from core.data.images import load_pixels
    from core.preprocess import Preprocessing

    rgba = np.zeros((32, 32, 4), np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    deep = np.full((32, 32), 32768, np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    pre = Preprocessing(32, 32)
    assert load_pixels(tmp_path / "clear.png", pre).min() == 255  # white, not black
    assert abs(int(load_pixels(tmp_path / "deep.png", pre).mean()) - 128) <= 1  # not clipped
