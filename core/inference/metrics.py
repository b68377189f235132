"""Validation loss, accuracy and confusion matrices."""
from __future__ import annotations

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
