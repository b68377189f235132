"""One process with 2 threads against 2 processes (torchrun + gloo DDP) with 1 thread each.

    .venv/bin/python bench/scaling.py [--images 1000 --image-size 96 --epochs 2]

Both train the same recipe on the same class-balanced slice of the shared CIFAR-10 copy, one
after the other in this run: MobileNetV2 (random weights: speed does not depend on their
values), everything trainable, BatchNorm statistics kept, global batch 64, the frozen-prefix
cache off (nothing is frozen). Images/s is the last epoch's training throughput from each
run's metrics.csv (the first epoch carries start-up costs). Whichever wins is printed as it is:
on 2 cores, DDP pays for gradient all-reduces and two copies of the data and the model, and
gains only if one process cannot keep both cores busy.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - sets sys.path
from common import REPO, extract_slice


def train(cmd_prefix: list[str], threads: int, data: Path, out: Path, args) -> tuple[float, float]:
    cmd = [*cmd_prefix, str(REPO / "main.py"), "train", "--model", "mobilenet_v2",
           "--weights", "none", "--data", str(data), "--epochs", str(args.epochs),
           "--freeze-epochs", "0", "--image-size", str(args.image_size), "--batch-size", "64",
           "--bn", "eval", "--threads", str(threads), "--device", "cpu", "--log-every", "0",
           "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    from core.runs import read_metrics

    return float(read_metrics(out)[-1]["images_per_s"]), wall


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = extract_slice(tmp / "data", args.images, max(200, args.images // 5))
        python = [sys.executable]
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node=2"]
        one = train(python, 2, data, tmp / "one", args)
        two = train(torchrun, 1, data, tmp / "two", args)
    print(f"{'setup':32s} {'img/s (last epoch)':>20s} {'wall s':>8s}")
    print(f"{'1 process x 2 threads':32s} {one[0]:20.1f} {one[1]:8.1f}")
    print(f"{'2 processes x 1 thread (DDP)':32s} {two[0]:20.1f} {two[1]:8.1f}")
    print(f"ratio 2 processes / 1 process: {two[0] / one[0]:.2f}x")


if __name__ == "__main__":
    main()
