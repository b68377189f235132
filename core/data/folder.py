"""Image folders: find the classes, decode every image once, cache the result on disk.

Layouts: ``ROOT/<class>/*`` or ``ROOT/train/<class>/*`` with ``val/`` or ``test/`` beside it.
Unreadable files are skipped and counted, never fatal; the first few are named.
"""
from __future__ import annotations

import hashlib
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.data import disk_cache
from core.data.images import (UnreadableImage, header_size, image_files,  # noqa: F401
                              load_square, visible)
from core.errors import TransferLabError
from core.paths import atomic_path, cache_dir
from core.preprocess import PHOTO_CROP, is_photo
from core.progress import TaskState

CACHE_FORMAT = 1


@dataclass
class Split:
    """Decoded images of one split: uint8 (N,3,S,S) and int64 labels."""
    images: torch.Tensor
    labels: torch.Tensor
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


@dataclass
class FolderLayout:
    train_root: Path
    held_out_root: Path | None
    classes: list[str]


def find_layout(root: Path) -> FolderLayout:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise TransferLabError(f"Data folder not found: {root}")
    train, held_out = root, None
    if (root / "train").is_dir() and _class_dirs(root / "train"):
        train = root / "train"
        held_out = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    classes = [d.name for d in _class_dirs(train) if any(image_files(d))]
    if not classes:
        raise TransferLabError(
            f"{root} has no class folders with images. Expected {root}/<class name>/<image>.jpg "
            f"(one sub-folder per class).")
    if len(classes) < 2:
        raise TransferLabError(
            f"{root} has only one class ('{classes[0]}'); a classifier needs at least two "
            f"class folders.")
    return FolderLayout(train, held_out, classes)


def _class_dirs(root: Path) -> list[Path]:
    try:
        entries = list(root.iterdir())
    except OSError as exc:
        raise TransferLabError(f"Cannot list {root}: {exc.strerror or exc}.") from None
    return sorted(d for d in entries if visible(d.name) and d.is_dir())


def list_files(root: Path, classes: list[str]) -> list[tuple[Path, int]]:
    """(file, label) for every image-named file under the class folders, in stable order."""
    files = []
    for label, name in enumerate(classes):
        if (root / name).is_dir():
            files += [(p, label) for p in image_files(root / name)]
    return files


def median_side(files: list[tuple[Path, int]]) -> int | None:
    """The median shorter side of up to 64 files spread over the list (headers only)."""
    sides = []
    for path, _ in files[:: max(1, len(files) // 64)][:64]:
        size = header_size(path)  # None for unreadable files: they are reported when decoded
        if size is not None:
            sides.append(min(size))
    return int(statistics.median(sides)) if sides else None


def framing(files: list[tuple[Path, int]], image_size: int, crop: float | None = None,
            photo_crop: float = PHOTO_CROP) -> tuple[int, float]:
    """(side of the cached squares, share of the shorter side they cover). ``crop`` None:
    photos at least as large as the training size get the weights' centre crop
    (``photo_crop``, their Preprocessing.crop); small images (CIFAR-like thumbnails, framed
    tightly) are kept whole. A run's recorded crop (TrainConfig.crop) is kept as it is."""
    side = median_side(files)
    photos = is_photo(side, image_size)
    if crop is None:
        crop = photo_crop if photos else 1.0
    if side is None or photos:
        return image_size, crop
    return side, crop


def _cache_key(files: list[tuple[Path, int]], size: int, classes: list[str],
               crop: float = 1.0, interpolation: str = "bilinear") -> str:
    # whole squares, resized bilinear, keep their existing keys
    framed = (f"|{crop}" if crop != 1.0 else "") + \
        (f"|{interpolation}" if interpolation != "bilinear" else "")
    h = hashlib.sha256(f"{CACHE_FORMAT}|{size}|{classes}{framed}".encode())
    for path, label in files:
        try:  # a broken link, a loop or an unreadable folder: keyed as such, decoded as skipped
            st = os.stat(path)
            stamp = f"{st.st_mtime_ns}|{st.st_size}"
        except OSError as exc:
            stamp = f"error {exc.errno}"
        # bytes, not str: a file name that is not valid UTF-8 must not break the key
        h.update(os.fsencode(os.path.abspath(path)) + f"|{label}|{stamp}\n".encode())
    return h.hexdigest()[:24]


def files_identity(files: list[tuple[Path, int]], classes: list[str]) -> str:
    """Changes when any file is added, removed, relabelled or modified (cache keys)."""
    return _cache_key(files, 0, classes)


def require_every_class(split: Split, classes: list[str], root: Path) -> None:
    """Refuse a class whose files were all skipped: never train a class with no images."""
    counts = torch.bincount(split.labels, minlength=len(classes)).tolist()
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if not empty:
        return
    prefix = os.path.join(root, empty[0], "")
    reasons = [f"{Path(p).name}: {why}" for p, why in split.skipped if p.startswith(prefix)][:2]
    names = ", ".join(f"'{c}'" for c in empty)
    raise TransferLabError(
        f"No readable image in the class folder{'s' * (len(empty) > 1)} {names} of {root} "
        f"(e.g. {'; '.join(reasons)}). Fix or remove {'them' if len(empty) > 1 else 'it'}.")


def decode_files(files: list[tuple[Path, int]], size: int, state: TaskState,
                 stage: str = "Decoding images", crop: float = 1.0,
                 interpolation: str = "bilinear") -> Split:
    """Decode every file to a ``size`` square covering ``crop`` of its shorter side, resized
    with ``interpolation`` (the weights' own), using the on-disk cache when it matches."""
    key = _cache_key(files, size, [], crop, interpolation) if files else "empty"
    cached = cache_dir() / "decoded" / f"{key}.pt"
    if cached.exists():
        try:
            d = torch.load(cached, weights_only=True)
            disk_cache.touch(cached)  # a hit: least recently used entries go first
            return Split(d["images"], d["labels"], [tuple(s) for s in d["skipped"]])
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt, not fatal
            cached.unlink(missing_ok=True)
    images = torch.empty((len(files), 3, size, size), dtype=torch.uint8)
    labels, skipped, n = [], [], 0
    for i, (path, label) in enumerate(files):
        if i % 256 == 0:
            state.check()
            state.report(stage, i, len(files))
        try:
            images[n] = load_square(path, size, crop, interpolation)
        except UnreadableImage as exc:
            skipped.append((str(path), str(exc)))
            continue
        labels.append(label)
        n += 1
    state.report(stage, len(files), len(files))
    split = Split(images[:n].clone(), torch.tensor(labels, dtype=torch.long), skipped)
    _save_cache(cached, split)
    disk_cache.enforce_cap(cached.parent)  # the cache's size cap (core.data.disk_cache)
    return split


def _save_cache(path: Path, split: Split) -> None:
    try:
        with atomic_path(path) as tmp:
            torch.save({"images": split.images, "labels": split.labels,
                        "skipped": [list(s) for s in split.skipped]}, tmp)
    except (OSError, TransferLabError):
        pass  # a read-only or full cache folder only costs speed next time
