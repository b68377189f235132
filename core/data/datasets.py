"""Datasets as decoded uint8 tensors with a train/validation split."""
from __future__ import annotations

import hashlib
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.catalog import ARCHIVE_SUFFIXES
from core.data.assignment import VAL, Assignment, folder_roles
from core.data.folder import (Split, files_identity, find_layout, framing, list_files,
                              median_side, require_every_class)
from core.data.streaming import StreamedImages, decode_or_stream, take
from core.errors import TransferLabError
from core.paths import cache_dir
from core.preprocess import Preprocessing
from core.progress import TaskState
from core.recipe import DataProfile

__all__ = ["Dataset", "load_dataset", "profile_data", "stratified_split", "Split"]


@dataclass
class Dataset:
    name: str
    classes: list[str]
    train: Split
    val: Split
    val_source: str  # "held-out folder", "official test split" or "10% split (seed 0)"
    val_paths: list[str] = field(default_factory=list)  # files of the val images (folders)
    crop: float = 1.0  # share of each image's shorter side kept (core.data.folder.framing)
    assignment: Assignment | None = None  # where each image went (a run records it)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return self.train.skipped + self.val.skipped

    def class_counts(self, split: Split) -> dict[str, int]:
        counts = torch.bincount(split.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts))

    def describe(self) -> str:
        lines = [f"{self.name}: {len(self.classes)} classes, {len(self.train.labels)} train / "
                 f"{len(self.val.labels)} val images ({self.val_source})"]
        if len(self.classes) <= 20:
            train, val = self.class_counts(self.train), self.class_counts(self.val)
            lines.append("per class (train/val): " + ", ".join(
                f"{c} {train[c]}/{val[c]}" for c in self.classes))
        if self.crop != 1.0:
            lines.append(f"photos: trained and predicted on the centre {self.crop:.1%} of each "
                         f"image's shorter side, as ImageNet models are evaluated")
        if isinstance(self.train.images, StreamedImages):  # too big for RAM (core.data.streaming)
            lines.append(self.train.images.describe())
        if self.skipped:
            first = "; ".join(f"{Path(p).name}: {why}" for p, why in self.skipped[:3])
            lines.append(f"skipped {len(self.skipped)} unreadable files (first: {first})")
        return "\n".join(lines)


def stratified_split(labels: torch.Tensor, fraction: float, seed: int):
    """Seeded per-class split, so every class keeps the same share in validation."""
    g = torch.Generator().manual_seed(seed)
    train_idx, val_idx = [], []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = int(round(len(idx) * fraction)) if len(idx) > 1 else 0
        k = min(max(k, 1 if fraction > 0 and len(idx) > 1 else 0), len(idx) - 1)
        val_idx.append(idx[:k])
        train_idx.append(idx[k:])
    return torch.cat(train_idx).sort().values, torch.cat(val_idx).sort().values


def _subset(split: Split, idx: torch.Tensor) -> Split:
    return Split(take(split.images, idx), split.labels[idx], split.skipped)


def extract_archive(path: Path, state: TaskState) -> Path:
    """Unpack a .tar.gz/.zip dataset once into the cache; return the dataset root inside."""
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    dest = cache_dir() / "extracted" / key[:20]
    if not (dest / ".complete").exists():
        state.report(f"Extracting {path.name}", 0, 0)
        tmp = dest.with_suffix(".partial")
        try:
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as z:
                    z.extractall(tmp)
            else:
                with tarfile.open(path) as t:
                    t.extractall(tmp, filter="data")
        except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
            raise TransferLabError(f"Cannot unpack {path}: {exc}") from exc
        if dest.exists():
            import shutil
            shutil.rmtree(dest)
        tmp.rename(dest)
        (dest / ".complete").touch()
    root = dest
    while True:  # descend through single wrapper folders (cifar10-jpeg/...)
        subdirs = [d for d in root.iterdir() if d.is_dir()]
        if len(subdirs) == 1 and subdirs[0].name not in ("train",):
            root = subdirs[0]
        else:
            return root


