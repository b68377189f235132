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
def evaluate(model: nn.Module, loader, num_classes: int, state=None,
             forward=None) -> EvalResult:
    """``forward`` replaces ``model(x)`` when the loader yields cached features instead."""
    model.eval()
    forward = forward or model
    criterion = nn.CrossEntropyLoss(reduction="sum")
    confusion = torch.zeros((num_classes, num_classes), dtype=torch.long)
    total_loss, n = 0.0, 0
    for x, y in loader:
        if state is not None:
            state.check()
        out = forward(x)
        total_loss += criterion(out, y).item()
        pred = out.argmax(1)
        confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
        n += len(y)
    correct = confusion.diag().sum().item()
    return EvalResult(total_loss / max(n, 1), 100.0 * correct / max(n, 1), confusion)
