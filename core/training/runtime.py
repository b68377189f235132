"""What a training loop runs on: the network (and where it can be cut) and the runtime
(device, precision, processes, and the speed choices made for this machine)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from core.models.layers import LayerTree
from core.models.staging import Stage
from core.preprocess import Preprocessing
from core.training.device import Precision, describe_device
from core.training.distributed import Distributed


@dataclass
class Network:
    """A model ready to fine-tune: the module, where its head is, its layer tree (what is
    frozen) and its stage split (where a frozen prefix can be cut off and cached)."""
    arch: str
    model: nn.Module
    head: str
    preprocessing: Preprocessing  # what the trained model expects (saved with it)
    tree: LayerTree
    stage_list: list[Stage]


@dataclass
class Runtime:
    device: torch.device
    precision: Precision
    dist: Distributed
    compile: bool = False
    tuner: object = None  # core.training.tuner.AutoTuner on a CPU: times the speed choices
    # the speed choices in force (name -> {"choice", "figures", "reason"}), as recorded in
    # the run folder's decisions.json (core.training.autotune)
    decisions: dict = field(default_factory=dict)

    def describe(self) -> str:
        from core import allocator

        ranks = f", {self.dist.world} processes" if self.dist.enabled else ""
        memory = f", {allocator.describe()}" if self.device.type == "cpu" else ""
        return (f"{describe_device(self.device)}, precision {self.precision.describe()}{ranks}"
                f"{memory}")
