"""Fitting to the data, judged on folders it was not made on: the fitted preset against plain
fine-tuning and against training only the head (the rule fitting used to apply by counting).

    .venv/bin/python bench/fit_folders.py [--work DIR] [--only NAME ...] [--threads 2]

For each folder of bench/folders.py (built once under --work): the `fast-cpu` preset with
fitting off (plain fine-tuning), with the head alone (256 px, 10 epochs, matched ImageNet
start: what fitting did to every small photo folder before), and fitted (a trial of both on
the training images decides). Each run starts with empty caches (a fresh TRANSFERLAB_HOME), so
the fitted run's time includes its trial. Prints validation accuracy with its 95% interval,
what the fitted run chose and why (the trial's figures), wall and CPU time.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - sets sys.path
from folders import BUILDERS, build

HEAD_ONLY = dict(image_size=256, epochs=10, freeze="backbone", freeze_epochs=100,
                 head_init="imagenet", fit_data=False)
WAYS = {"fine-tune": dict(fit_data=False), "head only": HEAD_ONLY, "fitted": {}}


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def train(folder: Path, changes: dict, threads: int) -> dict:
    from core.config import TrainConfig, apply_preset
    from core.events import EventCollector, RecipeFitted
    from core.training.trainer import Trainer

    os.environ["TRANSFERLAB_HOME"] = tempfile.mkdtemp(prefix="tl-fit-home-")
    cfg = apply_preset(TrainConfig(), "fast-cpu")
    cfg.data, cfg.log_every, cfg.threads = str(folder), 0, threads
    for key, value in changes.items():
        setattr(cfg, key, value)
    events = EventCollector()
    t0, c0 = time.perf_counter(), cpu_seconds()
    trainer = Trainer(cfg, [events], run_dir=tempfile.mkdtemp(prefix="tl-fit-run-"))
    result = trainer.fit()
    fitted = events.of(RecipeFitted)
    return dict(acc=result.history[-1]["val_acc"], n_val=len(trainer.data.val.labels),
                wall=time.perf_counter() - t0, cpu=cpu_seconds() - c0,
                why=fitted[0].message.removeprefix("Fitted to the data: ") if fitted else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tl-folders")
    ap.add_argument("--only", nargs="*", choices=sorted(BUILDERS))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from core.allocator import ensure_tuned

    ensure_tuned()  # the engine runs as the app runs it (core/allocator.py)
    from core.uncertainty import AccuracyInterval

    rows = []
    for name, folder in build(args.work, args.only).items():
        for way, changes in WAYS.items():
            r = train(folder, changes, args.threads)
            rows.append((name, way, r))
            acc = AccuracyInterval.from_percent(r["acc"], r["n_val"])
            print(f"{name:18s} {way:10s} {acc.describe():>14s} on {r['n_val']:4d} val images "
                  f"{r['wall']:7.0f} s wall {r['cpu']:7.0f} s CPU  {r['why']}", flush=True)
    print(f"\n{'folder':18s}" + "".join(f"{w:>16s}" for w in WAYS))
    for name in dict.fromkeys(n for n, _, _ in rows):
        cells = {w: r for n, w, r in rows if n == name}
        print(f"{name:18s}" + "".join(f"{cells[w]['acc']:12.2f}% {cells[w]['cpu'] / 60:3.0f}m"
                                      for w in WAYS))
    print("(validation accuracy of the last epoch; m: CPU minutes, the trial included)")


if __name__ == "__main__":
    main()
