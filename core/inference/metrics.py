"""Validation loss, accuracy and confusion matrices."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EvalResult:
    loss: float
    accuracy: float  # percent
    confusion: torch.Tensor  # [true, predicted] counts

    def format_confusion(self, classes: list[str]) -> str:
        width = max(6, max(len(c) for c in classes) + 1)
        short = [c[: width - 1] for c in classes]
        lines = ["true \\ predicted".ljust(width) + "".join(c.rjust(width) for c in short)]
        for name, row in zip(short, self.confusion.tolist()):
            lines.append(name.ljust(width) + "".join(str(v).rjust(width) for v in row))
        return "\n".join(lines)


def accuracy_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% (``z``) Wilson score interval, in percent, of an ``accuracy`` (percent)
    measured on ``n`` images: how far the figure may be from the model's accuracy on images
    like them. With 24 validation images, 93.75% means anything from 77% to 99%."""
    if n <= 0:
        return 0.0, 100.0
    p = min(max(accuracy / 100.0, 0.0), 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def plus_minus(accuracy: float, n: int) -> float:
    """Half the width of ``accuracy_interval``, in points: the "± 4" of "93.8% ± 4"."""
    lo, hi = accuracy_interval(accuracy, n)
    return (hi - lo) / 2


def format_accuracy(accuracy: float, n: int) -> str:
    """``93.75% ± 10.8``: the figure and its 95% uncertainty on ``n`` images."""
    return f"{accuracy:.2f}% ± {plus_minus(accuracy, n):.1f}"


@torch.no_grad()
def evaluate(model: nn.Module, loader, num_classes: int, state=None, forward=None,
             reduce=None, autocast=None) -> EvalResult:
    """``forward`` replaces ``model(x)`` when the loader yields cached features instead;
    ``reduce`` sums the counts over processes in place (a sharded, distributed validation:
    each image is counted once); ``autocast`` is a context for the forward passes."""
    import contextlib

    model.eval()
    forward = forward or model
    criterion = nn.CrossEntropyLoss(reduction="sum")
    confusion = None
    total_loss = None
    for x, y in loader:
        if state is not None:
            state.check()
        with autocast() if autocast else contextlib.nullcontext():
            out = forward(x)
        out = out.float()
        if confusion is None:
            confusion = torch.zeros((num_classes, num_classes), dtype=torch.long,
                                    device=out.device)
            total_loss = torch.zeros((), dtype=torch.float64, device=out.device)
        total_loss += criterion(out, y).double()
        confusion.index_put_((y, out.argmax(1)), torch.ones_like(y), accumulate=True)
    if confusion is None:
        confusion = torch.zeros((num_classes, num_classes), dtype=torch.long)
        total_loss = torch.zeros((), dtype=torch.float64)
    if reduce is not None:
        packed = torch.cat([confusion.flatten().double(), total_loss.view(1)])
        reduce(packed)
        confusion = packed[:-1].round().long().view(num_classes, num_classes)
        total_loss = packed[-1]
    confusion = confusion.cpu()
    n = int(confusion.sum())
    correct = confusion.diag().sum().item()
    return EvalResult(float(total_loss) / max(n, 1), 100.0 * correct / max(n, 1), confusion)


def confusion_matrix(true: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[true, predicted] counts of two label vectors."""
    flat = true.long() * num_classes + predicted.long()
    return torch.bincount(flat, minlength=num_classes ** 2).view(num_classes, num_classes)


def per_class_metrics(confusion) -> list[dict]:
    """Precision, recall, F1 and support per class from a [true, predicted] count matrix.

    A class never predicted has precision 0, a class with no images recall 0 (as
    scikit-learn's ``zero_division=0``); F1 is 0 when both are."""
    c = torch.as_tensor(confusion, dtype=torch.float64)
    tp, predicted, support = c.diag(), c.sum(0), c.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), 0.0)
    recall = torch.where(support > 0, tp / support.clamp(min=1), 0.0)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), 0.0)
    return [{"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for p, r, f, s in zip(precision, recall, f1, support)]


def row_normalised(confusion) -> list[list[float]]:
    """Each true class's row as fractions of its images (rows of empty classes stay 0)."""
    c = torch.as_tensor(confusion, dtype=torch.float64)
    return (c / c.sum(1, keepdim=True).clamp(min=1)).tolist()


def most_confused(confusion, n: int = 10) -> list[tuple[int, int, int]]:
    """(true, predicted, count) of the largest off-diagonal cells, largest first; ties in
    (true, predicted) order."""
    c = torch.as_tensor(confusion, dtype=torch.long)
    cells = [(-int(c[t, p]), t, p) for t in range(len(c)) for p in range(len(c))
             if t != p and c[t, p] > 0]
    return [(t, p, -neg) for neg, t, p in sorted(cells)[:n]]
