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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=320)
    ap.add_argument("--val", type=int, default=160)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = extract_slice(Path(tempfile.mkdtemp(prefix="tl-slice-")), args.train, args.val)
    print(f"slice: {args.train} train + {args.val} val images of the shared CIFAR-10 copy, "
          f"{args.image_size} px, MobileNetV2, batch 64, 5 epochs (2 frozen), "
          f"{torch.get_num_threads()} threads")
    print("baseline: the lesson's train_model")
    base = lesson_train_model(root, args.image_size)
    peak_lesson = peak_rss_gb()
    print("TransferLab engine, preset seed (BatchNorm statistics as with ImageNet weights)")
    ours = engine(root, args.image_size)
    base_r, ours_r = phase_rates(base, args.train, 2), phase_rates(ours, args.train, 2)
    print(f"\n{'phase':18}{'lesson img/s':>14}{'engine img/s':>14}{'ratio':>8}")
    for name, b, o in zip(PHASES, base_r, ours_r):
        print(f"{name:18}{b:14.1f}{o:14.1f}{o / b:7.1f}x")
    overall_b = args.train * len(base) / sum(base)
    overall_o = args.train * len(ours) / sum(ours)
    print(f"{'overall':18}{overall_b:14.1f}{overall_o:14.1f}{overall_o / overall_b:7.1f}x")
    print(f"(images/s = training images per epoch / epoch wall time incl. the test pass)")
    print(f"peak memory (process): {peak_lesson:.2f} GB after the lesson's loop, "
          f"{peak_rss_gb():.2f} GB after the engine's run")
    print(f"speedup frozen-after-first: {ours_r[1] / base_r[1]:.1f}x")
    print(f"speedup overall: {overall_o / overall_b:.1f}x")


if __name__ == "__main__":
    main()
