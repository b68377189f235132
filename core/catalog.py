"""What TransferLab offers, as plain data with no torch import.

The GUI fills its menus from this before PyTorch has finished loading (it takes ~3.5 s here),
so nothing in this module may import torch.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelEntry:
    name: str
    title: str  # the network's name as people write it ("MobileNetV2"): no counts, no notes
    family: str  # "torchvision" or "timm"
    source_name: str  # the name in that family's own registry
    offline_weights: bool  # ImageNet weights ship with the app
    early: str  # freeze spec of the high-resolution layers (output stride <= 8): the costly ones
    cam_layer: str  # the last convolutional stage, where Grad-CAM looks
    note: str = ""  # a few words for a list entry ("the lesson's model")
    backbone_params: int = 0  # parameters without the classifier (tests check them)
    features: int = 0  # the classifier's inputs: a head for N classes adds features*N + N

    def params(self, classes: int) -> int:
        """Parameters with a head for ``classes`` classes: the figure that trains (and the
        Model tab's "frozen N / M" counts), not the ImageNet head's."""
        return self.backbone_params + self.features * classes + classes


MODELS = (
    ModelEntry("mobilenet_v2", "MobileNetV2", "torchvision", "mobilenet_v2", False,
               "features.0-6", "features.18", "the lesson's model", 2_223_872, 1280),
    ModelEntry("resnet18", "ResNet-18", "torchvision", "resnet18", False,
               "conv1,bn1,layer1,layer2", "layer4", "", 11_176_512, 512),
    ModelEntry("resnet50", "ResNet-50", "torchvision", "resnet50", False,
               "conv1,bn1,layer1,layer2", "layer4", "", 23_508_032, 2048),
    ModelEntry("efficientnet_lite0", "EfficientNet-Lite0", "timm", "tf_efficientnet_lite0", True,
               "conv_stem,bn1,blocks.0-2", "bn2", "works offline", 3_371_008, 1280),
)
MODEL_NAMES = tuple(m.name for m in MODELS)
MODEL_FILE_SUFFIXES = (".pt", ".pth")  # a trained model.pt (a file dropped or chosen as model)
# export formats: name -> (file suffix, title)
EXPORT_FORMATS = {"onnx": (".onnx", "ONNX"), "pt2": (".pt2", "torch.export archive")}
EARLY_LAYERS = {m.name: m.early for m in MODELS}
CAM_LAYERS = {m.name: m.cam_layer for m in MODELS}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")  # a dataset folder packed in one file
DATASETS = (("cifar10", "CIFAR-10 (downloads 170 MB once)"),
            ("cifar100", "CIFAR-100 (downloads 170 MB once)"))
