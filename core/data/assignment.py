"""Where each image of a data set went when it was split: trained on, validated on, left out
(``--limit``) or unreadable.

``core.data.datasets.load_dataset`` makes one with every data set it loads
(``Dataset.assignment``) and takes one back (``assignment=``) to load those very images
again, decoded as before, instead of splitting the folder anew as it is today: a run records
its assignment when it starts (core.runs.split, ``split.json``), and resuming and evaluating
the run's validation split load the record. Folders (and archives) list their files relative
to the data root in listing order; the built-in sets (CIFAR) keep the indices of the official
training images used (validation is the official test split). No torch at import.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

TRAIN, VAL, UNUSED, SKIPPED = "train", "val", "unused", "skipped"
ROLES = (TRAIN, VAL, UNUSED, SKIPPED)

Entry = tuple  # (path relative to the data root, label, role)


@dataclass
class Assignment:
    classes: list[str]
    val_source: str
    builtin: str = ""  # "cifar10" / "cifar100"; "" for a folder or an archive of one
    side: int = 0  # folders: the side of the decoded squares (core.data.folder.framing)
    crop: float = 1.0  # folders: share of each image's shorter side kept
    listed: list[Entry] = field(default_factory=list)  # the training folder, listing order
    held_out: list[Entry] = field(default_factory=list)  # a val/ (test/) folder beside it
    train_indices: list[int] = field(default_factory=list)  # built-in: images trained on
    train_size: int = 0  # built-in: images in the official training split
    root: Path | None = None  # folders: where the paths are relative to (found, not recorded)

    def entries(self) -> list[Entry]:
        return [*self.listed, *self.held_out]

    def count(self, role: str) -> int:
        if self.builtin:
            return len(self.train_indices) if role == TRAIN else 0
        return sum(1 for e in self.entries() if e[2] == role)

    def keep_train(self, keep: list[int]) -> "Assignment":
        """Only the ``keep``-th training images (positions in training order) still train;
        the others become UNUSED (``--limit``)."""
        kept = set(keep)
        if self.builtin:
            return replace(self, train_indices=[i for j, i in enumerate(self.train_indices)
                                                if j in kept])
        out, j = [], 0
        for rel, label, role in self.listed:
            if role == TRAIN:
                role = TRAIN if j in kept else UNUSED
                j += 1
            out.append((rel, label, role))
        return replace(self, listed=out)


def folder_roles(files: list[tuple[Path, int]], root: Path, skipped, default: str = TRAIN,
                 val_positions=()) -> list[Entry]:
    """Entries for ``files`` (listed under ``root``): SKIPPED for the ones in ``skipped``
    ((path, reason) pairs), VAL for the readable ones at ``val_positions`` (positions among
    the readable files), ``default`` for the rest."""
    bad, val = {str(p) for p, _ in skipped}, set(val_positions)
    out, j = [], 0
    for path, label in files:
        rel = Path(path).relative_to(root).as_posix()
        if str(path) in bad:
            out.append((rel, label, SKIPPED))
            continue
        out.append((rel, label, VAL if j in val else default))
        j += 1
    return out


def load_assigned(source: str, a: Assignment, state, interpolation: str = "bilinear"):
    """The data set ``a`` describes: the same images, decoded as before (the decoded-image
    cache is hit when nothing changed), split as recorded. Files that are gone are skipped
    with their reason; files added since are not used."""
    import torch

    from core.data.datasets import Dataset, _subset, decoded_paths, folder_root
    from core.data.folder import Split
    from core.data.streaming import decode_or_stream, take

    if a.builtin:
        from core.data.cifar import load_cifar

        classes, train, val = load_cifar(a.builtin, state)
        if max(a.train_indices, default=-1) >= len(train.labels):
            from core.errors import TransferLabError

            raise TransferLabError(f"The recorded split names {a.builtin} training images "
                                   f"beyond the {len(train.labels)} there are now.")
        keep = torch.tensor(a.train_indices, dtype=torch.long)
        return Dataset(a.builtin, classes, _subset(train, keep), val, a.val_source,
                       assignment=replace(a, train_size=len(train.labels)))
    root = folder_root(Path(source).expanduser(), state)
    if not root.is_dir():
        from core.errors import TransferLabError

        raise TransferLabError(f"Data folder not found: {root}")
    a = replace(a, root=root)

    def decode(entries, stage):
        files = [(root / rel, label) for rel, label, _ in entries]
        split = decode_or_stream(files, a.side, state, stage, a.crop, interpolation)
        paths = decoded_paths(files, split)
        role = {str(root / rel): r for rel, _, r in entries}
        return split, paths, role

    def pick(split, paths, role, wanted, skipped):
        idx = [i for i, p in enumerate(paths) if role[p] == wanted]
        t = torch.tensor(idx, dtype=torch.long)
        return Split(take(split.images, t), split.labels[t], skipped), [paths[i] for i in idx]

    full, paths, role = decode(a.listed, "Decoding images")
    train, _ = pick(full, paths, role, TRAIN, full.skipped)
    if a.held_out:
        held, held_paths, held_role = decode(a.held_out, "Decoding validation images")
        val, val_paths = pick(held, held_paths, held_role, VAL, held.skipped)
    else:
        val, val_paths = pick(full, paths, role, VAL, [])
    return Dataset(root.name, list(a.classes), train, val, a.val_source, val_paths, a.crop,
                   assignment=a)
