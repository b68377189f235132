"""The ``model.pt`` format: one home for what a saved model holds, and for reading it safely.

Training writes it (core.training.checkpointing), prediction, evaluation and export read it
(core.inference). It holds enough to predict with no other file: the architecture name, the
class names, the preprocessing and the weights, as plain data that
``torch.load(weights_only=True)`` accepts. ``read_model_file`` checks every part and turns
each way a file can be wrong into one line for the user.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from torch import nn

from core.errors import TransferLabError
from core.version import stamp

MODEL_FORMAT = "transferlab-model"
MODEL_VERSION = 1


def model_payload(arch: str, model: nn.Module, classes: list[str], preprocessing: dict,
                  config: dict, metrics: dict) -> dict:
    """What ``model.pt`` holds (weights copied to the CPU, so a GPU run's file loads anywhere)."""
    return stamp({"format": MODEL_FORMAT, "version": MODEL_VERSION, "arch": arch,
                  "classes": list(classes), "preprocessing": preprocessing, "config": config,
                  "metrics": metrics,
                  "state_dict": {k: v.detach().to("cpu", copy=True)
                                 for k, v in model.state_dict().items()}})


def safe_load(path: str | Path, what: str = "PyTorch file"):
    """``torch.load(weights_only=True)``; every failure is one line. A file holding Python
    objects is refused without advice to load it unsafely: for a file from elsewhere,
    ``weights_only=False`` means letting it run code."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the file's issue
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TransferLabError(f"{what[0].upper()}{what[1:]} not found: {path}") from None
    except IsADirectoryError:
        raise TransferLabError(f"{path} is a folder, not a {what}.") from None
    except PermissionError:
        raise TransferLabError(f"Cannot read {path}: permission denied.") from None
    except Exception as exc:  # noqa: BLE001 - pickle, zip and format errors of a bad file
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:
            raise TransferLabError(
                f"{path} holds Python objects ({found.group(1)}), not only tensors and plain "
                f"data; TransferLab does not load such files, as loading them could run "
                f"code.") from None
        raise TransferLabError(f"{path} is not a readable {what}: it is damaged, truncated or "
                               f"another kind of file ({type(exc).__name__}).") from None


def _problem(payload: dict) -> str | None:
    """What is wrong with a model.pt payload whose format tag is right, in words; or None."""
    from core.catalog import MODEL_NAMES

    version = payload.get("version")
    if not isinstance(version, int):
        return "has no format version: it is damaged"
    if version > MODEL_VERSION:
        return (f"was saved by a newer TransferLab (model format {version}; this version reads "
                f"up to {MODEL_VERSION}). Update TransferLab to use it")
    if payload.get("arch") not in MODEL_NAMES:
        return (f"is for an architecture this TransferLab does not know "
                f"({payload.get('arch')!r}; known: {', '.join(MODEL_NAMES)})")
    classes = payload.get("classes")
    if not isinstance(classes, (list, tuple)) or not classes \
            or not all(isinstance(c, str) for c in classes):
        return "has no list of class names ('classes'): it is damaged or incomplete"
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not state \
            or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return "has no weights ('state_dict' of tensors): it is damaged or incomplete"
    try:
        from core.preprocess import Preprocessing

        pre = Preprocessing.from_dict(payload.get("preprocessing"))
    except (TypeError, KeyError, ValueError):
        return "has no valid preprocessing (input size, mean and std): it is damaged"
    if pre.problem():
        return f"has impossible preprocessing ({pre.problem()}): it is damaged"
    if "ood" in payload and not _ood_usable(payload["ood"], len(classes)):
        return "has a damaged out-of-distribution calibration ('ood')"
    return None


def _ood_usable(stats, classes: int) -> bool:
    """The shapes core.inference.ood.Unfamiliarity needs, and positive scales."""
    try:
        k, d = stats["means"].shape
        r = stats["basis"].shape[1]
        return (k == classes and tuple(stats["basis"].shape) == (d, r)
                and tuple(stats["scales"].shape) == (r,) and float(stats["tail"]) > 0
                and float(stats["threshold"]) > 0)
    except (TypeError, KeyError, AttributeError, ValueError, IndexError):
        return False


def save_model_file(path: str | Path, updates: dict) -> None:
    """Add ``updates`` to a saved model.pt (atomically: the old file stays whole until the
    new one is complete)."""
    from core.paths import atomic_path

    payload = read_model_file(path)
    payload.update(updates)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_model_file(path: str | Path) -> dict:
    """A checked ``model.pt`` payload: right format and version, a known architecture,
    class names, weights and preprocessing. Whether the weights fit the architecture is
    checked when the network is built (``core.models.weights.load_exact``)."""
    path = Path(path).expanduser()
    if not path.is_file() and not path.is_dir():
        raise TransferLabError(f"Model file not found: {path}")
    payload = safe_load(path, "model file")
    if isinstance(payload, dict) and "optimizer" in payload and "state_dict" in payload:
        raise TransferLabError(
            f"{path} is a training checkpoint, for continuing its run (train --out RUN_FOLDER "
            f"--resume); predict, evaluate and export take the model.pt beside it.")
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise TransferLabError(
            f"{path} is not a TransferLab model (model.pt from a training run). A plain "
            f"state dict can be used as starting weights with --weights FILE.")
    problem = _problem(payload)
    if problem:
        raise TransferLabError(f"{path} {problem}.")
    payload["classes"] = list(payload["classes"])
    return payload
