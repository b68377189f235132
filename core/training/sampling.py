"""Which training images an epoch visits: after the first, fewer of those already learned.

By the last epochs of a short fine-tuning most images are classified right with a loss near
zero, and a step over them changes little. ``EasySkipping`` keeps each image's loss from its
last visit (free: the step computes it anyway) and, from the second epoch on, visits an
image with a chance that grows with its loss's rank: ``rank ** beta``, where the rank runs
from 1/N (the lowest loss) to 1 (the highest; an image never visited is visited), and
beta = skip / (1 - skip), so that on average a share ``skip`` of the images is left out. This is
selective backprop with stale losses (Jiang et al. 2019, "Accelerating Deep Learning by
Focusing on the Biggest Losers"): an easy image still comes back now and then, so it is
not forgotten, and its loss is then brought up to date.

The draw is seeded by the run's seed and the epoch, and the loss table is the same on every
rank (each rank records its share of each batch; the tables are summed after the epoch), so
every process of a torchrun job visits the same images. The table is saved in the checkpoint:
a resumed run skips as the run it continues would have.
"""
from __future__ import annotations

import torch

from core.training.callbacks import TrainingCallback

# Below this many training images every epoch visits every image: such an epoch takes
# seconds to a minute on a CPU, so there is little to save, and with few images a class
# each one carries more of what the run learns (a small photo folder's head-only run, or its
# trial, would then be decided by a draw)
MIN_IMAGES = 5_000


def visit_chances(loss: torch.Tensor, skip: float) -> torch.Tensor:
    """Each image's chance of a visit, from its last loss (NaN: never visited)."""
    n = len(loss)
    order = loss.nan_to_num(nan=float("inf")).argsort(stable=True)
    rank = torch.empty(n, dtype=torch.float64)
    rank[order] = torch.arange(1, n + 1, dtype=torch.float64) / n
    return torch.where(loss.isnan(), 1.0, rank ** (skip / (1.0 - skip)))


class EasySkipping(TrainingCallback):
    def __init__(self, skip: float, seed: int = 0):
        if not 0.0 <= skip < 1.0:
            raise ValueError(f"skip must be in [0, 1), got {skip}")
        self.skip, self.seed = skip, seed
        self.loss: torch.Tensor | None = None  # each training image's loss at its last visit
        self._fresh = self._seen = None  # this epoch's losses (this rank's shares)

    def state_dict(self) -> dict:
        return {} if self.loss is None else {"loss": self.loss.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.loss = state["loss"].clone()

    def visits(self, epoch: int) -> torch.Tensor | None:
        """Indices of the images epoch ``epoch`` (0-based) goes over; None: all of them."""
        if not self.skip or self.loss is None or self.loss.isnan().all():
            return None
        chance = visit_chances(self.loss, self.skip)
        draw = torch.rand(len(chance), generator=torch.Generator().manual_seed(
            self.seed * 7919 + epoch), dtype=torch.float64)
        return (draw < chance).nonzero().flatten()

    def on_epoch_start(self, loop, epoch: int) -> None:
        n = len(loop.train_labels)
        if n < MIN_IMAGES:
            if epoch == loop.start_epoch:
                loop.log(f"Every epoch visits all {n:,} training images (skipping the easy "
                         f"ones starts at {MIN_IMAGES:,}: an epoch this short saves little)")
            return
        if self.loss is None or len(self.loss) != n:
            self.loss = torch.full((n,), float("nan"))
        self._fresh, self._seen = torch.zeros(n), torch.zeros(n)
        visit = self.visits(epoch)
        loop.set_visits(visit, later_share=1.0 - self.skip)  # the mean of rank ** beta
        if visit is not None:
            loop.log(f"Epoch {epoch + 1} visits {len(visit):,} of {n:,} training images: "
                     f"those learned best at their last visit are left out more often "
                     f"(skip {self.skip:g})")

    def on_train_batch_end(self, loop, epoch: int, batch: int) -> None:
        if self._fresh is None:  # (too few images to skip any)
            return
        idx, losses = loop.batch_losses
        self._fresh[idx] = losses.float().cpu()
        self._seen[idx] = 1.0

    def on_validation_start(self, loop) -> None:
        """After the epoch's batches: every rank's records, summed (each image was in one
        rank's share), update the table."""
        if self._fresh is None:
            return
        dist = loop.rt.dist
        if dist.enabled:  # (on the device: NCCL reduces GPU tensors only)
            both = dist.all_reduce_(torch.stack([self._fresh, self._seen]).to(loop.rt.device))
            self._fresh, self._seen = both.cpu()
        self.loss = torch.where(self._seen > 0, self._fresh, self.loss)
