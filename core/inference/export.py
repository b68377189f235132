"""Export a model.pt to ONNX or to a ``torch.export`` archive (``.pt2``), verified.

The exported network takes float32 NCHW images (preprocessed as the metadata says) with a
dynamic batch axis and returns softmax probabilities. Before reporting success, every export
runs the written file (onnxruntime for ONNX, ``torch.export.load`` for pt2) and PyTorch on the
same images (from the run's data, else generated) and compares the probabilities; beyond
``TOLERANCE`` it fails and leaves no file behind (written to a temp path, renamed when good).
The torch.onnx exporter has had wrong-output bugs on some networks: this check is what
protects the user. TorchScript is deprecated, so pt2 is ``torch.export``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from core.catalog import EXPORT_FORMATS
from core.data.batches import to_model_input
from core.errors import TransferLabError
from core.inference.onnx_predict import (INPUT_NAME, METADATA_KEY, OUTPUT_NAME, export_metadata,
                                         metadata_path)
from core.inference.predict import LoadedModel, load_model_file, preprocess
from core.paths import atomic_path, write_text_atomic
from core.version import stamp

FORMATS = EXPORT_FORMATS  # (core.catalog: the CLI and GUI list them before torch loads)
TOLERANCE = 1e-4  # largest allowed |p_exported - p_pytorch| over every image and class
ONNX_OPSET = 18  # the torch.onnx (dynamo) exporter's own default; onnxruntime 1.32 runs it
VERIFY_IMAGES = 16


@dataclass
class Verification:
    max_diff: float
    top1_agree: int
    images: int
    ambiguous: int  # disagreements where PyTorch's top two are within the tolerance
    source: str

    @property
    def ok(self) -> bool:
        return self.max_diff <= TOLERANCE and self.top1_agree + self.ambiguous == self.images

    def describe(self, fmt: str) -> str:
        return (f"verified {fmt} against PyTorch on {self.images} {self.source}: largest "
                f"probability difference {self.max_diff:.2e} (tolerance {TOLERANCE:.0e}), "
                f"top-1 agrees on {self.top1_agree}/{self.images}")


@dataclass
class ExportReport:
    path: Path
    metadata_path: Path
    verification: Verification


def export_model(model_path: str | Path, fmt: str, out: str | Path,
                 log: Callable[[str], None] = print) -> ExportReport:
    if fmt not in FORMATS:
        raise TransferLabError(f"Unknown export format '{fmt}'. Choose one of: "
                               f"{', '.join(FORMATS)}.")
    lm = load_model_file(model_path)
    out = Path(out).expanduser()
    if out.is_dir():
        raise TransferLabError(f"{out} is a folder; give the file to write (e.g. model.{fmt}).")
    x, source = verification_inputs(lm, Path(model_path).expanduser().parent)
    meta = stamp(export_metadata(lm.arch, lm.classes, lm.preprocessing, fmt))
    with atomic_path(out) as tmp:
        with lm.lock:
            WRITERS[fmt](_exportable(lm), tmp, meta, x[:2])
        check = verify(fmt, tmp, lm, x, source)
        log(check.describe(fmt))
        if not check.ok:
            raise TransferLabError(f"Export verification failed: the {fmt} file's "
                                   f"probabilities differ from PyTorch's by {check.max_diff:.2e} "
                                   f"(top-1 agrees on {check.top1_agree}/{check.images}); "
                                   f"nothing was written.")
    write_text_atomic(metadata_path(out), json.dumps(meta, indent=2) + "\n")
    return ExportReport(out, metadata_path(out), check)


def _exportable(lm: LoadedModel) -> nn.Module:
    """The network as exported: eval mode, probabilities out (flip-averaged inside the
    graph when the run validated that way)."""
    return nn.Sequential(lm.inference_module(), nn.Softmax(dim=1)).eval()


def _batch_dim():
    return {INPUT_NAME: {0: torch.export.Dim("batch", min=1, max=65536)}}


class _Named(nn.Module):
    """Gives the exported graph's input the name the metadata promises."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.eval()

    def forward(self, input):  # noqa: A002 - the argument name becomes the graph input's
        return self.net(input)


