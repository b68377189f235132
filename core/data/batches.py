"""Batches from decoded uint8 tensors: resize, flip and normalise a whole batch at once.

Small images (CIFAR's 32x32) are decoded once; per-image PIL transforms every epoch were the
lesson loop's main data cost. Resizing on the batch is one interpolate call. The images may
live on a GPU (moved there once): then every batch is cut, resized and normalised there,
with no trip through the host. The shuffle order always comes from a CPU generator, so the
same seed gives the same batches on every device and in every process of a distributed run.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_square(x: torch.Tensor, size: int, interpolation: str = "bilinear") -> torch.Tensor:
    """A float (N,3,S,S) batch at ``size`` x ``size`` (the weights' ``interpolation``): the
    one resize of squares, used by training and inside every inference network
    (core.inference.forward.InputResize)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode=interpolation, align_corners=False,
                         antialias=x.shape[-1] > size)


def to_model_input(x: torch.Tensor, image_size: int, mean, std, flip_mask=None,
                   channels_last: bool = True, interpolation: str = "bilinear") -> torch.Tensor:
    """uint8 (N,3,S,S) -> normalised float (N,3,image_size,image_size), on x's device."""
    x = resize_square(x.float().div_(255), image_size, interpolation)
    if flip_mask is not None and flip_mask.any():
        flip_mask = flip_mask.to(x.device)
        x[flip_mask] = x[flip_mask].flip(-1)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    x = (x - m) / s
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class BatchLoader:
    """Iterates (inputs, labels) over decoded images in seeded, per-epoch shuffled order.

    ``share``: a function that picks this process's part of each batch (see
    core.training.distributed); ``ranks``: how many processes share each batch.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 image_size: int, mean, std, *, shuffle: bool = False, flip: bool = False,
                 seed: int = 0, channels_last: bool = True, share=None, ranks: int = 1,
                 interpolation: str = "bilinear"):
        self.images, self.labels = images, labels
        self.batch_size, self.image_size = batch_size, image_size
        self.mean, self.std = mean, std
        self.shuffle, self.flip, self.channels_last = shuffle, flip, channels_last
        self.generator = torch.Generator().manual_seed(seed)
        self.share, self.ranks = share, ranks
        self.interpolation = interpolation

    def _bounds(self) -> list[int]:
        """Batch start offsets. When training, a last batch with fewer than two images per
        process joins the one before it: BatchNorm cannot train on a single sample."""
        n = len(self.labels)
        starts = list(range(0, n, self.batch_size)) + [n]
        if self.shuffle and len(starts) > 2 and n - starts[-2] < 2 * self.ranks:
            del starts[-2]
        return starts

    def __len__(self) -> int:
        return len(self._bounds()) - 1

    def indices(self):
        """(indices, flip mask or None) per batch, for callers that fetch inputs themselves
        (the frozen-prefix cache). Indices are CPU tensors into ``images``; with ``share``,
        only this process's part of each global batch."""
        for idx, flips, _ in self.shares():
            yield idx, flips

    def shares(self):
        """(indices, flip mask or None, size of the whole global batch) per batch."""
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        bounds = self._bounds()
        for start, end in zip(bounds, bounds[1:]):
            idx = order[start:end]
            flips = torch.rand(len(idx), generator=self.generator) < 0.5 if self.flip else None
            if self.share is not None:
                part = self.share(len(idx))
                idx, flips = idx[part], None if flips is None else flips[part]
            yield idx, flips, end - start

    def inputs(self, idx: torch.Tensor, flips=None) -> torch.Tensor:
        return to_model_input(self.images[idx.to(self.images.device)], self.image_size,
                              self.mean, self.std, flips, self.channels_last, self.interpolation)

    def targets(self, idx: torch.Tensor) -> torch.Tensor:
        return self.labels[idx.to(self.labels.device)]

    def __iter__(self):
        for idx, flips in self.indices():
            yield self.inputs(idx, flips), self.targets(idx)
