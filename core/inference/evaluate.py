"""Evaluate a saved model: on its run's validation split or on a labelled folder.

Keeps every image's result (file, true and predicted class, both probabilities, loss), derives
accuracy, per-class precision/recall/F1, the most confused pairs and the confusion matrix, and
saves them in the run folder (``evaluation-<source>.csv`` + ``.json``) so that reopening a run
shows them again without running the model: ``load_evaluation``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.data.assignment import VAL
from core.data.datasets import decoded_paths
from core.data.folder import Split, decode_files, find_layout, list_files
from core.errors import TransferLabError
from core.inference import metrics as M
from core.inference.exported import load_classifier
from core.preprocess import normalise
from core.progress import TaskState
from core.runs.evaluations import (EVAL_FORMAT, EVAL_VERSION, RUN_VAL, read_evaluation,
                                   write_evaluation)
from core.runs.split import SplitCheck


@dataclass(frozen=True)
class ImageResult:
    path: str
    true: str
    predicted: str
    p_true: float
    p_predicted: float
    loss: float

    @property
    def correct(self) -> bool:
        return self.true == self.predicted


@dataclass
class Evaluation:
    classes: list[str]
    images: list[ImageResult]
    confusion: list[list[int]]  # [true][predicted] counts
    source: str  # RUN_VAL or the folder evaluated
    model: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    split_check: SplitCheck | None = None  # the run's validation split against its record

    @property
    def accuracy(self) -> float:
        n = sum(map(sum, self.confusion))
        return 100.0 * sum(self.confusion[i][i] for i in range(len(self.classes))) / max(n, 1)

    @property
    def loss(self) -> float:
        return sum(r.loss for r in self.images) / max(len(self.images), 1)

    def per_class(self) -> list[dict]:
        metrics = M.per_class_metrics(self.confusion)
        return [{"class": c, **m} for c, m in zip(self.classes, metrics)]

    def normalised(self) -> list[list[float]]:
        return M.row_normalised(self.confusion)

    def most_confused(self, n: int = 10) -> list[tuple[str, str, int]]:
        return [(self.classes[t], self.classes[p], k) for t, p, k in
                M.most_confused(self.confusion, n)]

    def cell(self, true: str, predicted: str) -> list[ImageResult]:
        """The images of one confusion-matrix cell, highest loss first."""
        return sorted((r for r in self.images if r.true == true and r.predicted == predicted),
                      key=lambda r: -r.loss)

    def top_losses(self, n: int = 50) -> list[ImageResult]:
        """The wrongly classified images the model was most confident about."""
        return sorted((r for r in self.images if not r.correct), key=lambda r: -r.loss)[:n]

    @property
    def split_note(self) -> str:
        """What differs from the run's recorded validation split, in words ("" if nothing)."""
        return self.split_check.describe((VAL,)) if self.split_check else ""

    def to_json(self) -> dict:
        return {"format": EVAL_FORMAT, "version": EVAL_VERSION, "model": self.model,
                "source": self.source, "classes": self.classes, "images": len(self.images),
                "accuracy": self.accuracy, "loss": self.loss, "per_class": self.per_class(),
                "most_confused": [list(c) for c in self.most_confused()],
                "confusion": self.confusion, "confusion_normalised": self.normalised(),
                "skipped": [list(s) for s in self.skipped]}


# --- running ---------------------------------------------------------------------------------

def evaluate_model(model_path: str | Path, data: str | None = None, batch_size: int = 64,
                   state: TaskState | None = None, lm=None) -> Evaluation:
    """``model_path``: a model.pt, or an exported .onnx / .pt2 (core.inference.exported);
    ``data=None``: the run's own validation split (the images its split.json names, beside
    the file). ``lm``: the model already loaded from ``model_path``."""
    state = state or TaskState()
    model = lm or load_classifier(model_path)
    if batch_size < 1:
        raise TransferLabError("--batch-size must be at least 1.")
    check = None
    if data is None:
        split, paths, check = run_validation_split(Path(model_path).expanduser().parent,
                                                   model, state)
        source = RUN_VAL
    else:
        split, paths = folder_split(data, model, state)
        source = str(Path(data).expanduser())
    ev = run_evaluation(model, split, paths, batch_size, state)
    ev.source, ev.model, ev.skipped = source, str(model_path), list(split.skipped)
    ev.split_check = check
    return ev


def run_validation_split(run_dir: Path, model, state: TaskState):
    """The images the run validated on, as its split record (split.json) names them, and how
    the data differs from the record now: ``(split, paths, SplitCheck)``. Runs older than
    the record are split again from their config.json's data, split share and seed."""
    from core.runs.record import RunRecord
    from core.runs.split import load_split

    run = RunRecord(run_dir)
    try:
        cfg = run.config
    except TransferLabError as exc:
        raise TransferLabError(f"{exc} The run's validation split is unknown: give --data "
                               f"FOLDER.") from exc
    ds, check = load_split(run.split, cfg, state, model.preprocessing)
    if len(ds.val.labels) == 0:
        raise TransferLabError(f"None of the run's validation images is left to evaluate. "
                               f"{check.describe((VAL,))}")
    if list(ds.classes) != list(model.classes):
        raise TransferLabError(f"The run's data ({cfg.data}) no longer has the model's "
                               f"classes: {', '.join(ds.classes)}.")
    paths = ds.val_paths or [f"{ds.name}:val/{i}" for i in range(len(ds.val.labels))]
    return ds.val, paths, check


