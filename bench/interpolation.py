"""Does resizing with the weights' own filter change held-out accuracy? The same training run
with the interpolation the weights' config asks for (timm's for EfficientNet-Lite0: bicubic,
what TransferLab now uses in decoding, in the batch resize and in prediction) and with
bilinear (what it used before), on:

- the shared ants/bees photos (fast-cpu preset, fitted to them: head only, 256 px; held out:
  their val/ folder), and
- a CIFAR-10 slice (32 px thumbnails enlarged by the network's input resize; fast-cpu's
  recipe at --cifar-size px; held out: the slice's val/ part).

    python bench/interpolation.py                 # 2 seeds of each (~15-25 min on 2 cores)
    python bench/interpolation.py --seeds 1 --skip-cifar

Prints the validation accuracy (and loss) of each run and the mean difference. Skipped with
a reason when ../shared is absent.
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, SHARED, extract_slice  # noqa: E402

ANTS_BEES = REPO.parent / "shared" / "datasets" / "hymenoptera-photos.tar.gz"


def force(interpolation: str) -> None:
    """Make every network's weights config say ``interpolation`` (the bench's one lever)."""
    from core.models import weights as W

    original = getattr(W, "_bench_original", None) or W.timm_preprocessing
    W._bench_original = original
    W.timm_preprocessing = lambda name: replace(original(name), interpolation=interpolation)


def run_once(data: str, seed: int, interpolation: str, out: Path, **settings) -> dict:
    from core.config import TrainConfig, apply_preset
    from core.training.trainer import Trainer

    force(interpolation)
    cfg = TrainConfig()
    apply_preset(cfg, "fast-cpu")
    cfg.data, cfg.seed, cfg.log_every = data, seed, 0
    for key, value in settings.items():
        setattr(cfg, key, value)
    t = time.perf_counter()
    result = Trainer(cfg, run_dir=out).fit()
    last = result.history[-1]
    return {"acc": last["val_acc"], "loss": last["val_loss"], "s": time.perf_counter() - t}


def compare(name: str, data: str, seeds: list[int], tmp: Path, **settings) -> None:
    rows = {}
    for interpolation in ("bicubic", "bilinear"):
        for seed in seeds:
            r = run_once(data, seed, interpolation, tmp / f"{name}-{interpolation}-{seed}",
                         **settings)
            rows[(interpolation, seed)] = r
            print(f"{name:10s} {interpolation:8s} seed {seed}: val acc {r['acc']:.2f}% "
                  f"(loss {r['loss']:.4f}, {r['s']:.0f} s)", flush=True)
    diffs = [rows[("bicubic", s)]["acc"] - rows[("bilinear", s)]["acc"] for s in seeds]
    print(f"{name:10s} bicubic - bilinear: {sum(diffs) / len(diffs):+.2f} points "
          f"(per seed: {', '.join(f'{d:+.2f}' for d in diffs)})", flush=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--cifar-train", type=int, default=2000)
    p.add_argument("--cifar-val", type=int, default=1000)
    p.add_argument("--cifar-size", type=int, default=96)
    p.add_argument("--cifar-epochs", type=int, default=2)
    p.add_argument("--skip-cifar", action="store_true")
    args = p.parse_args()
    if not ANTS_BEES.exists() or not SHARED.exists():
        print(f"skipped: the shared datasets are not in {ANTS_BEES.parent}")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="tl-interp-"))
    os.environ.setdefault("TRANSFERLAB_HOME", str(tmp / "home"))
    with tarfile.open(ANTS_BEES) as tar:
        tar.extractall(tmp, filter="data")
    compare("ants/bees", str(tmp / "hymenoptera-photos"), args.seeds, tmp)
    if not args.skip_cifar:
        cifar = extract_slice(tmp / "cifar", args.cifar_train, args.cifar_val)
        compare("CIFAR-10", str(cifar), args.seeds, tmp, image_size=args.cifar_size,
                epochs=args.cifar_epochs, fit_data=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
