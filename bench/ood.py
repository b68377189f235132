"""How well the out-of-distribution score (core.inference.ood) tells a run's own validation
photos from photos of other subjects: AUROC (1.0 = every other-subject photo scores above
every own photo; 0.5 = chance), and the share of each set flagged (score > 1).

    python bench/ood.py                       # ants/bees run vs CIFAR-10 + scikit-image photos
    python bench/ood.py --run RUN_FOLDER      # an existing run instead of training one

Trains (unless --run) the fast-cpu preset on the shared ants/bees photos (fitted to them:
EfficientNet-Lite0, head only, 256 px; a few minutes on 2 cores), whose end calibrates the
score. Other subjects: --cifar CIFAR-10 training JPEGs (32 px thumbnails of ten other
subjects) and scikit-image's sample photos (astronaut, coffee, a cat, a rocket...). For
comparison the same AUROC for two scores that need no calibration: the maximum softmax
probability (Hendrycks & Gimpel, 2017) and the energy (-logsumexp of the logits, Liu et al.,
2020). Skipped with a reason when ../shared is absent.
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, extract_slice  # noqa: E402

ANTS_BEES = REPO.parent / "shared" / "datasets" / "hymenoptera-photos.tar.gz"
SKIMAGE = ("astronaut", "coffee", "chelsea", "cat", "rocket", "camera", "coins", "moon", "page",
           "text", "clock", "brick", "grass", "gravel", "colorwheel", "hubble_deep_field",
           "immunohistochemistry", "retina", "skin", "eagle", "logo")


def auroc(inside, outside) -> float:
    """P(an outside score > an inside score) (ties count half): the Mann-Whitney statistic."""
    import numpy as np

    scores = np.concatenate([inside, outside])
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_in, n_out = len(inside), len(outside)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def skimage_photos(dest: Path) -> Path:
    import numpy as np
    from PIL import Image
    from skimage import data

    dest.mkdir(parents=True, exist_ok=True)
    for name in SKIMAGE:
        try:
            arr = getattr(data, name)()
        except Exception:  # noqa: BLE001 - some need a download; the others suffice
            continue
        arr = np.asarray(arr)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        Image.fromarray(arr.astype(np.uint8)).save(dest / f"{name}.png")
    return dest


def train(tmp: Path) -> Path:
    from core.frontends.cli import main

    with tarfile.open(ANTS_BEES) as tar:
        tar.extractall(tmp, filter="data")
    run = tmp / "run"
    t = time.perf_counter()
    code = main(["train", "--preset", "fast-cpu", "--data", str(tmp / "hymenoptera-photos"),
                 "--out", str(run)])
    print(f"trained in {time.perf_counter() - t:.0f} s (exit {code})")
    return run


def scores(lm, paths):
    """(our score, max softmax probability, energy) for each readable file, through the one
    forward path (core.inference.forward)."""
    import numpy as np
    import torch

    from core.data.images import UnreadableImage, list_images, load_pixels
    from core.preprocess import normalise

    ours, msp, energy = [], [], []
    files = list_images(paths)
    for start in range(0, len(files), 32):
        pixels = []
        for f in files[start:start + 32]:
            try:
                pixels.append(load_pixels(f, lm.preprocessing))
            except UnreadableImage:
                continue
        x = torch.from_numpy(normalise(np.stack(pixels), lm.preprocessing))
        with torch.no_grad():
            logits, feats = lm.net(x)
            ours += lm.net.ood(feats).tolist()
        msp += (-logits.softmax(1).max(1).values).tolist()  # higher = more unusual
        energy += (-torch.logsumexp(logits, 1)).tolist()
    return np.array(ours), np.array(msp), np.array(energy)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--run", help="a finished run folder (default: train one on ants/bees)")
    p.add_argument("--cifar", type=int, default=300, help="CIFAR-10 images to score")
    args = p.parse_args()
    if not ANTS_BEES.exists():
        print(f"skipped: the shared ants/bees photos are not at {ANTS_BEES}")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="tl-ood-"))
    os.environ.setdefault("TRANSFERLAB_HOME", str(tmp / "home"))
    run = Path(args.run) if args.run else train(tmp)
    from core.inference.evaluate import run_validation_split
    from core.inference.predict import load_model_file
    from core.progress import TaskState

    lm = load_model_file(run / "model.pt")
    if lm.net.ood is None:
        print("the run's model.pt has no calibration (a run made before it, or too few "
              "validation images)")
        return 1
    _, val_paths = run_validation_split(run, lm, TaskState())
    own = scores(lm, val_paths)
    sets = {"CIFAR-10": extract_slice(tmp / "cifar", 0, args.cifar) / "val",
            "scikit-image photos": skimage_photos(tmp / "skimage")}
    print(f"run: {run} ({len(val_paths)} validation photos; flagged {100 * (own[0] > 1).mean():.1f}%)")
    print(f"{'other subjects':22s} {'images':>6s} {'AUROC ours':>10s} {'max-softmax':>11s} "
          f"{'energy':>7s} {'flagged':>8s}")
    for name, folder in sets.items():
        other = scores(lm, [folder])
        cells = [auroc(own[i], other[i]) for i in range(3)]
        print(f"{name:22s} {len(other[0]):6d} {cells[0]:10.3f} {cells[1]:11.3f} "
              f"{cells[2]:7.3f} {100 * (other[0] > 1).mean():7.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
