"""A new head that starts from what the ImageNet head already knows ("label mapping").

Before the 1000-class ImageNet head is replaced, a sample of training images of each new class
goes through the whole pretrained network. Each new class is matched to the ImageNet category
its images are most often taken for (one category per class, the surest matches first), and
its row of the new head starts as that category's row (weights and bias). A folder of ants and
bees starts as ImageNet's "ant" vs "bee" classifier, 98% right on its validation photos before
the first step.

A wrong start is worse than a random one: ImageNet rows are large, and with ants started as
"bee" and bees as "ant" the head was still 2% right after 10 epochs (a random start: 95%). So
the matched rows are used only when they already classify the sample well
(``MIN_SAMPLE_ACCURACY``): when ImageNet knows the classes. CIFAR-10's thumbnails matched
"automobile" to "thresher" and "frog" to "fox squirrel" (the matched rows were 40% right on the
sample); such a start trained 1.6 points below a random one (5,000 images, 3 epochs).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from core.data import disk_cache

IMAGENET_CLASSES = 1000
MATCH_FORMAT = 1  # part of the cache key
SAMPLE = 640  # images that vote, at most 32 and at least 4 per class: seconds on a CPU
MIN_SAMPLE_ACCURACY = 0.9


@dataclass(frozen=True)
class Match:
    name: str  # the new class
    imagenet: int  # the ImageNet category it starts from
    imagenet_name: str
    share: float  # mean ImageNet probability of that category over the class's sample


@dataclass(frozen=True)
class HeadStart:
    matches: list[Match]
    sample_accuracy: float  # of the matched rows alone, on the images that voted

    @property
    def used(self) -> bool:
        """Good enough to start from: the head starts from the rows."""
        return self.sample_accuracy >= MIN_SAMPLE_ACCURACY

    def describe(self, limit: int = 8) -> str:
        shown = ", ".join(f"{m.name} <- {m.imagenet_name} ({m.share:.0%})"
                          for m in self.matches[:limit])
        more = f", and {len(self.matches) - limit} more" if len(self.matches) > limit else ""
        if self.used:
            return (f"the new head starts from the ImageNet classes the images look like "
                    f"({self.sample_accuracy:.0%} right on a sample): {shown}{more}")
        return (f"the new head starts from random weights: the closest ImageNet classes "
                f"({shown}{more}) classify only {self.sample_accuracy:.0%} of a sample right "
                f"(a start from them needs {MIN_SAMPLE_ACCURACY:.0%})")


def imagenet_head(model: nn.Module, head: str) -> nn.Linear | None:
    """The model's ImageNet classifier, or None when it has another head."""
    layer = model.get_submodule(head)
    if isinstance(layer, nn.Linear) and layer.out_features == IMAGENET_CLASSES:
        return layer
    return None


