"""The parity test's images (tests/test_parity.py and the bundle's scripts/dist_smoke_test.py):
a fixed set of the odd files users have, made here, in a labelled folder, plus the small
training folder of the tiny model they are predicted with.

Readable: EXIF-rotated, RGBA, palette with transparency, 16-bit, greyscale, CMYK, WebP, a
huge photo (and its class's plain JPEGs). Unreadable, each with the decoder's reason: a
decompression bomb, a truncated JPEG, a text file named .jpg.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("red", "green")
COLOURS = {"red": (210, 50, 40), "green": (40, 180, 70)}
# file name -> a phrase the decoder's reason for skipping it holds
UNREADABLE = {"bomb.png": "too large", "broken.jpg": "corrupt image",
              "notes.jpg": "not an image"}


def _noisy(colour, size, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.array(colour, dtype=np.int16)[None, None, :]
    stripes = (np.arange(w)[None, :, None] // 4 % 2) * 30  # some structure to look at
    return np.clip(base + stripes + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)


def make_training_folder(root: Path, per_class: int = 16, side: int = 24) -> Path:
    """Small images (smaller than the network input the tiny model trains at): the case where
    training and prediction used to enlarge them differently."""
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            path = root / name / f"{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_noisy(COLOURS[name], (side, side), c * 100 + i)).save(path)
    return root


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit PNG of zeros: small on disk, width*height*3 bytes decoded as RGB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)
    data = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def _odd_red(folder: Path) -> None:
    red = _noisy(COLOURS["red"], (60, 40), 1)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: "rotate 90 CW to view"
    Image.fromarray(red).save(folder / "exif_rotated.jpg", exif=exif, quality=95)
    rgba = np.dstack([_noisy(COLOURS["red"], (48, 48), 2), np.zeros((48, 48), np.uint8)])
    rgba[8:40, 8:40, 3] = 255  # a red square on a transparent margin (white, not black)
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    pal = Image.fromarray(_noisy(COLOURS["red"], (40, 40), 3)).quantize(16)
    pal.info["transparency"] = 0
    pal.save(folder / "palette_transparency.png", transparency=0)
    deep = (np.linspace(0, 65535, 56 * 40).reshape(40, 56)).astype(np.uint16)
    Image.fromarray(deep).save(folder / "sixteen_bit.png")  # "I;16": clipped by plain PIL
    huge = np.linspace(0, 255, 4000, dtype=np.float32)[None, :, None] * [1, 0.3, 0.2]
    Image.fromarray(np.broadcast_to(huge, (3000, 4000, 3)).astype(np.uint8)).save(
        folder / "huge.jpg", quality=80)


def _odd_green(folder: Path) -> None:
    green = _noisy(COLOURS["green"], (40, 40), 4)
    Image.fromarray(green).convert("L").save(folder / "grey.jpg")
    Image.fromarray(green).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(_noisy(COLOURS["green"], (36, 50), 5)).save(folder / "photo.webp")
    Image.fromarray(_noisy(COLOURS["green"], (32, 32), 6)).save(folder / "plain.jpg")


def make_odd_images(root: Path) -> Path:
    """``root/<class>/<file>``: the odd images, two readable classes' worth, and the
    unreadable files (under 'red')."""
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    _odd_red(root / "red")
    _odd_green(root / "green")
    png_bomb(root / "red" / "bomb.png", 20_000, 20_000)
    good = (root / "green" / "plain.jpg").read_bytes()
    (root / "red" / "broken.jpg").write_bytes(good[: len(good) // 3])
    (root / "red" / "notes.jpg").write_text("not an image")
    return root


# --- comparing what the paths gave ----------------------------------------------------------
# A path's answer: file name -> the class probabilities in CLASSES order, or the skip reason.

def vector(pairs) -> np.ndarray:
    probs = dict(pairs)
    return np.array([probs[c] for c in CLASSES])


def from_lines(text: str) -> dict:
    """Parse ``predict``'s output (and the app's --screenshot --predict listing):
    ``path<TAB>class<TAB>p…`` or ``path<TAB>skipped: reason``."""
    out = {}
    for line in text.splitlines():
        path, *rest = line.split("\t")
        if not rest:
            continue
        name = Path(path).name
        if len(rest) == 1 and rest[0].startswith("skipped: "):
            out[name] = rest[0].removeprefix("skipped: ")
        elif len(rest) >= 2 * len(CLASSES):
            out[name] = vector(zip(rest[0::2], map(float, rest[1::2])))
    return out


def from_evaluation_rows(rows, skipped) -> dict:
    """From an evaluation's rows (``path``, ``true``, ``predicted``, ``p_true``,
    ``p_predicted``: ImageResults or its CSV's dicts) and its skipped (path, reason) pairs;
    with two classes, p_true and p_predicted say both probabilities."""
    out = {Path(p).name: why for p, why in skipped}
    for r in rows:
        get = r.get if isinstance(r, dict) else lambda k, r=r: getattr(r, k)
        p_true = float(get("p_true"))
        p = {get("true"): p_true, get("predicted"): float(get("p_predicted"))}
        p.setdefault(next(c for c in CLASSES if c != get("true")), 1 - p_true)
        out[Path(get("path")).name] = vector(p.items())
    return out


def differences(reference: dict, other: dict, what: str, tol: float) -> list[str]:
    """Where ``other`` differs from ``reference``: a file missing or extra, another skip
    reason, another top-1, a probability further than ``tol``."""
    problems = [] if sorted(other) == sorted(reference) else \
        [f"{what}: files {sorted(other)} vs {sorted(reference)}"]
    for name, want in reference.items():
        got = other.get(name)
        if isinstance(want, str) or isinstance(got, str) or got is None:
            if got != want:
                problems.append(f"{what}: {name} gave {got!r}, not {want!r}")
        elif got.argmax() != want.argmax() or np.abs(got - want).max() > tol:
            problems.append(f"{what}: {name} {got.round(6)} vs {want.round(6)}")
    return problems
