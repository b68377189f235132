"""How well `check` finds planted mistakes, and how long it takes.

    .venv/bin/python bench/check_planted.py photos [--flip 0.05] [--dups 40]
    .venv/bin/python bench/check_planted.py cifar --images 10000 [--flip 0.05] [--dups 40]
    .venv/bin/python bench/check_planted.py photos --train       # + noisy vs cleaned training
    .venv/bin/python bench/check_planted.py cifar --images 10000 --with-run  # + check --model

*photos*: the shared ants/bees photos (train/ + val/, 397 readable photos of all sizes: the
"own folder" case). *cifar*: a class-balanced slice of the shared CIFAR-10 split, 80% train
/ 20% val. Planted in a copy: ``--flip`` of the images moved to another class's folder
(the same split), and ``--dups`` near-duplicates of random images, a third each re-encoded
(JPEG quality 60), resized (x0.6) and slightly cropped (8% off each side, resized back),
each in the original's class, half of them in the other split (leakage); *photos* also get
three outliers among the training images of the first class: a blank frame, a
screenshot-like picture and a page of text.

Prints, for label issues and duplicate pairs, recall (planted ones found) and precision
(found ones that were planted; pairs that were not planted but are real duplicates of the
original data count against it), what else was flagged, and the check's wall time (twice:
the second check of unchanged data loads the cached features). With ``--train``, trains the
same preset on the noisy copy and on the copy the check cleaned (every label issue moved to
its suggested class, every leaking training copy removed, through the review session) and
evaluates both on the *clean* validation images (their true labels): the accuracy gained.
With ``--with-run``, trains the preset on the noisy copy and checks again with that run's
network (``check --model``), scored the same way.

Goals (issue 21): photos: label recall >= 0.9 at precision >= 0.8, duplicates recall >= 0.95;
CIFAR: recall >= 0.8 at precision >= 0.6; check <= 3 min on 10,000 images. The machine is
shared: times are pessimistic, compare only figures of one run.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - sets sys.path
from common import REPO, peak_rss_gb

PHOTOS = REPO.parent / "shared" / "datasets" / "hymenoptera-photos.tar.gz"


def extract_photos(dest: Path) -> Path:
    if not PHOTOS.exists():
        sys.exit(f"skipped: the shared photos are not at {PHOTOS}")
    with tarfile.open(PHOTOS) as tar:
        tar.extractall(dest, filter="data")
    return dest / "hymenoptera-photos"


def extract_cifar(dest: Path, images: int) -> Path:
    from common import extract_slice

    return extract_slice(dest / "cifar", images * 8 // 10, images // 5)


def readable_files(root: Path) -> list[Path]:
    from core.data.images import UnreadableImage, header_size
    from core.data.folder import image_files

    files = [p for split in ("train", "val") for c in sorted((root / split).iterdir())
             for p in image_files(c)]
    ok = []
    for p in files:
        try:
            if header_size(p) is not None and p.suffix.lower() != ".gif":
                ok.append(p)
        except UnreadableImage:
            pass
    return ok


def plant(root: Path, flip: float, dups: int, seed: int = 0) -> tuple[dict, set]:
    """Flip labels and add near-duplicates in ``root``; returns ({new rel: true class} of
    flipped files, {frozenset(rel a, rel b)} of planted pairs)."""
    from PIL import Image

    from core.data.images import open_rgb

    rng = random.Random(seed)
    files = readable_files(root)
    classes = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    flipped = {}
    for p in rng.sample(files, round(flip * len(files))):
        split, cls = p.parts[-3], p.parts[-2]
        other = rng.choice([c for c in classes if c != cls])
        dst = root / split / other / p.name
        if dst.exists():  # CIFAR's files are numbered per class
            dst = dst.with_name(f"{p.stem}-{cls}{p.suffix}")
        p.rename(dst)
        flipped[rel(dst)] = cls
    pairs = set()
    pool = [p for p in readable_files(root) if rel(p) not in flipped]
    for n, p in enumerate(rng.sample(pool, dups)):
        img = open_rgb(p)
        w, h = img.size
        kind = ("reencoded", "resized", "cropped")[n % 3]
        if kind == "resized":
            img = img.resize((max(8, round(w * 0.6)), max(8, round(h * 0.6))))
        elif kind == "cropped":
            dx, dy = round(w * 0.08), round(h * 0.08)
            img = img.crop((dx, dy, w - dx, h - dy)).resize((w, h))
        split = p.parts[-3] if n % 2 == 0 else ("val" if p.parts[-3] == "train" else "train")
        dst = root / split / p.parts[-2] / f"{p.stem}-{kind}.jpg"
        img.save(dst, quality=60 if kind == "reencoded" else 90)
        pairs.add(frozenset((rel(p), rel(dst))))
    return flipped, pairs


def plant_outliers(root: Path, seed: int = 0) -> set[str]:
    """A blank frame, a screenshot-like picture and a page of text, filed as training
    images of the first class: what a user's folder picks up by accident."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    cls = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())[0]
    folder = root / "train" / cls
    w, h = 640, 480
    blank = Image.new("RGB", (w, h), (118, 118, 118))
    shot = Image.new("RGB", (w, h), (236, 236, 236))
    d = ImageDraw.Draw(shot)
    d.rectangle((0, 0, w, 28), fill=(52, 101, 164))
    for y in range(60, h - 40, 36):
        d.rectangle((24, y, rng.randint(200, w - 24), y + 20), outline=(120, 120, 120))
        d.text((30, y + 4), "Settings  Options  Help", fill=(20, 20, 20))
    page = Image.new("RGB", (h, w), (250, 250, 248))
    d = ImageDraw.Draw(page)
    for y in range(40, w - 40, 18):
        d.text((36, y), " ".join("lorem ipsum dolor sit amet"[: rng.randint(8, 26)]
                                 for _ in range(3)), fill=(10, 10, 10))
    out = set()
    for name, img in (("blank.jpg", blank), ("screenshot.png", shot), ("page.png", page)):
        img.save(folder / name)
        out.add(f"train/{cls}/{name}")
    return out


