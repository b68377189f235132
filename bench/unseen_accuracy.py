"""Candidates for the CPU preset on the whole shared CIFAR-10 split, each scored on its
validation split and on a second held-out slice that nothing ever trains or validates on.

    .venv/bin/python bench/unseen_accuracy.py [--candidate NAME=key:value,key:value ...]
        [--seeds 0,1,2] [--held-out 5000] [--threads 2] [--no-lesson]

The 50,000 images are cut once (by file name, the same every time): the last ``--held-out``
of them (a tenth of each class) are the second held-out slice, unseen by every candidate; the
other 45,000 are the candidates' data folder, of which the engine validates on 5,000 (its
usual seeded split) and trains on 40,000 (so the ratio is to the lesson's epoch over 40,000).
Each candidate starts from a fresh TRANSFERLAB_HOME, so its wall time includes unpacking and
decoding, as in bench/time_to_accuracy.py; the held-out
slice is then scored through the prediction path (core.inference.evaluate, model.pt), the way
the project's unseen test split is scored. Prints, per candidate: wall time, the ratio to the
lesson's frozen epoch measured in the same run (before the first candidate and after each),
validation and held-out accuracy with their 95% intervals, and how far apart the two are.

``--seeds`` runs each candidate once per seed (the seed draws the validation split, the new
head's start and the batch order) and then prints each candidate's mean over its seeds and
the spread. The seed alone moves one recipe by about as much as the changes tried here (see
the README's Speed section): compare candidates seed by seed (same seed, same split).
"""
from __future__ import annotations

import argparse
import os
import tarfile
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - sets sys.path
from accuracy_ideas import parse_variant
from common import require_shared
from time_to_accuracy import lesson_frozen_rate

DEFAULT_CANDIDATES = ["fast-cpu="]
VAL_IMAGES = 5_000  # the engine's validation split of the candidates' 45,000 images


def cut(dest: Path, held_out: int) -> tuple[Path, Path]:
    """(the candidates' folder, the held-out folder) under ``dest``, made once."""
    pool, unseen = dest / "pool", dest / "unseen"
    if (dest / ".complete").exists():
        return pool, unseen
    with tarfile.open(require_shared()) as tar:
        members = sorted((m for m in tar if m.isfile() and len(Path(m.name).parts) >= 4),
                         key=lambda m: m.name)
        per_class = held_out // 10
        by_class: dict[str, list] = {}
        for m in members:
            by_class.setdefault(Path(m.name).parts[-2], []).append(m)
        for cls, items in by_class.items():
            for i, m in enumerate(items):
                root = unseen if i >= len(items) - per_class else pool
                out = root / cls / Path(m.name).name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(tar.extractfile(m).read())
    (dest / ".complete").touch()
    return pool, unseen


def run_candidate(name: str, changes: dict, pool: Path, unseen: Path, args) -> dict:
    os.environ["TRANSFERLAB_HOME"] = tempfile.mkdtemp(prefix=f"tl-unseen-{name}-home-")
    t0 = time.perf_counter()
    from core.config import TrainConfig, apply_preset
    from core.inference.evaluate import evaluate_model
    from core.training.trainer import Trainer

    cfg = apply_preset(TrainConfig(), "fast-cpu")
    cfg.data, cfg.log_every, cfg.threads, cfg.limit = str(pool), 0, args.threads, args.limit
    cfg.epochs = args.epochs or cfg.epochs
    cfg.val_split = VAL_IMAGES / sum(1 for _ in pool.rglob("*.jpg"))
    for key, value in changes.items():
        setattr(cfg, key, value)
    run_dir = Path(tempfile.mkdtemp(prefix=f"tl-unseen-{name}-run-"))
    result = Trainer(cfg, run_dir=run_dir).fit()
    wall = time.perf_counter() - t0
    ev = evaluate_model(run_dir / "model.pt", data=str(unseen))
    last = result.history[-1]
    row = dict(name=name, wall=wall, val=last["val_acc"], unseen=ev.accuracy,
               n_unseen=len(ev.images), run=str(run_dir),
               epochs=" ".join(f"{h['val_acc']:.2f}" for h in result.history))
    print(f"{name}: {wall / 60:.1f} min, val per epoch {row['epochs']}, held-out slice "
          f"{ev.accuracy:.2f}% ({run_dir})", flush=True)
    return row