def load_dataset(source: str, image_size: int, val_split: float = 0.1, seed: int = 0,
                 state: TaskState | None = None, limit: int | None = None,
                 crop: float | None = None, weights: Preprocessing | None = None,
                 assignment: Assignment | None = None) -> Dataset:
    """``source``: "cifar10", "cifar100", an image folder or a .tar.gz/.zip of one.

    ``limit`` keeps a seeded, class-balanced subset of the training images (quick tries).
    ``crop``: the share of each image's shorter side kept (None: core.data.folder.framing
    decides from the images' size). ``weights``: the network's own preprocessing
    (core.models.imagenet_preprocessing): its interpolation resizes the images and its crop
    frames photos (None: bilinear, core.preprocess.PHOTO_CROP). ``assignment``: a split made
    before (a run's record, core.runs.split): those images again, framed as recorded,
    nothing split anew (the other settings unused, the weights' interpolation kept).
    """
    state = state or TaskState()
    if assignment is not None:
        from core.data.assignment import load_assigned

        interpolation = (weights or Preprocessing(interpolation="bilinear")).interpolation
        return load_assigned(source, assignment, state, interpolation)
    if limit is not None and limit < 1:
        raise TransferLabError(f"--limit must be at least 1, got {limit}.")
    if source in ("cifar10", "cifar100"):
        from core.data.cifar import load_cifar

        classes, train, val = load_cifar(source, state)
        ds = Dataset(source, classes, train, val, "official test split", assignment=Assignment(
            classes, "official test split", source, train_indices=list(range(len(train.labels))),
            train_size=len(train.labels)))
    else:
        ds = _load_folder(Path(source).expanduser(), image_size, val_split, seed, state, crop,
                          weights or Preprocessing(interpolation="bilinear"))
    if limit and limit < len(ds.train.labels):
        keep, _ = stratified_split(ds.train.labels, 1 - limit / len(ds.train.labels), seed)
        ds.train = _subset(ds.train, keep)
        ds.assignment = ds.assignment.keep_train(keep.tolist())
    return ds


def profile_data(source: str, state: TaskState | None = None) -> DataProfile:
    """How many images of how many classes, and how large (headers only, no decoding)."""
    if source in ("cifar10", "cifar100"):
        return DataProfile(50_000, 10 if source == "cifar10" else 100, 32, held_out=True)
    layout = find_layout(folder_root(Path(source).expanduser(), state or TaskState()))
    files = list_files(layout.train_root, layout.classes)
    return DataProfile(len(files), len(layout.classes), median_side(files),
                       layout.held_out_root is not None, files_identity(files, layout.classes))


def folder_root(path: Path, state: TaskState) -> Path:
    """The dataset folder: ``path`` itself, or where its archive is unpacked (once)."""
    if path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES):
        return extract_archive(path, state)
    return path


def _load_folder(path: Path, image_size: int, val_split: float, seed: int,
                 state: TaskState, crop: float | None, weights: Preprocessing) -> Dataset:
    path = folder_root(path, state)
    layout = find_layout(path)
    files = list_files(layout.train_root, layout.classes)
    size, crop = framing(files, image_size, crop, weights.crop)
    interpolation = weights.interpolation
    train = decode_or_stream(files, size, state, crop=crop, interpolation=interpolation)
    if len(train.labels) == 0:
        first = "; ".join(f"{Path(p).name}: {why}" for p, why in train.skipped[:2])
        raise TransferLabError(f"None of the images in {path} could be read (e.g. {first}).")
    require_every_class(train, layout.classes, layout.train_root)
    if layout.held_out_root is not None:
        held_out = list_files(layout.held_out_root, layout.classes)
        val = decode_or_stream(held_out, size, state, "Decoding validation images", crop,
                               interpolation)
        source = f"{layout.held_out_root.name}/ folder"
        return Dataset(path.name, layout.classes, train, val, source,
                       decoded_paths(held_out, val), crop, Assignment(
                           layout.classes, source, side=size, crop=crop, root=path,
                           listed=folder_roles(files, path, train.skipped),
                           held_out=folder_roles(held_out, path, val.skipped, VAL)))
    if not 0 < val_split < 1:
        raise TransferLabError(f"--val-split must be between 0 and 1, got {val_split}.")
    train_idx, val_idx = stratified_split(train.labels, val_split, seed)
    full, paths = train, decoded_paths(files, train)
    source = f"{val_split:.0%} split (seed {seed})"
    return Dataset(path.name, layout.classes, _subset(full, train_idx),
                   Split(take(full.images, val_idx), full.labels[val_idx]), source,
                   [paths[i] for i in val_idx.tolist()], crop, Assignment(
                       layout.classes, source, side=size, crop=crop, root=path,
                       listed=folder_roles(files, path, full.skipped,
                                           val_positions=val_idx.tolist())))


def decoded_paths(files: list[tuple[Path, int]], split: Split) -> list[str]:
    """The file of each image in ``split`` decoded from ``files`` (unreadable ones left out)."""
    skipped = {p for p, _ in split.skipped}
    return [str(p) for p, _ in files if str(p) not in skipped]
