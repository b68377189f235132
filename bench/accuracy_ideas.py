"""Accuracy ideas for the fast-cpu preset, measured side by side on the same images.

    .venv/bin/python bench/accuracy_ideas.py [--limit 5000 --epochs 3]
        [--variant NAME=key:value,key:value ...]

Each variant is the fast-cpu preset with some settings changed, trained on the same seeded
subset of the shared CIFAR-10 copy and validated on the same 5,000 held-out images (decoded
once, shared by all variants). Prints each variant's validation accuracy per epoch, its best,
and its train accuracy (the overfitting gap). Defaults compare the preset against the ideas
that apply to its cached path: feature-map shifts (a random crop on cached features) and
label smoothing.
"""
from __future__ import annotations

import argparse
import os
import re
import tempfile
import time

import common  # noqa: F401 - sets sys.path
from common import require_shared, setting_value

DEFAULT_VARIANTS = ["fast-cpu=", "shift1=feature_shift:1", "smooth0.1=label_smoothing:0.1",
                    "shift1+smooth=feature_shift:1,label_smoothing:0.1"]


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, settings = text.partition("=")
    from dataclasses import fields

    from core.config import TrainConfig

    keys = "|".join(f.name for f in fields(TrainConfig))
    changes = {}
    # a value may hold commas ("freeze:early,depthwise:5"): split only before a setting's name
    for item in filter(None, re.split(rf",(?=(?:{keys}):)", settings)):
        key, _, value = item.partition(":")
        changes[key] = setting_value(key, value)
    return name, changes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variant", action="append")
    args = ap.parse_args()
    from core.allocator import ensure_tuned

    ensure_tuned()  # the engine runs as the app runs it (core/allocator.py)
    data = require_shared()
    os.environ.setdefault("TRANSFERLAB_HOME", tempfile.mkdtemp(prefix="tl-ideas-home-"))
    import torch

    from core.config import TrainConfig, apply_preset
    from core.training.trainer import Trainer

    torch.set_num_threads(args.threads)
    rows = []
    for text in args.variant or DEFAULT_VARIANTS:
        name, changes = parse_variant(text)
        cfg = apply_preset(TrainConfig(), "fast-cpu")
        cfg.data, cfg.limit, cfg.epochs, cfg.log_every = str(data), args.limit, args.epochs, 0
        cfg.precision = "32"  # the same arithmetic for every variant
        for key, value in changes.items():
            setattr(cfg, key, value)
        t0 = time.perf_counter()
        result = Trainer(cfg, run_dir=tempfile.mkdtemp(prefix=f"tl-ideas-{name}-")).fit()
        accs = [h["val_acc"] for h in result.history]
        rows.append((name, accs, result.history[-1]["train_acc"], time.perf_counter() - t0))
        print(f"{name:24s} val acc per epoch {' '.join(f'{a:.2f}' for a in accs)}  best "
              f"{max(accs):.2f}  train acc {rows[-1][2]:.2f}  ({rows[-1][3]:.0f} s)", flush=True)
    base = max(rows[0][1])
    print(f"\n{'variant':24s}{'best val %':>11s}{'vs ' + rows[0][0]:>16s}{'train %':>9s}")
    for name, accs, train, _ in rows:
        print(f"{name:24s}{max(accs):11.2f}{max(accs) - base:+16.2f}{train:9.2f}")


if __name__ == "__main__":
    main()
