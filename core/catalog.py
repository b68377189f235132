"""What TransferLab offers, as plain data with no torch import.

The GUI fills its menus from this before PyTorch has finished loading (it takes ~3.5 s here),
so nothing in this module may import torch.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelEntry:
    name: str
    title: str
    family: str  # "torchvision" or "timm"
    source_name: str  # the name in that family's own registry
    offline_weights: bool  # ImageNet weights ship with the app


MODELS = (
    ModelEntry("mobilenet_v2", "MobileNetV2 — 3.5M params, the lesson's model", "torchvision",
               "mobilenet_v2", False),
    ModelEntry("resnet18", "ResNet-18 — 11.7M params", "torchvision", "resnet18", False),
    ModelEntry("resnet50", "ResNet-50 — 25.6M params", "torchvision", "resnet50", False),
    ModelEntry("efficientnet_lite0", "EfficientNet-Lite0 — 4.7M params, works offline", "timm",
               "tf_efficientnet_lite0", True),
)
MODEL_NAMES = tuple(m.name for m in MODELS)
DATASETS = (("cifar10", "CIFAR-10 (downloads 170 MB once)"),
            ("cifar100", "CIFAR-100 (downloads 170 MB once)"))
