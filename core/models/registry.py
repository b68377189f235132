"""Which networks TransferLab offers, and how each gets a new classification head.

A spec knows how to build the bare architecture and where its ImageNet weights and
preprocessing come from; everything else (head replacement, weight files) is generic so that
adding a network is one entry in ``_SPECS``.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from core.catalog import MODEL_NAMES, MODELS, ModelEntry
from core.errors import TransferLabError
from core.preprocess import Preprocessing
from core.models import weights as W
from core.models.heads import head_path, replace_head  # noqa: F401 - re-exported


ModelSpec = ModelEntry  # what the registry hands out: core.catalog's plain entry


def build_architecture(spec: ModelSpec, drop_path: float = 0.0) -> nn.Module:
    """The bare network with its original 1000-class head and random weights;
    ``drop_path`` > 0 skips each residual block of a timm network at random while it trains
    (stochastic depth, rising to that rate in the last block; no weights of its own, so
    model.pt loads into a network built without it)."""
    if spec.family == "timm":
        import timm

        return timm.create_model(spec.source_name, pretrained=False, drop_path_rate=drop_path)
    if drop_path:
        raise TransferLabError(f"drop_path needs a timm network, not {spec.name} "
                               "(torchvision's); set it to 0 or choose an efficientnet_lite.")
    import torchvision

    return torchvision.models.get_model(spec.source_name, weights=None)


def imagenet_preprocessing(spec: ModelSpec | str) -> Preprocessing:
    """The preprocessing the network's ImageNet weights were made with (from their own
    config; the same for random or user weights of that network): what training decodes
    with and model.pt records."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    if spec.family == "timm":
        return W.timm_preprocessing(spec.source_name)
    return W.torchvision_preprocessing(spec.source_name)


_SPECS = {m.name: m for m in MODELS}


def get_spec(name: str) -> ModelSpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise TransferLabError(
            f"Unknown model '{name}'. Choose one of: {', '.join(MODEL_NAMES)}.") from None


def build_model(
    name: str,
    weights: str = "imagenet",
    num_classes: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    drop_path: float = 0.0,
) -> tuple[nn.Module, Preprocessing, W.WeightsInfo]:
    """Build ``name`` with ``weights`` ("imagenet", "none" or a file path).

    ``num_classes=None`` keeps the original 1000-class ImageNet head (plain prediction).
    Missing ImageNet weights raise; they never silently become random ones. ``drop_path``:
    see build_architecture.
    """
    spec = get_spec(name)
    model = build_architecture(spec, drop_path)
    preprocessing = imagenet_preprocessing(spec)
    info = W.load_weights(spec, model, weights, progress)
    if num_classes is not None:
        if num_classes < 2:
            raise TransferLabError(f"A classifier needs at least 2 classes, got {num_classes}.")
        replace_head(model, num_classes)
    return model, preprocessing, info
