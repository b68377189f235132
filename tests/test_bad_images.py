"""Bad images (issue 12): odd images simply work, broken ones are skipped and named with
their reason, folders without usable images are refused; the Data tab shows the reasons."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import images
from core.data.datasets import load_dataset
from core.data.images import MAX_IMAGE_PIXELS, UnreadableImage, open_rgb
from core.errors import TransferLabError
from tests.conftest import make_folder, make_image, png_bomb


# --- helpers --------------------------------------------------------------------------------
def rgb_mean(path) -> np.ndarray:
    return np.asarray(open_rgb(path), dtype=np.float64).mean(axis=(0, 1))



# --- images that must simply work ----------------------------------------------------------
def test_16_bit_png_keeps_its_grey_levels(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    pixels = np.asarray(open_rgb(tmp_path / "deep.png"))
    assert pixels.mean() == pytest.approx(ramp.mean() / 257, abs=1)  # not clipped to white
    assert pixels.min() == 0 and pixels.max() == 255


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # left half red, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    Image.fromarray(arr).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    img = open_rgb(tmp_path / "rotated.jpg")
    assert img.size == (20, 40)  # upright: portrait
    top, bottom = np.asarray(img)[:10].mean(axis=(0, 1)), np.asarray(img)[-10:].mean(axis=(0, 1))
    assert top[0] > 200 and bottom[0] < 60  # the stored left half is now on top


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "1", "LA", "I", "F"])
def test_other_colour_modes_decode_to_rgb(tmp_path, mode):
    base = Image.new("RGB", (32, 32), (200, 120, 40))
    img = base.convert(mode) if mode not in ("I", "F") else base.convert("L").convert(mode)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.tif" if mode in ("I", "F") else "x.png")
    img.save(path)
    out = open_rgb(path)
    assert out.mode == "RGB" and out.size == (32, 32)
    expected = np.asarray(img.convert("RGB"), dtype=float).mean()
    assert np.asarray(out, dtype=float).mean() == pytest.approx(expected, abs=12)


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)  # black, fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    assert rgb_mean(tmp_path / "clear.png").tolist() == [255, 255, 255]
    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "clear_pal.png", transparency=0)
    assert rgb_mean(tmp_path / "clear_pal.png").tolist() == [255, 255, 255]


def test_webp_upper_case_extensions_and_non_ascii_names_train(tmp_path):
    root = tmp_path / "photos"
    for i in range(4):
        make_image(root / "chats" / f"čaj_{i}.JPG", (220, 40, 40), seed=i)
        make_image(root / "犬" / f"写真_{i}.WebP", (40, 200, 60), seed=10 + i, fmt="WEBP")
    ds = load_dataset(str(root), 32, val_split=0.25)
    assert ds.classes == ["chats", "犬"] and ds.skipped == []
    assert len(ds.train.labels) + len(ds.val.labels) == 8


def test_a_10000_by_10000_class_photo_loads_without_a_warning(tmp_path):
    # 90 MP: over Pillow's default warning size (89.5 MP), under TransferLab's stated limit
    path = png_bomb(tmp_path / "big.png", 9500, 9500)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_rgb(path).size == (9500, 9500)


# --- files that are skipped and named with the reason -----------------------------------------
def test_a_decompression_bomb_is_refused_with_the_limit(tmp_path):
    path = png_bomb(tmp_path / "bomb.png", 30000, 30000)
    assert path.stat().st_size < 200_000
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(UnreadableImage, match=f"{MAX_IMAGE_PIXELS:,} pixels"):
            open_rgb(path)
        # between the limit and twice it, Pillow would only warn: refused all the same
        with pytest.raises(UnreadableImage, match="too large: 153,760,000 pixels"):
            open_rgb(png_bomb(tmp_path / "half.png", 12400, 12400))
    assert not seen  # a refusal, never Pillow's warning


@pytest.mark.parametrize("name, make, reason", [
    ("notes.jpg", lambda p: p.write_text("this is not an image"), "not an image"),
    ("zero.jpg", lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    ("dot.png", lambda p: Image.new("RGB", (1, 1)).save(p), "too small (1x1 pixels"),
    ("cut.jpg", lambda p: p.write_bytes(_jpeg_bytes()[:600]), "corrupt image"),
    ("loop.jpg", lambda p: os.symlink(p.name, p), "symbolic link loop"),
    ("gone.jpg", lambda p: os.symlink("missing.jpg", p), "broken symbolic link"),
])
def test_a_bad_file_gets_its_reason(tmp_path, name, make, reason):
    path = tmp_path / name
    make(path)
    with pytest.raises(UnreadableImage) as exc:
        open_rgb(path)
    assert str(exc.value).startswith(reason)


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buf, "JPEG")
    return buf.getvalue()


def test_permission_denied_is_said_as_such(tmp_path, monkeypatch):
    path = make_image(tmp_path / "private.jpg", (10, 10, 10))
    if os.geteuid() != 0:  # a real unreadable file where the OS enforces it
        path.chmod(0)
        with pytest.raises(UnreadableImage, match="^permission denied"):
            open_rgb(path)
        path.chmod(0o644)

    def refuse(*_a, **_k):  # root reads anything: the OS's answer, injected
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(images, "open", refuse, raising=False)
    with pytest.raises(UnreadableImage, match="^permission denied") as exc:
        open_rgb(path)
    assert "corrupt" not in str(exc.value)


def test_a_messy_folder_trains_and_lists_every_skip(tmp_path):
    root = make_folder(tmp_path / "messy", classes=2, per_class=6)
    png_bomb(root / "class_0" / "bomb.png", 30000, 30000)
    Image.new("RGB", (1, 1)).save(root / "class_0" / "dot.png")
    (root / "class_1" / "zero.jpg").write_bytes(b"")
    os.symlink("loop.jpg", root / "class_1" / "loop.jpg")
    os.symlink("nowhere.jpg", root / "class_1" / "gone.jpg")
    os.symlink("..", root / "class_1" / "up")  # a folder loop: never followed
    odd = os.fsdecode(b"caf\xe9.jpg")  # not valid UTF-8
    (root / "class_1" / odd).write_bytes((root / "class_1" / "000.jpg").read_bytes())
    for _ in range(2):  # the second time from the decode cache
        ds = load_dataset(str(root), 32, val_split=0.25)
        reasons = {Path(p).name: why for p, why in ds.skipped}
        assert reasons["bomb.png"].startswith("too large")
        assert reasons["dot.png"].startswith("too small")
        assert reasons["zero.jpg"].startswith("empty file")
        assert reasons["loop.jpg"] == "symbolic link loop"
        assert reasons["gone.jpg"].startswith("broken symbolic link")
        assert len(reasons) == 5
        assert ds.class_counts(ds.train)["class_1"] + ds.class_counts(ds.val)["class_1"] == 7


# --- refused with a reason -------------------------------------------------------------------
def test_a_class_whose_files_are_all_unreadable_is_refused(tmp_path):
    root = make_folder(tmp_path / "d", classes=2, per_class=4)
    for i in range(3):
        (root / "broken" / f"{i}.jpg").parent.mkdir(exist_ok=True)
        (root / "broken" / f"{i}.jpg").write_text("not a picture")
    with pytest.raises(TransferLabError, match="No readable image in the class folder 'broken'.*"
                                               "not an image"):
        load_dataset(str(root), 32)


def test_empty_and_one_class_folders_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TransferLabError, match="no class folders with images"):
        load_dataset(str(tmp_path / "empty"), 32)
    make_folder(tmp_path / "one", classes=1, per_class=3)
    with pytest.raises(TransferLabError, match="only one class"):
        load_dataset(str(tmp_path / "one"), 32)


# --- the GUI shows the reasons ----------------------------------------------------------------
def test_the_data_tab_lists_skipped_files_with_reasons(qtbot, tmp_path):
    from gui.data_tab import DataTab

    root = make_folder(tmp_path / "messy", classes=2, per_class=4)
    png_bomb(root / "class_0" / "bomb.png", 30000, 30000)
    Image.new("RGB", (1, 1)).save(root / "class_1" / "dot.png")
    tab = DataTab(image_size_provider=lambda: 32)
    qtbot.addWidget(tab)
    tab.torch_ready = True
    with qtbot.waitSignal(tab.scanned, timeout=60_000):
        tab.set_source(str(root))
    text = tab.skipped.toPlainText()
    assert "bomb.png: too large" in text and "dot.png: too small (1x1 pixels" in text
    (root / "class_1").rename(tmp_path / "gone")
    for i in range(2):
        (root / "class_1" / f"{i}.jpg").parent.mkdir(exist_ok=True)
        (root / "class_1" / f"{i}.jpg").write_text("text")
    tab.scan()
    qtbot.waitUntil(lambda: "No readable image" in tab.summary.text(), timeout=60_000)
    assert "class_1" in tab.summary.text()