def folder_split(data: str | Path, model, state: TaskState) -> tuple[Split, list[str]]:
    """A labelled folder (``<class>/*`` or ``train/`` + ``val/``: then ``val/``), its class
    names matched to the model's by name, decoded as prediction decodes each file
    (core.data.images.load_pixels: the model's own square, crop and interpolation)."""
    layout = find_layout(Path(data))
    root = layout.held_out_root or layout.train_root
    unknown = [c for c in layout.classes if c not in model.classes]
    missing = [c for c in model.classes if c not in layout.classes]
    if unknown or missing:
        parts = ([f"not classes of the model: {', '.join(unknown)}"] if unknown else []) + \
                ([f"no images for: {', '.join(missing)}"] if missing else [])
        raise TransferLabError(f"{root}'s class folders do not match the model's classes "
                               f"({'; '.join(parts)}). Model classes: "
                               f"{', '.join(model.classes)}.")
    files = [(p, model.classes.index(layout.classes[label]))
             for p, label in list_files(root, layout.classes)]
    pre = model.preprocessing
    split = decode_files(files, pre.crop_size, state, "Decoding evaluation images", pre.crop,
                         pre.interpolation)
    if len(split.labels) == 0:
        raise TransferLabError(f"None of the images in {root} could be read.")
    return split, decoded_paths(files, split)


def run_evaluation(model, split: Split, paths: list[str], batch_size: int,
                   state: TaskState) -> Evaluation:
    """Streams the images through the model in batches (progress and cancel between them):
    the same normalisation and ``run`` as prediction (core.inference.predictions)."""
    pre, k, n = model.preprocessing, len(model.classes), len(split.labels)
    confusion = torch.zeros((k, k), dtype=torch.long)
    rows: list[ImageResult] = []
    for start in range(0, n, batch_size):
        state.check()
        state.report("Evaluating", start, n)
        idx = torch.arange(start, min(start + batch_size, n))
        pixels = split.images[idx].permute(0, 2, 3, 1).numpy()
        probs, _ = model.run(normalise(pixels, pre))
        y, pred = split.labels[idx].numpy(), probs.argmax(1)
        p_true = probs[np.arange(len(y)), y]
        # -log p: the cross-entropy of the probabilities every format gives alike
        loss = -np.log(np.maximum(p_true.astype(np.float64), np.finfo(np.float32).tiny))
        confusion += M.confusion_matrix(torch.from_numpy(y), torch.from_numpy(pred), k)
        for i, t, p, pt, lo in zip(idx.tolist(), y.tolist(), pred.tolist(), p_true.tolist(),
                                   loss.tolist()):
            rows.append(ImageResult(paths[i], model.classes[t], model.classes[p], pt,
                                    float(probs[i - start, p]), lo))
    state.report("Evaluating", n, n)
    return Evaluation(list(model.classes), rows, confusion.tolist(), "", model.source)


# --- saving and reopening --------------------------------------------------------------------

def save_evaluation(ev: Evaluation, run_dir: str | Path) -> tuple[Path, Path]:
    """Saves ``ev`` in the run folder (core.runs.evaluations names and writes the files)."""
    return write_evaluation(run_dir, ev.source, ev.model, [
        {"path": r.path, "true": r.true, "predicted": r.predicted, "p_true": f"{r.p_true:.6g}",
         "p_predicted": f"{r.p_predicted:.6g}", "loss": f"{r.loss:.6g}"} for r in ev.images],
        ev.to_json())


def load_evaluation(json_path: str | Path) -> Evaluation:
    """A saved evaluation, as it was computed (no model is run)."""
    d, rows = read_evaluation(json_path)
    try:
        images = [ImageResult(r["path"], r["true"], r["predicted"], float(r["p_true"]),
                              float(r["p_predicted"]), float(r["loss"])) for r in rows]
        return Evaluation(list(d["classes"]), images,
                          [list(map(int, r)) for r in d["confusion"]], d["source"],
                          d.get("model", ""), [tuple(s) for s in d["skipped"]])
    except (ValueError, KeyError, TypeError) as exc:
        raise TransferLabError(f"{json_path} is not a readable evaluation ({exc}).") from exc


def format_report(ev: Evaluation, top: int = 5) -> str:
    """The matrix, the per-class table and the most confused pairs, as plain text."""
    width = max(9, max(len(c) for c in ev.classes) + 1)
    lines = [M.EvalResult(ev.loss, ev.accuracy, torch.tensor(ev.confusion))
             .format_confusion(ev.classes), ""]
    lines.append("class".ljust(width) + "".join(h.rjust(10) for h in
                                               ("precision", "recall", "f1", "support")))
    for m in ev.per_class():
        lines.append(m["class"][:width - 1].ljust(width) + "".join(
            f"{m[key]:10.3f}" for key in ("precision", "recall", "f1")) + f"{m['support']:10d}")
    pairs = ev.most_confused(top)
    lines += ["", "most confused (true -> predicted: images):" if pairs else "no confusions"]
    lines += [f"  {t} -> {p}: {k}" for t, p, k in pairs]
    if ev.split_note:  # the run's data moved since its split was recorded
        lines += ["", f"note: {ev.split_note}"]
    return "\n".join(lines)
