"""Model registry: build a pretrained network with a fresh head for N classes."""
from core.models.registry import (MODEL_NAMES, ModelSpec, build_model, get_spec, head_path,
                                  imagenet_preprocessing)
from core.models.weights import WeightsInfo, imagenet_categories

__all__ = ["MODEL_NAMES", "ModelSpec", "build_model", "get_spec", "head_path", "WeightsInfo",
           "imagenet_categories", "imagenet_preprocessing"]
