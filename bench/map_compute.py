"""How long the dataset map takes: openTSNE against umap-learn, on the same points.

    .venv/bin/python bench/map_compute.py [--points 50000] [--methods tsne,umap] [--real FILE]

The points are what `check` hands the map: 50-dimensional PCA summaries of the features.
By default they are a seeded mixture of 10 Gaussian clusters (the CIFAR-10 split's size and
class count; the methods' cost depends on the number of points and dimensions, not on what
they show); ``--real`` takes a saved (N, 50) float32 .npy of a check's ``map_input``
instead. Each method runs in its own process (UMAP's first call compiles with numba: that
time is printed apart, as a user pays it once per app start). Also printed: how well each
map keeps the clusters apart (share of points whose 10 nearest map neighbours are mostly of
their own cluster).

The machine is shared: times are pessimistic, compare only figures of one run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

import common  # noqa: F401 - sets sys.path
from common import REPO


def points(n: int, dims: int = 50, clusters: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (clusters, dims))
    labels = rng.integers(0, clusters, n)
    x = centres[labels] + rng.normal(0, 0.9, (n, dims))
    return x.astype(np.float32), labels


def kept_apart(coords: np.ndarray, labels: np.ndarray, sample: int = 2000) -> float:
    rng = np.random.default_rng(1)
    idx = rng.choice(len(coords), min(sample, len(coords)), replace=False)
    d = ((coords[idx, None, :] - coords[None, :, :]) ** 2).sum(-1)
    d[np.arange(len(idx)), idx] = np.inf
    nn = np.argsort(d, 1)[:, :10]
    return float(((labels[nn] == labels[idx, None]).mean(1) > 0.5).mean())


def run_one(method: str, n: int, real: str | None) -> dict:
    from core.doctor.embedding import embed

    x, labels = points(n) if real is None else (np.load(real), np.zeros(n, int))
    warm = 0.0
    if method == "umap":  # numba compiles on the first call: measured apart
        t = time.perf_counter()
        embed(x[:2000], method="umap")
        warm = time.perf_counter() - t
    t = time.perf_counter()
    coords = embed(x, method=method)
    seconds = time.perf_counter() - t
    return {"method": method, "seconds": seconds, "first_call_extra": warm,
            "apart": kept_apart(coords, labels) if real is None else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=50_000)
    ap.add_argument("--methods", default="tsne,umap")
    ap.add_argument("--real", help="an (N, 50) float32 .npy of a check's map_input")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.points, args.real)))
        return
    import os

    print(f"{args.points:,} points of 50 dimensions; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    for method in args.methods.split(","):
        cmd = [sys.executable, str(REPO / "bench" / "map_compute.py"), "--one", method,
               "--points", str(args.points)] + (["--real", args.real] if args.real else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        extra = f" (+{r['first_call_extra']:.1f} s numba compilation on the first call)" \
            if r["first_call_extra"] else ""
        apart = f"; clusters kept apart for {r['apart']:.1%} of points" if r["apart"] else ""
        print(f"{method}: {r['seconds']:.1f} s{extra}{apart}", flush=True)


if __name__ == "__main__":
    main()
