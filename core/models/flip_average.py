"""Test-time flip averaging: a network's logits averaged over the image and its mirror image.

A run trained with ``tta`` (TrainConfig) validates this way, and every later use of its
model.pt does the same (prediction, evaluation, export), so the accuracy the run reported is
the accuracy the user gets. The setting travels in model.pt's config.
"""
from __future__ import annotations

import torch
from torch import nn


def flip_average(logits: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
    return (logits.float() + mirrored.float()) / 2


class FlipAverage(nn.Module):
    """``net`` applied to x and to x mirrored left-right (NCHW), logits averaged."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return flip_average(self.net(x), self.net(x.flip(-1)))


def uses_flip_average(config: dict | None) -> bool:
    return bool((config or {}).get("tta", False))
