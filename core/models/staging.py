"""Each network as an ordered list of stages whose composition is its forward pass.

This is what makes frozen-prefix caching possible: the leading stages that are entirely
frozen (with BatchNorm in eval mode) compute a fixed function of the image, so their output
can be computed once and the remaining stages trained from it. Stage names are module paths
in the layer tree, so the tree's freeze choice decides where the cut falls.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from core.errors import TransferLabError
from core.models.layers import EMPTY, FROZEN, LayerTree


@dataclass
class Stage:
    path: str  # module path ("" for parameterless glue such as pooling)
    fn: Callable[[torch.Tensor], torch.Tensor]


def _seq(model: nn.Module, path: str) -> list[Stage]:
    return [Stage(f"{path}.{name}", m) for name, m in model.get_submodule(path).named_children()]


def _pool_flatten(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def stages(arch: str, model: nn.Module) -> list[Stage]:
    if arch == "mobilenet_v2":
        return _seq(model, "features") + [Stage("", _pool_flatten),
                                          Stage("classifier", model.classifier)]
    if arch.startswith("resnet"):
        out = [Stage(n, getattr(model, n)) for n in ("conv1", "bn1", "relu", "maxpool")]
        for layer in ("layer1", "layer2", "layer3", "layer4"):
            out += _seq(model, layer)
        return out + [Stage("", _pool_flatten), Stage("fc", model.fc)]
    if arch.startswith("efficientnet_lite"):
        out = [Stage("conv_stem", model.conv_stem), Stage("bn1", model.bn1)]
        for i, block in enumerate(model.blocks):
            out += _seq(model, f"blocks.{i}")
        return out + [Stage("conv_head", model.conv_head), Stage("bn2", model.bn2),
                      Stage("global_pool", model.global_pool),
                      Stage("classifier", model.classifier)]
    raise TransferLabError(f"No stage split known for {arch}.")


def run(stage_list: list[Stage], x: torch.Tensor) -> torch.Tensor:
    for stage in stage_list:
        x = stage.fn(x)
    return x


def frozen_prefix(tree: LayerTree, stage_list: list[Stage]) -> int:
    """How many leading stages are entirely frozen (parameterless glue counts as frozen).

    The last stage (the head) is never included: something has to train.
    """
    k = 0
    for stage in stage_list[:-1]:
        state = tree.node(stage.path).state if stage.path else EMPTY
        if state not in (FROZEN, EMPTY):
            break
        k += 1
    return k


class StageStack(nn.Module):
    """Stages as one module (sharing the network's layers), so that the part of the network
    that trains after a cached prefix can be wrapped by DDP or compiled like any module."""

    def __init__(self, stage_list: list[Stage]):
        super().__init__()
        self.fns = [s.fn for s in stage_list]
        self.layers = nn.ModuleList([f for f in self.fns if isinstance(f, nn.Module)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fn in self.fns:
            x = fn(x)
        return x
