"""Prediction over files, for every kind of model: the one loop of ``predict`` (model.pt,
.onnx, .pt2, plain ImageNet networks) and of the Inference tab.

Files are listed and decoded by core.data.images, cut and normalised by core.preprocess,
and handed to the model's ``run``: any object with ``classes``, ``preprocessing`` and
``run(x) -> (probabilities, ood scores or None)`` for a normalised float32 NCHW numpy batch
(core.inference.predict.LoadedModel, core.inference.onnx_predict.OnnxModel,
core.inference.exported.Pt2Model). This module imports no torch: the ONNX path uses it
without PyTorch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.data.images import UnreadableImage, list_images, load_pixels
from core.preprocess import normalise


# The out-of-distribution score (core.inference.ood) is scaled so that OOD_QUANTILE of the
# run's own validation images score at most 1.0; a photo scoring above UNFAMILIAR is flagged.
OOD_QUANTILE = 0.95
UNFAMILIAR = 1.0


def unfamiliar_note(score: float | None) -> str:
    """The warning for a score above ``UNFAMILIAR``; '' otherwise, or without a score."""
    if score is None or score <= UNFAMILIAR:
        return ""
    return (f"Unlike the images this model was trained on (score {score:.1f}; above 1.0 is "
            f"farther from its classes than {OOD_QUANTILE:.0%} of the run's validation "
            f"images): none of its classes may apply.")


@dataclass(frozen=True)
class Prediction:
    path: str
    topk: list[tuple[str, float]]  # (class, probability), most likely first
    error: str = ""  # set when the file could not be read; topk is then empty
    thumb: tuple[int, int, bytes] | None = None  # (width, height, RGB bytes), on request
    # how unlike the training images the photo is (core.inference.ood: above 1.0 it is
    # flagged); None for models without the run's calibration
    ood_score: float | None = None

    @property
    def unfamiliar(self) -> bool:
        return self.ood_score is not None and self.ood_score > UNFAMILIAR


def top_classes(probs, classes: list[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` most likely classes of one row of probabilities (ties: class order)."""
    import numpy as np

    order = np.argsort(-np.asarray(probs), kind="stable")[:k]
    return [(classes[i], float(probs[i])) for i in order]


def _thumb(pixels, size: int) -> tuple[int, int, bytes]:
    from PIL import Image

    small = Image.fromarray(pixels).resize((size, size), Image.BILINEAR)
    return size, size, small.tobytes()


def predict_files(model, paths, topk: int = 5, batch_size: int = 16, state=None,
                  on_results=None, thumb_size: int = 0) -> list[Prediction]:
    """Predictions in input order; unreadable files come back with ``error`` set (the
    decoder's reason). ``on_results(list)`` hears each batch's predictions as soon as they
    exist (the GUI fills its table while a thousand images are still being read); ``state``
    (core.progress.TaskState) reports progress and cancels between batches."""
    import numpy as np

    results: list[Prediction] = []
    files = list_images(paths)
    pre, k = model.preprocessing, max(1, topk)
    for start in range(0, len(files), batch_size):
        if state is not None:
            state.check()
            state.report("Predicting", start, len(files))
        batch, pixels = [], []
        for f in files[start:start + batch_size]:
            try:
                pixels.append(load_pixels(f, pre))
                batch.append(None)
            except UnreadableImage as exc:
                batch.append(Prediction(str(f), [], str(exc)))
        if pixels:
            probs, ood = model.run(normalise(np.stack(pixels), pre))
            good = iter(range(len(pixels)))
            for j, f in enumerate(files[start:start + batch_size]):
                if batch[j] is None:
                    i = next(good)
                    batch[j] = Prediction(str(f), top_classes(probs[i], model.classes, k),
                                          thumb=_thumb(pixels[i], thumb_size) if thumb_size
                                          else None,
                                          ood_score=None if ood is None else float(ood[i]))
        results += batch
        if on_results is not None:
            on_results(batch)
    if state is not None:
        state.report("Predicting", len(files), len(files))
    return results


def write_predictions_csv(path: str | Path, predictions: list[Prediction]) -> None:
    """file, top-1, probability, then the top-k as class:probability pairs, the
    out-of-distribution score and the reason a file was skipped."""
    from core.paths import write_csv_atomic

    rows = [{"file": p.path, "top1": p.topk[0][0] if p.topk else "",
             "probability": f"{p.topk[0][1]:.6f}" if p.topk else "",
             "topk": "; ".join(f"{c}:{v:.6f}" for c, v in p.topk),
             "ood_score": "" if p.ood_score is None else f"{p.ood_score:.4f}", "error": p.error}
            for p in predictions]
    write_csv_atomic(path, rows, ["file", "top1", "probability", "topk", "ood_score", "error"])
