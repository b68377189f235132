"""Prediction from a saved TransferLab model or a plain ImageNet network.

Preprocessing always comes from the model (its file, or its weights' metadata), never from
the caller, so a prediction sees the pixels the way training did.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from core.data.batches import to_model_input
from core.data.folder import image_files
from core.data.images import UnreadableImage, open_rgb, resize_center_crop
from core.models import build_model, imagenet_categories
from core.preprocess import Preprocessing
from core.models.flip_average import FlipAverage, uses_flip_average
from core.models.model_file import read_model_file


@dataclass
class LoadedModel:
    arch: str
    model: nn.Module
    classes: list[str]
    preprocessing: Preprocessing
    source: str
    # one user of the network at a time: prediction and Grad-CAM run in different workers
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    flip_average: bool = False  # the run validated with test-time flip averaging

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits as the run validated them (core.models.flip_average)."""
        return self.inference_module()(x)

    def inference_module(self) -> nn.Module:
        return FlipAverage(self.model) if self.flip_average else self.model


@dataclass(frozen=True)
class Prediction:
    path: str
    topk: list[tuple[str, float]]  # (class, probability), most likely first
    error: str = ""  # set when the file could not be read; topk is then empty
    thumb: tuple[int, int, bytes] | None = None  # (width, height, RGB bytes), on request


def load_model_file(path: str | Path) -> LoadedModel:
    """A saved ``model.pt``, checked part by part (core.models.model_file); each way the file
    can be wrong is one ``TransferLabError`` line."""
    from core.models.weights import load_exact

    path = Path(path).expanduser()
    payload = read_model_file(path)
    classes = payload["classes"]
    model, _, _ = build_model(payload["arch"], "none", len(classes))
    load_exact(model, payload["state_dict"], str(path), payload["arch"])
    model.eval()
    return LoadedModel(payload["arch"], model, classes,
                       Preprocessing.from_dict(payload["preprocessing"]), str(path),
                       flip_average=uses_flip_average(payload.get("config")))


def load_imagenet_model(name: str, progress=None) -> LoadedModel:
    model, pre, info = build_model(name, "imagenet", None, progress)
    model.eval()
    return LoadedModel(name, model, imagenet_categories(), pre, f"{name} (ImageNet)")


def expand_paths(paths) -> list[Path]:
    """Files as given, folders searched recursively for image files."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += image_files(p)
        else:
            out.append(p)
    return out


def preprocess(lm: LoadedModel, path: str | Path) -> torch.Tensor:
    pre = lm.preprocessing
    return resize_center_crop(open_rgb(path), pre.resize_size, pre.image_size)


@torch.no_grad()
def predict_tensors(lm: LoadedModel, images: torch.Tensor, topk: int) -> list[list]:
    pre = lm.preprocessing
    x = to_model_input(images, pre.image_size, pre.mean, pre.std, channels_last=False)
    with lm.lock:
        probs = lm.forward(x).softmax(1)
    p, idx = probs.topk(min(topk, probs.shape[1]), dim=1)
    return [[(lm.classes[i], float(v)) for v, i in zip(pv.tolist(), iv.tolist())]
            for pv, iv in zip(p, idx)]


def _thumb(image: torch.Tensor, size: int) -> tuple[int, int, bytes]:
    small = torch.nn.functional.interpolate(image[None].float(), size=(size, size),
                                            mode="bilinear", antialias=True, align_corners=False)
    arr = small[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
    return size, size, arr.numpy().tobytes()


def predict_paths(lm: LoadedModel, paths, topk: int = 5, batch_size: int = 16,
                  state=None, on_results=None, thumb_size: int = 0) -> list[Prediction]:
    """Predictions in input order; unreadable files come back with ``error`` set.

    ``on_results(list)`` hears each batch's predictions as soon as they exist (the GUI fills
    its table while a thousand images are still being read).
    """
    results: list[Prediction] = []
    files = expand_paths(paths)
    for start in range(0, len(files), batch_size):
        if state is not None:
            state.check()
            state.report("Predicting", start, len(files))
        first = len(results)
        chunk, tensors, slots = files[start:start + batch_size], [], []
        for f in chunk:
            try:
                tensors.append(preprocess(lm, f))
                slots.append(len(results))
                results.append(None)
            except UnreadableImage as exc:
                results.append(Prediction(str(f), [], str(exc)))
        if tensors:
            tops = predict_tensors(lm, torch.stack(tensors), topk)
            for slot, top, image in zip(slots, tops, tensors):
                results[slot] = Prediction(str(files[slot]), top, thumb=_thumb(image, thumb_size)
                                           if thumb_size else None)
        if on_results is not None:
            on_results(results[first:])
    if state is not None:
        state.report("Predicting", len(files), len(files))
    return results


def write_predictions_csv(path: str | Path, predictions: list[Prediction]) -> None:
    """file, top-1, probability, then the top-k as class:probability pairs."""
    from core.paths import write_csv_atomic

    rows = [{"file": p.path, "top1": p.topk[0][0] if p.topk else "",
             "probability": f"{p.topk[0][1]:.6f}" if p.topk else "",
             "topk": "; ".join(f"{c}:{v:.4f}" for c, v in p.topk), "error": p.error}
            for p in predictions]
    write_csv_atomic(path, rows, ["file", "top1", "probability", "topk", "error"])
