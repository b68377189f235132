"""The ``model.pt`` format: one home for what a saved model holds.

Training writes it (core.training.checkpointing), prediction, evaluation and export read it
(core.inference). It holds enough to predict with no other file: the architecture name, the
class names, the preprocessing and the weights, as plain data that
``torch.load(weights_only=True)`` accepts.
"""
from __future__ import annotations

from torch import nn

MODEL_FORMAT = "transferlab-model"
MODEL_VERSION = 1


def model_payload(arch: str, model: nn.Module, classes: list[str], preprocessing: dict,
                  config: dict, metrics: dict) -> dict:
    """What ``model.pt`` holds (weights copied to the CPU, so a GPU run's file loads anywhere)."""
    return {"format": MODEL_FORMAT, "version": MODEL_VERSION, "arch": arch,
            "classes": list(classes), "preprocessing": preprocessing, "config": config,
            "metrics": metrics,
            "state_dict": {k: v.detach().to("cpu", copy=True)
                           for k, v in model.state_dict().items()}}
