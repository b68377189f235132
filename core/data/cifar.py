"""CIFAR-10/100 through torchvision, downloaded with progress events when missing.

torchvision keeps CIFAR as numpy arrays of pixels, so no image decoding is needed at all.
"""
from __future__ import annotations

from pathlib import Path

import torch

from core.data.folder import Split
from core.download import download
from core.errors import TransferLabError
from core.paths import data_dir
from core.progress import TaskState

NAMES = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def cifar_root() -> Path:
    return data_dir() / "cifar"


def _ensure_downloaded(cls, root: Path, title: str, state: TaskState) -> None:
    if (root / cls.base_folder).is_dir():
        return
    from torchvision.datasets.utils import extract_archive

    archive = root / cls.filename
    if not archive.exists():
        try:
            download(cls.url, archive, state.download_progress(f"Downloading {title}"),
                     md5=cls.tgz_md5)
        except OSError as exc:
            raise TransferLabError(
                f"{title} is not downloaded yet ({root / cls.base_folder} is missing) and the "
                f"download failed ({exc}). Connect to the internet, or use an image folder "
                f"instead.") from exc
    state.report(f"Extracting {title}", 0, 0)
    extract_archive(str(archive), str(root))


def load_cifar(name: str, state: TaskState) -> tuple[list[str], Split, Split]:
    """(classes, train, test) for ``cifar10`` or ``cifar100``."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, NAMES[name])
    title = NAMES[name].replace("CIFAR", "CIFAR-")
    root = cifar_root()
    _ensure_downloaded(cls, root, title, state)
    splits = []
    for train in (True, False):
        ds = cls(str(root), train=train, download=False)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        splits.append(Split(images, torch.tensor(ds.targets, dtype=torch.long)))
    return list(ds.classes), splits[0], splits[1]
