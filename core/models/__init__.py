"""Networks: the registry (build a pretrained network with a fresh head), weights, the layer
tree that freezing acts on, and each network's stage split.

Names are resolved lazily (PEP 562) so that importing ``core.models.layers`` from the GUI does
not import torch before the window is shown.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "MODEL_NAMES": "core.catalog", "ModelSpec": "core.models.registry",
    "build_model": "core.models.registry", "get_spec": "core.models.registry",
    "imagenet_preprocessing": "core.models.registry", "head_path": "core.models.heads",
    "replace_head": "core.models.heads", "WeightsInfo": "core.models.weights",
    "imagenet_categories": "core.models.weights",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.models' has no attribute {name!r}")
