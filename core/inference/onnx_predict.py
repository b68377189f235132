"""Exported models without PyTorch: the metadata that travels with them, and prediction on an
``.onnx`` file with onnxruntime, PIL and numpy alone.

This module must never import torch (a test checks it): it is what a user's own program needs.
The metadata format lives here, its one home, because both the exporter (which has torch) and
this reader (which has not) use it. It is stored twice with each export: in the ONNX file's
``metadata_props`` (key ``transferlab``) or the ``.pt2`` archive's extra files, and as
``<file>.json`` beside the file. Images are read, cut and normalised exactly as for model.pt
(core.data.images, core.preprocess), and the loop over files is the same
(core.inference.predictions).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.errors import TransferLabError
from core.inference.predictions import Prediction, predict_files  # noqa: F401 - re-exported
from core.preprocess import RESIZE_RULE, Preprocessing

EXPORT_FORMAT = "transferlab-export"
EXPORT_VERSION = 1
METADATA_KEY = "transferlab"  # ONNX metadata_props key / .pt2 extra file name (+ ".json")
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
OOD_OUTPUT = "ood_score"  # the second output, when the model was calibrated
OnnxPrediction = Prediction  # (the name this module's results had)


def export_metadata(arch: str, classes: list[str], pre: Preprocessing, fmt: str,
                    ood: bool = False) -> dict:
    side = pre.crop_size
    meta = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "file_format": fmt,
            "arch": arch, "classes": list(classes),
            "preprocessing": pre.to_dict() | {"resize_rule": RESIZE_RULE},
            "input": {"name": INPUT_NAME, "layout": "NCHW", "dtype": "float32",
                      "shape": ["batch", 3, side, side]},
            "output": {"name": OUTPUT_NAME, "shape": ["batch", len(classes)],
                       "meaning": "softmax probabilities, in the order of 'classes'"}}
    if ood:
        meta["ood_output"] = {"name": OOD_OUTPUT, "shape": ["batch"],
                              "meaning": "how unlike the training images each image is: above "
                                         "1.0 is farther than 95% of the run's validation "
                                         "images"}
    return meta


def metadata_path(model_path: str | Path) -> Path:
    """The JSON beside an exported file: ``model.onnx`` -> ``model.onnx.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def parse_metadata(text: str, source) -> tuple[list[str], Preprocessing, dict]:
    """(classes, preprocessing, the whole metadata) of an exported file."""
    try:
        d = json.loads(text)
        if d.get("format") != EXPORT_FORMAT:
            raise ValueError("not TransferLab export metadata")
        pre = Preprocessing.from_dict(d["preprocessing"])
        if pre.problem():
            raise ValueError(f"impossible preprocessing: {pre.problem()}")
        return list(d["classes"]), pre, d
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TransferLabError(f"{source} has unreadable TransferLab metadata ({exc}).") from exc


@dataclass
class OnnxModel:
    session: object  # onnxruntime.InferenceSession
    classes: list[str]
    preprocessing: Preprocessing
    source: str
    kind: str = "ONNX"

    def run(self, x) -> tuple:
        """Probabilities (N, classes) and out-of-distribution scores (None without) for a
        normalised float32 NCHW batch."""
        return run_onnx(self, x)


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
    classes, pre, _ = parse_metadata(text, source)
    return OnnxModel(session, classes, pre, str(path))


def run_onnx(om: OnnxModel, x) -> tuple:
    """(probabilities, ood scores or None) for a preprocessed float32 NCHW batch."""
    names = [o.name for o in om.session.get_outputs()]
    wanted = [OUTPUT_NAME] + ([OOD_OUTPUT] if OOD_OUTPUT in names else [])
    out = om.session.run(wanted, {INPUT_NAME: x})
    return out[0], (out[1] if len(out) > 1 else None)