def sample(labels: torch.Tensor, classes: int, seed: int) -> torch.Tensor:
    """Seeded indices of up to SAMPLE images, the same number from each class."""
    return per_class_sample(labels, classes, seed, max(4, min(32, SAMPLE // classes)))


def per_class_sample(labels: torch.Tensor, classes: int, seed: int, per_class: int
                     ) -> torch.Tensor:
    """Seeded indices of ``per_class`` images of each class (all of a smaller class's)."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(classes):
        idx = (labels == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(picks)


@torch.no_grad()
def imagenet_logits(model: nn.Module, images, to_input, batch: int = 32,
                    progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """(N, outputs) float32 on the CPU, in evaluation mode (the model's mode is kept);
    ``to_input`` is the training transform of uint8 images; ``progress(done, total)`` after
    each batch (it may raise to cancel)."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(images), batch):
            out.append(model(to_input(images[i:i + batch])).float().cpu())
            if progress:
                progress(min(i + batch, len(images)), len(images))
    finally:
        model.train(was_training)
    return torch.cat(out)


def class_probabilities(logits: torch.Tensor, labels: torch.Tensor,
                        classes: int) -> torch.Tensor:
    """(classes, 1000): the mean ImageNet softmax over each class's images."""
    sums = torch.zeros(classes, logits.shape[1]).index_add_(0, labels, logits.softmax(1))
    counts = torch.bincount(labels, minlength=classes).clamp(min=1)
    return sums / counts[:, None]


def assign(probs: torch.Tensor) -> list[int]:
    """One distinct ImageNet category per class: the surest (class, category) pairs first."""
    probs = probs.clone()
    chosen = [-1] * probs.shape[0]
    for _ in range(probs.shape[0]):
        c, k = divmod(int(probs.argmax()), probs.shape[1])
        chosen[c] = k
        probs[c, :] = -1  # this class is done
        probs[:, k] = -1  # and this category is taken
    return chosen


def match(logits: torch.Tensor, labels: torch.Tensor, names: list[str],
          categories: list[str]) -> tuple[list[int], HeadStart]:
    """The ImageNet category of each class, and how well those rows alone classify."""
    probs = class_probabilities(logits, labels, len(names))
    picks = assign(probs)
    accuracy = float((logits[:, picks].argmax(1) == labels).float().mean())
    matches = [Match(n, k, categories[k], float(probs[c, k]))
               for c, (n, k) in enumerate(zip(names, picks))]
    return picks, HeadStart(matches, accuracy)


def weights_identity(weights: str) -> str:
    """``weights`` ("imagenet", "none" or a file) as part of a cache key: a file by its path,
    size and modification time, so a file saved anew under the same name is another."""
    path = Path(weights).expanduser()
    if weights in ("imagenet", "none") or not path.is_file():
        return weights
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def match_key(identity: str, images: torch.Tensor, labels: torch.Tensor,
              names: list[str]) -> str:
    """The cache key of a match: the network and its preprocessing (``identity``), and the
    sampled images' own pixels (so the folder, the image size and the framing are in it)."""
    h = hashlib.sha256(f"{MATCH_FORMAT}|{identity}|{names}|{tuple(images.shape)}".encode())
    h.update(images.contiguous().cpu().numpy().tobytes())
    h.update(labels.cpu().numpy().tobytes())
    return h.hexdigest()[:24]


def _match_file(key: str) -> Path:
    from core.paths import cache_dir

    return cache_dir() / "fitting" / f"match-{key}.pt"


def load_match(key: str) -> tuple[list[int], HeadStart] | None:
    path = _match_file(key)
    try:
        d = torch.load(path, weights_only=True)
        start = HeadStart([Match(*m) for m in d["matches"]], float(d["sample_accuracy"]))
        disk_cache.touch(path)  # least recently used entries go first
        return [int(k) for k in d["picks"]], start
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - a damaged entry is measured again
        path.unlink(missing_ok=True)
        return None


def save_match(key: str, picks: list[int], start: HeadStart) -> None:
    from core.paths import atomic_path

    path = _match_file(key)
    try:
        with atomic_path(path) as tmp:
            torch.save({"picks": picks, "sample_accuracy": start.sample_accuracy,
                        "matches": [[m.name, m.imagenet, m.imagenet_name, m.share]
                                    for m in start.matches]}, tmp)
        disk_cache.enforce_cap(path.parent)
    except Exception:  # noqa: BLE001 - a read-only cache only costs the match next time
        pass


def replace_from_imagenet(model: nn.Module, head: str, images, labels: torch.Tensor,
                          names: list[str], to_input, seed: int = 0,
                          identity: str = "") -> HeadStart | None:
    """Replace ``model``'s ImageNet head by one for ``names``, started from the matched rows
    when they pass the check; None (nothing changed) when the head is not ImageNet's.
    ``identity`` names the network, its weights and preprocessing: given, the match is
    remembered on disk and found again for the same images (seconds instead of a forward
    pass of the sample)."""
    from core.models.heads import replace_head
    from core.models.weights import imagenet_categories

    old = imagenet_head(model, head)
    if old is None or len(names) > IMAGENET_CLASSES:  # one category per class
        return None
    idx = sample(labels, len(names), seed)
    chosen, chosen_labels = images[idx], labels[idx].cpu()
    key = match_key(identity, chosen, chosen_labels, names) if identity else None
    found = load_match(key) if key else None
    if found is None:
        logits = imagenet_logits(model, chosen, to_input)
        found = match(logits, chosen_labels, names, imagenet_categories())
        if key:
            save_match(key, *found)
    picks, start = found
    weight, bias = old.weight.detach()[picks].clone(), old.bias.detach()[picks].clone()
    replace_head(model, len(names))
    if start.used:
        with torch.no_grad():
            model.get_submodule(head).weight.copy_(weight)
            model.get_submodule(head).bias.copy_(bias)
    return start
