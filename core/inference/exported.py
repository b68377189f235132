"""Every model file TransferLab writes, told apart, and loaded for the commands that take it.

``predict`` and ``evaluate`` (CLI and GUI) take a model.pt, an exported ``.onnx`` or an
exported ``.pt2``: ``load_classifier`` gives each as an object with ``classes``,
``preprocessing`` and ``run`` (core.inference.predictions). ``export`` needs the model.pt
(the exported files hold no weights in PyTorch's form): ``require_model_pt`` says what a
file is and which command takes it, instead of calling it damaged.
"""
from __future__ import annotations

import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.errors import TransferLabError
from core.inference.onnx_predict import METADATA_KEY, parse_metadata
from core.preprocess import Preprocessing
from core.runs.layout import MODEL_FILE

KIND_TITLES = {MODEL_FILE: "TransferLab model (model.pt)", "onnx": "exported ONNX model",
               "pt2": "exported torch.export archive (.pt2)"}


def file_kind(path: str | Path) -> str:
    """"onnx", "pt2" or "model.pt" (anything else: read as a model.pt, which says what is
    wrong with it: core.models.model_file)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".onnx", ".pt2"):
        return suffix[1:]
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile):
        return MODEL_FILE
    if any(n.endswith("/archive_format") for n in names):
        return "pt2"  # torch.export.save's archive, whatever its name
    return MODEL_FILE


def require_model_pt(path: str | Path, command: str) -> None:
    """Refuse, in one line naming the right command, a file ``command`` cannot take."""
    kind = file_kind(path)
    if kind != MODEL_FILE:
        raise TransferLabError(
            f"{path} is an {KIND_TITLES[kind]}: '{command}' needs the model.pt it was "
            f"exported from (in its training run's folder). 'predict' and 'evaluate' take "
            f"the .{kind} file itself.")


@dataclass
class Pt2Model:
    """An exported ``.pt2`` (torch.export) file: its program and its metadata."""
    module: torch.nn.Module
    classes: list[str]
    preprocessing: Preprocessing
    source: str
    kind: str = "pt2"
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @torch.no_grad()
    def run(self, x) -> tuple:
        with self.lock:
            out = self.module(torch.from_numpy(x))
        probs, ood = out if isinstance(out, (tuple, list)) else (out, None)
        return probs.numpy(), None if ood is None else ood.numpy()


def load_pt2(path: str | Path) -> Pt2Model:
    path = Path(path).expanduser()
    if not path.is_file():
        raise TransferLabError(f"Model file not found: {path}")
    extra = {METADATA_KEY + ".json": ""}
    try:
        with open(path, "rb") as f:
            program = torch.export.load(f, extra_files=extra)
    except Exception as exc:  # noqa: BLE001 - a damaged archive is the file's fault
        raise TransferLabError(f"{path} is not a readable .pt2 archive "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0]}).") from exc
    text = extra[METADATA_KEY + ".json"]
    if not text:
        raise TransferLabError(f"{path} has no TransferLab metadata (class names and "
                               f"preprocessing): export it with 'main.py export'.")
    classes, pre, _ = parse_metadata(text, path)
    return Pt2Model(program.module(), classes, pre, str(path))


def load_classifier(path: str | Path):
    """model.pt, .onnx or .pt2, ready for core.inference.predictions and evaluation."""
    kind = file_kind(Path(path).expanduser())
    if kind == "onnx":
        from core.inference.onnx_predict import load_onnx

        return load_onnx(path)
    if kind == "pt2":
        return load_pt2(path)
    from core.inference.predict import load_model_file

    return load_model_file(path)
