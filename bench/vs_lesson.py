"""The lesson's training loop against TransferLab's engine, same recipe, same images.

    .venv/bin/python bench/vs_lesson.py [--train 256 --val 128 --image-size 224]

Both run in this one process, one after the other, on a class-balanced slice of the shared
CIFAR-10 copy: MobileNetV2, batch 64, Adam 1e-3, StepLR(3, 0.1), 5 epochs of which 2 frozen,
LR x0.1 at unfreeze. Weights are random (`weights=None`) because MobileNetV2's ImageNet file
cannot be downloaded here: speed does not depend on the weights' values. The baseline is the
lesson's `train_model` re-implemented faithfully: torchvision ImageFolder, PIL
Resize/ToTensor/Normalize per image every epoch, a DataLoader, `requires_grad=False` on
`model.features`, Adam over all parameters, a test pass after every epoch. The engine runs
the `seed` preset with BatchNorm statistics kept (what `auto` chooses for ImageNet weights):
decoded uint8 tensors resized per batch, channels_last, the frozen features cached after the
first epoch, and 16-image micro-batches inside each 64-image step.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - sets sys.path
import torch
from torch import nn

from common import extract_slice, peak_rss_gb

PHASES = ("frozen epoch 1", "frozen epoch 2+", "unfrozen")


def lesson_train_model(root: Path, image_size: int, epochs=5, freeze_epochs=2, batch=64):
    """Returns seconds per epoch (train + test pass), as the lesson's loop would spend."""
    import torchvision
    from torchvision import transforms

    tf = transforms.Compose([transforms.Resize(image_size), transforms.ToTensor(),
                             transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    train_set = torchvision.datasets.ImageFolder(root / "train", tf)
    test_set = torchvision.datasets.ImageFolder(root / "val", tf)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=batch, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=batch)
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None)
    model.classifier[1] = nn.Linear(1280, 10)
    for p in model.features.parameters():
        p.requires_grad = False
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    print(f"  lesson: frozen {frozen}/{sum(p.numel() for p in model.parameters())} parameters")
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)
    seconds = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        if epoch == freeze_epochs:
            for p in model.features.parameters():
                p.requires_grad = True
            for group in optimizer.param_groups:
                group["lr"] *= 0.1
        model.train()
        running, correct, total = 0.0, 0, 0
        for i, (images, labels) in enumerate(train_loader):
            optimizer.zero_grad()
            outputs = model(images)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running += loss.item()
            correct += (outputs.argmax(1) == labels).sum().item()
            total += labels.size(0)
            if (i + 1) % 200 == 0:
                print(f"Epoch [{epoch + 1}/{epochs}], Step [{i + 1}], Loss: {loss.item():.4f}")
        scheduler.step()
        model.eval()
        test_correct, test_total = 0, 0
        with torch.no_grad():
            for images, labels in test_loader:
                test_correct += (model(images).argmax(1) == labels).sum().item()
                test_total += labels.size(0)
        seconds.append(time.perf_counter() - t0)
        print(f"  lesson epoch {epoch + 1}: {seconds[-1]:.1f} s, train acc "
              f"{100 * correct / total:.1f}%, test acc {100 * test_correct / test_total:.1f}%")
    return seconds


def engine(root: Path, image_size: int, epochs=5, freeze_epochs=2):
    from core.config import TrainConfig, apply_preset
    from core.events import Callback
    from core.training.trainer import Trainer

    cfg = apply_preset(TrainConfig(), "seed")
    cfg.weights, cfg.data, cfg.image_size, cfg.log_every = "none", str(root), image_size, 0
    # With the real ImageNet weights, bn_policy "auto" resolves to "eval"; random weights
    # stand in for them here only because they cannot be downloaded, so keep what users get.
    cfg.bn_policy = "eval"
    cfg.epochs, cfg.freeze_epochs = epochs, freeze_epochs
    seconds = []

    class Timer(Callback):
        def on_epoch_end(self, e):
            seconds.append(e.seconds)
            print(f"  engine epoch {e.epoch}: {e.seconds:.1f} s, train acc {e.train_acc:.1f}%, "
                  f"test acc {e.val_acc:.1f}%")

        def on_log_line(self, e):
            if not e.message.startswith("Epoch"):
                print(f"  engine: {e.message}")

    t0 = time.perf_counter()
    trainer = Trainer(cfg, [Timer()], run_dir=tempfile.mkdtemp(prefix="tl-bench-run-"))
    trainer.fit()
    prepare = time.perf_counter() - t0 - sum(seconds)
    print(f"  engine: data decoding and model set-up {prepare:.1f} s (counted in overall)")
    seconds[0] += prepare
    return seconds


