"""What the Data tab shows about a dataset, without decoding it.

Listing files is enough to count a folder's classes and its train/validation split; only the
few sample thumbnails on screen are decoded. Training decodes the images once, on its own
(``core.data.datasets.load_dataset``), so the dataset is never held twice in memory.

A header check (core.data.images.header_problem reads a few bytes, not the pixels) names
files that are not images at all, too large or too small; a file whose header is fine but
whose data is damaged (a truncated JPEG) is only found, and skipped, when training decodes
it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.data.datasets import folder_root, stratified_split
from core.data.folder import Split, find_layout, list_files, require_every_class
from core.data.images import UnreadableImage, header_problem, load_square
from core.progress import TaskState

CHECK_EVERY = 256  # files between progress reports and cancel checks
RARE = 0.1  # a format held by under 10% of a class's files is flagged


def format_of(path: str | Path) -> str:
    """A file's format as its suffix says (".jpeg" counts as ".jpg")."""
    return Path(path).suffix.lower().replace(".jpeg", ".jpg")


def rare_formats(files: list[Path]) -> dict[str, int]:
    """Suffixes that under ``RARE`` of the files have (with their counts), when the class
    has a clear majority format: a lone .gif among JPEGs (the class browser's flag; the data
    doctor reports the same files)."""
    counts = Counter(format_of(p) for p in files)
    return {s: n for s, n in counts.items() if len(counts) > 1 and n < RARE * len(files)}


@dataclass
class DataSummary:
    name: str
    classes: list[str]
    train_counts: list[int]
    val_counts: list[int]
    val_source: str  # words for the validation set ("10% split (seed 0)", "val/ folder")
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    samples: dict[int, list[torch.Tensor]] = field(default_factory=dict)  # label -> (3,S,S)
    val_share: float | None = None  # the share of the training images held out; None when
    # the data brings its own validation set (a val/ folder, CIFAR's test split)
    val_files: frozenset[str] = frozenset()  # the held-out images' paths (a split folder)

    def headline(self) -> str:
        return (f"{self.name}: {len(self.classes)} classes, {sum(self.train_counts)} train / "
                f"{sum(self.val_counts)} val images ({self.val_source})")


def summarize(source: str, thumb_size: int, per_class: int, max_classes: int,
              val_split: float = 0.1, seed: int = 0, state: TaskState | None = None
              ) -> DataSummary:
    """Classes, per-class train/validation counts, unreadable files and a few decoded samples
    (``per_class`` for each of the first ``max_classes`` classes) of ``source``, which is
    "cifar10", "cifar100", an image folder or a .tar.gz/.zip of one. The counts are those
    ``load_dataset`` with the same ``val_split`` and ``seed`` gives."""
    state = state or TaskState()
    if source in ("cifar10", "cifar100"):
        return _summarize_cifar(source, thumb_size, per_class, max_classes, state)
    path = folder_root(Path(source).expanduser(), state)
    layout = find_layout(path)
    skipped: list[tuple[str, str]] = []
    train = _readable(list_files(layout.train_root, layout.classes), skipped, state)
    n = len(layout.classes)
    # the refusal training would give (a class whose files are all unreadable), said now
    require_every_class(Split(torch.empty(0), torch.tensor([label for _, label in train],
                                                          dtype=torch.long), skipped),
                        layout.classes, layout.train_root)
    if layout.held_out_root is not None:
        val = _readable(list_files(layout.held_out_root, layout.classes), skipped, state)
        val_source = f"{layout.held_out_root.name}/ folder"
    else:
        labels = torch.tensor([label for _, label in train], dtype=torch.long)
        train_idx, val_idx = stratified_split(labels, val_split, seed)
        val = [train[i] for i in val_idx.tolist()]
        train = [train[i] for i in train_idx.tolist()]
        val_source = f"{val_split:.0%} split (seed {seed})"
    samples = _decode_samples(train, thumb_size, per_class, max_classes, skipped, state)
    held_out = layout.held_out_root is None
    return DataSummary(path.name, layout.classes, _counts(train, n), _counts(val, n),
                       val_source, skipped, samples, val_split if held_out else None,
                       frozenset(str(p) for p, _ in val) if held_out else frozenset())


def _counts(files: list[tuple[Path, int]], n: int) -> list[int]:
    counts = [0] * n
    for _, label in files:
        counts[label] += 1
    return counts


def _readable(files: list[tuple[Path, int]], skipped: list, state: TaskState
              ) -> list[tuple[Path, int]]:
    """The files whose header passes the decoder's checks; the others go to ``skipped`` with
    the decoder's own reason (one home for them: core.data.images)."""
    kept = []
    for i, (path, label) in enumerate(files):
        if i % CHECK_EVERY == 0:
            state.check()
            state.report("Scanning files", i, len(files))
        why = header_problem(path)
        if why:
            skipped.append((str(path), why))
            continue
        kept.append((path, label))
    state.report("Scanning files", len(files), len(files))
    return kept


def _decode_samples(files, size: int, per_class: int, max_classes: int, skipped: list,
                    state: TaskState) -> dict[int, list[torch.Tensor]]:
    samples: dict[int, list[torch.Tensor]] = {}
    for path, label in files:
        if label >= max_classes or len(samples.setdefault(label, [])) >= per_class:
            continue
        state.check()
        try:
            samples[label].append(load_square(path, size))
        except UnreadableImage as exc:
            skipped.append((str(path), str(exc)))
    return samples


def _summarize_cifar(name: str, size: int, per_class: int, max_classes: int,
                     state: TaskState) -> DataSummary:
    """CIFAR's pixels are arrays already: load them (downloading once), count, keep only the
    few samples, and let the arrays go."""
    from core.data.cifar import load_cifar

    classes, train, test = load_cifar(name, state)
    n = len(classes)
    samples = {}
    for label in range(min(n, max_classes)):
        idx = (train.labels == label).nonzero().flatten()[:per_class]
        samples[label] = [train.images[i].clone() for i in idx.tolist()]
    counts = [torch.bincount(s.labels, minlength=n).tolist() for s in (train, test)]
    return DataSummary(name, classes, counts[0], counts[1], "official test split",
                       samples=samples)
