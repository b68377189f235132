"""Wall time to accuracy of the `fast-cpu` preset on the full shared CIFAR-10 train split.

    .venv/bin/python bench/time_to_accuracy.py [--model efficientnet_lite0] [--out RUN_DIR]
        [--epochs N] [--threads 2]

45,000 train / 5,000 held-out validation images (seeded 10% split), ImageNet weights
(EfficientNet-Lite0 ships offline; mobilenet_v2 works where its weights can be downloaded).
The clock starts before the archive is unpacked and the images decoded (a fresh
TRANSFERLAB_HOME, so no cache from earlier runs helps) and includes every epoch's
validation. The run is saved like `train --out`, so `main.py evaluate RUN/model.pt` works.
Goal: >= 90% validation accuracy within 30 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import common  # noqa: F401 - sets sys.path
from common import peak_rss_gb, require_shared, setting_value


TRAIN_IMAGES = 45_000  # the shared split's training part (10% held out)


LESSON_REPEATS = 3


def lesson_frozen_rate(threads: int, repeats: int = LESSON_REPEATS) -> float:
    """The lesson's loop, one frozen epoch on 320 images, in its own process with the system
    allocator (as the lesson runs): bench/vs_lesson.py's baseline. The median of ``repeats``
    processes: one such epoch read 9.5 img/s and 17.2 an hour later on one idle VM, so a
    single reading can move a ratio by half."""
    import statistics

    rates = [_lesson_once(threads) for _ in range(repeats)]
    print(f"  lesson's frozen epoch: {', '.join(f'{r:.1f}' for r in rates)} img/s "
          f"(median {statistics.median(rates):.1f})", flush=True)
    return statistics.median(rates)


def _lesson_once(threads: int) -> float:
    import json
    import subprocess
    import sys
    from pathlib import Path

    from common import REPO, extract_slice

    root = extract_slice(Path(tempfile.mkdtemp(prefix="tl-lesson-")), 320, 160)
    out = Path(tempfile.mkdtemp(prefix="tl-lesson-out-")) / "r.json"
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    subprocess.run([sys.executable, str(REPO / "bench" / "vs_lesson.py"), "--part", "lesson",
                    "--root", str(root), "--epochs", "1", "--train", "320", "--threads",
                    str(threads), "--image-size", "224", "--json", str(out)], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    seconds = json.loads(out.read_text())["seconds"][0]
    return 320 / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="default: the preset's model")
    ap.add_argument("--preset", default="fast-cpu")
    ap.add_argument("--out", default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="train on fewer images (a quick try)")
    ap.add_argument("--data", default=None, help="default: the shared CIFAR-10 copy")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--set", action="append", default=[], metavar="KEY:VALUE",
                    help="change a setting of the preset, e.g. --set image_size:160")
    ap.add_argument("--no-lesson", action="store_true",
                    help="skip the lesson's frozen-epoch baseline (320 images, the median of "
                    "3 processes before and after the run, ~1.5 min each)")
    args = ap.parse_args()
    from core.allocator import ensure_tuned

    ensure_tuned()  # the engine runs as the app runs it (core/allocator.py)
    data = args.data or require_shared()
    lesson_rate = None if args.no_lesson else lesson_frozen_rate(args.threads)
    os.environ["TRANSFERLAB_HOME"] = tempfile.mkdtemp(prefix="tl-tta-home-")
    t0 = time.perf_counter()

    import torch

    from core.allocator import describe
    from core.config import TrainConfig, apply_preset
    from core.events import Callback
    from core.training.trainer import Trainer

    torch.set_num_threads(args.threads)
    cfg = apply_preset(TrainConfig(), args.preset)
    cfg.data, cfg.log_every, cfg.limit, cfg.device = str(data), 0, args.limit, args.device
    if args.model:
        cfg.model = args.model
    if args.epochs:
        cfg.epochs = args.epochs
    for item in args.set:
        key, _, value = item.partition(":")
        setattr(cfg, key, setting_value(key, value))
    out = args.out or tempfile.mkdtemp(prefix="tl-tta-run-")
    print(f"preset {args.preset}: {cfg.model}, {cfg.image_size} px, {cfg.epochs} epochs, "
          f"freeze '{cfg.freeze}' for {cfg.freeze_epochs}, batch {cfg.batch_size}, "
          f"{cfg.optimizer} lr {cfg.lr:g} {cfg.scheduler}, flips {cfg.flip}, ema {cfg.ema:g}, "
          f"test-time flips {cfg.tta}, "
          f"{torch.get_num_threads()} threads, {describe()}; run folder {out}", flush=True)

    times = {}

    class Report(Callback):
        def on_log_line(self, e):
            if not e.message.startswith("Epoch "):
                print(f"[{time.perf_counter() - t0:7.1f} s] {e.message}", flush=True)

        def on_epoch_end(self, e):
            times[e.epoch] = time.perf_counter() - t0
            print(f"[{time.perf_counter() - t0:7.1f} s] epoch {e.epoch}/{e.epochs}: "
                  f"val acc {e.val_acc:.2f}%  val loss {e.val_loss:.4f}  train acc "
                  f"{e.train_acc:.2f}%  ({e.seconds:.0f} s, {e.images_per_s:.0f} img/s)  "
                  f"peak memory {peak_rss_gb():.2f} GB", flush=True)

    result = Trainer(cfg, [Report()], run_dir=out).fit()
    wall = time.perf_counter() - t0
    best = max(result.history, key=lambda h: h["val_acc"])
    reached = [h for h in result.history if h["val_acc"] >= 90.0]
    print(f"\nwall time: {wall / 60:.1f} min for {len(result.history)} epochs; best val acc "
          f"{best['val_acc']:.2f}% (epoch {best['epoch']})")
    print("reached 90%: " + (f"epoch {reached[0]['epoch']}, after "
                              f"{times[reached[0]['epoch']] / 60:.2f} min" if reached else "no"))
    print(f"best accuracy reached after {times[best['epoch']] / 60:.2f} min")
    print(f"peak memory: {peak_rss_gb():.2f} GB")
    if lesson_rate:
        # measured again after the run: a host whose speed drifts shows as two rates
        after = lesson_frozen_rate(args.threads)
        for when, rate in (("before", lesson_rate), ("after", after)):
            print(f"lesson's frozen epoch (its train_model, 224 px, system malloc, measured on "
                  f"320 images {when} the run): {rate:.1f} img/s -> "
                  f"{TRAIN_IMAGES / rate / 60:.1f} min for {TRAIN_IMAGES} images")
        lesson_epoch = TRAIN_IMAGES / ((lesson_rate + after) / 2)
        print(f"this whole run / one lesson frozen epoch (the mean rate): "
              f"{wall / lesson_epoch:.2f}x (before {wall * lesson_rate / TRAIN_IMAGES:.2f}x, "
              f"after {wall * after / TRAIN_IMAGES:.2f}x)")
    print(f"model: {out}/model.pt")


if __name__ == "__main__":
    main()
