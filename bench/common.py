"""Shared helpers for the benchmarks: the shared CIFAR-10 copy, slices of it, peak memory."""
from __future__ import annotations

import resource
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets" / "cifar10-jpeg-train.tar.gz"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def require_shared() -> Path:
    if not SHARED.exists():
        sys.exit(f"skipped: the shared CIFAR-10 copy is not at {SHARED}")
    return SHARED


def cifar_images(per_class: int):
    """(class, index within its class, file name, JPEG bytes) of the first ``per_class``
    images of each class of the shared copy, in archive order."""
    counts: dict[str, int] = {}
    with tarfile.open(require_shared()) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 4:
                continue
            cls = parts[-2]
            i = counts.get(cls, 0)
            if i >= per_class:
                continue
            counts[cls] = i + 1
            yield cls, i, parts[-1], tar.extractfile(member).read()


def extract_slice(dest: Path, n_train: int, n_val: int) -> Path:
    """A class-balanced slice as dest/train/<class>/*.jpg and dest/val/<class>/*.jpg."""
    per_train, per_val = n_train // 10, n_val // 10
    for cls, i, name, data in cifar_images(per_train + per_val):
        out = dest / ("train" if i < per_train else "val") / cls / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return dest


def setting_value(key: str, text: str):
    """A TrainConfig setting given on a bench command line ("image_size", "160"), as the
    setting's own type (true/yes/1 for booleans)."""
    from core.config import value_type

    kind, _ = value_type(key)  # (the type, also of a setting whose default is None)
    return text.lower() in ("1", "true", "yes") if kind is bool else kind(text)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
