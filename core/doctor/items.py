"""The images a check looks at: every file of a folder dataset (train and held-out), or the
arrays of CIFAR, each with its class and split, and a way to get its pixels.

Files are listed by the project's one lister (core.data.folder) and decoded by its one
decoder (core.data.images). A folder without a held-out folder is split the way training
splits it (core.data.datasets.stratified_split over the readable images, with the run's
``val_split`` and ``seed``), so "in both train and val" means what the next run will see.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import TransferLabError
from core.progress import TaskState

CIFAR = ("cifar10", "cifar100")


@dataclass
class Items:
    source: str  # as given
    root: Path | None  # the dataset folder (None for CIFAR)
    classes: list[str]
    rels: list[str]  # relative to root, "/" separators (CIFAR: "train/00012")
    labels: list[int]
    held_out: list[bool]  # in the held-out folder (or CIFAR's test split)
    val_name: str = "val"
    arrays: dict = field(default_factory=dict)  # CIFAR: split name -> uint8 (N,H,W,3)
    editable: str = ""  # why the files cannot be changed ("" when they can)
    split_rule: tuple[float, int] | None = None  # (val_split, seed) when split like training

    def __len__(self) -> int:
        return len(self.rels)

    def abspath(self, i: int) -> str:
        return os.path.join(self.root, *self.rels[i].split("/")) if self.root else ""

    def stat_key(self, i: int) -> str:
        """What a cached feature row is keyed by: the file's size, time and inode, which a
        move inside the dataset keeps (a relabelled image is not computed again)."""
        if self.root is None:
            return f"{self.source}/{self.rels[i]}"
        try:
            st = os.stat(self.abspath(i))
        except OSError as exc:
            return f"error {exc.errno} {self.rels[i]}"
        return f"{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"

    def image(self, i: int):
        """The RGB PIL image of item ``i``; ``UnreadableImage`` when it cannot be read."""
        from core.data.images import open_rgb

        if self.root is None:
            from PIL import Image

            split, index = self.rels[i].split("/")
            return Image.fromarray(self.arrays[split][int(index)])
        return open_rgb(self.abspath(i))


def list_items(source: str, state: TaskState | None = None) -> Items:
    """Everything ``source`` (CIFAR, a folder or an archive of one) holds, unread."""
    from core.data.datasets import folder_root
    from core.data.folder import find_layout, list_files

    state = state or TaskState()
    if source in CIFAR:
        return _cifar_items(source, state)
    given = Path(source).expanduser()
    root = folder_root(given, state)
    layout = find_layout(root)
    rels, labels, held = [], [], []
    for split_root, is_held in ((layout.train_root, False), (layout.held_out_root, True)):
        if split_root is None:
            continue
        for path, label in list_files(split_root, layout.classes):
            rels.append(Path(os.path.relpath(path, root)).as_posix())
            labels.append(label)
            held.append(is_held)
    if not rels:
        raise TransferLabError(f"{source} holds no image files.")
    editable = ("it is an archive: unpack it into a folder to change its files"
                if root != given else "")
    val_name = layout.held_out_root.name if layout.held_out_root else "val"
    return Items(source, root, layout.classes, rels, labels, held, val_name, editable=editable)


def _cifar_items(name: str, state: TaskState) -> Items:
    from core.data.cifar import load_cifar

    classes, train, test = load_cifar(name, state)
    rels, labels, held, arrays = [], [], [], {}
    for split, data, is_held in (("train", train, False), ("test", test, True)):
        arrays[split] = data.images.permute(0, 2, 3, 1).contiguous().numpy()
        rels += [f"{split}/{i:05d}" for i in range(len(data.labels))]
        labels += data.labels.tolist()
        held += [is_held] * len(data.labels)
    return Items(name, None, classes, rels, labels, held, "test", arrays,
                 editable=f"{name} is a built-in dataset: its images are not files to change")


def assign_splits(items: Items, readable: list[int], val_split: float, seed: int
                  ) -> dict[int, str]:
    """"train" or the validation split's name for each readable item: the held-out folder
    where there is one, else training's own seeded per-class split."""
    import torch

    from core.data.datasets import stratified_split

    if any(items.held_out):
        return {i: items.val_name if items.held_out[i] else "train" for i in readable}
    items.split_rule = (val_split, seed)
    labels = torch.tensor([items.labels[i] for i in readable], dtype=torch.long)
    _, val_idx = stratified_split(labels, val_split, seed)
    val = {readable[j] for j in val_idx.tolist()}
    return {i: "val" if i in val else "train" for i in readable}