def timed_check(root: Path, model: str | None = None):
    from core.doctor.check import run_check

    t = time.perf_counter()
    report = run_check(str(root), model)
    return report, time.perf_counter() - t


def score(report, flipped: dict, pairs: set, odd: set = frozenset()) -> None:
    found = {i.rel for i in report.label_issues}
    tp = len(found & set(flipped))
    right = sum(1 for i in report.label_issues if flipped.get(i.rel) == i.suggested)
    print(f"label issues: {len(found)} flagged, {tp} of {len(flipped)} planted flips found: "
          f"recall {tp / max(1, len(flipped)):.2f}, precision {tp / max(1, len(found)):.2f} "
          f"(suggested class right for {right} of {tp})")
    got = {frozenset((d.a, d.b)) for d in report.duplicates}
    copies = {rel for p in pairs for rel in p if "-" in Path(rel).stem
              and Path(rel).stem.rsplit("-", 1)[1] in ("reencoded", "resized", "cropped")}
    # pairs of two original images: duplicates the data had before anything was planted
    had = {p for p in got - pairs if not p & copies and not p & set(flipped)}
    hit = len(got & pairs)
    leak = [d for d in report.duplicates if frozenset((d.a, d.b)) in pairs]
    judged = len(got - had)
    print(f"duplicates: {len(got)} pairs flagged, {hit} of {len(pairs)} planted found: recall "
          f"{hit / max(1, len(pairs)):.2f}, precision {hit / max(1, judged):.2f} (of the "
          f"{judged} that involve a planted or moved file); {sum(d.across_splits for d in leak)}"
          f" of the found are train/val leakage; {len(had)} pairs of original images (the "
          f"data's own duplicates, or not: have a look)")
    missed = [tuple(sorted(p)) for p in pairs - got]
    if missed:
        print("  missed: " + "; ".join(f"{b}" for _, b in missed[:6]))
    extra = [d for d in report.duplicates if frozenset((d.a, d.b)) not in pairs][:5]
    for d in extra:
        print(f"  also flagged: {d.a} = {d.b} ({d.similarity:.3f})")
    found = {o.rel for o in report.outliers}
    print(f"outliers: {len(found & odd)} of {len(odd)} planted found, {len(found)} flagged "
          f"({', '.join(f'{Path(o.rel).name}: {o.why}' for o in report.outliers[:6])})")
    print(f"set flags: {'; '.join(f.message for f in report.set_flags) or 'none'}")
    print(f"cross-validated probabilities: {report.info['oos_accuracy']:.1%} agree with the "
          f"given labels (L2 {report.info['l2']}, {report.info['folds']} folds)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", choices=("photos", "cifar"))
    ap.add_argument("--images", type=int, default=3000, help="cifar: images in the slice")
    ap.add_argument("--flip", type=float, default=0.05)
    ap.add_argument("--dups", type=int, default=40)
    ap.add_argument("--train", action="store_true", help="also train noisy vs cleaned")
    ap.add_argument("--with-run", action="store_true",
                    help="also check with a run trained on the noisy copy (--model)")
    ap.add_argument("--preset", default="fast-cpu")
    ap.add_argument("--keep", help="build the planted folder here and keep it")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="tl-check-"))
    os.environ.setdefault("TRANSFERLAB_HOME", str(work / "home"))
    root = extract_photos(work) if args.data == "photos" else extract_cifar(work, args.images)
    clean = work / "clean-copy"
    shutil.copytree(root, clean)
    flipped, pairs = plant(root, args.flip, args.dups)
    odd = plant_outliers(root) if args.data == "photos" else set()
    print(f"{args.data}: {len(readable_files(root))} images in {root}; planted {len(flipped)} "
          f"flipped labels, {len(pairs)} near-duplicates and {len(odd)} outliers")
    report, first = timed_check(root)
    again, second = timed_check(root)
    print(f"check: {first:.1f} s ({report.info['computed']} images computed), second check "
          f"{second:.1f} s ({again.info['computed']} computed); peak memory "
          f"{peak_rss_gb():.2f} GB")
    score(report, flipped, pairs, odd)
    if args.train:
        train_both(work, root, clean, report, args.preset)
    if args.with_run:
        check_with_run(work, root, clean, flipped, pairs, odd, args.preset)


