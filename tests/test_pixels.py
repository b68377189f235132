"""A cropped or re-encoded copy is told from a look-alike by its pixels (core.doctor.pixels),
on real photos (scikit-image's bundled samples)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.doctor import pixels

data = pytest.importorskip("skimage.data", reason="scikit-image (requirements-dev.txt)")


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def cropped(img: Image.Image, share: float) -> Image.Image:
    w, h = img.size
    dx, dy = round(w * share), round(h * share)
    return img.crop((dx, dy, w - dx, h - dy)).resize((w, h))


def reencoded(img: Image.Image, quality: int = 60) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def scores(pairs: list[tuple[Image.Image, Image.Image]]) -> np.ndarray:
    thumbs = np.stack([pixels.thumbnail(im) for pair in pairs for im in pair])
    return pixels.similarity(thumbs, [(2 * k, 2 * k + 1) for k in range(len(pairs))])


NAMES = ("chelsea", "coffee", "astronaut", "rocket", "hubble_deep_field")


def thumbs_of(size: int | None) -> dict[str, Image.Image]:
    """The sample photos, at their own size or as CIFAR-like ``size`` px thumbnails."""
    out = {n: photo(n) for n in NAMES}
    return out if size is None else {n: im.resize((size, size), Image.Resampling.BICUBIC)
                                     for n, im in out.items()}


def test_a_cropped_thumbnail_is_the_same_photo_and_other_photos_and_mirrors_are_not():
    small = thumbs_of(32)
    same = scores([(im, cropped(im, share)) for im in small.values() for share in (0.05, 0.1)])
    assert (same >= pixels.SAME).all(), same
    other = scores([(small[a], small[b]) for a in NAMES for b in NAMES if a < b])
    assert other.max() < 0.5, other
    mirrored = scores([(im, im.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
                       for im in small.values()])
    assert (mirrored < pixels.SAME).all(), mirrored


def test_an_off_centre_crop_is_found_and_both_orders_agree():
    cat = thumbs_of(32)["chelsea"]
    corner = cat.crop((0, 0, 27, 27)).resize((32, 32), Image.Resampling.BICUBIC)
    ab, ba = scores([(cat, corner), (corner, cat)])
    assert ab >= pixels.SAME and ab == pytest.approx(ba, abs=1e-5)


def test_large_photos_copies_score_far_above_other_photos():
    """At its own size a photo's 32-px thumbnail moves with a crop more than a thumbnail's
    does (the features and the hash find those copies), yet stays far from other photos."""
    big = thumbs_of(None)
    copies = scores([(im, cropped(im, 0.08)) for im in big.values()] +
                    [(im, reencoded(im)) for im in big.values()])
    other = scores([(big[a], big[b]) for a in NAMES for b in NAMES if a < b])
    assert copies.min() > 0.8 and other.max() < 0.3, (copies, other)


def test_no_pairs_and_an_image_in_many_pairs():
    assert pixels.similarity(np.zeros((3, pixels.SIDE, pixels.SIDE), np.uint8), []).size == 0
    small = list(thumbs_of(32).values())
    thumbs = np.stack([pixels.thumbnail(im) for im in small])
    hub = pixels.similarity(thumbs, [(0, j) for j in range(1, len(small))])
    alone = [pixels.similarity(thumbs, [(0, j)])[0] for j in range(1, len(small))]
    assert hub == pytest.approx(np.array(alone), abs=1e-5)
