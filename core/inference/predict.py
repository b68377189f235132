"""Prediction from a saved TransferLab model or a plain ImageNet network.

Preprocessing always comes from the model (its file, or its weights' own config), never from
the caller, so a prediction sees the pixels the way training did. The loop over files is
core.inference.predictions (shared with the ONNX and pt2 files); the network runs through
core.inference.forward.InferenceNet (shared with evaluation, export and calibration).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from core.data.images import load_square
from core.inference.forward import InferenceNet
from core.inference.predictions import (Prediction, predict_files,  # noqa: F401 - re-exported
                                        write_predictions_csv)
from core.models import build_model, head_path, imagenet_categories
from core.models.flip_average import uses_flip_average
from core.models.model_file import read_model_file
from core.preprocess import Preprocessing
from core.runs.layout import MODEL_FILE


@dataclass
class LoadedModel:
    arch: str
    model: nn.Module  # the network (its modules are the net's: Grad-CAM hooks into them)
    net: InferenceNet  # what every prediction runs through
    classes: list[str]
    preprocessing: Preprocessing
    source: str
    # one user of the network at a time: prediction and Grad-CAM run in different workers
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    kind: str = MODEL_FILE  # (a kind: "onnx", "pt2" or the run's model file)

    @property
    def flip_average(self) -> bool:
        """The run validated with test-time flip averaging (core.models.flip_average)."""
        return self.net.mirror

    @flip_average.setter
    def flip_average(self, value: bool) -> None:
        self.net.mirror = bool(value)

    @torch.no_grad()
    def run(self, x) -> tuple:
        """Probabilities and out-of-distribution scores (None without a calibration) of a
        normalised float32 NCHW batch (numpy), as numpy arrays."""
        with self.lock:
            logits, feats = self.net(torch.from_numpy(x))
            ood = None if self.net.ood is None else self.net.ood(feats).numpy()
        return logits.softmax(1).numpy(), ood


def load_model_file(path: str | Path) -> LoadedModel:
    """A saved ``model.pt``, checked part by part (core.models.model_file); each way the file
    can be wrong is one ``TransferLabError`` line."""
    from core.inference.ood import Unfamiliarity
    from core.models.weights import load_exact

    path = Path(path).expanduser()
    payload = read_model_file(path)
    classes = payload["classes"]
    model, _, _ = build_model(payload["arch"], "none", len(classes))
    load_exact(model, payload["state_dict"], str(path), payload["arch"])
    model.eval()
    pre = Preprocessing.from_dict(payload["preprocessing"])
    ood = Unfamiliarity(payload["ood"]) if "ood" in payload else None
    net = InferenceNet(model, head_path(model), pre, uses_flip_average(payload.get("config")),
                       ood)
    return LoadedModel(payload["arch"], model, net, classes, pre, str(path))


def load_imagenet_model(name: str, progress=None) -> LoadedModel:
    model, pre, info = build_model(name, "imagenet", None, progress)
    model.eval()
    return LoadedModel(name, model, InferenceNet(model, head_path(model), pre),
                       imagenet_categories(), pre, f"{name} (ImageNet)", kind="ImageNet")


def preprocess(lm, path: str | Path) -> torch.Tensor:
    """One file as the model's uint8 (3, crop_size, crop_size) square (training's decode
    with the model's own settings; core.data.images.load_pixels computes the same)."""
    pre = lm.preprocessing
    return load_square(path, pre.crop_size, pre.crop, pre.interpolation)


def predict_paths(lm, paths, topk: int = 5, batch_size: int = 16, state=None,
                  on_results=None, thumb_size: int = 0) -> list[Prediction]:
    """Predictions in input order (core.inference.predictions.predict_files)."""
    return predict_files(lm, paths, topk, batch_size, state, on_results, thumb_size)
