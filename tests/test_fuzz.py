"""Fuzzing (hypothesis): random bytes and valid-but-odd images through the image decoder,
random bytes and odd payloads through the model-file loader. Whatever comes in, the answer
is a result or the one user-facing error type, never another exception."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.data.images import MIN_IMAGE_SIDE, UnreadableImage, load_square
from core.errors import TransferLabError
from core.inference.predict import load_model_file
from core.models import build_model
from core.models.model_file import MODEL_FORMAT, model_payload, read_model_file
from core.preprocess import Preprocessing

FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00",
         b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBPVP8 "]
MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "LA", "I", "I;16", "F"]
FORMATS = {"PNG": ("1", "L", "P", "RGB", "RGBA", "LA", "I;16"),
           "JPEG": ("L", "RGB", "CMYK"), "GIF": ("L", "P"), "BMP": ("1", "L", "P", "RGB"),
           "TIFF": ("1", "L", "P", "RGB", "RGBA", "CMYK", "I", "I;16", "F"),
           "WEBP": ("RGB", "RGBA")}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def decode(path) -> None:
    """The contract: a (3, 32, 32) uint8 tensor, or UnreadableImage with a reason."""
    try:
        out = load_square(path, 32)
    except UnreadableImage as exc:
        assert str(exc)
        return
    assert out.shape == (3, 32, 32) and out.dtype == torch.uint8


@FUZZ
@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=2048))
def test_random_bytes_never_crash_the_decoder(work, magic, body):
    path = work / "random.png"
    path.write_bytes(magic + body)
    decode(path)


@st.composite
def odd_images(draw):
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(FORMATS[fmt]))
    w, h = draw(st.integers(1, 96)), draw(st.integers(1, 96))
    seed = draw(st.integers(0, 2**16))
    orientation = draw(st.sampled_from([None, 1, 2, 3, 4, 5, 6, 7, 8, 0, 9, 65535]))
    damage = draw(st.sampled_from([None, "truncate", "flip"]))
    cut = draw(st.floats(0.05, 0.95))
    return fmt, mode, (w, h), seed, orientation, damage, cut


def make(fmt, mode, size, seed, orientation) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    if mode in ("I", "I;16", "F"):
        img = img.convert("L").convert("I" if mode == "I;16" else mode)
        if mode == "I;16":
            img = Image.fromarray(rng.integers(0, 65536, (size[1], size[0]), dtype=np.uint16))
    elif mode != "RGB":
        img = img.convert(mode)
    kwargs = {}
    if orientation is not None and fmt in ("JPEG", "PNG", "TIFF", "WEBP"):
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@FUZZ
@given(odd_images())
def test_odd_and_damaged_images_give_pixels_or_a_reason(work, case):
    fmt, mode, size, seed, orientation, damage, cut = case
    data = make(fmt, mode, size, seed, orientation)
    if damage == "truncate":
        data = data[: max(1, int(len(data) * cut))]
    elif damage == "flip":
        pos = int(len(data) * cut)
        data = data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1:]
    path = work / f"odd.{fmt.lower()}"
    path.write_bytes(data)
    if damage is None and min(size) >= MIN_IMAGE_SIDE:
        assert load_square(path, 32).shape == (3, 32, 32)  # intact and big enough: it works
    else:
        decode(path)


@pytest.fixture(scope="module")
def good_model(tmp_path_factory):
    model, _, _ = build_model("mobilenet_v2", "none", 2)
    payload = model_payload("mobilenet_v2", model, ["a", "b"], Preprocessing(32, 32).to_dict(),
                            {}, {})
    path = tmp_path_factory.mktemp("fuzzmodel") / "model.pt"
    torch.save(payload, path)
    return path


def load_or_refuse(path, build: bool) -> None:
    """The contract: a loaded model, or one TransferLabError line."""
    try:
        load_model_file(path) if build else read_model_file(path)
    except TransferLabError as exc:
        assert "\n" not in str(exc) and "weights_only" not in str(exc)


@FUZZ
@given(where=st.floats(0, 1), how=st.sampled_from(["truncate", "flip", "random"]),
       noise=st.binary(min_size=1, max_size=512))
def test_damaged_model_files_are_refused_in_one_line(work, good_model, where, how, noise):
    data = good_model.read_bytes()
    pos = int((len(data) - 1) * where)
    if how == "truncate":
        data = data[:pos]
    elif how == "flip":
        data = data[:pos] + bytes([data[pos] ^ 0x5A]) + data[pos + 1:]
    else:
        data = noise
    path = work / "damaged.pt"
    path.write_bytes(data)
    load_or_refuse(path, build=False)


plain = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def valid_or(value, odd):
    """Each part is as training writes it or odd, so a case reaches past the first check."""
    return st.one_of(st.just(value), odd)


@settings(FUZZ, max_examples=30)
@given(version=valid_or(1, st.one_of(st.integers(-2, 3), plain)),
       arch=valid_or("mobilenet_v2", st.one_of(st.sampled_from(["resnet18", "vgg99"]), plain)),
       classes=valid_or(["a", "b"], st.one_of(st.lists(st.text(max_size=5), max_size=4),
                                               plain)),
       preprocessing=valid_or(Preprocessing(32, 32).to_dict(), plain),
       weights=st.sampled_from(["kept", "one tensor", "not tensors"]))
def test_odd_model_payloads_are_refused_in_one_line(work, good_model, version, arch, classes,
                                                    preprocessing, weights):
    payload = torch.load(good_model, weights_only=True)
    payload.update(format=MODEL_FORMAT, version=version, arch=arch, classes=classes,
                   preprocessing=preprocessing)
    if weights == "one tensor":
        payload["state_dict"] = {"x": torch.zeros(1)}
    elif weights == "not tensors":
        payload["state_dict"] = {k: 0 for k in list(payload["state_dict"])[:3]}
    path = work / "odd_payload.pt"
    torch.save(payload, path)
    load_or_refuse(path, build=True)  # what read_model_file lets through must also build


def test_the_fuzz_inputs_reach_the_decoders(work):
    """Not vacuous: an intact odd image really decodes, and a damaged one is really refused."""
    path = work / "check.png"
    path.write_bytes(make("PNG", "I;16", (40, 30), 1, 6))
    assert load_square(path, 32).shape == (3, 32, 32)
    path.write_bytes(make("PNG", "RGB", (40, 30), 1, None)[:60])
    with pytest.raises(UnreadableImage):
        load_square(path, 32)
    assert os.path.getsize(path) == 60