def write_onnx(net: nn.Module, path: Path, meta: dict, example: torch.Tensor) -> None:
    try:
        program = torch.onnx.export(_Named(net), (example,), input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], opset_version=ONNX_OPSET,
                                    dynamic_shapes=_batch_dim(), dynamo=True, verbose=False)
    except Exception as exc:  # noqa: BLE001 - exporter failures are reported, not tracebacks
        raise TransferLabError(f"ONNX export failed: {str(exc).splitlines()[0]}") from exc
    program.model.metadata_props[METADATA_KEY] = json.dumps(meta)
    program.save(str(path), external_data=False)


def write_pt2(net: nn.Module, path: Path, meta: dict, example: torch.Tensor) -> None:
    try:
        program = torch.export.export(_Named(net), (example,), dynamic_shapes=_batch_dim())
    except Exception as exc:  # noqa: BLE001
        raise TransferLabError(f"torch.export failed: {str(exc).splitlines()[0]}") from exc
    with open(path, "wb") as f:  # a file object: the temp path does not end in .pt2
        torch.export.save(program, f, extra_files={METADATA_KEY + ".json": json.dumps(meta)})


WRITERS = {"onnx": write_onnx, "pt2": write_pt2}


def load_exported(fmt: str, path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """The exported file as a function: preprocessed batch -> probabilities."""
    if fmt == "onnx":
        from core.inference.onnx_predict import load_onnx, run_onnx

        om = load_onnx(path)
        return lambda x: torch.from_numpy(run_onnx(om, x.numpy()))
    with open(path, "rb") as f:
        return torch.export.load(f).module()


@torch.no_grad()
def verify(fmt: str, path: Path, lm: LoadedModel, x: torch.Tensor, source: str) -> Verification:
    """Compares the exported file with PyTorch on the whole batch and on its first image
    alone (the batch axis must really be dynamic)."""
    with lm.lock:
        expected = _exportable(lm)(x)
    try:
        run = load_exported(fmt, path)
        got = torch.cat([run(x), run(x[:1])])
    except TransferLabError:
        raise
    except Exception as exc:  # noqa: BLE001 - a file that does not run fails verification
        raise TransferLabError(f"Export verification failed: the {fmt} file does not run "
                               f"({str(exc).splitlines()[0]}); nothing was written.") from exc
    expected = torch.cat([expected, expected[:1]])
    diff = float((got - expected).abs().max())
    top2 = expected.topk(min(2, expected.shape[1]), dim=1).values
    tie = (top2[:, 0] - top2[:, -1]) <= TOLERANCE
    same = got.argmax(1) == expected.argmax(1)
    n = len(x)
    return Verification(diff, int(same[:n].sum()), n, int((~same[:n] & tie[:n]).sum()), source)


def verification_inputs(lm: LoadedModel, run_dir: Path) -> tuple[torch.Tensor, str]:
    """Preprocessed images from the run's data folder when it is at hand, else generated."""
    from core.data.images import UnreadableImage

    pre, images = lm.preprocessing, []
    for path in _run_images(run_dir):
        try:
            images.append(preprocess(lm, path))
        except UnreadableImage:
            continue
        if len(images) == VERIFY_IMAGES:
            break
    source = "images from the run's data"
    if len(images) < 2:
        g = torch.Generator().manual_seed(0)
        smooth = torch.rand((VERIFY_IMAGES, 3, 8, 8), generator=g) * 255
        images = list(torch.nn.functional.interpolate(
            smooth, size=(pre.image_size, pre.image_size), mode="bilinear").to(torch.uint8))
        source = "generated images"
    x = to_model_input(torch.stack(images), pre.image_size, pre.mean, pre.std,
                       channels_last=False)
    return x, source


def _run_images(run_dir: Path) -> list[Path]:
    """The run's data folder's files, taking one of each class in turn."""
    from core.data.folder import find_layout, list_files

    from core.runs.record import RunRecord

    try:
        layout = find_layout(Path(RunRecord(run_dir).config.data))
    except (OSError, TransferLabError):
        return []  # no run folder, CIFAR, or the data moved: generated images instead
    files = list_files(layout.train_root, layout.classes)
    per_class: dict[int, list[Path]] = {}
    for path, label in files:
        per_class.setdefault(label, []).append(path)
    return [p for group in zip(*per_class.values()) for p in group] or [p for p, _ in files]
