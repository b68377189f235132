"""Exported models without PyTorch: the metadata that travels with them, and prediction on an
``.onnx`` file with onnxruntime, PIL and numpy alone.

This module must never import torch (a test checks it): it is what a user's own program needs.
The metadata format lives here, its one home, because both the exporter (which has torch) and
this reader (which has not) use it. It is stored twice with each export: in the ONNX file's
``metadata_props`` (key ``transferlab``) or the ``.pt2`` archive's extra files, and as
``<file>.json`` beside the file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import TransferLabError
from core.preprocess import RESIZE_RULE, Preprocessing, to_input_array

EXPORT_FORMAT = "transferlab-export"
EXPORT_VERSION = 1
METADATA_KEY = "transferlab"  # ONNX metadata_props key / .pt2 extra file name (+ ".json")
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"


def export_metadata(arch: str, classes: list[str], pre: Preprocessing, fmt: str) -> dict:
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "file_format": fmt,
            "arch": arch, "classes": list(classes),
            "preprocessing": pre.to_dict() | {"resize_rule": RESIZE_RULE},
            "input": {"name": INPUT_NAME, "layout": "NCHW", "dtype": "float32",
                      "shape": ["batch", 3, pre.image_size, pre.image_size]},
            "output": {"name": OUTPUT_NAME, "shape": ["batch", len(classes)],
                       "meaning": "softmax probabilities, in the order of 'classes'"}}


def metadata_path(model_path: str | Path) -> Path:
    """The JSON beside an exported file: ``model.onnx`` -> ``model.onnx.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def parse_metadata(text: str, source) -> tuple[list[str], Preprocessing]:
    try:
        d = json.loads(text)
        if d.get("format") != EXPORT_FORMAT:
            raise ValueError("not TransferLab export metadata")
        return list(d["classes"]), Preprocessing.from_dict(d["preprocessing"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TransferLabError(f"{source} has unreadable TransferLab metadata ({exc}).") from exc


@dataclass
class OnnxModel:
    session: object  # onnxruntime.InferenceSession
    classes: list[str]
    preprocessing: Preprocessing
    source: str


@dataclass(frozen=True)
class OnnxPrediction:
    path: str
    topk: list[tuple[str, float]]  # (class, probability), most likely first
    error: str = ""


def load_onnx(path: str | Path) -> OnnxModel:
    """An exported .onnx file; class names and preprocessing from its own metadata (or the
    JSON beside it when the file's metadata was stripped)."""
    import onnxruntime as ort

    path = Path(path).expanduser()
    if not path.is_file():
        raise TransferLabError(f"Model file not found: {path}")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise TransferLabError(f"{path} is not a readable ONNX model ("
                               f"{str(exc).splitlines()[0]}).") from exc
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    source = path
    if text is None and metadata_path(path).is_file():
        source = metadata_path(path)
        text = source.read_text(encoding="utf-8")
    if text is None:
        raise TransferLabError(f"{path} has no TransferLab metadata (class names and "
                               f"preprocessing): export it with 'main.py export'.")
    classes, pre = parse_metadata(text, source)
    return OnnxModel(session, classes, pre, str(path))


def run_onnx(om: OnnxModel, x):
    """Probabilities (N, classes) for a preprocessed float32 NCHW batch."""
    return om.session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


def _open_rgb(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise ValueError("file not found") from None
    except UnidentifiedImageError:
        raise ValueError("not an image") from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"corrupt image ({exc})") from None


def image_files(paths) -> list[Path]:
    """Files as given; folders searched recursively for files PIL can open (by extension)."""
    from PIL import Image

    Image.init()
    readable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    out = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            out += [Path(dirpath) / f for f in sorted(filenames)
                    if Path(f).suffix.lower() in readable]
    return out


def predict_files(om: OnnxModel, paths, topk: int = 5,
                  batch_size: int = 16) -> list[OnnxPrediction]:
    """Predictions in input order; unreadable files come back with ``error`` set."""
    import numpy as np

    results: list[OnnxPrediction] = []
    files = image_files(paths)
    for start in range(0, len(files), batch_size):
        images, good = [], []
        for f in files[start:start + batch_size]:
            try:
                images.append(_open_rgb(f))
                good.append(f)
            except ValueError as exc:
                results.append(OnnxPrediction(str(f), [], str(exc)))
        if not images:
            continue
        probs = run_onnx(om, to_input_array(images, om.preprocessing))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :topk]
        for f, p, idx in zip(good, probs, order):
            results.append(OnnxPrediction(str(f), [(om.classes[i], float(p[i])) for i in idx]))
    rank = {str(f): i for i, f in enumerate(files)}
    return sorted(results, key=lambda r: rank[r.path])