def both_slices(row: dict) -> float:
    """Accuracy over the validation split and the held-out slice together (all their images)."""
    return (row["val"] * VAL_IMAGES + row["unseen"] * row["n_unseen"]) / \
        (VAL_IMAGES + row["n_unseen"])


def report_seeds(rows: list[dict]) -> None:
    """Each candidate's mean over its seeds, and how far its seeds lie apart."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["recipe"], []).append(r)
    print(f"\n{'candidate':22s}{'seeds':>6s}{'validation %':>14s}{'held-out %':>12s}"
          f"{'both slices %':>15s}{'min-max':>14s}")
    for name, group in groups.items():
        both = [both_slices(r) for r in group]
        val, held = (sum(r[key] for r in group) / len(group) for key in ("val", "unseen"))
        print(f"{name:22s}{len(group):6d}{val:14.2f}{held:12.2f}"
              f"{sum(both) / len(both):15.2f}{f'{min(both):.2f}-{max(both):.2f}':>14s}")
    print("(means over the seeds; min-max: the spread of one recipe over both slices from the "
          "seed alone)")


def report(rows: list[dict], lesson: list[float]) -> None:
    from core.uncertainty import AccuracyInterval

    train = 45_000 - VAL_IMAGES
    print(f"\n{'candidate':22s}{'min':>6s}{'lesson img/s':>14s}{'x lesson':>10s}  "
          f"{'validation %':>16s}  {'held-out slice %':>16s}{'val - held':>11s}")
    for i, r in enumerate(rows):
        rates = "-" if not lesson else f"{lesson[i]:.1f}/{lesson[i + 1]:.1f}"
        ratio = "-" if not lesson else \
            f"{r['wall'] / (train / ((lesson[i] + lesson[i + 1]) / 2)):.2f}"
        val = AccuracyInterval.from_percent(r["val"], VAL_IMAGES)
        held = AccuracyInterval.from_percent(r["unseen"], r["n_unseen"])
        print(f"{r['name']:22s}{r['wall'] / 60:6.1f}{rates:>14s}{ratio:>10s}  "
              f"{val.describe():>16s}  {held.describe():>16s}{r['val'] - r['unseen']:+11.2f}")
    if lesson:
        print(f"lesson's frozen epoch (img/s, before and after each candidate; its {train} "
              f"images take {train / max(lesson) / 60:.1f}-{train / min(lesson) / 60:.1f} min)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candidate", action="append",
                    help="NAME=key:value,... (fast-cpu's settings changed); repeatable")
    ap.add_argument("--held-out", type=int, default=5_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="where the cut folders go")
    ap.add_argument("--no-lesson", action="store_true")
    ap.add_argument("--limit", type=int, default=None, help="train on fewer images (a quick "
                    "try of the script, not a comparison)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seeds", default=None, help="comma-separated seeds: each candidate runs "
                    "once per seed (default: the preset's seed, once)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [None]
    from core.allocator import ensure_tuned

    ensure_tuned()  # the engine runs as the app runs it (core/allocator.py)
    import torch

    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.gettempdir()) / f"tl-unseen-{args.held_out}"
    pool, unseen = cut(work, args.held_out)
    # the lesson is timed before the first candidate and after each one: a candidate's ratio
    # is to the mean of the two readings around it (this VM's speed drifts within an hour)
    lesson = [] if args.no_lesson else [lesson_frozen_rate(args.threads)]
    rows = []
    for text in args.candidate or DEFAULT_CANDIDATES:
        name, changes = parse_variant(text)
        for seed in seeds:
            run = name if seed is None else f"{name}@s{seed}"
            extra = {} if seed is None else {"seed": seed}
            rows.append(dict(run_candidate(run, {**changes, **extra}, pool, unseen, args),
                             recipe=name))
            if lesson:
                lesson.append(lesson_frozen_rate(args.threads))
    report(rows, lesson)
    print("(± : half the 95% Wilson interval of each figure; two figures closer than their "
          "intervals are not told apart by these images)")
    if len(seeds) > 1:
        report_seeds(rows)


if __name__ == "__main__":
    main()