def phase_rates(seconds: list[float], n: int, freeze_epochs: int) -> list[float]:
    groups = [seconds[:1], seconds[1:freeze_epochs], seconds[freeze_epochs:]]
    return [n * len(g) / sum(g) if g else float("nan") for g in groups]


def run_part(part: str, args, root: Path, tuned: bool) -> dict:
    """One side in its own process, so the allocator setting (read by glibc at process
    start) and the peak memory are that side's own."""
    import json
    import os
    import subprocess
    import sys

    from core.allocator import TUNABLES

    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tuned:
        env["GLIBC_TUNABLES"] = TUNABLES
    out = Path(tempfile.mkdtemp(prefix="tl-part-")) / "result.json"
    subprocess.run([sys.executable, __file__, "--part", part, "--root", str(root),
                    "--image-size", str(args.image_size), "--threads", str(args.threads),
                    "--epochs", str(args.epochs), "--train", str(args.train),
                    "--json", str(out)], env=env, check=True)
    return json.loads(out.read_text())


def child(args) -> None:
    import json

    torch.set_num_threads(args.threads)
    root = Path(args.root)
    if args.part == "lesson":
        seconds = lesson_train_model(root, args.image_size, epochs=args.epochs)
    else:
        seconds = engine(root, args.image_size, epochs=args.epochs)
    Path(args.json).write_text(json.dumps({"seconds": seconds, "peak_gb": peak_rss_gb()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=320)
    ap.add_argument("--val", type=int, default=160)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--part", choices=("lesson", "engine"), help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        return child(args)
    root = extract_slice(Path(tempfile.mkdtemp(prefix="tl-slice-")), args.train, args.val)
    print(f"slice: {args.train} train + {args.val} val images of the shared CIFAR-10 copy, "
          f"{args.image_size} px, MobileNetV2, batch 64, {args.epochs} epochs (2 frozen), "
          f"{args.threads} threads; each side in its own process")
    sides = {}
    for name, part, tuned in (("lesson", "lesson", False), ("lesson+malloc", "lesson", True),
                              ("engine", "engine", True)):
        print(f"== {name}: {'the lesson' + chr(39) + 's train_model' if part == 'lesson' else 'TransferLab, preset seed'}"
              f", {'tuned' if tuned else 'system'} malloc")
        sides[name] = run_part(part, args, root, tuned)
    rates = {k: phase_rates(v["seconds"], args.train, 2) for k, v in sides.items()}
    overall = {k: args.train * len(v["seconds"]) / sum(v["seconds"]) for k, v in sides.items()}
    print(f"\n{'phase':18}{'lesson':>10}{'lesson+malloc':>15}{'engine':>10}"
          f"{'vs lesson':>11}{'vs lesson+malloc':>18}   (images/s)")
    rows = [(n, *[rates[k][i] for k in sides]) for i, n in enumerate(PHASES)]
    rows.append(("overall", *[overall[k] for k in sides]))
    for name, a, b, c in rows:
        print(f"{name:18}{a:10.1f}{b:15.1f}{c:10.1f}{c / a:10.1f}x{c / b:17.1f}x")
    print("(images/s = training images per epoch / epoch wall time incl. the test pass)")
    print("peak memory: " + ", ".join(f"{k} {v['peak_gb']:.2f} GB" for k, v in sides.items()))
    print(f"allocator alone (lesson+malloc vs lesson, overall): "
          f"{overall['lesson+malloc'] / overall['lesson']:.2f}x")
    print(f"speedup overall: {overall['engine'] / overall['lesson']:.1f}x vs the lesson as "
          f"written, {overall['engine'] / overall['lesson+malloc']:.1f}x vs the lesson with the "
          f"same allocator")


if __name__ == "__main__":
    main()
