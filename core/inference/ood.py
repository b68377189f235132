"""How unlike the training images a photo is: an out-of-distribution score.

A classifier puts every photo in one of its classes, a cat in a flower model included, often
with confidence. The score here comes from the penultimate features the network computes for
every prediction anyway (core.inference.forward): the Mahalanobis distance to the nearest
class mean, with one covariance shared by the classes (Lee et al., 2018), shrunk towards a
multiple of the identity by the Ledoit-Wolf rule (a few hundred images cannot estimate a
1280-dimensional covariance by themselves). The means and covariance come from (up to
``FIT_IMAGES`` of) the run's training images; the distances of its validation images set the
scale: a score of 1.0 is the ``QUANTILE`` of theirs, so about 5% of photos like the
validation images score above 1 and are flagged (core.inference.predictions.UNFAMILIAR).

Calibration runs once, at the end of a finished training run (``calibrate``, called by
core.training.ood_calibration.OodCalibration) and is stored in model.pt under ``"ood"``; a
model.pt without it predicts as before, with no score. The covariance is kept as its top ``RANK`` eigen-directions plus
one variance for the rest (a few MB less per file; every direction the shrinkage left alone
is kept for folders of up to RANK training images).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.inference.predictions import OOD_QUANTILE as QUANTILE

OOD_VERSION = 1
FIT_IMAGES = 1000  # training images for the class means and the covariance (seeded subset)
CALIBRATION_IMAGES = 1000  # validation images whose distances set the scale
MIN_VALIDATION = 10  # fewer validation images: no calibration (the scale would be a guess)
RANK = 256
STAGE = "Calibrating the unfamiliar-image check"


class Unfamiliarity(nn.Module):
    """Penultimate features (N, d) -> score (N,): distance to the nearest class mean over the
    run's validation quantile (core.inference.forward.Probabilities exports it too)."""

    def __init__(self, stats: dict):
        super().__init__()
        self.register_buffer("means", stats["means"].float())
        self.register_buffer("basis", stats["basis"].float())
        self.register_buffer("scales", stats["scales"].float())
        self.tail = float(stats["tail"])
        self.threshold = float(stats["threshold"])

    def distance(self, feats: torch.Tensor) -> torch.Tensor:
        diff = feats.float()[:, None, :] - self.means[None]  # (N, K, d)
        along = diff @ self.basis  # (N, K, r)
        inside = (along * self.scales).pow(2).sum(-1)
        rest = (diff.pow(2).sum(-1) - along.pow(2).sum(-1)).clamp_min(0) / self.tail
        return (inside + rest).min(1).values.sqrt()

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.distance(feats) / self.threshold


# --- fitting ---------------------------------------------------------------------------------

def ledoit_wolf(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(shrunk covariance, shrinkage) of centred samples ``x`` (n, d): Ledoit & Wolf's
    well-conditioned estimator, as scikit-learn's ``ledoit_wolf`` computes it."""
    x = x.double()
    n, d = x.shape
    cov = x.T @ x / n
    mu = torch.trace(cov) / d
    x2 = x * x
    delta_ = (cov * cov).sum()
    beta = ((x2.T @ x2).sum() / n - delta_) / (d * n)
    delta = (delta_ - 2 * mu * torch.trace(cov) + d * mu * mu) / d
    shrinkage = 0.0 if float(beta) == 0 else float(torch.minimum(beta, delta) / delta)
    return (1 - shrinkage) * cov + shrinkage * mu * torch.eye(d, dtype=x.dtype), shrinkage


def fit_stats(feats: torch.Tensor, labels: torch.Tensor, val_feats: torch.Tensor,
              classes: int) -> dict:
    """Class means and shrunk shared covariance from ``feats``; the scale from the
    validation features' distances."""
    feats, labels = feats.double(), labels.long()
    means = torch.zeros((classes, feats.shape[1]), dtype=torch.float64)
    for c in labels.unique().tolist():
        means[c] = feats[labels == c].mean(0)
    cov, shrinkage = ledoit_wolf(feats - means[labels])
    values, vectors = torch.linalg.eigh(cov)  # ascending
    r = min(RANK, len(values))
    rest = values[:-r] if r < len(values) else values[:1]
    stats = {"version": OOD_VERSION, "means": means.float(), "basis": vectors[:, -r:].float(),
             "scales": values[-r:].clamp_min(1e-12).rsqrt().float(),
             "tail": float(rest.mean().clamp_min(1e-12)), "threshold": 1.0,
             "quantile": QUANTILE, "shrinkage": shrinkage, "fit_images": len(labels),
             "val_images": len(val_feats)}
    dist = Unfamiliarity(stats).distance(val_feats)
    stats["threshold"] = float(torch.quantile(dist.double(), QUANTILE).clamp_min(1e-6))
    return stats


# --- calibration at the end of a run ---------------------------------------------------------

@torch.no_grad()
def features(net, images, pre, idx: torch.Tensor, device, state=None,
             done: int = 0, total: int = 0) -> torch.Tensor:
    """Penultimate features of ``images[idx]`` (decoded uint8 squares) through the forward
    path every front end uses."""
    from core.data.batches import to_model_input

    out = []
    for start in range(0, len(idx), 64):
        part = idx[start:start + 64]
        x = to_model_input(images[part].to(device), images.shape[-1], pre.mean, pre.std,
                           channels_last=False)
        out.append(net(x)[1].cpu())
        if state is not None:
            state.report(STAGE, done + start + len(part), total)
    return torch.cat(out) if out else torch.empty(0)


def _subset(n: int, k: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:k].sort().values


def calibrate(model_file: str | Path, train, val, device=None, state=None) -> dict | None:
    """Fit the score on a run's data (core.data.folder.Split of training and validation
    images) for the weights in ``model_file``, and store it there; None (and nothing
    written) when there are too few validation images."""
    from core.inference.predict import load_model_file
    from core.models.model_file import save_model_file

    if len(val.labels) < MIN_VALIDATION:
        return None
    device = torch.device(device or "cpu")
    lm = load_model_file(model_file)
    net = lm.net.to(device)
    fit_idx = _subset(len(train.labels), FIT_IMAGES)
    val_idx = _subset(len(val.labels), CALIBRATION_IMAGES)
    total = len(fit_idx) + len(val_idx)
    with lm.lock:
        feats = features(net, train.images, lm.preprocessing, fit_idx, device, state, 0, total)
        val_feats = features(net, val.images, lm.preprocessing, val_idx, device, state,
                             len(fit_idx), total)
    stats = fit_stats(feats, train.labels[fit_idx].cpu(), val_feats, len(lm.classes))
    save_model_file(model_file, {"ood": stats})
    return stats