def check_with_run(work: Path, noisy: Path, clean: Path, flipped: dict, pairs: set, odd: set,
                   preset: str) -> None:
    """``check --model`` with the preset trained on the noisy copy (the run of ``--train``
    when there is one)."""
    run = work / "run-noisy"
    if not (run / "model.pt").exists():
        t = time.perf_counter()
        own, true = train_and_score(noisy, run, preset, clean / "val")
        print(f"train --preset {preset} on the noisy copy: its validation {own:.2f}%, on the "
              f"clean validation images {true:.2f}% ({time.perf_counter() - t:.0f} s)",
              flush=True)
    report, took = timed_check(noisy, str(run / "model.pt"))
    print(f"check --model (that run's network): {took:.1f} s; "
          f"{report.info.get('run_images', 0)} images with the run's own probabilities")
    score(report, flipped, pairs, odd)



def cleaned_copy(noisy: Path, dest: Path, report) -> Path:
    """The noisy folder with the check's advice taken: label issues moved to their suggested
    class, leaking training copies removed (through the review session, as the app does)."""
    from core.review.session import ReviewSession

    shutil.copytree(noisy, dest, ignore=shutil.ignore_patterns(".transferlab-review"))
    s = ReviewSession(dest)
    removed = sorted({d.b for d in report.leakage})
    if removed:  # first: a relabel moves (and may rename) the file
        s.remove(removed)
    moves = [(i.rel, i.given, i.suggested) for i in report.label_issues if i.rel not in removed]
    if moves:
        s.relabel(moves, new_names=True)
    s.close()
    return dest


def train_and_score(data: Path, out: Path, preset: str, truth: Path) -> tuple[float, float]:
    """(the run's own best validation accuracy, its accuracy on the clean validation images)."""
    from core.config import TrainConfig, apply_preset
    from core.inference.evaluate import evaluate_model
    from core.training.trainer import Trainer

    cfg = apply_preset(TrainConfig(), preset)
    cfg.data, cfg.log_every = str(data), 0
    result = Trainer(cfg.validate(), [], None, str(out)).fit()
    return result.best_val_acc, evaluate_model(out / "model.pt", str(truth)).accuracy


def train_both(work: Path, noisy: Path, clean: Path, report, preset: str) -> None:
    cleaned = cleaned_copy(noisy, work / "cleaned", report)
    truth = clean / "val"
    for name, data in (("noisy", noisy), ("cleaned", cleaned)):
        t = time.perf_counter()
        own, true = train_and_score(data, work / f"run-{name}", preset, truth)
        print(f"train --preset {preset} on the {name} copy: its validation {own:.2f}%, on the "
              f"clean validation images {true:.2f}% ({time.perf_counter() - t:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
