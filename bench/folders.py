"""Photo folders for judging the data fitting (core.recipe), built from the shared datasets.

    .venv/bin/python bench/folders.py DEST [--only NAME ...]

Each is a ``train/<class>/`` + ``val/<class>/`` folder of real or realistic photos; each tests
one way ImageNet's features can fit a user's data well or badly:

- ``antsbees``: the shared ants/bees photos as they are: classes ImageNet names ("ant",
  "bee"), photos like ImageNet's. The case the head-only recipe was made for.
- ``antsbees-sketch``: the same photos as line drawings (edges, inverted): classes ImageNet
  names, images unlike anything it was trained on (a change of look, like ImageNet-Sketch).
- ``cifar-photos-N``: N CIFAR-10 training images per class (100 held out per class), upscaled
  from 32 to 320 px so that they pass as photos. ImageNet's features see blurred objects
  (a frozen Lite0 separates CIFAR-10 only ~78% linearly), and fine-tuning learns the blur.
- ``cifar-pairs-N``: five classes, each the union of two unrelated CIFAR-10 classes
  (airplane+frog, ...) under a name ImageNet does not have: no ImageNet class matches one, and
  each class is two clusters in feature space.
"""
from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

import common  # noqa: F401 - sets sys.path
from common import SHARED, cifar_images

PHOTOS = SHARED.parent / "hymenoptera-photos.tar.gz"
CIFAR_VAL = 100  # held-out images per CIFAR-10 class: a 1,000-image validation folder
UPSCALED = 320
PAIRS = (("airplane", "frog"), ("automobile", "bird"), ("cat", "ship"), ("deer", "truck"),
         ("dog", "horse"))


def _save(img, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, quality=92)


def photo_folder(dest: Path, sketch: bool = False) -> Path:
    """The shared ants/bees photos, as they are or as line drawings."""
    from PIL import Image, ImageFilter, ImageOps

    if not PHOTOS.exists():
        raise SystemExit(f"skipped: the shared photos are not at {PHOTOS}")
    with tarfile.open(PHOTOS) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 4 or not parts[-1].lower().endswith(".jpg"):
                continue
            img = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
            if sketch:  # edges of a smoothed grey image, thickened: dark lines on white
                grey = ImageOps.grayscale(img).filter(ImageFilter.SMOOTH_MORE)
                edges = ImageOps.autocontrast(grey.filter(ImageFilter.FIND_EDGES), cutoff=2)
                img = ImageOps.invert(edges.filter(ImageFilter.MaxFilter(3))).convert("RGB")
            _save(img, dest / parts[-3] / parts[-2] / parts[-1])
    return dest


def cifar_folder(dest: Path, per_class: int, pairs: bool = False) -> Path:
    """``per_class`` training images of each CIFAR-10 class (+ CIFAR_VAL held out), upscaled;
    ``pairs``: merged two by two into classes ImageNet does not name."""
    from PIL import Image

    group = {c: f"group {chr(65 + i)}" for i, pair in enumerate(PAIRS) for c in pair}
    for cls, i, name, data in cifar_images(per_class + CIFAR_VAL):
        img = Image.open(io.BytesIO(data)).convert("RGB").resize((UPSCALED, UPSCALED),
                                                                 Image.BICUBIC)
        split = "train" if i < per_class else "val"
        _save(img, dest / split / (group[cls] if pairs else cls) / f"{cls}-{name}")
    return dest


BUILDERS = {
    "antsbees": lambda d: photo_folder(d),
    "antsbees-sketch": lambda d: photo_folder(d, sketch=True),
    "cifar-photos-64": lambda d: cifar_folder(d, 64),
    "cifar-photos-250": lambda d: cifar_folder(d, 250),
    "cifar-pairs-64": lambda d: cifar_folder(d, 64, pairs=True),
}


def build(dest: Path, names=None) -> dict[str, Path]:
    """The named folders under ``dest`` (made once; an existing one is kept)."""
    out = {}
    for name in names or BUILDERS:
        folder = Path(dest) / name
        if not (folder / ".complete").exists():
            BUILDERS[name](folder)
            (folder / ".complete").touch()
        out[name] = folder
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dest", type=Path)
    ap.add_argument("--only", nargs="*", choices=sorted(BUILDERS))
    args = ap.parse_args()
    for name, folder in build(args.dest, args.only).items():
        n = sum(1 for p in folder.rglob("*.jpg"))
        print(f"{name}: {n} images in {folder}")


if __name__ == "__main__":
    main()
