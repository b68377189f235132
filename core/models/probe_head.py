"""A new head that starts as a linear probe of the pretrained features ("LP-FT").

Before fine-tuning, a sample of the training images goes through the pretrained network
(evaluation mode), and a multinomial logistic regression on the head's input (the pooled
features) gives the new head's weights and bias. Fine-tuning then starts from a head that
already classifies, so the first steps' gradients into the pretrained layers come from a
sensible head rather than a random one (Kumar et al., "Fine-Tuning can Distort Pretrained
Features and Underperform Out-of-Distribution", ICLR 2022).

The regression's L2 strength is chosen on the sample itself (a seeded quarter held out, the
strength with the lowest held-out loss, then refitted on the whole sample), so a folder of
few images and one of many each get their own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from core.models.head_init import imagenet_logits, per_class_sample

PROBE_SAMPLE = 2000  # images at most, the same number from each class
STRENGTHS = (1e-3, 1e-2, 1e-1)  # L2 on the weights, per image (mean loss + s/2 |W|^2)
BATCH = 64


@dataclass(frozen=True)
class ProbeStart:
    images: int
    strength: float
    # of the probe fitted on 3/4 of the sample, on the other quarter (None: too few images)
    held_accuracy: float | None

    def describe(self) -> str:
        held = "" if self.held_accuracy is None else \
            f"; {self.held_accuracy:.1%} right on a held-out quarter of them"
        return (f"the new head starts as a linear probe of the pretrained features "
                f"({self.images} images, L2 {self.strength:g}{held})")


def head_inputs(model: nn.Module, head: str, images, to_input,
                progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """(N, D) float32: what ``head`` receives for each image, in evaluation mode;
    ``progress(done, total)`` after each batch (it may raise to cancel)."""
    seen: list[torch.Tensor] = []
    hook = model.get_submodule(head).register_forward_hook(
        lambda _m, args, _out: seen.append(args[0].detach().float().cpu()))
    try:
        imagenet_logits(model, images, to_input, BATCH, progress)
    finally:
        hook.remove()
    return torch.cat(seen)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, classes: int, strength: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.zeros(classes, x.shape[1], requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=300, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w.T + b, y) + strength / 2 * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def choose_strength(x: torch.Tensor, y: torch.Tensor, classes: int, seed: int
                    ) -> tuple[float, float | None]:
    """(the strength with the lowest held-out loss, that probe's held-out accuracy); the
    middle strength, unmeasured, for a sample too small to hold a quarter out."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = len(y) // 4
    if cut == 0:
        return STRENGTHS[len(STRENGTHS) // 2], None
    held, part = order[:cut], order[cut:]
    best = None
    for s in STRENGTHS:
        w, b = fit_logistic(x[part], y[part], classes, s)
        logits = x[held] @ w.T + b
        loss = float(F.cross_entropy(logits, y[held]))
        acc = float((logits.argmax(1) == y[held]).float().mean())
        if best is None or loss < best[0]:
            best = (loss, s, acc)
    return best[1], best[2]


def start_as_probe(model: nn.Module, head: str, images, labels: torch.Tensor, classes: int,
                   to_input, seed: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> ProbeStart:
    """Set ``head`` (a Linear for ``classes``) to a probe fitted on a sample of the images."""
    idx = per_class_sample(labels.cpu(), classes, seed, max(1, PROBE_SAMPLE // classes))
    x = head_inputs(model, head, images[idx], to_input, progress)
    y = labels[idx].cpu()
    strength, held_acc = choose_strength(x, y, classes, seed)
    w, b = fit_logistic(x, y, classes, strength)
    layer = model.get_submodule(head)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    return ProbeStart(len(idx), strength, held_acc)
