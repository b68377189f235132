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


def test_a_cropped_or_mirrored_thumbnail_is_the_same_photo_and_other_photos_are_not():
    small = thumbs_of(32)
    same = scores([(im, cropped(im, share)) for im in small.values() for share in (0.05, 0.1)])
    assert (same >= pixels.SAME).all(), same
    other = scores([(small[a], small[b]) for a in NAMES for b in NAMES if a < b])
    assert other.max() < 0.5, other
    mirrored = scores([(im, cropped(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 0.05))
                       for im in small.values()])
    assert (mirrored >= pixels.SAME).all(), mirrored  # a mirrored copy leaks as much


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


def test_chunks_and_the_row_by_row_path_give_the_same_scores(monkeypatch):
    small = list(thumbs_of(32).values())
    ims = small + [cropped(im, 0.08) for im in small] + [reencoded(im) for im in small]
    thumbs = np.stack([pixels.thumbnail(im) for im in ims])
    n = len(thumbs)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if (i + j) % 3 == 0]
    pairs += [(0, j) for j in range(1, n)]  # one image in many pairs
    pairs = sorted(set(pairs))
    whole = pixels.similarity(thumbs, pairs)
    monkeypatch.setattr(pixels, "CHUNK", 2)
    chunked = pixels.similarity(thumbs, pairs)
    monkeypatch.setattr(pixels, "CAP", 1)
    monkeypatch.setattr(pixels, "ROWS", 3)
    by_rows = pixels.similarity(thumbs, pairs)
    assert chunked == pytest.approx(whole, abs=1e-5)
    assert by_rows == pytest.approx(whole, abs=1e-5)
    assert whole[pairs.index((0, len(small)))] >= pixels.SAME  # image 0 and its crop


def test_the_pixels_overrule_the_features_only_between_images_of_one_shape():
    """Features that call two images the same photo stand unless the pixels contradict
    them; a square crop of a wide photo squeezes to another thumbnail, so there the
    features' word stands (core.doctor.neighbours)."""
    import torch

    from core.doctor import neighbours as N

    wide = photo("coffee")  # 600 x 400
    square = wide.crop((100, 0, 500, 400))
    other = photo("rocket").resize(wide.size)
    thumbs = np.stack([pixels.thumbnail(im) for im in (wide, square, other)])
    sizes = np.array([im.size for im in (wide, square, other)], np.float32)
    full = torch.eye(3)
    cands = [(0, 1), (0, 2)]
    cosines = {(0, 1): 0.97, (0, 2): 0.97}  # the features say: the same photo, both
    phash = np.array([0, 0xFFFFFFFF00000000, 0xFFFFFFFF], np.uint64)  # 32 bits apart
    kept = N._confirmed(cands, cosines, {}, full, phash, thumbs, sizes)
    assert [(a, b) for a, b, *_ in kept] == [(0, 1)]  # other shape: the features stand
    vetoed = N._confirmed(cands, cosines, {}, full, phash, thumbs, None)
    assert vetoed == []  # sizes unknown: the pixels' "no" stands for both
