"""Big folders: scan time, load time, peak memory and images/s for 10k (and 100k) generated
images, decoded into RAM against streamed from disk (core/data/streaming.py).

    python bench/load.py                 # 10,000 images (about a minute on 2 cores)
    python bench/load.py --with-100k     # also 100,000 (generating them takes a while)

Each case runs in its own process, so each peak memory (ru_maxrss) is that case's alone; a
baseline process that only imports the same modules is measured in the same run, and the
table shows each case's peak above it. The images are 32x32 JPEGs in 10 class folders,
generated once under --dir and reused.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, peak_rss_gb  # noqa: E402


def generate(root: Path, n: int, side: int = 32) -> float:
    """n noisy images in 10 class folders; returns seconds spent (0 when already there)."""
    import numpy as np
    from PIL import Image

    done = root / ".complete"
    if done.exists():
        return 0.0
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    for i in range(n):
        c = i % 10
        arr = np.clip(rng.integers(0, 60, (side, side, 3)) + c * 19, 0, 255).astype("uint8")
        path = root / f"class_{c}" / f"{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path, quality=90)
    done.touch()
    return time.perf_counter() - t0


def child(mode: str, folder: str) -> dict:
    """One case in this process: 'baseline', 'ram' or 'stream'."""
    import torch

    from core.data.batches import BatchLoader
    from core.data.datasets import load_dataset
    from core.data.folder import find_layout, list_files
    from core.data.streaming import StreamedImages
    from core.progress import TaskState

    torch.set_num_threads(2)
    out = {"mode": mode}
    if mode == "baseline":
        out["peak_gb"] = peak_rss_gb()
        return out
    t0 = time.perf_counter()
    layout = find_layout(Path(folder))
    n_files = len(list_files(layout.train_root, layout.classes))
    out["scan_s"] = time.perf_counter() - t0
    reports = []
    t0 = time.perf_counter()
    ds = load_dataset(folder, 32, 0.1, 0, TaskState(reports.append))
    out["load_s"] = time.perf_counter() - t0
    out["progress_reports"] = len(reports)
    out["streamed"] = isinstance(ds.train.images, StreamedImages)
    out["n"] = n_files
    loader = BatchLoader(ds.train.images, ds.train.labels, 64, 32, (0.5,) * 3, (0.5,) * 3,
                         shuffle=True, channels_last=False)
    t0 = time.perf_counter()
    seen = 0
    for x, y in loader:
        seen += len(y)
    out["epoch_s"] = time.perf_counter() - t0
    out["epoch_images_per_s"] = seen / out["epoch_s"]
    out["load_images_per_s"] = n_files / out["load_s"]
    out["peak_gb"] = peak_rss_gb()
    return out


def run_case(mode: str, folder: Path, home: Path, ram_limit_mb: str | None) -> dict:
    env = dict(os.environ, TRANSFERLAB_HOME=str(home), TRANSFERLAB_OFFLINE="1",
               OMP_NUM_THREADS="2", PYTHONPATH=str(REPO))
    env.pop("TRANSFERLAB_RAM_LIMIT_MB", None)
    if ram_limit_mb is not None:
        env["TRANSFERLAB_RAM_LIMIT_MB"] = ram_limit_mb
    proc = subprocess.run([sys.executable, __file__, "--child", mode, "--folder", str(folder)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{mode} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench(n: int, base: Path) -> None:
    folder = base / f"images-{n}"
    gen_s = generate(folder, n)
    print(f"\n{n:,} images of 32x32 in {folder}" +
          (f" (generated in {gen_s:.0f} s)" if gen_s else " (already generated)"))
    with tempfile.TemporaryDirectory() as home:
        home = Path(home)
        floor = run_case("baseline", folder, home, None)["peak_gb"]
        cases = [("ram, cold", run_case("ram", folder, home / "a", None)),
                 ("ram, cached", run_case("ram", folder, home / "a", None)),
                 ("streamed", run_case("stream", folder, home / "b", "1"))]
    print(f"baseline process (imports only): peak {floor:.2f} GB")
    print(f"{'case':<12} {'scan s':>7} {'load s':>7} {'load img/s':>11} {'epoch img/s':>12} "
          f"{'peak GB':>8} {'above base':>11} {'reports':>8}")
    for name, c in cases:
        print(f"{name:<12} {c['scan_s']:7.2f} {c['load_s']:7.2f} {c['load_images_per_s']:11.0f} "
              f"{c['epoch_images_per_s']:12.0f} {c['peak_gb']:8.2f} "
              f"{c['peak_gb'] - floor:11.3f} {c['progress_reports']:8d}")
    ram, streamed = cases[0][1], cases[2][1]
    assert streamed["streamed"] and not ram["streamed"], "the rule did not pick as forced"
    print(f"streamed vs in RAM: memory above baseline x"
          f"{(streamed['peak_gb'] - floor) / max(ram['peak_gb'] - floor, 1e-9):.2f}, "
          f"epoch images/s x{streamed['epoch_images_per_s'] / ram['epoch_images_per_s']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--with-100k", action="store_true", help="also 100,000 images")
    ap.add_argument("--sizes", default="10000", help="comma-separated image counts")
    ap.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "transferlab-load"),
                    help="where generated images are kept between runs")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder)))
        return
    sizes = [int(s) for s in args.sizes.split(",")] + ([100_000] if args.with_100k else [])
    for n in sizes:
        bench(n, Path(args.dir))


if __name__ == "__main__":
    main()
