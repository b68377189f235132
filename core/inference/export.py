"""Export a model.pt to ONNX or to a ``torch.export`` archive (``.pt2``), verified.

The exported network is core.inference.forward.Probabilities: it takes float32 NCHW images
(preprocessed as the metadata says) with a dynamic batch axis and returns softmax
probabilities (and the out-of-distribution score, when the run calibrated one). Before
reporting success, every export
runs the written file (onnxruntime for ONNX, ``torch.export.load`` for pt2) and PyTorch on the
same images (from the run's data, else generated) and compares the probabilities; beyond
``TOLERANCE`` it fails and leaves no file behind (written to a temp path, renamed when good).
The torch.onnx exporter has had wrong-output bugs on some networks: this check is what
protects the user. TorchScript is deprecated, so pt2 is ``torch.export``.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from core.catalog import EXPORT_FORMATS
from core.data.batches import to_model_input
from core.errors import TransferLabError
from core.inference.exported import require_model_pt
from core.inference.forward import Probabilities
from core.inference.onnx_predict import (INPUT_NAME, METADATA_KEY, OOD_OUTPUT, OUTPUT_NAME,
                                         export_metadata, metadata_path)
from core.inference.predict import LoadedModel, load_model_file, preprocess
from core.paths import atomic_path, write_text_atomic
from core.version import stamp
from core.progress import TaskState

FORMATS = EXPORT_FORMATS  # (core.catalog: the CLI and GUI list them before torch loads)
TOLERANCE = 1e-4  # largest allowed |p_exported - p_pytorch| over every image and class
OOD_TOLERANCE = 1e-3  # the same for the out-of-distribution score (its warning line is 1.0)
ONNX_OPSET = 18  # the torch.onnx (dynamo) exporter's own default; onnxruntime 1.32 runs it
VERIFY_IMAGES = 16


@dataclass
class Verification:
    max_diff: float
    top1_agree: int
    images: int
    ambiguous: int  # disagreements where PyTorch's top two are within the tolerance
    source: str
    ood_diff: float | None = None  # largest score difference (None: the model has no score)

    @property
    def ok(self) -> bool:
        return (self.max_diff <= TOLERANCE and self.top1_agree + self.ambiguous == self.images
                and (self.ood_diff is None or self.ood_diff <= OOD_TOLERANCE))

    def describe(self, fmt: str) -> str:
        ood = ("" if self.ood_diff is None else
               f", out-of-distribution score difference {self.ood_diff:.2e} (tolerance "
               f"{OOD_TOLERANCE:.0e})")
        return (f"verified {fmt} against PyTorch on {self.images} {self.source}: largest "
                f"probability difference {self.max_diff:.2e} (tolerance {TOLERANCE:.0e}), "
                f"top-1 agrees on {self.top1_agree}/{self.images}{ood}")


@dataclass
class ExportReport:
    path: Path
    metadata_path: Path
    verification: Verification


# the steps an export reports through its TaskState (stage names; the GUI shows them)
STEP_IMAGES, STEP_EXPORT, STEP_VERIFY = ("Reading verification images", "Exporting",
                                         "Verifying against PyTorch")


def export_model(model_path: str | Path, fmt: str, out: str | Path,
                 log: Callable[[str], None] = print, state: TaskState | None = None
                 ) -> ExportReport:
    """Write ``out`` in ``fmt`` and verify it; ``state`` hears each step (images k/N read,
    the export, verification k/N) and may cancel between them: nothing is then written."""
    state = state or TaskState()
    if fmt not in FORMATS:
        raise TransferLabError(f"Unknown export format '{fmt}'. Choose one of: "
                               f"{', '.join(FORMATS)}.")
    require_model_pt(model_path, "export")
    lm = load_model_file(model_path)
    out = Path(out).expanduser()
    if out.is_dir():
        raise TransferLabError(f"{out} is a folder; give the file to write (e.g. model.{fmt}).")
    x, source = verification_inputs(lm, Path(model_path).expanduser().parent, state)
    meta = stamp(export_metadata(lm.arch, lm.classes, lm.preprocessing, fmt,
                                 lm.net.ood is not None))
    with atomic_path(out) as tmp:
        state.check()
        state.report(f"{STEP_EXPORT} to {FORMATS[fmt][1]}", 0, 0)
        with lm.lock:
            WRITERS[fmt](Probabilities(lm.net), tmp, meta, x[:2])
        check = verify(fmt, tmp, lm, x, source, state)
        log(check.describe(fmt))
        if not check.ok:
            raise TransferLabError(f"Export verification failed: the {fmt} file's "
                                   f"probabilities differ from PyTorch's by {check.max_diff:.2e} "
                                   f"(top-1 agrees on {check.top1_agree}/{check.images}); "
                                   f"nothing was written.")
    write_text_atomic(metadata_path(out), json.dumps(meta, indent=2) + "\n")
    return ExportReport(out, metadata_path(out), check)


def _batch_dim():
    return {INPUT_NAME: {0: torch.export.Dim("batch", min=1, max=65536)}}


def _outputs(net: Probabilities) -> list[str]:
    return [OUTPUT_NAME] + ([OOD_OUTPUT] if net.net.ood is not None else [])


def write_onnx(net: Probabilities, path: Path, meta: dict, example: torch.Tensor) -> None:
    try:
        program = torch.onnx.export(net, (example,), input_names=[INPUT_NAME],
                                    output_names=_outputs(net), opset_version=ONNX_OPSET,
                                    dynamic_shapes=_batch_dim(), dynamo=True, verbose=False)
    except Exception as exc:  # noqa: BLE001 - exporter failures are reported, not tracebacks
        raise TransferLabError(f"ONNX export failed: {str(exc).splitlines()[0]}") from exc
    program.model.metadata_props[METADATA_KEY] = json.dumps(meta)
    program.save(str(path), external_data=False)


def write_pt2(net: Probabilities, path: Path, meta: dict, example: torch.Tensor) -> None:
    try:
        program = torch.export.export(net, (example,), dynamic_shapes=_batch_dim())
    except Exception as exc:  # noqa: BLE001
        raise TransferLabError(f"torch.export failed: {str(exc).splitlines()[0]}") from exc
    with open(path, "wb") as f, warnings.catch_warnings():  # (the temp path has no .pt2)
        # torch's note on how it packs weights that share storage: about the archive's
        # layout on CPU, not the model; the verification below runs the file
        warnings.filterwarnings("ignore", "No complete tensor found")
        torch.export.save(program, f, extra_files={METADATA_KEY + ".json": json.dumps(meta)})


WRITERS = {"onnx": write_onnx, "pt2": write_pt2}


def load_exported(fmt: str, path: Path) -> Callable[[torch.Tensor], tuple]:
    """The exported file as a function: preprocessed batch -> (probabilities, ood or None)."""
    if fmt == "onnx":
        from core.inference.onnx_predict import load_onnx, run_onnx

        om = load_onnx(path)
        return lambda x: tuple(None if a is None else torch.from_numpy(a)
                               for a in run_onnx(om, x.numpy()))
    from core.inference.exported import load_pt2

    module = load_pt2(path).module
    return lambda x: (lambda out: tuple(out) if isinstance(out, (tuple, list))
                      else (out, None))(module(x))


@torch.no_grad()
def verify(fmt: str, path: Path, lm: LoadedModel, x: torch.Tensor, source: str,
           state: TaskState | None = None) -> Verification:
    """Compares the exported file with PyTorch image by image, then on the whole batch (the
    batch axis must really be dynamic); the out-of-distribution score too, when there is one."""
    state = state or TaskState()
    with lm.lock:
        out = Probabilities(lm.net)(x)
    expected, ood = out if isinstance(out, tuple) else (out, None)
    try:
        run = load_exported(fmt, path)
        got, got_ood = [], []
        for i in range(len(x)):
            state.check()
            state.report(STEP_VERIFY, i, len(x))
            p, o = run(x[i:i + 1])
            got.append(p)
            got_ood.append(o)
        whole, whole_ood = run(x)
    except TransferLabError:
        raise
    except Exception as exc:  # noqa: BLE001 - a file that does not run fails verification
        raise TransferLabError(f"Export verification failed: the {fmt} file does not run "
                               f"({str(exc).splitlines()[0]}); nothing was written.") from exc
    state.report(STEP_VERIFY, len(x), len(x))
    got = torch.cat([torch.cat(got), whole])
    expected = torch.cat([expected, expected])
    diff = float((got - expected).abs().max())
    ood_diff = None
    if ood is not None:
        got_ood = torch.cat([torch.cat(got_ood), whole_ood])
        ood_diff = float((got_ood - torch.cat([ood, ood])).abs().max())
    top2 = expected.topk(min(2, expected.shape[1]), dim=1).values
    tie = (top2[:, 0] - top2[:, -1]) <= TOLERANCE
    same = got.argmax(1) == expected.argmax(1)
    n = len(x)
    return Verification(diff, int(same[:n].sum()), n, int((~same[:n] & tie[:n]).sum()), source,
                        ood_diff)


def verification_inputs(lm: LoadedModel, run_dir: Path, state: TaskState | None = None
                        ) -> tuple[torch.Tensor, str]:
    """Preprocessed images (the model's normalised squares) from the run's data folder when
    it is at hand, else generated."""
    from core.data.images import UnreadableImage

    state = state or TaskState()
    pre, images = lm.preprocessing, []
    for path in _run_images(run_dir):
        state.check()
        state.report(STEP_IMAGES, len(images), VERIFY_IMAGES)
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
            smooth, size=(pre.crop_size, pre.crop_size), mode="bilinear").to(torch.uint8))
        source = "generated images"
    x = to_model_input(torch.stack(images), pre.crop_size, pre.mean, pre.std,
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
